"""The shipped recipes compose on verl's own configs, with the paper's settings (SPEC §8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from verl_reason_rft.recipe_config import CONFIG_PATH, GRPO, MODELS, SFT, TRAINER_MODULE, ZERO, compose_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TASKS = {
    "visual_counting": (1, 1, ["clevr_math", "super_clevr"]),
    "structure_perception": (5, 1, ["geomath", "geometry3k"]),
    "spatial_transformation": (1, 2, ["trance", "trance_left", "trance_right"]),
}
HF_IDS = {
    "qwen2_vl_2b": "Qwen/Qwen2-VL-2B-Instruct",
    "qwen2_vl_7b": "Qwen/Qwen2-VL-7B-Instruct",
    "qwen2_5_vl_3b": "Qwen/Qwen2.5-VL-3B-Instruct",
    "qwen2_5_vl_7b": "Qwen/Qwen2.5-VL-7B-Instruct",
}


def _resolved(config_name: str, *overrides: str) -> dict:
    return OmegaConf.to_container(compose_recipe(config_name, ["data_dir=/data", *overrides]), resolve=True)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("config_name", [GRPO, ZERO])
def test_grpo_recipes_per_task(config_name: str, task: str) -> None:
    epochs, images, benchmarks = TASKS[task]
    c = _resolved(config_name, f"task={task}")
    split = "rl" if config_name == GRPO else "zero"
    assert c["data"]["train_files"] == f"/data/{task}/{split}.parquet"
    assert c["data"]["val_files"] == [f"/data/{task}/test_{b}.parquet" for b in benchmarks]
    assert c["trainer"]["total_epochs"] == epochs
    rollout, actor = c["actor_rollout_ref"]["rollout"], c["actor_rollout_ref"]["actor"]
    assert rollout["limit_images"] == images
    assert (rollout["n"], rollout["temperature"], rollout["top_p"], rollout["top_k"]) == (8, 0.9, 0.9, 50)
    assert (c["data"]["max_prompt_length"], c["data"]["max_response_length"]) == (4096, 512)
    assert c["data"]["filter_overlong_prompts"] is True
    assert (c["data"]["max_pixels"], c["data"]["min_pixels"], c["data"]["prompt_templates"]) == (480000, 3136, None)
    assert c["data"]["custom_cls"] == {"path": "pkg://verl_reason_rft.data.rl_dataset", "name": "ReasonRFTRLDataset"}
    assert c["algorithm"]["adv_estimator"] == "grpo" and c["algorithm"]["use_kl_in_reward"] is False
    assert (actor["use_kl_loss"], actor["kl_loss_coef"], actor["kl_loss_type"]) == (True, 0.04, "low_var_kl")
    assert (actor["optim"]["lr"], actor["optim"]["lr_scheduler_type"], actor["optim"]["lr_warmup_steps_ratio"]) == (1e-6, "constant", 0.0)
    assert c["data"]["train_batch_size"] == actor["ppo_mini_batch_size"] == 16 and actor["ppo_epochs"] == 1
    assert actor["freeze_vision_tower"] is False
    assert "hf_model" in actor["checkpoint"]["save_contents"]
    reward = c["reward"]
    assert reward["reward_manager"]["source"] == "importlib"
    assert reward["reward_manager"]["module"]["path"] == "pkg://verl_reason_rft.reward_manager"
    assert reward["reward_manager"]["name"] == "ReasonRFTRewardManager"
    assert reward["custom_reward_function"] == {"path": "pkg://verl_reason_rft.scoring", "name": "compute_score"}
    assert reward["reason_rft"] == {"timeout_s": 5, "num_processes": 2}


@pytest.mark.parametrize("model", HF_IDS)
def test_model_group_sets_the_start_model(model: str) -> None:
    assert _resolved(GRPO, f"model={model}")["actor_rollout_ref"]["model"]["path"] == HF_IDS[model]
    sft = _resolved(SFT, f"model={model}")["model"]
    assert sft["path"] == HF_IDS[model] and sft["_target_"] == "verl.workers.config.HFModelConfig"
    assert sft["use_remove_padding"] is True  # verl's hf_model defaults are kept


def test_tiny_model_needs_a_path() -> None:
    assert _resolved(GRPO, "model=tiny", "model.path=/m")["actor_rollout_ref"]["model"]["path"] == "/m"
    # without a path nothing falls back to verl's placeholder model: the preflight names model.path
    assert _resolved(SFT, "model=tiny")["model"]["path"] is None


@pytest.mark.parametrize("variant,split", [("sft", "sft"), ("cot_sft", "cot_sft"), ("ans_sft", "ans_sft")])
@pytest.mark.parametrize("task", TASKS)
def test_sft_recipe(task: str, variant: str, split: str) -> None:
    c = _resolved(SFT, f"task={task}", f"variant={variant}")
    assert c["data"]["train_files"] == f"/data/{task}/{split}.parquet"
    assert (c["data"]["train_batch_size"], c["data"]["max_length"]) == (16, 4096)
    assert c["data"]["custom_cls"] == {"path": "pkg://verl_reason_rft.data.sft_dataset", "name": "ReasonRFTSFTDataset"}
    optim = c["optim"]
    assert (optim["lr"], optim["lr_scheduler_type"], optim["lr_warmup_steps"], optim["weight_decay"]) == (1e-5, "cosine", 100, 0.1)
    assert c["trainer"]["total_epochs"] == 1 and c["engine"]["dtype"] == "bfloat16"
    assert "hf_model" in c["checkpoint"]["save_contents"]


def test_prompt_templates_override_from_the_command_line() -> None:
    c = _resolved(GRPO, "+data.prompt_templates.visual_counting.cot='{problem} Answer in <answer></answer>.'")
    assert c["data"]["prompt_templates"] == {"visual_counting": {"cot": "{problem} Answer in <answer></answer>."}}


def test_data_dir_is_required() -> None:
    with pytest.raises(Exception, match="data_dir"):
        OmegaConf.to_container(compose_recipe(GRPO, []).data, resolve=True)


def _cli(config_name: str, overrides: list[str], cwd: Path) -> dict:
    """``python -m <verl trainer> --config-path=pkg://... --cfg job --resolve``, from an unrelated folder."""
    cmd = [sys.executable, "-m", TRAINER_MODULE[config_name], f"--config-path={CONFIG_PATH}", f"--config-name={config_name}",
           *overrides, "--cfg", "job", "--resolve"]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return yaml.safe_load(done.stdout)


