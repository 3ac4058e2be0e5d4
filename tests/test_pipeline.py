"""``reason-rft run``: the plan's commands, checkpoint lookup, resuming, and the CPU dry run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from verl_reason_rft.checkpoints import TRACKER, latest_hf_checkpoint
from verl_reason_rft.pipeline import Plan, RunLog, RunOptions, Stage, UsageError, build_plan, execute, run_pipeline
from verl_reason_rft.recipe_config import compose_recipe
from verl_reason_rft.stage_markers import write_marker


def _plan(tmp_path: Path, variant: str = "reason_rft", model: str = "qwen2_vl_7b", gpus: int = 8, device: str = "cuda") -> Plan:
    options = RunOptions(task="visual_counting", model=model, output_dir=tmp_path / "O", variant=variant)
    return build_plan(options, None if model != "tiny" else "/m", tmp_path / "ds", gpus, device=device)


def _overrides(stage: Stage) -> list[str]:
    return [a for a in stage.argv if "=" in a and not a.startswith("-")]


@pytest.mark.parametrize("variant,stages", [
    ("reason_rft", ["prepare", "sft", "grpo", "eval", "score", "plot"]),
    ("zero", ["prepare", "grpo", "eval", "score", "plot"]),
    ("ans_sft", ["prepare", "sft", "eval", "score", "plot"]),
    ("cot_sft", ["prepare", "sft", "eval", "score", "plot"]),
])
def test_stages_per_variant(tmp_path: Path, variant: str, stages: list[str]) -> None:
    plan = _plan(tmp_path, variant)
    assert [s.name for s in plan.stages] == stages
    evaluation = plan.stage("eval").argv
    assert evaluation[evaluation.index("--prompt-style") + 1] == ("ans" if variant == "ans_sft" else "cot")
    role = "/actor" if "grpo" in stages else ""
    assert evaluation[evaluation.index("--model") + 1].endswith(f"{role}/huggingface\"")


def test_training_commands_compose_with_the_recipes(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    sft, grpo = plan.stages[1], plan.stages[2]
    assert sft.argv[:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc-per-node=8"]
    assert all(stage.argv[0] == sys.executable for stage in plan.stages)  # one interpreter for every stage
    assert "verl.trainer.sft_trainer" in sft.argv and "verl.trainer.main_ppo" in grpo.argv
    start = next(a for a in _overrides(grpo) if a.startswith("sft_checkpoint="))
    assert f"O/checkpoints/sft/global_step_$(cat {tmp_path}/O/checkpoints/sft/{TRACKER})/huggingface" in start
    # every override is a valid Hydra override of the recipe it is given to
    composed = {}
    for stage, name in ((sft, "reason_rft_sft"), (grpo, "reason_rft")):
        overrides = [a if not a.startswith("sft_checkpoint=") else "sft_checkpoint=/sft/global_step_1/huggingface" for a in _overrides(stage)]
        composed[stage.name] = cfg = compose_recipe(name, overrides)
        assert cfg.trainer.default_local_dir == str(tmp_path / "O" / "checkpoints" / stage.name)
        assert cfg.trainer.resume_mode == "auto"
    assert composed["grpo"].trainer.n_gpus_per_node == 8
    assert composed["grpo"].actor_rollout_ref.model.path == "/sft/global_step_1/huggingface"
    assert not any(a.startswith("trainer.n_gpus_per_node=") for a in _overrides(sft))  # torchrun decides for SFT
    assert composed["grpo"].actor_rollout_ref.rollout.tensor_model_parallel_size == 2


@pytest.mark.parametrize("variant", ["reason_rft", "zero", "ans_sft", "cot_sft"])
def test_cpu_plan_uses_the_cpu_kit_and_composes(tmp_path: Path, variant: str) -> None:
    """Without a GPU: SFT through verl_reason_rft.cpu.sft, GRPO with cpu=grpo and VERL_PLATFORM=cpu, HF evaluation."""
    from verl_reason_rft.cpu.settings import SFT_MODULE

    plan = _plan(tmp_path, variant, model="tiny", gpus=1, device="cpu")
    script = plan.script()
    for stage in (s for s in plan.stages if s.trains):
        assert stage.env["VERL_PLATFORM"] == "cpu"
        assert stage.env["VERL_FILE_LOGGER_PATH"] == str(tmp_path / "O" / "metrics" / f"{stage.name}.jsonl")
        assert f"VERL_FILE_LOGGER_PATH={stage.env['VERL_FILE_LOGGER_PATH']} VERL_PLATFORM=cpu \"$PYTHON\"" in script
        recipe = {"sft": "reason_rft_sft", "grpo": "reason_rft" if variant == "reason_rft" else "reason_rft_zero"}[stage.name]
        overrides = [a if not a.startswith("sft_checkpoint=") else "sft_checkpoint=/sft/global_step_1/huggingface" for a in _overrides(stage)]
        cfg = compose_recipe(recipe, overrides)
        assert cfg.trainer.device == "cpu" and "file" in cfg.trainer.logger
        if stage.name == "sft":
            assert stage.argv[1:3] == ["-m", SFT_MODULE] and "torch.distributed.run" not in stage.argv
        else:
            assert cfg.actor_rollout_ref.rollout.name == "hf_cpu" and cfg.trainer.n_gpus_per_node == 1
    evaluation = plan.stage("eval").argv
    assert evaluation[evaluation.index("--engine") + 1] == "hf"
    assert plan.stage("plot").after == tuple(s.name for s in plan.stages if s.trains)


def test_plan_script_lists_every_command(tmp_path: Path) -> None:
    plan = _plan(tmp_path, model="tiny", gpus=1)
    script = plan.script()
    assert script.startswith("#!/usr/bin/env bash") and script.count("\nif [ -f ") == len(plan.stages)
    assert "model.path=/m" in script and "data.max_prompt_length=3584" in script


def test_latest_hf_checkpoint(tmp_path: Path) -> None:
    assert latest_hf_checkpoint(tmp_path) is None
    for step in (10, 20):
        (tmp_path / f"global_step_{step}" / "actor" / "huggingface").mkdir(parents=True)
        (tmp_path / f"global_step_{step}" / "actor" / "huggingface" / "config.json").write_text("{}")
        (tmp_path / f"global_step_{step}" / "actor" / "huggingface" / "model.safetensors").write_bytes(b"")
    (tmp_path / "global_step_30").mkdir()  # being written: the tracker still says 20
    (tmp_path / TRACKER).write_text("20")
    assert latest_hf_checkpoint(tmp_path, "actor") == tmp_path / "global_step_20" / "actor" / "huggingface"
    assert latest_hf_checkpoint(tmp_path) is None  # SFT layout has no actor/ folder
    (tmp_path / "global_step_20" / "actor" / "huggingface" / "config.json").unlink()
    assert latest_hf_checkpoint(tmp_path, "actor") == tmp_path / "global_step_10" / "actor" / "huggingface"


def test_execute_skips_finished_stages_and_stops_at_a_failure(tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    plan = _plan(tmp_path)
    plan.stages = [
        Stage("one", [sys.executable, "-c", f"open({str(tmp_path / 'ran_one')!r}, 'a').write('x')"]),
        Stage("two", [sys.executable, "-c", f"import os, sys; sys.exit(0 if os.path.exists({str(flag)!r}) else 3)"]),
    ]
    log = RunLog(plan.root / "run.log", echo=lambda _: None)
    assert execute(plan, plan.stages, log) == 3
    assert plan.done(plan.stages[0]) and not plan.done(plan.stages[1])
    flag.touch()
    assert execute(plan, plan.stages, log) == 0
    assert (tmp_path / "ran_one").read_text() == "x"  # the finished stage did not run again
    assert json.loads(plan.marker(plan.stages[1]).read_text())["stage"] == "two"
    text = (plan.root / "run.log").read_text()
    assert "[one] already done" in text and "failed (exit 3)" in text and "re-run the same" in text


def test_a_missing_checkpoint_stops_the_next_stage(tmp_path: Path) -> None:
    plan = _plan(tmp_path, variant="cot_sft")
    log = RunLog(plan.root / "run.log", echo=lambda _: None)
    assert execute(plan, [plan.stages[2]], log) == 1
    assert "no Hugging Face checkpoint" in (plan.root / "run.log").read_text()


def test_dry_run_on_sample_data(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    out = tmp_path / "demo"
    options = RunOptions(task="spatial_transformation", model="tiny", output_dir=out, model_path=str(tiny_model_dir),
                         dry_run=True, max_rows=4)
    assert run_pipeline(options) == 0, capsys.readouterr().out[-3000:]
    text = capsys.readouterr().out
    assert "preflight: OK" in text and "--dry-run: data and configs are ready" in text and "verl.trainer.main_ppo" in text
    assert (out / "data" / "spatial_transformation" / "rl.parquet").is_file() and (out / ".stages" / "prepare.done").is_file()
    assert "-m verl_reason_rft.cpu.sft" in (out / "plan.sh").read_text()  # no GPU here: the tiny model's plan trains on the CPU
    assert run_pipeline(options) == 0  # re-run: prepare is skipped
    assert "[prepare] already done" in (out / "run.log").read_text()


def test_dry_run_fails_on_a_broken_setting(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    broken = tmp_path / "model"  # a config but no tokenizer or processor: the preflight cannot load them
    broken.mkdir()
    shutil.copy(tiny_model_dir / "config.json", broken / "config.json")
    options = RunOptions(task="visual_counting", model="tiny", output_dir=tmp_path / "o", model_path=str(broken),
                         dry_run=True, max_rows=2)
    assert run_pipeline(options) == 1
    out = capsys.readouterr().out
    assert "preflight: FAILED" in out or "[preflight] crashed" in out, out[-3000:]


# --- inputs recorded in the markers, names and sources checked first, quiet console, plan.sh ---------------


def _cli(argv: list[str]) -> int:
    from verl_reason_rft.cli import main

    return main(argv)


def _dry(tmp_path: Path, tiny_model_dir: Path, **kw) -> RunOptions:
    values = dict(task="visual_counting", model="tiny", output_dir=tmp_path / "o", model_path=str(tiny_model_dir), dry_run=True, max_rows=2)
    values.update(kw)
    return RunOptions(**values)


def test_a_changed_option_stops_naming_the_marker_and_the_option(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    options = _dry(tmp_path, tiny_model_dir)
    assert run_pipeline(options) == 0
    record = json.loads((tmp_path / "o" / ".stages" / "prepare.done").read_text())
    assert record["inputs"]["--sft-size"] == "8" and record["inputs"]["--task"] == "visual_counting"
    plan_before = (tmp_path / "o" / "plan.sh").read_text()
    for change, named in ((dict(sft_size=4), "--sft-size: 8 -> 4"), (dict(task="structure_perception"), "--task: visual_counting -> structure_perception")):
        with pytest.raises(UsageError) as caught:
            run_pipeline(replace(options, **change))
        assert "prepare.done" in str(caught.value) and named in str(caught.value)
        assert (tmp_path / "o" / "plan.sh").read_text() == plan_before  # stopped before writing anything
    assert _cli(["run", "--task", "visual_counting", "--model", "tiny", "--model-path", str(tiny_model_dir), "--output-dir",
                 str(tmp_path / "o"), "--sft-size", "4", "--dry-run"]) == 2
    assert "--sft-size: 8 -> 4" in capsys.readouterr().err
    assert run_pipeline(options) == 0  # the same options again: resumes
    assert "[prepare] already done" in capsys.readouterr().out


def test_marker_inputs_include_those_of_earlier_stages(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    prepare, sft, grpo, evaluation, score, _plot = plan.stages
    assert plan.inputs(score)["--sft-size"] == plan.inputs(prepare)["--sft-size"]
    assert plan.inputs(grpo)["--model"] == "qwen2_vl_7b" and evaluation.after == ("prepare", "grpo")
    for stage in plan.stages:
        write_marker(plan.marker(stage), stage.name, stage.argv, plan.inputs(stage))
    assert plan.stale() == [] and all(plan.done(s) for s in plan.stages[1:])
    assert not plan.done(prepare)  # its marker alone is not enough: no prepare_report.json in O/data
    other = build_plan(RunOptions(task="visual_counting", model="qwen2_vl_7b", output_dir=tmp_path / "O", sft_size=6), None, tmp_path / "ds", 8)
    stale = other.stale()
    assert len(stale) == 6 and all("--sft-size: 1600 -> 6" in line for line in stale)


@pytest.mark.parametrize("task", ["visual_counting", "structure_perception", "spatial_transformation"])
def test_samples_then_run_with_the_default_sft_size(tmp_path: Path, tiny_model_dir: Path, task: str, capsys) -> None:
    data = tmp_path / "samples"
    assert _cli(["samples", "--output-dir", str(data), "--tasks", task]) == 0
    assert _cli(["run", "--task", task, "--dataset-dir", str(data), "--model", "tiny", "--model-path", str(tiny_model_dir),
                 "--output-dir", str(tmp_path / "o"), "--dry-run", "--max-rows", "2"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    import pyarrow.parquet as pq

    rl_rows = pq.read_metadata(tmp_path / "o" / "data" / task / "rl.parquet").num_rows
    sft_rows = pq.read_metadata(tmp_path / "o" / "data" / task / "sft.parquet").num_rows
    assert rl_rows > 0 and sft_rows > 0
    if task == "structure_perception":  # its GRPO split takes every record anyway: the SFT slice may too
        assert rl_rows == 12
    else:
        assert sft_rows == 6 and rl_rows == 6 and "--sft-size" in out and "using 6" in out
    assert "Kwargs passed" not in out + capsys.readouterr().err  # transformers' warnings stay in the logs


def test_an_sft_slice_taking_every_record(tmp_path: Path, sample_dataset_dir: Path, capsys) -> None:
    from verl_reason_rft.data_prep.prepare import prepare

    report = prepare(sample_dataset_dir, tmp_path / "p", tasks=["visual_counting", "structure_perception"], sft_size=1600, verbose=False)
    assert report.outputs["visual_counting/rl.parquet"] == 0
    assert len(report.warnings) == 1 and "--sft-size 1600" in report.warnings[0] and "visual_counting" in report.warnings[0]
    assert _cli(["prepare", "--dataset-dir", str(sample_dataset_dir), "--output-dir", str(tmp_path / "q"), "--tasks", "visual_counting"]) == 0
    assert "WARNING: visual_counting: --sft-size 1600 takes all 12" in capsys.readouterr().out
    # asked for explicitly in `run`: an error before anything is written
    assert _cli(["run", "--task", "visual_counting", "--dataset-dir", str(sample_dataset_dir), "--model", "tiny",
                 "--output-dir", str(tmp_path / "o"), "--sft-size", "12", "--dry-run"]) == 2
    assert "--sft-size 12 takes all 12" in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv,valid", [
    (["run", "--task", "counting", "--model", "tiny"], "valid: spatial_transformation, structure_perception, visual_counting"),
    (["samples", "--tasks", "counting"], "valid: spatial_transformation, structure_perception, visual_counting"),
    (["run", "--task", "visual_counting", "--model", "tiny", "--model-path", "/nope/model"], "--model-path /nope/model: the folder does not exist"),
])
def test_bad_names_are_one_line_and_exit_2_before_any_side_effect(tmp_path: Path, capsys, argv: list[str], valid: str) -> None:
    out = tmp_path / "out"
    assert _cli([*argv, "--output-dir", str(out)]) == 2
    captured = capsys.readouterr()
    assert valid in captured.err and len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err + captured.out
    assert not out.exists()


@pytest.mark.parametrize("env,named", [
    ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
    ({"HF_ENDPOINT": "http://127.0.0.1:9"}, "http://127.0.0.1:9 cannot be reached"),
])
def test_a_hub_model_that_cannot_be_fetched_fails_fast(tmp_path: Path, monkeypatch, capsys, env: dict, named: str) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    start = time.monotonic()
    assert _cli(["run", "--task", "visual_counting", "--model", "qwen2_vl_2b", "--output-dir", str(tmp_path / "o")]) == 2
    assert time.monotonic() - start < 30  # one check, no retries
    err = capsys.readouterr().err
    assert named in err and "Qwen/Qwen2-VL-2B-Instruct" in err and "--model-path" in err and "HF_HUB_OFFLINE" in err
    assert not (tmp_path / "o").exists()


def test_samples_refuse_a_folder_they_did_not_write(tmp_path: Path, monkeypatch, capsys) -> None:
    foreign = tmp_path / "Reason-RFT-CoT-Dataset"
    (foreign / "train_jsons").mkdir(parents=True)
    (foreign / "train_jsons" / "A3-Visual-Counting-train-35k-cot.json").write_text("[]")
    assert _cli(["samples", "--output-dir", str(foreign), "--tasks", "visual_counting"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (foreign / "train_jsons" / "A3-Visual-Counting-train-35k-cot.json").read_text() == "[]"
    assert _cli(["samples", "--output-dir", str(foreign), "--tasks", "visual_counting", "--force"]) == 0
    assert (foreign / "train_jsons" / "A3-Visual-Counting-train-35k-cot.json").read_text() != "[]"
    monkeypatch.chdir(tmp_path)
    assert _cli(["samples", "--tasks", "visual_counting", "--per-task", "4"]) == 0  # own default folder
    first = sorted(p.name for p in (tmp_path / "data" / "samples").rglob("*.png"))
    assert _cli(["samples", "--tasks", "visual_counting", "--per-task", "2"]) == 0  # its own output: regenerated
    again = sorted(p.name for p in (tmp_path / "data" / "samples").rglob("*.png"))
    assert len(again) < len(first) and set(again) <= set(first)


def test_console_shows_our_report_and_the_logs_keep_the_rest(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    assert run_pipeline(_dry(tmp_path, tiny_model_dir, task="structure_perception")) == 0
    captured = capsys.readouterr()
    console = captured.out + captured.err
    for noise in ("Kwargs passed", "dataset len", "Using dataset class", "Generating train split", "\r", "\x1b["):
        assert noise not in console, noise
    assert "preflight: OK" in console and "[prepare] finished in" in console
    assert "dataset len" in (tmp_path / "o" / "logs" / "preflight.log").read_text()


def test_a_failing_stage_shows_the_end_of_its_log(tmp_path: Path, capsys) -> None:
    plan = _plan(tmp_path)
    plan.stages = [Stage("noisy", [sys.executable, "-c", "import sys\nfor i in range(40): print('line', i)\nsys.exit(5)"])]
    lines: list[str] = []
    assert execute(plan, plan.stages, RunLog(plan.root / "run.log", echo=lines.append)) == 5
    shown = "\n".join(lines)
    assert "line 39" in shown and "line 20" in shown and "line 19" not in shown  # the last 20 lines only
    assert "line 0\n" in (plan.root / "logs" / "noisy.log").read_text()
    assert capsys.readouterr().out == ""  # the command's own output never reached the console


def test_an_interrupted_prepare_leaves_no_completion_record(tmp_path: Path, sample_dataset_dir: Path, monkeypatch) -> None:
    from verl_reason_rft.data_prep import prepare as prepare_module

    out = tmp_path / "p"
    prepare_module.prepare(sample_dataset_dir, out, tasks=["visual_counting"], sft_size=4, verbose=False)
    assert prepare_module.completed_inputs(out)["sft_size"] == 4
    real, calls = prepare_module.write_rows, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(prepare_module, "write_rows", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_module.prepare(sample_dataset_dir, out, tasks=["visual_counting"], sft_size=6, verbose=False)
    assert (out / "visual_counting" / "sft.parquet").is_file() and prepare_module.completed_inputs(out) is None


def test_run_redoes_a_prepare_without_its_completion_record(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    options = _dry(tmp_path, tiny_model_dir)
    assert run_pipeline(options) == 0
    (tmp_path / "o" / "data" / "prepare_report.json").unlink()  # what an interrupted re-prepare leaves
    capsys.readouterr()
    assert run_pipeline(options) == 0
    out = capsys.readouterr().out
    assert "[prepare] started" in out and "already done" not in out


def test_plan_sh_runs_as_printed_and_skips_done_stages(tmp_path: Path, tiny_model_dir: Path) -> None:
    assert run_pipeline(_dry(tmp_path, tiny_model_dir)) == 0
    root = tmp_path / "o"
    for role in ("sft", "grpo"):
        (root / "checkpoints" / role).mkdir(parents=True)
        (root / "checkpoints" / role / TRACKER).write_text("3")
    calls = tmp_path / "calls.jsonl"
    fake = tmp_path / "python"  # stands in for the interpreter: records each command
    fake.write_text(f"#!{sys.executable}\nimport json, sys\nopen({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    fake.chmod(0o755)
    result = subprocess.run(["bash", str(root / "plan.sh")], env={**os.environ, "PYTHON": str(fake)}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "prepare: done" in result.stdout
    ran = [json.loads(line) for line in calls.read_text().splitlines()]
    # no GPU here: the tiny model's plan is the CPU one (verl_reason_rft.cpu.sft); eval, score, plot
    assert [argv[1] for argv in ran] == ["verl_reason_rft.cpu.sft", "verl.trainer.main_ppo", *["verl_reason_rft"] * 3]
    assert f"sft_checkpoint={root}/checkpoints/sft/global_step_3/huggingface" in ran[1]
    assert ran[2][ran[2].index("--model") + 1] == f"{root}/checkpoints/grpo/global_step_3/actor/huggingface"


def test_training_summary_shows_the_steps_and_warns_on_a_zero_reward_spread(tmp_path: Path) -> None:
    from verl_reason_rft.pipeline import training_summary

    def write(name: str, spreads: list[float]) -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps({"step": i + 1, "data": {"critic/score/mean": 0.5, "critic/score/min": 0.0,
                                                                    "critic/score/max": spread, "actor/grad_norm": 0.1}}) + "\n"
                                for i, spread in enumerate(spreads)))
        return path

    flat = training_summary("grpo", write("flat.jsonl", [0.0, 0.0]))
    assert "2 steps logged" in flat and "step 1: reward 0.5, grad_norm 0.1" in flat and "advantages were all zero" in flat
    assert "advantages were all zero" not in training_summary("grpo", write("varied.jsonl", [0.0, 2.0]))
    assert "no step metrics" in training_summary("grpo", tmp_path / "missing.jsonl")
