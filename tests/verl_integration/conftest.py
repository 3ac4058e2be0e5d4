"""Fixtures for tests that drive verl's real reward loop: config, tokenizer, one-sample ``DataProto``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

def compose_ppo_config(*overrides: str):
    """verl's own ``ppo_trainer`` config (from the installed package) with ``overrides``."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return compose("ppo_trainer", overrides=list(overrides))


def one_sample(tokenizer, response: str, ground_truth: Any, data_source: str = "clevr_math",
               pad_to: int | None = None, extra_info: dict | None = None, reward_model: Any = None):
    """A one-trajectory ``DataProto`` shaped like verl's agent loop sends it (response right-padded)."""
    from verl import DataProto

    prompt_ids = tokenizer("How many?")["input_ids"]
    ids = tokenizer(response)["input_ids"] + [tokenizer.eos_token_id]  # eos is special: decoded away
    width = max(pad_to or 0, len(ids))
    responses = torch.full((1, width), tokenizer.pad_token_id, dtype=torch.long)
    responses[0, : len(ids)] = torch.tensor(ids)
    mask = torch.zeros((1, len(prompt_ids) + width), dtype=torch.long)
    mask[0, : len(prompt_ids) + len(ids)] = 1
    return DataProto.from_dict(
        tensors={"prompts": torch.tensor([prompt_ids]), "responses": responses, "attention_mask": mask},
        non_tensors={
            "data_source": np.array([data_source], dtype=object),
            "reward_model": np.array([reward_model or {"style": "rule", "ground_truth": ground_truth}], dtype=object),
            "extra_info": np.array([extra_info or {"id": "t0", "task": "visual_counting"}], dtype=object),
        },
    )


@pytest.fixture(scope="session")
def tokenizer():
    """The tiny model's byte-level BPE tokenizer (exact round trip; eos and pad are special tokens)."""
    from verl_reason_rft.tiny_model import build_tokenizer

    return build_tokenizer()


@pytest.fixture(scope="session")
def ppo_config():
    """``ppo_config(*overrides)``: verl's composed ``ppo_trainer`` config."""
    return compose_ppo_config


@pytest.fixture(scope="session")
def make_sample(tokenizer):
    """``make_sample(response, ground_truth, **kw)``: a real one-sample ``DataProto``."""
    return lambda *args, **kwargs: one_sample(tokenizer, *args, **kwargs)
