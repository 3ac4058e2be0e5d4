"""``reason-rft run``: prepare -> SFT -> GRPO -> evaluation as one resumable pipeline.

Every stage is one command (verl's own trainers with our recipes, then ``reason-rft eval`` and
``reason-rft score``), all run with this interpreter (``"$PYTHON" -m ...`` in ``plan.sh``). A stage
that succeeds writes ``O/.stages/<stage>.done`` with its inputs (see :mod:`.stage_markers`), so a
re-run with the same options skips it and a re-run with other options stops, naming the marker and
the option; a stage that stopped half-way resumes from its last checkpoint (verl's
``trainer.resume_mode=auto`` on the same ``trainer.default_local_dir``). Without GPUs the tiny
model trains on the CPU (:mod:`verl_reason_rft.cpu`); a real model, or ``--dry-run``, gets the data,
the preflight and the plan only. Each training stage's step metrics go to ``O/metrics/<stage>.jsonl``
(verl's ``file`` logger) and the last stage draws them in ``O/training_metrics.png``.

Names, the model source and the SFT slice are checked before anything is written. Stage output
(ours in-process, third-party in subprocesses) goes to ``O/logs/<stage>.log``; the console gets
one line per stage and, on failure, the log's last lines.

Layout of the output folder ``O``::

    sample_data/  models/tiny/  data/<task>/*.parquet  checkpoints/{sft,grpo}/  eval/  metrics/*.jsonl
    training_metrics.png  plan.sh (every command, runnable)  run.log (what ran, when)  logs/<stage>.log  .stages/*.done
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import time
import warnings
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

from verl_reason_rft.checkpoints import TRACKER, latest_hf_checkpoint
from verl_reason_rft.data_prep.atomic import write_bytes_atomic
from verl_reason_rft.gpu_layout import plan_problems
from verl_reason_rft.preflight import DEFAULT_MAX_ROWS, StageCheck
from verl_reason_rft.recipe_config import GRPO, SFT, ZERO, trainer_argv
from verl_reason_rft.stage_markers import changed_inputs, marker_path, read_marker, write_marker
from verl_reason_rft.task_spec import DEFAULT_SFT_SIZE

VARIANTS = ("reason_rft", "zero", "ans_sft", "cot_sft")
#: samples generated per task when no --dataset-dir is given, and the SFT slice taken from them
SAMPLE_PER_TASK, SAMPLE_SFT_SIZE = 16, 8
#: log lines shown on the console when a stage fails
FAILURE_TAIL_LINES = 20
#: the tiny model has 4096 positions: prompt + response must fit (SPEC's 4096 + 512 does not)
TINY_GRPO_OVERRIDES = ("data.max_prompt_length=3584",)
PAPER_ROW = {
    ("qwen2_vl_2b", "reason_rft"): "2B Reason-RFT",
    ("qwen2_vl_2b", "zero"): "2B Reason-RFT-Zero",
    ("qwen2_vl_7b", "reason_rft"): "7B Reason-RFT",
    ("qwen2_vl_7b", "zero"): "7B Reason-RFT-Zero",
}


@dataclass(frozen=True)
class RunOptions:
    task: str
    model: str
    output_dir: Path
    dataset_dir: Path | None = None
    variant: str = "reason_rft"
    #: GPUs per node for training; None: all visible ones
    gpus: int | None = None
    dry_run: bool = False
    #: local folder of the model (default: the HF id of the model option; built for tiny)
    model_path: str | None = None
    sft_size: int | None = None
    max_rows: int = DEFAULT_MAX_ROWS


class UsageError(ValueError):
    """A bad option, found before anything is written (``reason-rft run`` exits 2 with the message)."""


@dataclass
class Stage:
    """One step of the pipeline: a command line, or in-process work shown as its CLI equivalent."""

    name: str
    argv: list[str]
    #: work done in this process instead of running ``argv`` (prepare); returns text for the console
    action: Callable[[], str | None] | None = None
    trains: bool = False
    #: the options this stage's outputs depend on (recorded in its marker)
    inputs: dict[str, str] = field(default_factory=dict)
    #: stages whose outputs this one reads (their inputs are part of this one's)
    after: tuple[str, ...] = ()
    #: extra check that the stage's outputs are complete (besides its marker)
    complete: Callable[[], bool] | None = None
    #: environment variables the command runs with (shown before it in ``plan.sh``)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    options: RunOptions
    gpus: int
    stages: list[Stage] = field(default_factory=list)
    checks: list[StageCheck] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.options.output_dir

    def marker(self, stage: Stage) -> Path:
        return marker_path(self.root, stage.name)

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def inputs(self, stage: Stage) -> dict[str, str]:
        """The stage's own inputs and, transitively, those of the stages it runs after."""
        merged: dict[str, str] = {}
        for name in stage.after:
            merged.update(self.inputs(self.stage(name)))
        merged.update(stage.inputs)
        return merged

    def done(self, stage: Stage) -> bool:
        record = read_marker(self.marker(stage))
        if record is None or changed_inputs(record, self.inputs(stage)):
            return False
        return stage.complete is None or stage.complete()

    def stale(self) -> list[str]:
        """One message per marker recorded with other inputs than this run's."""
        out = []
        for stage in self.stages:
            record = read_marker(self.marker(stage))
            changes = [] if record is None else changed_inputs(record, self.inputs(stage))
            if changes:
                out.append(f"{self.marker(stage)}: {'; '.join(changes)}")
        return out

    def script(self) -> str:
        """The plan as a bash script: every command with ``$PYTHON``; stages with a marker are skipped when it runs."""
        stages_dir = self.root / ".stages"
        lines = ["#!/usr/bin/env bash", f"# reason-rft run plan: task={self.options.task} model={self.options.model} "
                 f"variant={self.options.variant} gpus={self.gpus}",
                 "# A stage whose marker exists in .stages/ (written by `reason-rft run`) is skipped; checkpoint folders",
                 "# are read from verl's tracker files when a command starts.",
                 "set -euo pipefail", f"PYTHON=\"${{PYTHON:-{sys.executable}}}\"", f"STAGES={shlex.quote(str(stages_dir))}",
                 f"cd {shlex.quote(str(self.root))}", ""]
        for stage in self.stages:
            status = "done" if self.done(stage) else "to do"
            marker = f'"$STAGES/{stage.name}.done"'
            lines += [f"# {stage.name} ({status} when this plan was written)",
                      f"if [ -f {marker} ]; then echo \"{stage.name}: done ($STAGES/{stage.name}.done), skipped\"; else",
                      f"  {env_prefix(stage.env)}{shell_join(stage.argv)}", "fi", ""]
        return "\n".join(lines)


