"""verl's hybrid actor/rollout/reference worker, started on the CPU platform.

verl opens its process group with ``f"cpu:gloo,{device}:{backend}"`` (``utils/distributed.py:89``),
which on device ``cpu`` becomes ``cpu:gloo,cpu:gloo`` and fails ("Duplicate device type cpu").
:class:`CPUActorRolloutRefWorker` opens a plain gloo group first (verl's own
``initialize_global_process_group_ray`` then finds it open and skips), and prepares verl's FSDP
engine for the CPU before verl builds the actor and reference models.
"""

from __future__ import annotations

from typing import Any

from verl_reason_rft.cpu import activate

activate()  # a Ray worker may import this module before the entry points ran

from verl.utils.distributed import initialize_global_process_group_ray  # noqa: E402
from verl.workers.engine_workers import ActorRolloutRefWorker  # noqa: E402

from verl_reason_rft.cpu.engine import prepare_cpu_engine  # noqa: E402


def open_gloo_group() -> None:
    """Open this Ray worker's default process group on gloo (RANK/WORLD_SIZE/MASTER_* from verl's worker group)."""
    initialize_global_process_group_ray(timeout_second=None, backend="gloo")


class CPUActorRolloutRefWorker(ActorRolloutRefWorker):
    """``ActorRolloutRefWorker`` whose process group is gloo and whose FSDP engine runs on the CPU."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        open_gloo_group()
        prepare_cpu_engine()
        super().__init__(*args, **kwargs)
