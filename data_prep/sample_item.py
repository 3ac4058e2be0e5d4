"""One generated sample: its images, question, answer and reasoning (correct by construction)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image


@dataclass
class SampleItem:
    images: list[Image.Image]
    problem: str
    answer: str
    #: plain reasoning text (no tags); ``samples`` decides how it is wrapped in the record
    reasoning: str
    #: extra record keys (test files of some benchmarks carry them)
    extra: dict[str, Any] = field(default_factory=dict)
