"""The hf_cpu rollout server, called directly (no Ray): generation from the tiny model with images,
vision tokens suppressed, log-probs of the sampled tokens, weight updates."""

from __future__ import annotations

import asyncio
import math
import types

import pytest
import torch
from PIL import Image

from verl_reason_rft.cpu.hf_server import HFRolloutServer

pytest.importorskip("torchvision")


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model_config = types.SimpleNamespace(
        local_path=str(tiny_model_dir), path=str(tiny_model_dir), tokenizer=processor.tokenizer, processor=processor
    )
    config = types.SimpleNamespace(response_length=12, prompt_length=1024)
    return HFRolloutServer(config, model_config)


@pytest.fixture(scope="module")
def prompt(server):
    """Prompt ids with expanded image placeholders (as verl's agent loop sends them) and the images."""
    processor = server.processor
    images = [Image.new("RGB", (56, 56), (200, 30, 30)), Image.new("RGB", (84, 56), (30, 30, 200))]
    vision = "<|vision_start|><|image_pad|><|vision_end|>"
    messages = [{"role": "user", "content": f"{vision}{vision}How many objects are left?"}]
    text = processor.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    encoded = processor(text=[text], images=images, return_tensors="pt")
    return encoded["input_ids"][0].tolist(), images


def _vision_boost(server, amount: float = 100.0):
    """A forward hook on the HF model's lm_head that makes every vision token the likeliest by far."""
    ids = torch.tensor(server.suppress_ids)

    def hook(module, inputs, output):
        output = output.clone()
        output[..., ids] += amount
        return output

    return server.model.lm_head.register_forward_hook(hook)


def test_vision_tokens_cover_qwen2_vl_placeholders(server):
    vocab = server.tokenizer.get_vocab()
    for token in ("<|image_pad|>", "<|vision_start|>", "<|vision_end|>", "<|video_pad|>"):
        assert vocab[token] in server.suppress_ids


def test_generation_never_emits_vision_tokens(server, prompt):
    prompt_ids, images = prompt
    handle = _vision_boost(server)
    try:
        out = server.generate_sync(prompt_ids, {"temperature": 1.0, "top_p": 1.0, "top_k": -1}, images)
        assert out["token_ids"] and not set(out["token_ids"]) & set(server.suppress_ids)
        # the boost is real: without suppression the same model emits vision tokens
        saved, server.suppress_ids = server.suppress_ids, []
        try:
            unsuppressed = server.generate_sync(prompt_ids, {"temperature": 1.0}, images)
        finally:
            server.suppress_ids = saved
        assert set(unsuppressed["token_ids"]) & set(saved)
    finally:
        handle.remove()


def test_token_output_log_probs_match_a_forward_pass(server, prompt):
    prompt_ids, images = prompt
    output = asyncio.run(
        server.generate(prompt_ids=prompt_ids, sampling_params={"temperature": 1.0, "top_k": -1}, request_id="r", image_data=images)
    )
    tokens, log_probs = output.token_ids, output.log_probs
    assert 1 <= len(tokens) <= 12 and len(log_probs) == len(tokens)
    assert all(math.isfinite(lp) and lp <= 0 for lp in log_probs)

    full = torch.tensor([prompt_ids + tokens])
    inputs = server._vision_inputs(prompt_ids + tokens, images, None)
    with torch.no_grad():
        logits = server.model(input_ids=full, attention_mask=torch.ones_like(full), **inputs).logits[0]
    expected = torch.log_softmax(logits[len(prompt_ids) - 1 : -1].float(), dim=-1)
    expected = expected[torch.arange(len(tokens)), torch.tensor(tokens)]
    assert torch.allclose(torch.tensor(log_probs), expected, atol=1e-3)


def test_placeholder_count_mismatch_is_a_clear_error(server, prompt):
    prompt_ids, images = prompt
    with pytest.raises(ValueError, match="image_pad"):
        server.generate_sync(prompt_ids, {"temperature": 0}, images[:1])


def test_weight_update_replaces_parameters(server):
    name, param = next(iter(server.model.named_parameters()))
    original = param.detach().clone()
    try:
        loaded = server.load_weights([(name, torch.full_like(original, 0.5))], global_steps=3)
        assert loaded == 1 and torch.all(param == 0.5) and server.global_steps == 3
        with pytest.raises(KeyError, match="match no model parameter"):
            server.load_weights([("no.such.weight", torch.zeros(1))])
    finally:
        server.load_weights([(name, original)])
