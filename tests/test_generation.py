"""``verl_reason_rft.generation`` and ``reason-rft eval``: everything but the vLLM call, on CPU."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from verl_reason_rft import generation as gen
from verl_reason_rft.cli import main
from verl_reason_rft.data_prep.rows import rl_schema
from verl_reason_rft.report import read_predictions
from verl_reason_rft.tasks import UnknownDataSource, get_task

HAS_VLLM = importlib.util.find_spec("vllm") is not None


# --------------------------------------------------------------------------- a prepared-style test file


def _png(path: Path, size: tuple[int, int] = (64, 48)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 30, 30)).save(path)
    return str(path)


def _row(data_source: str, index: int, problem: str, answer: str, images: list[str], style: str = "cot") -> dict:
    """One RL/test row in the schema ``reason-rft prepare`` writes (see the contracts)."""
    task = get_task(data_source)
    return {
        "data_source": data_source,
        "prompt": [{"role": "user", "content": "<image>" * len(images) + task.render_prompt(problem, answer, style)}],
        "images": [{"image": image} for image in images],
        "ability": task.name,
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": {
            "id": f"{data_source}-{index}",
            "split": "test",
            "index": index,
            "task": task.name,
            "is_choice": task.is_choice(answer),
            "prompt_style": style,
            "problem": problem,
            "answer": answer,
            "cot": "",
            "extra": "{}",
        },
    }


def _write_parquet(path: Path, rows: list[dict], schema: pa.Schema | None = rl_schema()) -> Path:
    """Rows with prepare's exact parquet schema (``schema=None``: inferred, for malformed rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


@pytest.fixture()
def data_dir(tmp_path) -> Path:
    """A tiny prepared folder: geomath (choice + numeric) and trance (two images)."""
    images = tmp_path / "images"
    geo = [
        _row("geomath", 0, "Which angle is largest?", "B", [_png(images / "g0.png")]),
        _row("geomath", 1, "Find x.", "3.5", [_png(images / "g1.png")]),
    ]
    trance = [
        _row(
            "trance",
            0,
            "Initial objects: ('0', 'cube', 'small', 'red', 'metal')",
            "change_color(0, blue)",
            [_png(images / "t0a.png"), _png(images / "t0b.png", (80, 60))],
        )
    ]
    out = tmp_path / "prepared"
    _write_parquet(out / "structure_perception" / "test_geomath.parquet", geo)
    _write_parquet(out / "spatial_transformation" / "test_trance.parquet", trance)
    return out


# --------------------------------------------------------------------------- pure functions


def test_sampling_params_are_the_papers():
    assert gen.sampling_params() == {"n": 1, "temperature": 0.1, "top_p": 0.9, "top_k": 50, "max_tokens": 768}
    assert gen.sampling_params(max_new_tokens=32, seed=7)["max_tokens"] == 32
    assert gen.sampling_params(seed=7)["seed"] == 7


def test_resolve_benchmarks_expands_task_names_in_order():
    assert gen.resolve_benchmarks(["spatial_transformation", "clevr_math"]) == [
        "trance",
        "trance_left",
        "trance_right",
        "clevr_math",
    ]
    assert gen.resolve_benchmarks(["geomath", "structure_perception"]) == ["geomath", "geometry3k"]
    with pytest.raises(UnknownDataSource, match="no_such_bench"):
        gen.resolve_benchmarks(["no_such_bench"])


def test_prepared_test_file_names_the_missing_file(data_dir):
    assert gen.prepared_test_file(data_dir, "geomath") == data_dir / "structure_perception" / "test_geomath.parquet"
    with pytest.raises(FileNotFoundError, match="test_clevr_math.parquet"):
        gen.prepared_test_file(data_dir, "clevr_math")


