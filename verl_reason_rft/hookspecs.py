"""Hook specifications for Reason-RFT task plugins (pluggy).

A plugin is any module with functions marked ``@hookimpl``, exposed through the
``reason_rft.tasks`` entry-point group. The built-in tasks in
``verl_reason_rft.rewards`` are registered exactly that way.
"""

from __future__ import annotations

import pluggy

from verl_reason_rft.task_spec import TaskSpec

PROJECT = "reason_rft"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def reason_rft_tasks() -> list[TaskSpec]:
    """Return the tasks this plugin provides.

    Each :class:`TaskSpec` names the ``data_source`` values it owns; a task name or
    data source claimed by two plugins is an error that names both.
    """
