"""verl's FSDP engine on the CPU: registration for device ``cpu`` and the kit's one override.

* verl registers its FSDP engines for ``["cuda", "npu"]`` only
  (``workers/engine/fsdp/transformer_impl.py:1143``); the same device-agnostic classes are
  registered here for ``cpu`` through verl's own ``EngineRegistry.register``.
* The override: for forward-only models (the reference model) verl 0.9.1 hard-codes
  ``CPUOffloadPolicy(pin_memory=True)`` (``transformer_impl.py:462``, no config key), and
  pinning host memory needs an accelerator. :func:`apply_reference_offload_override` replaces
  the module's ``CPUOffloadPolicy`` with a subclass that never pins. It runs only once the CPU
  platform is the resolved platform, and refuses to run (loudly) if that call site changed.

Both are called by the CPU workers and the CPU SFT entry, never at import time.
"""

from __future__ import annotations

import inspect

from verl_reason_rft.cpu import PLATFORM_NAME

#: the statement of FSDPEngine._build_fsdp_module that the override targets
PATCHED_CALL = "offload_policy = CPUOffloadPolicy(pin_memory=True)"


def _transformer_impl():
    from verl.workers.engine.fsdp import transformer_impl

    return transformer_impl


def _require_cpu_platform() -> None:
    from verl.plugin.platform import get_platform

    device = get_platform().device_name
    if device != PLATFORM_NAME:
        raise RuntimeError(f"verl_reason_rft.cpu: the CPU kit needs VERL_PLATFORM=cpu; verl's platform is {device!r}")


def register_cpu_engines() -> None:
    """Register verl's FSDP language-model engine for device ``cpu`` (idempotent)."""
    _require_cpu_platform()
    from verl.workers.engine import EngineRegistry

    impl = _transformer_impl()
    registered = EngineRegistry._engines.get("language_model", {})
    if all(PLATFORM_NAME in registered.get(backend, {}) for backend in ("fsdp", "fsdp2")):
        return
    EngineRegistry.register(model_type="language_model", backend=["fsdp", "fsdp2"], device=[PLATFORM_NAME])(
        impl.FSDPEngineWithLMHead
    )


def patched_call_site_present() -> bool:
    """Whether verl's FSDP engine still builds the forward-only offload policy as this override expects."""
    impl = _transformer_impl()
    source = inspect.getsource(impl.FSDPEngine._build_fsdp_module)
    return PATCHED_CALL in source and hasattr(impl, "CPUOffloadPolicy")


def unpinned_offload_policy_cls():
    """A ``CPUOffloadPolicy`` subclass whose ``pin_memory`` is always False (whatever the caller passes)."""
    from torch.distributed.fsdp import CPUOffloadPolicy

    class UnpinnedCPUOffloadPolicy(CPUOffloadPolicy):
        """FSDP2 CPU offload without pinned host memory (pinning needs an accelerator)."""

        def __init__(self, pin_memory: bool = False) -> None:
            super().__init__(pin_memory=False)

    return UnpinnedCPUOffloadPolicy


def apply_reference_offload_override() -> None:
    """Make ``transformer_impl.py:462``'s ``CPUOffloadPolicy(pin_memory=True)`` unpinned (idempotent)."""
    _require_cpu_platform()
    impl = _transformer_impl()
    current = impl.CPUOffloadPolicy
    if getattr(current, "__name__", "") == "UnpinnedCPUOffloadPolicy":
        return
    if not patched_call_site_present():
        raise RuntimeError(
            "verl_reason_rft.cpu: verl's FSDP engine no longer contains "
            f"{PATCHED_CALL!r} in FSDPEngine._build_fsdp_module; the CPU kit's reference-model "
            "override must be revisited for this verl version"
        )
    impl.CPUOffloadPolicy = unpinned_offload_policy_cls()


def prepare_cpu_engine() -> None:
    """Everything verl's FSDP engine needs to run on the CPU platform, in this process."""
    register_cpu_engines()
    apply_reference_offload_override()
