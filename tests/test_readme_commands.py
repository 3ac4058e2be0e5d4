"""Every command in README.md's ```bash blocks runs as written on CPU, in README order, in one temp folder.

A command is run with bash in a scratch working directory (``python`` and ``reason-rft`` are this
interpreter), unless a rule of ``RULES`` says otherwise:

- ``skip``: not run here (installs, downloads, the test suite itself), with the reason;
- ``dry``: run with ``--dry-run`` appended (the main ``reason-rft run``: training is covered by the
  end-to-end test);
- ``cfg``: a verl trainer command, composed with ``--cfg job`` instead of training (a ``...`` in it
  stands for "your usual arguments": verl's own defaults);
- ``parse``: GPU- or network-only ``reason-rft`` commands: their arguments must parse with the CLI;
- ``help``: long benchmarks: ``--help`` runs and lists every option the README uses.

Commands the rules do not name run as written, so a command added to the README is checked too.
A failure names the command and its README line.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TIMEOUT_S = 600

#: (pattern searched in the command, mode, why); the first match wins
RULES: list[tuple[str, str, str]] = [
    (r"^pytest\b|&& pytest\b", "skip", "the test suite itself"),
    (r"\bpip install\b", "skip", "installs packages (the environment is already installed)"),
    (r"^huggingface-cli download\b", "skip", "downloads the real dataset (network)"),
    (r"^hf download\b", "skip", "downloads a model or the dataset (network)"),
    (r"^torchrun\b.*--rdzv-endpoint", "skip", "multi-node SFT: needs the other nodes"),
    (r"^ray start\b", "skip", "starts a multi-node Ray cluster"),
    (r"^cd data/Reason-RFT-CoT-Dataset\b", "skip", "unzips the downloaded dataset"),
    (r"^cat runs/trance-2b/", "skip", "output of the GPU run above"),
    (r"^reason-rft run\b.*--model tiny\b", "dry", "trains: the end-to-end test covers training"),
    (r"^reason-rft run\b", "parse", "a Hub model (network) and GPUs"),
    (r"^reason-rft eval\b(?!.*(--dry-run|--engine hf))", "parse", "a GPU run's checkpoint, vLLM on a CUDA GPU"),
    (r"^python -m verl\.trainer\.(main_ppo|sft_trainer)\b(?!.*--cfg)", "cfg", "trains on GPUs"),
    (r"^python benchmarks/", "help", "a long benchmark"),
    (r"^reason-rft plot runs/", "parse", "metrics files of a training run (tests/test_metrics_plot.py draws real ones)"),
]


@dataclass
class Command:
    line: int
    text: str

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.text}"


def readme_commands(text: str) -> list[Command]:
    """The commands of every ```bash block: continuation lines joined, comment-only lines dropped."""
    commands, block, pending, start = [], False, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("```"):
            block = line.strip() == "```bash" if not block else False
            pending = ""
            continue
        if not block:
            continue
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        commands.append(Command(start, re.sub(r"\s+", " ", pending + stripped).strip()))
        pending = ""
    return commands


def mode_of(command: Command) -> tuple[str, str]:
    for pattern, mode, why in RULES:
        if re.search(pattern, command.text):
            return mode, why
    return "run", ""


