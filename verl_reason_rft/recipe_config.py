"""The shipped Hydra recipes (``pkg://verl_reason_rft.recipes``), composed the way verl's trainers do.

``python -m verl.trainer.main_ppo --config-path=pkg://verl_reason_rft.recipes --config-name=NAME k=v``
and :func:`compose_recipe` (Hydra's compose API on the same config module and name) give the same config.
"""

from __future__ import annotations

from typing import Sequence

RECIPES_MODULE = "verl_reason_rft.recipes"
CONFIG_PATH = f"pkg://{RECIPES_MODULE}"
#: stage-2 GRPO (from the SFT checkpoint), Reason-RFT-Zero (from the base model), stage-1/baseline SFT
GRPO, ZERO, SFT = "reason_rft", "reason_rft_zero", "reason_rft_sft"
#: verl entry module of each recipe
TRAINER_MODULE = {GRPO: "verl.trainer.main_ppo", ZERO: "verl.trainer.main_ppo", SFT: "verl.trainer.sft_trainer"}
MODELS = ("qwen2_vl_2b", "qwen2_vl_7b", "qwen2_5_vl_3b", "qwen2_5_vl_7b", "tiny")
SFT_VARIANTS = ("sft", "cot_sft", "ans_sft")


def compose_recipe(config_name: str, overrides: Sequence[str] = ()):
    """The composed ``DictConfig`` of a recipe with command-line style ``overrides``."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if config_name not in TRAINER_MODULE:
        raise ValueError(f"unknown recipe {config_name!r}; one of {sorted(TRAINER_MODULE)}")
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=RECIPES_MODULE, version_base=None):
        return compose(config_name=config_name, overrides=list(overrides))


def trainer_argv(config_name: str, overrides: Sequence[str] = ()) -> list[str]:
    """``-m <verl trainer> --config-path=... --config-name=... overrides`` (prefix with python or torchrun)."""
    return ["-m", TRAINER_MODULE[config_name], f"--config-path={CONFIG_PATH}", f"--config-name={config_name}", *overrides]
