"""A third-party task plugin, pip-installed from a real package, as a user would add one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SETUP = """
from setuptools import setup
setup(name={dist!r}, version="0.1.0", py_modules=[{module!r}],
      entry_points={{"reason_rft.tasks": ["{ep} = {module}"]}})
"""
DEMO = '''
import re, time
from verl_reason_rft.hookspecs import hookimpl
from verl_reason_rft.task_spec import TaskSpec

def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    if "SLEEP" in solution_str:
        time.sleep(600)
    if "RAISE" in solution_str:
        raise RuntimeError("demo reward bug")
    match = re.search(r"<answer>(.*?)</answer>", solution_str, re.S)
    accuracy = float(match is not None and match.group(1).strip() == ground_truth.strip())
    return {"score": accuracy, "format": float(match is not None), "accuracy": accuracy}

def score_prediction(data_source, prediction, answer, mode="paper"):
    return compute_score(data_source, prediction, answer)["accuracy"]

TASK = TaskSpec(name="demo_shapes", data_sources=("demo_shapes_bench",), compute_score=compute_score,
                score_prediction=score_prediction, accuracy_modes=("exact",),
                prompts={"cot": "{problem} Think in <think> </think>, answer in <answer> </answer>.", "ans": "{problem}"})

@hookimpl
def reason_rft_tasks():
    return [TASK]
'''
DUPLICATE = '''
from verl_reason_rft.hookspecs import hookimpl
from verl_reason_rft.task_spec import TaskSpec
from verl_reason_rft.rewards.visual_counting import TASK

@hookimpl
def reason_rft_tasks():
    return [TaskSpec(name="my_counting", data_sources=("clevr_math",), compute_score=TASK.compute_score,
                     score_prediction=TASK.score_prediction, prompts=dict(TASK.prompts))]
'''


def _pip_install(source: Path, target: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, cwd=source)
    return target


def _package(root: Path, dist: str, module: str, ep: str, code: str) -> Path:
    root.mkdir(parents=True)
    (root / "setup.py").write_text(SETUP.format(dist=dist, module=module, ep=ep))
    (root / f"{module}.py").write_text(textwrap.dedent(code))
    return root


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("demo_plugin")
    return _pip_install(_package(tmp / "src", "rrft-demo-task", "rrft_demo_task", "demo_task", DEMO), tmp / "site")


@pytest.fixture(scope="module")
def duplicate_site(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("dup_plugin")
    return _pip_install(_package(tmp / "src", "rrft-dup-task", "rrft_dup_task", "dup_counting", DUPLICATE),
                        tmp / "site")


def _cli(*args: str, site: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run([sys.executable, "-m", "verl_reason_rft", *args], capture_output=True, text=True,
                          env=environ, cwd=site)


def test_installed_plugin_is_listed_with_its_distribution(demo_site):
    assert (demo_site / "rrft_demo_task-0.1.0.dist-info" / "entry_points.txt").is_file()
    result = _cli("tasks", "--json", site=demo_site)
    assert result.returncode == 0, result.stderr
    rows = {row["task"]: row for row in json.loads(result.stdout)}
    assert rows["demo_shapes"]["plugin"] == "demo_task (rrft-demo-task 0.1.0)"
    assert rows["demo_shapes"]["data sources"] == "demo_shapes_bench"
    assert {"visual_counting", "structure_perception", "spatial_transformation"} <= set(rows)
    table = _cli("tasks", site=demo_site).stdout
    assert "demo_shapes" in table and "rrft-demo-task 0.1.0" in table


def test_blocked_plugin_disappears(demo_site):
    result = _cli("tasks", "--json", site=demo_site, REASON_RFT_BLOCK_PLUGINS="demo_task")
    assert result.returncode == 0, result.stderr
    assert "demo_shapes" not in {row["task"] for row in json.loads(result.stdout)}


def test_duplicate_claim_fails_naming_both_plugins(duplicate_site):
    result = _cli("tasks", site=duplicate_site)
    assert result.returncode == 2
    assert "'clevr_math'" in result.stderr and "visual_counting (verl-reason-rft" in result.stderr
    assert "dup_counting (rrft-dup-task 0.1.0)" in result.stderr
    assert _cli("tasks", site=duplicate_site, REASON_RFT_BLOCK_PLUGINS="dup_counting").returncode == 0


@pytest.fixture
def demo_on_path(demo_site):
    from verl_reason_rft.process_pool import shared_pool
    from verl_reason_rft.reward_manager import Settings
    from verl_reason_rft.tasks import reset_registry

    sys.path.insert(0, str(demo_site))  # spawned scoring workers inherit sys.path
    reset_registry()
    yield demo_site
    sys.path.remove(str(demo_site))
    reset_registry()
    shared_pool(1, Settings().preload).close()  # its workers loaded the demo plugin


def test_compute_score_routes_to_the_plugin(demo_on_path):
    from verl_reason_rft.scoring import compute_score

    assert compute_score("demo_shapes_bench", "<answer>square</answer>", "square")["accuracy"] == 1.0
    assert compute_score("demo_shapes", "<answer>circle</answer>", "square")["score"] == 0.0


async def test_reward_manager_scores_the_plugin_task_with_a_timeout(demo_on_path, ppo_config, tokenizer,
                                                                    make_sample):
    from verl.trainer.ppo.reward import load_reward_manager

    config = ppo_config("reward.reward_manager.name=reason_rft", "+reward.reason_rft.timeout_s=5",
                        "+reward.reason_rft.num_processes=1")  # one worker: a pool of its own (fresh registry)
    manager = load_reward_manager(config, tokenizer)
    good = await manager.run_single(make_sample("<answer>3</answer>", "3", data_source="demo_shapes_bench"))
    assert good["reward_score"] == 1.0 and good["reward_extra_info"]["error"] == 0.0
    start = time.perf_counter()
    slow = await manager.run_single(make_sample("SLEEP <answer>3</answer>", "3", data_source="demo_shapes_bench"))
    assert time.perf_counter() - start < 30
    assert slow["reward_score"] == 0.0 and slow["reward_extra_info"]["timeout"] == 1.0
    assert list(slow["reward_extra_info"]) == list(good["reward_extra_info"])
    broken = await manager.run_single(make_sample("RAISE <answer>3</answer>", "3", data_source="demo_shapes_bench"))
    assert broken["reward_score"] == 0.0
    assert broken["reward_extra_info"]["error"] == 1.0 and broken["reward_extra_info"]["timeout"] == 0.0
    assert list(broken["reward_extra_info"]) == list(good["reward_extra_info"])


def _readme_block(readme: str, caption: str, language: str) -> str:
    start = readme.index(f"{caption}\n\n```{language}\n") + len(f"{caption}\n\n```{language}\n")
    return readme[start:readme.index("```", start)]


def test_the_readme_plugin_example_installs_and_scores(tmp_path):
    """The README's "Write your own task reward" package, exactly as printed there."""
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    src = tmp_path / "my-shapes-task"
    src.mkdir()
    (src / "pyproject.toml").write_text(_readme_block(readme, "`pyproject.toml`:", "toml"))
    (src / "my_shapes_task.py").write_text(_readme_block(readme, "`my_shapes_task.py`:", "python"))
    site = _pip_install(src, tmp_path / "site")

    listed = _cli("tasks", "--json", site=site)
    assert listed.returncode == 0, listed.stderr
    rows = {row["task"]: row for row in json.loads(listed.stdout)}
    assert rows["shape_naming"]["plugin"] == "my_shapes (my-shapes-task 0.1.0)"
    assert rows["shape_naming"]["data sources"] == "shapes_id, shapes_ood"

    code = ("from verl_reason_rft.scoring import compute_score\n"
            "from verl_reason_rft.evaluation import score_prediction\n"
            "print(compute_score('shapes_id', '<think>round</think> <answer>Circle</answer>', 'circle'))\n"
            "print(compute_score('shape_naming', 'a square', 'circle'))\n"
            "print(score_prediction('shapes_ood', '<answer>circle</answer>', 'circle'))\n")
    scored = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=site,
                            env={**os.environ, "PYTHONPATH": str(site)})
    assert scored.returncode == 0, scored.stderr
    assert scored.stdout.splitlines() == ["{'score': 2.0, 'format': 1.0, 'accuracy': 1.0}",
                                          "{'score': 0.0, 'format': 0.0, 'accuracy': 0.0}", "1.0"]
