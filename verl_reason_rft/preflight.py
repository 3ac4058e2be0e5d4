"""``reason-rft preflight``: everything that can fail before the first GPU step, checked on CPU.

For each stage (a recipe plus overrides) it composes the config with Hydra's compose API on the
recipe the trainer uses, runs verl's own ``validate_config`` (GRPO), loads the tokenizer and
processor with verl's ``hf_tokenizer``/``hf_processor``, builds every split with OUR dataset classes
through verl's dataset factories, measures prompt/SFT token counts against the limits, counts images
against the rollout limit, and self-tests the reward on real rows. Each problem names the setting
to change; ``error`` problems mean training would fail.
"""

from __future__ import annotations

import copy
import os
import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

from verl_reason_rft.prompt_tokens import VisionRule, estimated_sft_tokens, exact_sft_tokens
from verl_reason_rft.gpu_layout import layout_problems
from verl_reason_rft.recipe_config import GRPO, SFT, compose_recipe

ERROR, WARNING = "error", "warning"
DEFAULT_MAX_ROWS = 64
DEFAULT_REWARD_ROWS = 8


@dataclass(frozen=True)
class StageCheck:
    """A stage to check: its name, recipe and command-line overrides."""

    name: str
    config_name: str
    overrides: tuple[str, ...] = ()
    #: GPUs the SFT stage runs on (torchrun's world size), checked against its batch; None: not checked
    #: (GRPO reads trainer.n_gpus_per_node × trainer.nnodes from its config)
    gpus: int | None = None


@dataclass(frozen=True)
class Problem:
    severity: str
    stage: str
    message: str

    def __str__(self) -> str:
        return f"[{self.severity}] {self.stage}: {self.message}"


@dataclass
class SplitStats:
    """What one data file looks like to the trainer (token counts over the checked rows)."""

    stage: str
    split: str
    rows: int
    checked: int = 0
    tokens: list[int] = field(default_factory=list)
    limit: int = 0
    over_limit: int = 0
    max_images: int = 0
    image_limit: int | None = None
    assistant_tokens: list[int] = field(default_factory=list)
    reward_ok: str = "-"
    exact: bool = True


@dataclass
class PreflightReport:
    rl: list[SplitStats] = field(default_factory=list)
    sft: list[SplitStats] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.severity == ERROR for p in self.problems)

    def render(self) -> str:
        from verl_reason_rft.text_table import format_table

        out = []
        if self.rl:
            header = ["stage", "split", "rows", "checked", "kept", "overlong", "prompt tokens min/med/max", "max_prompt_length", "images max/limit", "reward self-test"]
            rows = [
                [s.stage, s.split, s.rows, s.checked, s.checked - s.over_limit, s.over_limit, _spread(s.tokens, s.exact), s.limit,
                 f"{s.max_images}/{s.image_limit if s.image_limit is not None else 'none'}", s.reward_ok]
                for s in self.rl
            ]
            out += ["GRPO data (rows as verl's RLHFDataset sees them)", format_table(header, rows), ""]
        if self.sft:
            header = ["stage", "split", "rows", "checked", "tokens min/med/max", "max_length", "too long", "assistant tokens min/med/max"]
            rows = [
                [s.stage, s.split, s.rows, s.checked, _spread(s.tokens, s.exact), s.limit, s.over_limit, _spread(s.assistant_tokens, s.exact)]
                for s in self.sft
            ]
            out += ["SFT data (rows as verl's MultiTurnSFTDataset sees them)", format_table(header, rows), ""]
        out += [f"note: {n}" for n in self.notes]
        out += [str(p) for p in self.problems]
        errors = sum(p.severity == ERROR for p in self.problems)
        out.append("preflight: OK" if self.ok else f"preflight: FAILED ({errors} error(s)): training would fail; fix the settings named above")
        return "\n".join(out)


def _spread(values: list[int], exact: bool) -> str:
    if not values:
        return "-"
    text = f"{min(values)}/{int(statistics.median(values))}/{max(values)}"
    return text if exact else f"~{text}"


def _files(value: Any) -> list[str]:
    from omegaconf import ListConfig

    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple | ListConfig) else [str(value)]


def _empty(path: str) -> bool:
    """A parquet file with no rows (verl's loaders fail on it with an unhelpful message)."""
    import pyarrow.parquet as pq

    return path.endswith(".parquet") and os.path.isfile(path) and pq.ParquetFile(path).metadata.num_rows == 0


