"""The shipped recipes compose on verl's own configs, with the paper's settings (SPEC §7, §8) on the keys verl reads.

The expected values below are written from SPEC §8 (and §7 for validation decoding), not copied from the
recipes. Every test runs from an unrelated temporary working directory.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from omegaconf import OmegaConf

import verl_reason_rft
from verl_reason_rft.recipe_config import CONFIG_PATH, GRPO, MODELS, SFT, SFT_VARIANTS, TRAINER_MODULE, ZERO, compose_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
PACKAGE = Path(verl_reason_rft.__file__).resolve().parent

#: task -> (GRPO epochs, images per prompt, benchmarks), SPEC §2 and §8
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
#: model option -> overrides composing it (tiny has no default path)
MODEL_OVERRIDES = {**{m: [f"model={m}"] for m in HF_IDS}, "tiny": ["model=tiny", "model.path=/m"]}
MODEL_PATHS = {**HF_IDS, "tiny": "/m"}

#: SPEC §8 stage 2 (and §7 for validation sampling), on the keys verl 0.9.1 reads
GRPO_SPEC = {
    "algorithm.adv_estimator": "grpo",
    "algorithm.norm_adv_by_std_in_grpo": True,
    "algorithm.use_kl_in_reward": False,
    "actor_rollout_ref.rollout.name": "vllm",
    "actor_rollout_ref.rollout.n": 8,
    "actor_rollout_ref.rollout.temperature": 0.9,
    "actor_rollout_ref.rollout.top_p": 0.9,
    "actor_rollout_ref.rollout.top_k": 50,
    # the rollout and the agent loop read these, not data.max_*_length
    "actor_rollout_ref.rollout.prompt_length": 4096,
    "actor_rollout_ref.rollout.response_length": 512,
    "data.max_prompt_length": 4096,
    "data.max_response_length": 512,
    "actor_rollout_ref.rollout.val_kwargs.temperature": 0.1,
    "actor_rollout_ref.rollout.val_kwargs.top_p": 0.9,
    "actor_rollout_ref.rollout.val_kwargs.top_k": 50,
    "actor_rollout_ref.rollout.val_kwargs.n": 1,
    "actor_rollout_ref.actor.use_kl_loss": True,
    "actor_rollout_ref.actor.kl_loss_coef": 0.04,
    "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
    "actor_rollout_ref.actor.optim.lr": 1e-6,
    "actor_rollout_ref.actor.optim.lr_scheduler_type": "constant",
    "actor_rollout_ref.actor.optim.lr_warmup_steps_ratio": 0.0,
    "data.train_batch_size": 16,
    # mini-batch = the whole batch of prompts and one pass: one update per rollout batch
    "actor_rollout_ref.actor.ppo_mini_batch_size": 16,
    "actor_rollout_ref.actor.ppo_epochs": 1,
    "data.filter_overlong_prompts": True,
    "data.max_pixels": 480000,
    "data.min_pixels": 3136,
    "data.image_root": None,
    "data.prompt_templates": None,
    "data.custom_cls": {"path": "pkg://verl_reason_rft.data.rl_dataset", "name": "ReasonRFTRLDataset"},
    "reward.reward_manager.source": "importlib",
    "reward.reward_manager.module.path": "pkg://verl_reason_rft.reward_manager",
    # with source=importlib verl loads reward_manager.name from module.path (not module.name)
    "reward.reward_manager.name": "ReasonRFTRewardManager",
    "reward.custom_reward_function": {"path": "pkg://verl_reason_rft.scoring", "name": "compute_score"},
    "reward.reason_rft": {"timeout_s": 5, "num_processes": 2},
    "trainer.v1.trainer_mode": "reason_rft",
    # per-step metrics JSONL for `reason-rft plot` (verl's FileLogger)
    "trainer.logger": ["console", "file"],
}
#: SPEC §8 stage 1
SFT_SPEC = {
    "data.train_batch_size": 16,
    "data.max_length": 4096,
    "data.val_files": None,
    "data.max_pixels": 480000,
    "data.min_pixels": 3136,
    "data.custom_cls": {"path": "pkg://verl_reason_rft.data.sft_dataset", "name": "ReasonRFTSFTDataset"},
    "optim.lr": 1e-5,
    "optim.lr_scheduler_type": "cosine",
    "optim.lr_warmup_steps": 100,
    "optim.weight_decay": 0.1,
    "engine.dtype": "bfloat16",
    "trainer.total_epochs": 1,
    "model._target_": "verl.workers.config.HFModelConfig",
    # verl's hf_model defaults are kept under the model option
    "model.use_remove_padding": True,
    # per-step metrics JSONL for `reason-rft plot` (verl's FileLogger)
    "trainer.logger": ["console", "file"],
}


@pytest.fixture(autouse=True)
def _unrelated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


#: the stage-1 checkpoint stage 2 starts from (reason_rft requires one)
SFT_CHECKPOINT = "/sft/global_step_100/huggingface"


def _composed(config_name: str, *overrides: str):
    start = [f"sft_checkpoint={SFT_CHECKPOINT}"] if config_name == GRPO else []
    return compose_recipe(config_name, ["data_dir=/data", *start, *overrides])


def _resolved(config_name: str, *overrides: str) -> dict:
    return OmegaConf.to_container(_composed(config_name, *overrides), resolve=True)


def _mismatches(config: dict, expected: dict) -> list[str]:
    wrong = []
    for dotted, want in expected.items():
        node = config
        for part in dotted.split("."):
            node = node.get(part, "<missing>") if isinstance(node, dict) else "<missing>"
        if node != want or type(node) is not type(want):
            wrong.append(f"{dotted}: {node!r}, expected {want!r}")
    return wrong


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("config_name", [GRPO, ZERO])
def test_grpo_recipes_per_task_and_model(config_name: str, task: str, model: str) -> None:
    epochs, images, benchmarks = TASKS[task]
    split = "rl" if config_name == GRPO else "zero"
    c = _resolved(config_name, f"task={task}", *MODEL_OVERRIDES[model])
    expected = {
        **GRPO_SPEC,
        "data.train_files": f"/data/{task}/{split}.parquet",
        "data.val_files": [f"/data/{task}/test_{b}.parquet" for b in benchmarks],
        "trainer.total_epochs": epochs,
        "actor_rollout_ref.rollout.limit_images": images,
        # stage 2 starts from the SFT checkpoint, Zero from the base model
        "actor_rollout_ref.model.path": SFT_CHECKPOINT if config_name == GRPO else MODEL_PATHS[model],
    }
    assert not _mismatches(c, expected)
    assert "hf_model" in c["actor_rollout_ref"]["actor"]["checkpoint"]["save_contents"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("variant", SFT_VARIANTS)
@pytest.mark.parametrize("task", TASKS)
def test_sft_recipe_per_task_variant_and_model(task: str, variant: str, model: str) -> None:
    c = _resolved(SFT, f"task={task}", f"variant={variant}", *MODEL_OVERRIDES[model])
    expected = {**SFT_SPEC, "data.train_files": f"/data/{task}/{variant}.parquet", "model.path": MODEL_PATHS[model]}
    assert not _mismatches(c, expected)
    assert "hf_model" in c["checkpoint"]["save_contents"]


def test_mismatches_reports_wrong_missing_and_mistyped_values() -> None:
    config = {"a": {"b": 1, "c": True}}
    assert _mismatches(config, {"a.b": 1, "a.c": True}) == []
    assert len(_mismatches(config, {"a.b": 2, "a.x": 1, "a.c": 1, "a.b.c": 1})) == 4


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("config_name", [GRPO, ZERO])
def test_grpo_recipe_passes_verls_own_checks(config_name: str, task: str) -> None:
    """``main_ppo`` runs ``validate_config`` in the driver; the workers build verl's dataclasses from these nodes."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    c = _composed(config_name, f"task={task}")
    OmegaConf.resolve(c)
    assert need_reference_policy(c) and not need_critic(c)  # KL loss needs the reference; GRPO has no critic
    validate_config(config=c, use_reference_policy=True, use_critic=False)
    rollout = omega_conf_to_dataclass(c.actor_rollout_ref.rollout)
    assert rollout.limit_images == TASKS[task][1]
    assert (rollout.val_kwargs.temperature, rollout.val_kwargs.top_p, rollout.val_kwargs.top_k) == (0.1, 0.9, 50)
    actor = omega_conf_to_dataclass(c.actor_rollout_ref.actor)
    assert (actor.kl_loss_coef, actor.kl_loss_type, actor.optim.lr) == (0.04, "low_var_kl", 1e-6)
    assert "hf_model" in actor.checkpoint.save_contents