def test_main_ppo_cli_prints_the_composed_recipe(tmp_path: Path) -> None:
    c = _cli(GRPO, ["task=spatial_transformation", "model=qwen2_5_vl_3b", "data_dir=/d"], tmp_path)
    assert c["actor_rollout_ref"]["rollout"]["limit_images"] == 2
    assert c["actor_rollout_ref"]["model"]["path"] == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert c["data"]["val_files"][0] == "/d/spatial_transformation/test_trance.parquet"
    z = _cli(ZERO, ["task=structure_perception", "data_dir=/d"], tmp_path)
    assert z["data"]["train_files"] == "/d/structure_perception/zero.parquet" and z["trainer"]["total_epochs"] == 5


def test_sft_trainer_cli_prints_the_composed_recipe(tmp_path: Path) -> None:
    c = _cli(SFT, ["task=visual_counting", "model=tiny", "model.path=/m", "variant=ans_sft", "data_dir=/d"], tmp_path)
    assert c["data"]["train_files"] == "/d/visual_counting/ans_sft.parquet"
    assert c["model"]["path"] == "/m" and c["optim"]["lr"] == 1e-5


def test_models_listed_in_code_match_the_group() -> None:
    assert sorted(MODELS) == sorted(p.stem for p in (RECIPES / "model").glob("*.yaml"))


def test_every_field_we_set_has_a_comment_above_it() -> None:
    missing = []
    for path in sorted(RECIPES.rglob("*.yaml")):
        previous = ""
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if not stripped:
                continue
            is_field = not stripped.startswith(("#", "- ")) and ":" in stripped
            is_section = is_field and stripped.endswith(":")
            if is_field and not is_section and not previous.startswith("#"):
                missing.append(f"{path.name}:{number}: {stripped}")
            previous = stripped
    assert not missing, "fields without a comment above them:\n" + "\n".join(missing)
