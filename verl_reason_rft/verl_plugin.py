"""Target of our ``verl.plugins`` entry point: verl imports it in every process that imports verl.

Importing it registers the ``reason_rft`` reward manager, and arranges for ``trainer_mode=reason_rft``
to register as soon as the process imports verl's trainer registry
(:mod:`verl_reason_rft.trainer_registration`). verl logs a failing plugin only at DEBUG, so a failure here is logged at WARNING and kept in :data:`LOAD_ERROR` for
``reason-rft doctor`` instead of being raised into verl's silence.
"""

from __future__ import annotations

import logging
import traceback

logger = logging.getLogger(__name__)

#: the traceback of a failed registration, or None
LOAD_ERROR: str | None = None

try:
    from verl_reason_rft import reward_manager as _reward_manager  # noqa: F401  (registers "reason_rft")
except Exception:  # noqa: BLE001 - anything here would otherwise vanish at DEBUG level
    LOAD_ERROR = traceback.format_exc()
    logger.warning(
        "verl-reason-rft: registering the 'reason_rft' reward manager failed; run `reason-rft doctor`.\n%s", LOAD_ERROR
    )

try:
    # trainer.v1.trainer_mode=reason_rft: registered when this process imports verl's trainer registry
    # (verl.trainer.ppo.v1), so only the processes that look trainers up import our trainer
    from verl_reason_rft.trainer_registration import install as _install_trainer_registration

    _install_trainer_registration()
except Exception:  # noqa: BLE001 - same reason: verl would hide it at DEBUG level
    LOAD_ERROR = (LOAD_ERROR or "") + traceback.format_exc()
    logger.warning("verl-reason-rft: installing the trainer_mode=reason_rft registration failed.\n%s", LOAD_ERROR)

#: the traceback of a failed CPU-kit activation (VERL_PLATFORM=cpu), or None; also appended to LOAD_ERROR
CPU_LOAD_ERROR: str | None = None

try:
    # VERL_PLATFORM=cpu only (a no-op otherwise): the CPU platform and the hf_cpu rollout backend,
    # registered before verl first resolves its platform (verl_reason_rft/cpu/__init__.py)
    from verl_reason_rft.cpu import activate as _activate_cpu_kit

    _activate_cpu_kit()
except Exception:  # noqa: BLE001 - same reason as above: verl would hide it at DEBUG level
    CPU_LOAD_ERROR = traceback.format_exc()
    LOAD_ERROR = (LOAD_ERROR or "") + CPU_LOAD_ERROR
    logger.warning("verl-reason-rft: activating the CPU kit (VERL_PLATFORM=cpu) failed.\n%s", CPU_LOAD_ERROR)