def shell_join(argv: Sequence[str]) -> str:
    """Quote for bash, leaving ``$(...)`` checkpoint lookups to the shell; this interpreter is ``"$PYTHON"``."""
    return " ".join('"$PYTHON"' if i == 0 and arg == sys.executable else arg if "$(" in arg else shlex.quote(arg)
                    for i, arg in enumerate(argv))


def env_prefix(env: dict[str, str]) -> str:
    """``K=V K2=V2 `` for bash (empty without variables)."""
    return "".join(f"{key}={shlex.quote(value)} " for key, value in env.items())


def metrics_file(root: Path, stage: str) -> Path:
    """Where a training stage's per-step metrics go (verl's ``file`` logger, ``VERL_FILE_LOGGER_PATH``)."""
    return root / "metrics" / f"{stage}.jsonl"


def _tracker_path(checkpoint_dir: Path, role: str = "") -> str:
    """Shell text naming the HF folder of the latest checkpoint (evaluated when the script runs)."""
    middle = f"/{role}" if role else ""
    return f'"{checkpoint_dir}/global_step_$(cat {checkpoint_dir}/{TRACKER}){middle}/huggingface"'


def build_plan(options: RunOptions, model_path: str, dataset_dir: Path, gpus: int, device: str = "cuda",
               train_records: int | None = None) -> Plan:
    """Every stage of ``options.variant`` with its exact command; ``device="cpu"``: the CPU kit's commands.

    ``train_records`` (the task's train file size, when known) lets the CPU batches fit small splits.
    """
    from verl_reason_rft.cpu.settings import SFT_MODULE, cpu_env, cpu_overrides
    from verl_reason_rft.tasks import get_registry

    if options.variant not in VARIANTS:
        raise ValueError(f"--variant must be one of {VARIANTS}, got {options.variant!r}")
    root = options.output_dir
    data_dir = root / "data"
    sft_dir, grpo_dir = root / "checkpoints" / "sft", root / "checkpoints" / "grpo"
    plan = Plan(options, gpus)
    python = [sys.executable]
    model_input = {"--model": options.model, "--model-path": str(model_path), "--variant": options.variant}
    common = [f"task={options.task}", f"model={options.model}", f"data_dir={data_dir}"]
    if model_path:
        common.append(f"model.path={model_path}")
    tp = 2 if gpus % 2 == 0 and options.model.endswith("7b") else 1
    name = f"{options.task}-{options.model}-{options.variant}"

    sft_size = options.sft_size if options.sft_size is not None else DEFAULT_SFT_SIZE
    rows = {"sft": None, "grpo": None}  # training rows per stage, when the train file's size is known
    if train_records is not None:
        full_sft = options.variant in ("cot_sft", "ans_sft")
        rows["sft"] = train_records if full_sft else min(sft_size, train_records)
        all_rl = options.variant == "zero" or get_registry().tasks[options.task].rl_uses_all_records
        rows["grpo"] = train_records if all_rl else train_records - sft_size
    dataset_input = str(dataset_dir) if options.dataset_dir is not None else f"(generated sample data, {SAMPLE_PER_TASK} per task)"
    plan.stages.append(Stage("prepare", python + ["-m", "verl_reason_rft", "prepare", "--dataset-dir", str(dataset_dir), "--output-dir",
                                                  str(data_dir), "--tasks", options.task, "--sft-size", str(sft_size)],
                             action=lambda: _prepare(dataset_dir, data_dir, options.task, sft_size),
                             inputs={"--task": options.task, "--dataset-dir": dataset_input, "--sft-size": str(sft_size)},
                             complete=lambda: _prepared(data_dir, options.task, sft_size)))
    trained = "prepare"

    final_model = None
    if options.variant != "zero":
        sft_variant = "sft" if options.variant == "reason_rft" else options.variant
        overrides = [*common, f"variant={sft_variant}", f"trainer.default_local_dir={sft_dir}", f"trainer.experiment_name={name}-sft",
                     "trainer.resume_mode=auto"]  # GPUs per node: torchrun's --nproc-per-node (sft_trainer reads no trainer key)
        env = {"VERL_FILE_LOGGER_PATH": str(metrics_file(root, "sft"))}
        if device == "cpu":  # gloo, then verl's own SFT trainer (verl_reason_rft.cpu.sft); settings in recipes/cpu/sft.yaml
            overrides += cpu_overrides("sft", rows["sft"])
            argv = python + ["-m", SFT_MODULE, *trainer_argv(SFT, overrides)[2:]]
            env.update(cpu_env())
        else:
            torchrun = python + ["-m", "torch.distributed.run", "--standalone", "--nnodes=1", f"--nproc-per-node={gpus}"]
            argv = torchrun + trainer_argv(SFT, overrides)
        plan.stages.append(Stage("sft", argv, trains=True, inputs=model_input, after=("prepare",), env=env))
        plan.checks.append(StageCheck("sft", SFT, tuple(overrides), gpus=gpus))
        final_model = _tracker_path(sft_dir)
        trained = "sft"
    if options.variant in ("reason_rft", "zero"):
        recipe = GRPO if options.variant == "reason_rft" else ZERO
        overrides = [*common, f"trainer.default_local_dir={grpo_dir}", f"trainer.experiment_name={name}",
                     f"trainer.n_gpus_per_node={gpus}", f"actor_rollout_ref.rollout.tensor_model_parallel_size={tp}",
                     "trainer.resume_mode=auto"]
        if options.model == "tiny":
            overrides += TINY_GRPO_OVERRIDES
        env = {"VERL_FILE_LOGGER_PATH": str(metrics_file(root, "grpo"))}
        if device == "cpu":  # HF rollout, gloo workers (verl_reason_rft.cpu); settings in recipes/cpu/grpo.yaml
            overrides += cpu_overrides("grpo", rows["grpo"])
            env.update(cpu_env())
        # checked before SFT exists: on the base model's tokenizer (the SFT checkpoint keeps it)
        start = ["sft_checkpoint=${model.path}"] if recipe == GRPO else []
        plan.checks.append(StageCheck("grpo", recipe, tuple(overrides + start)))
        if recipe == GRPO:
            overrides.append(f"sft_checkpoint={_tracker_path(sft_dir)}")  # reason_rft.yaml requires it
        plan.stages.append(Stage("grpo", python + trainer_argv(recipe, overrides), trains=True, inputs=model_input,
                                 after=tuple(dict.fromkeys(("prepare", trained))), env=env))
        final_model = _tracker_path(grpo_dir, "actor")
        trained = "grpo"

    eval_dir = root / "eval"
    style = "ans" if options.variant == "ans_sft" else "cot"
    plan.stages.append(Stage(
        "eval",
        python + ["-m", "verl_reason_rft", "eval", "--model", final_model, "--benchmarks", options.task, "--output-dir", str(eval_dir),
                  "--data-dir", str(data_dir), "--prompt-style", style,
                  *(["--engine", "hf", "--threads", "1"] if device == "cpu" else ["--tensor-parallel-size", str(tp)])],
        after=tuple(dict.fromkeys(("prepare", trained))),
    ))
    score = python + ["-m", "verl_reason_rft", "score", str(eval_dir / "predictions.jsonl")]
    if (options.model, options.variant) in PAPER_ROW:
        score += ["--paper-row", PAPER_ROW[(options.model, options.variant)]]
    plan.stages.append(Stage("score", score, after=("eval",)))
    trainings = [s.name for s in plan.stages if s.trains]
    metrics_dir, png = root / "metrics", root / "training_metrics.png"
    plan.stages.append(Stage("plot", python + ["-m", "verl_reason_rft", "plot", f"$(ls {metrics_dir}/*.jsonl)", "--output", str(png)],
                             action=lambda: _plot(metrics_dir, png), after=tuple(trainings)))
    return plan


