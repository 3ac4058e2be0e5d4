"""``reason-rft doctor`` in fresh processes, against the real ``import verl``."""

from __future__ import annotations

import os
import subprocess
import sys

BUILTINS = "visual_counting,structure_perception,spatial_transformation"


def _doctor(tmp_path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("VERL_USE_EXTERNAL_PLUGINS", "REASON_RFT_BLOCK_PLUGINS")}
    return subprocess.run([sys.executable, "-m", "verl_reason_rft", "doctor"], capture_output=True, text=True,
                          env={**environ, **env}, cwd=tmp_path)


def test_green_against_the_real_verl_import(tmp_path):
    result = _doctor(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✘" not in result.stdout
    assert "✔ reward manager 'reason_rft': resolves to verl_reason_rft.reward_manager.ReasonRFTRewardManager" in result.stdout
    assert "✔ verl loaded the plugin" in result.stdout and "checks passed" in result.stdout
    assert "✔ trainer_mode 'reason_rft': resolves to verl_reason_rft.trainer.ReasonRFTTrainer" in result.stdout


def test_missing_torchvision_is_a_warning_not_a_failure(monkeypatch, capsys):
    from verl_reason_rft import doctor

    monkeypatch.setitem(sys.modules, "torchvision", None)  # `import torchvision` now raises ImportError
    check = doctor.check_vision_stack()
    assert not check.ok and not check.required
    assert check.render().startswith("⚠ torchvision (image processing): cannot import torchvision")
    monkeypatch.setattr(doctor, "CHECKS", (doctor.check_task_registry, doctor.check_vision_stack))
    assert doctor.main() == 0
    assert "1/2 checks passed, 1 warning(s)" in capsys.readouterr().out


def test_red_when_verl_plugins_are_disabled(tmp_path):
    result = _doctor(tmp_path, VERL_USE_EXTERNAL_PLUGINS="none")
    assert result.returncode == 1
    lines = result.stdout
    assert "✘ VERL_USE_EXTERNAL_PLUGINS" in lines and "✘ reward manager 'reason_rft'" in lines
    assert "Unknown reward manager: reason_rft" in lines and "fix: " in lines
    assert "✘ verl loaded the plugin" in lines
    assert "✘ trainer_mode 'reason_rft'" in lines and "Unknown trainer 'reason_rft'" in lines
    assert "trainer.v1.trainer_mode=sync" in lines  # the fix is named


def test_red_when_every_task_plugin_is_blocked(tmp_path):
    result = _doctor(tmp_path, REASON_RFT_BLOCK_PLUGINS=BUILTINS)
    assert result.returncode == 1
    assert "✘ task registry: no tasks registered" in result.stdout
    assert "✔ reward manager 'reason_rft'" in result.stdout  # the rest still checked
