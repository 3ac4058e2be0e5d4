"""``reason_rft``: verl's reward-loop manager for Reason-RFT tasks.

Each response is decoded as verl's ``naive`` manager does, routed by ``data_source``
through the task registry, and scored in a worker process under a hard timeout. A
timeout, an error or a non-finite result scores 0 with a flag; nothing raises into the
trainer, and every sample returns the same ``reward_extra_info`` keys
(:data:`EXTRA_INFO_KEYS`).

Config (all optional): ``reward.reward_kwargs`` and ``reward.custom_reward_function.reward_kwargs``
(keyword arguments for the scorer, e.g. ``accuracy_mode``), ``reward.reason_rft.timeout_s`` (5),
``reward.reason_rft.num_processes`` (2). A ``reward.custom_reward_function.path`` other than
``pkg://verl_reason_rft.scoring`` replaces our scorer (same timeout and key handling).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from verl_reason_rft.process_pool import CallResult, FunctionRef, TimeoutProcessPool, shared_pool
from verl_reason_rft.scoring import SCORE_KEYS
from verl_reason_rft.tasks import get_task

logger = logging.getLogger(__name__)

NAME = "reason_rft"
#: our scorer, as workers call it: ``(scores, why degraded or None)``; a reward that raises is an ``error`` sample
SCORER = FunctionRef("verl_reason_rft.scoring", "score_or_raise")
#: ``reward_extra_info`` keys: the numbers a scorer returns (``scoring.SCORE_KEYS``), then ours;
#: identical for every sample (verl takes the key list from the first one).
#: ``score_time_s`` is one key for every task: verl groups validation metrics by ``data_source``,
#: which gives the per-task timing, and a key per task would change with the installed plugins.
#: ``acc`` repeats ``accuracy`` under the name verl's validation makes the headline: with an ``acc`` key
#: ``val-core/<data_source>/acc/mean@1`` is the accuracy (without one verl headlines ``reward``, format + accuracy).
EXTRA_INFO_KEYS = (*SCORE_KEYS, "acc", "timeout", "error", "score_time_s")
#: keys that repeat another key under verl's name (left out of our training metrics)
ALIASES = {"acc": "accuracy"}
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_NUM_PROCESSES = 2
_OUR_SCORER_PATHS = {"verl_reason_rft.scoring", "pkg://verl_reason_rft.scoring", "pkg://verl_reason_rft/scoring"}
#: log every failure up to this count, then every 100th
_LOG_FIRST = 20


def _get(node: Any, key: str, default: Any = None) -> Any:
    if node is None:
        return default
    value = node.get(key, default) if hasattr(node, "get") else getattr(node, key, default)
    return default if value is None else value


def _as_dict(node: Any) -> dict[str, Any]:
    if node is None:
        return {}
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(node):
            return dict(OmegaConf.to_container(node, resolve=True))
    except ImportError:  # pragma: no cover - omegaconf ships with verl
        pass
    return dict(node)


@dataclass(frozen=True)
class Settings:
    """What the manager reads from the trainer config."""

    scorer: FunctionRef = SCORER
    reward_kwargs: dict[str, Any] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    num_processes: int = DEFAULT_NUM_PROCESSES

    @property
    def uses_task_registry(self) -> bool:
        return self.scorer == SCORER

    @classmethod
    def from_config(cls, config: Any) -> "Settings":
        reward = _get(config, "reward")
        custom = _get(reward, "custom_reward_function")
        ours = _get(reward, "reason_rft")
        path, name = _get(custom, "path"), _get(custom, "name", "compute_score")
        ours_named = path in _OUR_SCORER_PATHS and name in ("compute_score", SCORER.name)
        scorer = SCORER if not path or ours_named else FunctionRef(path, name)
        kwargs = {**_as_dict(_get(reward, "reward_kwargs")), **_as_dict(_get(custom, "reward_kwargs"))}
        timeout_s = float(_get(ours, "timeout_s", DEFAULT_TIMEOUT_S))
        num_processes = int(_get(ours, "num_processes", DEFAULT_NUM_PROCESSES))
        if not timeout_s > 0:
            raise ValueError(f"reward.reason_rft.timeout_s must be > 0, got {timeout_s}")
        if num_processes < 1:
            raise ValueError(f"reward.reason_rft.num_processes must be >= 1, got {num_processes}")
        return cls(scorer=scorer, reward_kwargs=kwargs, timeout_s=timeout_s, num_processes=num_processes)

    @property
    def preload(self) -> tuple[str | FunctionRef, ...]:
        """Imports a fresh worker does before its first timed call."""
        if self.uses_task_registry:
            return ("verl_reason_rft.scoring", "verl_reason_rft.tasks:get_registry", "verl_reason_rft.math_equiv:warm_up")
        return (self.scorer,)


def failed(kind: str, elapsed_s: float = 0.0) -> dict[str, float]:
    """``reward_extra_info`` for a sample that scored 0 because of a ``timeout`` or an ``error``."""
    return {"score": 0.0, "format": 0.0, "accuracy": 0.0, "acc": 0.0, "timeout": float(kind == "timeout"),
            "error": float(kind == "error"), "score_time_s": float(elapsed_s)}


def to_extra_info(result: CallResult) -> tuple[dict[str, float], str]:
    """The fixed-key ``reward_extra_info`` for a scorer call, and why it failed or was degraded ("" if not).

    A dict result must hold a finite ``score``; a missing ``format``/``accuracy`` counts 0.
    A bare number is the score and the accuracy (format 0), like verl's ``acc``.
    """
    if result.status != "ok":
        return failed(result.status, result.elapsed_s), result.error
    value, note = result.value, ""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], Mapping):  # score_or_raise
        value, note = value[0], value[1] or ""
    try:
        if isinstance(value, Mapping):
            if "score" not in value:
                raise ValueError(f"scorer returned a dict without 'score': keys {sorted(value)}")
            numbers = {key: float(value.get(key, 0.0)) for key in SCORE_KEYS}
        else:
            numbers = {"score": float(value), "format": 0.0, "accuracy": float(value)}
    except (TypeError, ValueError) as exc:
        return failed("error", result.elapsed_s), f"unusable scorer result {value!r:.200}: {exc}"
    bad = [key for key, number in numbers.items() if not math.isfinite(number)]
    if bad:
        return failed("error", result.elapsed_s), f"scorer returned non-finite {bad}: {value!r:.200}"
    return {**numbers, "acc": numbers["accuracy"], "timeout": 0.0, "error": 0.0, "score_time_s": result.elapsed_s}, note


@register(NAME)
class ReasonRFTRewardManager(RewardManagerBase):
    """Rule-based Reason-RFT rewards in worker processes, with a per-sample timeout.

    verl builds it as ``cls(config=, tokenizer=, compute_score=, reward_router_address=,
    reward_model_tokenizer=)`` inside a running event loop. ``compute_score`` (what verl
    resolved) is not called here: functions from ``file://`` paths do not pickle, so the
    worker imports the scorer itself from :class:`Settings`.
    """

    def __init__(self, config, tokenizer, compute_score=None, reward_router_address=None,
                 reward_model_tokenizer=None) -> None:
        super().__init__(config, tokenizer, compute_score)
        self.settings = Settings.from_config(config)
        self.reward_router_address = reward_router_address
        self.reward_model_tokenizer = reward_model_tokenizer
        self._failures = 0

    @property
    def pool(self) -> TimeoutProcessPool:
        """The process's shared worker pool for these settings (workers start on first use)."""
        return shared_pool(self.settings.num_processes, self.settings.preload)

    async def run_single(self, data: DataProto) -> dict:
        start = time.perf_counter()
        data_source = "?"
        try:
            item = data[-1:][0]  # multi-output trajectories: score the last sequence, as verl's managers do
            data_source = str(item.non_tensor_batch["data_source"])
            ground_truth = item.non_tensor_batch["reward_model"]["ground_truth"]
            extra_info = dict(item.non_tensor_batch.get("extra_info") or {})
            response_ids = item.batch["responses"]
            valid_length = int(item.batch["attention_mask"][-response_ids.shape[-1]:].sum())
            valid_ids = response_ids[:valid_length]
            solution = await self.loop.run_in_executor(
                None, lambda: self.tokenizer.decode(valid_ids, skip_special_tokens=True)
            )
            if self.settings.uses_task_registry:
                get_task(data_source)  # an unknown data_source fails here, with the list of known ones
            kwargs = {"data_source": data_source, "solution_str": solution, "ground_truth": ground_truth,
                      "extra_info": extra_info, **self.settings.reward_kwargs}
            result = await self.pool.acall(self.settings.scorer, kwargs, self.settings.timeout_s)
            info, problem = to_extra_info(result)
        except Exception as exc:  # bad row, tokenizer failure, pool failure: score 0, never raise
            info, problem = failed("error", time.perf_counter() - start), f"{type(exc).__name__}: {exc}"
        if problem:
            self._report(data_source, problem)
        return {"reward_score": info["score"], "reward_extra_info": info}

    def _report(self, data_source: str, problem: str) -> None:
        self._failures += 1
        if self._failures <= _LOG_FIRST or self._failures % 100 == 0:
            logger.warning("reason_rft reward: sample of data_source %r scored 0 (%d so far): %s",
                           data_source, self._failures, problem[-2000:])
