"""Text helpers shared by every task reward and scorer (SPEC §6-§7), linear-time on any input.

They decide exactly what the original regexes decide, without their worst cases (a lazy
``<answer>(.*?)</answer>`` search, or ``(\\w+)\\(`` on a megabyte of letters, is quadratic in
Python's backtracking engine). Third-party task plugins can reuse them.
"""

from __future__ import annotations

import re
from typing import Callable

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

#: the original format pattern, kept for reference and for the equivalence tests.
FORMAT_PATTERN = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
#: the original call pattern of the spatial-transformation reward.
CALL_PATTERN = re.compile(r"(\w+)\((\w+),\s*'?(\w+)'?\)")

# Same matches as CALL_PATTERN (a leftmost match always starts at a word start: from inside a
# word the rest of the match is identical), but the engine no longer retries every position of
# a long word, so findall is linear.
_CALL = re.compile(r"(?<!\w)(\w+)\((\w+),\s*'?(\w+)'?\)")
_THINK_TO_ANSWER = re.compile(r"</think>\s*<answer>")


def has_think_answer_format(text: str) -> bool:
    """``FORMAT_PATTERN.fullmatch(text)`` decided in linear time.

    The whole text must be ``<think>`` A ``</think>`` whitespace ``<answer>`` B ``</answer>``.
    The first ``</think>\\s*<answer>`` after the opening tag leaves the most room for B, so
    it is the only candidate to check.
    """
    if not (text.startswith(THINK_OPEN) and text.endswith(ANSWER_CLOSE)):
        return False
    middle = _THINK_TO_ANSWER.search(text, len(THINK_OPEN))
    return middle is not None and middle.end() <= len(text) - len(ANSWER_CLOSE)


def first_answer(text: str, multiline: bool = True) -> str | None:
    """Raw text inside the first ``<answer>...</answer>`` pair, or None without one.

    ``multiline=True`` is ``re.search(r"<answer>(.*?)</answer>", text, re.DOTALL)``;
    ``multiline=False`` is the same search without DOTALL (the pair must sit on one line),
    as in the paper's spatial-transformation scorer.
    """
    start = text.find(ANSWER_OPEN)
    if multiline:
        if start < 0:
            return None
        close = text.find(ANSWER_CLOSE, start + len(ANSWER_OPEN))
        return None if close < 0 else text[start + len(ANSWER_OPEN) : close]
    close = newline = -1  # next </answer> / "\n" found so far; both only move forward
    while start >= 0:
        body = start + len(ANSWER_OPEN)
        if close < body:
            close = text.find(ANSWER_CLOSE, body)
            if close < 0:
                return None  # no closing tag after this or any later opening tag
        if newline < body:
            newline = text.find("\n", body)
            if newline < 0:
                newline = len(text)
        if close < newline:
            return text[body:close]
        start = text.find(ANSWER_OPEN, body)
    return None


def extract_answer(text: str, multiline: bool = True) -> tuple[str, bool]:
    """(answer, tagged): the first answer pair's content stripped, else the whole text stripped."""
    inside = first_answer(text, multiline)
    if inside is None:
        return text.strip(), False
    return inside.strip(), True


def parse_calls(text: str) -> list[tuple[str, str, str]]:
    """Every ``func(object, value)`` call, as ``CALL_PATTERN.findall(text)`` returns them."""
    return _CALL.findall(text)


def as_text(value: object) -> str:
    """Any completion / ground truth as ``str`` (None -> "", bytes decoded leniently)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def think_answer_score(
    solution_str: object, ground_truth: object, accuracy: Callable[[str, str], float]
) -> dict[str, float]:
    """verl's ``compute_score`` result for a ``<think>``/``<answer>`` task (SPEC §6).

    ``format`` is 1 when the whole completion is ``<think>…</think>\\s*<answer>…</answer>``;
    ``accuracy(solution, ground_truth)`` gets both as ``str``; ``score`` = ``format`` + ``accuracy``.
    """
    solution, truth = as_text(solution_str), as_text(ground_truth)
    fmt = 1.0 if has_think_answer_format(solution) else 0.0
    acc = float(accuracy(solution, truth))
    return {"score": fmt + acc, "format": fmt, "accuracy": acc}
