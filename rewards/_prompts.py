"""Loads the built-in prompt templates from ``prompts.yaml`` (data, not code)."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import yaml


@lru_cache(maxsize=1)
def _all() -> dict[str, dict[str, str]]:
    return yaml.safe_load(files("verl_reason_rft.rewards").joinpath("prompts.yaml").read_text(encoding="utf-8"))


def templates(task: str) -> dict[str, str]:
    return dict(_all()[task])
