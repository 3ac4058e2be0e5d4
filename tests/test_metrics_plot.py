"""``reason-rft plot``: training curves from JSONL written by verl's own ``Tracking`` ``file`` backend."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from PIL import Image

from verl_reason_rft.cli import main
from verl_reason_rft.metrics_plot import PANELS, MetricsFileError, plot_metrics, read_metrics, render_metrics_plot
from verl_reason_rft.training_metrics import reward_extra_metrics

ALL_PANELS = tuple(panel.name for panel in PANELS)


def _tracked(path: Path, monkeypatch, steps: list[dict], experiment: str) -> Path:
    """Log ``steps`` (one ``Tracking.log`` call each, step numbers from 1) with verl's file backend."""
    from verl.utils.tracking import Tracking

    path.parent.mkdir(parents=True, exist_ok=True)  # verl's FileLogger opens the path as given
    monkeypatch.setenv("VERL_FILE_LOGGER_PATH", str(path))
    tracking = Tracking(project_name="reason_rft", experiment_name=experiment, default_backend=["console", "file"])
    for step, metrics in enumerate(steps, start=1):
        tracking.log(data=metrics, step=step)
    tracking.finish()
    return path


def _grpo_metrics(step: int) -> dict:
    """One GRPO step's metrics with the names verl 0.9.1 and our trainer log."""
    from verl import DataProto
    from verl.trainer.ppo.metric_utils import compute_data_metrics

    n, prompt_len, response_len = 4, 6, 5
    generator = torch.Generator().manual_seed(step)
    lengths = torch.tensor([5, 3, 4, 2])
    response_mask = (torch.arange(response_len)[None, :] < lengths[:, None]).float()
    scores = torch.zeros(n, response_len)
    scores[:, 0] = torch.tensor([0.0, 1.0, 2.0, 1.0]) * step / 3
    batch = DataProto.from_dict(
        {
            "token_level_scores": scores,
            "token_level_rewards": scores,
            "advantages": torch.randn(n, response_len, generator=generator),
            "returns": torch.randn(n, response_len, generator=generator),
            "prompts": torch.ones(n, prompt_len, dtype=torch.long),
            "responses": torch.ones(n, response_len, dtype=torch.long),
            "response_mask": response_mask,
            "attention_mask": torch.cat([torch.ones(n, prompt_len), response_mask], dim=1),
        }
    )
    metrics = compute_data_metrics(batch, use_critic=False)
    infos = [{"score": 1.0, "format": min(1.0, 0.2 * step + i / 8), "accuracy": 0.1 * step} for i in range(n)]
    metrics.update(reward_extra_metrics(infos, ["clevr_math"] * n))
    metrics.update({"actor/kl_loss": 0.001 * step, "actor/pg_loss": -0.1, "actor/grad_norm": float("nan")})
    return metrics


@pytest.fixture()
def grpo_jsonl(tmp_path, monkeypatch) -> Path:
    steps = [_grpo_metrics(step) for step in (1, 2, 3)]
    return _tracked(tmp_path / "grpo" / "metrics.jsonl", monkeypatch, steps, "visual_counting-grpo")


@pytest.fixture()
def sft_jsonl(tmp_path, monkeypatch) -> Path:
    steps = [{"train/loss": 6.5 - step, "train/lr": 1e-7 * step, "train/grad_norm": 2.0} for step in range(4)]
    return _tracked(tmp_path / "sft" / "metrics.jsonl", monkeypatch, steps, "visual_counting-sft")


def test_metric_names_are_the_ones_verl_logs():
    """The KL and SFT-loss names are built inside verl's loss and trainer code; fail if verl renames them."""
    from verl.trainer import sft_trainer
    from verl.trainer.ppo.v1 import trainer_base
    from verl.workers.utils import losses

    assert 'metrics["kl_loss"]' in inspect.getsource(losses.ppo_loss)
    assert 'rename_dict(output["metrics"], "actor/")' in inspect.getsource(trainer_base)
    fit = inspect.getsource(sft_trainer.SFTTrainer.fit)
    assert 'for k in ["loss"' in fit and 'metrics[f"train/{k}"]' in fit


