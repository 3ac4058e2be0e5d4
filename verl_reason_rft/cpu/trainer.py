"""``trainer.v1.trainer_mode=reason_rft_cpu``: :class:`~verl_reason_rft.trainer.ReasonRFTTrainer` on the CPU.

The same trainer (verl's sync PPO trainer plus the reward-part metrics), with its Ray workers
replaced by :class:`~verl_reason_rft.cpu.workers.CPUActorRolloutRefWorker` (gloo first). The
swap goes through ``_init_resource_pool_mgr`` (``trainer_base.py:788``), the one place verl
maps roles to worker classes. The CPU recipe overlay (``cpu=grpo``) names this module in
``VERL_USE_EXTERNAL_MODULES``, so the TaskRunner and every worker import it before the entry
points: it registers the CPU platform before importing verl's trainer, which resolves the
platform at import time (``workers/engine/fsdp/transformer_impl.py:89``).
"""

from __future__ import annotations

from verl_reason_rft.cpu import TRAINER_NAME, activate

activate()  # before anything below imports verl's trainer

import ray  # noqa: E402
from verl.trainer.ppo.v1.trainer_base import register_trainer  # noqa: E402
from verl.workers.engine_workers import ActorRolloutRefWorker  # noqa: E402

from verl_reason_rft.cpu.workers import CPUActorRolloutRefWorker  # noqa: E402
from verl_reason_rft.trainer import ReasonRFTTrainer  # noqa: E402


def _is_hybrid_worker(remote_cls) -> bool:
    original = getattr(getattr(remote_cls, "__ray_metadata__", None), "modified_class", None)
    return original is not None and issubclass(original, ActorRolloutRefWorker)


@register_trainer(TRAINER_NAME)
class ReasonRFTCPUTrainer(ReasonRFTTrainer):
    """``ReasonRFTTrainer`` whose actor/rollout/reference workers open a gloo group first."""

    def _init_resource_pool_mgr(self):
        super()._init_resource_pool_mgr()
        for role, remote_cls in list(self.role_worker_mapping.items()):
            if _is_hybrid_worker(remote_cls):
                self.role_worker_mapping[role] = ray.remote(CPUActorRolloutRefWorker)
