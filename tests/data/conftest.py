"""Fixtures for the dataset-class tests: PIL-drawn images and parquet rows in the contract's schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf
from PIL import Image, ImageDraw

from verl_reason_rft.tasks import get_task
from verl_reason_rft.tiny_model import processor_available

RL_CLS = {"path": "pkg://verl_reason_rft.data.rl_dataset", "name": "ReasonRFTRLDataset"}
SFT_CLS = {"path": "pkg://verl_reason_rft.data.sft_dataset", "name": "ReasonRFTSFTDataset"}


def draw_image(path: Path, size: tuple[int, int], seed: int = 0) -> Path:
    """A PNG with a few coloured shapes (width, height = ``size``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, (200, 200, 200))
    draw = ImageDraw.Draw(image)
    for k in range(3):
        x, y = (seed * 37 + k * 53) % max(1, size[0] - 10), (seed * 17 + k * 29) % max(1, size[1] - 10)
        draw.rectangle([x, y, x + 10, y + 10], fill=((k * 80) % 256, (seed * 50) % 256, 120))
    image.save(path)
    return path


def _extra_info(i: int, task: str, problem: str, answer: str, style: str = "cot", cot: str = "") -> dict[str, Any]:
    return {
        "id": f"{task}-{i}",
        "split": "train",
        "index": i,
        "task": task,
        "is_choice": False,
        "prompt_style": style,
        "problem": problem,
        "answer": answer,
        "cot": cot,
        "extra": json.dumps({}),
    }


def rl_row(i: int, data_source: str, images: list[str], problem: str, answer: str) -> dict[str, Any]:
    """One RL row exactly as ``reason-rft prepare`` writes it (contract schema)."""
    task = get_task(data_source)
    text = "<image>" * len(images) + task.render_prompt(problem, answer, "cot")
    return {
        "data_source": data_source,
        "prompt": [{"role": "user", "content": text}],
        "images": [{"image": name} for name in images],
        "ability": task.name,
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": _extra_info(i, task.name, problem, answer),
    }


def sft_row(i: int, data_source: str, images: list[str], problem: str, answer: str, cot: str) -> dict[str, Any]:
    task = get_task(data_source)
    return {
        "messages": [
            {"role": "user", "content": "<image>" * len(images) + task.render_prompt(problem, answer, "cot")},
            {"role": "assistant", "content": f"<think>\n{cot}\n</think>\n<answer>\n{answer}\n</answer>"},
        ],
        "images": [{"image": name} for name in images],
        "data_source": data_source,
        "extra_info": _extra_info(i, task.name, problem, answer, cot=cot),
    }


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


class Data:
    """A folder of images (relative names under ``image_root``) and parquet files made from them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.image_root = root / "images"
        #: name (relative to image_root) -> (width, height)
        self.sizes = {
            "count/a.png": (56, 84),
            "count/b.png": (1000, 800),
            "trance/init.png": (112, 56),
            "trance/final.png": (84, 84),
        }
        for k, (name, size) in enumerate(self.sizes.items()):
            draw_image(self.image_root / name, size, seed=k)

    def rl_rows(self) -> list[dict[str, Any]]:
        return [
            rl_row(0, "clevr_math", ["count/a.png"], "How many cubes are there?", "3"),
            rl_row(1, "clevr_math", ["count/b.png"], "How many spheres are left?", "2"),
            rl_row(2, "trance", ["trance/init.png", "trance/final.png"], "Objects: (0, cube, small, red, metal)", "change_color(0, blue)"),
        ]

    def sft_rows(self) -> list[dict[str, Any]]:
        return [
            sft_row(0, "clevr_math", ["count/a.png"], "How many cubes are there?", "3", "I count three cubes."),
            sft_row(1, "trance", ["trance/init.png", "trance/final.png"], "Objects: (0, cube, small, red, metal)", "change_color(0, blue)", "The cube turned blue."),
        ]

    def rl_file(self, rows: list[dict[str, Any]] | None = None, name: str = "rl.parquet") -> str:
        return write_parquet(self.root / name, self.rl_rows() if rows is None else rows)

    def sft_file(self, rows: list[dict[str, Any]] | None = None, name: str = "sft.parquet") -> str:
        return write_parquet(self.root / name, self.sft_rows() if rows is None else rows)

    def draw(self, name: str, size: tuple[int, int]) -> Path:
        self.sizes[name] = size
        return draw_image(self.image_root / name, size, seed=len(self.sizes))

    def rl_config(self, **overrides: Any):
        """A data config like the recipes' (custom_cls set, overlong filter on, images under image_root)."""
        base = {
            "max_prompt_length": 4096,
            "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": None,  # in-process: a forked filter worker can deadlock after threads ran
            "cache_dir": str(self.root / "cache"),
            "image_key": "images",
            "image_root": str(self.image_root),
            "custom_cls": dict(RL_CLS),
        }
        return OmegaConf.create({**base, **overrides})

    def sft_config(self, **overrides: Any):
        base = {
            "max_length": 4096,
            "pad_mode": "no_padding",
            "truncation": "error",
            "image_root": str(self.image_root),
            "custom_cls": dict(SFT_CLS),
        }
        return OmegaConf.create({**base, **overrides})


@pytest.fixture
def data(tmp_path: Path) -> Data:
    return Data(tmp_path)


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir: Path):
    from verl.utils import hf_tokenizer

    return hf_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="session")
def processor(tiny_model_dir: Path):
    from verl.utils import hf_processor

    if not processor_available():
        pytest.skip("transformers builds a Qwen2-VL processor only with torchvision (not installed)")
    processor = hf_processor(str(tiny_model_dir))
    assert processor is not None and type(processor).__name__ == "Qwen2VLProcessor"
    return processor