def _lr_curve(optim_node, total_steps: int) -> tuple[list[float], float]:
    """The learning rate at each step, from verl's own optimizer and FSDP-engine scheduler builders."""
    import torch
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.config.optimizer import build_optimizer
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    optim = omega_conf_to_dataclass(optim_node)
    optim.total_training_steps = total_steps  # verl injects this at run time
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(1))], optim)
    scheduler = FSDPEngine._build_lr_scheduler(SimpleNamespace(optimizer_config=optim, rank=1), optimizer)
    curve = []
    for _ in range(total_steps):
        curve.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return curve, optimizer.param_groups[0]["weight_decay"]


def test_grpo_learning_rate_is_constant_without_warmup() -> None:
    curve, _ = _lr_curve(_composed(GRPO).actor_rollout_ref.actor.optim, 50)
    assert curve == pytest.approx([1e-6] * 50)


def test_sft_learning_rate_warms_up_100_steps_then_cosine() -> None:
    curve, weight_decay = _lr_curve(_composed(SFT).optim, 1000)
    assert weight_decay == pytest.approx(0.1)
    assert curve[0] == 0.0 and curve[50] == pytest.approx(0.5e-5) and curve[100] == pytest.approx(1e-5)
    assert curve[550] == pytest.approx(0.5e-5)  # half-way through the cosine
    assert curve[-1] < 1e-8


