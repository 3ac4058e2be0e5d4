"""Reward and scorer for answers compared as strings (visual counting, structure perception).

SPEC §6 (training reward, modes ``exact`` and ``tolerance``) and §7 (paper scorer). Pure
functions of strings; math-verify runs through :mod:`verl_reason_rft.math_equiv` (time-bounded).
"""

from __future__ import annotations

import math
from functools import partial

from verl_reason_rft.completion import as_text, extract_answer, first_answer, think_answer_score
from verl_reason_rft.evaluation import EVAL_MODES
from verl_reason_rft.math_equiv import equivalent

ACCURACY_MODES = ("exact", "tolerance")
#: tolerance band (relative to |gt|): full reward below the first, none above the second.
TOLERANCE_FULL, TOLERANCE_ZERO = 0.05, 0.20


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except (ValueError, OverflowError):
        return None


def tolerance_credit(prediction: str, truth: str) -> float | None:
    """Cosine-ramped credit for a numeric answer, or None when either side is not a finite number.

    With d = |pred - gt| and a = |gt|: 1 if d < 0.05a, 0 if d > 0.20a, in between
    0.5 * (cos(pi * (d - 0.05a) / (0.15a)) + 1). Fixed from the original: gt = 0 (and any
    band too small to divide by) scores 1 only for an exact hit, never divides by zero.
    """
    pred, gt = _as_float(prediction), _as_float(truth)
    if pred is None or gt is None or not (math.isfinite(pred) and math.isfinite(gt)):
        return None
    diff, scale = abs(pred - gt), abs(gt)
    width = (TOLERANCE_ZERO - TOLERANCE_FULL) * scale
    if not math.isfinite(diff):
        return 0.0
    if width == 0.0:
        return 1.0 if diff == 0.0 else 0.0
    if diff < TOLERANCE_FULL * scale:
        return 1.0
    if diff > TOLERANCE_ZERO * scale:
        return 0.0
    return 0.5 * (math.cos(math.pi * (diff - TOLERANCE_FULL * scale) / width) + 1.0)


def accuracy(solution: str, ground_truth: str, accuracy_mode: str = "exact") -> float:
    """Training accuracy in [0, 1] (SPEC §6)."""
    if accuracy_mode not in ACCURACY_MODES:
        raise ValueError(f"accuracy_mode must be one of {ACCURACY_MODES}, got {accuracy_mode!r}")
    truth, _ = extract_answer(ground_truth)
    answer, tagged = extract_answer(solution)
    credit = None
    if accuracy_mode == "tolerance":
        credit = tolerance_credit(answer, truth)
    if credit is None:
        credit = 1.0 if answer == truth else 0.0
    if credit == 0.0 and not tagged and equivalent(solution, ground_truth):
        credit = 1.0
    return credit


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None,
                  accuracy_mode: str = "exact", **kwargs) -> dict[str, float]:
    """verl's ``compute_score`` shape: ``score`` = ``format`` + ``accuracy``."""
    return think_answer_score(solution_str, ground_truth, partial(accuracy, accuracy_mode=accuracy_mode))


def score_prediction(data_source: str, prediction: str, answer: str, mode: str = "paper") -> float:
    """Paper scorer (SPEC §7): exact match, else math-verify; the answer pair may span lines.

    ``paper`` and ``strict`` are the same here (the released scorer already matches across
    newlines). Compared as the released scorer does: the tagged answer is stripped, the ground
    truth is not; without tags both sides are stripped.
    """
    if mode not in EVAL_MODES:
        raise ValueError(f"mode must be one of {EVAL_MODES}, got {mode!r}")
    prediction, answer = as_text(prediction), as_text(answer)
    inside = first_answer(prediction)
    if inside is not None:
        tagged = inside.strip()
        return 1.0 if answer == tagged or equivalent(tagged, answer) else 0.0
    if answer.strip() == prediction.strip():
        return 1.0
    return 1.0 if equivalent(prediction, answer) else 0.0
