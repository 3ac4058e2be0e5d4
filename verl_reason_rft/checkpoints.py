"""Find the Hugging Face copy of the latest verl checkpoint in a ``trainer.default_local_dir``.

verl writes ``global_step_N/`` folders and a tracker ``latest_checkpointed_iteration.txt`` (written
last, atomically). SFT saves the HF model in ``global_step_N/huggingface``, GRPO in
``global_step_N/actor/huggingface`` (with ``hf_model`` in ``checkpoint.save_contents``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

TRACKER = "latest_checkpointed_iteration.txt"
_STEP = re.compile(r"global_step_(\d+)$")


def _is_hf_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


def latest_step(checkpoint_dir: str | os.PathLike) -> int | None:
    """The step verl's tracker names, else the highest ``global_step_N`` folder, else None."""
    root = Path(checkpoint_dir)
    tracker = root / TRACKER
    if tracker.is_file():
        text = tracker.read_text().strip()
        if text.isdigit() and (root / f"global_step_{text}").is_dir():
            return int(text)
    steps = [int(m.group(1)) for p in root.glob("global_step_*") if p.is_dir() and (m := _STEP.search(p.name))]
    return max(steps) if steps else None


def latest_hf_checkpoint(checkpoint_dir: str | os.PathLike, role: str = "") -> Path | None:
    """``<dir>/global_step_N/[role/]huggingface`` of the latest step that has one (``role="actor"`` for GRPO)."""
    root = Path(checkpoint_dir)
    step = latest_step(root)
    if step is None:
        return None
    candidates = sorted(
        (int(m.group(1)), p) for p in root.glob("global_step_*") if (m := _STEP.search(p.name)) and int(m.group(1)) <= step
    )
    for _, folder in reversed(candidates):
        hf = folder / role / "huggingface" if role else folder / "huggingface"
        if _is_hf_dir(hf):
            return hf
    return None
