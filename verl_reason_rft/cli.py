"""``reason-rft`` (also ``python -m verl_reason_rft``).

Each sub-command is a small module in ``verl_reason_rft.commands`` with
``add_arguments(parser)`` and ``run(args) -> int``. Every module is imported to build the
parser, so their module level stays light: heavy imports (torch, verl) live inside ``run``,
and ``reason-rft tasks`` does not pay for them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "tasks": "list registered tasks, their data sources and the plugin providing each",
    "doctor": "check that verl loads this plugin and resolves the reason_rft reward manager",
    "samples": "generate a small Reason-RFT-CoT-Dataset-shaped sample dataset",
    "prepare": "convert Reason-RFT-CoT-Dataset meta-JSON files to verl parquet for every stage",
    "preflight": "check configs, processor, datasets and rewards before training (CPU)",
    "run": "prepare -> SFT -> GRPO -> evaluation, resumable (plans and preflights on CPU)",
    "eval": "generate predictions for the test benchmarks (vLLM on GPU, or transformers on CPU/GPU)",
    "score": "score a predictions JSONL with the paper's scorer; table and chart",
    "plot": "draw training curves (reward, format, accuracy, KL, length, SFT loss) from metrics JSONL files",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reason-rft", description="Reason-RFT on verl")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"verl_reason_rft.commands.{name}")
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
