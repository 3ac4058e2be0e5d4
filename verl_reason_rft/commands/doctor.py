"""``reason-rft doctor``: check that verl loads this plugin and resolves the ``reason_rft`` reward manager."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "Exit status 0 when every check passes, 1 otherwise."


def run(args: argparse.Namespace) -> int:
    from verl_reason_rft.doctor import main

    return main()