def test_reads_what_verls_file_logger_wrote(grpo_jsonl):
    run = read_metrics(grpo_jsonl)
    assert [step for step, _ in run.series["critic/score/mean"]] == [1, 2, 3]
    assert run.series["critic/score/mean"][2][1] == pytest.approx(1.0)
    assert run.series["response_length/mean"][0][1] == pytest.approx(3.5)
    assert run.series["reason_rft/accuracy/mean"][1][1] == pytest.approx(0.2)
    assert "actor/grad_norm" not in run.series  # NaN is left out


def _png_panels(path: Path) -> list[str]:
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG" and image.width > 300 and image.height > 200
        return image.text["Description"].removeprefix("panels: ").split(",")


def test_sft_and_grpo_draw_every_panel(grpo_jsonl, sft_jsonl, tmp_path):
    out = tmp_path / "plots" / "training.png"
    result = render_metrics_plot([sft_jsonl, grpo_jsonl], out)
    assert result.path == out and result.drawn == ALL_PANELS and result.notes == ()
    assert _png_panels(out) == list(ALL_PANELS)
    assert plot_metrics([grpo_jsonl, sft_jsonl], tmp_path / "again.png") == tmp_path / "again.png"


def test_missing_metrics_are_skipped_with_a_note(grpo_jsonl, sft_jsonl, tmp_path):
    grpo = render_metrics_plot([grpo_jsonl], tmp_path / "grpo.png")
    assert grpo.drawn == ("reward", "format", "accuracy", "kl", "response_length")
    assert len(grpo.notes) == 1 and grpo.notes[0].startswith("sft_loss: no train/loss in")
    assert _png_panels(tmp_path / "grpo.png") == list(grpo.drawn)
    sft = render_metrics_plot([sft_jsonl], tmp_path / "sft.png")
    assert sft.drawn == ("sft_loss",) and len(sft.notes) == 5


def test_reward_falls_back_to_our_score_mean(tmp_path, monkeypatch):
    path = _tracked(tmp_path / "m.jsonl", monkeypatch, [{"reason_rft/score/mean": 0.5}] * 2, "x")
    assert render_metrics_plot([path], tmp_path / "m.png").drawn == ("reward",)


def test_a_malformed_line_names_file_and_line_and_writes_nothing(grpo_jsonl, tmp_path):
    good = grpo_jsonl.read_text().splitlines()
    out = tmp_path / "out.png"
    cases = ("{truncated", '["a list"]', '{"step": "3", "data": {}}', '{"step": 3, "data": 1.5}')
    for bad in cases:
        grpo_jsonl.write_text("\n".join([*good[:2], bad, good[2]]) + "\n")
        with pytest.raises(MetricsFileError, match=rf"{grpo_jsonl}:3: "):
            render_metrics_plot([grpo_jsonl], out)
        assert not out.exists()


def test_nothing_to_draw_is_an_error(tmp_path, monkeypatch):
    path = _tracked(tmp_path / "m.jsonl", monkeypatch, [{"timing_s/step": 1.0}], "x")
    with pytest.raises(MetricsFileError, match="none of the plotted metrics"):
        render_metrics_plot([path], tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()


def test_plot_command(grpo_jsonl, sft_jsonl, tmp_path, capsys):
    assert main(["plot", str(sft_jsonl), str(grpo_jsonl)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {sft_jsonl.parent / 'training_metrics.png'} (panels: {', '.join(ALL_PANELS)})" in out
    assert main(["plot", str(grpo_jsonl), "--output", str(tmp_path / "g.png")]) == 0
    assert "skipped sft_loss: no train/loss" in capsys.readouterr().out
    assert _png_panels(tmp_path / "g.png")[0] == "reward"
    grpo_jsonl.write_text(grpo_jsonl.read_text() + "not json\n")
    assert main(["plot", str(grpo_jsonl), "--output", str(tmp_path / "bad.png")]) == 1
    assert f"{grpo_jsonl}:4: not JSON" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "missing.jsonl")]) == 1
    assert "does not exist" in capsys.readouterr().err