class RunLog:
    """Appends timestamped lines to ``O/run.log`` and echoes them."""

    def __init__(self, path: Path, echo: Callable[[str], None] = print) -> None:
        self.path, self.echo = path, echo
        path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, message: str) -> None:
        """Into ``run.log`` only (e.g. the exact command of a stage)."""
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def __call__(self, message: str) -> None:
        self.record(message)
        self.echo(message)


class _Forward:
    """A text stream writing to ``target``: the current stage log during a capture, else the console."""

    def __init__(self, target) -> None:
        self.target = target

    def write(self, text: str) -> int:
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.target.fileno()


#: one stream for every capture, so handlers created during one (transformers' logger) follow the next
_FORWARD = _Forward(sys.__stderr__)


def _stream_handlers(streams: Sequence[object]) -> list[logging.StreamHandler]:
    loggers = [logging.getLogger(), *(l for l in logging.Logger.manager.loggerDict.values() if isinstance(l, logging.Logger))]
    return [h for lg in loggers for h in lg.handlers
            if type(h) is logging.StreamHandler and h.stream in streams]  # not FileHandler, not lastResort (follows sys.stderr)


@contextmanager
def output_to(log_file: Path) -> Iterator[None]:
    """Send everything printed, logged or warned in this process (and its child processes) to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    with log_file.open("a", encoding="utf-8", buffering=1) as log:
        saved_fds = [os.dup(1), os.dup(2)]
        saved_streams, saved_show, saved_target = (sys.stdout, sys.stderr), warnings.showwarning, _FORWARD.target
        handlers = _stream_handlers([*saved_streams, sys.__stdout__, sys.__stderr__])  # bound to the console before now
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        _FORWARD.target = log
        sys.stdout = sys.stderr = _FORWARD
        handler_streams = [(h, h.setStream(_FORWARD)) for h in handlers]
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: _FORWARD.write(
            warnings.formatwarning(message, category, filename, lineno, line))
        try:
            yield
        finally:
            _FORWARD.flush()
            for handler, stream in handler_streams:
                handler.setStream(stream)
            sys.stdout, sys.stderr = saved_streams
            _FORWARD.target = saved_target
            warnings.showwarning = saved_show
            for fd, saved in zip((1, 2), saved_fds):
                os.dup2(saved, fd)
                os.close(saved)


def run_command(argv: Sequence[str], log_file: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Run ``argv`` (with ``env`` added to this environment, in ``cwd``) with its output going to ``log_file`` only."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a", encoding="utf-8") as log:
        log.write(f"$ {env_prefix(env or {})}{shell_join(argv)}\n")
        log.flush()
        return subprocess.run(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ, **(env or {})}, cwd=cwd).returncode


def _tail(log_file: Path, lines: int = FAILURE_TAIL_LINES) -> str:
    try:
        with log_file.open(encoding="utf-8", errors="replace") as f:
            last = deque((line.rstrip("\n").rsplit("\r", 1)[-1] for line in f), maxlen=lines)
    except OSError:
        return ""
    return "\n".join(f"    {line}" for line in last)


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _resolved_argv(stage: Stage, plan: Plan) -> list[str]:
    """The argv to execute: shell lookups replaced by the checkpoint folders found now."""
    lookups = [(plan.root / "checkpoints" / "sft", ""), (plan.root / "checkpoints" / "grpo", "actor")]
    out = []
    for arg in stage.argv:
        for checkpoint_dir, role in lookups:
            text = _tracker_path(checkpoint_dir, role)
            if text in arg:
                found = latest_hf_checkpoint(checkpoint_dir, role)
                if found is None:
                    raise FileNotFoundError(f"stage {stage.name}: no Hugging Face checkpoint under {checkpoint_dir} "
                                            f"(global_step_N/{role + '/' if role else ''}huggingface); re-run the training stage")
                arg = arg.replace(text, str(found))
        out.append(arg)
    return out


def run_stage(stage: Stage, argv: Sequence[str], log_file: Path, echo: Callable[[str], None], cwd: Path | None = None) -> int:
    """The one place a stage runs: in this process (output captured) or as a subprocess in ``cwd``; exit code."""
    if stage.action is None:
        return run_command(argv, log_file, stage.env, cwd)
    try:
        with output_to(log_file):
            text = stage.action()
    except Exception as exc:  # noqa: BLE001 - reported with the stage; outputs are written atomically
        with log_file.open("a", encoding="utf-8") as log:
            log.write(f"{type(exc).__name__}: {exc}\n")
        return 1
    if text:
        echo(text)
    return 0


def execute(plan: Plan, stages: Sequence[Stage], log: RunLog) -> int:
    """Run ``stages`` in order, skipping finished ones; 0 when all succeed, else the failing exit code."""
    for stage in stages:
        if plan.done(stage):
            log(f"[{stage.name}] already done ({plan.marker(stage)}), skipped")
            continue
        try:
            argv = _resolved_argv(stage, plan)
        except FileNotFoundError as exc:
            log(f"[{stage.name}] cannot start: {exc}")
            return 1
        log_file = plan.root / "logs" / f"{stage.name}.log"
        where = "in this process" if stage.action is not None else "subprocess"
        log(f"[{stage.name}] started ({where}); log: {log_file}")
        log.record(f"[{stage.name}] {shell_join(argv)}")
        _keep_earlier_metrics(stage)
        start = time.monotonic()
        rc = run_stage(stage, argv, log_file, log.echo, cwd=plan.root)
        took = _elapsed(time.monotonic() - start)
        if rc != 0:
            log(f"[{stage.name}] failed (exit {rc}) after {took}; last lines of {log_file}:\n{_tail(log_file)}")
            log(f"[{stage.name}] re-run the same `reason-rft run` command to resume "
                "(finished stages are skipped, training resumes from its last checkpoint)")
            return rc
        write_marker(plan.marker(stage), stage.name, argv, plan.inputs(stage))
        log(f"[{stage.name}] finished in {took}")
        if stage.trains:
            log(training_summary(stage.name, Path(stage.env["VERL_FILE_LOGGER_PATH"])))
    return 0


def _keep_earlier_metrics(stage: Stage) -> None:
    """verl's file logger truncates its file: an earlier attempt's metrics move to ``<stage>.<n>.jsonl`` first."""
    path = stage.env.get("VERL_FILE_LOGGER_PATH")
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # verl's logger does not create it
    if path.is_file() and path.stat().st_size:
        n = 1
        while path.with_suffix(f".{n}.jsonl").exists():
            n += 1
        path.rename(path.with_suffix(f".{n}.jsonl"))


def training_summary(stage: str, metrics_path: Path) -> str:
    """One line per logged step of a training stage (loss or reward parts, grad norm), and a warning for a zero update."""
    from verl_reason_rft.metrics_plot import MetricsFileError, read_metrics

    try:
        series = read_metrics(metrics_path).series
    except (MetricsFileError, OSError) as exc:
        return f"[{stage}] no step metrics to show ({exc})"
    by_step: dict[int, dict[str, float]] = {}
    for key, points in series.items():
        for step, value in points:
            by_step.setdefault(step, {})[key] = value
    steps = sorted(by_step.items())
    keys = (("train/loss", "loss"), ("critic/score/mean", "reward"), ("reason_rft/format/mean", "format"),
            ("reason_rft/accuracy/mean", "accuracy"), ("actor/kl_loss", "kl"), ("actor/grad_norm", "grad_norm"),
            ("train/grad_norm", "grad_norm"))
    shown = steps if len(steps) <= 6 else [*steps[:3], *steps[-3:]]
    lines = [f"[{stage}] {len(steps)} steps logged in {metrics_path}"]
    for step, values in shown:
        parts = [f"{label} {values[key]:.4g}" for key, label in keys if isinstance(values.get(key), (int, float))]
        lines.append(f"    step {step}: " + ", ".join(parts))
    scores = [v.get("critic/score/max", 0) - v.get("critic/score/min", 0) for _, v in steps if "critic/score/max" in v]
    if scores and max(scores) == 0:
        lines.append("    every rollout of every step got the same reward: GRPO's advantages were all zero, so only the KL "
                     "term moved the model (a model that never writes the <think>/<answer> format scores 0 everywhere: "
                     "SFT first, as --variant reason_rft does)")
    return "\n".join(lines)


def detected_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def validate(options: RunOptions) -> None:
    """Names and the model source, checked before anything is written; raises :class:`UsageError`."""
    from verl_reason_rft.data_prep.samples import GENERATORS
    from verl_reason_rft.model_source import ModelSourceError, check_model_source
    from verl_reason_rft.tasks import get_registry

    tasks = get_registry().tasks
    if options.task not in tasks:
        raise UsageError(f"unknown --task {options.task!r} (valid: {', '.join(sorted(tasks))})")
    if options.variant not in VARIANTS:
        raise UsageError(f"unknown --variant {options.variant!r} (valid: {', '.join(VARIANTS)})")
    if options.dataset_dir is None and options.task not in GENERATORS:
        raise UsageError(f"--task {options.task} has no sample generator (those with one: {', '.join(sorted(GENERATORS))}); "
                         "pass --dataset-dir")
    if options.dataset_dir is not None and not options.dataset_dir.expanduser().is_dir():
        raise UsageError(f"--dataset-dir {options.dataset_dir}: the folder does not exist")
    if options.sft_size is not None and options.sft_size < 0:
        raise UsageError(f"--sft-size must be >= 0, got {options.sft_size}")
    try:
        check_model_source(options.model, options.model_path)
    except ModelSourceError as exc:
        raise UsageError(str(exc)) from None


def train_record_count(dataset_dir: Path, task: str) -> int | None:
    """Records in the task's train file (None: no train file or unreadable; prepare then reports it)."""
    from verl_reason_rft.tasks import get_registry

    spec = get_registry().tasks[task]
    path = dataset_dir / "train_jsons" / spec.train_file if spec.train_file else None
    try:
        records = json.loads(path.read_text(encoding="utf-8")) if path else None
    except (OSError, ValueError):
        return None
    return len(records) if isinstance(records, list) else None


