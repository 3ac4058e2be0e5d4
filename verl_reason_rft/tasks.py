"""The task registry: every ``TaskSpec`` from every plugin, looked up by name or data source.

Plugins load lazily, on first use, from the ``reason_rft.tasks`` entry-point group
(the built-in tasks included). ``REASON_RFT_BLOCK_PLUGINS=name1,name2`` blocks
entry points by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import pluggy

from verl_reason_rft import hookspecs
from verl_reason_rft.task_spec import TaskSpec

ENTRY_POINT_GROUP = "reason_rft.tasks"
BLOCK_ENV = "REASON_RFT_BLOCK_PLUGINS"

class TaskRegistryError(RuntimeError):
    """Two plugins claim one task or data source, or a plugin returned something else."""

class UnknownDataSource(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])

@dataclass(frozen=True)
class Registry:
    tasks: dict[str, TaskSpec]
    #: task name -> the plugin (entry-point name, distribution) that provides it
    providers: dict[str, str]
    #: data source (and task name) -> task
    by_source: dict[str, TaskSpec]

    def task_for(self, data_source: str) -> TaskSpec:
        """The task owning ``data_source`` (a benchmark name or a task name)."""
        try:
            return self.by_source[data_source]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self.by_source))
            raise UnknownDataSource(
                f"unknown data_source {data_source!r}: no Reason-RFT task plugin claims it (known: {known}); "
                "run `reason-rft tasks` to list plugins"
            ) from None

def blocked_plugins() -> set[str]:
    return {name.strip() for name in os.environ.get(BLOCK_ENV, "").split(",") if name.strip()}

def get_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with every unblocked entry point of ``reason_rft.tasks`` loaded."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in blocked_plugins():
        pm.set_blocked(name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm

def _plugin_label(pm: pluggy.PluginManager, plugin: object) -> str:
    name = pm.get_name(plugin) or getattr(plugin, "__name__", repr(plugin))
    for dist_plugin, dist in pm.list_plugin_distinfo():
        if dist_plugin is plugin:
            return f"{name} ({dist.project_name} {dist.version})"
    return name

def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Collect the tasks of every plugin; a name or data source claimed twice fails naming both."""
    tasks: dict[str, TaskSpec] = {}
    providers: dict[str, str] = {}
    by_source: dict[str, TaskSpec] = {}
    source_owner: dict[str, str] = {}
    for impl in pm.hook.reason_rft_tasks.get_hookimpls():
        label = _plugin_label(pm, impl.plugin)
        specs = impl.function()
        if not isinstance(specs, (list, tuple)) or not all(isinstance(s, TaskSpec) for s in specs):
            raise TaskRegistryError(f"plugin {label}: reason_rft_tasks() must return a list of TaskSpec, got {specs!r}")
        for spec in specs:
            if spec.name in tasks:
                raise TaskRegistryError(
                    f"task {spec.name!r} is provided twice: by {providers[spec.name]} and by {label}; "
                    f"uninstall one or block it with {BLOCK_ENV}=<entry-point name>"
                )
            tasks[spec.name] = spec
            providers[spec.name] = label
            for source in dict.fromkeys((spec.name, *spec.data_sources)):
                if source in source_owner:
                    raise TaskRegistryError(
                        f"data_source {source!r} is claimed twice: by {source_owner[source]} and by "
                        f"{label} (task {spec.name!r}); block one with {BLOCK_ENV}=<entry-point name>"
                    )
                source_owner[source] = f"{label} (task {spec.name!r})"
                by_source[source] = spec
    return Registry(tasks=tasks, providers=providers, by_source=by_source)

@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    return build_registry(get_plugin_manager())

def get_task(data_source: str) -> TaskSpec:
    """The task owning ``data_source`` (benchmark name or task name)."""
    return get_registry().task_for(data_source)

def reset_registry() -> None:
    """Forget the loaded plugins (tests, or after installing a plugin at run time)."""
    get_registry.cache_clear()
