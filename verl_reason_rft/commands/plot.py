"""``reason-rft plot METRICS.jsonl ...``: training curves (reward, format, accuracy, KL, length, SFT loss), a PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_NAME = "training_metrics.png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "metrics",
        nargs="+",
        help="metrics JSONL files written by verl's `file` logger (trainer.logger includes 'file'): SFT and/or GRPO",
    )
    parser.add_argument(
        "--output", default=None, help=f"PNG to write (default: {DEFAULT_NAME} beside the first metrics file)"
    )


def run(args: argparse.Namespace) -> int:
    from verl_reason_rft.metrics_plot import MetricsFileError, render_metrics_plot

    out = Path(args.output) if args.output else Path(args.metrics[0]).parent / DEFAULT_NAME
    try:
        result = render_metrics_plot(args.metrics, out)
    except (MetricsFileError, FileNotFoundError) as err:
        print(f"reason-rft plot: {err}", file=sys.stderr)
        return 1
    for note in result.notes:
        print(f"skipped {note}")
    print(f"wrote {result.path} (panels: {', '.join(result.drawn)})")
    return 0
