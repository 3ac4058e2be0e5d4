"""Prompt-template overrides ``{task: {template_name: template}}`` (a YAML file shaped like ``rewards/prompts.yaml``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from verl_reason_rft.task_spec import TaskSpec

Overrides = dict[str, dict[str, str]]


def load_overrides(source: str | os.PathLike | Mapping[str, Any] | None, tasks: Mapping[str, TaskSpec]) -> Overrides:
    """Validated overrides from a YAML path or a mapping: known tasks and template names, ``{problem}`` present."""
    if source is None:
        return {}
    origin = "prompt overrides"
    if not isinstance(source, Mapping):
        origin = str(source)
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"prompts file {path} does not exist")
        source = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(source, Mapping):
            raise ValueError(f"{origin}: expected a mapping task -> {{template_name: template}}, got {type(source).__name__}")
    overrides: Overrides = {}
    for task, templates in source.items():
        if task not in tasks:
            raise ValueError(f"{origin}: unknown task {task!r} (known: {', '.join(sorted(tasks))})")
        if not isinstance(templates, Mapping):
            raise ValueError(f"{origin}: {task}: expected a mapping template_name -> template")
        for name, template in templates.items():
            if name not in tasks[task].prompts:
                raise ValueError(
                    f"{origin}: {task}: unknown template {name!r} (this task uses: {', '.join(sorted(tasks[task].prompts))})"
                )
            if not isinstance(template, str) or "{problem}" not in template:
                raise ValueError(f"{origin}: {task}.{name}: a template must be a string containing {{problem}}")
        overrides[task] = {str(k): v for k, v in templates.items()}
    return overrides
