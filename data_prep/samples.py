"""A generated Reason-RFT-CoT-Dataset: the downloaded layout, procedurally drawn scenes, exact answers.

``generate_samples(D, per_task=12)`` writes::

    D/images/train_images/<train-file stem>/<id>.png
    D/images/test_images/<test-file stem>/<id>.png
    D/train_jsons/<each task's train_file>          (id, image, problem, answer, cot)
    D/test_jsons/<each task's test files>           (id, image, problem, answer [+ extra keys])

File names and data sources come from the task registry. Output is byte-identical for a seed.
``D/.reason_rft_samples.json`` (written last) marks the folder as generated: a non-empty folder
without it is refused unless ``force``, so a downloaded dataset is never overwritten by accident.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Callable, Iterable

from tqdm import tqdm

from verl_reason_rft.data_prep import scene_counting, scene_geometry, scene_transformation
from verl_reason_rft.data_prep.atomic import write_bytes_atomic
from verl_reason_rft.data_prep.drawing import save_png
from verl_reason_rft.data_prep.sample_item import SampleItem
from verl_reason_rft.tasks import get_registry

MARKER = ".reason_rft_samples.json"
#: the folders a samples run writes (cleared when a previous samples output is regenerated)
SAMPLE_FOLDERS = ("images", "train_jsons", "test_jsons")


class NotSamplesFolderError(ValueError):
    """The output folder has files that no ``reason-rft samples`` run wrote."""


def _check_output_dir(dataset_dir: Path, force: bool) -> None:
    if not dataset_dir.exists():
        return
    if not dataset_dir.is_dir():
        raise NotSamplesFolderError(f"{dataset_dir} exists and is not a folder")
    if (dataset_dir / MARKER).is_file():
        for name in SAMPLE_FOLDERS:  # a previous samples output: regenerate from scratch (no stale images)
            shutil.rmtree(dataset_dir / name, ignore_errors=True)
        (dataset_dir / MARKER).unlink()
    elif any(dataset_dir.iterdir()) and not force:
        raise NotSamplesFolderError(f"{dataset_dir} is not empty and is not a `reason-rft samples` output (no {MARKER}); "
                                    "choose another --output-dir, or pass --force to write into it anyway")

#: task name -> scene generator ``make_item(rng, data_source) -> SampleItem``
GENERATORS: dict[str, Callable[[random.Random, str], SampleItem]] = {
    "visual_counting": scene_counting.make_item,
    "structure_perception": scene_geometry.make_item,
    "spatial_transformation": scene_transformation.make_item,
}


def wrap_cot(reasoning: str, answer: str, index: int) -> str:
    """Vary the ``cot`` field like the real files: plain, ``<think>``-wrapped, or wrapped plus ``<answer>``."""
    style = index % 3
    if style == 0:
        return reasoning
    if style == 1:
        return f"<think>\n{reasoning}\n</think>"
    return f"<think>{reasoning}</think>\n<answer>{answer}</answer>"


def _write_file(
    dataset_dir: Path,
    split: str,
    file_name: str,
    data_source: str,
    count: int,
    seed: int,
    make_item: Callable[[random.Random, str], SampleItem],
    progress: tqdm,
) -> None:
    rng = random.Random(f"{seed}:{file_name}")
    subfolder = Path(file_name).stem
    image_dir = dataset_dir / "images" / f"{split}_images"
    records = []
    for index in range(count):
        item = make_item(rng, data_source)
        record_id = f"{data_source}_{split}_{index:06d}"
        names = []
        for k, image in enumerate(item.images):
            name = f"{subfolder}/{record_id}" + (f"_{k}" if len(item.images) > 1 else "") + ".png"
            save_png(image, image_dir / name)
            names.append(name)
        record = {"id": record_id, "image": names if len(names) > 1 else names[0], "problem": item.problem, "answer": item.answer}
        if split == "train":
            record["cot"] = wrap_cot(item.reasoning, item.answer, index)
        record.update(item.extra)
        records.append(record)
        progress.update(1)
    text = json.dumps(records, ensure_ascii=False, indent=1)
    write_bytes_atomic(dataset_dir / f"{split}_jsons" / file_name, text.encode("utf-8"))


def generate_samples(
    output_dir: str | Path,
    per_task: int = 12,
    seed: int = 0,
    test_per_file: int | None = None,
    tasks: Iterable[str] | None = None,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Write a sample dataset for ``tasks`` (default: every registered task with a generator).

    Raises :class:`NotSamplesFolderError` for a non-empty folder that is not a previous samples
    output (``force`` writes into it anyway), ``ValueError`` for an unknown task, before writing.
    """
    if per_task < 0:
        raise ValueError(f"per_task must be >= 0, got {per_task}")
    registry = get_registry()
    names = list(tasks) if tasks is not None else [name for name in registry.tasks if name in GENERATORS]
    for name in names:
        if name not in GENERATORS:
            raise ValueError(f"unknown task {name!r} for samples (valid: {', '.join(sorted(GENERATORS))})")
    n_test = max(2, per_task // 2) if test_per_file is None else test_per_file
    dataset_dir = Path(output_dir)
    _check_output_dir(dataset_dir, force)
    jobs = []
    for name in names:
        spec = registry.tasks[name]
        if spec.train_file:
            jobs.append(("train", spec.train_file, spec.name, per_task, GENERATORS[name]))
        for file_name, data_source in spec.test_files.items():
            jobs.append(("test", file_name, data_source, n_test, GENERATORS[name]))
    total = sum(job[3] for job in jobs)
    with tqdm(total=total, desc="samples", unit="rec", disable=not progress) as bar:
        for split, file_name, data_source, count, make_item in jobs:
            _write_file(dataset_dir, split, file_name, data_source, count, seed, make_item, bar)
    marker = {"tasks": names, "per_task": per_task, "test_per_file": n_test, "seed": seed}
    write_bytes_atomic(dataset_dir / MARKER, json.dumps(marker, indent=1).encode())
    return dataset_dir
