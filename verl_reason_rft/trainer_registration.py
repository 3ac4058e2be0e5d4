"""Register ``trainer.v1.trainer_mode=reason_rft`` in exactly the processes that look trainers up.

verl resolves the mode with ``get_trainer_cls`` (``trainer/ppo/v1/trainer_base.py:2017``), which the
TaskRunner imports from ``verl.trainer.ppo.v1`` (``trainer/main_ppo.py:139``). Importing our trainer
module registers it, but imports verl's whole trainer: too heavy for the ``verl.plugins`` entry point,
which runs in every process (vLLM servers, reward workers, agent loops ...).

So the entry point (:mod:`verl_reason_rft.verl_plugin`) calls :func:`install`: when a process imports
``verl.trainer.ppo.v1`` (the package holding the registry), :data:`TRAINER_MODULES` are imported right
after it, before anything can call ``get_trainer_cls``. No environment variable is involved, so an
already-running Ray cluster, a replaced ``ray_kwargs.ray_init.runtime_env.env_vars`` or a plain
``python -m verl.trainer.main_ppo`` all find the mode. This is a standard import-system finder: it
changes no verl object, it only imports our module (which uses verl's ``register_trainer``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import os
import subprocess
import sys
import traceback

logger = logging.getLogger(__name__)

#: the verl package whose import makes a process one that looks trainers up
REGISTRY_PACKAGE = "verl.trainer.ppo.v1"
#: modules registering our trainer modes (imported after REGISTRY_PACKAGE)
TRAINER_MODULES = ("verl_reason_rft.trainer",)
TRAINER_MODE = "reason_rft"
#: a failed import of TRAINER_MODULES (traceback), or None
LOAD_ERROR: str | None = None
FIX = ("check `reason-rft doctor`; the package must be installed on every Ray node with VERL_USE_EXTERNAL_PLUGINS unset "
       "(or listing reason_rft); or add VERL_USE_EXTERNAL_MODULES=verl_reason_rft.trainer to "
       "ray_kwargs.ray_init.runtime_env.env_vars; or use trainer.v1.trainer_mode=sync (plain verl, no reason_rft/* step metrics)")


def register_now() -> None:
    """Import :data:`TRAINER_MODULES`; a failure is logged and kept in :data:`LOAD_ERROR`, never raised into verl."""
    global LOAD_ERROR
    for name in TRAINER_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an import error here would break verl's own import
            LOAD_ERROR = traceback.format_exc()
            logger.warning("verl-reason-rft: registering trainer_mode=%s failed (%s). %s\n%s", TRAINER_MODE, name, FIX, LOAD_ERROR)


class _ThenRegister(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def __getattr__(self, name: str):  # get_source, is_package, get_resource_reader ...: the real loader's
        return getattr(self.inner, name)

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        self.inner.exec_module(module)
        register_now()


class _RegistryFinder(importlib.abc.MetaPathFinder):
    """Finds :data:`REGISTRY_PACKAGE` like the normal path finder, with a loader that registers after it."""

    def find_spec(self, fullname, path, target=None):
        if fullname != REGISTRY_PACKAGE:
            return None
        uninstall()  # once per process
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenRegister(spec.loader)
        return spec


def install() -> None:
    """Register now if verl's trainer registry is already imported, else as soon as it is."""
    if REGISTRY_PACKAGE in sys.modules:
        register_now()
    elif not any(isinstance(f, _RegistryFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegistryFinder())


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegistryFinder)]


PROBE = """
import sys
import verl  # loads the verl.plugins entry points, as every Ray process does
early = [m for m in {modules!r} if m in sys.modules]
from verl.trainer.ppo.v1 import get_trainer_cls  # what main_ppo's TaskRunner does
cls = get_trainer_cls({mode!r})
print("RESOLVED", cls.__module__ + "." + cls.__qualname__, "EARLY", ",".join(early))
"""


def probe_fresh_process(mode: str = TRAINER_MODE, env_vars: dict | None = None, timeout_s: float = 300) -> tuple[bool, str]:
    """Resolve ``mode`` in a new interpreter the way the TaskRunner does, without ``VERL_USE_EXTERNAL_MODULES``
    (unless ``env_vars`` sets it). Returns (ok, the resolved class or the error)."""
    env = {k: v for k, v in os.environ.items() if k != "VERL_USE_EXTERNAL_MODULES"}
    env.update({str(k): str(v) for k, v in (env_vars or {}).items()})
    code = PROBE.format(modules=TRAINER_MODULES, mode=mode)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout_s)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESOLVED ")]
    if done.returncode == 0 and lines:
        return True, lines[-1]
    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    return False, tail
