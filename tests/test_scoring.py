"""``verl_reason_rft.scoring.compute_score``: routing, modes, guards, verl's loader, bounded time."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verl_reason_rft import tasks
from verl_reason_rft.hookspecs import hookimpl
from verl_reason_rft.scoring import SCORE_KEYS, compute_score, resolve_accuracy_mode, score_with_status
from verl_reason_rft.task_spec import TaskSpec

GOOD = "<think>counted them</think>\n<answer>{}</answer>"

# data source -> (ground truth, a right completion, a wrong completion)
EXAMPLES = {
    "clevr_math": ("3", GOOD.format(3), GOOD.format(4)),
    "super_clevr": ("1", GOOD.format(1), GOOD.format(2)),
    "visual_counting": ("0", GOOD.format(0), GOOD.format(1)),
    "geomath": ("B", GOOD.format("B"), GOOD.format("C")),
    "geometry3k": ("12.5", GOOD.format("12.5"), GOOD.format("12")),
    "structure_perception": ("A", GOOD.format("A"), GOOD.format("D")),
    "trance": ("change_size(1, large)", GOOD.format("change_size(1, large)"), GOOD.format("change_size(1, small)")),
    "trance_left": ("change_shape(0, cube)", GOOD.format("change_shape(0, cube)"), GOOD.format("change_color(0, red)")),
    "trance_right": ("change_color(3, red)", GOOD.format("change_color(3, red)"), GOOD.format("change_color(2, blue)")),
    "spatial_transformation": ("change_material(2, glass)", GOOD.format("change_material(2, glass)"), GOOD.format("x")),
}


@pytest.mark.parametrize("data_source", sorted(EXAMPLES))
def test_every_data_source_and_task_name_routes_to_its_task(data_source):
    truth, right, wrong = EXAMPLES[data_source]
    assert compute_score(data_source=data_source, solution_str=right, ground_truth=truth) == {
        "score": 2.0, "format": 1.0, "accuracy": 1.0,
    }
    assert compute_score(data_source=data_source, solution_str=wrong, ground_truth=truth) == {
        "score": 1.0, "format": 1.0, "accuracy": 0.0,
    }


def test_registry_names_every_data_source_tested_here():
    assert set(tasks.get_registry().by_source) == set(EXAMPLES)


def test_unknown_data_source_is_a_clear_error():
    with pytest.raises(tasks.UnknownDataSource, match="unknown data_source 'mathvista'.*clevr_math"):
        compute_score(data_source="mathvista", solution_str="x", ground_truth="y")


@pytest.mark.parametrize(
    "data_source, mode, message",
    [
        ("clevr_math", "full", "allowed: exact, tolerance"),
        ("trance", "exact", "allowed: full, partial, penalty"),
        ("geomath", "EXACT", "allowed: exact, tolerance"),
    ],
)
def test_accuracy_mode_not_offered_by_the_task_is_rejected(data_source, mode, message):
    with pytest.raises(ValueError, match=message):
        compute_score(data_source=data_source, solution_str="x", ground_truth="y", accuracy_mode=mode)


def test_default_accuracy_mode_is_the_tasks_first():
    assert resolve_accuracy_mode("clevr_math") == "exact"
    assert resolve_accuracy_mode("trance_right") == "full"
    assert resolve_accuracy_mode("geometry3k", "tolerance") == "tolerance"
    near = GOOD.format(104)
    assert compute_score(data_source="clevr_math", solution_str=near, ground_truth="100")["accuracy"] == 0.0
    assert compute_score(data_source="clevr_math", solution_str=near, ground_truth="100", accuracy_mode="tolerance")["accuracy"] == 1.0


def test_non_string_inputs_and_extra_keywords_are_accepted():
    result = compute_score(data_source="clevr_math", solution_str=GOOD.format(3), ground_truth=3,
                           extra_info={"index": 1}, reward_router_address=None, reward_model_tokenizer=None)
    assert result["score"] == 2.0
    assert compute_score(data_source="trance", solution_str=None, ground_truth=None)["score"] == 0.0


def test_verl_loads_it_as_the_custom_reward_function():
    """Through verl's own Hydra config and loader, with reward_kwargs, called with keywords only."""
    from hydra import compose, initialize_config_module
    from verl.trainer.ppo.reward import get_custom_reward_fn

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        config = compose(
            config_name="ppo_trainer",
            overrides=[
                "reward.custom_reward_function.path=pkg://verl_reason_rft.scoring",
                "reward.custom_reward_function.name=compute_score",
                "+reward.custom_reward_function.reward_kwargs.accuracy_mode=tolerance",
            ],
        )
    reward_fn = get_custom_reward_fn(config)
    result = reward_fn(data_source="geomath", solution_str=GOOD.format("104"), ground_truth="100",
                       extra_info={"index": 0, "split": "train"})
    assert result == {"score": 2.0, "format": 1.0, "accuracy": 1.0}
    # reward_kwargs win over call-time kwargs (verl's merge order), and the mode is validated
    with pytest.raises(ValueError, match="allowed: full, partial, penalty"):
        reward_fn(data_source="trance", solution_str="x", ground_truth="change_size(1, large)", extra_info=None)


# ----------------------------------------------------------------------------- guards, through a real plugin


