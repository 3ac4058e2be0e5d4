"""A randomly initialised tiny Qwen2-VL, built offline (tests, ``reason-rft run --model tiny``).

Everything is made on the spot: a byte-level BPE tokenizer trained with ``tokenizers`` on a
small built-in corpus (plus the prompt templates of ``rewards/prompts.yaml``), Qwen2-VL's
special tokens and chat template, transformers' PIL image processor, the video processor,
a tiny ``Qwen2VLConfig`` and seeded random weights (~2 MB). Deterministic and idempotent.

transformers 5.x cannot build a ``Qwen2VLProcessor`` without torchvision (its video-processor
slot is torchvision-only); :func:`processor_available` says whether this environment can.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

#: Qwen2-VL's added tokens, in the original order.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: The chat template of Qwen/Qwen2-VL-7B-Instruct (default system prompt, vision placeholders).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = (
    "How many objects are left? Subtract all red cubes. Subtract all small spheres.",
    "What is the measure of angle ABC? A. 30 B. 45 C. 60 D. 90 Find x. Round to the nearest tenth.",
    "change_size change_color change_material change_shape change_position",
    "small medium large yellow gray cyan blue brown green red purple glass metal rubber cube sphere cylinder",
    "front behind left right front_left front_right behind_left behind_right",
    "<think>\nThere are 3 cubes and 2 spheres, so 5 objects remain.\n</think>\n<answer>\n5\n</answer>",
    "<think> </think> <answer> </answer> 0 1 2 3 4 5 6 7 8 9 10 3.5 12.0 A B C D",
    "The first image shows the initial state and the second image shows the final state.",
    "You are a helpful assistant. user assistant system",
)

#: The file a complete build writes last; its presence makes :func:`build_tiny_qwen2_vl` a no-op.
_MARKER = "tiny_qwen2_vl.json"
VOCAB_SIZE = 1024
SEED = 0


def processor_available() -> bool:
    """Whether transformers can build a ``Qwen2VLProcessor`` here (it needs torchvision)."""
    from transformers.utils import is_torchvision_available

    return is_torchvision_available()


def _corpus() -> list[str]:
    from verl_reason_rft.rewards._prompts import _all

    texts = list(_CORPUS)
    for templates in _all().values():
        texts.extend(str(t) for t in templates.values())
    return texts


def build_tokenizer():
    """A deterministic byte-level BPE tokenizer with Qwen2-VL's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[3:]),
        model_max_length=32768,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_config(tokenizer):
    """A tiny Qwen2-VL config whose token ids match ``tokenizer``."""
    from transformers import Qwen2VLConfig

    ids = tokenizer.convert_tokens_to_ids
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
        bos_token_id=ids("<|endoftext|>"),
        eos_token_id=ids("<|im_end|>"),
        pad_token_id=ids("<|endoftext|>"),
    )
    vision = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2, patch_size=14)
    return Qwen2VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        architectures=["Qwen2VLForConditionalGeneration"],
    )


def _save_processor(tokenizer, out: Path) -> None:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    image_processor = Qwen2VLImageProcessorPil()
    if processor_available():
        from transformers import Qwen2VLProcessor, Qwen2VLVideoProcessor

        processor = Qwen2VLProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=Qwen2VLVideoProcessor(),
            chat_template=CHAT_TEMPLATE,
        )
        processor.save_pretrained(out)
        return
    # No torchvision: the processor object cannot exist here, but its files can. Same layout as
    # ``Qwen2VLProcessor.save_pretrained``, so the directory loads wherever torchvision is installed.
    tokenizer.save_pretrained(out)
    image_processor.save_pretrained(out)
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    (out / "processor_config.json").write_text(json.dumps({"processor_class": "Qwen2VLProcessor"}, indent=2))


def build_tiny_qwen2_vl(output_dir: str | os.PathLike) -> Path:
    """Build (once) a tiny random Qwen2-VL with tokenizer and processor in ``output_dir``."""
    out = Path(output_dir)
    if (out / _MARKER).is_file():
        return out
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tokenizer = build_tokenizer()
        config = build_config(tokenizer)
        torch.manual_seed(SEED)
        model = Qwen2VLForConditionalGeneration(config).eval()
        model.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        _save_processor(tokenizer, tmp)
        info = {"seed": SEED, "vocab_size": len(tokenizer), "parameters": sum(p.numel() for p in model.parameters())}
        (tmp / _MARKER).write_text(json.dumps(info, indent=2))
        if out.exists():  # an empty or half-built directory (e.g. a pytest tmp dir): marker goes last
            for child in sorted(tmp.iterdir(), key=lambda c: c.name == _MARKER):
                target = out / child.name
                if target.is_dir():
                    shutil.rmtree(target)
                os.replace(child, target)
            tmp.rmdir()
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
