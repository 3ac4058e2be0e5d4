"""``trainer.v1.trainer_mode=reason_rft``: verl's sync PPO trainer plus reward-part training metrics.

verl 0.9.1 keeps ``reward_extra_info`` in the TransferQueue but logs it only in validation
(``verl/trainer/ppo/v1/trainer_base.py:1115-1139``); training logs ``critic/score/*`` only.
This subclass, registered through verl's own trainer registry (``register_trainer``),
adds ``reason_rft/{format,accuracy,timeout,error,...}/mean`` (overall and per ``data_source``)
to each step's metrics, read from the batch before verl clears it.

The registry name doubles as verl's mode switch (``trainer_mode == "sync"`` picks the sync
replay buffer, refill and checkpoint behaviour in ``trainer_base.py:153,731,902,912,1004,1499``),
so the trainer runs on a copy of the config with ``trainer.v1.trainer_mode=sync``.

Importing this module imports verl's whole trainer (seconds), so the ``verl.plugins`` entry point
does not import it directly: :mod:`verl_reason_rft.trainer_registration` imports it right after a
process imports verl's trainer registry (``verl.trainer.ppo.v1``), i.e. only in the TaskRunner and
other processes that look trainers up, with no environment variable.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Callable

from omegaconf import DictConfig, open_dict

from verl_reason_rft.cpu import activate as _activate_cpu_kit

# VERL_PLATFORM=cpu only (a no-op otherwise): when this module is named in VERL_USE_EXTERNAL_MODULES,
# verl imports it before the entry points, and verl's trainer resolves the platform at import time
_activate_cpu_kit()

from verl.trainer.ppo.v1.trainer_base import register_trainer  # noqa: E402
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from verl_reason_rft.training_metrics import reward_extra_metrics, unwrap_reward_extra_info

logger = logging.getLogger(__name__)

NAME = "reason_rft"


def batch_reward_metrics(batch: Any, kv_batch_get: Callable[..., Any]) -> dict[str, float]:
    """Reward-part means for a TransferQueue batch (``KVBatchMeta``), padding rows excluded."""
    keys = [key for key, tag in zip(batch.keys, batch.tags) if not tag.get("is_padding", False)]
    if not keys:
        return {}
    data = kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=["extra_fields", "data_source"])
    infos = [unwrap_reward_extra_info(item) for item in _as_list(data["extra_fields"])]
    sources = [getattr(s, "data", s) for s in _as_list(data["data_source"])] if "data_source" in data.keys() else None
    return reward_extra_metrics(infos, sources)


def _as_list(values: Any) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)


@register_trainer(NAME)
class ReasonRFTTrainer(PPOTrainerSync):
    """The sync trainer; each step also logs the means of the reward manager's ``reward_extra_info``."""

    def __init__(self, config: DictConfig) -> None:
        config = copy.deepcopy(config)
        with open_dict(config):
            config.trainer.v1.trainer_mode = "sync"
        super().__init__(config)

    def step(self, metrics: dict, timing_raw: dict):
        batch = super().step(metrics, timing_raw)
        try:
            import transfer_queue as tq

            metrics.update(batch_reward_metrics(batch, tq.kv_batch_get))
        except Exception as exc:  # metrics are a convenience: never stop training for them
            logger.warning("reason_rft: could not compute reward training metrics: %r", exc)
        return batch
