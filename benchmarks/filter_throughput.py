"""Overlong-prompt filter: verl's (processor run per row) against ReasonRFTRLDataset's exact count.

    python benchmarks/filter_throughput.py [--rows 1200] [--verl-workers 1] [--workdir DIR]

1. generates spatial-transformation records (two images each, drawn then scaled to TRANCE's 480x320) and
   runs ``prepare`` on them, like benchmarks/prepare_throughput.py;
2. measures every row with our count (no limit) in a fresh interpreter, and takes the median length as
   ``max_prompt_length`` so that about half the rows are dropped;
3. runs ``ReasonRFTRLDataset.maybe_filter_out_long_prompts`` on the loaded rows with
   ``data.length_filter=verl`` (verl's ``datasets.filter``, ``--verl-workers`` processes) and with
   ``data.length_filter=exact``, each in its own fresh interpreter (a forked ``datasets`` filter can hang
   once torch has computed in the parent), with the tiny Qwen2-VL's real processor and tokenizer;
4. prints rows/s for each, the ratio (target: >= 20x verl's filter per worker) and whether the kept
   row ids are identical.

Both timings include the row normalisation (image paths, pixel limits) the class does first.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from verl_reason_rft.text_table import format_table

TRANCE_SIZE = (480, 320)
TASK = "spatial_transformation"
SFT_SIZE = 4


def make_data(work: Path, rows: int) -> Path:
    from PIL import Image

    from verl_reason_rft.data_prep.prepare import prepare
    from verl_reason_rft.data_prep.samples import generate_samples

    dataset = work / "Reason-RFT-CoT-Dataset"
    generate_samples(dataset, per_task=rows + SFT_SIZE, test_per_file=2, tasks=[TASK], progress=False)
    for png in dataset.rglob("*.png"):  # the generator draws 240x160; TRANCE's images are 480x320
        with Image.open(png) as image:
            scaled = image.resize(TRANCE_SIZE)
        scaled.save(png)
    out = work / "prepared"
    report = prepare(dataset, out, tasks=[TASK], sft_size=SFT_SIZE, verbose=False)
    assert not report.problems, report.summary()
    return out / TASK / "rl.parquet"


def child(args: argparse.Namespace) -> None:
    """One side, in this (fresh) interpreter: load, filter, write timing and kept ids as JSON."""
    import datasets
    from omegaconf import OmegaConf
    from verl.utils import hf_processor

    from verl_reason_rft.data.rl_dataset import ReasonRFTRLDataset
    from verl_reason_rft.prompt_tokens import PromptCounter, measure_dataset
    from verl_reason_rft.tiny_model import build_tiny_qwen2_vl

    datasets.disable_caching()  # verl's filter must not be served from an earlier run's cache file
    datasets.disable_progress_bars()
    model = build_tiny_qwen2_vl(args.model_dir)
    processor = hf_processor(str(model))
    mode = "exact" if args.side == "lengths" else args.side
    config = OmegaConf.create({
        "filter_overlong_prompts": False, "cache_dir": str(Path(args.file).parent / ".cache"), "length_filter": mode,
        "max_prompt_length": args.limit, "filter_overlong_prompts_workers": args.verl_workers,
    })
    ds = ReasonRFTRLDataset(args.file, processor.tokenizer, config, processor)  # loads and normalises once (not timed)
    raw = datasets.load_dataset("parquet", data_files=args.file)["train"]
    if args.side == "lengths":
        lengths = measure_dataset(ds, ds.dataframe, PromptCounter.for_dataset(ds)).lengths
        Path(args.result).write_text(json.dumps({"lengths": lengths}))
        return
    ds.filter_overlong_prompts = True
    start = time.perf_counter()
    kept = ds.maybe_filter_out_long_prompts(raw)
    seconds = time.perf_counter() - start
    ids = [info["id"] for info in kept["extra_info"]]
    Path(args.result).write_text(json.dumps({"seconds": seconds, "rows": len(raw), "kept": ids}))


def run_side(side: str, file: Path, model_dir: Path, limit: int, workers: int, result: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", side, "--file", str(file), "--model-dir", str(model_dir),
           "--limit", str(limit), "--verl-workers", str(workers), "--result", str(result)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1200, help="spatial-transformation GRPO rows (two 480x320 images each)")
    parser.add_argument("--verl-workers", type=int, default=1, help="data.filter_overlong_prompts_workers for verl's filter")
    parser.add_argument("--workdir", default=None, help="keep files here (default: a temporary folder)")
    parser.add_argument("--child", choices=["lengths", "exact", "verl"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=1 << 30, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.side = args.child
        return child(args)

    with tempfile.TemporaryDirectory(prefix="filter_bench_") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        file = make_data(work, args.rows)
        model_dir = work / "tiny_qwen2_vl"
        lengths = sorted(run_side("lengths", file, model_dir, 1 << 30, 1, work / "lengths.json")["lengths"])
        limit = lengths[len(lengths) // 2]
        results = {side: run_side(side, file, model_dir, limit, args.verl_workers, work / f"{side}.json") for side in ("verl", "exact")}
        rates = {side: r["rows"] / r["seconds"] for side, r in results.items()}
        workers = {"verl": args.verl_workers, "exact": 1}
        rows = [[f"length_filter={side}", workers[side], r["rows"], len(r["kept"]), f"{r['seconds']:.2f}", f"{rates[side]:,.0f}",
                 f"{rates[side] / workers[side]:,.0f}"] for side, r in results.items()]
        n = results["verl"]["rows"]
        print(f"\n{n} spatial-transformation rows, 2 images of {TRANCE_SIZE[0]}x{TRANCE_SIZE[1]} each; max_prompt_length={limit} "
              f"(median prompt; lengths {lengths[0]}-{lengths[-1]})")
        print(format_table(["filter", "workers", "rows", "kept", "seconds", "rows/s", "rows/s per worker"], rows))
        ratio = (rates["exact"] / workers["exact"]) / (rates["verl"] / workers["verl"])
        same = results["verl"]["kept"] == results["exact"]["kept"]
        print(f"\nratio exact / verl per worker = {ratio:,.1f}x (target >= 20x: {'OK' if ratio >= 20 else 'SLOWER'}); "
              f"kept sets identical: {'yes' if same else 'NO'}")
        if not same or not math.isfinite(ratio):
            sys.exit(1)


if __name__ == "__main__":
    main()
