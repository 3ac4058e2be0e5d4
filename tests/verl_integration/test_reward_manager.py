"""``reason_rft`` through verl's real reward-loop loader on real ``DataProto`` samples."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
from verl.trainer.ppo.reward import load_reward_manager

import verl_reason_rft.verl_plugin  # noqa: F401  (what verl's entry point imports)
from verl_reason_rft.reward_manager import EXTRA_INFO_KEYS, SCORER, ReasonRFTRewardManager, Settings

GOOD = "<think>\nThere are 3 red cubes.\n</think>\n<answer>\n3\n</answer>"
WRONG = "<think>\nThere are 2.\n</think>\n<answer>\n2\n</answer>"
BASE = ["reward.reward_manager.name=reason_rft", "+reward.reason_rft.timeout_s=20"]

SLOW_REWARD = '''
import time
def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    if "SLEEP" in solution_str:
        time.sleep(600)
    if "BOOM" in solution_str:
        raise RuntimeError("BOOM from the custom reward")
    if "NAN" in solution_str:
        return {"score": float("nan")}
    return {"score": 0.5, "format": 1.0, "accuracy": 0.25, "mode": kwargs.get("accuracy_mode")}
'''


def _check(out: dict) -> dict:
    info = out["reward_extra_info"]
    assert tuple(info) == EXTRA_INFO_KEYS
    assert info["acc"] == info["accuracy"]  # verl's validation headline key, in every sample
    assert all(isinstance(v, float) and math.isfinite(v) for v in info.values())
    assert out["reward_score"] == info["score"]
    return info


def test_registered_under_reason_rft():
    assert get_reward_manager_cls("reason_rft") is ReasonRFTRewardManager


async def test_scores_through_verls_loader_with_our_scorer(ppo_config, tokenizer, make_sample):
    manager = load_reward_manager(ppo_config(*BASE), tokenizer)
    assert isinstance(manager, ReasonRFTRewardManager) and manager.settings.scorer == SCORER
    good, wrong, sloppy = await asyncio.gather(
        manager.run_single(make_sample(GOOD, "3", pad_to=64)),
        manager.run_single(make_sample(WRONG, "3")),
        manager.run_single(make_sample("the answer is 3", "3", data_source="visual_counting")),
    )
    assert _check(good) | {"score_time_s": 0} == {"score": 2.0, "format": 1.0, "accuracy": 1.0, "acc": 1.0, "timeout": 0.0,
                                                   "error": 0.0, "score_time_s": 0}
    assert (_check(wrong)["format"], _check(wrong)["accuracy"]) == (1.0, 0.0)
    assert _check(sloppy)["format"] == 0.0 and _check(sloppy)["error"] == 0.0


async def test_reward_kwargs_from_config_reach_the_scorer(ppo_config, tokenizer, make_sample):
    sample = "<think>\nabout three\n</think>\n<answer>\n3.1\n</answer>"
    exact = load_reward_manager(ppo_config(*BASE), tokenizer)
    tolerant = load_reward_manager(ppo_config(*BASE, "+reward.reward_kwargs.accuracy_mode=tolerance"), tokenizer)
    assert tolerant.settings.reward_kwargs == {"accuracy_mode": "tolerance"}
    assert _check(await exact.run_single(make_sample(sample, "3")))["accuracy"] == 0.0
    assert _check(await tolerant.run_single(make_sample(sample, "3")))["accuracy"] == 1.0  # |3.1-3| < 5 %


async def test_bad_rows_score_zero_with_an_error_flag(ppo_config, tokenizer, make_sample):
    manager = load_reward_manager(ppo_config(*BASE), tokenizer)
    unknown = _check(await manager.run_single(make_sample(GOOD, "3", data_source="no_such_benchmark")))
    no_truth = _check(await manager.run_single(make_sample(GOOD, "3", reward_model={"style": "rule"})))
    bad_mode = load_reward_manager(ppo_config(*BASE, "+reward.reward_kwargs.accuracy_mode=nonsense"), tokenizer)
    mode = _check(await bad_mode.run_single(make_sample(GOOD, "3")))
    for info in (unknown, no_truth, mode):
        assert (info["score"], info["error"], info["timeout"]) == (0.0, 1.0, 0.0)


async def test_huge_completion_is_scored_in_bounded_time(ppo_config, tokenizer, make_sample):
    manager = load_reward_manager(ppo_config(*BASE), tokenizer)
    huge = "<think>\n" + "3 + 3 = 6 " * 100_000 + "\n</think>\n<answer>\n3\n</answer>"  # 1 MB
    start = time.perf_counter()
    info = _check(await manager.run_single(make_sample(huge, "3")))
    assert time.perf_counter() - start < 60
    assert info["error"] == 0.0 and info["accuracy"] == 1.0


@pytest.fixture(scope="module")
def slow_reward(tmp_path_factory):
    path = tmp_path_factory.mktemp("custom_reward") / "slow_reward.py"
    path.write_text(SLOW_REWARD)
    return path


async def test_custom_reward_function_runs_with_timeout_and_error_flags(ppo_config, tokenizer, make_sample,
                                                                        slow_reward):
    config = ppo_config(
        *BASE[:1], f"reward.custom_reward_function.path={slow_reward}", "+reward.reason_rft.timeout_s=3",
        "+reward.reason_rft.num_processes=1", "+reward.custom_reward_function.reward_kwargs.accuracy_mode=full",
    )
    manager = load_reward_manager(config, tokenizer)
    assert manager.settings.scorer.module == str(slow_reward)
    assert _check(await manager.run_single(make_sample("warm up", "3")))["score"] == 0.5  # worker started
    start = time.perf_counter()
    timed_out = _check(await manager.run_single(make_sample("SLEEP", "3")))
    assert time.perf_counter() - start < 15
    assert (timed_out["score"], timed_out["timeout"], timed_out["error"]) == (0.0, 1.0, 0.0)
    assert timed_out["score_time_s"] >= 3
    boom, nan, fine = [_check(await manager.run_single(make_sample(text, "3"))) for text in ("BOOM", "NAN", "ok")]
    assert (boom["error"], nan["error"], fine["error"]) == (1.0, 1.0, 0.0)
    assert (fine["score"], fine["format"], fine["accuracy"]) == (0.5, 1.0, 0.25)  # extra keys dropped


def test_our_scorer_named_as_custom_function_is_still_ours(ppo_config):
    for path in ("pkg://verl_reason_rft.scoring", "pkg://verl_reason_rft/scoring"):
        config = ppo_config(*BASE, f"reward.custom_reward_function.path={path}")
        assert Settings.from_config(config).scorer == SCORER


def test_bad_settings_fail_at_construction(ppo_config):
    with pytest.raises(ValueError, match="timeout_s"):
        Settings.from_config(ppo_config(*BASE[:1], "+reward.reason_rft.timeout_s=0"))
    with pytest.raises(ValueError, match="num_processes"):
        Settings.from_config(ppo_config(*BASE[:1], "+reward.reason_rft.num_processes=0"))


async def test_validation_headline_is_the_accuracy(ppo_config, tokenizer, make_sample):
    """verl's own validation aggregation puts ``acc`` (not format + accuracy) under ``val-core``."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    manager = load_reward_manager(ppo_config(*BASE), tokenizer)
    outs = await asyncio.gather(*(manager.run_single(make_sample(text, "3")) for text in (GOOD, WRONG, "3", GOOD)))
    infos = [_check(out) for out in outs]
    # what verl's validation loop collects: "reward" plus every reward_extra_info key, one value per sample
    collected = {"reward": [out["reward_score"] for out in outs], **{k: [i[k] for i in infos] for k in EXTRA_INFO_KEYS}}
    metrics = PPOTrainer._val_metrics_update(None, ["clevr_math"] * 4, ["u0", "u1", "u2", "u3"], collected, [])
    core = {k: v for k, v in metrics.items() if k.startswith("val-core/")}
    assert core == {"val-core/clevr_math/acc/mean@1": pytest.approx(0.75)}  # GOOD, WRONG, untagged 3, GOOD
    assert metrics["val-aux/clevr_math/reward/mean@1"] == pytest.approx((2 + 1 + 1 + 2) / 4)