def test_task_group_matches_the_task_registry() -> None:
    from verl_reason_rft.tasks import get_registry

    assert sorted(p.stem for p in (RECIPES / "task").glob("*.yaml")) == sorted(TASKS)
    registry = get_registry()
    for task in TASKS:
        spec = registry.tasks[task]
        c = _resolved(GRPO, f"task={task}")
        assert c["actor_rollout_ref"]["rollout"]["limit_images"] == spec.images_per_sample
        assert sorted(c["data"]["val_files"]) == sorted(f"/data/{task}/test_{ds}.parquet" for ds in spec.test_files.values())


def test_groups_listed_in_code_match_the_files() -> None:
    assert sorted(MODELS) == sorted(p.stem for p in (RECIPES / "model").glob("*.yaml"))
    assert sorted(SFT_VARIANTS) == sorted(p.stem for p in (RECIPES / "variant").glob("*.yaml"))


def test_tiny_model_has_no_default_path() -> None:
    # without a path nothing falls back to verl's placeholder model: the preflight names model.path
    assert _resolved(SFT, "model=tiny")["model"]["path"] is None
    assert _resolved(ZERO, "model=tiny")["actor_rollout_ref"]["model"]["path"] is None


def test_stage_two_starts_from_the_sft_checkpoint() -> None:
    c = _resolved(GRPO, "model=qwen2_vl_7b", "sft_checkpoint=/sft/global_step_7/huggingface")
    assert c["actor_rollout_ref"]["model"]["path"] == "/sft/global_step_7/huggingface"
    assert c["model"]["path"] == "Qwen/Qwen2-VL-7B-Instruct"  # the base model is not what the actor loads


def test_stage_two_without_the_sft_checkpoint_fails_naming_it() -> None:
    """Stage 2 never falls back to the base model: the missing checkpoint stops composition (as the TaskRunner resolves it)."""
    from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

    missing = (MissingMandatoryValue, InterpolationToMissingValueError)
    composed = compose_recipe(GRPO, ["data_dir=/data", "model=qwen2_vl_2b"])
    with pytest.raises(missing, match="Missing mandatory value: sft_checkpoint"):
        OmegaConf.to_container(composed, resolve=True)  # what main_ppo's TaskRunner does before building anything
    with pytest.raises(missing, match="Missing mandatory value: sft_checkpoint"):
        composed.actor_rollout_ref.model.path
    # only Zero starts from the base model
    assert _resolved(ZERO, "model=qwen2_vl_2b")["actor_rollout_ref"]["model"]["path"] == "Qwen/Qwen2-VL-2B-Instruct"


def test_prompt_templates_override_from_the_command_line() -> None:
    c = _resolved(GRPO, "+data.prompt_templates.visual_counting.cot='{problem} Answer in <answer></answer>.'")
    assert c["data"]["prompt_templates"] == {"visual_counting": {"cot": "{problem} Answer in <answer></answer>."}}


@pytest.mark.parametrize("config_name", [GRPO, ZERO, SFT])
def test_data_dir_is_required(config_name: str) -> None:
    with pytest.raises(Exception, match="data_dir"):
        OmegaConf.to_container(compose_recipe(config_name, []).data, resolve=True)


def _cli(config_name: str, overrides: list[str], cwd: Path) -> dict:
    """``python -m <verl trainer> --config-path=pkg://... --cfg job --resolve``, from an unrelated folder."""
    cmd = [sys.executable, "-m", TRAINER_MODULE[config_name], f"--config-path={CONFIG_PATH}", f"--config-name={config_name}",
           *overrides, "--cfg", "job", "--resolve"]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return yaml.safe_load(done.stdout)