def choose_sft_size(task: str, requested: int | None, default: int, records: int | None) -> tuple[int, str | None]:
    """The SFT slice leaving GRPO data, and a note when it is not the one asked for; :class:`UsageError` if none can."""
    from verl_reason_rft.tasks import get_registry

    if records is None or get_registry().tasks[task].rl_uses_all_records:
        return (default if requested is None else requested), None
    if requested is not None:
        if requested >= records:
            raise UsageError(f"--sft-size {requested} takes all {records} train records of {task}: the GRPO split (rl.parquet) "
                             f"would be empty; use --sft-size below {records}, or leave it out (run then takes half)")
        return requested, None
    if default < records:
        return default, None
    if records < 2:
        raise UsageError(f"{task} has {records} train record(s): SFT and GRPO need at least one each")
    size = records // 2
    return size, (f"--sft-size: {task} has {records} train records and the default slice ({default}) would leave GRPO none; "
                  f"using {size} (pass --sft-size to choose)")


def run_pipeline(options: RunOptions, echo: Callable[[str], None] = print) -> int:
    """The whole ``reason-rft run``: plan, prepare, preflight, then training and evaluation when GPUs exist.

    Raises :class:`UsageError` (bad names, missing model, stale markers) before anything is written.
    """
    validate(options)
    root = options.output_dir.expanduser().resolve()
    options = replace(options, output_dir=root)
    sample = options.dataset_dir is None
    dataset_dir = root / "sample_data" / "Reason-RFT-CoT-Dataset" if sample else options.dataset_dir.expanduser().resolve()
    records = SAMPLE_PER_TASK if sample else train_record_count(dataset_dir, options.task)
    sft_size, note = choose_sft_size(options.task, options.sft_size, SAMPLE_SFT_SIZE if sample else DEFAULT_SFT_SIZE, records)
    options = replace(options, sft_size=sft_size)
    available = detected_gpus()
    # no GPU: the tiny model trains on the CPU (verl_reason_rft.cpu); a real model, or --gpus N (a plan for
    # N GPUs), only gets the plan
    cpu_training = not available and options.model == "tiny" and options.gpus is None
    gpus = 1 if cpu_training else options.gpus or available or 8
    plan_only = options.dry_run or (available == 0 and not cpu_training)
    build_tiny = options.model == "tiny" and options.model_path is None
    model_path = str(root / "models" / "tiny") if build_tiny else options.model_path
    plan = build_plan(options, model_path, dataset_dir, gpus, device="cpu" if cpu_training else "cuda", train_records=records)
    bad_layout = plan_problems(plan.checks)  # verl would shrink the SFT batch or assert in GRPO after starting
    if bad_layout:
        raise UsageError(f"--gpus {gpus} does not fit the batch sizes:\n  " + "\n  ".join(bad_layout))
    stale = plan.stale()
    if stale:
        raise UsageError(f"{root} holds stages run with other options:\n  " + "\n  ".join(stale) + "\nuse another --output-dir, "
                         "or delete those markers (and, for a training stage, its folder under checkpoints/) to redo them")

    log = RunLog(root / "run.log", echo)
    if note:
        log(f"[prepare] {note}")
    setup_log = root / "logs" / "setup.log"
    if build_tiny and not (Path(model_path) / "config.json").is_file():
        from verl_reason_rft.tiny_model import build_tiny_qwen2_vl

        log(f"[model] building the tiny Qwen2-VL in {model_path}; log: {setup_log}")
        with output_to(setup_log):
            build_tiny_qwen2_vl(Path(model_path))
    write_bytes_atomic(root / "plan.sh", plan.script().encode())
    log(f"plan: {len(plan.stages)} stages, written to {root / 'plan.sh'}")

    if sample and not plan.done(plan.stages[0]) and not (dataset_dir / "train_jsons").is_dir():
        from verl_reason_rft.data_prep.samples import generate_samples

        log(f"[samples] no --dataset-dir: generating the embedded sample dataset in {dataset_dir}")
        with output_to(setup_log):
            generate_samples(dataset_dir, per_task=SAMPLE_PER_TASK, seed=0, tasks=[options.task], progress=False, force=True)
    rc = execute(plan, plan.stages[:1], log)
    if rc:
        return rc

    pending_training = [s for s in plan.stages if s.trains and not plan.done(s)]
    if pending_training or plan_only:
        rc = _run_preflight(plan, options, log)
        if rc:
            return rc

    if plan_only:
        write_bytes_atomic(root / "plan.sh", plan.script().encode())  # statuses as of now
        echo("\nPlan (also in " + str(root / "plan.sh") + "):\n" + plan.script())
        if options.dry_run:
            log(f"--dry-run: data and configs are ready; run the same command without --dry-run, or the commands in {root / 'plan.sh'}")
        else:
            log(f"no GPU found (torch.cuda.device_count() == 0): a plan for GPUs (--model {options.model}"
                f"{f', --gpus {options.gpus}' if options.gpus else ''}) only; on a CPU, --model tiny without --gpus trains. "
                f"Data and configs are ready; run the same command on a GPU machine, or {root / 'plan.sh'}")
        return 0
    if cpu_training:
        log("no GPU found: training the tiny model on the CPU (verl_reason_rft.cpu: gloo, HF rollout; recipes/cpu/*.yaml)")
    rc = execute(plan, plan.stages[1:], log)
    if rc == 0 and (root / "eval" / "scores.md").is_file():
        echo("\n" + (root / "eval" / "scores.md").read_text(encoding="utf-8"))
    return rc


