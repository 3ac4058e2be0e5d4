"""GPU counts that do not divide the SFT batch or GRPO's rollouts are refused before anything starts, naming the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from verl_reason_rft.gpu_layout import grpo_problems, plan_problems, sft_problems
from verl_reason_rft.pipeline import RunOptions, UsageError, build_plan, run_pipeline
from verl_reason_rft.preflight import StageCheck, run_preflight
from verl_reason_rft.recipe_config import GRPO, SFT, ZERO, compose_recipe


@pytest.mark.parametrize("gpus", [1, 2, 4, 8, 16])
def test_gpu_counts_dividing_the_batches_pass(gpus: int) -> None:
    assert sft_problems(compose_recipe(SFT, ["data_dir=/d"]), gpus) == []
    tp = "actor_rollout_ref.rollout.tensor_model_parallel_size=1"  # verl's default is 2 (what `reason-rft run` sets for 2B)
    assert grpo_problems(compose_recipe(ZERO, ["data_dir=/d", f"trainer.n_gpus_per_node={gpus}", tp])) == []


@pytest.mark.parametrize("gpus", [3, 6, 12])
def test_sft_batch_not_divisible_is_refused_naming_the_batch(gpus: int) -> None:
    (problem,) = sft_problems(compose_recipe(SFT, ["data_dir=/d"]), gpus)
    assert "data.train_batch_size=16" in problem and f"{gpus} data-parallel ranks" in problem
    assert f"silently train on {16 // gpus * gpus} samples" in problem


def test_sequence_parallel_size_reduces_the_data_parallel_ranks() -> None:
    cfg = compose_recipe(SFT, ["data_dir=/d", "engine.ulysses_sequence_parallel_size=2"])
    assert sft_problems(cfg, 8) == []  # 4 data-parallel ranks
    assert "6 data-parallel ranks (12 GPUs" in sft_problems(cfg, 12)[0]
    assert "not a multiple of engine.ulysses_sequence_parallel_size=2" in sft_problems(cfg, 3)[0]


@pytest.mark.parametrize("overrides,named", [
    (["trainer.n_gpus_per_node=6"], "trainer.n_gpus_per_node=6"),
    (["trainer.n_gpus_per_node=8", "trainer.nnodes=3"], "trainer.nnodes=3"),
    (["trainer.n_gpus_per_node=8", "trainer.nnodes=4", "actor_rollout_ref.rollout.n=5"], "16 × 5 = 80 rollouts"),
])
def test_grpo_rollouts_not_divisible_are_refused_naming_the_settings(overrides: list[str], named: str) -> None:
    problems = grpo_problems(compose_recipe(GRPO, ["data_dir=/d", "sft_checkpoint=/s", *overrides]))
    assert len(problems) == 1 and "data.train_batch_size × actor_rollout_ref.rollout.n" in problems[0] and named in problems[0]


def test_tensor_parallel_must_divide_the_gpus_per_node() -> None:
    cfg = compose_recipe(ZERO, ["data_dir=/d", "trainer.n_gpus_per_node=4", "actor_rollout_ref.rollout.tensor_model_parallel_size=8"])
    assert any("tensor_model_parallel_size=8" in p for p in grpo_problems(cfg))


def test_plan_with_six_gpus_names_both_stages(tmp_path: Path) -> None:
    options = RunOptions(task="visual_counting", model="qwen2_vl_2b", output_dir=tmp_path / "O")
    problems = plan_problems(build_plan(options, None, tmp_path / "ds", 6).checks)
    assert len(problems) == 2 and problems[0].startswith("SFT: data.train_batch_size=16") and problems[1].startswith("GRPO:")
    assert plan_problems(build_plan(options, None, tmp_path / "ds", 8).checks) == []


def test_run_refuses_before_writing_anything(tmp_path: Path, tiny_model_dir: Path) -> None:
    options = RunOptions(task="visual_counting", model="tiny", model_path=str(tiny_model_dir), output_dir=tmp_path / "O",
                         gpus=6, dry_run=True)
    with pytest.raises(UsageError, match=r"--gpus 6 .*\n.*data\.train_batch_size=16"):
        run_pipeline(options, echo=lambda _: None)
    assert not (tmp_path / "O").exists() or not any((tmp_path / "O").iterdir())


def test_preflight_reports_the_sft_gpu_count(tmp_path: Path, tiny_model_dir: Path) -> None:
    overrides = ("task=visual_counting", "model=tiny", f"model.path={tiny_model_dir}", f"data_dir={tmp_path}")
    report = run_preflight([StageCheck("sft", SFT, overrides, gpus=6)], max_rows=1)
    assert any(p.severity == "error" and "data.train_batch_size=16" in p.message for p in report.problems)
    report = run_preflight([StageCheck("sft", SFT, overrides, gpus=8)], max_rows=1)
    assert not any("data-parallel" in p.message for p in report.problems)
