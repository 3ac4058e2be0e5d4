"""``reason-rft run``: prepare -> SFT -> GRPO -> evaluation as one resumable pipeline.

Every stage is one command (verl's own trainers with our recipes, then ``reason-rft eval`` and
``reason-rft score``). A stage that succeeds writes ``O/.stages/<stage>.done``, so a re-run
skips it; a stage that stopped half-way resumes from its last checkpoint (verl's
``trainer.resume_mode=auto`` on the same ``trainer.default_local_dir``). Without GPUs (or with
``--dry-run``) the pipeline prepares the data, runs the preflight and writes the plan only.

Layout of the output folder ``O``::

    sample_data/  models/tiny/  data/<task>/*.parquet  checkpoints/{sft,grpo}/  eval/
    plan.sh (every command, runnable)  run.log (what ran, when)  logs/<stage>.log  .stages/*.done
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from verl_reason_rft.checkpoints import TRACKER, latest_hf_checkpoint
from verl_reason_rft.data_prep.atomic import write_bytes_atomic
from verl_reason_rft.preflight import DEFAULT_MAX_ROWS, StageCheck
from verl_reason_rft.recipe_config import GRPO, SFT, ZERO, trainer_argv
from verl_reason_rft.task_spec import DEFAULT_SFT_SIZE

VARIANTS = ("reason_rft", "zero", "ans_sft", "cot_sft")
#: samples generated per task when no --dataset-dir is given, and the SFT slice taken from them
SAMPLE_PER_TASK, SAMPLE_SFT_SIZE = 16, 8
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


@dataclass
class Stage:
    """One step of the pipeline: a command line, or in-process work shown as its CLI equivalent."""

    name: str
    argv: list[str]
    #: work done in this process instead of running ``argv`` (prepare)
    action: Callable[[], None] | None = None
    trains: bool = False


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
        return self.root / ".stages" / f"{stage.name}.done"

    def done(self, stage: Stage) -> bool:
        return self.marker(stage).is_file()

    def script(self) -> str:
        """The plan as a bash script (checkpoint paths read from verl's tracker files at run time)."""
        lines = ["#!/usr/bin/env bash", f"# reason-rft run plan: task={self.options.task} model={self.options.model} "
                 f"variant={self.options.variant} gpus={self.gpus}", "set -euo pipefail", ""]
        for stage in self.stages:
            status = "done" if self.done(stage) else "to do"
            lines += [f"# {stage.name} ({status})", shell_join(stage.argv), ""]
        return "\n".join(lines)


def shell_join(argv: Sequence[str]) -> str:
    """Quote for bash, leaving ``$(...)`` checkpoint lookups to the shell."""
    return " ".join(arg if "$(" in arg else shlex.quote(arg) for arg in argv)


def _tracker_path(checkpoint_dir: Path, role: str = "") -> str:
    """Shell text naming the HF folder of the latest checkpoint (evaluated when the script runs)."""
    middle = f"/{role}" if role else ""
    return f'"{checkpoint_dir}/global_step_$(cat {checkpoint_dir}/{TRACKER}){middle}/huggingface"'


def build_plan(options: RunOptions, model_path: str, dataset_dir: Path, gpus: int) -> Plan:
    """Every stage of ``options.variant`` with its exact command."""
    if options.variant not in VARIANTS:
        raise ValueError(f"--variant must be one of {VARIANTS}, got {options.variant!r}")
    root = options.output_dir
    data_dir = root / "data"
    sft_dir, grpo_dir = root / "checkpoints" / "sft", root / "checkpoints" / "grpo"
    plan = Plan(options, gpus)
    python = [sys.executable]
    common = [f"task={options.task}", f"model={options.model}", f"data_dir={data_dir}"]
    if model_path:
        common.append(f"model.path={model_path}")
    tp = 2 if gpus % 2 == 0 and options.model.endswith("7b") else 1
    name = f"{options.task}-{options.model}-{options.variant}"

    sft_size = options.sft_size if options.sft_size is not None else DEFAULT_SFT_SIZE
    plan.stages.append(Stage("prepare", ["reason-rft", "prepare", "--dataset-dir", str(dataset_dir), "--output-dir", str(data_dir),
                                         "--tasks", options.task, "--sft-size", str(sft_size)],
                             action=lambda: _prepare(dataset_dir, data_dir, options.task, sft_size)))

    final_model = None
    if options.variant != "zero":
        sft_variant = "sft" if options.variant == "reason_rft" else options.variant
        overrides = [*common, f"variant={sft_variant}", f"trainer.default_local_dir={sft_dir}", f"trainer.experiment_name={name}-sft",
                     "trainer.resume_mode=auto"]  # GPUs per node: torchrun's --nproc-per-node (sft_trainer reads no trainer key)
        torchrun = ["torchrun", "--standalone", "--nnodes=1", f"--nproc-per-node={gpus}"]
        plan.stages.append(Stage("sft", torchrun + trainer_argv(SFT, overrides), trains=True))
        plan.checks.append(StageCheck("sft", SFT, tuple(overrides)))
        final_model = _tracker_path(sft_dir)
    if options.variant in ("reason_rft", "zero"):
        recipe = GRPO if options.variant == "reason_rft" else ZERO
        overrides = [*common, f"trainer.default_local_dir={grpo_dir}", f"trainer.experiment_name={name}",
                     f"trainer.n_gpus_per_node={gpus}", f"actor_rollout_ref.rollout.tensor_model_parallel_size={tp}",
                     "trainer.resume_mode=auto"]
        if options.model == "tiny":
            overrides += TINY_GRPO_OVERRIDES
        plan.checks.append(StageCheck("grpo", recipe, tuple(overrides)))  # checked on the base model's tokenizer
        if recipe == GRPO:
            overrides.append(f"actor_rollout_ref.model.path={_tracker_path(sft_dir)}")
        plan.stages.append(Stage("grpo", python + trainer_argv(recipe, overrides), trains=True))
        final_model = _tracker_path(grpo_dir, "actor")

    eval_dir = root / "eval"
    style = "ans" if options.variant == "ans_sft" else "cot"
    plan.stages.append(Stage(
        "eval",
        python + ["-m", "verl_reason_rft", "eval", "--model", final_model, "--benchmarks", options.task, "--output-dir", str(eval_dir),
                  "--data-dir", str(data_dir), "--prompt-style", style, "--tensor-parallel-size", str(tp)],
    ))
    score = python + ["-m", "verl_reason_rft", "score", str(eval_dir / "predictions.jsonl")]
    if (options.model, options.variant) in PAPER_ROW:
        score += ["--paper-row", PAPER_ROW[(options.model, options.variant)]]
    plan.stages.append(Stage("score", score))
    return plan


class RunLog:
    """Appends timestamped lines to ``O/run.log`` and echoes them."""

    def __init__(self, path: Path, echo: Callable[[str], None] = print) -> None:
        self.path, self.echo = path, echo
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, message: str) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        self.echo(message)


