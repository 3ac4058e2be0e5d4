"""The kit's one override targets a call site in verl's FSDP engine; it must fail loudly if verl changes it."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

from verl_reason_rft.cpu.engine import PATCHED_CALL


def test_patched_call_site_is_still_in_verl():
    # read the installed verl's source directly (no import of the kit's helpers needed)
    from verl.workers.engine.fsdp import transformer_impl

    source = inspect.getsource(transformer_impl.FSDPEngine._build_fsdp_module)
    assert PATCHED_CALL in source, (
        f"verl's FSDPEngine._build_fsdp_module no longer contains {PATCHED_CALL!r}: "
        "revisit verl_reason_rft/cpu/engine.py's reference-model override for this verl version"
    )
    assert "CPUOffloadPolicy" in transformer_impl.__dict__  # the module global the override replaces


def _run(code: str, **env_overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERL_")}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_override_unpins_and_registers_the_cpu_engine_on_the_cpu_platform():
    code = (
        "from torch.distributed.fsdp import CPUOffloadPolicy\n"
        "from verl_reason_rft.cpu.engine import prepare_cpu_engine\n"
        "prepare_cpu_engine(); prepare_cpu_engine()\n"
        "from verl.workers.engine import EngineRegistry\n"
        "from verl.workers.engine.fsdp import transformer_impl as impl\n"
        "policy = impl.CPUOffloadPolicy(pin_memory=True)\n"
        "assert isinstance(policy, CPUOffloadPolicy) and policy.pin_memory is False\n"
        "assert EngineRegistry.get_engine_cls('language_model', 'fsdp2') is impl.FSDPEngineWithLMHead\n"
        "print('OK')\n"
    )
    proc = _run(code, VERL_PLATFORM="cpu")
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


def test_override_refuses_to_run_off_the_cpu_platform():
    code = (
        "from verl_reason_rft.cpu.engine import apply_reference_offload_override\n"
        "try:\n"
        "    apply_reference_offload_override()\n"
        "except RuntimeError as exc:\n"
        "    assert 'VERL_PLATFORM=cpu' in str(exc); print('REFUSED')\n"
        "from verl.workers.engine.fsdp import transformer_impl as impl\n"
        "from torch.distributed.fsdp import CPUOffloadPolicy\n"
        "assert impl.CPUOffloadPolicy is CPUOffloadPolicy\n"
    )
    proc = _run(code)
    assert proc.returncode == 0 and "REFUSED" in proc.stdout, proc.stderr[-3000:]
