"""ReasonRFTRLDataset, loaded through verl's ``data.custom_cls`` (``create_rl_dataset``) with a tiny Qwen2-VL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize
from verl.trainer.ppo.utils import create_rl_dataset
from verl.utils.dataset.rl_dataset import RLHFDataset

from verl_reason_rft.data.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, MissingImagesError
from verl_reason_rft.data.rl_dataset import ReasonRFTRLDataset
from verl_reason_rft.tasks import get_task

QWEN_DEFAULT_MAX_PIXELS = 16384 * 28 * 28  # qwen_vl_utils' cap when an entry names none


def build(data, tokenizer, processor=None, rows=None, **config):
    return create_rl_dataset([data.rl_file(rows)], data.rl_config(**config), tokenizer, processor)


def expected_tokens(size: tuple[int, int], max_pixels: int, min_pixels: int, patch: int = 14, merge: int = 2) -> int:
    """Image tokens for a (width, height) image: resized to multiples of patch*merge within the pixel limits."""
    height, width = smart_resize(size[1], size[0], factor=patch * merge, min_pixels=min_pixels, max_pixels=max_pixels)
    return (height // patch) * (width // patch) // (merge * merge)


def test_custom_cls_resolves_relative_paths_and_adds_pixel_limits(data, tokenizer) -> None:
    dataset = build(data, tokenizer)
    assert type(dataset) is ReasonRFTRLDataset
    rows = dataset.dataframe.to_list()
    assert len(rows) == 3
    for row, original in zip(rows, data.rl_rows()):
        assert row["images"] == [
            {"image": str((data.image_root / entry["image"]).resolve()), "max_pixels": DEFAULT_MAX_PIXELS, "min_pixels": DEFAULT_MIN_PIXELS}
            for entry in original["images"]
        ]
        assert row["prompt"] == original["prompt"]  # no prompt override configured: untouched
        assert row["extra_info"] == original["extra_info"]


def test_absolute_and_file_url_paths_are_kept(data, tokenizer) -> None:
    rows = data.rl_rows()[:1]
    absolute = str((data.image_root / "count/a.png").resolve())
    rows[0]["images"] = [{"image": "file://" + absolute}]
    dataset = build(data, tokenizer, rows=rows, image_root=None)
    assert dataset.dataframe[0]["images"][0]["image"] == absolute


def test_missing_image_names_row_path_and_setting(data, tokenizer) -> None:
    rows = data.rl_rows()
    rows[1]["images"] = [{"image": "count/missing.png"}]
    with pytest.raises(MissingImagesError) as err:
        build(data, tokenizer, rows=rows)
    message = str(err.value)
    assert "1 of 4 images" in message
    assert "row 1 (id=visual_counting-1, data_source=clevr_math)" in message
    assert "'count/missing.png'" in message and str(data.image_root / "count/missing.png") in message
    assert f"data.image_root={data.image_root.resolve()}" in message and "rl.parquet" in message


def test_wrong_image_root_fails_at_build_time_not_silently_filtered(data, tokenizer, tmp_path: Path) -> None:
    with pytest.raises(MissingImagesError, match=r"4 of 4 images .*data.image_root="):
        build(data, tokenizer, image_root=str(tmp_path / "elsewhere"))
    with pytest.raises(MissingImagesError, match="data.image_root unset"):
        build(data, tokenizer, image_root=None)  # relative to the cwd, where the images are not


def test_pixel_limits_come_from_config_and_null_leaves_them_out(data, tokenizer) -> None:
    capped = build(data, tokenizer, max_pixels=100_000, min_pixels=1_000)
    assert {(e["max_pixels"], e["min_pixels"]) for row in capped.dataframe["images"] for e in row} == {(100_000, 1_000)}
    free = build(data, tokenizer, max_pixels=None, min_pixels=None)
    assert all(set(e) == {"image"} for row in free.dataframe["images"] for e in row)
    with pytest.raises(ValueError, match="data.max_pixels"):
        build(data, tokenizer, max_pixels=-5)
    with pytest.raises(ValueError, match="smaller than data.min_pixels"):
        build(data, tokenizer, max_pixels=100, min_pixels=200)


def test_prompt_template_override_rerenders_the_user_turn(data, tokenizer) -> None:
    template = "Count the objects. {problem} Reply as <answer>N</answer>."
    dataset = build(data, tokenizer, prompt_templates={"visual_counting": {"cot": template}})
    rows, originals = dataset.dataframe.to_list(), data.rl_rows()
    assert rows[0]["prompt"] == [
        {"role": "user", "content": "<image>Count the objects. How many cubes are there? Reply as <answer>N</answer>."}
    ]
    assert rows[2]["prompt"] == originals[2]["prompt"]  # other task: its own (default) template
    assert [r["extra_info"]["prompt_style"] for r in rows] == ["cot"] * 3


def test_prompt_style_ans_renders_bare_questions(data, tokenizer) -> None:
    dataset = build(data, tokenizer, prompt_style="ans")
    rows = dataset.dataframe.to_list()
    assert rows[0]["prompt"][0]["content"] == "<image>How many cubes are there?"
    spatial = get_task("trance").render_prompt("Objects: (0, cube, small, red, metal)", "x", "ans")
    assert rows[2]["prompt"][0]["content"] == "<image><image>" + spatial
    assert [r["extra_info"]["prompt_style"] for r in rows] == ["ans"] * 3


def test_bad_prompt_overrides_are_reported(data, tokenizer) -> None:
    with pytest.raises(ValueError, match=r"data.prompt_templates: .*unknown task 'counting'"):
        build(data, tokenizer, prompt_templates={"counting": {"cot": "{problem}"}})
    with pytest.raises(ValueError, match="data.prompt_templates: .*must be a string containing"):
        build(data, tokenizer, prompt_templates={"visual_counting": {"cot": "no placeholder"}})
    with pytest.raises(ValueError, match="data.prompt_style"):
        build(data, tokenizer, prompt_style="short")


def _prompt_tokens(dataset, processor, item: int) -> tuple[list[int], list]:
    """What verl's agent loop does with a sample: the class's ``process_multi_modal_info``, then the processor."""
    messages = dataset[item]["raw_prompt"]
    images, _, _ = asyncio.run(
        type(dataset).process_multi_modal_info(messages, image_patch_size=processor.image_processor.patch_size, config=dataset.config)
    )
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=images, return_tensors="pt")
    return inputs["input_ids"][0].tolist(), images


def test_image_tokens_for_one_and_two_images(data, processor) -> None:
    dataset = build(data, processor.tokenizer, processor)
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    patch, merge = processor.image_processor.patch_size, processor.image_processor.merge_size
    for item, original in enumerate(data.rl_rows()):
        ids, images = _prompt_tokens(dataset, processor, item)
        sizes = [data.sizes[e["image"]] for e in original["images"]]
        assert len(images) == len(sizes)
        expected = sum(expected_tokens(s, DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, patch, merge) for s in sizes)
        assert ids.count(pad) == expected
        assert ids.count(processor.tokenizer.convert_tokens_to_ids("<|vision_start|>")) == len(sizes)


def test_max_pixels_resizes_images(data, processor) -> None:
    dataset = build(data, processor.tokenizer, processor, max_pixels=50_000)
    _, images = _prompt_tokens(dataset, processor, 1)  # count/b.png is 1000x800
    width, height = images[0].size
    assert width * height <= 50_000 and width % 28 == 0 and height % 28 == 0
    assert (height, width) == smart_resize(800, 1000, factor=28, min_pixels=DEFAULT_MIN_PIXELS, max_pixels=50_000)


def test_overlong_prompts_filtered_unless_pixels_are_capped(data, processor) -> None:
    big = data.sizes["count/b.png"]
    capped = expected_tokens(big, DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS)
    uncapped = expected_tokens(big, QWEN_DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS)
    limit = capped + 150  # room for the prompt text, far below the uncapped image alone
    assert uncapped > limit
    kept = build(data, processor.tokenizer, processor, max_prompt_length=limit)
    assert [r["extra_info"]["index"] for r in kept.dataframe] == [0, 1, 2]
    filtered = build(data, processor.tokenizer, processor, max_prompt_length=limit, max_pixels=None)
    assert [r["extra_info"]["index"] for r in filtered.dataframe] == [0, 2]


def test_getitem_matches_plain_rlhf_dataset_on_normalised_rows(data, processor) -> None:
    """Apart from the normalised image entries, items are verl's own: no per-item work is added."""
    ours = build(data, processor.tokenizer, processor)
    plain_rows = data.rl_rows()
    for row, normalised in zip(plain_rows, ours.dataframe["images"]):
        row["images"] = normalised
    plain = RLHFDataset(data.rl_file(plain_rows, "plain.parquet"), processor.tokenizer, data.rl_config(), processor)
    for i in range(len(plain)):
        a, b = ours[i], plain[i]
        assert a.keys() == b.keys()
        assert a["raw_prompt"] == b["raw_prompt"] and a["extra_info"] == b["extra_info"]


def test_prompt_override_without_the_needed_fields_names_the_file_and_row(data, tokenizer) -> None:
    rows = [{k: v for k, v in row.items() if k != "extra_info"} for row in data.rl_rows()]
    with pytest.raises(ValueError, match=r"rl\.parquet: .*need the columns \['extra_info'\]"):
        build(data, tokenizer, rows=rows, prompt_style="ans")
    rows = data.rl_rows()
    del rows[2]["extra_info"]["problem"]
    with pytest.raises(ValueError, match=r"rl\.parquet: row 2 \(id=spatial_transformation-2, data_source=trance\): .*extra_info\.problem"):
        build(data, tokenizer, rows=rows, prompt_style="ans")