def _model_path(value: Any) -> str:
    if value is None or str(value) in ("", "None"):
        raise ValueError("model.path is not set (model=tiny needs model.path=<folder of the model>)")
    return str(value)


class _Models:
    """Tokenizer/processor per model path, loaded once with verl's own helpers."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[Any, Any, VisionRule | None]] = {}
        self.notes: list[str] = []

    def get(self, path: str) -> tuple[Any, Any, VisionRule | None]:
        if path not in self.cache:
            from verl.utils import hf_processor, hf_tokenizer

            from verl_reason_rft.prompt_tokens import UnsupportedProcessor

            tokenizer = hf_tokenizer(path)
            try:
                processor = hf_processor(path)
            except ImportError:  # transformers builds Qwen2-VL processors only with torchvision
                processor = None
            try:
                rule = VisionRule.from_model(path)
            except UnsupportedProcessor as exc:
                rule = None
                self.notes.append(f"{path}: {exc}: GRPO prompt tokens are "
                                  + ("counted by running the processor on each row" if processor is not None else "not counted"))
            if processor is None:
                self.notes.append(
                    f"no multimodal processor for {path} (transformers needs torchvision for Qwen2-VL's): GRPO prompt tokens are "
                    "exact from its processor config (the length filter's count); SFT token counts marked ~ are estimated"
                )
            self.cache[path] = (tokenizer, processor, rule)
        return self.cache[path]


def _config_error(stage: str, exc: Exception) -> Problem:
    text = str(exc).strip()
    if "data_dir" in text:
        text += " (set data_dir=<folder written by `reason-rft prepare`>)"
    elif "model.path" in text or "Missing mandatory value: model" in text:
        text += " (set model.path=<model folder>)"
    return Problem(ERROR, stage, f"{type(exc).__name__}: {text}")


def _check_trainer_mode(cfg, stage: str) -> list[Problem]:
    """trainer.v1.trainer_mode resolves once the modules the recipe imports in Ray processes are imported."""
    from verl.trainer.ppo.v1 import get_trainer_cls
    from verl.utils.import_utils import import_external_libs

    from verl_reason_rft.trainer_registration import FIX, TRAINER_MODULES

    env = cfg.ray_kwargs.ray_init.get("runtime_env", {}).get("env_vars", {}) or {}
    value = str(env.get("VERL_USE_EXTERNAL_MODULES") or "")
    modules = value.split(",") if value else []  # split as verl/__init__.py splits it in every Ray process
    policy = str(env.get("VERL_USE_EXTERNAL_PLUGINS") or os.environ.get("VERL_USE_EXTERNAL_PLUGINS", "auto")).strip().lower()
    plugin_loads = policy == "auto" or "reason_rft" in {p.strip() for p in policy.split(",")}
    mode = str(cfg.trainer.v1.trainer_mode)
    if mode.startswith("reason_rft") and not plugin_loads and not any(m.startswith("verl_reason_rft") for m in modules):
        return [Problem(ERROR, stage, f"trainer.v1.trainer_mode={mode} but VERL_USE_EXTERNAL_PLUGINS={policy!r} stops verl from "
                        f"loading our plugin in the TaskRunner, which then raises Unknown trainer '{mode}'; {FIX}")]
    try:
        import_external_libs(modules)
        get_trainer_cls(cfg.trainer.v1.trainer_mode)
    except Exception as exc:  # noqa: BLE001 - reported, with the setting to change
        return [Problem(ERROR, stage, f"trainer.v1.trainer_mode={cfg.trainer.v1.trainer_mode!r} does not resolve "
                        f"(modules imported: {modules}, then {list(TRAINER_MODULES)} by our plugin): {type(exc).__name__}: {exc}; {FIX}")]
    return []


def _max_positions(model_path: str) -> int | None:
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model_path)
    except Exception:  # noqa: BLE001 - the tokenizer load reports an unusable path
        return None
    text = getattr(config, "text_config", None) or config
    return getattr(text, "max_position_embeddings", None)


def _reward_self_test(rows: Sequence[dict], reward_kwargs: dict, stage: str, split: str) -> tuple[str, list[Problem]]:
    """Ground truth in CoT format must score 2.0; the bare ground truth must get format 0."""
    from verl_reason_rft.scoring import compute_score

    problems: list[Problem] = []
    passed = 0
    for row in rows:
        gt = (row.get("reward_model") or {}).get("ground_truth")
        source = row.get("data_source")
        where = f"{split} id={(row.get('extra_info') or {}).get('id')}"
        try:
            good = compute_score(source, f"<think>\nChecking the reference answer.\n</think>\n<answer>{gt}</answer>", gt, row.get("extra_info"), **reward_kwargs)
            bare = compute_score(source, str(gt), gt, row.get("extra_info"), **reward_kwargs)
        except Exception as exc:  # noqa: BLE001
            problems.append(Problem(ERROR, stage, f"reward raised on {where} (data_source={source!r}): {type(exc).__name__}: {exc}; "
                                    "check reward.reward_kwargs and that a task plugin claims this data_source (`reason-rft tasks`)"))
            continue
        if abs(good["score"] - 2.0) > 1e-6:
            problems.append(Problem(ERROR, stage, f"reward self-test: the ground truth in <think>/<answer> format scores {good} on {where}, "
                                    f"expected score 2.0 (check reward.reward_kwargs={reward_kwargs} and reward_model.ground_truth)"))
        elif bare["format"] != 0.0:
            problems.append(Problem(ERROR, stage, f"reward self-test: an untagged answer gets format {bare['format']} on {where}, expected 0"))
        else:
            passed += 1
    return (f"{passed}/{len(rows)} ok" if rows else "-"), problems


def _rl_split(ds, stats: SplitStats, model_path: str, tokenizer, processor, rule: VisionRule | None, max_rows: int) -> list[tuple[int, str]]:
    """Fill token/image stats for the first ``max_rows`` rows; returns (row, error) for rows that fail.

    Token counts are the dataset's own length-filter count (``prompt_tokens.PromptCounter``): exact, no
    processor run per row, and without torchvision from the model's processor config."""
    from tqdm import tqdm

    from verl_reason_rft.prompt_tokens import PromptCounter, measure_dataset, verl_prompt_tokens

    n = len(ds) if max_rows <= 0 else min(len(ds), max_rows)
    if ds.image_key in ds.dataframe.column_names:
        stats.max_images = max((len(r or []) for r in ds.dataframe.select(range(n))[ds.image_key]), default=0)
    stats.checked = n
    if rule is not None:
        counter = PromptCounter.for_dataset(ds) if processor is not None else PromptCounter.for_model(model_path, tokenizer, ds)
        measured = measure_dataset(ds, ds.dataframe, counter, limit=n, desc=f"{stats.stage} {stats.split}")
        stats.tokens = [t for t in measured.lengths if t is not None]
        errors = measured.failures
    elif processor is not None:  # not a Qwen2-VL-family processor: verl's own measure, row by row
        errors = []
        for i in tqdm(range(n), desc=f"{stats.stage} {stats.split}", unit="row", leave=False):
            try:
                stats.tokens.append(verl_prompt_tokens(ds, ds.dataframe[i]))
            except Exception as exc:  # noqa: BLE001 - verl drops such rows with a traceback; we name them
                errors.append((i, f"{type(exc).__name__}: {exc}"))
    else:
        stats.exact, errors = False, []
    stats.over_limit = sum(t > stats.limit for t in stats.tokens) + len(errors)
    return errors


