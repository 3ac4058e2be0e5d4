"""The ``cpu`` platform for verl's ``PlatformRegistry`` (``verl.plugin.platform``).

Selected only by ``VERL_PLATFORM=cpu``: :meth:`PlatformCPU.is_platform_available` is False, so
verl's auto-detection never picks it on any machine. torch stays on the CPU; collectives run on
gloo. Ray still schedules workers on a logical ``GPU`` resource (verl's pools ask for
``use_gpu=True``), which the CPU recipe overlay declares with ``ray_kwargs.ray_init.num_gpus``.
"""

from __future__ import annotations

import contextlib
import types
from typing import Any, Optional

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry

from verl_reason_rft.cpu import PLATFORM_NAME


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def _zero(*args: Any, **kwargs: Any) -> int:
    return 0


def _mem_get_info(*args: Any, **kwargs: Any) -> tuple[int, int]:
    """(free, total) bytes of host memory, as ``torch.cuda.mem_get_info`` reports device memory."""
    import psutil

    memory = psutil.virtual_memory()
    return memory.available, memory.total


def _build_device_module() -> types.ModuleType:
    """``torch.cpu`` plus the ``torch.cuda`` calls verl makes (caches, memory stats, rng) as no-ops."""
    module = types.ModuleType("verl_reason_rft.cpu.device_module", "torch.cpu with torch.cuda's extra calls")
    for name in dir(torch.cpu):
        if not name.startswith("_"):
            setattr(module, name, getattr(torch.cpu, name))
    for name in ("empty_cache", "ipc_collect", "reset_peak_memory_stats", "set_per_process_memory_fraction"):
        setattr(module, name, _noop)
    for name in ("memory_allocated", "memory_reserved", "max_memory_allocated", "max_memory_reserved"):
        setattr(module, name, _zero)
    module.memory_stats = lambda *args, **kwargs: {}
    module.mem_get_info = _mem_get_info
    module.get_rng_state = lambda *args, **kwargs: torch.get_rng_state()
    module.set_rng_state = lambda state, *args, **kwargs: torch.set_rng_state(state)
    module.manual_seed = lambda seed: torch.manual_seed(seed)
    module.manual_seed_all = lambda seed: torch.manual_seed(seed)
    module.is_available = lambda: True
    module.device_count = lambda: 1
    module.current_device = lambda: torch.device("cpu")
    module.set_device = _noop
    module.synchronize = _noop
    module.get_device_name = lambda *args, **kwargs: "cpu"
    return module


DEVICE_MODULE = _build_device_module()


class PlatformCPU(PlatformBase):
    """verl's platform interface on the host CPU: gloo, no device memory, no profiler."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        return DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # never auto-detected: only VERL_PLATFORM=cpu selects this platform
        return False

    def current_device(self) -> torch.device:  # type: ignore[override]
        # a torch.device, not an int: verl does model.to(device=get_device_id()) (fsdp_utils.py:507)
        return torch.device("cpu")

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: Optional[int] = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextlib.contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        # verl's resource pools request GPUs (use_gpu=True); the CPU overlay gives Ray logical ones
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None


def register_platform() -> type[PlatformCPU]:
    """Put :class:`PlatformCPU` in verl's registry under ``cpu`` (idempotent)."""
    if PlatformRegistry.get(PLATFORM_NAME) is not PlatformCPU:
        PlatformRegistry.register(platform=PLATFORM_NAME)(PlatformCPU)
    return PlatformCPU
