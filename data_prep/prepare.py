"""Reason-RFT-CoT-Dataset meta-JSON -> verl parquet for every stage (SPEC §2-§5).

For each task, under ``output_dir/<task>/``:

- ``sft.parquet``      stage-1 CoT-SFT: the first ``sft_size`` valid train records (file order)
- ``rl.parquet``       stage-2 GRPO: the remaining records (all of them if the task's ``rl_uses_all_records``)
- ``zero.parquet``     Reason-RFT-Zero: all records, RL form
- ``cot_sft.parquet``  / ``ans_sft.parquet``: all records, SFT form (CoT target / bare answer, ``ans`` prompts)
- ``test_<data_source>.parquet`` for each test file of the task

Everything is validated before anything is written; every file is written atomically.
``prepare_report.json`` is the completion record: an earlier one is removed before the first
parquet is written and the new one is written last, so a folder without it is incomplete
(:func:`completed_inputs`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from tqdm import tqdm

from verl_reason_rft.data_prep.atomic import write_bytes_atomic
from verl_reason_rft.data_prep.image_check import ImageChecker
from verl_reason_rft.data_prep.parquet_io import write_rows
from verl_reason_rft.data_prep.prompt_overrides import load_overrides
from verl_reason_rft.data_prep.records import BadRecordError, MetaFile, Problem, read_meta_json
from verl_reason_rft.data_prep.rows import RowBuilder, rl_schema, sft_schema
from verl_reason_rft.task_spec import DEFAULT_SFT_SIZE, TaskSpec
from verl_reason_rft.tasks import get_registry
from verl_reason_rft.text_table import format_table

REPORT_FILE = "prepare_report.json"
EXAMPLES_PER_REASON = 3


@dataclass
class PrepareReport:
    output_dir: Path
    #: output file (relative to ``output_dir``) -> rows written
    outputs: dict[str, int] = field(default_factory=dict)
    #: every excluded record or unusable file
    problems: list[Problem] = field(default_factory=list)
    #: what the outputs were made from: dataset_dir, tasks, sft_size
    inputs: dict[str, Any] = field(default_factory=dict)
    #: outputs that exist but will not train (e.g. an SFT slice that takes every record)
    warnings: list[str] = field(default_factory=list)

    @property
    def file_errors(self) -> list[Problem]:
        return [p for p in self.problems if p.index is None]

    @property
    def dropped(self) -> Counter:
        """(file name, reason) -> count of excluded records."""
        return Counter((Path(p.file).name, p.reason) for p in self.problems if p.index is not None)

    @property
    def ok(self) -> bool:
        """True when every expected input file was read (dropped records alone do not fail a run)."""
        return not self.file_errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "warnings": self.warnings,
            "outputs": self.outputs,
            "dropped": [{"file": f, "reason": r, "count": n} for (f, r), n in sorted(self.dropped.items())],
            "file_errors": [str(p) for p in self.file_errors],
            "examples": [str(p) for p in self.examples()],
        }

    def examples(self, per_reason: int = EXAMPLES_PER_REASON) -> list[Problem]:
        shown: Counter = Counter()
        picked = []
        for problem in self.problems:
            if problem.index is not None and shown[problem.reason] < per_reason:
                shown[problem.reason] += 1
                picked.append(problem)
        return picked

    def summary(self) -> str:
        lines = [format_table(["output file", "rows"], [[name, str(n) + ("  (empty)" if n == 0 else "")] for name, n in self.outputs.items()])]
        if self.dropped:
            lines.append("\ndropped records:")
            lines.append(format_table(["file", "reason", "count"], [[f, r, str(n)] for (f, r), n in sorted(self.dropped.items())]))
            lines.append(f"\nfirst examples (up to {EXAMPLES_PER_REASON} per reason):")
            lines.extend(f"  {p}" for p in self.examples())
        else:
            lines.append("\ndropped records: none")
        for problem in self.file_errors:
            lines.append(f"\nFILE NOT CONVERTED: {problem}")
        for warning in self.warnings:
            lines.append(f"\nWARNING: {warning}")
        return "\n".join(lines)


def _select_tasks(names: Iterable[str] | None) -> list[TaskSpec]:
    registry = get_registry()
    if names is None:
        return list(registry.tasks.values())
    wanted = [n.strip() for name in names for n in str(name).split(",") if n.strip()]
    unknown = [n for n in wanted if n not in registry.tasks]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)} (known: {', '.join(sorted(registry.tasks))})")
    return [registry.tasks[n] for n in dict.fromkeys(wanted)]


def completed_inputs(output_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The inputs of the finished ``prepare`` in ``output_dir``; None when it is absent or was interrupted."""
    try:
        record = json.loads((Path(output_dir) / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    inputs = record.get("inputs") if isinstance(record, dict) else None
    return inputs if isinstance(inputs, dict) else None


def _slice_warning(spec: TaskSpec, train: MetaFile, sft_size: int) -> str | None:
    n = len(train.records)
    if spec.rl_uses_all_records or sft_size < n:
        return None
    return (f"{spec.name}: --sft-size {sft_size} takes all {n} valid train records into sft.parquet, so rl.parquet (GRPO) "
            f"is empty; use --sft-size below {n}")


def _stage_rows(spec: TaskSpec, train: MetaFile, sft_size: int, templates: Mapping[str, str], embedded) -> dict[str, tuple[list, Any]]:
    records = train.records
    rl_records = records if spec.rl_uses_all_records else records[sft_size:]
    embed = embedded is not None

    def rl(split, recs):
        build = RowBuilder(spec, spec.name, split, templates, embedded)
        return [build.rl(r) for r in recs], rl_schema(embed)

    def sft(split, recs, style):
        build = RowBuilder(spec, spec.name, split, templates, embedded)
        return [build.sft(r, style) for r in recs], sft_schema(embed)

    return {
        "sft.parquet": sft("sft", records[:sft_size], "cot"),
        "rl.parquet": rl("rl", rl_records),
        "zero.parquet": rl("zero", records),
        "cot_sft.parquet": sft("cot_sft", records, "cot"),
        "ans_sft.parquet": sft("ans_sft", records, "ans"),
    }


def prepare(
    dataset_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    tasks: Iterable[str] | None = None,
    image_root: str | os.PathLike | None = None,
    sft_size: int = DEFAULT_SFT_SIZE,
    strict: bool = False,
    prompts: str | os.PathLike | Mapping[str, Any] | None = None,
    *,
    embed_images: bool = False,
    verify_images: bool = True,
    verbose: bool = True,
) -> PrepareReport:
    """Convert a downloaded (or generated) dataset; returns what was written and what was dropped.

    ``strict``: any bad record or missing file raises :class:`BadRecordError` before anything is written.
    ``prompts``: YAML path or mapping ``{task: {template_name: template}}`` overriding the built-in templates.
    ``embed_images``: store PNG/JPEG bytes (``{"bytes": ...}``) instead of absolute paths (``{"image": ...}``).
    """
    if not isinstance(sft_size, int) or sft_size < 0:
        raise ValueError(f"sft_size must be a non-negative integer, got {sft_size!r}")
    dataset = Path(dataset_dir).expanduser().resolve()
    if not dataset.is_dir():
        raise FileNotFoundError(f"dataset directory {dataset} does not exist")
    out = Path(output_dir).expanduser().resolve()
    specs = _select_tasks(tasks)
    overrides = load_overrides(prompts, {s.name: s for s in specs})
    extra_root = [Path(image_root).expanduser().resolve()] if image_root else []
    train_roots = [dataset / "images" / "train_images", *extra_root]
    test_roots = [dataset / "images" / "test_images", *extra_root]
    checker = ImageChecker(full=verify_images, progress=verbose)

    # 1. read and validate everything
    loaded: list[tuple[TaskSpec, MetaFile | None, list[tuple[str, MetaFile]]]] = []
    n_files = sum(bool(s.train_file) + len(s.test_files) for s in specs)
    with tqdm(total=n_files, desc="validate", unit="file", disable=not verbose) as bar:
        for spec in specs:
            read = dict(images_per_sample=spec.images_per_sample, checker=checker)
            train = None
            if spec.train_file:
                bar.set_postfix_str(spec.train_file)
                train = read_meta_json(dataset / "train_jsons" / spec.train_file, image_roots=train_roots, require_cot=True, **read)
                bar.update(1)
            tests = []
            for file_name, data_source in spec.test_files.items():
                bar.set_postfix_str(file_name)
                tests.append((data_source, read_meta_json(dataset / "test_jsons" / file_name, image_roots=test_roots, require_cot=False, **read)))
                bar.update(1)
            loaded.append((spec, train, tests))

    report = PrepareReport(out, inputs={"dataset_dir": str(dataset), "tasks": [s.name for s in specs], "sft_size": sft_size})
    for _, train, tests in loaded:
        for meta in ([train] if train else []) + [m for _, m in tests]:
            report.problems.extend(meta.problems)
    if strict and report.problems:
        first = report.problems[0]
        raise BadRecordError(f"{first} ({len(report.problems)} problem(s) in total; without --strict bad records are dropped and reported)")

    # 2. build rows and write
    jobs: list[tuple[str, list, Any]] = []
    for spec, train, tests in loaded:
        templates = overrides.get(spec.name, {})
        metas = ([train] if train and not train.file_error else []) + [m for _, m in tests if not m.file_error]
        embedded = _read_image_bytes(metas) if embed_images else None
        if train and not train.file_error:
            warning = _slice_warning(spec, train, sft_size)
            if warning:
                report.warnings.append(warning)
            for name, (rows, schema) in _stage_rows(spec, train, sft_size, templates, embedded).items():
                jobs.append((f"{spec.name}/{name}", rows, schema))
        for data_source, meta in tests:
            if not meta.file_error:
                build = RowBuilder(spec, data_source, "test", templates, embedded)
                rows = [build.rl(r) for r in meta.records]
                jobs.append((f"{spec.name}/test_{data_source}.parquet", rows, rl_schema(embed_images)))
    (out / REPORT_FILE).unlink(missing_ok=True)  # the folder is incomplete until the new report is written
    for name, rows, schema in tqdm(jobs, desc="write", unit="file", disable=not verbose):
        write_rows(rows, schema, out / name)
        report.outputs[name] = len(rows)
    text = json.dumps(report.to_dict(), indent=1, ensure_ascii=False)
    write_bytes_atomic(out / REPORT_FILE, text.encode("utf-8"))
    if verbose:
        print(report.summary())
    return report


def _read_image_bytes(metas: list[MetaFile]) -> dict[str, bytes]:
    return {path: Path(path).read_bytes() for meta in metas for record in meta.records for path in record.images}
