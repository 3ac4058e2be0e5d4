"""Offline generation for the test benchmarks, the same prompts as training, with one of two engines.

``vllm`` (:func:`generate`, GPU) or ``hf`` (:func:`verl_reason_rft.hf_generation.generate_hf`,
transformers ``generate`` on CPU or CUDA). Both take their prompts and images from
:func:`model_input`. Everything else is plain Python that runs on CPU: picking the prepared
``test_<data_source>.parquet`` files, turning their rows into requests (re-rendering the user text
for ``--prompt-style ans``), chat messages in verl's structure (images first, then text), the
chat-template prompt, SPEC §7 sampling parameters and the predictions JSONL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from verl_reason_rft.data.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, ImageSettings, resolve_rows
from verl_reason_rft.data.prompt_config import STYLES as PROMPT_STYLES
from verl_reason_rft.data.prompt_config import PromptSettings
from verl_reason_rft.data_prep.atomic import atomic_path
from verl_reason_rft.data_prep.prompt_overrides import load_overrides
from verl_reason_rft.data_prep.rows import IMAGE_PLACEHOLDER, content_items
from verl_reason_rft.tasks import get_registry, get_task

#: SPEC §7: one sample per question.
SAMPLING = {"n": 1, "temperature": 0.1, "top_p": 0.9, "top_k": 50, "max_tokens": 768}
GPU_HINT = (
    "`reason-rft eval --engine vllm` needs vLLM and a CUDA GPU: pip install 'verl-reason-rft[gpu]' "
    "(or use --engine hf: transformers generate, CPU or GPU)"
)
#: generation engines of ``reason-rft eval``
ENGINES = ("vllm", "hf")


class EvalDataError(ValueError):
    """A prepared test file or one of its rows cannot be evaluated; the message names them."""


class VLLMUnavailable(RuntimeError):
    """vLLM is not installed (CPU machines)."""


@dataclass(frozen=True)
class EvalRequest:
    """One test question, ready for the chat template."""

    id: str
    data_source: str
    prompt_style: str
    answer: str
    is_choice: bool
    #: the user content with one ``<image>`` per image, images first (verl's RL row form)
    content: str
    #: in prompt order: ``{"image": path}`` or ``{"bytes": ...}``, with ``max_pixels``/``min_pixels``
    images: tuple[Mapping[str, Any], ...]


def sampling_params(max_new_tokens: int = SAMPLING["max_tokens"], seed: int | None = None) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` (SPEC §7)."""
    params = dict(SAMPLING, max_tokens=max_new_tokens)
    if seed is not None:
        params["seed"] = seed
    return params


def resolve_benchmarks(names: Sequence[str]) -> list[str]:
    """Data sources for benchmark or task names (a task name means all its benchmarks), in order."""
    sources: list[str] = []
    for name in names:
        task = get_task(name)
        sources.extend(task.data_sources if name == task.name else [name])
    return list(dict.fromkeys(sources))


def prepared_test_file(data_dir: str | Path, data_source: str) -> Path:
    """``<data_dir>/<task>/test_<data_source>.parquet``, as ``reason-rft prepare`` writes it."""
    path = Path(data_dir) / get_task(data_source).name / f"test_{data_source}.parquet"
    if not path.is_file():
        raise FileNotFoundError(
            f"no prepared test file for benchmark {data_source!r}: {path} does not exist "
            "(run `reason-rft prepare`, and pass its output folder as --data-dir)"
        )
    return path


def _row_error(path: Path, index: int, message: str) -> EvalDataError:
    return EvalDataError(f"{path} row {index}: {message}")


def _user_content(path: Path, index: int, row: Mapping[str, Any]) -> str:
    users = [m for m in row.get("prompt") or [] if isinstance(m, Mapping) and m.get("role") == "user"]
    if len(users) != 1 or not isinstance(users[0].get("content"), str):
        raise _row_error(path, index, "field 'prompt' must hold exactly one user message with text content")
    return users[0]["content"]


def request_from_row(
    path: Path,
    index: int,
    row: Mapping[str, Any],
    images: Sequence[Mapping[str, Any]],
    prompts: PromptSettings,
) -> EvalRequest:
    """One RL/test parquet row (its ``images`` already resolved) as a request.

    The stored prompt is used as is when its style is the one asked for and no template is
    overridden (it is exactly what training saw); otherwise the user text is rendered from
    ``extra_info.problem`` / ``answer`` as the RL dataset does for ``data.prompt_templates``.
    """
    data_source = row.get("data_source")
    if not isinstance(data_source, str):
        raise _row_error(path, index, f"field 'data_source' must be a string, got {data_source!r}")
    task = get_task(data_source)
    extra = row.get("extra_info")
    if not isinstance(extra, Mapping):
        raise _row_error(path, index, "field 'extra_info' is missing")
    ground_truth = (row.get("reward_model") or {}).get("ground_truth", extra.get("answer"))
    if not isinstance(ground_truth, str):
        raise _row_error(path, index, "field 'reward_model.ground_truth' must be a string")
    content, style = _user_content(path, index, row), extra.get("prompt_style")
    if style != prompts.style or prompts.templates.get(task.name):
        content, style = prompts.user_content(data_source, extra, len(images), f"{path} row {index}")
    if content.count(IMAGE_PLACEHOLDER) != len(images):
        raise _row_error(
            path, index, f"{content.count(IMAGE_PLACEHOLDER)} {IMAGE_PLACEHOLDER} placeholders for {len(images)} images"
        )
    is_choice = extra.get("is_choice")
    return EvalRequest(
        id=str(extra.get("id", index)),
        data_source=data_source,
        prompt_style=style,
        answer=ground_truth,
        is_choice=is_choice if isinstance(is_choice, bool) else task.is_choice(ground_truth),
        content=content,
        images=tuple(images),
    )


