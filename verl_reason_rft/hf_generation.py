"""``reason-rft eval --engine hf``: transformers ``generate`` on CPU (or CUDA), for machines without vLLM.

Same prompts and images as the vLLM engine (:func:`verl_reason_rft.generation.model_input`), same
SPEC §7 sampling (temperature 0.1, top_p 0.9, top_k 50, one sample), same prediction records.
Prompts are batched with left padding. Vision special tokens are never generated (a random or
barely trained model emits them), and completions are decoded with ``skip_special_tokens`` as
verl's agent loop decodes its rollouts.
"""

from __future__ import annotations

from typing import Any, Sequence

from verl_reason_rft.generation import (
    SAMPLING,
    EvalRequest,
    image_patch_size,
    model_input,
    prediction_record,
    sampling_params,
)

#: Qwen-VL vision placeholders: only the processor may put them in a prompt, never the model in an answer.
VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>")
DEFAULT_BATCH_SIZE = 8


def generate_kwargs(max_new_tokens: int, suppress_ids: Sequence[int] = ()) -> dict[str, Any]:
    """``model.generate`` keyword arguments for SPEC §7 sampling (the vLLM engine's ``sampling_params``)."""
    params = sampling_params(max_new_tokens)
    kwargs: dict[str, Any] = {
        "do_sample": True,
        "temperature": params["temperature"],
        "top_p": params["top_p"],
        "top_k": params["top_k"],
        "max_new_tokens": params["max_tokens"],
        "num_return_sequences": params["n"],
    }
    if suppress_ids:
        kwargs["suppress_tokens"] = list(suppress_ids)
    return kwargs


def vision_token_ids(tokenizer: Any, hf_config: Any = None) -> list[int]:
    """Ids of the :data:`VISION_TOKENS` the tokenizer knows (unknown ones are left out), plus the model
    config's vision token ids when ``hf_config`` is given (the CPU rollout server passes it)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    vocab = tokenizer.get_vocab()
    ids = {int(vocab[token]) for token in VISION_TOKENS if token in vocab and vocab[token] != unk}
    for attr in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        value = getattr(hf_config, attr, None) if hf_config is not None else None
        if isinstance(value, int):
            ids.add(value)
    return sorted(ids)


def pick_device(device: str = "auto") -> str:
    """``cuda`` when asked or when ``auto`` finds a GPU, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_model(model: str, device: str) -> Any:
    """The checkpoint as an image-text-to-text model (Qwen2-VL / Qwen2.5-VL), bf16 on CUDA, fp32 on CPU."""
    import torch
    from transformers import AutoModelForImageTextToText

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    loaded = AutoModelForImageTextToText.from_pretrained(model, dtype=dtype, attn_implementation="sdpa")
    return loaded.to(device).eval()


def generate_hf(
    model: str,
    requests: Sequence[EvalRequest],
    *,
    max_new_tokens: int = SAMPLING["max_tokens"],
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "auto",
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """One completion per request with transformers ``generate``; returns prediction records in request order.

    ``threads``: torch CPU threads (default: torch's own choice). On a CPU shared with other jobs,
    ``threads=1`` avoids OpenMP oversubscription (measured 16x faster for the tiny model there).
    """
    import torch
    from verl.utils import hf_processor

    processor = hf_processor(model)
    if processor is None or not hasattr(processor, "image_processor"):
        raise ValueError(f"{model}: no image processor loads from it; the hf engine needs a vision-language model")
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _generate(processor, model, requests, max_new_tokens, seed, batch_size, pick_device(device))
    finally:
        torch.set_num_threads(previous_threads)


def _generate(
    processor: Any,
    model: str,
    requests: Sequence[EvalRequest],
    max_new_tokens: int,
    seed: int,
    batch_size: int,
    device: str,
) -> list[dict[str, Any]]:
    """Load the model on ``device`` and generate the requests in left-padded batches."""
    import torch
    from tqdm import tqdm
    from transformers import set_seed

    tokenizer = processor.tokenizer
    llm = load_model(model, device)
    kwargs = generate_kwargs(max_new_tokens, vision_token_ids(tokenizer))
    kwargs["pad_token_id"] = tokenizer.pad_token_id
    patch_size = image_patch_size(processor)
    set_seed(seed)

    records: list[dict[str, Any]] = []
    with tqdm(total=len(requests), desc="generating (hf)", unit="question") as progress:
        for start in range(0, len(requests), batch_size):
            chunk = requests[start : start + batch_size]
            prompts, images = [], []
            for request in chunk:
                prompt, request_images = model_input(processor, request, patch_size)
                prompts.append(prompt)
                images.extend(request_images)
            batch = processor(text=prompts, images=images or None, padding=True, return_tensors="pt").to(device)
            with torch.inference_mode():
                output = llm.generate(**batch, **kwargs)
            completions = tokenizer.batch_decode(output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
            records += [prediction_record(r, text) for r, text in zip(chunk, completions, strict=True)]
            progress.update(len(chunk))
    return records
