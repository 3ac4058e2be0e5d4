"""``latest_hf_checkpoint`` only hands out Hugging Face folders that hold weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from verl_reason_rft.checkpoints import TRACKER, WeightlessCheckpoint, latest_hf_checkpoint


def _hf(root: Path, step: int, role: str = "", weights: str | None = "model.safetensors") -> Path:
    hf = root / f"global_step_{step}" / role / "huggingface"
    hf.mkdir(parents=True)
    (hf / "config.json").write_text("{}")
    (hf / "tokenizer_config.json").write_text("{}")
    if weights:
        (hf / weights).write_text("{}")
    return hf


@pytest.mark.parametrize("weights", ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"])
def test_a_folder_with_weights_is_returned(tmp_path: Path, weights: str) -> None:
    hf = _hf(tmp_path, 100, weights=weights)
    (tmp_path / TRACKER).write_text("100")
    assert latest_hf_checkpoint(tmp_path) == hf


def test_a_weightless_folder_is_refused_naming_it(tmp_path: Path) -> None:
    """verl writes config and tokenizer to huggingface/ even without hf_model in save_contents."""
    _hf(tmp_path, 10, "actor")
    hf = _hf(tmp_path, 20, "actor", weights=None)
    (tmp_path / TRACKER).write_text("20")
    with pytest.raises(WeightlessCheckpoint, match="no model weights") as caught:
        latest_hf_checkpoint(tmp_path, "actor")
    assert str(hf) in str(caught.value) and "save_contents" in str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)  # the pipeline reports it as "cannot start"


def test_pipeline_stage_cannot_start_from_a_weightless_checkpoint(tmp_path: Path) -> None:
    from verl_reason_rft.pipeline import Plan, RunOptions, Stage, _resolved_argv, _tracker_path

    root = tmp_path / "O"
    sft = root / "checkpoints" / "sft"
    hf = _hf(sft, 100, weights=None)
    (sft / TRACKER).write_text("100")
    plan = Plan(RunOptions(task="visual_counting", model="tiny", output_dir=root), gpus=1)
    stage = Stage("grpo", ["python", f"sft_checkpoint={_tracker_path(sft)}"])
    with pytest.raises(WeightlessCheckpoint, match=str(hf)):
        _resolved_argv(stage, plan)
    (hf / "model.safetensors").write_text("{}")
    assert _resolved_argv(stage, plan)[-1] == f"sft_checkpoint={hf}"