@pytest.mark.parametrize("config_name,overrides", [
    (GRPO, ["task=spatial_transformation", "model=qwen2_5_vl_3b", "sft_checkpoint=/sft/global_step_1/huggingface"]),
    (ZERO, ["task=structure_perception"]),
    (SFT, ["task=visual_counting", "model=tiny", "model.path=/m", "variant=ans_sft"]),
])
def test_verl_cli_prints_the_same_config_as_compose_recipe(config_name: str, overrides: list[str], tmp_path: Path) -> None:
    """verl's own entry point gives exactly the config the tests above check (so they hold for the CLI)."""
    printed = _cli(config_name, [*overrides, "data_dir=/d"], tmp_path)
    assert printed == OmegaConf.to_container(compose_recipe(config_name, [*overrides, "data_dir=/d"]), resolve=True)


def _leaf_keys(node, prefix: tuple[str, ...] = ()):
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaf_keys(value, (*prefix, str(key)))
    else:
        yield prefix


#: keys the recipes add for our own code (not verl) -> the module that reads them
OUR_KEYS = {
    "data.image_root": "data/images.py",
    "data.max_pixels": "data/images.py",
    "data.min_pixels": "data/images.py",
    "data.prompt_templates": "data/prompt_config.py",
    "data.prompt_style": "data/prompt_config.py",
    "data.length_filter": "data/rl_dataset.py",
    "reward.reward_kwargs": "reward_manager.py",
    "reward.reason_rft.timeout_s": "reward_manager.py",
    "reward.reason_rft.num_processes": "reward_manager.py",
}


def _verl_runtime_source() -> str:
    """verl's code outside the modules that only declare config fields (dataclasses, YAML)."""
    import verl

    root = Path(verl.__file__).resolve().parent
    declaring = ("workers/config/", "trainer/config/")
    files = [p for p in root.rglob("*.py") if "tests" not in p.parts and not p.relative_to(root).as_posix().startswith(declaring)]
    return "\n".join(p.read_text(errors="ignore") for p in files)


def _unread_keys(recipe_text: str, verl_source: str) -> list[str]:
    """Dotted keys set in a recipe whose name verl's runtime code never mentions (and our code does not read)."""
    body = yaml.safe_load(recipe_text) or {}
    body.pop("defaults", None)
    body.pop("hydra", None)
    body.pop("data_dir", None)  # our own top-level inputs, used through ${data_dir} and ${sft_checkpoint}
    body.pop("sft_checkpoint", None)
    unread = []
    for path in _leaf_keys(body) if body else ():
        dotted = ".".join(path)
        if dotted in OUR_KEYS:
            continue
        if not re.search(rf"\b{re.escape(path[-1])}\b", verl_source):
            unread.append(dotted)
    return unread


def test_every_key_the_recipes_set_is_read() -> None:
    """A key verl declares but never reads (0.9.1's actor.freeze_vision_tower) would only mislead."""
    verl_source = _verl_runtime_source()
    unread = {f.name: _unread_keys(f.read_text(), verl_source) for f in sorted(RECIPES.glob("*.yaml"))}
    assert not any(unread.values()), unread
    for dotted, module in OUR_KEYS.items():
        assert dotted.rsplit(".", 1)[-1] in (PACKAGE / module).read_text(), f"{module} does not read {dotted}"
    # the checker finds such a key
    assert _unread_keys("actor_rollout_ref:\n  actor:\n    freeze_vision_tower: False\n", verl_source) == [
        "actor_rollout_ref.actor.freeze_vision_tower"]


def test_every_group_field_is_used_by_a_recipe() -> None:
    recipes = "\n".join(p.read_text() for p in RECIPES.glob("*.yaml"))
    for group in ("task", "variant"):
        for path in (RECIPES / group).glob("*.yaml"):
            for key in yaml.safe_load(path.read_text()):
                assert f"${{{group}.{key}}}" in recipes, f"{group}/{path.name}: {key} is used by no recipe"


def _fields_without_comment(text: str) -> list[str]:
    missing = []
    previous = ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        is_field = not stripped.startswith(("#", "- ")) and ":" in stripped
        is_section = is_field and stripped.endswith(":")
        if is_field and not is_section and not previous.startswith("#"):
            missing.append(f"{number}: {stripped}")
        previous = stripped
    return missing


def test_every_field_we_set_has_a_comment_above_it() -> None:
    missing = [f"{path.name}:{line}" for path in sorted(RECIPES.rglob("*.yaml")) for line in _fields_without_comment(path.read_text())]
    assert not missing, "fields without a comment above them:\n" + "\n".join(missing)


def test_comment_check_finds_an_uncommented_field() -> None:
    text = "# why\nsection:\n\n  # why\n  a: 1\n  b: 2\n\n  nested:\n    c: 3\n"
    assert _fields_without_comment(text) == ["6: b: 2", "9: c: 3"]
