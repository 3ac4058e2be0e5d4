"""``reason-rft prepare``: Reason-RFT-CoT-Dataset meta-JSON files -> verl parquet for every stage."""

from __future__ import annotations

import argparse
import sys

from verl_reason_rft.task_spec import DEFAULT_SFT_SIZE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset-dir", required=True, help="the downloaded Reason-RFT-CoT-Dataset folder")
    parser.add_argument("--output-dir", required=True, help="where <task>/{sft,rl,zero,cot_sft,ans_sft,test_*}.parquet go")
    parser.add_argument("--tasks", nargs="+", default=None, help="task names (default: every registered task)")
    parser.add_argument("--image-root", default=None, help="extra folder to look for images in, after the dataset's own")
    parser.add_argument("--sft-size", type=int, default=DEFAULT_SFT_SIZE,
                        help=f"records in the stage-1 SFT slice (default {DEFAULT_SFT_SIZE})")
    parser.add_argument("--strict", action="store_true", help="fail on the first bad record instead of dropping it")
    parser.add_argument("--prompts", default=None, help="YAML file overriding prompt templates (layout of rewards/prompts.yaml)")
    parser.add_argument("--embed-images", action="store_true", help="store image bytes in the parquet instead of absolute paths")
    parser.add_argument("--no-verify-images", action="store_true", help="only check image headers (faster, misses truncated files)")


def run(args: argparse.Namespace) -> int:
    from verl_reason_rft.data_prep.prepare import prepare
    from verl_reason_rft.data_prep.records import BadRecordError

    try:
        report = prepare(
            args.dataset_dir,
            args.output_dir,
            tasks=args.tasks,
            image_root=args.image_root,
            sft_size=args.sft_size,
            strict=args.strict,
            prompts=args.prompts,
            embed_images=args.embed_images,
            verify_images=not args.no_verify_images,
        )
    except (BadRecordError, ValueError, FileNotFoundError) as exc:
        print(f"reason-rft prepare: error: {exc}", file=sys.stderr)
        return 2
    if not report.ok:
        print("reason-rft prepare: some input files could not be converted (see above); use --tasks to limit the run", file=sys.stderr)
        return 1
    return 0