def run_command(argv: Sequence[str], log_file: Path) -> int:
    """Run ``argv``, streaming its output to the console and to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a", encoding="utf-8") as log, subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        return proc.wait()


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
    if out and out[0] == "reason-rft":
        out = [sys.executable, "-m", "verl_reason_rft", *out[1:]]
    return out


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
        if stage.action is not None:
            log_file = log.path  # where its exception goes
            log(f"[{stage.name}] {shell_join(argv)}  (run in this process)")
            try:
                stage.action()
                rc = 0
            except Exception as exc:  # noqa: BLE001 - reported with the stage; outputs are written atomically
                log(f"[{stage.name}] {type(exc).__name__}: {exc}")
                rc = 1
        else:
            log_file = plan.root / "logs" / f"{stage.name}.log"
            log(f"[{stage.name}] {shell_join(argv)}")
            rc = run_command(argv, log_file)
        if rc != 0:
            log(f"[{stage.name}] failed (exit {rc}); log: {log_file}. "
                "Re-run the same `reason-rft run` command to resume (finished stages are skipped, training resumes from its last checkpoint)")
            return rc
        record = {"stage": stage.name, "command": argv, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        write_bytes_atomic(plan.marker(stage), json.dumps(record, indent=1).encode())
        log(f"[{stage.name}] done")
    return 0


def detected_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def run_pipeline(options: RunOptions, echo: Callable[[str], None] = print) -> int:
    """The whole ``reason-rft run``: plan, prepare, preflight, then training and evaluation when GPUs exist."""
    from verl_reason_rft.preflight import run_preflight

    root = options.output_dir.expanduser().resolve()
    options = replace(options, output_dir=root)
    log = RunLog(root / "run.log", echo)
    available = detected_gpus()
    gpus = options.gpus or available or 8
    plan_only = options.dry_run or available == 0

    sample = options.dataset_dir is None
    if sample:
        dataset_dir = root / "sample_data" / "Reason-RFT-CoT-Dataset"
        options = replace(options, sft_size=options.sft_size if options.sft_size is not None else SAMPLE_SFT_SIZE)
    else:
        dataset_dir = options.dataset_dir.expanduser().resolve()
    model_path = options.model_path
    if options.model == "tiny" and model_path is None:
        from verl_reason_rft.tiny_model import build_tiny_qwen2_vl

        model_path = str(build_tiny_qwen2_vl(root / "models" / "tiny"))
    plan = build_plan(options, model_path, dataset_dir, gpus)
    write_bytes_atomic(root / "plan.sh", plan.script().encode())
    log(f"plan: {len(plan.stages)} stages, written to {root / 'plan.sh'}")

    if sample and not (dataset_dir / "train_jsons").is_dir():
        from verl_reason_rft.data_prep.samples import generate_samples

        log(f"[samples] no --dataset-dir: generating the embedded sample dataset in {dataset_dir}")
        generate_samples(dataset_dir, per_task=SAMPLE_PER_TASK, seed=0, tasks=[options.task])
    rc = execute(plan, plan.stages[:1], log)
    if rc:
        return rc

    pending_training = [s for s in plan.stages if s.trains and not plan.done(s)]
    if pending_training or plan_only:
        log("[preflight] checking configs, processor, datasets and rewards (CPU)")
        report = run_preflight(plan.checks, max_rows=options.max_rows)
        text = report.render()
        write_bytes_atomic(root / "preflight.txt", text.encode())
        echo(text)
        log(f"[preflight] {'passed' if report.ok else 'FAILED'} (report: {root / 'preflight.txt'})")
        if not report.ok:
            return 1

    if plan_only:
        echo("\nPlan (also in " + str(root / "plan.sh") + "):\n" + plan.script())
        reason = "--dry-run" if options.dry_run else "no GPU found (torch.cuda.device_count() == 0)"
        log(f"{reason}: training needs GPUs (verl's SFT and GRPO trainers are CUDA-only). Data and configs are ready; "
            f"run the same command on a GPU machine, or the commands in {root / 'plan.sh'}")
        return 0
    return execute(plan, plan.stages[1:], log)


def _prepare(dataset_dir: Path, data_dir: Path, task: str, sft_size: int) -> None:
    """The prepare stage, run in this process."""
    from verl_reason_rft.data_prep.prepare import prepare

    report = prepare(dataset_dir, data_dir, tasks=[task], sft_size=sft_size)
    if not report.ok:
        raise RuntimeError(f"prepare could not read every input file; see {data_dir / 'prepare_report.json'}")

