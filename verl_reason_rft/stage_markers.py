"""``O/.stages/<stage>.done``: the record a finished stage leaves, with what it was run with.

A marker stores the stage's inputs: its own options and those of the stages it depends on (so a
changed ``--sft-size`` touches prepare and everything after it). A marker whose inputs differ from
the current run's makes ``reason-rft run`` stop before doing anything, naming the marker and the
changed option: redoing a stage would mix old and new outputs (verl would resume training from the
old checkpoints), so the choice is left to the user (a new ``--output-dir``, or delete the markers
named and, for a training stage, its checkpoint folder).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Mapping, Sequence

from verl_reason_rft.data_prep.atomic import write_bytes_atomic

MARKER_DIR = ".stages"


def marker_path(root: Path, stage: str) -> Path:
    return root / MARKER_DIR / f"{stage}.done"


def read_marker(path: Path) -> dict | None:
    """The marker's record; None when there is none. An unreadable marker reads as having no inputs."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def write_marker(path: Path, stage: str, command: Sequence[str], inputs: Mapping[str, str]) -> None:
    record = {"stage": stage, "inputs": dict(inputs), "command": list(command), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_bytes_atomic(path, json.dumps(record, indent=1).encode())


def changed_inputs(record: Mapping, inputs: Mapping[str, str]) -> list[str]:
    """``"--sft-size: 1600 -> 6"`` for each input that differs (empty: the marker matches)."""
    if "inputs" not in record:
        return ["no inputs recorded (a marker from an older version, or unreadable)"]
    old = record["inputs"]
    return [f"{key}: {old.get(key, '(unset)')} -> {inputs.get(key, '(unset)')}"
            for key in sorted(set(old) | set(inputs)) if old.get(key) != inputs.get(key)]
