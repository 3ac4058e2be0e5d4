"""Counting / structure reward (SPEC §6) and paper scorer (SPEC §7), rule by rule."""

from __future__ import annotations

import math

import pytest

from verl_reason_rft.rewards.answer_match import compute_score, score_prediction, tolerance_credit

T = "<think>reasoning</think>"

# (rule, completion, ground truth, format, accuracy) for accuracy_mode=exact
EXACT_CASES = [
    ("tagged exact match, good format", f"{T}<answer>3</answer>", "3", 1.0, 1.0),
    ("tagged '3.0' vs '3' is 0 (no math-verify when tagged)", f"{T}<answer>3.0</answer>", "3", 1.0, 0.0),
    ("tagged '(A)' vs 'A' is 0", f"{T}<answer>(A)</answer>", "A", 1.0, 0.0),
    ("tagged answer is stripped", f"{T}<answer>  B \n</answer>", "B", 1.0, 1.0),
    ("answer pair across newlines", f"{T}\n<answer>\n7\n</answer>", "7", 1.0, 1.0),
    ("first answer pair wins", f"{T}<answer>3</answer><answer>4</answer>", "4", 1.0, 0.0),
    ("first answer pair wins (right one first)", f"{T}<answer>4</answer><answer>3</answer>", "4", 1.0, 1.0),
    ("ground truth with an <answer> wrapper is unwrapped", f"{T}<answer>5</answer>", "<answer> 5 </answer>", 1.0, 1.0),
    ("ground truth is stripped", f"{T}<answer>5</answer>", " 5\n", 1.0, 1.0),
    ("untagged: the stripped completion equals gt", "\n 3 \n", "3", 0.0, 1.0),
    ("untagged: math-verify fallback finds it", "The answer is 3.0", "3", 0.0, 1.0),
    ("untagged: math-verify fallback, wrong number", "I think 4", "3", 0.0, 0.0),
    ("untagged: letter answers are not math", "The answer is B", "B", 0.0, 0.0),
    ("unclosed tag counts as untagged", "<answer>3", "3", 0.0, 0.0),
    ("trailing newline breaks format only", f"{T}<answer>3</answer>\n", "3", 0.0, 1.0),
    ("leading text breaks format only", f"So {T}<answer>3</answer>", "3", 0.0, 1.0),
    ("text between the blocks breaks format", f"{T} and <answer>3</answer>", "3", 0.0, 1.0),
    ("empty completion", "", "3", 0.0, 0.0),
    ("wrong tagged answer", f"{T}<answer>2</answer>", "3", 1.0, 0.0),
    ("leading newline breaks format only", f"\n{T}<answer>3</answer>", "3", 0.0, 1.0),
    ("trailing space breaks format only", f"{T}<answer>3</answer> ", "3", 0.0, 1.0),
    ("first pair spans lines, so it beats a later one-line pair",
     f"{T}<answer>\n4\n</answer><answer>3</answer>", "3", 1.0, 0.0),
    ("an answer pair inside <think> is the first pair", "<think>maybe <answer>2</answer></think><answer>3</answer>",
     "3", 1.0, 0.0),
    ("ground truth wrapper spanning lines is unwrapped", f"{T}<answer>5</answer>", "<answer>\n5\n</answer>", 1.0, 1.0),
    ("tagged empty answer", f"{T}<answer></answer>", "3", 1.0, 0.0),
    ("tagged: no math-verify even for an equivalent fraction", f"{T}<answer>\\frac{{1}}{{2}}</answer>", "0.5", 1.0, 0.0),
    ("untagged: math-verify finds an equivalent fraction", "so it is $\\frac{1}{2}$", "0.5", 0.0, 1.0),
]


@pytest.mark.parametrize("rule, completion, truth, fmt, acc", EXACT_CASES, ids=[c[0] for c in EXACT_CASES])
def test_exact_mode(rule, completion, truth, fmt, acc):
    result = compute_score("clevr_math", completion, truth)
    assert result == {"score": fmt + acc, "format": fmt, "accuracy": acc}


def ramp(d: float, a: float) -> float:
    return 0.5 * (math.cos(math.pi * (d - 0.05 * a) / (0.15 * a)) + 1)


