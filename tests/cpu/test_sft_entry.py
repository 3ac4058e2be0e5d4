"""One real SFT step on the CPU through ``python -m verl_reason_rft.cpu.sft`` (gloo + verl's SFTTrainer)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from verl_reason_rft.cpu.settings import SFT_MODULE, cpu_env, cpu_overrides

pytest.importorskip("torchvision")


def test_one_sft_step_writes_a_changed_hf_checkpoint(tiny_model_dir, prepared_dir, tmp_path):
    out = tmp_path / "sft"
    cmd = [
        sys.executable, "-m", SFT_MODULE,
        "--config-path=pkg://verl_reason_rft.recipes", "--config-name=reason_rft_sft",
        *cpu_overrides("sft"),
        "task=spatial_transformation", "model=tiny", f"model.path={tiny_model_dir}", f"data_dir={prepared_dir}",
        "data.train_batch_size=4", "data.micro_batch_size_per_gpu=4", "trainer.total_epochs=1",
        f"trainer.default_local_dir={out}", "trainer.logger=[console]",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERL_")}
    env.update(cpu_env())
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "train/loss" in proc.stdout

    hf_dir = out / "global_step_1" / "huggingface"
    trained = load_file(next(hf_dir.glob("*.safetensors")))
    initial = load_file(next(tiny_model_dir.glob("*.safetensors")))
    assert trained.keys() == initial.keys()
    changed = [k for k in initial if not (trained[k].float() == initial[k].float()).all()]
    assert len(changed) > len(initial) // 2, f"only {len(changed)} of {len(initial)} tensors changed"
