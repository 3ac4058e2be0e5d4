"""``reason-rft score``: per-benchmark scores with the paper's scorer, the table, the chart, bad input.

The expected percentages are worked out here from the scoring rules (SPEC §7) for predictions
built from the prepared sample data: each prediction is right, wrong or partly right by design.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from verl_reason_rft.cli import main
from verl_reason_rft.paper_results import BENCHMARKS, PAPER_ROWS, paper_row
from verl_reason_rft.report import PredictionsError, read_predictions, score_file

CALL = re.compile(r"(\w+)\((\w+),\s*'?(\w+)'?\)")  # SPEC §6 call pattern


def _wrong(answer: str) -> str:
    if answer in ("A", "B", "C", "D"):
        return "A" if answer != "A" else "B"
    return str(int(float(answer)) + 7)


def _answer_item(kind: int, answer: str) -> tuple[str, float]:
    """A counting/structure prediction of a given kind and its score under the SPEC §7 rules."""
    if kind == 0:  # tagged, exact
        return f"<think>I count them.</think>\n<answer>{answer}</answer>", 1.0
    if kind == 1:  # tagged, wrong
        return f"<think>I count them.</think>\n<answer>{_wrong(answer)}</answer>", 0.0
    if kind == 2:  # tagged, equal after stripping / as numbers ("65.0" vs "65" counts in evaluation)
        return (f"<answer> {answer} </answer>", 1.0) if answer.isalpha() else (f"<answer>{float(answer)}</answer>", 1.0)
    if kind == 3:  # untagged, the bare answer
        return f"  {answer}\n", 1.0
    return "I cannot tell.", 0.0  # untagged, no answer


def _spatial_item(kind: int, answer: str) -> tuple[str, float]:
    """A spatial-transformation prediction and its partial-credit score without repeat penalty."""
    calls = CALL.findall(answer)
    k = len(set(calls))
    func, obj, _ = calls[0]
    if kind == 0:  # every call
        return f"<think>compare</think>\n<answer>{answer}</answer>", 1.0
    if kind == 1:  # only the first call: 1 exact of max(1, k)
        return f"<think>compare</think>\n<answer>{func}({obj}, {calls[0][2]})</answer>", 1.0 / k
    if kind == 2:  # the first call with a wrong value: same (func, object) pairs for 0.5
        return f"<answer>{func}({obj}, zzz)</answer>", 0.5 / k
    return f"<answer>{answer}, {answer}</answer>", 1.0  # repeated calls: no penalty in evaluation


@pytest.fixture(scope="module")
def predictions(prepared_dir, tmp_path_factory) -> tuple[Path, dict[str, list[tuple[bool, float]]]]:
    """A predictions JSONL over every prepared test benchmark, and the expected (is_choice, score) per item."""
    lines, expected = [], {}
    files = sorted(prepared_dir.glob("*/test_*.parquet"))
    assert {f.stem.removeprefix("test_") for f in files} == set(BENCHMARKS)
    for offset, path in enumerate(files):
        for i, row in enumerate(pq.read_table(path).to_pylist()):
            source, answer = row["data_source"], row["reward_model"]["ground_truth"]
            make = _spatial_item if source.startswith("trance") else _answer_item
            text, score = make((i + offset) % (4 if make is _spatial_item else 5), answer)
            is_choice = answer in ("A", "B", "C", "D") and source in ("geomath", "geometry3k")
            expected.setdefault(source, []).append((is_choice, score))
            lines.append(
                {"id": row["extra_info"]["id"], "data_source": source, "prompt_style": "cot",
                 "prediction": text, "answer": answer, "is_choice": is_choice}
            )  # fmt: skip
    path = tmp_path_factory.mktemp("eval") / "predictions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path, expected


def _pct(values: list[float]) -> float:
    return 100.0 * sum(values) / len(values)


def test_per_benchmark_scores_follow_the_rules(predictions, tmp_path):
    path, expected = predictions
    report, paths = score_file(path, output_dir=tmp_path)
    got = {b.data_source: b for b in report.benchmarks}
    assert list(got) == list(BENCHMARKS)  # the paper's column order
    for source, items in expected.items():
        assert got[source].n == len(items)
        assert got[source].score == pytest.approx(_pct([s for _, s in items])), source
    assert report.n_items == sum(len(items) for items in expected.values())
    saved = json.loads(paths["scores.json"].read_text())
    assert saved["benchmarks"]["clevr_math"]["score"] == pytest.approx(got["clevr_math"].score)
    assert saved["paper"]["trance"] == 74.61 and saved["paper_row"] == "2B Reason-RFT"


def test_structure_is_split_into_choice_and_non_choice(predictions, tmp_path):
    path, expected = predictions
    report, _ = score_file(path, output_dir=tmp_path)
    got = {b.data_source: b for b in report.benchmarks}
    for source in ("geomath", "geometry3k"):
        choice = [s for is_choice, s in expected[source] if is_choice]
        other = [s for is_choice, s in expected[source] if not is_choice]
        assert choice and other, "the sample data should have both kinds"
        assert (got[source].choice.n, got[source].non_choice.n) == (len(choice), len(other))
        assert got[source].choice.score == pytest.approx(_pct(choice))
        assert got[source].non_choice.score == pytest.approx(_pct(other))
    assert got["clevr_math"].choice is None and got["trance"].choice is None


def test_strict_mode_reads_a_multiline_answer(tmp_path):
    """Paper mode takes a spatial answer from one line only, else parses the whole completion."""
    answer = "change_color(0, blue), change_shape(1, cube)"
    text = f"<think>maybe change_size(9, large)</think>\n<answer>\n{answer}\n</answer>"
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "1", "data_source": "trance", "prediction": text, "answer": answer}) + "\n")
    paper, _ = score_file(path, tmp_path / "paper", mode="paper")
    strict, _ = score_file(path, tmp_path / "strict", mode="strict")
    assert paper.benchmarks[0].score == pytest.approx(100 * 2 / 3)  # 2 exact of max(|P| = 3, |G| = 2)
    assert strict.benchmarks[0].score == pytest.approx(100.0)


def test_table_sits_beside_the_paper_rows(predictions, tmp_path):
    path, _ = predictions
    _, paths = score_file(path, output_dir=tmp_path, paper_row_name="7B Reason-RFT")
    table = paths["scores.md"].read_text()
    header = next(line for line in table.splitlines() if line.startswith("| model |"))
    assert header == "| model | " + " | ".join(BENCHMARKS) + " |"
    for row, numbers in PAPER_ROWS.items():
        line = next(line for line in table.splitlines() if line.startswith(f"| {row} (paper)"))
        cells = [c.strip() for c in line.strip("|").split("|")][1:]
        assert cells == ["—" if numbers[s] is None else f"{numbers[s]:.2f}" for s in BENCHMARKS]
    assert "| 7B Reason-RFT (paper) ← | 95.60 |" in table
    assert "super_clevr split into two subsets" in table and "60.00 / 28.40" in table
    assert "- The paper freezes the vision tower and merger during stage-1 SFT; our SFT" in table  # a known difference
    assert "| geomath |" in table and "choice" in table


def test_chart_is_a_readable_png(predictions, tmp_path):
    path, _ = predictions
    _, paths = score_file(path, output_dir=tmp_path)
    with Image.open(paths["scores.png"]) as image:
        assert image.format == "PNG"
        width, height = image.size
        rgb = image.convert("RGB")
    assert width > height >= 400
    colors = {color for _, color in rgb.getcolors(maxcolors=width * height)}
    assert (31, 119, 180) in colors and (255, 127, 14) in colors  # ours and paper bars are drawn


def test_output_defaults_to_beside_the_predictions(tmp_path):
    path = tmp_path / "run" / "predictions.jsonl"
    path.parent.mkdir()
    line = {"id": 1, "data_source": "clevr_math", "prediction": "<answer>3</answer>", "answer": "3"}
    path.write_text(json.dumps(line))
    report, paths = score_file(path)
    assert {p.parent for p in paths.values()} == {path.parent}
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == ["predictions.jsonl", "scores.json", "scores.md", "scores.png"]
    assert report.benchmarks[0].score == 100.0


# --------------------------------------------------------------------------- bad input

GOOD = {"id": "1", "data_source": "clevr_math", "prediction": "<answer>3</answer>", "answer": "3", "is_choice": False}
BAD_LINES = [
    ("{not json", "not valid JSON"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "prediction"} | {"id": "2"}), "missing field 'prediction'"),
    (json.dumps(GOOD | {"id": "3", "prediction": None}), "field 'prediction' must be a string"),
    (json.dumps(GOOD | {"id": "4", "data_source": "nope"}), "field 'data_source': unknown data_source 'nope'"),
    (json.dumps(GOOD | {"id": "5", "is_choice": "yes"}), "field 'is_choice' must be true or false"),
    (json.dumps(GOOD), "field 'id': '1' repeats line 1"),
    ("[1, 2]", "expected a JSON object"),
]


def _bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([json.dumps(GOOD), "", *(line for line, _ in BAD_LINES)]) + "\n")
    return path


def test_bad_lines_are_all_named_and_nothing_is_written(tmp_path):
    path = _bad_file(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "scores.json").write_text("previous")
    with pytest.raises(PredictionsError) as err:
        score_file(path, output_dir=out)
    message = str(err.value)
    assert f"{len(BAD_LINES)} bad line(s)" in message
    for line_no, (_, problem) in enumerate(BAD_LINES, start=3):  # line 2 is blank
        assert f"{path}:{line_no}: {problem}" in message
    assert sorted(p.name for p in out.iterdir()) == ["scores.json"]
    assert (out / "scores.json").read_text() == "previous"


def test_skip_bad_scores_the_rest_and_counts(tmp_path, capsys):
    path = _bad_file(tmp_path)
    assert main(["score", str(path), "--output-dir", str(tmp_path / "out")]) == 1
    assert "bad.jsonl:3: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(["score", str(path), "--output-dir", str(tmp_path / "out"), "--skip-bad"]) == 0
    saved = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert saved["n_items"] == 1 and len(saved["skipped_lines"]) == len(BAD_LINES)
    assert "7 bad line(s) skipped" in (tmp_path / "out" / "scores.md").read_text()


def test_is_choice_defaults_from_the_task(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [
        {"id": "1", "data_source": "geomath", "prediction": "A", "answer": "A"},
        {"id": "2", "data_source": "geomath", "prediction": "4", "answer": "5"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    records, _ = read_predictions(path)
    assert [r.is_choice for r in records] == [True, False]


def test_empty_or_missing_file_fails_clearly(tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(PredictionsError, match="no predictions to score"):
        score_file(tmp_path / "empty.jsonl")
    assert main(["score", str(tmp_path / "missing.jsonl")]) == 1
    assert "predictions file not found" in capsys.readouterr().err


def test_unknown_paper_row_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown paper row 'GPT-5'"):
        paper_row("GPT-5")
    with pytest.raises(SystemExit):
        main(["score", str(tmp_path / "p.jsonl"), "--paper-row", "GPT-5"])


def test_cli_prints_the_table_and_the_chosen_row(predictions, tmp_path, capsys):
    path, _ = predictions
    assert main(["score", str(path), "--output-dir", str(tmp_path), "--paper-row", "GPT-4o"]) == 0
    out = capsys.readouterr().out
    assert "| **ours** |" in out and "| GPT-4o (paper) ← | 68.10 |" in out
    assert all((tmp_path / name).is_file() for name in ("scores.json", "scores.md", "scores.png"))
