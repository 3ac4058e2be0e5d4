"""Re-render the user turn from ``extra_info`` when the recipe overrides prompts.

``data.prompt_templates`` (``{task: {template_name: template}}``, same layout as
``rewards/prompts.yaml``) replaces templates by name; ``data.prompt_style`` (``cot`` | ``ans``)
renders every row in that style. Neither set: rows are used exactly as ``prepare`` wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection, Mapping, Sequence

from verl_reason_rft.data_prep.prompt_overrides import load_overrides
from verl_reason_rft.data_prep.rows import user_content
from verl_reason_rft.tasks import get_registry, get_task

STYLES = ("cot", "ans")


def _plain(value: Any) -> Any:
    """OmegaConf containers to plain Python (no-op for plain values)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf ships with verl
        return value
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig | ListConfig) else value


@dataclass(frozen=True)
class PromptSettings:
    templates: Mapping[str, Mapping[str, str]]
    style: str | None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PromptSettings | None:
        """The configured overrides, validated against the task registry; None when there are none."""
        templates = _plain(config.get("prompt_templates", None)) or {}
        style = config.get("prompt_style", None)
        if not templates and style is None:
            return None
        if style is not None and style not in STYLES:
            raise ValueError(f"data.prompt_style must be one of {STYLES}, got {style!r}")
        try:
            overrides = load_overrides(templates, get_registry().tasks)
        except ValueError as exc:
            raise ValueError(f"data.prompt_templates: {exc}") from None
        return cls(templates=overrides, style=style)

    def user_content(self, data_source: str, extra_info: Mapping[str, Any] | None, n_images: int, row: str) -> tuple[str, str]:
        """(the new user-turn content, the style used) for one row; ``row`` names it in errors."""
        info = extra_info or {}
        problem, answer = info.get("problem"), info.get("answer")
        if problem is None or answer is None:
            raise ValueError(
                f"{row}: data.prompt_templates/data.prompt_style need extra_info.problem and extra_info.answer "
                "(rows written by `reason-rft prepare` have them)"
            )
        task = get_task(data_source)
        style = self.style or info.get("prompt_style") or "cot"
        text = task.render_prompt(str(problem), str(answer), style, self.templates.get(task.name))
        return user_content(n_images, text), style


def rerender(
    settings: PromptSettings,
    messages: list[dict[str, Any]],
    data_source: str,
    extra_info: Mapping[str, Any] | None,
    n_images: int,
    row: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``messages`` with the first user turn re-rendered, and ``extra_info`` with the style used."""
    content, style = settings.user_content(data_source, extra_info, n_images, row)
    out = [dict(m) for m in messages]
    for message in out:
        if message.get("role") == "user":
            message["content"] = content
            break
    else:
        raise ValueError(f"{row}: no user turn to re-render")
    return out, {**(extra_info or {}), "prompt_style": style}


def rerender_columns(
    settings: PromptSettings,
    column_names: Collection[str],
    column: Callable[[str], Sequence[Any]],
    messages_key: str,
    n_images: Sequence[int] | None,
    source: str,
    describe: Callable[[int], str],
) -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Every row re-rendered: (the new ``messages_key`` column, the new ``extra_info`` column).

    ``column(name)`` reads a column as plain Python; ``n_images[i]`` is row i's image count (None: no images).
    """
    missing = {"data_source", "extra_info"} - set(column_names)
    if missing:
        raise ValueError(f"{source}: data.prompt_templates/data.prompt_style need the columns {sorted(missing)}")
    messages_column, info_column = [], []
    rows = zip(column(messages_key), column("data_source"), column("extra_info"))
    for i, (messages, data_source, extra_info) in enumerate(rows):
        n = n_images[i] if n_images is not None else 0
        new_messages, info = rerender(settings, messages, data_source, extra_info, n, f"{source}: {describe(i)}")
        messages_column.append(new_messages)
        info_column.append(info)
    return messages_column, info_column
