"""``reason-rft tasks``: the registered tasks, their data sources and the plugin providing each."""

from __future__ import annotations

import argparse
import json
import sys

from verl_reason_rft.text_table import format_table

COLUMNS = ("task", "data sources", "accuracy modes", "images", "plugin")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def rows() -> list[dict[str, str]]:
    """One row per task, sorted by task name (loads the task plugins)."""
    from verl_reason_rft.tasks import get_registry

    registry = get_registry()
    return [
        {
            "task": name,
            "data sources": ", ".join(spec.data_sources),
            "accuracy modes": ", ".join(spec.accuracy_modes),
            "images": str(spec.images_per_sample),
            "plugin": registry.providers[name],
        }
        for name, spec in sorted(registry.tasks.items())
    ]


def run(args: argparse.Namespace) -> int:
    from verl_reason_rft.tasks import TaskRegistryError

    try:
        table = rows()
    except TaskRegistryError as exc:
        print(f"reason-rft tasks: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(table, indent=2) if args.json else format_table(COLUMNS, ([row[col] for col in COLUMNS] for row in table)))
    return 0
