"""ReasonRFTSFTDataset, loaded through verl's SFT trainer hook (``create_sft_dataset``) with a tiny Qwen2-VL."""

from __future__ import annotations

import pytest
import torch
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize
from verl.trainer.sft_trainer import create_sft_dataset

from verl_reason_rft.data.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, MissingImagesError
from verl_reason_rft.data.sft_dataset import ReasonRFTSFTDataset


def build(data, tokenizer, processor=None, rows=None, **config):
    return create_sft_dataset([data.sft_file(rows)], data.sft_config(**config), tokenizer, processor)


def expected_tokens(size: tuple[int, int], max_pixels: int, patch: int = 14, merge: int = 2) -> int:
    height, width = smart_resize(size[1], size[0], factor=patch * merge, min_pixels=DEFAULT_MIN_PIXELS, max_pixels=max_pixels)
    return (height // patch) * (width // patch) // (merge * merge)


def test_custom_cls_normalises_image_entries(data, tokenizer) -> None:
    dataset = build(data, tokenizer)
    assert type(dataset) is ReasonRFTSFTDataset and len(dataset) == 2
    for i, original in enumerate(data.sft_rows()):
        assert list(dataset.dataframe.iloc[i]["images"]) == [
            {"image": str((data.image_root / e["image"]).resolve()), "max_pixels": DEFAULT_MAX_PIXELS, "min_pixels": DEFAULT_MIN_PIXELS}
            for e in original["images"]
        ]
    assert dataset.messages == [row["messages"] for row in data.sft_rows()]


def test_missing_image_is_reported_with_its_row(data, tokenizer) -> None:
    rows = data.sft_rows()
    rows[1]["images"][1] = {"image": "trance/gone.png"}
    with pytest.raises(MissingImagesError, match=r"row 1 \(id=spatial_transformation-1, data_source=trance\): images\[1\] = 'trance/gone.png'"):
        build(data, tokenizer, rows=rows)


def test_prompt_template_override_changes_only_the_user_turn(data, tokenizer) -> None:
    template = "Q: {problem}\nThink, then answer in <answer></answer>."
    dataset = build(data, tokenizer, prompt_templates={"visual_counting": {"cot": template}})
    first = list(dataset.dataframe.iloc[0]["messages"])
    assert first[0] == {"role": "user", "content": "<image>Q: How many cubes are there?\nThink, then answer in <answer></answer>."}
    assert first[1] == data.sft_rows()[0]["messages"][1]  # the target is not touched
    assert dataset.messages[0] == first


def _item(dataset, processor, i: int):
    item = dataset[i]
    ids = item["input_ids"]
    return item, ids, ids.tolist().count(processor.tokenizer.convert_tokens_to_ids("<|image_pad|>"))


def test_image_tokens_and_mrope_positions_for_one_and_two_images(data, processor) -> None:
    dataset = build(data, processor.tokenizer, processor)
    for i, original in enumerate(data.sft_rows()):
        item, ids, n_pad = _item(dataset, processor, i)
        sizes = [data.sizes[e["image"]] for e in original["images"]]
        assert n_pad == sum(expected_tokens(s, DEFAULT_MAX_PIXELS) for s in sizes)
        assert item["position_ids"].shape == (4, ids.shape[0])  # text row + 3 mrope rows
        assert item["multi_modal_inputs"]["image_grid_thw"].shape == (len(sizes), 3)
        assert torch.equal(item["position_ids"][0], torch.arange(ids.shape[0]))


def test_loss_mask_covers_exactly_the_assistant_turn(data, processor) -> None:
    dataset = build(data, processor.tokenizer, processor)
    for i, original in enumerate(data.sft_rows()):
        item, ids, _ = _item(dataset, processor, i)
        mask = item["loss_mask"].bool()
        target = original["messages"][1]["content"]
        assert processor.tokenizer.decode(ids[mask]) == target + "<|im_end|>\n"
        assert "<|image_pad|>" not in processor.tokenizer.decode(ids[mask])


def test_max_pixels_honoured(data, processor) -> None:
    rows = data.sft_rows()[:1]
    rows[0]["images"] = [{"image": "count/b.png"}]  # 1000x800
    for max_pixels in (50_000, DEFAULT_MAX_PIXELS):
        dataset = build(data, processor.tokenizer, processor, rows=rows, max_pixels=max_pixels)
        item, _, n_pad = _item(dataset, processor, 0)
        t, h, w = item["multi_modal_inputs"]["image_grid_thw"][0].tolist()
        assert h * w * 14 * 14 <= max_pixels
        assert n_pad == expected_tokens((1000, 800), max_pixels)


def test_embedded_image_bytes_survive_repeated_reads(data, processor) -> None:
    """verl's image loader writes the decoded image into a ``{"bytes": ...}`` entry it is given; the
    dataset's own rows must not keep it (a second epoch failed with "Cannot have both `bytes` and `image`")."""
    rows = data.sft_rows()
    for row in rows:
        row["images"] = [{"bytes": (data.image_root / e["image"]).read_bytes()} for e in row["images"]]
    dataset = build(data, processor.tokenizer, processor, rows=rows)
    for i in range(len(rows)):
        first, second = dataset[i], dataset[i]
        assert torch.equal(first["input_ids"], second["input_ids"])
        assert torch.equal(first["multi_modal_inputs"]["pixel_values"], second["multi_modal_inputs"]["pixel_values"])
        assert [set(e) for e in dataset.dataframe.iloc[i]["images"]] == [{"bytes", "max_pixels", "min_pixels"}] * len(rows[i]["images"])


def test_prompt_override_without_extra_info_is_a_clear_error(data, tokenizer) -> None:
    rows = [{k: v for k, v in row.items() if k != "extra_info"} for row in data.sft_rows()]
    with pytest.raises(ValueError, match=r"sft\.parquet: .*need the columns \['extra_info'\]"):
        build(data, tokenizer, rows=rows, prompt_style="ans")
