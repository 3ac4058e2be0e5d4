"""The ``gpu`` extra installs exactly the stack verl 0.9.1 was built and tested with (its ``vllm`` extra).

Our METADATA is generated from the checkout's setup.py (setuptools' ``dist_info``, offline); verl's is the
installed ``verl-0.9.1.dist-info/METADATA``. Both are read with importlib.metadata and compared with packaging.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]


def _extra(requirements: list[str], extra: str) -> set[Requirement]:
    """The requirements that apply only when ``extra`` is requested (marker ``extra == "<extra>"``)."""
    out = set()
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and req.marker.evaluate({"extra": extra}) and not req.marker.evaluate({"extra": ""}):
            req.marker = None
            out.add(req)
    return out


def _key(req: Requirement) -> tuple:
    return (req.name.lower().replace("_", "-"), tuple(sorted(req.extras)), str(req.specifier))


@pytest.fixture(scope="module")
def our_metadata(tmp_path_factory) -> metadata.Distribution:
    src = tmp_path_factory.mktemp("src")
    shutil.copy(REPO / "setup.py", src)
    for folder in ("verl_reason_rft", "recipes", "rewards", "data_prep"):
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "out").mkdir()
    result = subprocess.run([sys.executable, "setup.py", "-q", "dist_info", "--output-dir", "out"], cwd=src,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (dist,) = metadata.distributions(path=[str(src / "out")])
    return dist


def test_gpu_extra_is_verls_vllm_stack(our_metadata):
    verl = metadata.distribution("verl")
    assert verl.version == "0.9.1"
    verl_vllm = _extra(verl.requires, "vllm")
    assert {"vllm", "torch", "transformers"} <= {r.name for r in verl_vllm}  # the extra we mean exists

    gpu = _extra(our_metadata.requires, "gpu")
    expanded: set[Requirement] = set()
    for req in gpu:
        if req.name == "verl":
            assert str(req.specifier) == f"=={verl.version}", f"the gpu extra pins {req}, the tests run verl {verl.version}"
            for extra in req.extras:
                expanded |= _extra(verl.requires, extra)
        else:
            expanded.add(req)
    assert sorted(map(_key, expanded)) == sorted(map(_key, verl_vllm))
    pins = {r.name: str(r.specifier) for r in expanded}
    assert pins["vllm"] == "==0.24.0" and pins["torch"] == "==2.11.0" and pins["transformers"] == "==5.9.0"


def test_gpu_extra_has_no_flash_attn_sdist(our_metadata):
    """PyPI's flash-attn sdist imports torch in setup.py: inside an extra, pip's isolated build fails."""
    assert "flash-attn" not in {r.name for r in _extra(our_metadata.requires, "gpu")}


def test_tests_run_the_gpu_stacks_transformers(our_metadata):
    """The CPU test suite (the `test` extra) pins the transformers that verl's `vllm` extra pins."""
    verl_pin = {r.name: str(r.specifier) for r in _extra(metadata.distribution("verl").requires, "vllm")}["transformers"]
    ours = {r.name: str(r.specifier) for r in _extra(our_metadata.requires, "test")}
    assert ours.get("transformers") == verl_pin