def read_requests(
    path: str | Path,
    prompt_style: str = "cot",
    image_root: str | Path | None = None,
    prompt_templates: str | Path | Mapping[str, Mapping[str, str]] | None = None,
    limit: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_pixels: int = DEFAULT_MIN_PIXELS,
) -> list[EvalRequest]:
    """Requests for the rows of a prepared test parquet, with the RL dataset's image and prompt rules.

    Images resolve against ``image_root`` and carry the training pixel limits (every missing file
    is reported at once); ``prompt_templates`` is ``{task: {template_name: template}}`` or a YAML
    file of that layout (``data.prompt_templates`` / ``prepare --prompts``).
    """
    import pyarrow.parquet as pq

    if prompt_style not in PROMPT_STYLES:
        raise ValueError(f"prompt style must be one of {PROMPT_STYLES}, got {prompt_style!r}")
    path = Path(path)
    rows = pq.read_table(path).to_pylist()[:limit]
    for index, row in enumerate(rows):
        entries = row.get("images")
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
            raise _row_error(path, index, f"field 'images' must be a list of {{'image': path}}, got {entries!r:.80}")
    settings = ImageSettings(
        image_root=Path(image_root).expanduser().resolve() if image_root else None,
        max_pixels=max_pixels,
        min_pixels=min_pixels,
    )
    images = resolve_rows([row["images"] for row in rows], settings, str(path))
    prompts = PromptSettings(templates=load_overrides(prompt_templates, get_registry().tasks), style=prompt_style)
    return [request_from_row(path, i, row, imgs, prompts) for i, (row, imgs) in enumerate(zip(rows, images))]


def chat_messages(request: EvalRequest) -> list[dict[str, Any]]:
    """The user turn in the structure verl's RL dataset builds: an item per ``<image>``, text between."""
    return [{"role": "user", "content": content_items(request.content)}]


def chat_renderer(model: str) -> Any:
    """The model's processor, or its tokenizer (same chat template) when no processor loads."""
    from verl.utils import hf_processor, hf_tokenizer

    return hf_processor(model) or hf_tokenizer(model)


def render_prompt(renderer: Any, request: EvalRequest) -> str:
    """The model's chat template (processor or tokenizer) on the request; no system prompt of ours."""
    return renderer.apply_chat_template(chat_messages(request), tokenize=False, add_generation_prompt=True)


def load_images(request: EvalRequest, image_patch_size: int = 14) -> list[Any]:
    """The request's images resized exactly as in training (verl's ``process_image``, pixel limits per image)."""
    from verl.utils.dataset.vision_utils import process_image

    return [process_image(dict(image), image_patch_size) for image in request.images]


def image_patch_size(renderer: Any) -> int:
    """The vision patch size of the model's image processor (14 for Qwen2-VL when it has none)."""
    return getattr(getattr(renderer, "image_processor", None), "patch_size", None) or 14


def model_input(renderer: Any, request: EvalRequest, patch_size: int = 14) -> tuple[str, list[Any]]:
    """The chat-template prompt and the training-resized images of a request: what every engine is given."""
    return render_prompt(renderer, request), load_images(request, patch_size)


def vllm_input(prompt: str, images: Sequence[Any]) -> dict[str, Any]:
    """A ``vllm.LLM.generate`` prompt dict with its images."""
    return {"prompt": prompt, "multi_modal_data": {"image": list(images)}} if images else {"prompt": prompt}


def prediction_record(request: EvalRequest, prediction: str) -> dict[str, Any]:
    """One line of the predictions JSONL (what ``reason-rft score`` reads)."""
    return {
        "id": request.id,
        "data_source": request.data_source,
        "prompt_style": request.prompt_style,
        "prediction": prediction,
        "answer": request.answer,
        "is_choice": request.is_choice,
    }


def write_predictions(records: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write the predictions JSONL atomically (no partial file on failure)."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return Path(path)


def vllm_available() -> bool:
    """Whether vLLM can be imported here."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def default_engine() -> str:
    """``vllm`` where it is installed, else ``hf``."""
    return "vllm" if vllm_available() else "hf"


def require_vllm() -> None:
    """Raise :class:`VLLMUnavailable` with the install hint when vLLM cannot be imported."""
    if not vllm_available():
        raise VLLMUnavailable(GPU_HINT)


def generate(
    model: str,
    requests: Sequence[EvalRequest],
    *,
    tensor_parallel_size: int = 1,
    max_new_tokens: int = SAMPLING["max_tokens"],
    seed: int = 0,
    batch_size: int = 256,
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
) -> list[dict[str, Any]]:
    """Generate one completion per request with ``vllm.LLM`` (GPU); returns prediction records."""
    require_vllm()
    from tqdm import tqdm
    from vllm import LLM, SamplingParams

    renderer = chat_renderer(model)
    patch_size = image_patch_size(renderer)
    llm = LLM(
        model=model,
        tensor_parallel_size=tensor_parallel_size,
        limit_mm_per_prompt={"image": max([1, *(len(r.images) for r in requests)])},
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        seed=seed,
    )
    params = SamplingParams(**sampling_params(max_new_tokens, seed))
    records: list[dict[str, Any]] = []
    with tqdm(total=len(requests), desc="generating", unit="question") as progress:
        for start in range(0, len(requests), batch_size):
            chunk = requests[start : start + batch_size]
            inputs = [vllm_input(*model_input(renderer, r, patch_size)) for r in chunk]
            outputs = llm.generate(inputs, params, use_tqdm=False)
            records += [prediction_record(r, out.outputs[0].text) for r, out in zip(chunk, outputs, strict=True)]
            progress.update(len(chunk))
    return records