def _check_rl_stage(check: StageCheck, cfg, models: _Models, report: PreflightReport, max_rows: int, reward_rows: int) -> None:
    from omegaconf import open_dict
    from verl.trainer.ppo.utils import create_rl_dataset, need_critic, need_reference_policy
    from verl.utils.config import validate_config

    stage = check.name
    try:
        validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    except Exception as exc:  # noqa: BLE001
        report.problems.append(Problem(ERROR, stage, f"verl's validate_config: {type(exc).__name__}: {exc}"))
    report.problems += _check_trainer_mode(cfg, stage)

    model_path = _model_path(cfg.actor_rollout_ref.model.path)
    tokenizer, processor, rule = models.get(model_path)
    limit = int(cfg.data.max_prompt_length)
    positions = _max_positions(model_path)
    total = limit + int(cfg.data.max_response_length)
    if positions is not None and total > positions:
        report.problems.append(Problem(ERROR, stage, f"data.max_prompt_length + data.max_response_length = {total} exceeds the model's "
                                       f"max_position_embeddings ({positions}); lower them"))
    image_limit = cfg.actor_rollout_ref.rollout.get("limit_images", None)
    from verl_reason_rft.reward_manager import Settings

    reward_kwargs = Settings.from_config(cfg).reward_kwargs  # the keyword arguments the manager passes on

    measure = copy.deepcopy(cfg)
    with open_dict(measure):
        measure.data.filter_overlong_prompts = False  # keep every row: we count the overlong ones ourselves
    splits = [(f, True) for f in _files(cfg.data.train_files)] + [(f, False) for f in _files(cfg.data.val_files)]
    for path, is_train in splits:
        split = os.path.basename(path)
        no_rows = Problem(ERROR if is_train else WARNING, stage, f"{split} has no rows (check data_dir and `reason-rft prepare`'s report)")
        if _empty(path):
            report.problems.append(no_rows)
            continue
        try:
            ds = create_rl_dataset([path], measure.data, tokenizer, processor, is_train=is_train)
        except Exception as exc:  # noqa: BLE001 - a missing file, missing images, a bad column ...
            report.problems.append(Problem(ERROR, stage, f"{split}: {type(exc).__name__}: {exc}"))
            continue
        stats = SplitStats(stage, split, rows=len(ds), limit=limit, image_limit=image_limit)
        if is_train:
            report.problems += _too_few_rows(stage, split, len(ds), int(cfg.data.train_batch_size))
        errors = _rl_split(ds, stats, model_path, tokenizer, processor, rule, max_rows)
        report.rl.append(stats)
        for i, error in errors[:3]:
            # an error for validation files too: the validation dataset is built with the same length filter
            report.problems.append(Problem(ERROR, stage, f"{split} row {i}: this prompt cannot be built ({error}); ReasonRFTRLDataset's length filter raises on it "
                                           "(data.length_filter=verl drops it silently)"))
        if stats.rows == 0:
            report.problems.append(no_rows)
        elif stats.checked and stats.over_limit == stats.checked:
            report.problems.append(Problem(ERROR, stage, f"{split}: all {stats.checked} checked prompts are longer than data.max_prompt_length={limit} "
                                           f"(longest {max(stats.tokens, default=0)} tokens) and would be filtered out; raise data.max_prompt_length or lower data.max_pixels"))
        elif stats.over_limit:
            report.problems.append(Problem(WARNING, stage, f"{split}: {stats.over_limit} of {stats.checked} checked prompts exceed data.max_prompt_length={limit} "
                                           f"(longest {max(stats.tokens)}) and will be dropped; raise data.max_prompt_length to keep them"))
        if image_limit is not None and stats.max_images > int(image_limit):
            report.problems.append(Problem(ERROR, stage, f"{split}: prompts with {stats.max_images} images but actor_rollout_ref.rollout.limit_images={image_limit} "
                                           "(vLLM rejects them); raise actor_rollout_ref.rollout.limit_images or fix the rows"))
        sample = [ds.dataframe[i] for i in range(min(len(ds), reward_rows))]
        stats.reward_ok, problems = _reward_self_test(sample, reward_kwargs, stage, split)
        report.problems += problems


