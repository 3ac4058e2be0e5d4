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
