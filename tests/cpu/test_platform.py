"""The CPU platform: verl's device calls are no-ops on torch.cpu, collectives on gloo, never auto-detected."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from verl_reason_rft.cpu.platform import PlatformCPU


def test_device_module_calls_are_noops():
    module = PlatformCPU().device_module
    for name in ("empty_cache", "ipc_collect", "synchronize", "reset_peak_memory_stats"):
        assert getattr(module, name)() is None
    for name in ("memory_allocated", "memory_reserved", "max_memory_allocated", "max_memory_reserved"):
        assert getattr(module, name)() == 0
    free, total = module.mem_get_info()
    assert 0 < free <= total
    assert module.is_available() and module.device_count() == 1
    assert module.current_device() == torch.device("cpu")
    assert module.current_stream() is not None  # torch.cpu's own stream API stays available


def test_rng_state_round_trips():
    module = PlatformCPU().device_module
    module.manual_seed(3)
    state = module.get_rng_state()
    first = torch.rand(3)
    module.set_rng_state(state)
    assert torch.equal(first, torch.rand(3))


def test_platform_answers():
    platform = PlatformCPU()
    assert platform.current_device() == torch.device("cpu")
    assert platform.communication_backend_name() == "gloo"
    assert platform.device_name == "cpu"
    assert platform.ray_resource_name() == "GPU"
    assert platform.is_platform_available() is False
    assert platform.is_platform_available(use_smi_check=True) is False


def test_verl_device_helpers_resolve_to_cpu_with_verl_platform_cpu():
    code = (
        "import torch\n"
        "from verl.utils.device import get_device_name, get_device_id, get_nccl_backend, get_torch_device\n"
        "assert get_device_name() == 'cpu', get_device_name()\n"
        "assert get_device_id() == torch.device('cpu')\n"
        "assert get_nccl_backend() == 'gloo'\n"
        "get_torch_device().empty_cache()\n"
        "print('OK')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERL_")}
    env["VERL_PLATFORM"] = "cpu"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]
