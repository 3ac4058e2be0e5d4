"""``reason-rft eval --engine hf``: real transformers generation with the tiny Qwen2-VL on the prepared samples."""

from __future__ import annotations

import json
import shutil

import pytest

from verl_reason_rft import generation as gen
from verl_reason_rft import hf_generation as hfg
from verl_reason_rft.cli import main
from verl_reason_rft.report import read_predictions


def test_generate_kwargs_are_spec_7_sampling():
    kwargs = hfg.generate_kwargs(768, [12, 13])
    assert kwargs == {
        "do_sample": True,
        "temperature": 0.1,
        "top_p": 0.9,
        "top_k": 50,
        "max_new_tokens": 768,
        "num_return_sequences": 1,
        "suppress_tokens": [12, 13],
    }
    sampling = gen.sampling_params()
    assert (kwargs["temperature"], kwargs["top_p"], kwargs["top_k"]) == (
        sampling["temperature"],
        sampling["top_p"],
        sampling["top_k"],
    )
    assert "suppress_tokens" not in hfg.generate_kwargs(8)


def test_vision_token_ids_of_a_qwen2_vl_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = hfg.vision_token_ids(tokenizer)
    assert len(ids) == 5
    assert sorted(tokenizer.convert_tokens_to_ids(list(hfg.VISION_TOKENS))) == ids


def test_default_engine_follows_vllm_availability():
    assert gen.default_engine() == ("vllm" if gen.vllm_available() else "hf")


def test_eval_hf_writes_predictions_for_every_benchmark(prepared_dir, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["eval", "--engine", "hf", "--model", str(tiny_model_dir), "--benchmarks", "visual_counting",
            "spatial_transformation", "--output-dir", str(out), "--data-dir", str(prepared_dir), "--limit", "2",
            "--max-new-tokens", "8", "--batch-size", "3", "--threads", "1"]  # fmt: skip
    assert main(args) == 0
    sources = ["clevr_math", "super_clevr", "trance", "trance_left", "trance_right"]
    expected = [r for s in sources for r in gen.read_requests(gen.prepared_test_file(prepared_dir, s), limit=2)]
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [(p["data_source"], p["id"], p["answer"]) for p in lines] == [
        (r.data_source, r.id, r.answer) for r in expected
    ]
    assert all(isinstance(p["prediction"], str) and p["prediction"] for p in lines)
    assert not any(token in p["prediction"] for p in lines for token in hfg.VISION_TOKENS + ("<|im_end|>",))
    config = json.loads((out / "eval_config.json").read_text())
    assert config["engine"] == "hf"
    assert config["benchmarks"] == {s: 2 for s in sources}
    assert config["sampling"]["max_tokens"] == 8
    assert "wrote 10 predictions" in capsys.readouterr().out
    parsed, skipped = read_predictions(out / "predictions.jsonl")
    assert skipped == [] and len(parsed) == 10
    assert main(["score", str(out / "predictions.jsonl")]) == 0


@pytest.fixture()
def vision_loving_model(tiny_model_dir, tmp_path):
    """The tiny model with an LM head that always prefers a vision token (what the suppression is for).

    Every non-vision row of the head is zero (logit 0); ``<|image_pad|>`` gets ``+c·u`` and
    ``<|vision_end|>`` ``-c·u``, so one of the two has a large positive logit at every position.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    path = tmp_path / "vision_loving"
    shutil.copytree(tiny_model_dir, path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path)
    head = model.lm_head.weight
    image_pad, vision_end = tokenizer.convert_tokens_to_ids(["<|image_pad|>", "<|vision_end|>"])
    direction = torch.randn(head.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        head.zero_()
        head[image_pad] = 1000 * direction
        head[vision_end] = -1000 * direction
    model.save_pretrained(path)
    return path, {image_pad, vision_end}


def test_vision_tokens_are_never_generated(vision_loving_model, prepared_dir):
    import torch
    from verl.utils import hf_processor

    path, vision_ids = vision_loving_model
    requests = gen.read_requests(gen.prepared_test_file(prepared_dir, "trance"), limit=2)

    # without suppression this model emits only vision tokens, which skip_special_tokens then hides
    processor = hf_processor(str(path))
    processor.tokenizer.padding_side = "left"
    prompts, images = zip(*(gen.model_input(processor, r, gen.image_patch_size(processor)) for r in requests))
    flat_images = [image for request_images in images for image in request_images]
    batch = processor(text=list(prompts), images=flat_images, padding=True, return_tensors="pt")
    model = hfg.load_model(str(path), "cpu")
    with torch.inference_mode():
        raw = model.generate(**batch, **hfg.generate_kwargs(6), pad_token_id=processor.tokenizer.pad_token_id)
    new_tokens = raw[:, batch["input_ids"].shape[1] :]
    assert set(new_tokens.flatten().tolist()) <= vision_ids
    assert processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True) == ["", ""]

    # the engine suppresses them: real text comes out instead
    records = hfg.generate_hf(str(path), requests, max_new_tokens=6, batch_size=2, device="cpu", threads=1)
    assert [r["id"] for r in records] == [r.id for r in requests]
    assert all(r["prediction"] for r in records)
    token_ids = processor.tokenizer([r["prediction"] for r in records], add_special_tokens=False)["input_ids"]
    assert not vision_ids & {t for ids in token_ids for t in ids}


def test_hf_engine_on_a_text_only_folder_fails_clearly(prepared_dir, tmp_path, capsys):
    args = ["eval", "--engine", "hf", "--model", str(tmp_path / "no_model"), "--benchmarks", "clevr_math",
            "--output-dir", str(tmp_path / "o"), "--data-dir", str(prepared_dir), "--limit", "1"]  # fmt: skip
    assert main(args) == 1
    assert "hf engine" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

