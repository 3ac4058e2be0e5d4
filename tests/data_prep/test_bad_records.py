"""Every bad-record reason: counted, reported with file and index, excluded; ``strict`` makes it fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from verl_reason_rft.cli import main as cli_main
from verl_reason_rft.data_prep.prepare import prepare
from verl_reason_rft.data_prep.records import REASONS, BadRecordError

COUNTING = "A3-Visual-Counting-train-35k-cot.json"
SPATIAL = "A1-Spatial-Transformation-train-60k-cot.json"
COUNTING_TEST = "Visual-Counting-id-test-1k.json"


def _ids(out: Path, task: str, name: str) -> list[str]:
    return [r["extra_info"]["id"] for r in pq.read_table(out / task / name).to_pylist()]


def _break_record(dataset_copy, split: str, file_name: str, index: int, change) -> str:
    """Apply ``change(record, dataset_copy)`` to one record; returns that record's original id."""
    records = dataset_copy.load(split, file_name)
    original_id = records[index]["id"]
    records[index] = change(records[index], dataset_copy)
    dataset_copy.save(split, file_name, records)
    return original_id


def _truncate_image(record, dataset):
    path = dataset.root / "images" / "train_images" / record["image"]
    path.write_bytes(path.read_bytes()[:200])
    return record


def _garbage_image(record, dataset):
    path = dataset.root / "images" / "train_images" / record["image"]
    path.write_bytes(b"not an image at all")
    return record


RECORD_CASES = {
    "not_an_object": lambda r, d: "just a string",
    "missing_field:id": lambda r, d: {k: v for k, v in r.items() if k != "id"},
    "missing_field:image": lambda r, d: {k: v for k, v in r.items() if k != "image"},
    "missing_field:problem": lambda r, d: {k: v for k, v in r.items() if k != "problem"},
    "missing_field:answer": lambda r, d: {k: v for k, v in r.items() if k != "answer"},
    "missing_field:cot": lambda r, d: {k: v for k, v in r.items() if k != "cot"},
    "empty_field:answer": lambda r, d: {**r, "answer": "  "},
    "empty_field:cot": lambda r, d: {**r, "cot": ""},
    "wrong_type:problem": lambda r, d: {**r, "problem": 5},
    "placeholder_in_text:problem": lambda r, d: {**r, "problem": "<image>" + r["problem"]},
    "wrong_image_count": lambda r, d: {**r, "image": [r["image"], r["image"]]},
    "image_not_found": lambda r, d: {**r, "image": "Visual-Counting-ID/missing.png"},
    "image_unreadable:garbage": _garbage_image,
    "image_unreadable:truncated": _truncate_image,
}


@pytest.mark.parametrize("case", sorted(RECORD_CASES))
def test_bad_train_record_is_dropped_and_reported(dataset_copy, tmp_path: Path, capsys, case: str) -> None:
    reason, _, field = case.partition(":")
    bad_id = _break_record(dataset_copy, "train", COUNTING, 5, RECORD_CASES[case])
    report = prepare(dataset_copy.root, tmp_path / "out", tasks=["visual_counting"], sft_size=4)
    assert report.dropped == {(COUNTING, reason): 1}
    [problem] = report.problems
    assert problem.index == 5 and problem.file.endswith(COUNTING)
    if field and reason != "image_unreadable":
        assert repr(field) in problem.detail
    zero = _ids(tmp_path / "out", "visual_counting", "zero.parquet")
    assert bad_id not in zero and len(zero) == 11  # nothing else lost
    assert _ids(tmp_path / "out", "visual_counting", "sft.parquet") == zero[:4]
    printed = capsys.readouterr().out
    assert reason in printed and f"{COUNTING} record 5" in printed


@pytest.mark.parametrize("case", ["missing_field:problem", "image_not_found", "image_unreadable:garbage"])
def test_strict_mode_fails_naming_file_index_and_field(dataset_copy, tmp_path: Path, case: str) -> None:
    _break_record(dataset_copy, "train", COUNTING, 7, RECORD_CASES[case])
    with pytest.raises(BadRecordError, match=rf"{COUNTING} record 7: {case.split(':')[0]}") as info:
        prepare(dataset_copy.root, tmp_path / "out", tasks=["visual_counting"], strict=True, verbose=False)
    if ":" in case and "image" not in case:
        assert "'problem'" in str(info.value)
    assert not (tmp_path / "out").exists()  # validated before anything is written


def test_strict_cli_exits_non_zero_with_the_reason(dataset_copy, tmp_path: Path, capsys) -> None:
    _break_record(dataset_copy, "train", COUNTING, 2, RECORD_CASES["empty_field:answer"])
    argv = ["prepare", "--dataset-dir", str(dataset_copy.root), "--output-dir", str(tmp_path / "o"), "--tasks", "visual_counting", "--strict"]
    assert cli_main(argv) == 2
    assert f"{COUNTING} record 2: empty_field: field 'answer' is empty" in capsys.readouterr().err


