"""The written parquet files load with verl's own dataset classes (tiny Qwen2-VL, offline).

verl's multimodal ``__getitem__`` needs a Qwen2-VL processor, which transformers 5 builds only when
torchvision imports (verl's image loader, qwen_vl_utils, imports it too). The test command installs
torchvision; where it is missing, those checks are skipped.
Everything else (parquet reading, verl's prompt-length filter on the text) always runs.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf
from PIL import Image
from transformers import AutoTokenizer
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.utils.dataset.vision_utils import process_image

from verl_reason_rft.tiny_model import processor_available

needs_processor = pytest.mark.skipif(
    not processor_available(), reason="a Qwen2-VL processor needs torchvision (not installed here)"
)
RL_FILES = ["spatial_transformation/rl.parquet", "structure_perception/test_geomath.parquet"]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def processor(tiny_model_dir: Path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


def _rl_config(tmp_path: Path):
    return OmegaConf.create(
        {"max_prompt_length": 4096, "filter_overlong_prompts": True, "filter_overlong_prompts_workers": None, "cache_dir": str(tmp_path)}
    )


@pytest.mark.parametrize("name", RL_FILES)
def test_rl_rows_load_and_pass_the_length_filter(prepared_dir: Path, tokenizer, tmp_path: Path, name: str) -> None:
    expected = pq.read_table(prepared_dir / name).to_pylist()
    dataset = RLHFDataset(str(prepared_dir / name), tokenizer, _rl_config(tmp_path))
    assert len(dataset) == len(expected)  # nothing filtered, no row raised in verl's prompt-length check
    assert dataset.dataframe.to_list() == expected


def test_sft_rows_load_with_multiturn_sft_dataset(prepared_dir: Path, tokenizer) -> None:
    path = prepared_dir / "spatial_transformation" / "cot_sft.parquet"
    expected = pq.read_table(path).to_pylist()
    dataset = MultiTurnSFTDataset(str(path), tokenizer, OmegaConf.create({"max_length": 4096}))
    assert len(dataset) == len(expected)
    assert dataset.messages == [row["messages"] for row in expected]


@needs_processor
@pytest.mark.parametrize("name", RL_FILES)
def test_rl_items_carry_images_in_order(prepared_dir: Path, processor, tmp_path: Path, name: str) -> None:
    expected = pq.read_table(prepared_dir / name).to_pylist()
    dataset = RLHFDataset(str(prepared_dir / name), processor.tokenizer, _rl_config(tmp_path), processor=processor)
    assert len(dataset) == len(expected)
    for i, row in enumerate(expected):
        item = dataset[i]
        content = item["raw_prompt"][0]["content"]
        assert [c["image"] for c in content if c["type"] == "image"] == [im["image"] for im in row["images"]]
        assert content[-1] == {"type": "text", "text": row["prompt"][0]["content"].replace("<image>", "")}
        assert item["index"] == row["extra_info"]["index"] and item["data_source"] == row["data_source"]
        # verl's image loader (qwen_vl_utils, which needs torchvision) opens every entry
        assert all(isinstance(process_image(entry, image_patch_size=14), Image.Image) for entry in row["images"])


@needs_processor
def test_sft_items_tokenize_with_both_images(prepared_dir: Path, processor) -> None:
    path = prepared_dir / "spatial_transformation" / "sft.parquet"
    dataset = MultiTurnSFTDataset(str(path), processor.tokenizer, OmegaConf.create({"max_length": 8192}), processor=processor)
    item = dataset[0]
    assert item["multi_modal_inputs"]["image_grid_thw"].shape[0] == 2
    assert item["loss_mask"].sum() > 0
