"""Training metrics: the ``reason_rft`` trainer mode and the reward-part means it logs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from tensordict import TensorDict
from tensordict.tensorclass import NonTensorData, NonTensorStack

from verl_reason_rft.training_metrics import reward_extra_metrics, unwrap_reward_extra_info

PROBE = textwrap.dedent("""
    from hydra import compose, initialize_config_module
    from verl.trainer.ppo.v1 import get_trainer_cls
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        cfg = compose("ppo_trainer", overrides=["trainer.v1.trainer_mode=reason_rft",
                                                "actor_rollout_ref.rollout.name=vllm"])
    cls = get_trainer_cls(cfg.trainer.v1.trainer_mode)
    trainer = cls(cfg)
    assert issubclass(cls, PPOTrainerSync), cls
    assert type(trainer.replay_buffer) is ReplayBuffer, type(trainer.replay_buffer)  # sync, not async
    assert trainer.trainer_mode == "sync" and cfg.trainer.v1.trainer_mode == "reason_rft"
    print("OK", cls.__module__, cls.__qualname__)
""")


def test_trainer_registers_through_verl_external_modules_and_keeps_sync_semantics(tmp_path):
    env = {**os.environ, "VERL_USE_EXTERNAL_MODULES": "verl_reason_rft.trainer"}
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK verl_reason_rft.trainer ReasonRFTTrainer" in result.stdout




def _info(score, fmt, acc, timeout=0.0, error=0.0):
    return {"score": score, "format": fmt, "accuracy": acc, "timeout": timeout, "error": error, "score_time_s": 0.1}


def test_means_overall_and_per_data_source():
    infos = [_info(2.0, 1.0, 1.0), _info(1.0, 1.0, 0.0), _info(0.0, 0.0, 0.0, timeout=1.0)]
    metrics = reward_extra_metrics(infos, ["clevr_math", "clevr_math", "trance"])
    assert metrics["reason_rft/format/mean"] == pytest.approx(2 / 3)
    assert metrics["reason_rft/accuracy/mean"] == pytest.approx(1 / 3)
    assert metrics["reason_rft/timeout/mean"] == pytest.approx(1 / 3)
    assert metrics["reason_rft/clevr_math/accuracy/mean"] == 0.5
    assert metrics["reason_rft/trance/timeout/mean"] == 1.0


def test_samples_without_our_keys_are_left_out():
    metrics = reward_extra_metrics([{"acc": 1.0}, _info(1.0, 1.0, 0.0), {"format": "n/a", "accuracy": float("nan")}])
    assert metrics["reason_rft/format/mean"] == 1.0 and metrics["reason_rft/accuracy/mean"] == 0.0
    assert reward_extra_metrics([]) == {}
    with pytest.raises(ValueError):
        reward_extra_metrics([_info(1, 1, 1)], ["a", "b"])


def test_batch_metrics_from_a_transfer_queue_batch():
    """The TransferQueue read the trainer does, with TQ's own batch type and tensordict values."""
    from transfer_queue import KVBatchMeta

    from verl_reason_rft.trainer import batch_reward_metrics

    stored = {
        "k0": ({"reward_extra_info": _info(2.0, 1.0, 1.0)}, "clevr_math"),
        "k1": ({"reward_extra_info": _info(0.0, 0.0, 0.0, error=1.0)}, "geomath"),
    }
    batch = KVBatchMeta(keys=["k0", "k1", "pad"], tags=[{}, {}, {"is_padding": True}], partition_id="train")

    def kv_batch_get(keys, partition_id, select_fields):
        assert partition_id == "train" and "pad" not in keys
        rows = [stored[key] for key in keys]
        return TensorDict({
            "extra_fields": NonTensorStack(*[NonTensorData(extra) for extra, _ in rows]),
            "data_source": NonTensorStack(*[NonTensorData(source) for _, source in rows]),
        }, batch_size=[len(keys)])

    metrics = batch_reward_metrics(batch, kv_batch_get)
    assert metrics["reason_rft/accuracy/mean"] == 0.5 and metrics["reason_rft/error/mean"] == 0.5
    assert metrics["reason_rft/geomath/error/mean"] == 1.0
    assert unwrap_reward_extra_info(NonTensorData({"reward_extra_info": {"a": 1}})) == {"a": 1}