def test_cot_requests_use_the_stored_training_prompt(data_dir):
    path = data_dir / "structure_perception" / "test_geomath.parquet"
    rows = pq.read_table(path).to_pylist()
    requests = gen.read_requests(path, "cot")
    assert [r.content for r in requests] == [row["prompt"][0]["content"] for row in rows]
    assert [(r.id, r.answer, r.is_choice) for r in requests] == [("geomath-0", "B", True), ("geomath-1", "3.5", False)]
    assert "select the correct answer by writing the letter" in requests[0].content
    assert "select the correct answer" not in requests[1].content


def test_ans_requests_rerender_the_bare_question_images_first(data_dir):
    path = data_dir / "spatial_transformation" / "test_trance.parquet"
    (request,) = gen.read_requests(path, "ans")
    task = get_task("trance")
    problem = "Initial objects: ('0', 'cube', 'small', 'red', 'metal')"
    assert request.content == "<image><image>" + task.render_prompt(problem, "change_color(0, blue)", "ans")
    assert "<answer>" not in request.content.split("Now, it's your turn!")[1]
    assert request.prompt_style == "ans"
    assert [Path(image["image"]).name for image in request.images] == ["t0a.png", "t0b.png"]


def test_template_override_rerenders_the_prompt(data_dir, tmp_path):
    path = data_dir / "structure_perception" / "test_geomath.parquet"
    templates = {"structure_perception": {"cot": "Q: {problem}", "cot_choice": "Pick: {problem}"}}
    requests = gen.read_requests(path, "cot", prompt_templates=templates)
    assert [r.content for r in requests] == ["<image>Pick: Which angle is largest?", "<image>Q: Find x."]
    yaml_file = tmp_path / "prompts.yaml"
    yaml_file.write_text("structure_perception:\n  cot: 'Q: {problem}'\n")
    assert gen.read_requests(path, prompt_templates=yaml_file)[1].content == "<image>Q: Find x."
    with pytest.raises(ValueError, match="unknown template 'nope'"):
        gen.read_requests(path, prompt_templates={"structure_perception": {"nope": "{problem}"}})


def test_missing_images_are_all_reported(tmp_path):
    rows = [_row("clevr_math", i, "How many?", "3", [str(tmp_path / f"gone{i}.png")]) for i in range(3)]
    path = _write_parquet(tmp_path / "visual_counting" / "test_clevr_math.parquet", rows)
    with pytest.raises(FileNotFoundError, match=r"3 of 3 images named in .*test_clevr_math.parquet") as err:
        gen.read_requests(path)
    assert "gone0.png" in str(err.value) and "gone2.png" in str(err.value) and "row 1" in str(err.value)


def test_relative_images_resolve_against_image_root(tmp_path):
    _png(tmp_path / "root" / "sub" / "a.png")
    path = _write_parquet(tmp_path / "t.parquet", [_row("clevr_math", 0, "How many?", "3", ["sub/a.png"])])
    (request,) = gen.read_requests(path, image_root=tmp_path / "root", max_pixels=50000, min_pixels=1000)
    expected = {"image": str(tmp_path / "root" / "sub" / "a.png"), "max_pixels": 50000, "min_pixels": 1000}
    assert request.images == (expected,)
    with pytest.raises(FileNotFoundError, match="do not exist"):
        gen.read_requests(path)


def test_bad_rows_name_the_file_row_and_field(tmp_path):
    image = _png(tmp_path / "a.png")
    good = _row("clevr_math", 0, "How many?", "3", [image])
    no_extra = dict(good, extra_info=None)
    too_many = dict(good, prompt=[{"role": "user", "content": "<image><image>How many?"}])
    bare_path = dict(good, images=[image])
    cases = (([good, no_extra], 1, "extra_info"), ([good, too_many], 1, "placeholders"), ([bare_path], 0, "images"))
    for rows, index, field in cases:
        path = _write_parquet(tmp_path / "bad.parquet", rows, schema=None)
        with pytest.raises(gen.EvalDataError, match=rf"bad\.parquet row {index}: .*{field}"):
            gen.read_requests(path)