def _words(text: str) -> list[str]:
    """The command's words without a trailing comment."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=False)
    lexer.whitespace_split, lexer.commenters = True, "#"
    return list(lexer)


def _shell(words: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


def _env(bin_dir: Path) -> dict[str, str]:
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def _fixtures(work: Path) -> Path:
    """``python``/``reason-rft`` that are this interpreter, the benchmarks, predictions files to score."""
    bin_dir = work / ".bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "reason-rft").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m verl_reason_rft "$@"\n')
    (bin_dir / "reason-rft").chmod(0o755)
    (work / "benchmarks").symlink_to(REPO / "benchmarks")
    lines = [{"id": f"t{i}", "data_source": source, "prompt_style": "cot", "prediction": f"<think>x</think><answer>{answer}</answer>",
              "answer": answer} for i, (source, answer) in enumerate([("clevr_math", "3"), ("trance", "(1, shift, left)"), ("geomath", "B")])]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    for path in (work / "runs" / "trance-2b" / "eval" / "predictions.jsonl", work / "PRED.jsonl"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return bin_dir


def _check(command: Command, work: Path, env: dict[str, str]) -> str | None:
    """None when the command passes its check, else what went wrong."""
    mode, _why = mode_of(command)
    words = _words(command.text)
    if mode == "parse":
        from verl_reason_rft.cli import build_parser

        try:
            build_parser().parse_args(words[1:])
        except SystemExit as exc:
            return f"its arguments do not parse with the reason-rft CLI (exit {exc.code})"
        return None
    if mode == "help":
        used = [w.split("=", 1)[0] for w in words if w.startswith("--")]
        words = [*words[:2], "--help"]
    elif mode == "dry":
        words = [*words, "--dry-run"]
    elif mode == "cfg":
        words = [w for w in words if w != "..."] + ["--cfg", "job"]
    script = command.text if mode == "run" else _shell(words)
    try:
        done = subprocess.run(["bash", "-c", "set -eo pipefail\n" + script], cwd=work, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"ran past {TIMEOUT_S} s"
    output = done.stdout + done.stderr
    if done.returncode != 0:
        return f"exit {done.returncode} (as run: {script})\n{output[-2500:]}"
    if mode == "help":
        missing = [option for option in used if option not in done.stdout]
        if missing:
            return f"--help does not list {missing}"
    return None


def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert len(commands) > 20, "README.md: fewer bash commands than expected (did the ```bash fences change?)"
    bin_dir = _fixtures(tmp_path)
    env = _env(bin_dir)
    failures, skipped = [], []
    for command in commands:
        mode, why = mode_of(command)
        if mode == "skip":
            skipped.append(f"{command} ({why})")
            continue
        problem = _check(command, tmp_path, env)
        if problem:
            failures.append(f"{command}\n  [{mode}] {problem}")
    print("not run:\n  " + "\n  ".join(skipped))
    assert not failures, f"{len(failures)} README command(s) failed:\n\n" + "\n\n".join(failures)


def test_extraction_joins_continuations_and_drops_comments() -> None:
    text = "x\n```bash\n# note\nreason-rft a \\\n  --b 1   # why\n\nreason-rft c\n```\n```\nnot bash\n```\n"
    assert [c.text for c in readme_commands(text)] == ["reason-rft a --b 1 # why", "reason-rft c"]
    assert _words("reason-rft a --b 1 # why") == ["reason-rft", "a", "--b", "1"]
    assert mode_of(Command(1, "reason-rft run --task t --model tiny --output-dir o"))[0] == "dry"


def test_install_commands_work_from_a_checkout() -> None:
    """No registry has verl-reason-rft: every pip install of it is of a path."""
    for command in readme_commands(README.read_text(encoding="utf-8")):
        for part in command.text.split("&&"):
            words = _words(part)
            if words[:2] == ["pip", "install"]:
                named = [w for w in words[2:] if re.match(r"verl[-_]reason[-_]rft", w)]
                assert not named, f"{command}: {named} is not on any package index; install from the checkout (pip install -e .)"


def test_eval_examples_use_the_layout_run_writes() -> None:
    for command in readme_commands(README.read_text(encoding="utf-8")):
        words = _words(command.text)
        if words[:2] == ["reason-rft", "eval"] and "--dry-run" not in words:
            model = words[words.index("--model") + 1]
            assert not model.startswith("runs/") or re.search(r"/checkpoints/(sft/global_step_[^/]+|grpo/global_step_[^/]+/actor)/huggingface$", model), (
                f"{command}: {model} is not where `reason-rft run` writes checkpoints")


def test_run_synopsis_lists_every_option() -> None:
    from verl_reason_rft.cli import build_parser

    parser = build_parser()
    run = parser._subparsers._group_actions[0].choices["run"]  # noqa: SLF001 - argparse has no public accessor
    options = [a.option_strings[0] for a in run._actions if a.option_strings and a.option_strings[0] != "-h"]  # noqa: SLF001
    text = README.read_text(encoding="utf-8")
    synopsis = re.search(r"```\nreason-rft run --task T.*?```", text, re.S)
    assert synopsis, "README.md: the `reason-rft run --task T ...` synopsis block is missing"
    missing = [o for o in options if o not in synopsis.group(0)]
    assert not missing, f"README.md's run synopsis lacks {missing}"
