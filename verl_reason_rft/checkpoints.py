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
#: files a loadable HF folder holds its weights in (one file, or an index of shards)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


class WeightlessCheckpoint(FileNotFoundError):
    """A ``huggingface/`` folder with a config but no weights (verl writes config and tokenizer there even
    when ``hf_model`` is not in ``checkpoint.save_contents``)."""


def has_weights(folder: str | os.PathLike) -> bool:
    return any((Path(folder) / name).is_file() for name in WEIGHT_FILES)
_STEP = re.compile(r"global_step_(\d+)$")


def latest_hf_checkpoint(checkpoint_dir: str | os.PathLike, role: str = "") -> Path | None:
    """``<dir>/global_step_N/[role/]huggingface`` of the latest step that has one (``role="actor"`` for GRPO).

    The latest step is the one verl's tracker names, else the highest ``global_step_N`` folder. Steps
    whose HF folder has no ``config.json`` are skipped; the newest one that has it must hold the weights
    (:data:`WEIGHT_FILES`), else :class:`WeightlessCheckpoint` names the folder.
    """
    root = Path(checkpoint_dir)
    steps = {int(m.group(1)): p for p in root.glob("global_step_*") if p.is_dir() and (m := _STEP.search(p.name))}
    tracker = root / TRACKER
    text = tracker.read_text().strip() if tracker.is_file() else ""
    last = int(text) if text.isdigit() and (root / f"global_step_{text}").is_dir() else max(steps, default=None)
    if last is None:
        return None
    for step in sorted((s for s in steps if s <= last), reverse=True):
        hf = steps[step] / role / "huggingface"  # Path / "" adds nothing: SFT's <step>/huggingface
        if (hf / "config.json").is_file():
            if not has_weights(hf):
                raise WeightlessCheckpoint(
                    f"{hf} has a config.json but no model weights (none of {', '.join(WEIGHT_FILES)}): the checkpoint was "
                    "saved without 'hf_model' in checkpoint.save_contents (the recipes set it), or its save was cut off. "
                    f"Convert the sharded checkpoint with `python -m verl.model_merger merge --backend fsdp --local_dir {hf.parent} "
                    f"--target_dir {hf}`, or re-run the training stage")
            return hf
    return None
