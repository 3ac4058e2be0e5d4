"""``reason-rft eval``: predictions for the test benchmarks, the prompts training used.

Engines: ``vllm`` (GPU; the default where vLLM is installed) or ``hf`` (transformers ``generate``,
CPU or CUDA; the default elsewhere). Both get the same prompts, images and SPEC §7 sampling.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_DATA_DIR = "data/prepared"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint folder (HF format) or model name")
    parser.add_argument(
        "--benchmarks",
        nargs="+",
        required=True,
        metavar="B",
        help="data sources (clevr_math, geomath, trance, ...) or task names meaning all their benchmarks",
    )
    parser.add_argument("--output-dir", required=True, help="writes predictions.jsonl and eval_config.json here")
    parser.add_argument(
        "--data-dir", default=DEFAULT_DATA_DIR, help=f"`reason-rft prepare` output (default {DEFAULT_DATA_DIR})"
    )
    parser.add_argument(
        "--prompt-style",
        choices=("cot", "ans"),
        default="cot",
        help="cot for CoT-SFT / Reason-RFT / Zero checkpoints, ans (bare question) for ANS-SFT",
    )
    parser.add_argument("--image-root", default=None, help="folder that relative image paths are resolved against")
    parser.add_argument(
        "--prompts",
        default=None,
        help="YAML overriding prompt templates, as given to training (layout of rewards/prompts.yaml)",
    )
    parser.add_argument(
        "--engine",
        choices=("vllm", "hf"),
        default=None,
        help="vllm (GPU) or hf (transformers generate, CPU or CUDA); default: vllm if importable, else hf",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="hf engine only: cpu, cuda, cuda:N or auto (CUDA when available; bf16 there, fp32 on CPU)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="hf engine on CPU: torch threads (default torch's; 1 is fastest on a CPU shared with other jobs)",
    )
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm engine only")
    parser.add_argument("--max-pixels", type=int, default=480000, help="image resize bound, as in training")
    parser.add_argument("--min-pixels", type=int, default=3136, help="image resize bound, as in training")
    parser.add_argument("--max-new-tokens", type=int, default=768)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="questions generated at a time (default: 256 for vllm, 8 for hf, left-padded)",
    )
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vllm engine only")
    parser.add_argument("--max-model-len", type=int, default=None, help="vllm engine only")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions of each benchmark")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="build every request and render the first prompt of each benchmark, without generating (CPU)",
    )


def _fail(message: str, code: int = 1) -> int:
    print(f"reason-rft eval: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    from verl_reason_rft import generation as gen
    from verl_reason_rft.data_prep.atomic import write_bytes_atomic
    from verl_reason_rft.tasks import UnknownDataSource

    try:
        benchmarks = gen.resolve_benchmarks(args.benchmarks)
    except UnknownDataSource as err:
        return _fail(str(err), 2)
    engine = args.engine or gen.default_engine()
    if not args.dry_run and engine == "vllm":
        try:
            gen.require_vllm()
        except gen.VLLMUnavailable as err:
            return _fail(f"{err}; --dry-run checks the requests on CPU", 2)
    try:
        requests = {
            source: gen.read_requests(
                gen.prepared_test_file(args.data_dir, source),
                args.prompt_style,
                image_root=args.image_root,
                prompt_templates=args.prompts,
                limit=args.limit,
                max_pixels=args.max_pixels,
                min_pixels=args.min_pixels,
            )
            for source in benchmarks
        }
    except (FileNotFoundError, ValueError, UnknownDataSource) as err:
        return _fail(str(err))

    if args.dry_run:
        try:
            renderer = gen.chat_renderer(args.model)
        except (OSError, ValueError) as err:
            return _fail(f"cannot load the tokenizer/processor of {args.model}: {err}")
        for source, items in requests.items():
            print(f"{source}: {len(items)} questions")
        for source, items in requests.items():
            if items:
                print(f"\n--- first prompt of {source} ({len(items[0].images)} image(s)) ---")
                print(gen.render_prompt(renderer, items[0]))
        return 0

    flat = [r for items in requests.values() for r in items]
    if engine == "hf":
        from verl_reason_rft import hf_generation

        try:
            records = hf_generation.generate_hf(
                args.model,
                flat,
                max_new_tokens=args.max_new_tokens,
                seed=args.seed,
                batch_size=args.batch_size or hf_generation.DEFAULT_BATCH_SIZE,
                device=args.device,
                threads=args.threads,
            )
        except (OSError, ValueError) as err:
            return _fail(f"cannot generate with {args.model} (hf engine): {err}")
    else:
        records = gen.generate(
            args.model,
            flat,
            tensor_parallel_size=args.tensor_parallel_size,
            max_new_tokens=args.max_new_tokens,
            seed=args.seed,
            batch_size=args.batch_size or 256,
            gpu_memory_utilization=args.gpu_memory_utilization,
            max_model_len=args.max_model_len,
        )
    out = Path(args.output_dir)
    predictions = gen.write_predictions(records, out / "predictions.jsonl")
    config = {
        "model": args.model,
        "engine": engine,
        "benchmarks": {source: len(items) for source, items in requests.items()},
        "prompt_style": args.prompt_style,
        "prompts": args.prompts,
        "sampling": gen.sampling_params(args.max_new_tokens, args.seed),
        "max_pixels": args.max_pixels,
        "min_pixels": args.min_pixels,
        "data_dir": str(args.data_dir),
    }
    write_bytes_atomic(out / "eval_config.json", (json.dumps(config, indent=2) + "\n").encode("utf-8"))
    print(f"wrote {len(records)} predictions to {predictions}\nscore them with: reason-rft score {predictions}")
    return 0
