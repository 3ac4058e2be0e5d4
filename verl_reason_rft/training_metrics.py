"""Training-step means of the reward parts (format, accuracy, timeouts, errors, scoring time).

verl 0.9.1 logs ``reward_extra_info`` only in validation; :class:`verl_reason_rft.trainer.ReasonRFTTrainer`
feeds each training batch's infos through :func:`reward_extra_metrics` into the step's metrics.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

from verl_reason_rft.reward_manager import ALIASES, EXTRA_INFO_KEYS
from verl_reason_rft.scoring import finite_float

PREFIX = "reason_rft"


def unwrap_reward_extra_info(extra_fields: Any) -> Mapping[str, Any]:
    """``reward_extra_info`` from one TransferQueue ``extra_fields`` value (a dict, maybe in ``NonTensorData``)."""
    extra_fields = getattr(extra_fields, "data", extra_fields)
    info = extra_fields.get("reward_extra_info") if isinstance(extra_fields, Mapping) else None
    return info if isinstance(info, Mapping) else {}


def reward_extra_metrics(infos: Iterable[Mapping[str, Any]], data_sources: Iterable[Any] | None = None) -> dict[str, float]:
    """``reason_rft/<key>/mean`` over all samples and ``reason_rft/<data_source>/<key>/mean`` per source.

    Samples without a key (another reward manager) or with a non-number are left out of its mean.
    """
    infos = list(infos)
    sources = [str(s) for s in data_sources] if data_sources is not None else [None] * len(infos)
    if len(sources) != len(infos):
        raise ValueError(f"{len(infos)} reward infos but {len(sources)} data sources")
    values: dict[str, list[float]] = defaultdict(list)
    for info, source in zip(infos, sources):
        for key in (k for k in EXTRA_INFO_KEYS if k not in ALIASES):  # the reward manager's keys, once each
            number = finite_float(info.get(key))
            if number is None:
                continue
            values[f"{PREFIX}/{key}/mean"].append(number)
            if source is not None:
                values[f"{PREFIX}/{source}/{key}/mean"].append(number)
    return {name: sum(numbers) / len(numbers) for name, numbers in sorted(values.items())}
