"""The offline tiny Qwen2-VL: loads through transformers and verl, expands image tokens, runs a forward pass."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoModelForImageTextToText, AutoTokenizer
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from verl.utils import hf_processor, hf_tokenizer

from verl_reason_rft.tiny_model import CHAT_TEMPLATE, SPECIAL_TOKENS, build_tiny_qwen2_vl, processor_available


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_is_idempotent_and_deterministic(tiny_model_dir: Path, tmp_path: Path) -> None:
    stamps = {p.name: p.stat().st_mtime_ns for p in tiny_model_dir.iterdir()}
    assert build_tiny_qwen2_vl(tiny_model_dir) == tiny_model_dir
    assert {p.name: p.stat().st_mtime_ns for p in tiny_model_dir.iterdir()} == stamps  # nothing rewritten
    again = build_tiny_qwen2_vl(tmp_path / "again")
    for name in ("tokenizer.json", "model.safetensors", "config.json"):
        assert _digest(again / name) == _digest(tiny_model_dir / name), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left behind
    assert (tiny_model_dir / "model.safetensors").stat().st_size < 5 * 2**20


def test_tokenizer_and_config_load_through_verl_and_agree(tiny_model_dir: Path) -> None:
    tokenizer = hf_tokenizer(str(tiny_model_dir))
    config = AutoConfig.from_pretrained(tiny_model_dir)
    assert config.architectures == ["Qwen2VLForConditionalGeneration"]
    for token in SPECIAL_TOKENS:
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token
    ids = tokenizer.convert_tokens_to_ids
    assert (config.image_token_id, config.video_token_id) == (ids("<|image_pad|>"), ids("<|video_pad|>"))
    assert (config.vision_start_token_id, config.vision_end_token_id) == (ids("<|vision_start|>"), ids("<|vision_end|>"))
    assert config.text_config.vocab_size >= len(tokenizer)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    text = "How many cubes? <think>\n3\n</think>\n<answer>\n3\n</answer>"
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_chat_template_renders_qwen2_vl_turns(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tokenizer.chat_template == CHAT_TEMPLATE
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]},
        {"role": "assistant", "content": "3"},
    ]
    assert tokenizer.apply_chat_template(messages, tokenize=False) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>How many?<|im_end|>\n"
        "<|im_start|>assistant\n3<|im_end|>\n"
    )
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")


def test_forward_pass_with_one_image(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(tiny_model_dir)  # PIL backend: no torchvision needed
    vision = image_processor(images=[Image.new("RGB", (56, 84), (10, 200, 30))], return_tensors="pt")
    n_tokens = int(vision["image_grid_thw"][0].prod()) // image_processor.merge_size**2
    assert n_tokens == (84 // 14) * (56 // 14) // 4
    text = f"<|im_start|>user\n<|vision_start|>{'<|image_pad|>' * n_tokens}<|vision_end|>How many?<|im_end|>\n"
    input_ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)])
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        out = model(
            input_ids=input_ids,
            pixel_values=vision["pixel_values"],
            image_grid_thw=vision["image_grid_thw"],
            mm_token_type_ids=(input_ids == model.config.image_token_id).int(),  # 1 = image token, as the processor sets
        )
    assert out.logits.shape == (1, input_ids.shape[1], model.config.text_config.vocab_size)
    assert torch.isfinite(out.logits).all()


@pytest.mark.skipif(not processor_available(), reason="transformers builds a Qwen2-VL processor only with torchvision")
def test_processor_loads_through_verl_and_expands_image_tokens(tiny_model_dir: Path) -> None:
    processor = hf_processor(str(tiny_model_dir))
    assert type(processor).__name__ == "Qwen2VLProcessor" and callable(processor.get_rope_index)
    patch, merge = processor.image_processor.patch_size, processor.image_processor.merge_size
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Same?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    sizes = [(56, 84), (112, 56)]  # (width, height), multiples of patch*merge: no resize
    inputs = processor(text=[text], images=[Image.new("RGB", s) for s in sizes], return_tensors="pt")
    expected = sum((w // patch) * (h // patch) // merge**2 for w, h in sizes)
    assert inputs["input_ids"][0].tolist().count(processor.image_token_id) == expected
    assert inputs["image_grid_thw"].tolist() == [[1, h // patch, w // patch] for w, h in sizes]
