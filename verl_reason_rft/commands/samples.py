"""``reason-rft samples``: write a small generated dataset in the downloaded Reason-RFT-CoT-Dataset layout."""

from __future__ import annotations

import argparse
import sys

DEFAULT_OUTPUT_DIR = "data/samples"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR,
                        help=f"dataset folder to create (default {DEFAULT_OUTPUT_DIR}; a non-empty folder that is not a "
                             "previous samples output is refused)")
    parser.add_argument("--per-task", type=int, default=12, help="train records per task (default 12)")
    parser.add_argument("--test-per-file", type=int, default=None, help="records per test file (default per-task/2, at least 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives byte-identical files")
    parser.add_argument("--tasks", nargs="+", default=None, help="tasks to generate (default: all built-in tasks)")
    parser.add_argument("--force", action="store_true", help="write into a non-empty folder that no samples run wrote")


def run(args: argparse.Namespace) -> int:
    from verl_reason_rft.data_prep.samples import generate_samples

    try:
        path = generate_samples(
            args.output_dir, per_task=args.per_task, seed=args.seed, test_per_file=args.test_per_file, tasks=args.tasks,
            force=args.force,
        )
    except ValueError as exc:
        print(f"reason-rft samples: error: {exc}", file=sys.stderr)
        return 2
    print(f"sample dataset written to {path}")
    print(f"next: reason-rft prepare --dataset-dir {path} --output-dir <prepared dir>")
    return 0
