"""CPU SFT entry: ``python -m verl_reason_rft.cpu.sft <hydra overrides>`` (or under ``torchrun``).

Opens a gloo process group, prepares verl's FSDP engine for the CPU and runs verl's own
``SFTTrainer(config).fit()``. verl's ``run_sft`` cannot be used: it opens its group with
``cpu:gloo,cpu:gloo`` ("Duplicate device type cpu", ``utils/distributed.py:64``). The Hydra
handling is verl's ``main``'s (same default config, ``--config-path``/``--config-name`` work):

    python -m verl_reason_rft.cpu.sft --config-path=pkg://verl_reason_rft.recipes \\
        --config-name=reason_rft_sft cpu=sft task=spatial_transformation model=tiny ...

``VERL_PLATFORM`` defaults to ``cpu`` here (this entry is CPU-only); any other value is an error.
"""

from __future__ import annotations

import os
import socket

os.environ.setdefault("VERL_PLATFORM", "cpu")

import hydra  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def open_gloo_group() -> None:
    """The default process group on gloo: torchrun's env, or a one-process group when run directly."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    dist.init_process_group(backend="gloo")


def run_sft(config) -> None:
    """verl's SFT trainer on a gloo group, on the CPU platform."""
    from verl_reason_rft.cpu import activate, is_selected

    if not is_selected():
        raise RuntimeError(f"verl_reason_rft.cpu.sft runs on VERL_PLATFORM=cpu only, not {os.environ['VERL_PLATFORM']!r}")
    activate()
    open_gloo_group()
    from verl.trainer.sft_trainer import SFTTrainer
    from verl.utils.distributed import destroy_global_process_group

    from verl_reason_rft.cpu.engine import prepare_cpu_engine

    prepare_cpu_engine()
    try:
        SFTTrainer(config=config).fit()
    finally:
        destroy_global_process_group()


@hydra.main(config_path="pkg://verl.trainer.config", config_name="sft_trainer_engine", version_base=None)
def main(config) -> None:
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    run_sft(config)


if __name__ == "__main__":
    main()
