"""``reason-rft preflight``: check configs, processor, datasets and rewards before training (CPU)."""

from __future__ import annotations

import argparse

from verl_reason_rft.preflight import DEFAULT_MAX_ROWS, DEFAULT_REWARD_ROWS  # light: no torch or verl at module level
from verl_reason_rft.recipe_config import GRPO, SFT, ZERO

DEFAULT_RECIPES = (SFT, GRPO)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE",
        help="Hydra overrides for every recipe checked, as given to the trainer (task=... model=... data_dir=...)",
    )
    parser.add_argument(
        "--config-name", action="append", dest="config_names", default=None,
        choices=(SFT, GRPO, ZERO),
        help="recipe to check (repeatable; default: reason_rft_sft and reason_rft)",
    )
    parser.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS,
                        help="rows per split to measure (0: all; missing images are checked on all rows)")
    parser.add_argument("--gpus", type=int, default=None,
                        help="GPUs the SFT stage will run on (torchrun's nnodes x nproc-per-node), checked against data.train_batch_size; "
                             "GRPO reads trainer.n_gpus_per_node x trainer.nnodes")
    parser.add_argument("--reward-rows", type=int, default=DEFAULT_REWARD_ROWS, help="rows per split for the reward self-test")


def run(args: argparse.Namespace) -> int:
    from verl_reason_rft.preflight import StageCheck, run_preflight

    names = args.config_names or list(DEFAULT_RECIPES)
    report = run_preflight([StageCheck(name, name, tuple(args.overrides), gpus=args.gpus) for name in names], args.max_rows, args.reward_rows)
    print(report.render())
    return 0 if report.ok else 1
