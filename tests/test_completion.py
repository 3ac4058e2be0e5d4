"""The linear-time text helpers decide exactly what the original regexes decide."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verl_reason_rft.completion import (
    CALL_PATTERN,
    FORMAT_PATTERN,
    as_text,
    extract_answer,
    first_answer,
    has_think_answer_format,
    parse_calls,
    think_answer_score,
)

# Strings built from the pieces that matter, so that hypothesis hits tags, partial tags,
# whitespace (including non-ASCII whitespace) and newlines often.
PIECES = st.sampled_from(
    [
        "<think>", "</think>", "<answer>", "</answer>", "<answer", "</ans", "wer>", "<", ">", "/",
        " ", "\n", "\t", "\r", "\u00a0", "\u2003", "x", "3", "é", "ab",
    ]
)
TAGGY = st.lists(PIECES, max_size=14).map("".join)
ANY_TEXT = st.one_of(TAGGY, st.text(max_size=40))

CALL_PIECES = st.sampled_from(
    ["change_color", "(", ")", ",", " ", "'", "2", "red", "x", "_", "é", "\n", "front_left", "((", ",'", "a1"]
)
CALLISH = st.lists(CALL_PIECES, max_size=16).map("".join)

ORIGINAL_ANSWER_DOTALL = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
ORIGINAL_ANSWER_ONE_LINE = re.compile(r"<answer>(.*?)</answer>")


@settings(max_examples=1500, deadline=None)
@given(ANY_TEXT)
def test_format_check_equals_the_original_fullmatch(text):
    assert has_think_answer_format(text) == bool(FORMAT_PATTERN.fullmatch(text))


@settings(max_examples=1500, deadline=None)
@given(ANY_TEXT)
def test_first_answer_equals_the_original_search_in_both_modes(text):
    for multiline, pattern in ((True, ORIGINAL_ANSWER_DOTALL), (False, ORIGINAL_ANSWER_ONE_LINE)):
        match = pattern.search(text)
        assert first_answer(text, multiline) == (match.group(1) if match else None)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(CALLISH, st.text(max_size=40)))
def test_parse_calls_equals_the_original_findall(text):
    assert parse_calls(text) == CALL_PATTERN.findall(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>a</think><answer>3</answer>", True),
        ("<think>a</think> \n <answer>3</answer>", True),
        ("<think></think><answer></answer>", True),
        ("<think>\nmulti\nline</think>\n<answer>\n3\n</answer>", True),
        ("<think>a</think><answer>3</answer>\n", False),  # trailing newline
        (" <think>a</think><answer>3</answer>", False),  # leading space
        ("<think>a</think>x<answer>3</answer>", False),  # text between the blocks
        ("<think>a</think><answer>3</answer><answer>4</answer>", True),  # lazy .*? still full-matches
        ("<think>a</think></think><answer>3</answer>", True),
        ("<think>a<answer>3</answer>", False),  # no </think>
        ("<think></think><answer>", False),
        ("<answer>3</answer>", False),
        ("", False),
    ],
)
def test_format_cases(text, expected):
    assert has_think_answer_format(text) is expected
    assert bool(FORMAT_PATTERN.fullmatch(text)) is expected


@pytest.mark.parametrize(
    "text, multiline, expected",
    [
        ("<think>x</think><answer> 3 </answer>", True, ("3", True)),
        ("<answer>1</answer><answer>2</answer>", True, ("1", True)),  # the first pair wins
        ("<answer>\n7\n</answer>", True, ("7", True)),  # across newlines
        ("<answer>\n7\n</answer>", False, ("<answer>\n7\n</answer>", False)),  # one-line only
        ("<answer>\n7</answer> <answer>8</answer>", False, ("8", True)),
        ("  the answer is 5 \n", True, ("the answer is 5", False)),  # no pair: the whole text
        ("<answer>5", True, ("<answer>5", False)),
        ("5</answer>", True, ("5</answer>", False)),
    ],
)
def test_extract_answer_cases(text, multiline, expected):
    assert extract_answer(text, multiline) == expected


def test_as_text_never_fails():
    assert as_text(None) == ""
    assert as_text(b"\xff3") == "\ufffd3"
    assert as_text(3) == "3"
    assert as_text("x") == "x"


def _quarter_if_equal(solution: str, truth: str) -> float:
    # an accuracy a third-party task might write: it receives both sides as str, may return an int
    assert isinstance(solution, str) and isinstance(truth, str)
    return 0.25 if solution.endswith(f"<answer>{truth}</answer>") else 0


@pytest.mark.parametrize(
    "solution, truth, expected",
    [
        ("<think>a</think><answer>3</answer>", "3", {"score": 1.25, "format": 1.0, "accuracy": 0.25}),
        ("<think>a</think><answer>3</answer>", 3, {"score": 1.25, "format": 1.0, "accuracy": 0.25}),
        (b"<think>a</think><answer>3</answer>", "3", {"score": 1.25, "format": 1.0, "accuracy": 0.25}),
        ("<think>a</think><answer>3</answer>\n", "3", {"score": 0.0, "format": 0.0, "accuracy": 0.0}),
        ("<answer>3</answer>", "3", {"score": 0.25, "format": 0.0, "accuracy": 0.25}),
        (None, None, {"score": 0.0, "format": 0.0, "accuracy": 0.0}),
    ],
)
def test_think_answer_score_is_format_plus_accuracy(solution, truth, expected):
    result = think_answer_score(solution, truth, _quarter_if_equal)
    assert result == expected
    assert list(result) == ["score", "format", "accuracy"]
    assert all(type(v) is float for v in result.values())


ADVERSARIAL = {
    "letters": "a" * 1_000_000,  # quadratic for the original call regex
    "open_tags": "<answer>" * 200_000,  # quadratic for a lazy answer search without a close tag
    "think_runs": "<think>" + "</think>" * 150_000 + " " * 100_000,
    "call_prefixes": "f(" * 500_000,
    "spaces_before_paren": "f(x," + " " * 1_000_000,
}


@pytest.mark.parametrize("kind", sorted(ADVERSARIAL))
def test_helpers_stay_fast_on_megabyte_inputs(kind):
    text = ADVERSARIAL[kind]
    start = time.perf_counter()
    has_think_answer_format(text)
    first_answer(text, True)
    first_answer(text, False)
    parse_calls(text)
    # a bound, not a benchmark: the original regexes take minutes on these
    assert time.perf_counter() - start < 2.0
