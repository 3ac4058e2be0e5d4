"""Self-check: does verl load this plugin, resolve ``reason_rft`` and find our scorer?

verl imports ``verl.plugins`` entry points and drops their errors at DEBUG level, so a
broken install only shows up later as ``Unknown reward manager: reason_rft``. Each check
here reports ✔/✘ with the fix; :func:`run_checks` must run in a process that has not
imported verl yet (the CLI does), so it sees what verl's own import did.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from importlib import metadata
from typing import Callable

VERL_PIN = "0.9.1"
ENTRY_POINT_GROUP = "verl.plugins"
ENTRY_POINT_NAME = "reason_rft"
PLUGIN_MODULE = "verl_reason_rft.verl_plugin"
REINSTALL = "pip install --force-reinstall --no-deps verl-reason-rft (or `pip install -e .` in a checkout)"
INSTALL_VERL = f"pip install 'verl[verl-core]=={VERL_PIN}'"
#: naming the reward manager by path works without the entry point
BY_PATH = (
    "reward.reward_manager.source=importlib reward.reward_manager.module.path=pkg://verl_reason_rft.reward_manager "
    "reward.reward_manager.name=ReasonRFTRewardManager"
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    #: a failed optional check is a warning (⚠) and does not change the exit status
    required: bool = True

    def render(self) -> str:
        mark = "✔" if self.ok else ("✘" if self.required else "⚠")
        text = f"{mark} {self.name}: {self.detail}"
        if not self.ok and self.fix:
            text += "\n    fix: " + self.fix.replace("\n", "\n         ")
        return text


def _failure(name: str, fix: str) -> Check:
    return Check(name, False, traceback.format_exc().strip(), fix)


def check_verl_version() -> Check:
    name = "verl version"
    try:
        version = metadata.version("verl")
    except metadata.PackageNotFoundError:
        return Check(name, False, "verl is not installed", INSTALL_VERL)
    if version != VERL_PIN:
        return Check(name, False, f"verl {version} installed; this plugin uses verl {VERL_PIN}'s extension points",
                     INSTALL_VERL)
    return Check(name, True, f"verl {version}")


def check_plugin_policy() -> Check:
    name = "VERL_USE_EXTERNAL_PLUGINS"
    policy = os.environ.get("VERL_USE_EXTERNAL_PLUGINS", "auto").strip().lower()
    allowed = policy == "auto" or ENTRY_POINT_NAME in {p.strip() for p in policy.split(",")}
    if not allowed:
        return Check(name, False, f"={policy!r} stops verl from loading the {ENTRY_POINT_NAME!r} plugin",
                     f"unset VERL_USE_EXTERNAL_PLUGINS, or add {ENTRY_POINT_NAME} to its list; "
                     f"alternatively use {BY_PATH}")
    return Check(name, True, f"{policy!r} lets verl load {ENTRY_POINT_NAME!r}")


def _our_entry_point() -> metadata.EntryPoint | None:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == ENTRY_POINT_NAME:
            return ep
    return None


def check_entry_point_declared() -> Check:
    name = "verl.plugins entry point"
    ep = _our_entry_point()
    if ep is None:
        return Check(name, False, f"no {ENTRY_POINT_NAME!r} entry point in group {ENTRY_POINT_GROUP!r}", REINSTALL)
    if ep.value != PLUGIN_MODULE:
        return Check(name, False, f"{ENTRY_POINT_NAME} = {ep.value} (expected {PLUGIN_MODULE})", REINSTALL)
    dist = getattr(ep, "dist", None)
    where = f" from {dist.name} {dist.version}" if dist is not None else ""
    return Check(name, True, f"{ENTRY_POINT_NAME} = {ep.value}{where}")


def check_plugin_loaded_by_verl() -> Check:
    """``import verl`` must have imported our plugin; if it did not, import it here to show why."""
    name = "verl loaded the plugin"
    try:
        import verl  # noqa: F401  (runs verl's entry-point discovery, unless imported before)
    except Exception:
        return _failure(name, f"import verl fails: fix verl's install ({INSTALL_VERL})")
    loaded = PLUGIN_MODULE in sys.modules
    ep = _our_entry_point()
    try:
        module = ep.load() if ep is not None else __import__(PLUGIN_MODULE, fromlist=["LOAD_ERROR"])
    except Exception:
        return _failure(name, "importing the plugin fails (traceback above): fix that error; verl hides it")
    if module.LOAD_ERROR:
        return Check(name, False, f"the plugin imported but registration failed:\n{module.LOAD_ERROR.strip()}",
                     "fix the error above (verl logs it only at DEBUG)")
    if not loaded:
        return Check(name, False, "import verl did not import " + PLUGIN_MODULE,
                     "check VERL_USE_EXTERNAL_PLUGINS and that this environment's verl is 0.9.x")
    return Check(name, True, f"import verl imported {PLUGIN_MODULE}")


def check_reward_manager_registered() -> Check:
    name = "reward manager 'reason_rft'"
    try:  # importing verl's registry imports verl, which loads the plugins: the lookup a trainer does
        from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls

        cls = get_reward_manager_cls("reason_rft")
        from verl_reason_rft.reward_manager import ReasonRFTRewardManager
    except Exception as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}",
                     f"see the next check; or name the class by path: {BY_PATH}")
    if cls is not ReasonRFTRewardManager:
        return Check(name, False, f"'reason_rft' resolves to {cls.__module__}.{cls.__qualname__}",
                     "another package registers the name 'reason_rft'; uninstall it")
    return Check(name, True, f"resolves to {cls.__module__}.{cls.__qualname__}")


def check_scorer_loads() -> Check:
    name = "pkg://verl_reason_rft.scoring"
    try:
        from verl.utils.import_utils import load_extern_object

        fn = load_extern_object(module_path="pkg://verl_reason_rft.scoring", object_name="compute_score")
    except Exception:
        return _failure(name, "verl's loader cannot import our scorer: " + REINSTALL)
    return Check(name, True, f"verl's loader finds {fn.__module__}.{fn.__name__}")


def check_task_registry() -> Check:
    name = "task registry"
    try:
        from verl_reason_rft.tasks import BLOCK_ENV, get_registry, reset_registry

        reset_registry()
        registry = get_registry()
    except Exception as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}",
                     "uninstall one of the plugins named above, or block one with "
                     "REASON_RFT_BLOCK_PLUGINS=<entry-point name>")
    if not registry.tasks:
        blocked = os.environ.get(BLOCK_ENV, "")
        return Check(name, False, f"no tasks registered ({BLOCK_ENV}={blocked!r})", REINSTALL)
    return Check(name, True, f"{len(registry.tasks)} tasks: " + ", ".join(sorted(registry.tasks)))


def check_vision_stack() -> Check:
    """Training reads images through transformers' Qwen2-VL processor and qwen-vl-utils, both of which
    import torchvision; without it verl's ``hf_processor`` warns and returns None (text-only)."""
    name = "torchvision (image processing)"
    try:
        import torchvision
    except Exception as exc:
        return Check(name, False, f"cannot import torchvision ({type(exc).__name__}: {exc}): verl would build no "
                     "Qwen2-VL processor and train text-only; preflight estimates token counts",
                     "on training machines install the torchvision matching your torch (vllm brings one)",
                     required=False)
    return Check(name, True, f"torchvision {torchvision.__version__}")


