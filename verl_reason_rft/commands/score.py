"""``reason-rft score PRED.jsonl``: the paper's scorer per benchmark, a table beside the paper, a chart (CPU)."""

from __future__ import annotations

import argparse
import sys

from verl_reason_rft.paper_results import DEFAULT_PAPER_ROW, PAPER_ROWS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", help="predictions JSONL written by `reason-rft eval`")
    parser.add_argument(
        "--mode",
        choices=("paper", "strict"),
        default="paper",
        help="paper: the released scorer's behaviour (spatial answers on one line); strict: across newlines",
    )
    parser.add_argument(
        "--output-dir", default=None, help="where scores.json/.md/.png go (default: beside the predictions file)"
    )
    parser.add_argument(
        "--paper-row",
        default=DEFAULT_PAPER_ROW,
        choices=list(PAPER_ROWS),
        metavar="ROW",
        help=f"paper row drawn beside ours in the chart (default {DEFAULT_PAPER_ROW!r}; one of: "
        + ", ".join(repr(row) for row in PAPER_ROWS)
        + ")",
    )
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip and count bad lines instead of failing (listed in scores.json)"
    )


def run(args: argparse.Namespace) -> int:
    from verl_reason_rft.report import PredictionsError, score_file

    try:
        report, paths = score_file(
            args.predictions,
            output_dir=args.output_dir,
            mode=args.mode,
            paper_row_name=args.paper_row,
            skip_bad=args.skip_bad,
        )
    except (PredictionsError, FileNotFoundError) as err:
        print(f"reason-rft score: {err}", file=sys.stderr)
        return 1
    if report.skipped_lines:
        print(f"skipped {len(report.skipped_lines)} bad line(s)", file=sys.stderr)
    print(paths["scores.md"].read_text(encoding="utf-8"))
    print("wrote " + ", ".join(str(path) for path in paths.values()))
    return 0
