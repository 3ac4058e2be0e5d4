"""A plain (non-editable) ``pip install .`` into a fresh virtual environment gives a working plugin."""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(".git", "*.egg-info", "__pycache__", "build", "dist", "runs", "tests", ".hypothesis",
                              ".whl", "docs", "benchmarks")

PROBE = textwrap.dedent("""
    import importlib, importlib.util, json, sys
    from importlib import resources
    import verl
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
    from verl.utils.import_utils import load_extern_object
    import verl_reason_rft, verl_reason_rft.rewards, verl_reason_rft.recipes, verl_reason_rft.data_prep
    scorer = load_extern_object(module_path="pkg://verl_reason_rft.scoring", object_name="compute_score")
    recipes = resources.files("verl_reason_rft.recipes")
    print(json.dumps({
        "package": verl_reason_rft.__file__,
        "rewards": verl_reason_rft.rewards.__file__,
        "recipes": verl_reason_rft.recipes.__file__,
        "data_prep": verl_reason_rft.data_prep.__file__,
        "manager": sys.modules[get_reward_manager_cls("reason_rft").__module__].__file__,
        "scorer": sys.modules[scorer.__module__].__file__,
        "yaml": sorted(str(p.relative_to(recipes)) for p in __import__("pathlib").Path(str(recipes)).rglob("*.yaml")),
        "prompts_yaml": resources.files("verl_reason_rft.rewards").joinpath("prompts.yaml").is_file(),
    }))
""")


def _running_site_dirs() -> list[str]:
    """The running interpreter's package folders (a venv's own ones when it runs in a venv)."""
    paths = sysconfig.get_paths()
    dirs = [paths["purelib"], paths["platlib"], *site.getsitepackages()]
    if site.ENABLE_USER_SITE and Path(site.getusersitepackages()).is_dir():
        dirs.append(site.getusersitepackages())
    return [d for d in dict.fromkeys(dirs) if Path(d).is_dir()]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv that sees the *running* environment's packages (verl, torch, pip, setuptools) after its own.

    ``--system-site-packages`` would reach the base interpreter's site-packages instead when the
    tests run inside a venv (old setuptools without ``bdist_wheel``, none of the test extra). A
    ``.pth`` file with plain folder lines puts the running environment's folders on ``sys.path``
    behind the venv's own site-packages; their ``.pth`` files (our editable install) are not run,
    so the non-editable copy installed here is the one imported. Offline: no build isolation.
    """
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "src"
    shutil.copytree(REPO, source, ignore=SKIP)  # no build folders land in the checkout
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True)
    python = tmp / "venv" / "bin" / "python"
    (_site(tmp / "venv") / "_running_env.pth").write_text("\n".join(_running_site_dirs()) + "\n")
    # the running environment's pip and setuptools build the wheel and install it into the venv
    result = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", str(source)],
                            cwd=tmp, capture_output=True, text=True)
    assert result.returncode == 0, (f"pip install of a copy of the checkout failed (setuptools>=70.1 of the test extra builds "
                                    f"the wheel offline):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return tmp / "venv"


def _site(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def test_installed_copy_is_the_one_imported_and_verl_resolves_it(venv, tmp_path):
    result = subprocess.run([str(venv / "bin" / "python"), "-c", PROBE], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    site = str(_site(venv))
    for key in ("package", "rewards", "recipes", "data_prep", "manager", "scorer"):
        assert found[key].startswith(site), (key, found[key])
    source_yaml = sorted(str(p.relative_to(REPO / "recipes")) for p in (REPO / "recipes").rglob("*.yaml"))
    assert found["yaml"] == source_yaml and found["prompts_yaml"]


def test_no_top_level_rewards_or_recipes_installed(venv):
    site = _site(venv)
    assert not (site / "rewards").exists() and not (site / "recipes").exists() and not (site / "data_prep").exists()
    record = next(site.glob("verl_reason_rft-*.dist-info")) / "RECORD"
    installed = [line.split(",", 1)[0] for line in record.read_text().splitlines()]
    tops = {path.split("/", 1)[0] for path in installed if not path.startswith("..")}  # ../../../bin: scripts
    assert tops == {"verl_reason_rft", next(site.glob("verl_reason_rft-*.dist-info")).name}


def test_doctor_passes_in_the_venv(venv, tmp_path):
    result = subprocess.run([str(venv / "bin" / "reason-rft"), "doctor"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "from verl-reason-rft 0.1.0" in result.stdout
