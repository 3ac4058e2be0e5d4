"""``reason-rft run``: prepare -> SFT -> GRPO -> evaluation, resumable; plans and preflights on CPU."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from verl_reason_rft.pipeline import VARIANTS  # light: no torch or verl at module level
from verl_reason_rft.preflight import DEFAULT_MAX_ROWS
from verl_reason_rft.recipe_config import MODELS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="visual_counting | structure_perception | spatial_transformation (or a plugin's task)")
    parser.add_argument("--model", required=True, choices=MODELS, help="recipe model option; tiny = a small random Qwen2-VL built offline")
    parser.add_argument("--output-dir", required=True, type=Path, help="everything goes here: data, checkpoints, eval, plan.sh, run.log")
    parser.add_argument("--dataset-dir", type=Path, default=None,
                        help="downloaded Reason-RFT-CoT-Dataset folder (default: a generated sample dataset in OUTPUT/sample_data)")
    parser.add_argument("--variant", choices=VARIANTS, default="reason_rft",
                        help="reason_rft: SFT then GRPO; zero: GRPO from the base model; ans_sft / cot_sft: full-data SFT baselines")
    parser.add_argument("--gpus", type=int, default=None, help="GPUs per node for training (default: all visible; 8 in a CPU plan)")
    parser.add_argument("--model-path", default=None, help="local folder of the model instead of its Hugging Face id")
    parser.add_argument("--sft-size", type=int, default=None, help="records in the stage-1 SFT slice (default 1600, 8 for the sample data; half the train file when that would "
                             "leave GRPO no records)")
    parser.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS, help="rows per split the preflight measures (0: all)")
    parser.add_argument("--dry-run", action="store_true", help="prepare, preflight and print the plan without training")


def run(args: argparse.Namespace) -> int:
    from verl_reason_rft.pipeline import RunOptions, UsageError, run_pipeline

    options = RunOptions(
        task=args.task, model=args.model, output_dir=args.output_dir, dataset_dir=args.dataset_dir, variant=args.variant,
        gpus=args.gpus, dry_run=args.dry_run, model_path=args.model_path, sft_size=args.sft_size, max_rows=args.max_rows,
    )
    try:
        return run_pipeline(options)
    except UsageError as exc:
        print(f"reason-rft run: error: {exc}", file=sys.stderr)
        return 2
