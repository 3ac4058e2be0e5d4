"""Token counts of dataset rows as verl sees them, without running the multimodal processor.

One implementation, used by ``ReasonRFTRLDataset``'s overlong-prompt filter (``data.length_filter=exact``)
and by ``reason-rft preflight``. verl's filter (``RLHFDataset.maybe_filter_out_long_prompts``) loads,
resizes and patchifies every image to learn ``len(input_ids)``; the count only depends on

* the rendered chat template (one ``<|image_pad|>`` per image), tokenized as the processor tokenizes it;
* per image, the processor's grid: the image is resized twice, first by qwen-vl-utils' ``fetch_image``
  (factor ``image_patch_size * 2``, the entry's ``max_pixels``/``min_pixels``), then by the image processor
  (factor ``patch_size * merge_size``, its ``size`` bounds), and becomes ``(h/patch)*(w/patch)/merge²``
  tokens. The original size comes from the file header (no decode).

The processor replaces the i-th ``<|image_pad|>`` by ``n_i`` copies and tokenizes the result. The pad is an
added (special) token: the tokenizer splits the text at every added token before running the model and
tokenizes the pieces in between independently, and the pieces between consecutive copies are empty, so
``len(tokenize(expanded)) == len(tokenize(rendered)) + sum(n_i - 1)``. When the pad is not an added token
of the tokenizer the expanded text itself is tokenized. ``tests/test_prompt_tokens.py`` checks the count
against the processor on random images, ``tests/data/test_length_filter.py`` against verl's filter.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, replace
from io import BytesIO
from typing import Any, Callable, Iterable, Mapping, Sequence

#: qwen_vl_utils.vision_process constants (0.0.14): fetch_image's factor is image_patch_size * 2.
FETCH_MERGE_SIZE = 2
FETCH_MIN_TOKENS = 4
FETCH_MAX_TOKENS = 16384
MAX_RATIO = 200
#: image-processor types whose resize and grid rule :class:`VisionRule` reproduces (Qwen2-VL, Qwen2.5-VL, Qwen3-VL)
QWEN2VL_IMAGE_PROCESSORS = ("Qwen2VLImageProcessor", "Qwen2VLImageProcessorFast", "Qwen2VLImageProcessorPil")
#: ``data.mm_processor_kwargs`` keys the count understands (others: use data.length_filter=verl)
KNOWN_MM_KWARGS = frozenset({"min_pixels", "max_pixels", "size"})


class UnsupportedProcessor(ValueError):
    """The model's processor is not one whose token rule this module knows."""


def _round(n: float, f: int) -> int:
    return round(n / f) * f