def test_embedded_image_bytes_pass_through(tmp_path):
    data = Path(_png(tmp_path / "a.png")).read_bytes()
    row = _row("clevr_math", 0, "How many?", "3", ["x"])
    row["images"] = [{"bytes": data}]
    path = _write_parquet(tmp_path / "t.parquet", [row], rl_schema(embed_images=True))
    (request,) = gen.read_requests(path)
    assert request.images == ({"bytes": data, "max_pixels": 480000, "min_pixels": 3136},)


def test_limit_takes_the_first_rows(data_dir):
    path = data_dir / "structure_perception" / "test_geomath.parquet"
    assert [r.id for r in gen.read_requests(path, limit=1)] == ["geomath-0"]


def _verl_training_messages(row: dict) -> list[dict]:
    """What verl's ``RLHFDataset._build_messages`` makes of the row at training time (its ``raw_prompt``)."""
    from verl.utils.dataset.rl_dataset import RLHFDataset

    verl_dataset = object.__new__(RLHFDataset)  # only the attributes _build_messages reads
    verl_dataset.image_key, verl_dataset.video_key, verl_dataset.audio_key = "images", "videos", "audios"
    verl_dataset.processor = object()
    return verl_dataset._build_messages(dict(row), key="prompt")


def test_chat_messages_put_images_first_like_verl(data_dir):
    path = data_dir / "spatial_transformation" / "test_trance.parquet"
    (row,) = pq.read_table(path).to_pylist()
    (request,) = gen.read_requests(path)
    ours = gen.chat_messages(request)
    strip = lambda messages: [  # noqa: E731 - the image payload differs (path vs. loaded later)
        [{k: v for k, v in item.items() if k in ("type", "text")} for item in m["content"]] for m in messages
    ]
    assert strip(ours) == strip(_verl_training_messages(row))
    assert [item["type"] for item in ours[0]["content"]] == ["image", "image", "text"]


def test_rendered_prompts_equal_the_training_prompts(prepared_dir, tiny_model_dir):
    """Every prepared benchmark: our chat-template prompt is the one verl renders from the same row."""
    renderer = gen.chat_renderer(str(tiny_model_dir))
    files = sorted(prepared_dir.glob("*/test_*.parquet"))
    assert len(files) == 7
    for path in files:
        rows = pq.read_table(path).to_pylist()
        requests = gen.read_requests(path)
        assert len(requests) == len(rows) > 0
        assert len({r.id for r in requests}) == len(rows)
        for row, request in zip(rows, requests):
            training = renderer.apply_chat_template(
                _verl_training_messages(row), tokenize=False, add_generation_prompt=True
            )
            prompt = gen.render_prompt(renderer, request)
            assert prompt == training
            n_images = len(row["images"])
            vision = "<|vision_start|><|image_pad|><|vision_end|>" * n_images
            assert prompt.count("<|image_pad|>") == n_images == (2 if request.data_source.startswith("trance") else 1)
            assert "<|im_start|>user\n" + vision in prompt  # images first, then the text
            assert row["extra_info"]["problem"] in prompt.split(vision)[1]
            assert prompt.endswith("<|im_start|>assistant\n")
            assert request.answer == row["reward_model"]["ground_truth"]


def test_ans_prompts_for_every_prepared_benchmark(prepared_dir):
    for path in sorted(prepared_dir.glob("*/test_*.parquet")):
        for row, request in zip(pq.read_table(path).to_pylist(), gen.read_requests(path, "ans")):
            task = get_task(row["data_source"])
            problem, answer = row["extra_info"]["problem"], row["extra_info"]["answer"]
            assert request.content == "<image>" * task.images_per_sample + task.render_prompt(problem, answer, "ans")
            assert "<think>" not in request.content


