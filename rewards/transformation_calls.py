"""Reward and scorer for transformation-call answers (spatial transformation, TRANCE).

Answers are call sequences such as ``change_color(2, red), change_position(0, front_left)``,
compared as sets of ``(func, object, value)`` triples (SPEC §6 and §7).

Canonical pairing order (the original paired leftovers in set-iteration order, which changes
with the process's hash seed): triples are de-duplicated keeping their *first occurrence*, and
both sides are walked in that text order; for each kind of partial match in turn, every
leftover prediction (in order) takes the first unused leftover ground-truth triple it matches.
"""

from __future__ import annotations

from collections import defaultdict, deque
from functools import partial
from typing import Callable, Sequence

from verl_reason_rft.completion import as_text, extract_answer, parse_calls, think_answer_score
from verl_reason_rft.evaluation import EVAL_MODES

Call = tuple[str, str, str]

ACCURACY_MODES = ("full", "partial", "penalty")

#: kinds of partial match, in pairing order, as the key two triples must share:
#: same (func, object), same (func, value), same func.
PARTIAL_KINDS: tuple[Callable[[Call], tuple[str, ...]], ...] = (
    lambda c: (c[0], c[1]),
    lambda c: (c[0], c[2]),
    lambda c: (c[0],),
)
#: weight of each kind above, per mode (``full`` gives no partial credit).
PARTIAL_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "partial": (0.5, 0.5, 0.25),
    "penalty": (-0.25, -0.25, -0.5),
}


def distinct_calls(text: str) -> tuple[list[Call], int]:
    """(distinct triples in first-occurrence order, number of matches before de-duplication)."""
    calls = parse_calls(text)
    return list(dict.fromkeys(calls)), len(calls)


def match_credit(predicted: Sequence[Call], truth: Sequence[Call], weights: Sequence[float] = ()) -> float:
    """Exact matches + weighted greedy partial pairs of the leftovers, in the canonical order.

    ``predicted`` and ``truth`` are distinct triples; ``weights`` follows :data:`PARTIAL_KINDS`
    (empty: exact matches only).
    """
    truth_set = set(truth)
    credit = float(sum(1 for call in predicted if call in truth_set))
    if not weights:
        return credit
    predicted_set = set(predicted)
    left_pred = [call for call in predicted if call not in truth_set]
    left_truth = [call for call in truth if call not in predicted_set]
    for key, weight in zip(PARTIAL_KINDS, weights):
        candidates: dict[tuple[str, ...], deque[Call]] = defaultdict(deque)
        for g in left_truth:
            candidates[key(g)].append(g)
        paired: set[Call] = set()
        unmatched: list[Call] = []
        for p in left_pred:
            queue = candidates.get(key(p))
            if queue:
                paired.add(queue.popleft())  # the first unused truth triple of this kind
                credit += weight
            else:
                unmatched.append(p)
        left_pred = unmatched
        left_truth = [g for g in left_truth if g not in paired]
    return credit


def accuracy(solution: str, ground_truth: str, accuracy_mode: str = "full") -> float:
    """Training accuracy (SPEC §6): in [0, 1], or [-0.5, 1] for ``penalty``."""
    if accuracy_mode not in ACCURACY_MODES:
        raise ValueError(f"accuracy_mode must be one of {ACCURACY_MODES}, got {accuracy_mode!r}")
    answer, _ = extract_answer(solution)
    predicted, n_all = distinct_calls(answer)
    truth, _ = distinct_calls(ground_truth)
    if not predicted or not truth:
        return 0.0
    unit = (len(predicted) / n_all) / max(len(predicted), len(truth))
    return match_credit(predicted, truth, PARTIAL_WEIGHTS.get(accuracy_mode, ())) * unit


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None,
                  accuracy_mode: str = "full", **kwargs) -> dict[str, float]:
    """verl's ``compute_score`` shape: ``score`` = ``format`` + ``accuracy``."""
    return think_answer_score(solution_str, ground_truth, partial(accuracy, accuracy_mode=accuracy_mode))


def score_prediction(data_source: str, prediction: str, answer: str, mode: str = "paper") -> float:
    """Paper scorer (SPEC §7): partial credit without the repeat penalty, in [0, 1].

    ``paper`` reads the first answer pair only if it sits on one line, as the released scorer
    does (otherwise the whole completion is parsed); ``strict`` lets it span lines.
    """
    if mode not in EVAL_MODES:
        raise ValueError(f"mode must be one of {EVAL_MODES}, got {mode!r}")
    text, _ = extract_answer(as_text(prediction), multiline=(mode == "strict"))
    predicted, _ = distinct_calls(text)
    truth, _ = distinct_calls(as_text(answer))
    if not predicted or not truth:
        return 0.0
    return match_credit(predicted, truth, PARTIAL_WEIGHTS["partial"]) / max(len(predicted), len(truth))
