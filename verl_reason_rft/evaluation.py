"""The paper's evaluation scorer (SPEC §7), routed by ``data_source``: one float in [0, 1] per item.

Benchmarks report 100 x the mean per ``data_source``. ``mode="paper"`` reproduces the released
scorer; ``mode="strict"`` differs only where that scorer is fragile (spatial transformation
reads an answer pair that spans lines).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from verl_reason_rft.tasks import get_task

logger = logging.getLogger(__name__)

EVAL_MODES = ("paper", "strict")


def score_prediction(data_source: str, prediction: Any, answer: Any, mode: str = "paper") -> float:
    """Score one prediction against its answer; any error in scoring gives 0.

    An unknown ``data_source`` or ``mode`` raises (a configuration error, not a bad prediction).
    """
    if mode not in EVAL_MODES:
        raise ValueError(f"evaluation mode must be one of {', '.join(EVAL_MODES)}, got {mode!r}")
    task = get_task(data_source)
    try:
        value = float(task.score_prediction(data_source, prediction, answer, mode=mode))
    except Exception as exc:
        logger.warning("scorer of task %r raised on a %s item: %r", task.name, data_source, exc)
        return 0.0
    return min(1.0, max(0.0, value)) if math.isfinite(value) else 0.0
