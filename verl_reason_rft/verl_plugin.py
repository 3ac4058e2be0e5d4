"""Target of our ``verl.plugins`` entry point: verl imports it in every process that imports verl.

Importing it registers the ``reason_rft`` reward manager, arranges for ``trainer_mode=reason_rft``
to register as soon as the process imports verl's trainer registry
(:mod:`verl_reason_rft.trainer_registration`), and, with ``VERL_PLATFORM=cpu`` only, activates the
CPU kit (:mod:`verl_reason_rft.cpu`) before verl first resolves its platform. verl logs a failing
plugin only at DEBUG, so each failure here is logged at WARNING and kept in :data:`LOAD_ERROR` for
``reason-rft doctor`` instead of being raised into verl's silence.
"""

from __future__ import annotations

import importlib
import logging
import traceback

logger = logging.getLogger(__name__)

#: the tracebacks of failed registrations, or None
LOAD_ERROR: str | None = None

#: (what, module, function to call or None): each step is independent of the others
_STEPS = (
    ("registering the 'reason_rft' reward manager", "verl_reason_rft.reward_manager", None),
    ("installing the trainer_mode=reason_rft registration", "verl_reason_rft.trainer_registration", "install"),
    ("activating the CPU kit (VERL_PLATFORM=cpu)", "verl_reason_rft.cpu", "activate"),
)

for _what, _module, _function in _STEPS:
    try:
        _loaded = importlib.import_module(_module)
        if _function:
            getattr(_loaded, _function)()
    except Exception:  # noqa: BLE001 - anything here would otherwise vanish at DEBUG level
        _trace = traceback.format_exc()
        LOAD_ERROR = (LOAD_ERROR or "") + _trace
        logger.warning("verl-reason-rft: %s failed; run `reason-rft doctor`.\n%s", _what, _trace)
