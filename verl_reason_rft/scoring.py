"""The reward every Reason-RFT task is trained with, routed by ``data_source`` (SPEC §6).

Usable directly as verl's custom reward function::

    reward.custom_reward_function.path=pkg://verl_reason_rft.scoring
    reward.custom_reward_function.name=compute_score

verl calls it with keyword arguments only (and may add its own, which are passed on to the
task). It never raises on bad text, never returns NaN or inf, and bounds its own time (the
linear-time text helpers of :mod:`verl_reason_rft.completion`, math-verify through
:mod:`verl_reason_rft.math_equiv`). Configuration errors (an unknown ``data_source``, an
``accuracy_mode`` the task does not offer) do raise, naming what is allowed.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from verl_reason_rft.math_equiv import collect_notes
from verl_reason_rft.tasks import get_task

logger = logging.getLogger(__name__)

#: the keys of every result, whatever the task (verl needs the same keys for every sample).
SCORE_KEYS = ("score", "format", "accuracy")


def resolve_accuracy_mode(data_source: str, accuracy_mode: str | None = None) -> str:
    """The task's mode for ``data_source``: ``accuracy_mode`` if the task offers it, else its default."""
    modes = get_task(data_source).accuracy_modes
    if accuracy_mode is None:
        return modes[0]
    if accuracy_mode not in modes:
        raise ValueError(
            f"accuracy_mode {accuracy_mode!r} is not offered for data_source {data_source!r}; "
            f"allowed: {', '.join(modes)} (default {modes[0]})"
        )
    return accuracy_mode


def finite_float(value: Any) -> float | None:
    """``float(value)`` when that is a finite number, else None."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _guard(raw: Any) -> tuple[dict[str, float], str | None]:
    """The three keys as finite floats; what had to be fixed, if anything."""
    mapping = raw if isinstance(raw, dict) else {"score": raw}
    result: dict[str, float] = {}
    bad: list[str] = []
    for key in SCORE_KEYS:
        value = finite_float(mapping.get(key, 0.0))
        if value is None:
            bad.append(f"{key}={mapping.get(key)!r}")
            value = 0.0
        result[key] = value
    return result, (f"non-finite or non-numeric {', '.join(bad)} replaced by 0" if bad else None)


def score_or_raise(
    data_source: str,
    solution_str: Any,
    ground_truth: Any,
    extra_info: dict | None = None,
    **kwargs: Any,
) -> tuple[dict[str, float], str | None]:
    """:func:`score_with_status` without its safety net: an exception raised by the task's reward
    propagates (the reward manager's worker process reports it as an ``error`` sample)."""
    task = get_task(data_source)
    kwargs["accuracy_mode"] = resolve_accuracy_mode(data_source, kwargs.get("accuracy_mode"))
    with collect_notes() as notes:
        raw = task.compute_score(
            data_source=data_source,
            solution_str=solution_str,
            ground_truth=ground_truth,
            extra_info=extra_info,
            **kwargs,
        )
    result, fixed = _guard(raw)
    reasons = [*notes, *([fixed] if fixed else [])]
    return result, "; ".join(reasons) if reasons else None


def score_with_status(
    data_source: str,
    solution_str: Any,
    ground_truth: Any,
    extra_info: dict | None = None,
    **kwargs: Any,
) -> tuple[dict[str, float], str | None]:
    """:func:`compute_score` plus why the result is degraded (``None`` when it is not).

    The reason names a math-verify timeout, an exception raised by the task's reward (the
    sample then scores 0), or a non-finite value that was replaced. Thread-safe.
    """
    task = get_task(data_source)
    resolve_accuracy_mode(data_source, kwargs.get("accuracy_mode"))  # configuration errors raise
    try:
        return score_or_raise(data_source, solution_str, ground_truth, extra_info, **kwargs)
    except Exception as exc:
        logger.warning("reward of task %r raised on a %s sample: %r", task.name, data_source, exc)
        return dict.fromkeys(SCORE_KEYS, 0.0), f"{task.name} reward raised {type(exc).__name__}: {exc}"


def compute_score(
    data_source: str,
    solution_str: Any,
    ground_truth: Any,
    extra_info: dict | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """``{"score", "format", "accuracy"}`` (finite floats) for one completion of any task.

    ``accuracy_mode`` (a keyword, e.g. from ``reward.custom_reward_function.reward_kwargs``)
    selects the task's accuracy variant; see ``reason-rft tasks`` for each task's modes.
    """
    return score_with_status(data_source, solution_str, ground_truth, extra_info, **kwargs)[0]
