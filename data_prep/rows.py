"""verl parquet rows from validated records: RL rows (``RLHFDataset``) and SFT rows (``MultiTurnSFTDataset``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
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
#: an ``<answer>...</answer>`` block that ends the text
_TRAILING_ANSWER = re.compile(r"<answer>(?:(?!</?answer>).)*</answer>\s*\Z", re.DOTALL)
#: one ``<think>...</think>`` around the whole text, with no other think tag inside
_WRAPPED = re.compile(r"\s*<think>((?:(?!</?think>).)*)</think>\s*", re.DOTALL)


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


def user_content(n_images: int, text: str) -> str:
    """The user turn: one ``<image>`` per image, then the text (SPEC §5: images first, in order)."""
    return IMAGE_PLACEHOLDER * n_images + text


def content_items(text: str) -> list[dict[str, str]]:
    """A user turn as chat-template items: ``{"type": "image"}`` per ``<image>``, text items between."""
    items: list[dict[str, str]] = []
    parts = text.split(IMAGE_PLACEHOLDER)
    for k, part in enumerate(parts):
        if k:
            items.append({"type": "image"})
        if part:
            items.append({"type": "text", "text": part})
    return items


def cot_body(cot: str) -> str:
    """The reasoning without tags: drops a trailing ``<answer>`` block (the record's answer is used
    instead) and unwraps a ``<think>...</think>`` around all the rest; tags anywhere else stay as text."""
    body = _TRAILING_ANSWER.sub("", cot, count=1)
    match = _WRAPPED.fullmatch(body)
    return (match.group(1) if match else body).strip()


def cot_target(cot: str, answer: str) -> str:
    """CoT-SFT assistant turn (SPEC §5); a cot that already carries tags is never wrapped twice."""
    return f"<think>\n{cot_body(cot)}\n</think>\n<answer>\n{answer}\n</answer>"


@dataclass(frozen=True)
class RowBuilder:
    """Rows of one output file: its task, ``data_source``, stage (``extra_info.split``), template
    overrides and image form (absolute paths, or the file bytes from ``embedded``)."""

    spec: TaskSpec
    data_source: str
    split: str
    templates: Mapping[str, str] | None = None
    embedded: Mapping[str, bytes] | None = None

    def rl(self, record: Record, style: str = "cot") -> dict[str, Any]:
        """verl ``RLHFDataset`` row."""
        return {
            "data_source": self.data_source,
            "prompt": [self._user(record, style)],
            "images": self._images(record),
            "ability": self.spec.name,
            "reward_model": {"style": "rule", "ground_truth": record.answer},
            "extra_info": self._extra_info(record, style),
        }

    def sft(self, record: Record, style: str = "cot") -> dict[str, Any]:
        """verl ``MultiTurnSFTDataset`` row: CoT target (``cot``) or the bare answer (``ans``)."""
        target = cot_target(record.cot, record.answer) if style == "cot" else record.answer
        return {
            "messages": [self._user(record, style), {"role": "assistant", "content": target}],
            "images": self._images(record),
            "data_source": self.data_source,
            "extra_info": self._extra_info(record, style),
        }

    def _user(self, record: Record, style: str) -> dict[str, str]:
        text = self.spec.render_prompt(record.problem, record.answer, style, self.templates)
        return {"role": "user", "content": user_content(len(record.images), text)}

    def _images(self, record: Record) -> list[dict[str, Any]]:
        if self.embedded is None:
            return [{"image": path} for path in record.images]
        return [{"bytes": self.embedded[path]} for path in record.images]

    def _extra_info(self, record: Record, style: str) -> dict[str, Any]:
        return {
            "id": record.id,
            "split": self.split,
            "index": record.index,
            "task": self.spec.name,
            "is_choice": self.spec.is_choice(record.answer),
            "prompt_style": style,
            "problem": record.problem,
            "answer": record.answer,
            "cot": record.cot,
            "extra": json.dumps(record.extra, ensure_ascii=False, sort_keys=True),
        }
