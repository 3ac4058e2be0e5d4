"""Registration of the ``hf_cpu`` rollout backend in verl's two rollout registries (cheap: names only)."""

from __future__ import annotations

from verl_reason_rft.cpu import ROLLOUT_NAME

#: where verl's worker loads the server adapter from (``get_rollout_class``)
SERVER_ADAPTER = "verl_reason_rft.cpu.rollout.ServerAdapter"


def _load_replica():
    from verl_reason_rft.cpu.rollout import HFCPUReplica

    return HFCPUReplica


def register_rollout() -> None:
    """``RolloutReplicaRegistry`` gets the replica loader, ``_ROLLOUT_REGISTRY`` the adapter (idempotent)."""
    from verl.workers.rollout.base import _ROLLOUT_REGISTRY
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    _ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = SERVER_ADAPTER
    RolloutReplicaRegistry.register(ROLLOUT_NAME, _load_replica)
