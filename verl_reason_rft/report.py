"""Score a predictions JSONL with the paper's scorer: per-benchmark table beside the paper, and a chart.

Input: one JSON object per line with ``id``, ``data_source``, ``prediction``, ``answer`` and
optionally ``is_choice`` and ``prompt_style`` (what ``reason-rft eval`` writes). Output, written
all-or-nothing: ``scores.json``, ``scores.md`` and ``scores.png``.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from verl_reason_rft.data_prep.atomic import write_bytes_atomic
from verl_reason_rft.evaluation import EVAL_MODES, score_prediction
from verl_reason_rft.paper_results import BENCHMARKS, DEFAULT_PAPER_ROW, FROZEN_VISION_NOTE, PAPER_ROWS, SUPER_CLEVR_NOTE, paper_row
from verl_reason_rft.tasks import UnknownDataSource, get_task

_SHOWN_PROBLEMS = 20


class PredictionsError(ValueError):
    """The predictions file has bad lines; the message names each line and field."""


@dataclass(frozen=True)
class Prediction:
    line: int
    id: str
    data_source: str
    prediction: str
    answer: str
    is_choice: bool
    prompt_style: str | None = None


@dataclass(frozen=True)
class Group:
    """``n`` items and their accuracy in % (``None`` when ``n`` is 0)."""

    n: int
    score: float | None


@dataclass(frozen=True)
class BenchmarkScore:
    data_source: str
    task: str
    n: int
    score: float
    #: choice / non-choice split, for tasks that have choice answers (structure perception)
    choice: Group | None = None
    non_choice: Group | None = None


@dataclass
class ScoreReport:
    predictions: str
    mode: str
    paper_row: str
    benchmarks: list[BenchmarkScore]
    skipped_lines: list[str] = field(default_factory=list)

    @property
    def n_items(self) -> int:
        return sum(b.n for b in self.benchmarks)

    def to_json(self) -> dict[str, Any]:
        row = paper_row(self.paper_row)
        return {
            "predictions": self.predictions,
            "mode": self.mode,
            "n_items": self.n_items,
            "skipped_lines": list(self.skipped_lines),
            "benchmarks": {b.data_source: asdict(b) for b in self.benchmarks},
            "paper_row": self.paper_row,
            "paper": {b.data_source: row.get(b.data_source) for b in self.benchmarks},
        }


# --------------------------------------------------------------------------- reading


def _check_line(obj: Any) -> tuple[dict[str, Any], str | None]:
    """Validated fields of one parsed line, or the problem (naming the field)."""
    if not isinstance(obj, dict):
        return {}, f"expected a JSON object, got {type(obj).__name__}"
    for key in ("id", "data_source", "prediction", "answer"):
        if key not in obj:
            return {}, f"missing field {key!r}"
    if not isinstance(obj["id"], (str, int)) or isinstance(obj["id"], bool):
        return {}, f"field 'id' must be a string or integer, got {obj['id']!r}"
    for key in ("data_source", "prediction", "answer"):
        if not isinstance(obj[key], str):
            return {}, f"field {key!r} must be a string, got {type(obj[key]).__name__} {obj[key]!r:.60}"
    if "is_choice" in obj and not isinstance(obj["is_choice"], bool):
        return {}, f"field 'is_choice' must be true or false, got {obj['is_choice']!r}"
    style = obj.get("prompt_style")
    if style is not None and not isinstance(style, str):
        return {}, f"field 'prompt_style' must be a string, got {style!r}"
    try:
        task = get_task(obj["data_source"])
    except UnknownDataSource as err:
        return {}, f"field 'data_source': {err}"
    is_choice = obj.get("is_choice", task.is_choice(obj["answer"]))
    return {
        "id": str(obj["id"]),
        "data_source": obj["data_source"],
        "prediction": obj["prediction"],
        "answer": obj["answer"],
        "is_choice": is_choice,
        "prompt_style": style,
    }, None


def read_predictions(path: str | Path, skip_bad: bool = False) -> tuple[list[Prediction], list[str]]:
    """The predictions of a JSONL file and the skipped bad lines (``path:line: problem``).

    Blank lines are ignored. A bad line (not JSON, a missing or mistyped field, an unknown
    ``data_source``, a repeated ``(data_source, id)``) raises :class:`PredictionsError` listing
    every bad line, unless ``skip_bad``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file not found: {path}")
    records: list[Prediction] = []
    problems: list[str] = []
    first_line: dict[tuple[str, str], int] = {}
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                problems.append(f"{path}:{line_no}: not valid JSON ({err.msg} at column {err.colno})")
                continue
            fields, problem = _check_line(obj)
            if problem is None:
                key = (fields["data_source"], fields["id"])
                if key in first_line:
                    problem = f"field 'id': {fields['id']!r} repeats line {first_line[key]} (same data_source)"
                else:
                    first_line[key] = line_no
            if problem is not None:
                problems.append(f"{path}:{line_no}: {problem}")
                continue
            records.append(Prediction(line=line_no, **fields))
    if problems and not skip_bad:
        shown = "\n  ".join(problems[:_SHOWN_PROBLEMS])
        more = f"\n  ... and {len(problems) - _SHOWN_PROBLEMS} more" if len(problems) > _SHOWN_PROBLEMS else ""
        raise PredictionsError(
            f"{len(problems)} bad line(s) in {path} (nothing written; --skip-bad scores the rest):\n  {shown}{more}"
        )
    if not records:
        raise PredictionsError(f"no predictions to score in {path}")
    return records, problems


