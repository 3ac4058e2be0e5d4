"""``verl_reason_rft.evaluation.score_prediction``: routing, modes, [0, 1], errors -> 0, bounded time."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verl_reason_rft import tasks
from verl_reason_rft.evaluation import EVAL_MODES, score_prediction
from verl_reason_rft.hookspecs import hookimpl
from verl_reason_rft.task_spec import TaskSpec

TAGGED = "<think>...</think><answer>{}</answer>"

# data source -> (answer, right prediction, lenient-right prediction, wrong prediction)
EXAMPLES = {
    "clevr_math": ("3", TAGGED.format("3"), TAGGED.format("3.0"), TAGGED.format("4")),
    "super_clevr": ("2", TAGGED.format("2"), "so 2 objects remain", TAGGED.format("5")),
    "geomath": ("C", TAGGED.format("C"), " C\n", TAGGED.format("D")),
    "geometry3k": ("0.5", TAGGED.format("0.5"), TAGGED.format("\\frac{1}{2}"), TAGGED.format("2")),
    "trance": ("change_size(1, large)", TAGGED.format("change_size(1, large)"),
               TAGGED.format("change_size(1, large), change_size(1, large)"), TAGGED.format("change_shape(2, cube)")),
    "trance_left": ("change_color(0, red)", TAGGED.format("change_color(0, red)"), "change_color(0, 'red')",
                    TAGGED.format("")),
    "trance_right": ("change_material(2, glass)", TAGGED.format("change_material(2, glass)"),
                     "<answer>change_material(2,glass)</answer>", "no idea"),
}


@pytest.mark.parametrize("data_source", sorted(EXAMPLES))
@pytest.mark.parametrize("mode", EVAL_MODES)
def test_routes_by_data_source(data_source, mode):
    answer, right, lenient, wrong = EXAMPLES[data_source]
    assert score_prediction(data_source, right, answer, mode=mode) == 1.0
    assert score_prediction(data_source, lenient, answer, mode=mode) == 1.0
    assert score_prediction(data_source, wrong, answer, mode=mode) == 0.0


def test_task_names_route_too():
    assert score_prediction("visual_counting", TAGGED.format("3.0"), "3") == 1.0
    assert score_prediction("spatial_transformation", TAGGED.format("change_size(1, large)"), "change_size(1, large)") == 1.0


def test_strict_reads_answer_pairs_across_lines():
    prediction = "<think>change_size(1, small) first?</think>\n<answer>\nchange_size(1, large)\n</answer>"
    assert score_prediction("trance", prediction, "change_size(1, large)", mode="paper") == 0.5
    assert score_prediction("trance", prediction, "change_size(1, large)", mode="strict") == 1.0


def test_unknown_mode_and_data_source_raise():
    with pytest.raises(ValueError, match="paper, strict"):
        score_prediction("trance", "x", "y", mode="lenient")
    with pytest.raises(tasks.UnknownDataSource):
        score_prediction("mathvista", "x", "y")


def _bad_scorer(data_source, prediction, answer, mode="paper"):
    return {"raise": lambda: 1 / 0, "nan": lambda: float("nan"), "big": lambda: 7.0, "neg": lambda: -1.0,
            "text": lambda: "0.25"}[prediction]()


class BadScorerPlugin:
    @hookimpl
    def reason_rft_tasks(self):
        return [TaskSpec(name="bad_scorer", data_sources=("bad_scorer_bench",), compute_score=lambda *a, **k: {},
                         score_prediction=_bad_scorer, prompts={"cot": "{problem}", "ans": "{problem}"})]


@pytest.mark.parametrize("prediction, expected", [("raise", 0.0), ("nan", 0.0), ("big", 1.0), ("neg", 0.0), ("text", 0.25)])
def test_a_failing_scorer_gives_0_and_out_of_range_is_clamped(register_task_plugin, prediction, expected):
    register_task_plugin(BadScorerPlugin(), "bad_scorer")
    assert score_prediction("bad_scorer_bench", prediction, "x") == expected


TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(["<answer>", "</answer>", "\n", " ", "3", "3.0", "change_color(1, red)", ",", "1e999",
                              "\\frac{1}{2}", "C"]), max_size=10).map("".join),
)


@settings(max_examples=120, deadline=None)
@given(prediction=TEXT, answer=TEXT, data_source=st.sampled_from(sorted(EXAMPLES)), mode=st.sampled_from(EVAL_MODES))
def test_any_text_scores_in_0_1(prediction, answer, data_source, mode):
    value = score_prediction(data_source, prediction, answer, mode=mode)
    assert isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0


@pytest.mark.parametrize(
    "prediction",
    ["9^9^9^9", "<answer>$9^{9^{9^{9}}}$</answer>", "a" * 1_000_000, "<answer>" * 150_000, "(" * 300_000,
     "\\frac{" * 2000 + "1" + "}{2}" * 2000],
    ids=["tower", "tagged latex tower", "letters", "open tags", "parens", "frac nesting"],
)
def test_scoring_time_is_bounded(prediction):
    for data_source in ("clevr_math", "geometry3k", "trance"):
        start = time.perf_counter()
        score_prediction(data_source, prediction, "3")
        assert time.perf_counter() - start < 2.0  # a bound, not a benchmark
