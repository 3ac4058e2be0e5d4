"""Token counts of dataset rows, as verl's trainers will see them (used by ``reason-rft preflight``).

With the model's processor (it needs torchvision), a prompt is measured exactly the way
``RLHFDataset.maybe_filter_out_long_prompts`` measures it, and an SFT row by verl's own
``MultiTurnSFTDataset.__getitem__``. Without it, counts are estimated: the tokenizer's chat
template for the text, plus Qwen2-VL's image-token rule (``smart_resize`` of each image to its
``max_pixels``/``min_pixels``, then one token per ``merge_size``² patches) for every image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Mapping, Sequence



@dataclass(frozen=True)
class VisionRule:
    """Qwen2-VL image-token arithmetic: patch size, merge size and the processor's own pixel bounds."""

    patch_size: int = 14
    merge_size: int = 2
    min_pixels: int = 3136
    max_pixels: int = 12845056

    @classmethod
    def from_model(cls, model_path: str) -> VisionRule:
        """Read ``preprocessor_config.json`` of a local model folder (Qwen2-VL defaults otherwise)."""
        config_file = Path(model_path).expanduser() / "preprocessor_config.json"
        if not config_file.is_file():
            return cls()
        config = json.loads(config_file.read_text())
        size = config.get("size") or {}
        return cls(
            patch_size=int(config.get("patch_size", 14)),
            merge_size=int(config.get("merge_size", 2)),
            min_pixels=int(size.get("shortest_edge", config.get("min_pixels", cls.min_pixels))),
            max_pixels=int(size.get("longest_edge", config.get("max_pixels", cls.max_pixels))),
        )

    def image_tokens(self, entry: Any) -> int:
        """Tokens one ``images`` entry becomes (resized by qwen_vl_utils, then by the processor)."""
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        width, height = _image_size(entry)
        factor = self.patch_size * self.merge_size
        if isinstance(entry, Mapping):
            height, width = smart_resize(
                height,
                width,
                factor=factor,
                min_pixels=int(entry.get("min_pixels") or self.min_pixels),
                max_pixels=int(entry.get("max_pixels") or self.max_pixels),
            )
        height, width = smart_resize(height, width, factor=factor, min_pixels=self.min_pixels, max_pixels=self.max_pixels)
        return (height // self.patch_size) * (width // self.patch_size) // (self.merge_size**2)


def _image_size(entry: Any) -> tuple[int, int]:
    from PIL import Image  # here, not at module level: `reason-rft` start-up imports this module via the pipeline

    if isinstance(entry, Image.Image):
        return entry.size
    if isinstance(entry, Mapping):
        if entry.get("bytes") is not None:
            with Image.open(BytesIO(entry["bytes"])) as image:
                return image.size
        entry = entry.get("image") or entry.get("path")
    path = str(entry)
    with Image.open(path[len("file://"):] if path.startswith("file://") else path) as image:
        return image.size


def _structured(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``<image>`` placeholders as ``{"type": "image"}`` items, the form chat templates expand."""
    from verl_reason_rft.data_prep.rows import content_items

    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str) and "<image>" in content:
            content = content_items(content)
        out.append({**message, "content": content})
    return out


def _template_tokens(tokenizer, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool) -> int:
    text = tokenizer.apply_chat_template(_structured(messages), add_generation_prompt=add_generation_prompt, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def estimated_prompt_tokens(tokenizer, rule: VisionRule, messages: Sequence[Mapping[str, Any]], images: Sequence[Any]) -> int:
    """Prompt tokens with the generation prompt; each image counts its tokens instead of one pad."""
    return _template_tokens(tokenizer, messages, True) + sum(rule.image_tokens(e) - 1 for e in images)


def estimated_sft_tokens(
    tokenizer, rule: VisionRule, messages: Sequence[Mapping[str, Any]], images: Sequence[Any]
) -> tuple[int, int]:
    """(all tokens, assistant tokens) of an SFT conversation whose last turn is the assistant's."""
    vision = sum(rule.image_tokens(e) - 1 for e in images)
    total = _template_tokens(tokenizer, messages, False) + vision
    prompt = _template_tokens(tokenizer, [m for m in messages if m["role"] != "assistant"], True) + vision
    return total, total - prompt


def exact_prompt_tokens(dataset, row: Mapping[str, Any]) -> int:
    """verl's own measure (``RLHFDataset.maybe_filter_out_long_prompts``) of one row of ``dataset``."""
    from verl.utils.tokenizer.tokenizer import build_multimodal_processor_inputs

    messages = dataset._build_messages(dict(row), key=dataset.prompt_key)
    raw = dataset.processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False, **dict(dataset.apply_chat_template_kwargs)
    )
    images, videos, audios = dataset._process_multi_modal_info(messages, dataset.image_patch_size, dataset.config)
    inputs = build_multimodal_processor_inputs(
        dataset.processor, text=[raw], images=images, videos=videos, audio=audios,
        mm_processor_kwargs=dataset.mm_processor_kwargs,
    )
    return len(inputs["input_ids"][0])


def exact_sft_tokens(dataset, index: int) -> tuple[int, int]:
    """(all tokens, loss tokens) of item ``index`` from verl's ``MultiTurnSFTDataset.__getitem__``."""
    item = dataset[index]
    return int(item["input_ids"].shape[-1]), int(item["loss_mask"].sum())