def test_duplicate_id_keeps_the_first(dataset_copy, tmp_path: Path) -> None:
    records = dataset_copy.load("train", COUNTING)
    dropped_problem = records[6]["problem"]
    records[6]["id"] = records[1]["id"]
    dataset_copy.save("train", COUNTING, records)
    report = prepare(dataset_copy.root, tmp_path / "out", tasks=["visual_counting"], sft_size=4, verbose=False)
    assert report.dropped == {(COUNTING, "duplicate_id"): 1} and report.problems[0].index == 6
    rows = pq.read_table(tmp_path / "out" / "visual_counting" / "zero.parquet").to_pylist()
    kept = [r["extra_info"] for r in rows if r["extra_info"]["id"] == records[1]["id"]]
    assert len(kept) == 1 and kept[0]["index"] == 1 and len(rows) == 11
    assert dropped_problem not in [r["extra_info"]["problem"] for r in rows if r["extra_info"]["index"] == 6]


def test_spatial_needs_exactly_two_images(dataset_copy, tmp_path: Path) -> None:
    _break_record(dataset_copy, "train", SPATIAL, 0, lambda r, d: {**r, "image": r["image"][:1]})
    _break_record(dataset_copy, "train", SPATIAL, 1, lambda r, d: {**r, "image": r["image"][0]})
    report = prepare(dataset_copy.root, tmp_path / "out", tasks=["spatial_transformation"], sft_size=4, verbose=False)
    assert report.dropped == {(SPATIAL, "wrong_image_count"): 2}
    assert "has 1 image(s), the task needs 2" in report.problems[0].detail


def test_malformed_json_is_a_file_error_and_other_files_still_convert(dataset_copy, tmp_path: Path, capsys) -> None:
    dataset_copy.path("train", COUNTING).write_text('[{"id": "a", ')
    report = prepare(dataset_copy.root, tmp_path / "out", tasks=["visual_counting"], sft_size=4)
    assert not report.ok and [p.reason for p in report.file_errors] == ["malformed_json"]
    assert not (tmp_path / "out" / "visual_counting" / "rl.parquet").exists()
    assert (tmp_path / "out" / "visual_counting" / "test_clevr_math.parquet").exists()
    assert f"FILE NOT CONVERTED: {dataset_copy.path('train', COUNTING)}: malformed_json" in capsys.readouterr().out


@pytest.mark.parametrize("content", [{"data": []}, "a string", 3])
def test_test_file_with_unexpected_layout_is_reported(dataset_copy, tmp_path: Path, content) -> None:
    dataset_copy.save("test", COUNTING_TEST, content)
    report = prepare(dataset_copy.root, tmp_path / "out", tasks=["visual_counting"], verbose=False)
    assert [(Path(p.file).name, p.reason) for p in report.file_errors] == [(COUNTING_TEST, "not_a_list")]
    assert not (tmp_path / "out" / "visual_counting" / "test_clevr_math.parquet").exists()
    assert (tmp_path / "out" / "visual_counting" / "test_super_clevr.parquet").exists()
    with pytest.raises(BadRecordError, match="not_a_list"):
        prepare(dataset_copy.root, tmp_path / "strict", tasks=["visual_counting"], strict=True, verbose=False)


def test_missing_file_is_reported(dataset_copy, tmp_path: Path) -> None:
    dataset_copy.path("test", COUNTING_TEST).unlink()
    report = prepare(dataset_copy.root, tmp_path / "out", tasks=["visual_counting"], verbose=False)
    assert [p.reason for p in report.file_errors] == ["missing_file"] and COUNTING_TEST in report.file_errors[0].detail


def test_test_records_need_no_cot_and_keep_unknown_keys(dataset_copy, tmp_path: Path) -> None:
    records = dataset_copy.load("test", COUNTING_TEST)
    records[0]["difficulty"] = {"level": 3}
    records[1]["cot"] = "<think>x</think>"
    dataset_copy.save("test", COUNTING_TEST, records)
    report = prepare(dataset_copy.root, tmp_path / "out", tasks=["visual_counting"], verbose=False)
    assert not report.problems
    rows = pq.read_table(tmp_path / "out" / "visual_counting" / "test_clevr_math.parquet").to_pylist()
    assert json.loads(rows[0]["extra_info"]["extra"]) == {"difficulty": {"level": 3}}
    assert rows[1]["extra_info"]["cot"] == "<think>x</think>" and rows[0]["extra_info"]["cot"] == ""


def test_integer_id_and_answer_are_accepted_as_text(dataset_copy, tmp_path: Path) -> None:
    _break_record(dataset_copy, "train", COUNTING, 0, lambda r, d: {**r, "id": 12345, "answer": int(r["answer"])})
    report = prepare(dataset_copy.root, tmp_path / "out", tasks=["visual_counting"], sft_size=4, verbose=False)
    assert not report.problems
    first = pq.read_table(tmp_path / "out" / "visual_counting" / "zero.parquet").to_pylist()[0]
    assert first["extra_info"]["id"] == "12345" and first["reward_model"]["ground_truth"] == first["extra_info"]["answer"]
    assert first["extra_info"]["answer"].isdigit()


def test_every_reason_is_documented() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Bad records", 1)[1].split("\n### ", 1)[0]
    for reason in REASONS:
        assert f"| `{reason}` |" in section, reason
