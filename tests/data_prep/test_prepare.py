"""``prepare`` on the sample dataset: splits, row schemas, prompts, CoT wrapping, determinism, atomicity."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from verl_reason_rft.cli import main as cli_main
from verl_reason_rft.data_prep.prepare import REPORT_FILE, prepare
from verl_reason_rft.data_prep.rows import cot_body, cot_target
from verl_reason_rft.tasks import get_registry

STAGES = ("sft", "rl", "zero", "cot_sft", "ans_sft")
RL_COLUMNS = ["data_source", "prompt", "images", "ability", "reward_model", "extra_info"]
SFT_COLUMNS = ["messages", "images", "data_source", "extra_info"]
EXTRA_INFO_KEYS = ["id", "split", "index", "task", "is_choice", "prompt_style", "problem", "answer", "cot", "extra"]


def rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def train_records(dataset: Path, task: str) -> list[dict]:
    return json.loads((dataset / "train_jsons" / get_registry().tasks[task].train_file).read_text())


def test_sample_dataset_prepares_clean(prepared_dir: Path) -> None:
    report = json.loads((prepared_dir / REPORT_FILE).read_text())
    assert report["dropped"] == [] and report["file_errors"] == []
    for spec in get_registry().tasks.values():
        for stage in STAGES:
            assert (prepared_dir / spec.name / f"{stage}.parquet").is_file()
        for data_source in spec.test_files.values():
            assert report["outputs"][f"{spec.name}/test_{data_source}.parquet"] > 0


@pytest.mark.parametrize("task", ["visual_counting", "spatial_transformation", "structure_perception"])
def test_splits_follow_the_paper(prepared_dir: Path, sample_dataset_dir: Path, task: str) -> None:
    spec = get_registry().tasks[task]
    ids = [r["id"] for r in train_records(sample_dataset_dir, task)]
    ids_of = {stage: [r["extra_info"]["id"] for r in rows(prepared_dir / task / f"{stage}.parquet")] for stage in STAGES}
    assert ids_of["sft"] == ids[:4]  # the prepared_dir fixture uses sft_size=4
    assert ids_of["rl"] == (ids if spec.rl_uses_all_records else ids[4:])
    assert ids_of["zero"] == ids_of["cot_sft"] == ids_of["ans_sft"] == ids
    assert spec.rl_uses_all_records == (task == "structure_perception")


def test_rl_rows_have_the_contract_schema_and_rendered_prompts(prepared_dir: Path) -> None:
    for spec in get_registry().tasks.values():
        files = ["rl.parquet", "zero.parquet", *(f"test_{s}.parquet" for s in spec.test_files.values())]
        for name in files:
            table = pq.read_table(prepared_dir / spec.name / name)
            assert table.column_names == RL_COLUMNS
            for row in table.to_pylist():
                info = row["extra_info"]
                assert list(info) == EXTRA_INFO_KEYS and info["prompt_style"] == "cot" and info["task"] == spec.name
                expected_source = spec.name if not name.startswith("test_") else name[len("test_") : -len(".parquet")]
                assert row["data_source"] == expected_source and row["ability"] == spec.name
                assert row["reward_model"] == {"style": "rule", "ground_truth": info["answer"]}
                assert len(row["prompt"]) == 1 and row["prompt"][0]["role"] == "user"
                content = row["prompt"][0]["content"]
                text = spec.render_prompt(info["problem"], info["answer"], "cot")
                assert content == "<image>" * spec.images_per_sample + text
                assert content.count("<image>") == len(row["images"]) == spec.images_per_sample
                assert all(os.path.isabs(i["image"]) and os.path.isfile(i["image"]) for i in row["images"])
                assert info["is_choice"] == spec.is_choice(info["answer"])


def test_two_images_keep_initial_then_final_order(prepared_dir: Path) -> None:
    for row in rows(prepared_dir / "spatial_transformation" / "zero.parquet"):
        assert [Path(i["image"]).stem[-2:] for i in row["images"]] == ["_0", "_1"]


def test_sft_rows_have_cot_and_answer_targets(prepared_dir: Path) -> None:
    for spec in get_registry().tasks.values():
        for stage, style in (("sft", "cot"), ("cot_sft", "cot"), ("ans_sft", "ans")):
            table = pq.read_table(prepared_dir / spec.name / f"{stage}.parquet")
            assert table.column_names == SFT_COLUMNS
            for row in table.to_pylist():
                info = row["extra_info"]
                user, assistant = row["messages"]
                assert info["prompt_style"] == style and info["split"] == stage
                assert user == {"role": "user", "content": "<image>" * spec.images_per_sample + spec.render_prompt(info["problem"], info["answer"], style)}
                assert assistant["role"] == "assistant"
                if style == "ans":
                    assert assistant["content"] == info["answer"]
                else:
                    match = re.fullmatch(r"<think>\n(.*)\n</think>\n<answer>\n(.*)\n</answer>", assistant["content"], re.S)
                    assert match and match.group(2) == info["answer"]
                    assert "<think>" not in match.group(1) and "<answer>" not in match.group(1) and match.group(1).strip()


def test_structure_choice_items_get_the_choice_prompt(prepared_dir: Path) -> None:
    contents = {r["extra_info"]["is_choice"]: r["prompt"][0]["content"] for r in rows(prepared_dir / "structure_perception" / "zero.parquet")}
    assert "select the correct answer" in contents[True] and "select the correct answer" not in contents[False]


@pytest.mark.parametrize(
    "cot",
    [
        "I count 3.",
        "<think>\nI count 3.\n</think>",
        "<think>I count 3.</think>\n<answer>3</answer>",
        "  <think> I count 3. </think>  ",
        "I count 3.\n<answer>3</answer>",
        "I count 3. <answer> 3 </answer>\n",
    ],
)
def test_cot_is_never_wrapped_twice(cot: str) -> None:
    assert cot_body(cot) == "I count 3."
    assert cot_target(cot, "3") == "<think>\nI count 3.\n</think>\n<answer>\n3\n</answer>"


def test_cot_with_tags_inside_the_text_is_kept_verbatim() -> None:
    assert cot_body("first <think>a</think> then more") == "first <think>a</think> then more"
    assert cot_body("<think>a</think> b <think>c</think>") == "<think>a</think> b <think>c</think>"
    assert cot_body("the tag <answer>x</answer> then text") == "the tag <answer>x</answer> then text"


def test_test_files_keep_extra_keys(prepared_dir: Path) -> None:
    extras = [json.loads(r["extra_info"]["extra"]) for r in rows(prepared_dir / "visual_counting" / "test_super_clevr.parquet")]
    assert extras and all(e.get("subset", "").startswith("superCLEVR") for e in extras)
    views = {json.loads(r["extra_info"]["extra"])["view"] for r in rows(prepared_dir / "spatial_transformation" / "test_trance_left.parquet")}
    assert views == {"left"}


def test_rerun_gives_byte_identical_files(sample_dataset_dir: Path, tmp_path: Path) -> None:
    first = prepare(sample_dataset_dir, tmp_path / "a", sft_size=4, verbose=False)
    prepare(sample_dataset_dir, tmp_path / "b", sft_size=4, verbose=False)
    names = [*first.outputs, REPORT_FILE]
    assert len(names) == 23
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_failure_mid_write_leaves_no_partial_file(sample_dataset_dir: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    prepare(sample_dataset_dir, out, tasks=["visual_counting"], sft_size=4, verbose=False)
    before = (out / "visual_counting" / "rl.parquet").read_bytes()
    real_write = pq.write_table
    calls = []

    def crash_on_second(table, where, **kwargs):
        calls.append(where)
        if len(calls) == 2:
            Path(where).write_bytes(b"PAR1 half a file")
            raise OSError("disk full")
        return real_write(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        prepare(sample_dataset_dir, out, tasks=["visual_counting"], sft_size=2, verbose=False)
    assert (out / "visual_counting" / "rl.parquet").read_bytes() == before  # the old complete file survives
    leftovers = [p.name for p in (out / "visual_counting").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    pq.read_table(out / "visual_counting" / "sft.parquet")  # rewritten one is complete


def test_prompts_file_overrides_templates(sample_dataset_dir: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text('visual_counting:\n  cot: "Q: {problem} Think, then answer in tags."\n')
    prepare(sample_dataset_dir, tmp_path / "out", tasks=["visual_counting"], prompts=prompts, sft_size=4, verbose=False)
    for row in rows(tmp_path / "out" / "visual_counting" / "rl.parquet"):
        assert row["prompt"][0]["content"] == f"<image>Q: {row['extra_info']['problem']} Think, then answer in tags."
    ans = rows(tmp_path / "out" / "visual_counting" / "ans_sft.parquet")[0]
    assert ans["messages"][0]["content"] == "<image>" + ans["extra_info"]["problem"]  # untouched template


@pytest.mark.parametrize(
    "text, message",
    [
        ("no_such_task:\n  cot: '{problem}'\n", "unknown task 'no_such_task'"),
        ("visual_counting:\n  cot_choice: '{problem}'\n", "unknown template 'cot_choice'"),
        ("visual_counting:\n  cot: 'no placeholder'\n", "{problem}"),
    ],
)
def test_bad_prompts_file_is_a_clear_error(sample_dataset_dir: Path, tmp_path: Path, text: str, message: str) -> None:
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        prepare(sample_dataset_dir, tmp_path / "out", prompts=prompts, verbose=False)
    assert not (tmp_path / "out").exists()


def test_image_root_is_tried_after_the_dataset_folders(dataset_copy, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    (dataset_copy.root / "images" / "train_images").rename(moved)
    report = prepare(dataset_copy.root, tmp_path / "out", tasks=["visual_counting"], verbose=False)
    assert report.dropped[("A3-Visual-Counting-train-35k-cot.json", "image_not_found")] == 12
    report = prepare(dataset_copy.root, tmp_path / "out", tasks=["visual_counting"], image_root=moved, sft_size=4, verbose=False)
    assert not report.problems
    image = rows(tmp_path / "out" / "visual_counting" / "sft.parquet")[0]["images"][0]["image"]
    assert image.startswith(str(moved.resolve()))


def test_embedded_images_hold_the_file_bytes(sample_dataset_dir: Path, tmp_path: Path) -> None:
    prepare(sample_dataset_dir, tmp_path / "out", tasks=["spatial_transformation"], embed_images=True, verbose=False)
    embedded = rows(tmp_path / "out" / "spatial_transformation" / "zero.parquet")
    first = embedded[0]
    assert list(first["images"][0]) == ["bytes"] and len(first["images"]) == 2
    record = train_records(sample_dataset_dir, "spatial_transformation")[0]
    expected = (sample_dataset_dir / "images" / "train_images" / record["image"][0]).read_bytes()
    assert first["images"][0]["bytes"] == expected


def test_cli_prepare_and_samples(tmp_path: Path, capsys) -> None:
    assert cli_main(["samples", "--output-dir", str(tmp_path / "d"), "--per-task", "3", "--tasks", "visual_counting"]) == 0
    assert cli_main(["prepare", "--dataset-dir", str(tmp_path / "d"), "--output-dir", str(tmp_path / "o"), "--tasks", "visual_counting", "--sft-size", "1"]) == 0
    out = capsys.readouterr().out
    assert "visual_counting/rl.parquet" in out and "dropped records: none" in out
    assert len(rows(tmp_path / "o" / "visual_counting" / "rl.parquet")) == 2
    # every task asked for, but only one generated: the others' files are missing -> non-zero exit, named
    assert cli_main(["prepare", "--dataset-dir", str(tmp_path / "d"), "--output-dir", str(tmp_path / "o2")]) == 1
    assert "A1-Spatial-Transformation-train-60k-cot.json" in capsys.readouterr().out


def test_unknown_task_is_a_clear_error(sample_dataset_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown task.*nope.*known: spatial_transformation"):
        prepare(sample_dataset_dir, tmp_path, tasks=["nope"], verbose=False)