# --------------------------------------------------------------------------- scoring


def _percent(values: Sequence[float]) -> float | None:
    return 100.0 * math.fsum(values) / len(values) if values else None


def _benchmark_order(data_source: str) -> tuple[int, str]:
    return (BENCHMARKS.index(data_source) if data_source in BENCHMARKS else len(BENCHMARKS), data_source)


def score_predictions(
    predictions: Iterable[Prediction], mode: str = "paper", scorer: Callable[..., float] | None = None
) -> list[BenchmarkScore]:
    """Per-benchmark accuracy (100 × mean item score), with the choice split where a task has one."""
    if mode not in EVAL_MODES:
        raise ValueError(f"score mode must be one of {EVAL_MODES}, got {mode!r}")
    from tqdm import tqdm

    scorer = scorer or score_prediction
    predictions = list(predictions)
    items: dict[str, list[tuple[bool, float]]] = {}
    for pred in tqdm(predictions, desc="scoring", unit="item", disable=len(predictions) < 200):
        value = scorer(pred.data_source, pred.prediction, pred.answer, mode=mode)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise RuntimeError(f"line {pred.line}: the scorer returned {value!r} for {pred.data_source}, not in [0, 1]")
        items.setdefault(pred.data_source, []).append((pred.is_choice, float(value)))
    scores = []
    for data_source in sorted(items, key=_benchmark_order):
        task = get_task(data_source)
        values = [v for _, v in items[data_source]]
        split: dict[str, Group] = {}
        if task.choice_answers:
            choice = [v for is_choice, v in items[data_source] if is_choice]
            other = [v for is_choice, v in items[data_source] if not is_choice]
            split = {"choice": Group(len(choice), _percent(choice)), "non_choice": Group(len(other), _percent(other))}
        scores.append(
            BenchmarkScore(data_source=data_source, task=task.name, n=len(values), score=_percent(values), **split)
        )
    return scores