def check_trainer_mode() -> Check:
    """``trainer.v1.trainer_mode=reason_rft`` resolves in a fresh process as in main_ppo's TaskRunner, with
    this environment but no ``VERL_USE_EXTERNAL_MODULES`` (an existing Ray cluster's workers have none)."""
    from verl_reason_rft.trainer_registration import FIX, TRAINER_MODE, probe_fresh_process

    name = f"trainer_mode '{TRAINER_MODE}'"
    ok, detail = probe_fresh_process(TRAINER_MODE)
    if not ok:
        return Check(name, False, f"a fresh process importing verl's trainer registry gets: {detail}", FIX)
    resolved, _, early = detail.removeprefix("RESOLVED ").partition(" EARLY ")
    if early.strip():
        return Check(name, False, f"resolves to {resolved}, but `import verl` alone already imported {early.strip()} "
                     "(every Ray process, vLLM servers included, would import verl's whole trainer)",
                     "unset VERL_USE_EXTERNAL_MODULES in the environment; the plugin registers the trainer lazily")
    return Check(name, True, f"resolves to {resolved} where verl looks it up (registered lazily, no environment variable)")


CHECKS: tuple[Callable[[], Check], ...] = (
    check_verl_version,
    check_plugin_policy,
    check_entry_point_declared,
    check_reward_manager_registered,  # before the next check, which imports the plugin itself
    check_plugin_loaded_by_verl,
    check_scorer_loads,
    check_trainer_mode,
    check_task_registry,
    check_vision_stack,
)


def run_checks() -> list[Check]:
    results = []
    for check in CHECKS:
        try:
            results.append(check())
        except Exception:  # a bug in a check must not hide the others
            results.append(_failure(check.__name__, "report this as a verl-reason-rft bug"))
    return results


def main() -> int:
    """Print every check; 0 when all pass, 1 otherwise."""
    results = run_checks()
    for result in results:
        print(result.render())
    failed = [r for r in results if not r.ok and r.required]
    warned = [r for r in results if not r.ok and not r.required]
    print(f"\n{len(results) - len(failed) - len(warned)}/{len(results)} checks passed"
          + (f", {len(warned)} warning(s)" if warned else "") + ("" if not failed else ": see the fixes above"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
