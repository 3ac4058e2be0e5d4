"""Throughput of ``prepare`` and of the RL dataset's ``__getitem__``; image paths vs embedded bytes.

    python benchmarks/prepare_throughput.py [--records 20000] [--workdir DIR]

1. generates a sample dataset of ``--records`` train records (timed separately),
2. runs ``prepare`` with full image verification, header-only checks and embedded images,
3. compares parquet size and load/decode speed of path rows vs bytes rows,
4. times ``__getitem__`` of ``ReasonRFTRLDataset`` against verl's ``RLHFDataset`` on the same rows
   (paired rounds, alternating order; median time ratio, target <= 1.05).

verl's multimodal ``__getitem__`` asserts that a processor exists but never calls it; without
torchvision no Qwen2-VL processor can be built, so a placeholder object is passed to *both*
classes then (said in the output). Everything else is the real code.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from verl_reason_rft.data_prep.prepare import prepare
from verl_reason_rft.data_prep.samples import generate_samples
from verl_reason_rft.text_table import format_table


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n{title}\n{format_table(header, rows)}")


def _dir_size(path: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in path.rglob(pattern))


def bench_prepare(dataset: Path, work: Path, n_records: int) -> tuple[Path, Path]:
    rows = []
    out_paths = {}
    for label, kwargs in (
        ("paths, full verify", dict(verify_images=True)),
        ("paths, header only", dict(verify_images=False)),
        ("embedded bytes, full verify", dict(embed_images=True)),
    ):
        out = work / label.replace(" ", "_").replace(",", "")
        seconds = math.inf
        for _ in range(2):  # best of two: the first run also pays imports and cold caches
            report, once = timed(lambda: prepare(dataset, out, verbose=False, **kwargs))
            assert not report.problems, report.summary()
            seconds = min(seconds, once)
        rows.append([label, f"{seconds:.1f}", f"{n_records / seconds:,.0f}", f"{_dir_size(out, '*.parquet') / 2**20:.1f}"])
        out_paths[label] = out
    table("prepare (all stages + test files, 3 tasks; best of 2)", ["mode", "seconds", "records/s", "parquet MiB"], rows)
    return out_paths["paths, full verify"], out_paths["embedded bytes, full verify"]


def bench_path_vs_bytes(paths_out: Path, bytes_out: Path, n: int) -> None:
    rows = []
    for label, out in (("absolute paths", paths_out), ("embedded bytes", bytes_out)):
        file = out / "visual_counting" / "zero.parquet"
        records, load_s = timed(lambda: pq.read_table(file).to_pylist())
        sample = records[:n]

        def decode():
            for record in sample:
                for entry in record["images"]:
                    source = entry["image"] if "image" in entry else io.BytesIO(entry["bytes"])
                    with Image.open(source) as image:
                        image.load()

        _, decode_s = timed(decode)
        rows.append([label, f"{file.stat().st_size / 2**20:.2f}", f"{len(records) / load_s:,.0f}", f"{len(sample) / decode_s:,.0f}"])
    table(
        "image storage (visual_counting/zero.parquet)",
        ["images as", "file MiB", "rows/s read (pyarrow)", "rows/s read+decode"],
        rows,
    )


def bench_getitem(prepared: Path, tiny_dir: Path, n_items: int, rounds: int) -> None:
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from verl_reason_rft.data.rl_dataset import ReasonRFTRLDataset
    from verl_reason_rft.tiny_model import build_tiny_qwen2_vl, processor_available

    model_dir = build_tiny_qwen2_vl(tiny_dir)
    if processor_available():
        from transformers import AutoProcessor

        processor, note = AutoProcessor.from_pretrained(model_dir), "real Qwen2-VL processor"
    else:
        processor, note = object(), "placeholder processor (no torchvision; __getitem__ never calls it)"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    file = str(prepared / "spatial_transformation" / "zero.parquet")
    config = OmegaConf.create({"filter_overlong_prompts": False, "cache_dir": str(prepared / ".cache")})
    datasets = {cls.__name__: cls(file, tokenizer, config, processor=processor) for cls in (RLHFDataset, ReasonRFTRLDataset)}
    n = min(n_items, min(len(d) for d in datasets.values()))
    rates: dict[str, list[float]] = {name: [] for name in datasets}
    ratios = []
    for k in range(rounds):  # paired rounds, alternating which class goes first
        order = list(datasets) if k % 2 == 0 else list(reversed(datasets))
        seconds = {}
        for name in order:
            _, seconds[name] = timed(lambda: [datasets[name][i] for i in range(n)])
            rates[name].append(n / seconds[name])
        ratios.append(seconds["ReasonRFTRLDataset"] / seconds["RLHFDataset"])
    rows = [[name, f"{max(r):,.0f}", f"{statistics.median(r):,.0f}"] for name, r in rates.items()]
    table(f"RL __getitem__, spatial_transformation/zero.parquet, {n} items x {rounds} rounds ({note})", ["class", "best items/s", "median items/s"], rows)
    ratio = statistics.median(ratios)
    print(
        f"\ntime ratio ReasonRFTRLDataset / RLHFDataset = {ratio:.3f} (median of {rounds} paired rounds; "
        f"range {min(ratios):.2f}-{max(ratios):.2f}; target <= 1.05: {'OK' if ratio <= 1.05 else 'SLOWER'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="train records in total (split over 3 tasks)")
    parser.add_argument("--test-per-file", type=int, default=100)
    parser.add_argument("--getitem-items", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", default=None, help="keep files here (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="prepare_bench_") as tmp:
        work = Path(args.workdir or tmp)
        per_task = math.ceil(args.records / 3)
        dataset = work / "Reason-RFT-CoT-Dataset"
        _, gen_s = timed(lambda: generate_samples(dataset, per_task=per_task, test_per_file=args.test_per_file, seed=0, progress=False))
        n_records = 3 * per_task + 7 * args.test_per_file
        images = sum(1 for _ in dataset.rglob("*.png"))
        print(f"generated {n_records:,} records ({images:,} PNGs, {_dir_size(dataset, '*.png') / 2**20:.0f} MiB) in {gen_s:.1f} s ({n_records / gen_s:,.0f} records/s)")
        paths_out, bytes_out = bench_prepare(dataset, work, n_records)
        bench_path_vs_bytes(paths_out, bytes_out, n=2000)
        bench_getitem(paths_out, work / "tiny_qwen2_vl", args.getitem_items, args.rounds)


if __name__ == "__main__":
    main()
