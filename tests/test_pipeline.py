"""``reason-rft run``: the plan's commands, checkpoint lookup, resuming, and the CPU dry run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from verl_reason_rft.checkpoints import TRACKER, latest_hf_checkpoint
from verl_reason_rft.pipeline import Plan, RunLog, RunOptions, Stage, build_plan, execute, run_pipeline
from verl_reason_rft.recipe_config import compose_recipe


def _plan(tmp_path: Path, variant: str = "reason_rft", model: str = "qwen2_vl_7b", gpus: int = 8) -> Plan:
    options = RunOptions(task="visual_counting", model=model, output_dir=tmp_path / "O", variant=variant)
    return build_plan(options, None if model != "tiny" else "/m", tmp_path / "ds", gpus)


def _overrides(stage: Stage) -> list[str]:
    return [a for a in stage.argv if "=" in a and not a.startswith("-")]


@pytest.mark.parametrize("variant,stages", [
    ("reason_rft", ["prepare", "sft", "grpo", "eval", "score"]),
    ("zero", ["prepare", "grpo", "eval", "score"]),
    ("ans_sft", ["prepare", "sft", "eval", "score"]),
    ("cot_sft", ["prepare", "sft", "eval", "score"]),
])
def test_stages_per_variant(tmp_path: Path, variant: str, stages: list[str]) -> None:
    plan = _plan(tmp_path, variant)
    assert [s.name for s in plan.stages] == stages
    evaluation = plan.stages[-2].argv
    assert evaluation[evaluation.index("--prompt-style") + 1] == ("ans" if variant == "ans_sft" else "cot")
    role = "/actor" if "grpo" in stages else ""
    assert evaluation[evaluation.index("--model") + 1].endswith(f"{role}/huggingface\"")


def test_training_commands_compose_with_the_recipes(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    sft, grpo = plan.stages[1], plan.stages[2]
    assert sft.argv[:4] == ["torchrun", "--standalone", "--nnodes=1", "--nproc-per-node=8"]
    assert "verl.trainer.sft_trainer" in sft.argv and "verl.trainer.main_ppo" in grpo.argv
    start = next(a for a in _overrides(grpo) if a.startswith("actor_rollout_ref.model.path="))
    assert f"O/checkpoints/sft/global_step_$(cat {tmp_path}/O/checkpoints/sft/{TRACKER})/huggingface" in start
    # every override is a valid Hydra override of the recipe it is given to
    composed = {}
    for stage, name in ((sft, "reason_rft_sft"), (grpo, "reason_rft")):
        overrides = [a for a in _overrides(stage) if not a.startswith("actor_rollout_ref.model.path=")]
        composed[stage.name] = cfg = compose_recipe(name, overrides)
        assert cfg.trainer.default_local_dir == str(tmp_path / "O" / "checkpoints" / stage.name)
        assert cfg.trainer.resume_mode == "auto"
    assert composed["grpo"].trainer.n_gpus_per_node == 8
    assert not any(a.startswith("trainer.n_gpus_per_node=") for a in _overrides(sft))  # torchrun decides for SFT
    assert composed["grpo"].actor_rollout_ref.rollout.tensor_model_parallel_size == 2


def test_plan_script_lists_every_command(tmp_path: Path) -> None:
    plan = _plan(tmp_path, model="tiny", gpus=1)
    script = plan.script()
    assert script.startswith("#!/usr/bin/env bash") and script.count("\n# ") == 1 + len(plan.stages)
    assert "model.path=/m" in script and "data.max_prompt_length=3584" in script


def test_latest_hf_checkpoint(tmp_path: Path) -> None:
    assert latest_hf_checkpoint(tmp_path) is None
    for step in (10, 20):
        (tmp_path / f"global_step_{step}" / "actor" / "huggingface").mkdir(parents=True)
        (tmp_path / f"global_step_{step}" / "actor" / "huggingface" / "config.json").write_text("{}")
    (tmp_path / "global_step_30").mkdir()  # being written: the tracker still says 20
    (tmp_path / TRACKER).write_text("20")
    assert latest_hf_checkpoint(tmp_path, "actor") == tmp_path / "global_step_20" / "actor" / "huggingface"
    assert latest_hf_checkpoint(tmp_path) is None  # SFT layout has no actor/ folder
    (tmp_path / "global_step_20" / "actor" / "huggingface" / "config.json").unlink()
    assert latest_hf_checkpoint(tmp_path, "actor") == tmp_path / "global_step_10" / "actor" / "huggingface"


def test_execute_skips_finished_stages_and_stops_at_a_failure(tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    plan = _plan(tmp_path)
    plan.stages = [
        Stage("one", [sys.executable, "-c", f"open({str(tmp_path / 'ran_one')!r}, 'a').write('x')"]),
        Stage("two", [sys.executable, "-c", f"import os, sys; sys.exit(0 if os.path.exists({str(flag)!r}) else 3)"]),
    ]
    log = RunLog(plan.root / "run.log", echo=lambda _: None)
    assert execute(plan, plan.stages, log) == 3
    assert plan.done(plan.stages[0]) and not plan.done(plan.stages[1])
    flag.touch()
    assert execute(plan, plan.stages, log) == 0
    assert (tmp_path / "ran_one").read_text() == "x"  # the finished stage did not run again
    assert json.loads(plan.marker(plan.stages[1]).read_text())["stage"] == "two"
    text = (plan.root / "run.log").read_text()
    assert "[one] already done" in text and "failed (exit 3)" in text and "Re-run the same" in text


def test_a_missing_checkpoint_stops_the_next_stage(tmp_path: Path) -> None:
    plan = _plan(tmp_path, variant="cot_sft")
    log = RunLog(plan.root / "run.log", echo=lambda _: None)
    assert execute(plan, [plan.stages[2]], log) == 1
    assert "no Hugging Face checkpoint" in (plan.root / "run.log").read_text()


def test_dry_run_on_sample_data(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    out = tmp_path / "demo"
    options = RunOptions(task="spatial_transformation", model="tiny", output_dir=out, model_path=str(tiny_model_dir),
                         dry_run=True, max_rows=4)
    assert run_pipeline(options) == 0, capsys.readouterr().out[-3000:]
    text = capsys.readouterr().out
    assert "preflight: OK" in text and "training needs GPUs" in text and "verl.trainer.main_ppo" in text
    assert (out / "data" / "spatial_transformation" / "rl.parquet").is_file() and (out / ".stages" / "prepare.done").is_file()
    assert "torchrun" in (out / "plan.sh").read_text()
    assert run_pipeline(options) == 0  # re-run: prepare is skipped
    assert "[prepare] already done" in (out / "run.log").read_text()


def test_dry_run_fails_on_a_broken_setting(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    options = RunOptions(task="visual_counting", model="tiny", output_dir=tmp_path / "o", model_path=str(tiny_model_dir),
                         dry_run=True, max_rows=2, sft_size=100)  # every sample record goes to SFT: no GRPO rows
    assert run_pipeline(options) == 1
    assert "rl.parquet has no rows" in capsys.readouterr().out