def test_eval_dry_run_builds_every_request_on_cpu(prepared_dir, tiny_model_dir, tmp_path, capsys):
    args = ["eval", "--model", str(tiny_model_dir), "--benchmarks", "visual_counting", "trance",
            "--output-dir", str(tmp_path / "o"), "--data-dir", str(prepared_dir), "--dry-run"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    for source in ("clevr_math", "super_clevr", "trance"):
        assert f"{source}: {len(pq.read_table(gen.prepared_test_file(prepared_dir, source)))} questions" in out
    assert "first prompt of trance (2 image(s))" in out and "<|image_pad|>" in out
    assert not (tmp_path / "o").exists()


def test_vllm_input_carries_the_images_in_order():
    images = [Image.new("RGB", (28, 28)), Image.new("RGB", (56, 28))]
    assert gen.vllm_input("p", images) == {"prompt": "p", "multi_modal_data": {"image": images}}
    assert gen.vllm_input("p", []) == {"prompt": "p"}


def test_predictions_round_trip_into_the_scorer_reader(data_dir, tmp_path):
    requests = [
        *gen.read_requests(data_dir / "structure_perception" / "test_geomath.parquet"),
        *gen.read_requests(data_dir / "spatial_transformation" / "test_trance.parquet"),
    ]
    records = [gen.prediction_record(r, f"<answer>{r.answer}</answer>") for r in requests]
    path = gen.write_predictions(records, tmp_path / "out" / "predictions.jsonl")
    assert [json.loads(line) for line in path.read_text().splitlines()] == records
    assert set(records[0]) == {"id", "data_source", "prompt_style", "prediction", "answer", "is_choice"}
    parsed, skipped = read_predictions(path)
    assert skipped == [] and [(p.data_source, p.id, p.is_choice) for p in parsed] == [
        ("geomath", "geomath-0", True),
        ("geomath", "geomath-1", False),
        ("trance", "trance-0", False),
    ]


def test_write_predictions_leaves_no_partial_file(tmp_path):
    target = tmp_path / "predictions.jsonl"
    target.write_text("old\n")

    def records():
        yield {"id": "1"}
        raise RuntimeError("generation died")

    with pytest.raises(RuntimeError, match="generation died"):
        gen.write_predictions(records(), target)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.jsonl"]


@pytest.mark.skipif(importlib.util.find_spec("qwen_vl_utils") is None, reason="verl's image path needs qwen-vl-utils")
def test_load_images_resizes_like_training(tmp_path):
    pytest.importorskip("torchvision")
    big = _png(tmp_path / "big.png", (1600, 1200))
    small = _png(tmp_path / "small.png", (20, 20))
    limits = {"max_pixels": 480000, "min_pixels": 3136}
    images = ({"image": big, **limits}, {"bytes": Path(small).read_bytes(), **limits})
    request = gen.EvalRequest("1", "trance", "cot", "x", False, "<image><image>t", images)
    first, second = gen.load_images(request)
    for image in (first, second):
        assert image.width % 28 == 0 and image.height % 28 == 0
        assert 3136 <= image.width * image.height <= 480000
    assert first.width > first.height


# --------------------------------------------------------------------------- the command


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here")
def test_eval_without_vllm_exits_with_the_install_hint(data_dir, tmp_path, capsys):
    code = main(
        ["eval", "--engine", "vllm", "--model", str(tmp_path), "--benchmarks", "geomath",
         "--output-dir", str(tmp_path / "o"), "--data-dir", str(data_dir)]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "pip install 'verl-reason-rft[gpu]'" in err and "GPU" in err and "--engine hf" in err
    assert not (tmp_path / "o").exists()


def test_eval_unknown_benchmark_fails_clearly(data_dir, tmp_path, capsys):
    code = main(["eval", "--model", "m", "--benchmarks", "nope", "--output-dir", str(tmp_path), "--dry-run"])
    assert code == 2
    assert "unknown data_source 'nope'" in capsys.readouterr().err


def test_eval_missing_prepared_file_fails_clearly(data_dir, tmp_path, capsys):
    args = ["eval", "--model", "m", "--benchmarks", "clevr_math", "--output-dir", str(tmp_path), "--dry-run"]
    assert main([*args, "--data-dir", str(data_dir)]) == 1
    assert "test_clevr_math.parquet does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------- the GPU path, with stand-ins

FAKE_VLLM = '''
"""Stand-in for vLLM (not installable on CPU): records what it is given, answers with the image count."""
from types import SimpleNamespace

CALLS = {"llm": [], "sampling": [], "inputs": []}


class SamplingParams:
    def __init__(self, **kwargs):
        CALLS["sampling"].append(kwargs)


class LLM:
    def __init__(self, **kwargs):
        CALLS["llm"].append(kwargs)

    def generate(self, inputs, params, use_tqdm=True):
        CALLS["inputs"].extend(inputs)
        texts = [f"<answer>{len(i.get('multi_modal_data', {}).get('image', []))}</answer>" for i in inputs]
        return [SimpleNamespace(outputs=[SimpleNamespace(text=t)]) for t in texts]
'''

FAKE_QWEN_VL_UTILS = '''
"""Stand-in for qwen-vl-utils (needs torchvision): records the per-image keys verl passes on."""
from PIL import Image

SEEN = []


def fetch_image(ele, image_patch_size=14):
    SEEN.append({k: v for k, v in ele.items() if k != "image"} | {"patch": image_patch_size})
    return Image.open(ele["image"]).convert("RGB")
'''


@pytest.fixture()
def stand_ins(tmp_path, monkeypatch):
    """Import ``vllm`` and ``qwen_vl_utils`` from the stand-ins above for one test, then forget them."""
    site = tmp_path / "site"
    for name, source in (("vllm", FAKE_VLLM), ("qwen_vl_utils", FAKE_QWEN_VL_UTILS)):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text(source)
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in ("vllm", "qwen_vl_utils")}
    for name in saved:
        del sys.modules[name]
    monkeypatch.syspath_prepend(str(site))
    yield
    for name in [k for k in sys.modules if k.split(".")[0] in ("vllm", "qwen_vl_utils")]:
        del sys.modules[name]
    sys.modules.update(saved)


def test_eval_wires_requests_through_vllm(prepared_dir, tiny_model_dir, tmp_path, stand_ins, capsys):
    """The full command with stand-ins for vLLM and qwen-vl-utils; verl's own ``process_image`` runs."""
    out = tmp_path / "eval"
    args = ["eval", "--model", str(tiny_model_dir), "--benchmarks", "clevr_math", "trance",
            "--output-dir", str(out), "--data-dir", str(prepared_dir), "--batch-size", "4"]  # fmt: skip
    assert main(args) == 0
    vllm, qwen_vl_utils = sys.modules["vllm"], sys.modules["qwen_vl_utils"]

    per_source = {s: gen.read_requests(gen.prepared_test_file(prepared_dir, s)) for s in ("clevr_math", "trance")}
    requests = [r for items in per_source.values() for r in items]
    (llm_kwargs,) = vllm.CALLS["llm"]
    assert llm_kwargs["model"] == str(tiny_model_dir) and llm_kwargs["limit_mm_per_prompt"] == {"image": 2}
    assert vllm.CALLS["sampling"] == [gen.sampling_params(seed=0)]
    renderer = gen.chat_renderer(str(tiny_model_dir))
    assert [i["prompt"] for i in vllm.CALLS["inputs"]] == [gen.render_prompt(renderer, r) for r in requests]
    assert qwen_vl_utils.SEEN and all(
        seen["max_pixels"] == 480000 and seen["min_pixels"] == 3136 for seen in qwen_vl_utils.SEEN
    )
    assert len(qwen_vl_utils.SEEN) == sum(len(r.images) for r in requests)

    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [(p["data_source"], p["id"], p["answer"]) for p in lines] == [
        (r.data_source, r.id, r.answer) for r in requests
    ]
    assert [p["prediction"] for p in lines] == [f"<answer>{len(r.images)}</answer>" for r in requests]
    config = json.loads((out / "eval_config.json").read_text())
    assert config["benchmarks"] == {s: len(items) for s, items in per_source.items()}
    assert config["sampling"]["top_k"] == 50 and config["engine"] == "vllm"
    assert f"reason-rft score {out / 'predictions.jsonl'}" in capsys.readouterr().out
    assert main(["score", str(out / "predictions.jsonl")]) == 0
