"""Target of our ``verl.plugins`` entry point: verl imports it in every process that imports verl.

Importing it registers the ``reason_rft`` reward manager. verl logs a failing plugin only
at DEBUG, so a failure here is logged at WARNING and kept in :data:`LOAD_ERROR` for
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