# --------------------------------------------------------------------------- rendering


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def markdown_table(report: ScoreReport) -> str:
    """The report as markdown: our row above the paper's rows, the choice split, notes."""
    sources = [b.data_source for b in report.benchmarks]
    ours = {b.data_source: b for b in report.benchmarks}
    lines = [
        f"# Reason-RFT evaluation: `{Path(report.predictions).name}`",
        "",
        f"Scorer mode `{report.mode}`; {report.n_items} items; accuracy (%) = 100 × mean item score "
        "(SPEC §7). Paper numbers: Reason-RFT main table.",
        "",
        "| model | " + " | ".join(sources) + " |",
        "|---|" + "---:|" * len(sources),
        "| **ours** | " + " | ".join(f"**{_cell(ours[s].score)}**" for s in sources) + " |",
        "| items | " + " | ".join(str(ours[s].n) for s in sources) + " |",
    ]
    for row, numbers in PAPER_ROWS.items():
        marker = " ←" if row == report.paper_row else ""
        lines.append(f"| {row} (paper){marker} | " + " | ".join(_cell(numbers.get(s)) for s in sources) + " |")
    split = [b for b in report.benchmarks if b.choice is not None]
    if split:
        lines += [
            "",
            "## Choice (A–D) vs non-choice items",
            "",
            "| benchmark | all | choice | non-choice |",
            "|---|---:|---:|---:|",
        ]
        for b in split:
            lines.append(
                f"| {b.data_source} | {_cell(b.score)} (n={b.n}) | {_cell(b.choice.score)} (n={b.choice.n}) "
                f"| {_cell(b.non_choice.score)} (n={b.non_choice.n}) |"
            )
    notes = [FROZEN_VISION_NOTE]
    if "super_clevr" in sources:
        notes.append(SUPER_CLEVR_NOTE)
    if report.skipped_lines:
        skipped = len(report.skipped_lines)
        notes.append(f"{skipped} bad line(s) skipped (`--skip-bad`); see `skipped_lines` in scores.json.")
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def plot_png(report: ScoreReport) -> bytes:
    """Grouped bars per benchmark, ours vs the chosen paper row, as PNG bytes (Agg, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sources = [b.data_source for b in report.benchmarks]
    ours = [b.score for b in report.benchmarks]
    paper = [paper_row(report.paper_row).get(s) for s in sources]
    width = 0.38
    fig = Figure(figsize=(max(5.0, 1.35 * len(sources) + 2.0), 4.6), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = range(len(sources))
    bars = (
        ([x - width / 2 for x in xs], ours, "ours", "#1f77b4"),
        ([x + width / 2 for x in xs], paper, f"paper: {report.paper_row}", "#ff7f0e"),
    )
    for positions, values, label, color in bars:
        heights = [0.0 if v is None else v for v in values]
        drawn = ax.bar(positions, heights, width, label=label, color=color)
        for rect, value in zip(drawn, values):
            text = "n/a" if value is None else f"{value:.1f}"
            ax.annotate(
                text,
                (rect.get_x() + rect.get_width() / 2, rect.get_height()),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_xticks(list(xs), [f"{s}\n(n={b.n})" for s, b in zip(sources, report.benchmarks)], fontsize=8)
    ax.set_ylim(0, 112)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Reason-RFT evaluation ({report.mode} scorer): {Path(report.predictions).name}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# --------------------------------------------------------------------------- end to end


def score_file(
    predictions_path: str | Path,
    output_dir: str | Path | None = None,
    mode: str = "paper",
    paper_row_name: str = DEFAULT_PAPER_ROW,
    skip_bad: bool = False,
    scorer: Callable[..., float] | None = None,
) -> tuple[ScoreReport, dict[str, Path]]:
    """Score ``predictions_path`` and write scores.json / .md / .png (default: beside it).

    Everything is computed before the first file is written, and each file is written
    atomically, so a bad input leaves no output behind.
    """
    paper_row(paper_row_name)  # fail early on a typo
    predictions_path = Path(predictions_path)
    records, skipped = read_predictions(predictions_path, skip_bad=skip_bad)
    report = ScoreReport(
        predictions=str(predictions_path),
        mode=mode,
        paper_row=paper_row_name,
        benchmarks=score_predictions(records, mode=mode, scorer=scorer),
        skipped_lines=skipped,
    )
    contents = {
        "scores.json": (json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
        "scores.md": markdown_table(report).encode("utf-8"),
        "scores.png": plot_png(report),
    }
    out = Path(output_dir) if output_dir is not None else predictions_path.parent
    return report, {name: write_bytes_atomic(out / name, data) for name, data in contents.items()}