def _too_few_rows(stage: str, split: str, rows: int, batch: int) -> list[Problem]:
    """verl drops the last incomplete batch: fewer rows than one batch train 0 steps (SFT then divides by zero)."""
    if 0 < rows < batch:
        return [Problem(WARNING, stage, f"{split} has {rows} rows, fewer than data.train_batch_size={batch}: verl drops the incomplete "
                                      f"batch and would train 0 steps; lower data.train_batch_size to at most {rows}")]
    return []


def _check_sft_stage(check: StageCheck, cfg, models: _Models, report: PreflightReport, max_rows: int) -> None:
    from omegaconf import open_dict
    from tqdm import tqdm
    from verl.trainer.sft_trainer import create_sft_dataset

    stage = check.name
    model_path = _model_path(cfg.model.path)
    tokenizer, processor, rule = models.get(model_path)
    limit = int(cfg.data.max_length)
    positions = _max_positions(model_path)
    if positions is not None and limit > positions:
        report.problems.append(Problem(ERROR, stage, f"data.max_length={limit} exceeds the model's max_position_embeddings ({positions}); lower it"))
    measure = copy.deepcopy(cfg)
    with open_dict(measure):
        measure.data.max_length = 1 << 30  # measure every row instead of raising on the long ones
        measure.data.pad_mode = "no_padding"
    for path in _files(cfg.data.train_files) + _files(cfg.data.val_files):
        split = os.path.basename(path)
        no_rows = Problem(ERROR, stage, f"{split} has no rows (check data_dir, variant and `reason-rft prepare --sft-size`)")
        if _empty(path):
            report.problems.append(no_rows)
            continue
        try:
            ds = create_sft_dataset([path], measure.data, tokenizer, processor)
        except Exception as exc:  # noqa: BLE001
            report.problems.append(Problem(ERROR, stage, f"{split}: {type(exc).__name__}: {exc}"))
            continue
        stats = SplitStats(stage, split, rows=len(ds), limit=limit, exact=processor is not None)
        if path in _files(cfg.data.train_files):
            report.problems += _too_few_rows(stage, split, len(ds), int(cfg.data.train_batch_size))
        n = len(ds) if max_rows <= 0 else min(len(ds), max_rows)
        failures = []
        for i in tqdm(range(n), desc=f"{stage} {split}", unit="row", leave=False):
            try:
                if processor is not None:
                    total, assistant = exact_sft_tokens(ds, i)
                else:
                    row = ds.dataframe.iloc[i]
                    total, assistant = estimated_sft_tokens(tokenizer, rule or VisionRule(), list(row[ds.messages_key]), list(row.get(ds.image_key, None) or []))
            except Exception as exc:  # noqa: BLE001
                failures.append((i, f"{type(exc).__name__}: {exc}"))
                continue
            stats.tokens.append(total)
            stats.assistant_tokens.append(assistant)
        stats.checked = n
        stats.over_limit = sum(t > limit for t in stats.tokens)
        report.sft.append(stats)
        for i, error in failures[:3]:
            report.problems.append(Problem(ERROR, stage, f"{split} row {i}: verl cannot build this sample ({error})"))
        if stats.rows == 0:
            report.problems.append(no_rows)
        if stats.over_limit:
            report.problems.append(Problem(ERROR, stage, f"{split}: {stats.over_limit} of {n} checked samples exceed data.max_length={limit} "
                                           f"(longest {max(stats.tokens)}); verl raises on them (data.truncation=error): raise data.max_length or lower data.max_pixels"))
        if any(a == 0 for a in stats.assistant_tokens):
            report.problems.append(Problem(ERROR, stage, f"{split}: samples without assistant tokens (no loss); check the messages column"))


