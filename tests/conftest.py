"""Shared fixtures: everything is built offline (no model or dataset download)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised tiny Qwen2-VL (tokenizer trained on the fly, real image processor)."""
    from verl_reason_rft.tiny_model import build_tiny_qwen2_vl

    return build_tiny_qwen2_vl(tmp_path_factory.mktemp("tiny_qwen2_vl"))


@pytest.fixture(scope="session")
def qwen25_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with a Qwen2.5-VL processor config: ``Qwen2_5_VLProcessor`` and the image settings as
    Qwen2.5-VL's ``preprocessor_config.json`` writes them (top-level ``min_pixels``/``max_pixels``, no ``size``),
    with tighter bounds (16..256 merged patches) than the tiny Qwen2-VL's so the processor-side resize matters."""
    import json
    import shutil

    out = tmp_path_factory.mktemp("tiny_qwen25_vl") / "model"
    shutil.copytree(tiny_model_dir, out)
    config = json.loads((out / "processor_config.json").read_text())
    image = config.pop("image_processor")
    (out / "preprocessor_config.json").write_text(json.dumps({
        "min_pixels": 16 * 28 * 28, "max_pixels": 256 * 28 * 28, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": image["image_mean"], "image_std": image["image_std"],
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
    }))
    (out / "processor_config.json").write_text(json.dumps({"processor_class": "Qwen2_5_VLProcessor", "video_processor": config["video_processor"]}))
    return out


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
