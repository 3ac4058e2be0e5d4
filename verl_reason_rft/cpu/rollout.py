"""``rollout.name=hf_cpu``: verl's rollout replica and server adapter around :class:`HFRolloutServer`.

* :class:`HFCPUReplica` (``RolloutReplicaRegistry``): ``launch_servers`` starts one named
  :class:`~verl_reason_rft.cpu.hf_server.HFRolloutServer` Ray actor per replica; its handle is
  what verl's agent loop sends ``generate`` calls to.
* :class:`ServerAdapter` (``_ROLLOUT_REGISTRY[("hf_cpu", "async")]``): lives in the hybrid
  actor/rollout worker; with checkpoint engine ``naive`` verl hands it the actor's weights
  (HF names) after every update, and it pushes them to the replica's server actor.
"""

from __future__ import annotations

import logging
from typing import Any, Generator

import ray
import torch
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica

from verl_reason_rft.cpu.hf_server import HFRolloutServer

logger = logging.getLogger(__name__)


def server_actor_name(replica_rank: int) -> str:
    """Ray actor name of replica ``replica_rank``'s server (the adapter finds it by this name)."""
    return f"reason_rft_hf_cpu_server_{replica_rank}"


class HFCPUReplica(RolloutReplica):
    """A rollout replica served by one HF ``generate`` actor on the CPU."""

    async def launch_servers(self) -> None:
        server_cls = ray.remote(HFRolloutServer)
        server = server_cls.options(
            name=server_actor_name(self.replica_rank),
            max_concurrency=self.max_concurrency,
            num_cpus=1,
        ).remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        # wait until the model is loaded, so a bad checkpoint fails here and not in the first rollout
        await server.wake_up.remote()
        self.servers = [server]
        self._server_handle = server
        self._server_address = server_actor_name(self.replica_rank)


class ServerAdapter(BaseRollout):
    """The hybrid worker's view of the rollout: forwards weight updates to the server actor."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, model_config, device_mesh)
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        replica_size = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        self.replica_rank = rank // replica_size
        self.is_leader = rank % replica_size == 0

    async def resume(self, tags: list[str]) -> None:
        return None

    async def release(self) -> None:
        return None

    async def update_weights(
        self,
        weights: Generator[tuple[str, torch.Tensor], None, None],
        wire_format: str = "named_tensors",
        global_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        if wire_format != "named_tensors":
            raise NotImplementedError(f"hf_cpu rollout: weight wire format {wire_format!r} (use checkpoint engine naive)")
        state: dict[str, torch.Tensor] = {}
        for name, tensor in weights:  # every rank iterates: gathering a sharded tensor is collective
            if hasattr(tensor, "full_tensor"):
                tensor = tensor.full_tensor()
            if self.is_leader:
                state[name] = tensor.detach().to("cpu", copy=True)
        if self.is_leader:
            server = ray.get_actor(server_actor_name(self.replica_rank))
            loaded = await server.update_weights.remote(state, global_steps=global_steps)
            logger.info("hf_cpu rollout: %d tensors pushed to replica %d", loaded, self.replica_rank)
