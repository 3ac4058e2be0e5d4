"""What a pipeline adds to a stage's command line to run it on the CPU (the config is ``recipes/cpu/``).

    env = {**os.environ, **cpu_env()}
    sft:  [python, "-m", SFT_MODULE, <recipe args>, *cpu_overrides("sft")]
    grpo: [python, "-m", "verl.trainer.main_ppo", <recipe args>, *cpu_overrides("grpo")]
"""

from __future__ import annotations

from verl_reason_rft.cpu import PLATFORM_NAME

#: the CPU SFT entry (replaces ``torchrun -m verl.trainer.sft_trainer``; torchrun with one process also works)
SFT_MODULE = "verl_reason_rft.cpu.sft"

#: stage -> option of the ``cpu`` config group (recipes/cpu/<option>.yaml)
STAGE_OPTIONS = {"sft": "sft", "grpo": "grpo"}


def cpu_env() -> dict[str, str]:
    """Environment of a CPU stage: the driver resolves verl's platform before Ray starts."""
    return {"VERL_PLATFORM": PLATFORM_NAME}


def cpu_overrides(stage: str, rows: int | None = None) -> list[str]:
    """Hydra overrides that put ``stage`` (``sft`` or ``grpo``) on the CPU; all settings live in the config group.

    ``rows``: the training rows when known. verl drops the last incomplete batch, so a split smaller than
    the group's batch would train 0 steps (SFT then fails dividing by zero): the batch shrinks to fit.
    """
    if stage not in STAGE_OPTIONS:
        raise ValueError(f"no CPU settings for stage {stage!r}; stages: {', '.join(STAGE_OPTIONS)}")
    overrides = [f"cpu={STAGE_OPTIONS[stage]}"]
    batch = _group_batch_size(STAGE_OPTIONS[stage])
    if rows is not None and 0 < rows < batch:
        overrides.append(f"data.train_batch_size={rows}")
        if stage == "sft":
            overrides.append(f"data.micro_batch_size_per_gpu={rows}")
    return overrides


def _group_batch_size(option: str) -> int:
    """``data.train_batch_size`` of ``recipes/cpu/<option>.yaml``."""
    from importlib import resources

    import yaml

    text = resources.files("verl_reason_rft.recipes.cpu").joinpath(f"{option}.yaml").read_text(encoding="utf-8")
    return int(yaml.safe_load(text)["data"]["train_batch_size"])