def run_preflight(
    checks: Sequence[StageCheck],
    max_rows: int = DEFAULT_MAX_ROWS,
    reward_rows: int = DEFAULT_REWARD_ROWS,
) -> PreflightReport:
    """Check every stage; ``max_rows`` rows per split are measured (0: all). Missing images are checked on all rows."""
    from omegaconf import OmegaConf

    report = PreflightReport()
    models = _Models()
    for check in checks:
        try:
            cfg = compose_recipe(check.config_name, check.overrides)
            if check.config_name == GRPO and OmegaConf.is_missing(cfg, "sft_checkpoint"):
                cfg.sft_checkpoint = "${model.path}"  # before stage 1 ran: its checkpoint keeps the base tokenizer
                report.notes.append(f"{check.name}: sft_checkpoint not set; checked on the base model (model.path). "
                                    "Training needs sft_checkpoint=<sft dir>/global_step_N/huggingface")
            report.problems += [Problem(ERROR, check.name, text) for text in layout_problems(cfg, check.config_name, check.gpus)]
            OmegaConf.to_container(cfg.data, resolve=True, throw_on_missing=True)  # surfaces missing data_dir / bad interpolations
            if check.config_name == SFT:
                OmegaConf.to_container(cfg.model, resolve=True, throw_on_missing=True)
                _check_sft_stage(check, cfg, models, report, max_rows)
            else:
                OmegaConf.to_container(cfg.actor_rollout_ref.model, resolve=True, throw_on_missing=True)
                _check_rl_stage(check, cfg, models, report, max_rows, reward_rows)
        except Exception as exc:  # noqa: BLE001 - each stage reports on its own
            report.problems.append(_config_error(check.name, exc))
    report.notes += models.notes  # no repeats: _Models loads (and notes) each model path once
    return report
