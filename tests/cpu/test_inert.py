"""With VERL_PLATFORM unset the CPU kit leaves verl exactly as shipped (what a GPU machine sees)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# What verl's registries hold once the entry points ran and the recipes' external module imported.
SNAPSHOT = r"""
import json, verl
from verl.plugin.platform import PlatformRegistry, platform_manager
from verl.workers.rollout.base import _ROLLOUT_REGISTRY
from verl.workers.rollout.replica import RolloutReplicaRegistry
from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY
from verl.workers.engine import EngineRegistry
from verl.workers.engine.fsdp import transformer_impl
import torch.distributed.fsdp as fsdp
import verl_reason_rft.cpu as kit
active = kit.activate()
engines = {m: {b: sorted(map(str, d)) for b, d in backends.items()} for m, backends in EngineRegistry._engines.items()}
print("SNAPSHOT" + json.dumps({
    "platforms": sorted(PlatformRegistry.registered_names()),
    "resolved": platform_manager._detect_platform_name(),
    "rollout": sorted(map(str, _ROLLOUT_REGISTRY)),
    "replicas": sorted(RolloutReplicaRegistry._registry),
    "trainers": sorted(TRAINER_REGISTRY),
    "engines": engines,
    "offload_policy_is_torchs": transformer_impl.CPUOffloadPolicy is fsdp.CPUOffloadPolicy,
    "kit_active": active,
}))
"""


def _snapshot(**env_overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERL_")}
    env.update(env_overrides)
    proc = subprocess.run([sys.executable, "-c", SNAPSHOT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("SNAPSHOT"))
    return json.loads(line[len("SNAPSHOT") :])


def test_kit_changes_nothing_in_verl_without_verl_platform():
    stock = _snapshot(VERL_USE_EXTERNAL_PLUGINS="none")  # verl without any plugin
    ours = _snapshot(VERL_USE_EXTERNAL_MODULES="verl_reason_rft.trainer")  # as the GPU recipes run it

    assert ours["kit_active"] is False
    assert ours["platforms"] == stock["platforms"] and "cpu" not in ours["platforms"]
    assert ours["resolved"] == stock["resolved"]
    assert ours["rollout"] == stock["rollout"]
    assert ours["replicas"] == stock["replicas"] and "hf_cpu" not in ours["replicas"]
    # the plain reason_rft trainer is not part of the CPU kit; nothing else may appear
    assert set(ours["trainers"]) - set(stock["trainers"]) == {"reason_rft"}
    assert ours["engines"] == stock["engines"]
    assert ours["offload_policy_is_torchs"] and stock["offload_policy_is_torchs"]


def test_kit_registers_with_verl_platform_cpu():
    """The counterpart: the same snapshot with VERL_PLATFORM=cpu shows the kit (so the test above can fail)."""
    cpu = _snapshot(VERL_PLATFORM="cpu", VERL_USE_EXTERNAL_MODULES="verl_reason_rft.cpu.trainer")
    assert cpu["kit_active"] is True
    assert "cpu" in cpu["platforms"] and cpu["resolved"] == "cpu"
    assert "('hf_cpu', 'async')" in cpu["rollout"] and "hf_cpu" in cpu["replicas"]
    assert {"reason_rft", "reason_rft_cpu"} <= set(cpu["trainers"])
