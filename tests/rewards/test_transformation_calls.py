"""Spatial-transformation reward (SPEC §6) and paper scorer (SPEC §7), rule by rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from verl_reason_rft.rewards.transformation_calls import compute_score, distinct_calls, score_prediction

T = "<think>reasoning</think>"
GT = "change_color(2, red), change_position(0, front_left)"


def tagged(calls: str) -> str:
    return f"{T}<answer>{calls}</answer>"


# (rule, completion, ground truth, {mode: accuracy})
CASES = [
    ("all calls right", tagged(GT), GT, dict(full=1.0, partial=1.0, penalty=1.0)),
    ("order does not matter", tagged("change_position(0, front_left), change_color(2, red)"), GT, dict(full=1.0, partial=1.0, penalty=1.0)),
    ("one of two right", tagged("change_color(2, red)"), GT, dict(full=0.5, partial=0.5, penalty=0.5)),
    ("an extra wrong call dilutes (max(|P|, |G|))", tagged(GT + ", change_size(1, large)"), GT, dict(full=2 / 3, partial=2 / 3, penalty=2 / 3)),
    ("repeated call is penalised (|P| / n_all)", tagged("change_color(2, red), change_color(2, red)"), "change_color(2, red)", dict(full=0.5, partial=0.5, penalty=0.5)),
    ("quoted values parse", tagged("change_color(2, 'red'), change_position(0, 'front_left')"), GT, dict(full=1.0, partial=1.0, penalty=1.0)),
    ("no space after the comma parses", tagged("change_color(2,red),change_position(0,front_left)"), GT, dict(full=1.0, partial=1.0, penalty=1.0)),
    ("space after '(' does not parse", tagged("change_color( 2, red)"), GT, dict(full=0.0, partial=0.0, penalty=0.0)),
    ("same (func, object): partial 0.5, penalty -0.25", tagged("change_color(2, blue)"), "change_color(2, red)", dict(full=0.0, partial=0.5, penalty=-0.25)),
    ("same (func, value): partial 0.5, penalty -0.25", tagged("change_color(1, red)"), "change_color(2, red)", dict(full=0.0, partial=0.5, penalty=-0.25)),
    ("same func only: partial 0.25, penalty -0.5", tagged("change_color(1, blue)"), "change_color(2, red)", dict(full=0.0, partial=0.25, penalty=-0.5)),
    ("different func: nothing", tagged("change_size(2, red)"), "change_color(2, red)", dict(full=0.0, partial=0.0, penalty=0.0)),
    ("exact + partial together", tagged("change_color(2, red), change_position(0, left)"), GT, dict(full=0.5, partial=0.75, penalty=0.375)),
    ("each item is used once", tagged("change_color(2, blue), change_color(2, green)"), "change_color(2, red)", dict(full=0.0, partial=0.25, penalty=-0.125)),
    ("no predicted calls: 0", tagged("I do not know"), GT, dict(full=0.0, partial=0.0, penalty=0.0)),
    ("no ground-truth calls: 0", tagged("change_color(2, red)"), "none", dict(full=0.0, partial=0.0, penalty=0.0)),
    ("untagged: the whole completion is parsed", "I would do change_color(2, red) then change_position(0, front_left)", GT, dict(full=1.0, partial=1.0, penalty=1.0)),
    ("tagged: calls outside the first answer pair are ignored", f"<think>{GT}</think><answer>change_size(1, large)</answer>", GT, dict(full=0.0, partial=0.0, penalty=0.0)),
    ("answer pair across newlines (training)", f"{T}<answer>\nchange_color(2, red)\n</answer>", "change_color(2, red)", dict(full=1.0, partial=1.0, penalty=1.0)),
    ("ground truth in an <answer> wrapper", tagged("change_color(2, red)"), "<answer>change_color(2, red)</answer>", dict(full=1.0, partial=1.0, penalty=1.0)),
    ("repeated ground truth counts once", tagged("change_color(2, red)"), "change_color(2, red), change_color(2, red)", dict(full=1.0, partial=1.0, penalty=1.0)),
    # unit 1/2: exact 1 + leftover red(1) has nothing left to pair with (not 0.5 + 0 via (func, object))
    ("exact matches are removed before any pairing", tagged("change_color(1, red), change_color(1, blue)"), "change_color(1, blue)", dict(full=0.5, partial=0.5, penalty=0.5)),
    # unit 1/2: red(1)~blue(1) by (func, object) first, then blue(2)~red(5) only by func: 0.5 + 0.25
    # ((func, value) first would pair red~red and blue~blue: 0.5 + 0.5)
    ("kind order: (func, object) before (func, value)", tagged("change_color(1, red), change_color(2, blue)"), "change_color(1, blue), change_color(5, red)", dict(full=0.0, partial=0.375, penalty=-0.375)),
    # unit 1/2: red(1)~red(2) by (func, value), not blue(3) by func although blue(3) comes first
    ("kind order: (func, value) before func only", tagged("change_color(1, red)"), "change_color(3, blue), change_color(2, red)", dict(full=0.0, partial=0.25, penalty=-0.125)),
    ("calls inside <think> count when untagged", "<think>change_color(2, red)</think> done", "change_color(2, red)", dict(full=1.0, partial=1.0, penalty=1.0)),
]


@pytest.mark.parametrize("rule, completion, truth, expected", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("mode", ["full", "partial", "penalty"])
def test_reward(rule, completion, truth, expected, mode):
    result = compute_score("trance", completion, truth, accuracy_mode=mode)
    assert result["accuracy"] == pytest.approx(expected[mode], abs=1e-12)
    assert result["score"] == pytest.approx(result["format"] + result["accuracy"], abs=1e-12)


def test_default_mode_is_full_and_format_is_shared():
    assert compute_score("trance", tagged(GT), GT) == {"score": 2.0, "format": 1.0, "accuracy": 1.0}
    assert compute_score("trance", tagged(GT) + "\n", GT)["format"] == 0.0
    with pytest.raises(ValueError, match="full, partial, penalty|'full', 'partial', 'penalty'"):
        compute_score("trance", GT, GT, accuracy_mode="exact")


# Order matters for the greedy pairing: the prediction's color(1, red) can take either
# color(1, ...) of the ground truth by (func, object); which one it takes decides whether
# color(5, green) later gets the (func, value) pair or only a func pair.
ORDER_PRED = tagged("change_color(1, red), change_color(5, green)")
ORDER_GT_BLUE_FIRST = "change_color(1, blue), change_color(1, green)"
ORDER_GT_GREEN_FIRST = "change_color(1, green), change_color(1, blue)"


def test_canonical_order_is_first_occurrence_in_the_text():
    # blue first: red-1 pairs with blue-1 (0.5), green-5 with green-1 (0.5) -> 1.0 * unit 1/2
    assert compute_score("trance", ORDER_PRED, ORDER_GT_BLUE_FIRST, accuracy_mode="partial")["accuracy"] == 0.5
    # green first: red-1 takes green-1 (0.5), green-5 gets only blue-1 by func (0.25)
    assert compute_score("trance", ORDER_PRED, ORDER_GT_GREEN_FIRST, accuracy_mode="partial")["accuracy"] == 0.375
    assert distinct_calls("f(1, a), g(2, b), f(1, a)") == ([("f", "1", "a"), ("g", "2", "b")], 3)


_PROBE = """
import json
from verl_reason_rft.rewards.transformation_calls import compute_score, score_prediction
cases = json.loads({cases!r})
print(json.dumps([[compute_score("trance", p, g, accuracy_mode=m)["accuracy"] for m in ("partial", "penalty")]
                  + [score_prediction("trance", p, g)] for p, g in cases]))
