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


def cpu_overrides(stage: str) -> list[str]:
    """Hydra overrides that put ``stage`` (``sft`` or ``grpo``) on the CPU; all settings live in the config group."""
    if stage not in STAGE_OPTIONS:
        raise ValueError(f"no CPU settings for stage {stage!r}; stages: {', '.join(STAGE_OPTIONS)}")
    return [f"cpu={STAGE_OPTIONS[stage]}"]
