"""verl parquet rows from validated records: RL rows (``RLHFDataset``) and SFT rows (``MultiTurnSFTDataset``)."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

import pyarrow as pa

from verl_reason_rft.data_prep.records import Record
from verl_reason_rft.task_spec import TaskSpec

IMAGE_PLACEHOLDER = "<image>"
_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
_IMAGE_PATH = pa.struct([("image", pa.string())])
_IMAGE_BYTES = pa.struct([("bytes", pa.binary())])
_EXTRA_INFO = pa.struct(
    [
        ("id", pa.string()),
        ("split", pa.string()),
        ("index", pa.int64()),
        ("task", pa.string()),
        ("is_choice", pa.bool_()),
        ("prompt_style", pa.string()),
        ("problem", pa.string()),
        ("answer", pa.string()),
        ("cot", pa.string()),
        ("extra", pa.string()),
    ]
)
_THINK = re.compile(r"\s*<think>(.*?)</think>(.*)", re.DOTALL)
_ANSWER_BLOCK = re.compile(r"\s*(<answer>.*?</answer>)?\s*", re.DOTALL)


def rl_schema(embed_images: bool = False) -> pa.Schema:
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(_MESSAGE)),
            ("images", pa.list_(_IMAGE_BYTES if embed_images else _IMAGE_PATH)),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            ("extra_info", _EXTRA_INFO),
        ]
    )


def sft_schema(embed_images: bool = False) -> pa.Schema:
    return pa.schema(
        [
            ("messages", pa.list_(_MESSAGE)),
            ("images", pa.list_(_IMAGE_BYTES if embed_images else _IMAGE_PATH)),
            ("data_source", pa.string()),
            ("extra_info", _EXTRA_INFO),
        ]
    )


def user_content(
    spec: TaskSpec, problem: str, answer: str, style: str = "cot", templates: Mapping[str, str] | None = None
) -> str:
    """The user turn: one ``<image>`` per image of the task, then the rendered template text."""
    return IMAGE_PLACEHOLDER * spec.images_per_sample + spec.render_prompt(problem, answer, style, templates)


def cot_body(cot: str) -> str:
    """The reasoning without tags: unwraps ``<think>...</think>`` (and a trailing ``<answer>`` block) if present."""
    match = _THINK.fullmatch(cot)
    if match and _ANSWER_BLOCK.fullmatch(match.group(2)):
        return match.group(1).strip()
    return cot.strip()


def cot_target(cot: str, answer: str) -> str:
    """CoT-SFT assistant turn (SPEC §5); a cot that already carries tags is never wrapped twice."""
    return f"<think>\n{cot_body(cot)}\n</think>\n<answer>\n{answer}\n</answer>"


def _images(record: Record, embedded: Mapping[str, bytes] | None) -> list[dict[str, Any]]:
    if embedded is None:
        return [{"image": path} for path in record.images]
    return [{"bytes": embedded[path]} for path in record.images]


def _extra_info(spec: TaskSpec, record: Record, split: str, style: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "split": split,
        "index": record.index,
        "task": spec.name,
        "is_choice": spec.is_choice(record.answer),
        "prompt_style": style,
        "problem": record.problem,
        "answer": record.answer,
        "cot": record.cot,
        "extra": json.dumps(record.extra, ensure_ascii=False, sort_keys=True),
    }


def rl_row(
    spec: TaskSpec,
    data_source: str,
    record: Record,
    split: str,
    templates: Mapping[str, str] | None = None,
    style: str = "cot",
    embedded: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    return {
        "data_source": data_source,
        "prompt": [{"role": "user", "content": user_content(spec, record.problem, record.answer, style, templates)}],
        "images": _images(record, embedded),
        "ability": spec.name,
        "reward_model": {"style": "rule", "ground_truth": record.answer},
        "extra_info": _extra_info(spec, record, split, style),
    }


def sft_row(
    spec: TaskSpec,
    data_source: str,
    record: Record,
    split: str,
    templates: Mapping[str, str] | None = None,
    style: str = "cot",
    embedded: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    target = cot_target(record.cot, record.answer) if style == "cot" else record.answer
    return {
        "messages": [
            {"role": "user", "content": user_content(spec, record.problem, record.answer, style, templates)},
            {"role": "assistant", "content": target},
        ],
        "images": _images(record, embedded),
        "data_source": data_source,
        "extra_info": _extra_info(spec, record, split, style),
    }
