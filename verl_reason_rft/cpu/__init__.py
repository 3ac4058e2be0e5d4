"""CPU training kit: real verl 0.9.1 SFT and GRPO steps on a machine without an accelerator.

Opt-in and inert elsewhere: nothing here changes verl unless ``VERL_PLATFORM=cpu`` is set.

* :mod:`.platform` - the ``cpu`` platform for verl's ``PlatformRegistry`` (never auto-detected);
* :mod:`.hf_server`, :mod:`.rollout`, :mod:`.registry` - a rollout backend (``rollout.name=hf_cpu``) running HF
  transformers ``generate`` in a Ray actor, with log-probs and vision tokens suppressed;
* :mod:`.engine` - verl's FSDP engine registered for device ``cpu`` plus the one scoped
  override verl 0.9.1 needs on CPU (the reference model's pinned-memory offload policy);
* :mod:`.workers`, :mod:`.trainer` - ``trainer.v1.trainer_mode=reason_rft_cpu``: our
  ``ReasonRFTTrainer`` whose Ray workers open a gloo process group first;
* :mod:`.sft` - ``python -m verl_reason_rft.cpu.sft <hydra overrides>``: gloo, then verl's SFT trainer;
* :mod:`.settings` - the extra CLI overrides per stage (``recipes/cpu/*.yaml`` holds the config).

:func:`activate` is called from the ``verl.plugins`` entry point and from the modules named in
``VERL_USE_EXTERNAL_MODULES`` (which verl imports before the entry points), so every process
registers the platform before verl first resolves it. This module imports nothing heavy.
"""

from __future__ import annotations

import os

#: the VERL_PLATFORM value that selects the kit
PLATFORM_NAME = "cpu"
#: rollout.name of the HF transformers rollout backend
ROLLOUT_NAME = "hf_cpu"
#: trainer.v1.trainer_mode of the CPU trainer
TRAINER_NAME = "reason_rft_cpu"


def is_selected() -> bool:
    """Whether this process runs with ``VERL_PLATFORM=cpu``."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME


def activate() -> bool:
    """Register the CPU platform and rollout backend with verl when ``VERL_PLATFORM=cpu``; idempotent.

    Returns whether the kit is active. With ``VERL_PLATFORM`` unset (or another platform) this
    does nothing at all, so GPU runs see verl exactly as shipped.
    """
    if not is_selected():
        return False
    from verl_reason_rft.cpu.platform import register_platform
    from verl_reason_rft.cpu.registry import register_rollout

    register_platform()
    register_rollout()
    return True