def fetch_resize(height: int, width: int, factor: int, min_pixels: int | None, max_pixels: int | None) -> tuple[int, int]:
    """qwen_vl_utils 0.0.14 ``smart_resize`` (it differs from transformers' at the ``factor`` floor)."""
    max_pixels = max_pixels if max_pixels is not None else FETCH_MAX_TOKENS * factor**2
    min_pixels = min_pixels if min_pixels is not None else FETCH_MIN_TOKENS * factor**2
    if max_pixels < min_pixels:
        raise ValueError("The max_pixels of image must be greater than or equal to min_pixels.")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"absolute aspect ratio must be smaller than {MAX_RATIO}, got {max(height, width) / min(height, width)}")
    h_bar, w_bar = max(factor, _round(height, factor)), max(factor, _round(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar, w_bar = math.floor(height / beta / factor) * factor, math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar, w_bar = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class VisionRule:
    """Qwen2-VL-family image-token arithmetic: the image processor's settings plus verl's fetch patch size."""

    patch_size: int = 14
    merge_size: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    do_resize: bool = True
    #: ``image_patch_size`` verl passes to qwen-vl-utils (``data.image_patch_size`` or the processor's patch size)
    fetch_patch_size: int = 14

    @classmethod
    def from_image_processor(cls, image_processor: Any, image_patch_size: int | None = None) -> VisionRule:
        name = type(image_processor).__name__
        if name not in QWEN2VL_IMAGE_PROCESSORS:
            raise UnsupportedProcessor(f"image processor {name} is not a Qwen2-VL one ({', '.join(QWEN2VL_IMAGE_PROCESSORS)})")
        size = image_processor.size
        get = size.get if isinstance(size, Mapping) else lambda k: getattr(size, k, None)
        patch = int(image_processor.patch_size)
        return cls(patch, int(image_processor.merge_size), int(get("shortest_edge")), int(get("longest_edge")),
                   bool(image_processor.do_resize), int(image_patch_size or patch))

    @classmethod
    def from_config_dict(cls, config: Mapping[str, Any], image_patch_size: int | None = None) -> VisionRule:
        """From a saved image-processor config; ``min_pixels``/``max_pixels`` override ``size`` as in its ``__init__``."""
        name = str(config.get("image_processor_type", ""))
        if name not in QWEN2VL_IMAGE_PROCESSORS:
            raise UnsupportedProcessor(f"image_processor_type {name!r} is not a Qwen2-VL one ({', '.join(QWEN2VL_IMAGE_PROCESSORS)})")
        size = dict(config.get("size") or {"shortest_edge": cls.min_pixels, "longest_edge": cls.max_pixels})
        if config.get("min_pixels") is not None:
            size["shortest_edge"] = config["min_pixels"]
        if config.get("max_pixels") is not None:
            size["longest_edge"] = config["max_pixels"]
        patch = int(config.get("patch_size", cls.patch_size))
        return cls(patch, int(config.get("merge_size", cls.merge_size)), int(size["shortest_edge"]), int(size["longest_edge"]),
                   bool(config.get("do_resize", True)), int(image_patch_size or patch))

    @classmethod
    def from_model(cls, model_path: str, image_patch_size: int | None = None) -> VisionRule:
        """Read the image-processor config of a model (``processor_config.json`` as transformers 5 writes it,
        else ``preprocessor_config.json``); raises :class:`UnsupportedProcessor` when neither is usable."""
        processor = _model_json(model_path, "processor_config.json") or {}
        config = processor.get("image_processor") or _model_json(model_path, "preprocessor_config.json")
        if not config:
            raise UnsupportedProcessor(f"no image-processor config (processor_config.json, preprocessor_config.json) in {model_path}")
        return cls.from_config_dict(config, image_patch_size)

    def with_processor_kwargs(self, kwargs: Mapping[str, Any] | None) -> VisionRule:
        """``data.mm_processor_kwargs`` as the processor call applies them (min and max together, or ``size``)."""
        kwargs = dict(kwargs or {})
        unknown = set(kwargs) - KNOWN_MM_KWARGS
        if unknown:
            raise UnsupportedProcessor(f"data.mm_processor_kwargs {sorted(unknown)}: the exact count knows only {sorted(KNOWN_MM_KWARGS)}")
        rule = self
        if kwargs.get("size"):
            size = dict(kwargs["size"])
            rule = replace(rule, min_pixels=int(size.get("shortest_edge", rule.min_pixels)), max_pixels=int(size.get("longest_edge", rule.max_pixels)))
        if kwargs.get("min_pixels") is not None and kwargs.get("max_pixels") is not None:
            rule = replace(rule, min_pixels=int(kwargs["min_pixels"]), max_pixels=int(kwargs["max_pixels"]))
        return rule

    def image_tokens(self, entry: Mapping[str, Any] | Any) -> int:
        """Tokens one image item of a message (``{"type": "image", "image": ..., "max_pixels": ...}``) becomes."""
        if not isinstance(entry, Mapping):
            entry = {"image": entry}
        factor = self.fetch_patch_size * FETCH_MERGE_SIZE
        if entry.get("bytes") is not None and "image" not in entry:  # a raw dataset entry (SFT estimate)
            entry = {**entry, "image": _open_bytes(entry["bytes"])}
        if "resized_height" in entry and "resized_width" in entry:
            height, width = fetch_resize(int(entry["resized_height"]), int(entry["resized_width"]), factor, None, None)
        else:
            source = next((entry[k] for k in ("image", "image_url", "path") if entry.get(k) is not None), None)
            if source is None:
                raise ValueError(f"an image entry without an image, image_url or path: keys {sorted(entry)}")
            width, height = image_size(source)
            size = f"{width}x{height}"
            height, width = fetch_resize(height, width, factor, entry.get("min_pixels"), entry.get("max_pixels"))
            if not height or not width:  # verl's image loader fails on it too (PIL cannot resize to zero)
                raise ValueError(f"a {size} image resizes to {width}x{height} under max_pixels={entry.get('max_pixels')} (qwen-vl-utils' smart_resize)")
        if self.do_resize:
            from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

            height, width = smart_resize(height, width, factor=self.patch_size * self.merge_size,
                                         min_pixels=self.min_pixels, max_pixels=self.max_pixels)
        return (height // self.patch_size) * (width // self.patch_size) // (self.merge_size**2)


def _model_json(model_path: str, name: str) -> dict | None:
    from transformers.utils import cached_file

    try:
        path = cached_file(model_path, name, _raise_exceptions_for_missing_entries=False)
    except OSError:
        return None
    if path is None:
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _open_bytes(data: bytes):
    from PIL import Image

    return Image.open(BytesIO(data))


def image_size(image: Any) -> tuple[int, int]:
    """(width, height) of an image as ``fetch_image`` opens it, from the header only (no pixel decode)."""
    from PIL import Image  # here, not at module level: `reason-rft` start-up imports this module via the pipeline

    if isinstance(image, Image.Image):
        return image.size
    if not isinstance(image, str):
        raise ValueError(f"Unrecognized image input, support local path, http url, base64 and PIL.Image, got {type(image).__name__}")
    if image.startswith(("http://", "https://")):
        import requests

        with requests.get(image, stream=True, timeout=30) as response:
            response.raise_for_status()
            source: Any = BytesIO(response.content)
    elif image.startswith("file://"):
        source = image[7:]
    elif image.startswith("data:image"):
        if "base64," not in image:
            raise ValueError(f"Unrecognized image input, support local path, http url, base64 and PIL.Image, got {image[:40]}")
        source = BytesIO(base64.b64decode(image.split("base64,", 1)[1]))
    else:
        source = image
    with Image.open(source) as opened:
        return opened.size


def vision_items(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The items qwen_vl_utils' ``extract_vision_info`` collects, in order."""
    items = []
    for message in messages:
        if isinstance(message.get("content"), list):
            for item in message["content"]:
                if "image" in item or "image_url" in item or "video" in item or item.get("type", "text") in ("image", "image_url", "video"):
                    items.append(item)
    return items


def _has_visual(messages: Sequence[Mapping[str, Any]]) -> bool:
    """verl's test in ``_process_multi_modal_info``: only then are images passed to the processor."""
    return any(
        isinstance(m.get("content"), list) and any(isinstance(i, dict) and i.get("type") in {"image", "video"} for i in m["content"])
        for m in messages
    )


def _has_audio(messages: Sequence[Mapping[str, Any]]) -> bool:
    return any(isinstance(m.get("content"), list) and any(isinstance(i, dict) and i.get("type") == "audio" for i in m["content"]) for m in messages)


@dataclass
class Measured:
    """Token counts of rows (``None`` where a row could not be measured) and why those rows failed."""

    lengths: list[int | None]
    failures: list[tuple[int, str]]


class PromptCounter:
    """``len(input_ids)`` of verl's overlong-prompt filter for messages built by ``RLHFDataset._build_messages``."""

    def __init__(self, tokenizer, rule: VisionRule, render: Callable[[list], str], image_token: str = "<|image_pad|>") -> None:
        self.tokenizer = tokenizer
        self.rule = rule
        self.render = render
        self.image_token = image_token
        #: pad is an added token: count tokens of the rendered text and add the image tokens (see module doc)
        self.pad_is_added = image_token in tokenizer.get_added_vocab()

    @classmethod
    def for_dataset(cls, dataset) -> PromptCounter:
        """The counter of a verl ``RLHFDataset`` that has a processor (its template, tokenizer, settings)."""
        processor = dataset.processor
        rule = VisionRule.from_image_processor(processor.image_processor, dataset.image_patch_size).with_processor_kwargs(dataset.mm_processor_kwargs)
        kwargs = _template_kwargs(dataset)
        return cls(processor.tokenizer, rule,
                   lambda messages: processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **kwargs),
                   processor.image_token)

    @classmethod
    def for_model(cls, model_path: str, tokenizer, dataset) -> PromptCounter:
        """Without a processor object (no torchvision): the model folder's processor chat template and config."""
        rule = VisionRule.from_model(model_path, dataset.config.get("image_patch_size")).with_processor_kwargs(dataset.mm_processor_kwargs)
        template = _processor_chat_template(model_path) or tokenizer.chat_template
        kwargs = _template_kwargs(dataset)
        return cls(tokenizer, rule,
                   lambda messages: tokenizer.apply_chat_template(messages, chat_template=template, add_generation_prompt=True, tokenize=False, **kwargs),
                   getattr(tokenizer, "image_token", None) or "<|image_pad|>")

    def _row(self, messages: list) -> tuple[str, int, bool]:
        """(rendered text, image tokens beyond one pad each, multimodal branch of verl's filter)."""
        if _has_audio(messages):
            raise ValueError("audio items: the exact count measures images only (set data.length_filter=verl)")
        text = self.render(messages)
        if not _has_visual(messages):
            return text, 0, False
        counts = []
        for item in vision_items(messages):
            if "image" in item or "image_url" in item:
                counts.append(self.rule.image_tokens(item))
            elif "video" in item:
                raise ValueError("video items: the exact count measures images only (set data.length_filter=verl)")
            else:
                raise ValueError("image, image_url or video should in content.")
        pads = text.count(self.image_token)
        if pads > len(counts):
            raise ValueError(f"the rendered prompt has {pads} {self.image_token} tokens for {len(counts)} images")
        extra = sum(n - 1 for n in counts[:pads])
        if not self.pad_is_added:  # tokenize the text exactly as the processor expands it
            for n in counts[:pads]:
                text = text.replace(self.image_token, "<|placeholder|>" * n, 1)
            text, extra = text.replace("<|placeholder|>", self.image_token), 0
        return text, extra, True

    def count(self, messages: list) -> int:
        return self.measure([messages]).lengths[0] or 0

    def measure(self, messages: Iterable[list], total: int | None = None, desc: str | None = None, batch: int = 256) -> Measured:
        """Counts for many rows (``messages`` yields each row's built messages, or raises for a bad row)."""
        from tqdm import tqdm

        lengths: list[int | None] = []
        failures: list[tuple[int, str]] = []
        pending: list[tuple[int, str, int, bool]] = []

        def flush() -> None:
            for special in (True, False):  # the processor tokenizes with special tokens, verl's text-only path without
                group = [p for p in pending if p[3] is special]
                if group:
                    ids = self.tokenizer([p[1] for p in group], add_special_tokens=special, return_attention_mask=False)["input_ids"]
                    for (i, _, extra, _), row_ids in zip(group, ids):
                        lengths[i] = len(row_ids) + extra
            pending.clear()

        iterator = iter(messages)
        with tqdm(total=total, desc=desc, unit="row", disable=desc is None, mininterval=1.0) as bar:
            i = 0
            while True:
                try:
                    row = next(iterator)
                    if isinstance(row, Exception):  # row_messages could not build this row
                        raise row
                    pending.append((i, *self._row(row)))
                    lengths.append(None)
                except StopIteration:
                    break
                except Exception as exc:  # noqa: BLE001 - each bad row is reported by the caller
                    lengths.append(None)
                    failures.append((i, f"{type(exc).__name__}: {exc}"))
                i += 1
                bar.update()
                if len(pending) >= batch:
                    flush()
            flush()
        return Measured(lengths, failures)


def _template_kwargs(dataset) -> dict[str, Any]:
    kwargs = dict(dataset.apply_chat_template_kwargs or {})
    if getattr(dataset, "tool_schemas", None) is not None:
        kwargs["tools"] = dataset.tool_schemas
    return kwargs


def _processor_chat_template(model_path: str) -> str | None:
    """The processor-level chat template (``chat_template.jinja``, or ``chat_template.json``) of a model."""
    from transformers.utils import cached_file

    for name in ("chat_template.jinja", "chat_template.json"):
        try:
            path = cached_file(model_path, name, _raise_exceptions_for_missing_entries=False)
        except OSError:
            path = None
        if path:
            text = open(path, encoding="utf-8").read()
            return json.loads(text)["chat_template"] if name.endswith(".json") else text
    return None


class _MessageBuilder:
    """The attributes verl's ``RLHFDataset._build_messages`` reads, for a dataset built without a processor."""

    def __init__(self, dataset) -> None:
        self.image_key, self.video_key, self.audio_key = dataset.image_key, dataset.video_key, dataset.audio_key
        self.processor = True  # _build_messages only asserts that one exists; it never calls it


def row_messages(dataset, rows: Iterable[Mapping[str, Any]]) -> Iterable[list | Exception]:
    """Each row's messages, built by verl's own ``_build_messages`` (as its filter and rollout build them).

    A row that cannot be built yields its exception instead, so the rows after it are still measured.
    """
    from verl.utils.dataset.rl_dataset import RLHFDataset

    owner = dataset if dataset.processor is not None else _MessageBuilder(dataset)
    for row in rows:
        try:
            yield RLHFDataset._build_messages(owner, dict(row), key=dataset.prompt_key)
        except Exception as exc:  # noqa: BLE001 - measure() reports it with the row's index
            yield exc


def dataframe_rows(dataframe, keys: Sequence[str], batch: int = 512) -> Iterable[dict[str, Any]]:
    """Rows of a ``datasets.Dataset`` restricted to ``keys`` (the ones present), read a batch at a time."""
    present = [k for k in keys if k in dataframe.column_names]
    for chunk in dataframe.select_columns(present).iter(batch_size=batch):
        for values in zip(*(chunk[k] for k in present)):
            yield dict(zip(present, values))


def measure_dataset(dataset, dataframe, counter: PromptCounter, limit: int | None = None, desc: str | None = None) -> Measured:
    """Token counts of the first ``limit`` rows (all if None) of ``dataframe`` as ``dataset`` builds them."""
    if limit is not None:
        dataframe = dataframe.select(range(min(limit, len(dataframe))))
    keys = [dataset.prompt_key, dataset.image_key, dataset.video_key, dataset.audio_key]
    return counter.measure(row_messages(dataset, dataframe_rows(dataframe, keys)), total=len(dataframe), desc=desc)


def verl_prompt_tokens(dataset, row: Mapping[str, Any]) -> int:
    """verl's own measure (the processor run of ``RLHFDataset.maybe_filter_out_long_prompts``) of one row."""
    from verl.utils.tokenizer.tokenizer import build_multimodal_processor_inputs

    messages = dataset._build_messages(dict(row), key=dataset.prompt_key)
    kwargs = _template_kwargs(dataset)
    raw = dataset.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **kwargs)
    images, videos, audios = dataset._process_multi_modal_info(messages, dataset.image_patch_size, dataset.config)
    if images is None and videos is None and audios is None:
        return len(dataset.processor.tokenizer(text=raw, add_special_tokens=False, return_attention_mask=False)["input_ids"])
    inputs = build_multimodal_processor_inputs(
        dataset.processor, text=[raw], images=images, videos=videos, audio=audios, mm_processor_kwargs=dataset.mm_processor_kwargs
    )
    return len(inputs["input_ids"][0])


# --- SFT conversations (preflight; estimated without a processor, verl's own dataset with one) ---------


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


def estimated_sft_tokens(
    tokenizer, rule: VisionRule, messages: Sequence[Mapping[str, Any]], images: Sequence[Any]
) -> tuple[int, int]:
    """(all tokens, assistant tokens) of an SFT conversation whose last turn is the assistant's (estimate:
    verl's SFT dataset tokenizes turn by turn)."""
    vision = sum(rule.image_tokens(e) - 1 for e in images)
    total = _template_tokens(tokenizer, messages, False) + vision
    prompt = _template_tokens(tokenizer, [m for m in messages if m["role"] != "assistant"], True) + vision
    return total, total - prompt


def exact_sft_tokens(dataset, index: int) -> tuple[int, int]:
    """(all tokens, loss tokens) of item ``index`` from verl's ``MultiTurnSFTDataset.__getitem__``."""
    item = dataset[index]
    return int(item["input_ids"].shape[-1]), int(item["loss_mask"].sum())
