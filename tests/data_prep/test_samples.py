"""The generated sample dataset: downloaded layout, answers valid by construction, determinism."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from PIL import Image

from verl_reason_rft.data_prep.samples import generate_samples
from verl_reason_rft.data_prep.scene_transformation import DIRECTIONS, FUNCTIONS, STEP, _apply
from verl_reason_rft.tasks import get_registry

CALL = re.compile(r"(\w+)\((\d+), (\w+)\)")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_matches_the_download(sample_dataset_dir: Path) -> None:
    for spec in get_registry().tasks.values():
        train = json.loads((sample_dataset_dir / "train_jsons" / spec.train_file).read_text())
        assert len(train) == 12
        for split, file_name in [("train", spec.train_file), *(("test", f) for f in spec.test_files)]:
            records = json.loads((sample_dataset_dir / f"{split}_jsons" / file_name).read_text())
            assert records, file_name
            for record in records:
                assert {"id", "image", "problem", "answer"} <= set(record)
                assert ("cot" in record) == (split == "train")
                names = record["image"] if isinstance(record["image"], list) else [record["image"]]
                assert len(names) == spec.images_per_sample
                for name in names:
                    assert "/" in name  # a subfolder, like the real files
                    with Image.open(sample_dataset_dir / "images" / f"{split}_images" / name) as image:
                        assert 160 <= max(image.size) <= 320


def test_same_seed_gives_byte_identical_files_and_other_seed_differs(tmp_path: Path) -> None:
    first = _files(generate_samples(tmp_path / "a", per_task=3, seed=7, progress=False))
    second = _files(generate_samples(tmp_path / "b", per_task=3, seed=7, progress=False))
    third = _files(generate_samples(tmp_path / "c", per_task=3, seed=8, progress=False))
    assert first == second
    assert any(f.endswith(".png") for f in first)
    assert first != third


def test_cot_comes_plain_and_already_wrapped(sample_dataset_dir: Path) -> None:
    spec = get_registry().tasks["visual_counting"]
    cots = [r["cot"] for r in json.loads((sample_dataset_dir / "train_jsons" / spec.train_file).read_text())]
    assert any(c.startswith("<think>") for c in cots)
    assert any("<think>" not in c for c in cots)
    assert any("<answer>" in c for c in cots)


def test_counting_answers_follow_from_the_described_scene(sample_dataset_dir: Path) -> None:
    spec = get_registry().tasks["visual_counting"]
    for record in json.loads((sample_dataset_dir / "train_jsons" / spec.train_file).read_text()):
        total = int(re.search(r"I count (\d+) objects", record["cot"]).group(1))
        described = sum(int(n) for n in re.findall(r"(\d+) \w+ (?:cube|sphere|cylinder)", record["cot"].split(":")[1].split(".")[0]))
        assert described == total
        last = re.findall(r"= (\d+)", record["cot"])[-1]
        assert last == record["answer"] and int(record["answer"]) >= 0


def test_structure_has_choice_and_numeric_items(sample_dataset_dir: Path) -> None:
    spec = get_registry().tasks["structure_perception"]
    records = [r for f in [spec.train_file] for r in json.loads((sample_dataset_dir / "train_jsons" / f).read_text())]
    choice = [r for r in records if spec.is_choice(r["answer"])]
    numeric = [r for r in records if not spec.is_choice(r["answer"])]
    assert choice and numeric
    for record in choice:
        options = dict(re.findall(r"^([ABCD]): (.+)$", record["problem"], re.M))
        assert sorted(options) == list("ABCD") and len(set(options.values())) == 4
        assert f"choice {record['answer']}" in record["cot"]
    for record in numeric:
        float(record["answer"])


def test_transformation_answers_are_valid_call_sequences(sample_dataset_dir: Path) -> None:
    spec = get_registry().tasks["spatial_transformation"]
    views = set()
    for file_name in [spec.train_file, *spec.test_files]:
        split = "train" if file_name == spec.train_file else "test"
        for record in json.loads((sample_dataset_dir / f"{split}_jsons" / file_name).read_text()):
            calls = CALL.findall(record["answer"])
            assert 1 <= len(calls) <= 4 and ", ".join(f"{f}({o}, {v})" for f, o, v in calls) == record["answer"]
            ids = {int(i) for i in re.findall(r"\((\d+), '", record["problem"])}
            for func, obj, value in calls:
                assert value in FUNCTIONS[func][1] and int(obj) in ids
            assert record["problem"].count("'") == 8 * len(ids)  # (id, 'shape', 'size', 'color', 'material')
            views.add(record.get("view"))
    assert {"left", "right", "center"} <= views


def test_a_move_never_lands_on_another_object() -> None:
    """change_position picks only directions whose target stays clear of the other objects."""
    centre = (120, 80)
    free = "left"
    blockers = [(centre[0] + dx * STEP, centre[1] + dy * STEP) for d, (dx, dy) in DIRECTIONS.items() if d != free]
    for seed in range(20):
        obj = {"position": centre}
        assert _apply(random.Random(seed), obj, "change_position", blockers) == free
        assert obj["position"] == (centre[0] - STEP, centre[1])
    crowded = blockers + [(centre[0] - STEP, centre[1])]
    obj = {"position": centre}
    assert _apply(random.Random(0), obj, "change_position", crowded) is None and obj["position"] == centre
