"""GPU counts that verl's trainers cannot split the batch over, caught before anything starts.

- SFT (``verl.trainer.sft_trainer``): each data-parallel rank loads ``data.train_batch_size // dp_size``
  samples (``trainer/sft_trainer.py:241``), ``dp_size = GPUs / engine.ulysses_sequence_parallel_size``.
  A batch the ranks do not divide is silently shrunk (16 on 6 GPUs trains on 12 per step).
- GRPO (``main_ppo``): the ``data.train_batch_size × actor_rollout_ref.rollout.n`` rollouts (and the
  mini-batch of as many) are split evenly over the actor's data-parallel ranks; verl asserts otherwise,
  after Ray, the workers and vLLM have started. vLLM's tensor parallel size must divide the GPUs per node.

:func:`layout_problems` returns one message per violated rule, naming the settings to change.
"""

from __future__ import annotations

from typing import Any


def _int(node: Any, dotted: str, default: int = 1) -> int:
    for part in dotted.split("."):
        node = node.get(part) if node is not None and hasattr(node, "get") else None
    return default if node is None else int(node)


def _divisors_hint(total: int) -> str:
    return ", ".join(str(d) for d in range(1, total + 1) if total % d == 0)


def sft_problems(cfg: Any, gpus: int) -> list[str]:
    """``gpus``: the SFT world size (torchrun's nnodes × nproc-per-node)."""
    batch = _int(cfg, "data.train_batch_size")
    sp = _int(cfg, "engine.ulysses_sequence_parallel_size")
    problems = []
    if gpus % sp:
        return [f"{gpus} GPUs are not a multiple of engine.ulysses_sequence_parallel_size={sp}"]
    dp = gpus // sp
    if batch % dp:
        problems.append(
            f"SFT: data.train_batch_size={batch} does not divide over {dp} data-parallel ranks ({gpus} GPUs / "
            f"engine.ulysses_sequence_parallel_size={sp}); verl would silently train on {batch // dp * dp} samples per step. "
            f"Use a GPU count whose data-parallel size divides {batch} (e.g. {_divisors_hint(batch)}) or change data.train_batch_size"
        )
    return problems


def grpo_problems(cfg: Any) -> list[str]:
    """GPUs from ``trainer.n_gpus_per_node × trainer.nnodes``, as ``main_ppo`` reads them."""
    per_node, nodes = _int(cfg, "trainer.n_gpus_per_node"), _int(cfg, "trainer.nnodes")
    gpus = per_node * nodes
    prompts, n = _int(cfg, "data.train_batch_size"), _int(cfg, "actor_rollout_ref.rollout.n")
    mini = _int(cfg, "actor_rollout_ref.actor.ppo_mini_batch_size", prompts)
    sp = _int(cfg, "actor_rollout_ref.actor.ulysses_sequence_parallel_size")
    tp = _int(cfg, "actor_rollout_ref.rollout.tensor_model_parallel_size")
    where = f"{gpus} GPUs (trainer.n_gpus_per_node={per_node} × trainer.nnodes={nodes})"
    problems = []
    if per_node % tp:
        problems.append(f"GRPO: actor_rollout_ref.rollout.tensor_model_parallel_size={tp} does not divide "
                        f"trainer.n_gpus_per_node={per_node} (vLLM replicas would straddle nodes)")
    if gpus % sp:
        problems.append(f"GRPO: {where} are not a multiple of actor_rollout_ref.actor.ulysses_sequence_parallel_size={sp}")
        return problems
    dp = gpus // sp
    rollouts = prompts * n
    if rollouts % dp:
        problems.append(
            f"GRPO: data.train_batch_size × actor_rollout_ref.rollout.n = {prompts} × {n} = {rollouts} rollouts do not divide "
            f"over the {dp} data-parallel ranks of {where}; verl asserts after starting Ray and vLLM. "
            f"Use a GPU count dividing {rollouts} (e.g. {_divisors_hint(rollouts)}) or change data.train_batch_size"
        )
    elif (mini * n) % dp:
        problems.append(
            f"GRPO: actor_rollout_ref.actor.ppo_mini_batch_size × actor_rollout_ref.rollout.n = {mini} × {n} does not divide "
            f"over the {dp} data-parallel ranks of {where}; change actor_rollout_ref.actor.ppo_mini_batch_size"
        )
    return problems


def layout_problems(cfg: Any, config_name: str, gpus: int | None = None) -> list[str]:
    """Problems of a composed recipe; ``gpus`` is the SFT world size (None: not checked for SFT)."""
    from verl_reason_rft.recipe_config import SFT

    if config_name == SFT:
        return sft_problems(cfg, gpus) if gpus else []
    return grpo_problems(cfg)


def plan_problems(checks) -> list[str]:
    """Problems of a pipeline's :class:`~verl_reason_rft.preflight.StageCheck` list (composes each recipe)."""
    from verl_reason_rft.recipe_config import compose_recipe

    out = []
    for check in checks:
        cfg = compose_recipe(check.config_name, check.overrides)
        out += layout_problems(cfg, check.config_name, getattr(check, "gpus", None))
    return out