def _misbehaving(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    if data_source == "bad_raise":
        raise RuntimeError("boom")
    if data_source == "bad_nan":
        return {"score": float("nan"), "format": 1.0, "accuracy": float("inf")}
    if data_source == "bad_number":
        return 0.5
    return {"score": "1.5", "extra": 3.0}  # bad_keys: missing keys, a numeric string, an extra key


class MisbehavingPlugin:
    @hookimpl
    def reason_rft_tasks(self):
        return [TaskSpec(name="misbehaving", data_sources=("bad_raise", "bad_nan", "bad_number", "bad_keys"),
                         compute_score=_misbehaving, score_prediction=lambda *a, **k: 0.0,
                         prompts={"cot": "{problem}", "ans": "{problem}"})]


@pytest.fixture
def with_misbehaving_plugin(register_task_plugin):
    register_task_plugin(MisbehavingPlugin(), "misbehaving")


@pytest.mark.parametrize(
    "data_source, expected, reason",
    [
        ("bad_raise", {"score": 0.0, "format": 0.0, "accuracy": 0.0}, "misbehaving reward raised RuntimeError: boom"),
        ("bad_nan", {"score": 0.0, "format": 1.0, "accuracy": 0.0}, "non-finite"),
        ("bad_number", {"score": 0.5, "format": 0.0, "accuracy": 0.0}, None),
        ("bad_keys", {"score": 1.5, "format": 0.0, "accuracy": 0.0}, None),
    ],
)
def test_a_misbehaving_task_never_breaks_the_contract(with_misbehaving_plugin, data_source, expected, reason):
    result, why = score_with_status(data_source, "text", "truth")
    assert result == expected
    assert list(result) == list(SCORE_KEYS)
    if reason is None:
        assert why is None
    else:
        assert reason in why


def test_a_math_verify_timeout_scores_0_with_the_reason():
    result, why = score_with_status("clevr_math", "9^9^9^9", "3")
    assert result == {"score": 0.0, "format": 0.0, "accuracy": 0.0}
    assert "math-verify timeout" in why
    assert score_with_status("clevr_math", "The answer is 3.0", "3") == (
        {"score": 1.0, "format": 0.0, "accuracy": 1.0}, None)


# ----------------------------------------------------------------------------- properties and bounds

SOURCES_AND_MODES = [
    (source, mode)
    for source in sorted(EXAMPLES)
    for mode in tasks.get_task(source).accuracy_modes
]

TAGGY_TEXT = st.lists(
    st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "3", "3.0", "-0", "1e400", "nan",
                     "change_color(1, red)", "change_color(1, 'blue')", ",", "(", "\\frac{1}{2}", "^", "B", "é"]),
    max_size=12,
).map("".join)


@settings(max_examples=120, deadline=None)
@given(solution=st.one_of(TAGGY_TEXT, st.text(max_size=60)), truth=st.one_of(TAGGY_TEXT, st.text(max_size=20)),
       case=st.sampled_from(SOURCES_AND_MODES))
def test_any_text_gives_finite_scores_in_range(solution, truth, case):
    data_source, mode = case
    result = compute_score(data_source=data_source, solution_str=solution, ground_truth=truth, accuracy_mode=mode)
    assert list(result) == list(SCORE_KEYS)
    assert all(isinstance(v, float) and math.isfinite(v) for v in result.values())
    low = -0.5 if mode == "penalty" else 0.0
    assert result["format"] in (0.0, 1.0)
    assert low <= result["accuracy"] <= 1.0
    assert result["score"] == pytest.approx(result["format"] + result["accuracy"])


ADVERSARIAL = {
    "1 MB of letters": "a" * 1_000_000,
    "1 MB of digits": "7" * 1_000_000,
    "1 MB answer": "<think>x</think><answer>" + "9" * 1_000_000 + "</answer>",
    "unclosed answer tags": "<answer>" * 150_000,
    "think tags": "<think>" + "</think>" * 120_000,
    "nested parens": "(" * 50_000 + "1" + ")" * 50_000,
    "run of (": "(" * 500_000,
    "nested braces": "{" * 50_000 + "}" * 50_000,
    "power tower": "9^9^9^9",
    "latex power tower": "$9^{9^{9^{9}}}$",
    "boxed tower": "The answer is \\boxed{9^{9^{9^{9}}}}",
    "frac nesting": "\\frac{" * 2000 + "1" + "}{2}" * 2000,
    "huge underbrace": "\\underbrace{" + "x+" * 50_000 + "x}_{n}",
    "many calls": "change_color(1, red), " * 40_000,
    "call prefixes": "f(" * 300_000,
}


@pytest.mark.parametrize("kind", sorted(ADVERSARIAL))
def test_no_input_makes_a_call_slow(kind):
    text = ADVERSARIAL[kind]
    for data_source, mode in [("clevr_math", "exact"), ("geomath", "tolerance"), ("trance", "partial")]:
        start = time.perf_counter()
        result = compute_score(data_source=data_source, solution_str=text, ground_truth="3", accuracy_mode=mode)
        elapsed = time.perf_counter() - start
        assert elapsed < 2.0, f"{kind} on {data_source}: {elapsed:.2f}s"  # a bound, not a benchmark
        assert all(math.isfinite(v) for v in result.values())
