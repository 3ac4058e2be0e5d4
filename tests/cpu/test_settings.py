"""The ``cpu`` config group composes onto both recipes and sets what the CPU stages need."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from verl_reason_rft.cpu.settings import cpu_env, cpu_overrides
from verl_reason_rft.recipe_config import compose_recipe


def _resolved(name: str, *overrides: str) -> dict:
    return OmegaConf.to_container(compose_recipe(name, ["data_dir=/data", "model=tiny", "model.path=/m", *overrides]), resolve=True)


def test_grpo_overlay():
    c = _resolved("reason_rft", "sft_checkpoint=/sft/global_step_1/huggingface", *cpu_overrides("grpo"))
    arr = c["actor_rollout_ref"]
    assert arr["rollout"]["name"] == "hf_cpu" and arr["rollout"]["tensor_model_parallel_size"] == 1
    assert arr["rollout"]["checkpoint_engine"]["backend"] == "naive"
    assert arr["actor"]["strategy"] == arr["ref"]["strategy"] == "fsdp2"
    assert arr["model"]["override_config"]["attn_implementation"] == "sdpa"
    assert arr["model"]["use_remove_padding"] is False
    assert arr["model"]["path"] == "/sft/global_step_1/huggingface"  # the recipe's own setting survives
    assert arr["actor"]["use_kl_loss"] is True and c["reward"]["reward_manager"]["name"] == "ReasonRFTRewardManager"
    assert c["trainer"]["v1"]["trainer_mode"] == "reason_rft_cpu" and c["trainer"]["n_gpus_per_node"] == 1
    ray = c["ray_kwargs"]["ray_init"]
    assert ray["num_cpus"] == 16 and ray["num_gpus"] == 1
    assert ray["runtime_env"]["env_vars"]["VERL_PLATFORM"] == "cpu"
    assert ray["runtime_env"]["env_vars"]["VERL_USE_EXTERNAL_MODULES"] == "verl_reason_rft.cpu.trainer"
    assert c["data"]["train_batch_size"] >= 4  # equal-length batches trip verl's nested mrope positions


def test_sft_overlay():
    c = _resolved("reason_rft_sft", "task=spatial_transformation", *cpu_overrides("sft"))
    assert c["trainer"]["device"] == "cpu" and c["engine"]["strategy"] == "fsdp2"
    assert c["model"]["override_config"]["attn_implementation"] == "sdpa"
    assert c["data"]["num_workers"] == 0 and c["model"]["use_remove_padding"] is False


def test_without_the_group_the_recipes_are_unchanged():
    plain = _resolved("reason_rft", "sft_checkpoint=/s")
    assert plain["actor_rollout_ref"]["rollout"]["name"] == "vllm"
    assert plain["trainer"]["v1"]["trainer_mode"] == "reason_rft"
    env_vars = (plain["ray_kwargs"]["ray_init"].get("runtime_env") or {}).get("env_vars") or {}
    assert "VERL_PLATFORM" not in env_vars


def test_unknown_stage_and_env():
    assert cpu_env() == {"VERL_PLATFORM": "cpu"}
    with pytest.raises(ValueError, match="stage"):
        cpu_overrides("eval")


def test_a_split_smaller_than_the_batch_shrinks_the_batch():
    """verl drops the last incomplete batch: 6 SFT rows at batch 8 would train 0 steps (ZeroDivisionError in fit)."""
    sft = _resolved("reason_rft_sft", "task=visual_counting", *cpu_overrides("sft", rows=6))
    assert sft["data"]["train_batch_size"] == sft["data"]["micro_batch_size_per_gpu"] == 6
    assert _resolved("reason_rft_sft", *cpu_overrides("sft", rows=100))["data"]["train_batch_size"] == 8
    grpo = _resolved("reason_rft", "sft_checkpoint=/s", *cpu_overrides("grpo", rows=3))
    assert grpo["data"]["train_batch_size"] == grpo["actor_rollout_ref"]["actor"]["ppo_mini_batch_size"] == 3
