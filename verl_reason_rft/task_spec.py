"""The one record a task plugin provides: name, data sources, prompts, reward, scorer."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Protocol


class RewardFn(Protocol):
    """verl's ``compute_score`` shape; returns float ``score``, ``format`` and ``accuracy``."""

    def __call__(
        self, data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None, **kwargs: Any
    ) -> dict[str, float]: ...


class ScorerFn(Protocol):
    """Evaluation scorer (SPEC §7): a float in [0, 1] for one prediction."""

    def __call__(self, data_source: str, prediction: str, answer: str, mode: str = "paper") -> float: ...


#: stage-1 SFT slice: the first 1,600 records of a task's training file (SPEC §4)
DEFAULT_SFT_SIZE = 1600


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class TaskSpec:
    """A Reason-RFT task as plugins declare it.

    ``prompts`` maps a template name to a ``str.format`` template with a ``{problem}``
    field. ``cot`` (reasoning prompt) and ``ans`` (bare ANS-SFT prompt) are required;
    ``cot_choice`` / ``ans_choice`` are used instead for answers in ``choice_answers``.
    """

    name: str
    data_sources: tuple[str, ...]
    compute_score: RewardFn
    score_prediction: ScorerFn
    prompts: Mapping[str, str]
    #: meta-JSON training file under ``train_jsons/`` (SPEC §2), if the task has one.
    train_file: str | None = None
    #: test meta-JSON file name under ``test_jsons/`` -> the ``data_source`` of its rows.
    test_files: Mapping[str, str] = field(default_factory=dict)
    images_per_sample: int = 1
    #: answers that make an item multiple-choice (prompt variant, evaluation split).
    choice_answers: frozenset[str] = frozenset()
    #: ``accuracy_mode`` values the reward accepts; the first is the default.
    accuracy_modes: tuple[str, ...] = ("exact",)
    #: stage-2 GRPO uses all records instead of those after the SFT slice (SPEC §4).
    rl_uses_all_records: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_sources", tuple(self.data_sources))
        object.__setattr__(self, "prompts", _frozen(self.prompts))
        object.__setattr__(self, "test_files", _frozen(self.test_files))
        object.__setattr__(self, "choice_answers", frozenset(self.choice_answers))
        for key in ("cot", "ans"):
            if key not in self.prompts:
                raise ValueError(f"task {self.name!r}: prompts must define {key!r} (got {sorted(self.prompts)})")

    def is_choice(self, answer: str) -> bool:
        return answer.strip() in self.choice_answers

    def prompt_key(self, answer: str, style: str = "cot") -> str:
        """Template name for a record with this answer; ``style`` is ``cot`` or ``ans``."""
        if style not in ("cot", "ans"):
            raise ValueError(f"prompt style must be 'cot' or 'ans', got {style!r}")
        choice_key = f"{style}_choice"
        return choice_key if self.is_choice(answer) and choice_key in self.prompts else style

    def render_prompt(
        self, problem: str, answer: str, style: str = "cot", templates: Mapping[str, str] | None = None
    ) -> str:
        """The user text for a record; ``templates`` overrides this task's templates by name."""
        key = self.prompt_key(answer, style)
        template = (templates or {}).get(key) or self.prompts[key]
        return template.replace("{problem}", problem)
