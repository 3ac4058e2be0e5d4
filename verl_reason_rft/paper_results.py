"""The Reason-RFT paper's main-table accuracies (%), SPEC §9, as data for evaluation reports."""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

#: benchmark (``data_source``) columns, in the paper's order.
BENCHMARKS: tuple[str, ...] = (
    "clevr_math",
    "super_clevr",
    "geomath",
    "geometry3k",
    "trance",
    "trance_left",
    "trance_right",
)

_ROWS: dict[str, tuple[float | None, ...]] = {
    "Qwen2-VL-2B zero-shot": (82.40, None, 25.86, 20.63, 3.78, 4.60, 4.67),
    "2B Reason-RFT-Zero": (98.40, None, 47.68, 32.50, 42.13, 34.07, 33.41),
    "2B Reason-RFT": (96.80, None, 49.03, 33.13, 74.61, 64.05, 64.08),
    "Qwen2-VL-7B zero-shot": (98.60, None, 43.30, 43.88, 13.53, 12.72, 12.78),
    "7B Reason-RFT-Zero": (99.40, None, 55.00, 54.75, 67.67, 57.20, 56.15),
    "7B Reason-RFT": (95.60, None, 59.27, 49.25, 79.97, 59.36, 58.61),
    "GPT-4o": (68.10, None, 50.18, 43.49, 42.55, 28.67, 29.76),
}

#: row name -> benchmark -> accuracy in %, ``None`` where the paper gives no single number.
PAPER_ROWS: Mapping[str, Mapping[str, float | None]] = MappingProxyType(
    {row: MappingProxyType(dict(zip(BENCHMARKS, values, strict=True))) for row, values in _ROWS.items()}
)

DEFAULT_PAPER_ROW = "2B Reason-RFT"

#: a known difference of our training from the paper's, shown under every comparison with its rows
FROZEN_VISION_NOTE = (
    "The paper freezes the vision tower and merger during stage-1 SFT; our SFT (verl 0.9.1's sft_trainer) trains them: "
    "verl declares actor.freeze_vision_tower but no engine reads it, and its SFT engine offers no clean hook to freeze "
    "parameters (see the README, GPU machines and clusters)."
)
SUPER_CLEVR_NOTE = (
    "The paper reports super_clevr split into two subsets, not as one number "
    "(2B Reason-RFT: 60.00 / 28.40; 7B Reason-RFT: 56.13 / 35.60); the test file holds both "
    "(about 750 + 250 items), so our single super_clevr score has no paper counterpart."
)


def paper_row(name: str) -> Mapping[str, float | None]:
    """The paper's numbers for one row; an unknown name fails listing the known ones."""
    try:
        return PAPER_ROWS[name]
    except KeyError:
        known = ", ".join(repr(row) for row in PAPER_ROWS)
        raise ValueError(f"unknown paper row {name!r}; known rows: {known}") from None
