"""Training curves from the metrics JSONL that verl's ``file`` tracking backend writes (SFT and GRPO).

verl's ``FileLogger`` (``verl/utils/tracking.py``, ``trainer.logger`` containing ``"file"``) writes one
line per ``Tracking.log`` call: ``{"step": N, "data": {"metric/name": value, ...}}``, to
``$VERL_FILE_LOGGER_PATH`` or ``$VERL_FILE_LOGGER_ROOT/<project_name>/<experiment_name>.jsonl``.
A step can span several lines (validation metrics are logged apart); they are merged per metric.
:func:`plot_metrics` draws one panel per known curve found in any of the files, one line per file.
"""

from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from verl_reason_rft.data_prep.atomic import write_bytes_atomic

logger = logging.getLogger(__name__)


class MetricsFileError(ValueError):
    """A metrics JSONL cannot be read; the message names ``file:line``."""


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    #: metric names, first found wins (per file)
    keys: tuple[str, ...]


#: The curves drawn, in order. Metric names are verl 0.9.1's (``trainer/ppo/metric_utils.py``,
#: ``workers/utils/losses.py`` renamed under ``actor/`` in ``trainer/ppo/v1/trainer_base.py``,
#: ``trainer/sft_trainer.py``) and ours (``verl_reason_rft.training_metrics``).
PANELS = (
    Panel("reward", "reward (mean score)", ("critic/score/mean", "reason_rft/score/mean")),
    Panel("format", "format reward (mean)", ("reason_rft/format/mean",)),
    Panel("accuracy", "accuracy reward (mean)", ("reason_rft/accuracy/mean",)),
    Panel("kl", "KL loss to the reference", ("actor/kl_loss",)),
    Panel("response_length", "response length (tokens, mean)", ("response_length/mean",)),
    Panel("sft_loss", "SFT loss", ("train/loss",)),
)


@dataclass
class MetricsRun:
    """One metrics file: ``series[metric] = [(step, value), ...]`` in file order."""

    path: Path
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricsPlot:
    path: Path
    #: names of the panels drawn (see :data:`PANELS`)
    drawn: tuple[str, ...]
    #: one line per panel left out, saying why
    notes: tuple[str, ...]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def read_metrics(path: str | Path) -> MetricsRun:
    """Parse one metrics JSONL; a malformed line raises :class:`MetricsFileError` naming ``file:line``.

    Blank lines are skipped; non-numeric or non-finite values (strings, NaN) are left out of the curves.
    """
    path = Path(path)
    run = MetricsRun(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"metrics file {path} does not exist") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise MetricsFileError(f"{where}: not JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise MetricsFileError(f"{where}: expected an object {{'step': N, 'data': {{...}}}}, got {line:.80}")
        step, data = record.get("step"), record.get("data")
        if isinstance(step, bool) or not isinstance(step, int):
            raise MetricsFileError(f"{where}: field 'step' must be an integer, got {step!r:.40}")
        if not isinstance(data, dict):
            raise MetricsFileError(f"{where}: field 'data' must be an object of metrics, got {data!r:.40}")
        for key, value in data.items():
            value = _number(value)
            if value is not None:
                run.series.setdefault(key, []).append((step, value))
    return run


def _labels(runs: Sequence[MetricsRun]) -> list[str]:
    stems = [run.path.stem for run in runs]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{run.path.parent.name}/{run.path.stem}" for run in runs]


def render_png(runs: Sequence[MetricsRun]) -> tuple[bytes, tuple[str, ...], tuple[str, ...]]:
    """The PNG bytes, the panels drawn and notes on the panels left out (Agg, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = _labels(runs)
    plan: list[tuple[Panel, list[tuple[str, str, list[tuple[int, float]]]]]] = []
    notes: list[str] = []
    for panel in PANELS:
        lines = []
        for run, label in zip(runs, labels):
            key = next((k for k in panel.keys if run.series.get(k)), None)
            if key is not None:
                lines.append((label, key, run.series[key]))
        if lines:
            plan.append((panel, lines))
        else:
            notes.append(f"{panel.name}: no {' or '.join(panel.keys)} in {', '.join(str(r.path) for r in runs)}")
    if not plan:
        raise MetricsFileError(
            "none of the plotted metrics is in " + ", ".join(str(r.path) for r in runs) + ": " + "; ".join(notes)
        )

    columns = 1 if len(plan) == 1 else 2
    rows = math.ceil(len(plan) / columns)
    fig = Figure(figsize=(6.0 * columns, 3.3 * rows), dpi=110)
    FigureCanvasAgg(fig)
    for index, (panel, lines) in enumerate(plan, start=1):
        ax = fig.add_subplot(rows, columns, index)
        for label, key, points in lines:
            steps, values = zip(*sorted(points))
            ax.plot(steps, values, marker="o" if len(points) <= 30 else None, markersize=3, label=f"{label} ({key})")
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("Reason-RFT training metrics", fontsize=11)
    fig.tight_layout()
    drawn = tuple(panel.name for panel, _ in plan)
    buffer = io.BytesIO()
    fig.savefig(
        buffer,
        format="png",
        metadata={"Title": "Reason-RFT training metrics", "Description": "panels: " + ",".join(drawn)},
    )
    return buffer.getvalue(), drawn, tuple(notes)


def render_metrics_plot(paths: Sequence[str | Path], out_png: str | Path) -> MetricsPlot:
    """Read every metrics file, draw the curves found, write ``out_png`` atomically."""
    if not paths:
        raise ValueError("no metrics files given")
    runs = [read_metrics(path) for path in paths]
    data, drawn, notes = render_png(runs)
    return MetricsPlot(write_bytes_atomic(out_png, data), drawn, notes)


def plot_metrics(paths: Sequence[str | Path], out_png: str | Path) -> Path:
    """For the pipeline: the training-curves PNG of one or more metrics JSONL files (SFT and/or GRPO).

    Panels without data are left out and logged (INFO); raises :class:`MetricsFileError` for a
    malformed line or when no panel has data, ``FileNotFoundError`` for a missing file.
    """
    result = render_metrics_plot(paths, out_png)
    for note in result.notes:
        logger.info("training metrics plot: skipped %s", note)
    return result.path
