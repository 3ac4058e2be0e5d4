"""Shared fixtures: everything is built offline (no model or dataset download)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

VENDOR = Path(__file__).parent / ".vendor"


def _use_vendored_torchvision() -> None:
    """Make transformers' Qwen2-VL processor and qwen-vl-utils importable on a CPU-only torch.

    The test command installs PyPI's torchvision wheel into ``tests/.vendor`` (``--no-deps``). That
    wheel is a CUDA build: its C++ ops cannot load against torch's CPU wheel, and its import then
    stops while registering fake kernels for two of those ops. Declaring the two op schemas lets
    the pure-Python parts import (the image/video transforms the processor and verl's image loader
    use); no torchvision C++ op is ever called. Nothing happens where torchvision works already.
    """
    try:
        import torchvision  # noqa: F401

        return
    except ImportError:
        if not VENDOR.is_dir():
            return
    sys.path.insert(0, str(VENDOR))
    import torch

    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        sys.modules.pop("torchvision", None)
        lib = torch.library.Library("torchvision", "DEF")  # kept alive below: the schemas live with it
        for op in ("nms", "qnms"):
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _use_vendored_torchvision.library = lib
        import torchvision  # noqa: F401


_use_vendored_torchvision()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised tiny Qwen2-VL (tokenizer trained on the fly, real image processor)."""
    from verl_reason_rft.tiny_model import build_tiny_qwen2_vl

    return build_tiny_qwen2_vl(tmp_path_factory.mktemp("tiny_qwen2_vl"))


@pytest.fixture(scope="session")
def sample_dataset_dir(tmp_path_factory) -> Path:
    """A generated dataset in the downloaded Reason-RFT-CoT-Dataset layout, all three tasks."""
    from verl_reason_rft.data_prep.samples import generate_samples

    return generate_samples(tmp_path_factory.mktemp("samples") / "Reason-RFT-CoT-Dataset", per_task=12, seed=0)


@pytest.fixture(scope="session")
def prepared_dir(sample_dataset_dir, tmp_path_factory) -> Path:
    """``prepare`` run on the sample dataset, with a 4-record SFT slice so every split has rows."""
    from verl_reason_rft.data_prep.prepare import prepare

    out = tmp_path_factory.mktemp("prepared")
    prepare(dataset_dir=sample_dataset_dir, output_dir=out, sft_size=4)
    return out


@pytest.fixture
def register_task_plugin(monkeypatch):
    """``register(plugin, name)``: the task registry, for this test, is the installed plugins plus ``plugin``."""
    from verl_reason_rft import tasks

    def register(plugin: object, name: str) -> None:
        manager = tasks.get_plugin_manager()
        manager.register(plugin, name=name)
        registry = tasks.build_registry(manager)
        monkeypatch.setattr(tasks, "get_registry", lambda: registry)

    return register