"""


def test_same_result_under_every_hash_seed():
    cases = [(ORDER_PRED, ORDER_GT_BLUE_FIRST), (ORDER_PRED, ORDER_GT_GREEN_FIRST)] + [
        (tagged("change_color(1, red), change_size(1, small), change_color(3, red), change_shape(1, cube)"),
         "change_color(1, blue), change_color(3, blue), change_size(2, small), change_shape(1, sphere)"),
    ]
    outputs = set()
    for seed in ("0", "1", "2", "3", "4", "5"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-c", _PROBE.format(cases=json.dumps(cases))], env=env,
                             capture_output=True, text=True, check=True)
        outputs.add(run.stdout.strip())
    assert len(outputs) == 1


# (rule, prediction, answer, paper score, strict score)
EVAL_CASES = [
    ("all right", tagged(GT), GT, 1.0, 1.0),
    ("no repeat penalty in the scorer", tagged("change_color(2, red), change_color(2, red)"), "change_color(2, red)", 1.0, 1.0),
    ("partial weights 0.5 / 0.5 / 0.25", tagged("change_color(2, blue), change_position(1, front_left)"), GT, 0.5, 0.5),
    ("func-only partial", tagged("change_color(1, blue)"), "change_color(2, red)", 0.25, 0.25),
    ("dilution by max(|P|, |G|)", tagged(GT + ", change_size(1, large)"), GT, 2 / 3, 2 / 3),
    ("one-line pair is used, calls in <think> ignored", f"<think>change_size(1, large)</think><answer>change_color(2, red)</answer>", "change_color(2, red)", 1.0, 1.0),
    ("multi-line pair: paper parses the whole completion", f"<think>change_size(1, large)</think><answer>\nchange_color(2, red)\n</answer>", "change_color(2, red)", 0.5, 1.0),
    ("multi-line pair then a one-line pair: paper takes the later one", "<answer>\nchange_size(1, large)</answer> <answer>change_color(2, red)</answer>", "change_color(2, red)", 1.0, 0.0),
    ("untagged completion", "change_color(2, red)", "change_color(2, red)", 1.0, 1.0),
    ("no predicted calls", tagged("nothing"), GT, 0.0, 0.0),
    ("no answer calls", tagged(GT), "", 0.0, 0.0),
    ("kind order: (func, object) before (func, value)", tagged("change_color(1, red), change_color(2, blue)"), "change_color(1, blue), change_color(5, red)", 0.375, 0.375),
    ("exact matches are removed before any pairing", tagged("change_color(1, red), change_color(1, blue)"), "change_color(1, blue)", 0.5, 0.5),
    ("no pair at all: whole completion in both modes", "<think>change_size(1, large)</think> change_color(2, red)", "change_color(2, red)", 0.5, 0.5),
]


@pytest.mark.parametrize("rule, prediction, answer, paper, strict", EVAL_CASES, ids=[c[0] for c in EVAL_CASES])
def test_paper_and_strict_scorer(rule, prediction, answer, paper, strict):
    assert score_prediction("trance_left", prediction, answer, mode="paper") == pytest.approx(paper, abs=1e-12)
    assert score_prediction("trance_left", prediction, answer, mode="strict") == pytest.approx(strict, abs=1e-12)
