"""The CPU rollout server: HF transformers ``generate`` behind verl's token-in-token-out interface.

verl's agent loop calls ``server.generate(prompt_ids=..., sampling_params=..., image_data=...)``
on the replica's server handle and expects a :class:`~verl.workers.rollout.replica.TokenOutput`
(response token ids plus their log-probs). :class:`HFRolloutServer` is a plain class, so a
test can call it directly; :mod:`verl_reason_rft.cpu.rollout` runs it as a Ray actor.

* Prompts arrive tokenized with the image placeholders already expanded (one ``<|image_pad|>``
  per merged patch), as verl hands them to vLLM; the images are re-encoded with the model's
  image processor and the patch count is checked against the placeholders.
* Vision tokens (``<|image_pad|>``, ``<|vision_start|>`` ...) are suppressed in generation: a
  response holding one makes Qwen2-VL's ``get_rope_index`` raise and verl drops the prompt group.
* Log-probs are those of the sampled tokens under the temperature-scaled model distribution
  (what verl's actor recomputes), before top-k/top-p filtering.
* Requests run one at a time under a lock (generation and weight updates never overlap).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Iterable, Optional

import torch

from verl_reason_rft.hf_generation import vision_token_ids  # one list of vision tokens for eval and rollout

logger = logging.getLogger(__name__)

def _load_model(path: str, hf_config: Any = None) -> torch.nn.Module:
    import transformers

    errors = []
    for name in ("AutoModelForImageTextToText", "AutoModelForVision2Seq", "AutoModelForCausalLM"):
        auto_cls = getattr(transformers, name, None)
        if auto_cls is None:
            continue
        try:
            model = auto_cls.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
            return model.eval()
        except (ValueError, KeyError) as exc:  # model type not covered by this auto class
            errors.append(f"{name}: {exc}")
    raise ValueError(f"hf_cpu rollout: cannot load a generative model from {path!r}: " + "; ".join(errors))


class HFRolloutServer:
    """One rollout server on the CPU: holds a copy of the policy and generates with HF ``generate``."""

    def __init__(self, config: Any, model_config: Any, replica_rank: int = 0, **kwargs: Any) -> None:
        from omegaconf import DictConfig
        from verl.utils.config import omega_conf_to_dataclass
        from verl.workers.config import HFModelConfig

        # verl's replicas hand the configs over as DictConfigs (as vLLMHttpServer._init_*config converts them)
        self.config = omega_conf_to_dataclass(config) if isinstance(config, DictConfig) else config
        if isinstance(model_config, DictConfig):
            model_config = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.model_config = model_config
        self.replica_rank = replica_rank
        path = model_config.local_path or model_config.path
        self.tokenizer = model_config.tokenizer
        self.processor = model_config.processor
        if self.tokenizer is None:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = _load_model(path, getattr(model_config, "hf_config", None))
        self.suppress_ids = vision_token_ids(self.tokenizer, self.model.config)
        self.eos_ids = self._eos_ids()
        self.global_steps: Optional[int] = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ generation

    def _eos_ids(self) -> list[int]:
        ids: set[int] = set()
        for source in (getattr(self.model, "generation_config", None), self.model.config, self.tokenizer):
            value = getattr(source, "eos_token_id", None)
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        im_end = self.tokenizer.get_vocab().get("<|im_end|>")
        if im_end is not None:
            ids.add(int(im_end))
        return sorted(ids)

    def _max_new_tokens(self, prompt_len: int, sampling_params: dict) -> int:
        requested = sampling_params.get("max_tokens", sampling_params.get("max_new_tokens"))
        budget = min(self.config.response_length, self.config.prompt_length + self.config.response_length - prompt_len)
        if requested is not None:
            budget = min(int(requested), budget) if budget > 0 else int(requested)
        return max(1, int(budget))

    def _vision_inputs(self, prompt_ids: list[int], image_data: Optional[list], mm_kwargs: Optional[dict]) -> dict:
        if not image_data:
            return {}
        if self.processor is None or getattr(self.processor, "image_processor", None) is None:
            raise ValueError("hf_cpu rollout: the prompt has images but the model has no image processor")
        encoded = self.processor.image_processor(images=list(image_data), return_tensors="pt", **(mm_kwargs or {}))
        inputs = {key: encoded[key] for key in ("pixel_values", "image_grid_thw") if key in encoded}
        if hasattr(self.processor, "create_mm_token_type_ids"):
            # transformers 5 computes Qwen-VL's M-RoPE positions from these (image tokens: 1); without
            # them generation silently falls back to 1-D positions the model was never trained on
            inputs["mm_token_type_ids"] = torch.tensor(self.processor.create_mm_token_type_ids([prompt_ids]))
        grid = inputs.get("image_grid_thw")
        image_pad = self.tokenizer.get_vocab().get("<|image_pad|>")
        if grid is not None and image_pad is not None:
            merge = getattr(self.processor.image_processor, "merge_size", 2) ** 2
            expected = int(grid.prod(dim=-1).sum().item()) // merge
            found = sum(1 for token in prompt_ids if token == image_pad)
            if expected != found:
                raise ValueError(
                    f"hf_cpu rollout: the prompt holds {found} <|image_pad|> tokens but its "
                    f"{len(image_data)} image(s) encode to {expected} patches"
                )
        return inputs

    def generate_sync(
        self,
        prompt_ids: list[int],
        sampling_params: dict,
        image_data: Optional[list] = None,
        mm_processor_kwargs: Optional[dict] = None,
    ) -> dict:
        """Generate one response; returns ``{"token_ids", "log_probs"}`` (blocking)."""
        prompt_ids = [int(t) for t in prompt_ids]
        sampling_params = dict(sampling_params or {})
        input_ids = torch.tensor([prompt_ids], dtype=torch.long)
        inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        inputs.update(self._vision_inputs(prompt_ids, image_data, mm_processor_kwargs))
        temperature = float(sampling_params.get("temperature", 1.0) or 0.0)
        do_sample = temperature > 0
        top_k = int(sampling_params.get("top_k", -1) or -1)
        gen_kwargs = dict(
            max_new_tokens=self._max_new_tokens(len(prompt_ids), sampling_params),
            do_sample=do_sample,
            suppress_tokens=self.suppress_ids or None,
            eos_token_id=self.eos_ids or None,
            pad_token_id=self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0],
            repetition_penalty=float(sampling_params.get("repetition_penalty", 1.0) or 1.0),
            return_dict_in_generate=True,
            output_logits=True,
        )
        if do_sample:
            gen_kwargs.update(
                temperature=temperature,
                top_p=float(sampling_params.get("top_p", 1.0) or 1.0),
                top_k=top_k if top_k > 0 else 0,
            )
        else:
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        with self._lock, torch.inference_mode():
            out = self.model.generate(**inputs, **gen_kwargs)
        response = out.sequences[0, len(prompt_ids) :].tolist()
        scale = temperature if do_sample else 1.0
        log_probs = []
        for step, token in enumerate(response):
            logits = out.logits[step][0].float() / scale
            log_probs.append(float(torch.log_softmax(logits, dim=-1)[token]))
        # batch of one: nothing follows the first end-of-sequence token but padding
        for i, token in enumerate(response):
            if token in self.eos_ids:
                response, log_probs = response[: i + 1], log_probs[: i + 1]
                break
        return {"token_ids": response, "log_probs": log_probs}

    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str = "",
        image_data: Optional[list[Any]] = None,
        video_data: Optional[list[Any]] = None,
        audio_data: Optional[list[Any]] = None,
        mm_processor_kwargs: Optional[dict[str, Any]] = None,
        priority: int = 0,
        **kwargs: Any,
    ):
        """verl's token-in-token-out call: a ``TokenOutput`` with log-probs."""
        from verl.workers.rollout.replica import TokenOutput

        if video_data or audio_data:
            raise ValueError("hf_cpu rollout: video and audio inputs are not supported")
        result = await asyncio.to_thread(self.generate_sync, prompt_ids, sampling_params, image_data, mm_processor_kwargs)
        return TokenOutput(
            token_ids=result["token_ids"],
            log_probs=result["log_probs"],
            stop_reason="completed",
            extra_fields={"global_steps": self.global_steps},
        )

    # ------------------------------------------------------------------ weights

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]], global_steps: Optional[int] = None) -> int:
        """Copy the actor's weights (HF names) into the model; returns how many tensors were loaded."""
        params = dict(self.model.named_parameters())
        params.update(dict(self.model.named_buffers()))
        loaded, unknown = 0, []
        with self._lock, torch.no_grad():
            for name, tensor in named_tensors:
                target = params.get(name)
                if target is None:
                    target = params.get(_strip_prefix(name, params))
                if target is None:
                    unknown.append(name)
                    continue
                target.copy_(tensor.to(dtype=target.dtype, device=target.device).view_as(target))
                loaded += 1
        if unknown:
            raise KeyError(f"hf_cpu rollout: {len(unknown)} weight(s) match no model parameter, e.g. {unknown[:3]}")
        if loaded == 0:
            raise ValueError("hf_cpu rollout: the weight update held no tensors")
        self.global_steps = global_steps
        return loaded

    async def update_weights(self, named_tensors: dict[str, torch.Tensor], global_steps: Optional[int] = None) -> int:
        return await asyncio.to_thread(self.load_weights, list(named_tensors.items()), global_steps)

    # ------------------------------------------------------------------ lifecycle (nothing to free on a CPU)

    async def wake_up(self, tags: Optional[list[str]] = None) -> None:
        return None

    async def sleep(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def wait_for_requests_to_drain(self) -> None:
        return None

    async def abort_all_requests(self, reject_request: bool = False, **kwargs: Any) -> dict[str, Any]:
        return {"aborted_count": 0, "request_ids": []}

    async def resume_generation(self) -> None:
        return None

    async def start_profile(self, **kwargs: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None


def _strip_prefix(name: str, params: dict) -> str:
    """The model parameter whose name ends like ``name`` (checkpoint naming differs across versions)."""
    parts = name.split(".")
    for start in range(1, len(parts)):
        suffix = ".".join(parts[start:])
        matches = [key for key in params if key == suffix or key.endswith("." + suffix)]
        if len(matches) == 1:
            return matches[0]
    return name
