"""End to end on the CPU: ``reason-rft run --model tiny`` trains for real (SFT -> GRPO -> eval -> score -> plot).

One run of the README's main command on the embedded sample data, through stock verl 0.9.1 and the
CPU kit (``verl_reason_rft.cpu``), then a second run that must resume instead of redoing, then a
GRPO restart that must load its checkpoint. Takes several minutes on 2 cores: the budget is the
whole CI's 15 minutes for this file.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from verl_reason_rft.checkpoints import latest_hf_checkpoint
from verl_reason_rft.scoring import compute_score

TASK, BENCHMARKS = "spatial_transformation", {"trance", "trance_left", "trance_right"}
pytestmark = pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the CPU path runs where no GPU is visible")


def _run(out: Path, *extra: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "verl_reason_rft", "run", "--task", TASK, "--model", "tiny", "--output-dir", str(out), *extra]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    print(result.stdout[-6000:], result.stderr[-3000:], sep="\n")
    return result


def _weights(folder: Path) -> dict:
    tensors = {}
    for file in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(file))
    assert tensors, f"no weights in {folder}"
    return tensors


def _changed(before: dict, after: dict) -> int:
    assert before.keys() == after.keys()
    return sum(not before[k].float().equal(after[k].float()) for k in before)


def _metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _value(step: dict, key: str) -> float:
    """A metric of one line of verl's file logger (``{"step": N, "data": {...}}`` or flat)."""
    data = step.get("data", step)
    return float(data[key])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cpu_run") / "demo"
    result = _run(out)
    assert result.returncode == 0, (out / "run.log").read_text() if (out / "run.log").is_file() else result.stderr
    return out


def test_sft_trained_the_model(run_dir):
    sft = latest_hf_checkpoint(run_dir / "checkpoints" / "sft")
    changed = _changed(_weights(run_dir / "models" / "tiny"), _weights(sft))
    print(f"SFT changed {changed} tensors")
    assert changed > 0
    losses = [_value(s, "train/loss") for s in _metrics(run_dir / "metrics" / "sft.jsonl")]
    print(f"SFT loss {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} steps")
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]


def test_grpo_started_from_sft_and_updated_the_actor(run_dir):
    sft = latest_hf_checkpoint(run_dir / "checkpoints" / "sft")
    command = json.loads((run_dir / ".stages" / "grpo.done").read_text())["command"]
    assert f"sft_checkpoint={sft}" in command
    grpo = latest_hf_checkpoint(run_dir / "checkpoints" / "grpo", "actor")
    changed = _changed(_weights(sft), _weights(grpo))
    print(f"GRPO changed {changed} tensors of the SFT model")
    assert changed > 0


def test_step_metrics_are_finite_and_format_improved_over_the_base_model(run_dir, tmp_path):
    steps = _metrics(run_dir / "metrics" / "grpo.jsonl")
    assert steps
    for step in steps:
        for key in ("actor/grad_norm", "reason_rft/format/mean", "reason_rft/accuracy/mean", "critic/score/mean"):
            assert math.isfinite(_value(step, key)), (key, step)
    after_sft = _value(steps[0], "reason_rft/format/mean")  # the first step's rollouts come from the SFT model

    # the untrained tiny model on the same kind of prompts, with the same HF engine the pipeline uses
    subprocess.run([sys.executable, "-m", "verl_reason_rft", "eval", "--engine", "hf", "--threads", "1",
                    "--model", str(run_dir / "models" / "tiny"), "--benchmarks", "trance", "--limit", "8",
                    "--max-new-tokens", "64", "--data-dir", str(run_dir / "data"), "--output-dir", str(tmp_path)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    records = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    before = sum(compute_score(r["data_source"], r["prediction"], r["answer"])["format"] for r in records) / len(records)
    print(f"format reward: base model {before:.3f}, after SFT (GRPO step 1 rollouts) {after_sft:.3f}")
    assert after_sft > before


def test_evaluation_scored_every_benchmark_and_plotted(run_dir):
    records = [json.loads(line) for line in (run_dir / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert {r["data_source"] for r in records} == BENCHMARKS
    assert json.loads((run_dir / "eval" / "eval_config.json").read_text())["engine"] == "hf"
    for name in ("scores.md", "scores.json", "scores.png"):
        assert (run_dir / "eval" / name).stat().st_size > 0
    assert (run_dir / "training_metrics.png").stat().st_size > 0


def test_second_run_resumes_instead_of_redoing(run_dir):
    before = {p.name: p.stat().st_mtime_ns for p in (run_dir / ".stages").iterdir()}
    result = _run(run_dir, timeout=300)
    assert result.returncode == 0
    assert result.stdout.count("already done") == len(before)
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / ".stages").iterdir()} == before


def test_grpo_restarted_loads_its_checkpoint(run_dir):
    """A GRPO stage started again (its marker gone) continues from its last checkpoint (resume_mode=auto)."""
    grpo_dir = run_dir / "checkpoints" / "grpo"
    last = latest_hf_checkpoint(grpo_dir, "actor").parent.parent
    for stage in ("grpo", "eval", "score", "plot"):
        (run_dir / ".stages" / f"{stage}.done").unlink()
    log = run_dir / "logs" / "grpo.log"
    start = log.stat().st_size
    result = _run(run_dir)
    assert result.returncode == 0
    assert str(last) in log.read_text()[start:]  # verl's "Resuming from <last checkpoint>"
    assert latest_hf_checkpoint(grpo_dir, "actor").parent.parent == last  # nothing trained twice