# (rule, completion, ground truth, accuracy) for accuracy_mode=tolerance
TOLERANCE_CASES = [
    ("exact number", "<answer>100</answer>", "100", 1.0),
    ("within 5% is full credit", "<answer>104</answer>", "100", 1.0),
    ("within 5% below", "<answer>95.5</answer>", "100", 1.0),
    ("'3.0' vs '3' is full credit", "<answer>3.0</answer>", "3", 1.0),
    ("cosine ramp midpoint", "<answer>112.5</answer>", "100", 0.5),
    ("cosine ramp elsewhere", "<answer>108</answer>", "100", ramp(8, 100)),
    ("exactly 5% above is 1 (band start)", "<answer>105</answer>", "100", 1.0),
    ("exactly 5% below is 1 (band start)", "<answer>95</answer>", "100", 1.0),
    ("10% off: a third into the band, 0.5(cos(pi/3)+1) = 0.75", "<answer>44</answer>", "40", 0.75),
    ("15% off: two thirds into the band, 0.5(cos(2pi/3)+1) = 0.25", "<answer>34</answer>", "40", 0.25),
    ("exactly 20% above is 0 (band end)", "<answer>120</answer>", "100", 0.0),
    ("20% off is 0 (ramp end)", "<answer>80</answer>", "100", 0.0),
    ("beyond 20% is 0", "<answer>121</answer>", "100", 0.0),
    ("negative ground truth uses |gt|", "<answer>-104</answer>", "-100", 1.0),
    ("gt = 0, pred = 0 is 1 (fixed from the original)", "<answer>0</answer>", "0", 1.0),
    ("gt = 0, pred = 0.0 is 1", "<answer>0.0</answer>", "0", 1.0),
    ("gt = 0, pred != 0 is 0", "<answer>0.01</answer>", "0", 0.0),
    ("gt = 0, pred = -0 is 1", "<answer>-0</answer>", "0", 1.0),
    ("gt = 0.0, pred tiny is 0", "<answer>1e-300</answer>", "0.0", 0.0),
    ("ground truth in an <answer> wrapper is unwrapped first", "<answer>104</answer>", "<answer> 100 </answer>", 1.0),
    ("number vs non-number: exact string match", "<answer>3</answer>", "three", 0.0),
    ("non-numeric: exact string match", "<answer>B</answer>", "B", 1.0),
    ("non-numeric: mismatch", "<answer>B</answer>", "A", 0.0),
    ("nan is not a number here: exact match", "<answer>nan</answer>", "3", 0.0),
    ("inf vs inf: exact string match", "<answer>inf</answer>", "inf", 1.0),
    ("huge difference overflows to 0, not nan", "<answer>1e308</answer>", "-1e308", 0.0),
    ("untagged ramp value is kept", "3.5", "3", ramp(0.5, 3)),
    ("untagged non-number falls back to math-verify", "The answer is 3", "3", 1.0),
    ("untagged far number: math-verify cannot rescue", "7", "3", 0.0),
    ("tagged wrong text: no math-verify", "<answer>three</answer>", "3", 0.0),
]


@pytest.mark.parametrize("rule, completion, truth, acc", TOLERANCE_CASES, ids=[c[0] for c in TOLERANCE_CASES])
def test_tolerance_mode(rule, completion, truth, acc):
    result = compute_score("geomath", completion, truth, accuracy_mode="tolerance")
    assert result["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert math.isfinite(result["score"])


def test_tolerance_credit_is_none_for_non_numbers():
    assert tolerance_credit("abc", "3") is None
    assert tolerance_credit("3", "nan") is None
    assert tolerance_credit("1e999", "3") is None  # inf


def test_unknown_accuracy_mode_is_rejected():
    with pytest.raises(ValueError, match="exact"):
        compute_score("clevr_math", "3", "3", accuracy_mode="full")


# (rule, prediction, answer, score) for the paper scorer
EVAL_CASES = [
    ("tagged exact", f"{T}<answer>3</answer>", "3", 1.0),
    ("tagged '3.0' vs '3' counts (math-verify)", f"{T}<answer>3.0</answer>", "3", 1.0),
    ("tagged across newlines", f"{T}<answer>\n12\n</answer>", "12", 1.0),
    ("tagged wrong", f"{T}<answer>4</answer>", "3", 0.0),
    ("tagged letter", f"{T}<answer>C</answer>", "C", 1.0),
    ("tagged '(C)' vs 'C' is 0", f"{T}<answer>(C)</answer>", "C", 0.0),
    ("gt is not stripped when tagged (released scorer)", f"{T}<answer>C</answer>", "C ", 0.0),
    ("first pair wins", "<answer>4</answer><answer>3</answer>", "3", 0.0),
    ("untagged: stripped equality", "  C \n", "C ", 1.0),
    ("untagged: math-verify on the whole completion", "there are 7 objects left", "7", 1.0),
    ("untagged: wrong", "there are 8 objects left", "7", 0.0),
    ("empty prediction", "", "7", 0.0),
    ("first pair spans lines, so it beats a later one-line pair", "<answer>\n4\n</answer><answer>3</answer>", "3", 0.0),
    ("tagged: math-verify on the stripped answer", f"{T}<answer> \\frac{{1}}{{2}} </answer>", "0.5", 1.0),
    ("untagged: exact match needs both sides stripped", "\nB\n", " B", 1.0),
]


@pytest.mark.parametrize("rule, prediction, answer, expected", EVAL_CASES, ids=[c[0] for c in EVAL_CASES])
@pytest.mark.parametrize("mode", ["paper", "strict"])
def test_paper_scorer(rule, prediction, answer, expected, mode):
    assert score_prediction("geometry3k", prediction, answer, mode=mode) == expected


def test_scorer_is_more_lenient_than_the_reward():
    completion = f"{T}<answer>3.0</answer>"
    assert compute_score("clevr_math", completion, "3")["accuracy"] == 0.0
    assert score_prediction("clevr_math", completion, "3") == 1.0