def _run_preflight(plan: Plan, options: RunOptions, log: RunLog) -> int:
    """The preflight, its third-party output in ``logs/preflight.log``; our report on the console."""
    from verl_reason_rft.preflight import run_preflight

    root = plan.root
    log_file = root / "logs" / "preflight.log"
    log(f"[preflight] checking configs, processor, datasets and rewards (CPU); log: {log_file}")
    start = time.monotonic()
    try:
        with output_to(log_file):
            report = run_preflight(plan.checks, max_rows=options.max_rows)
    except Exception as exc:  # noqa: BLE001 - a crash of the check itself is a failed preflight, with its log
        with log_file.open("a", encoding="utf-8") as f:
            f.write(f"{type(exc).__name__}: {exc}\n")
        log(f"[preflight] crashed: {type(exc).__name__}: {exc}; last lines of {log_file}:\n{_tail(log_file)}")
        return 1
    text = report.render()
    write_bytes_atomic(root / "preflight.txt", text.encode())
    log.echo(text)
    log(f"[preflight] {'passed' if report.ok else 'FAILED'} in {_elapsed(time.monotonic() - start)} (report: {root / 'preflight.txt'})")
    return 0 if report.ok else 1


def _prepare(dataset_dir: Path, data_dir: Path, task: str, sft_size: int) -> str:
    """The prepare stage, run in this process; its summary for the console."""
    from verl_reason_rft.data_prep.prepare import prepare

    report = prepare(dataset_dir, data_dir, tasks=[task], sft_size=sft_size)
    if not report.ok:
        raise RuntimeError(f"prepare could not read every input file; see {data_dir / 'prepare_report.json'}")
    return report.summary()


def _plot(metrics_dir: Path, png: Path) -> str:
    """The plot stage, run in this process: every training stage's metrics (all attempts) in one PNG."""
    from verl_reason_rft.metrics_plot import render_metrics_plot

    files = sorted(metrics_dir.glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no training metrics in {metrics_dir} (verl's file logger writes them during SFT/GRPO)")
    result = render_metrics_plot(files, png)
    return f"[plot] {result.path} (panels: {', '.join(result.drawn)})"


def _prepared(data_dir: Path, task: str, sft_size: int) -> bool:
    """True when ``data_dir`` holds a finished prepare of ``task`` with this SFT slice (its report is written last)."""
    from verl_reason_rft.data_prep.prepare import completed_inputs

    inputs = completed_inputs(data_dir)
    return inputs is not None and task in inputs.get("tasks", []) and inputs.get("sft_size") == sft_size
