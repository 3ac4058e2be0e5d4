"""Reward throughput and worst-case latency: a plain per-sample baseline vs ours, in one run.

Columns (same batch, same machine, same run):
  (a) baseline  - SPEC §6 written the straightforward way (the original code's style): plain
                  regexes and ``math_verify.parse/verify`` called in-process, one sample at a time;
  (b) ours      - ``verl_reason_rft.scoring.compute_score`` (linear-time text helpers,
                  math-verify in time-bounded helper processes);
  (c) manager   - ``ReasonRFTRewardManager.run_single`` on real ``verl.DataProto`` samples
                  (tokenized responses, decoded by the manager), worker processes, in an event loop.

Then an adversarial batch (megabyte completions, nested brackets, power towers, LaTeX bombs)
through (b) and (c): the max latency per kind must stay within the timeouts. The baseline is run
on those only with ``--baseline-adversarial`` (inputs cut to 20 kB, killed after 5 s per kind):
it is quadratic or hangs on several of them.

    python benchmarks/reward_throughput.py --n 10000
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass

from tqdm import tqdm

from verl_reason_rft.completion import CALL_PATTERN, FORMAT_PATTERN  # the original code's regexes

SOURCES = ("clevr_math", "super_clevr", "geomath", "geometry3k", "trance", "trance_left", "trance_right")
FUNCS = {
    "change_size": ("small", "medium", "large"),
    "change_color": ("yellow", "gray", "cyan", "blue", "brown", "green", "red", "purple"),
    "change_material": ("glass", "metal", "rubber"),
    "change_shape": ("cube", "sphere", "cylinder"),
    "change_position": ("front", "behind", "left", "right", "front_left", "front_right", "behind_left", "behind_right"),
}
WORDS = ("there", "are", "red", "cubes", "and", "spheres", "so", "we", "subtract", "the", "angle", "is", "equal",
         "to", "triangle", "side", "object", "moved", "left", "color", "changed", "first", "then", "count", "$x+2=5$",
         "\\frac{1}{2}", "=", "3", "12", "45^\\circ", "(", ")")


@dataclass(frozen=True)
class Sample:
    data_source: str
    completion: str
    ground_truth: str


# ----------------------------------------------------------------------------- realistic batch


def _cot(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 250)))


def _calls(rng: random.Random, k: int) -> list[str]:
    out = []
    for _ in range(k):
        func = rng.choice(sorted(FUNCS))
        out.append(f"{func}({rng.randint(0, 9)}, {rng.choice(FUNCS[func])})")
    return out


def _answers(rng: random.Random, source: str) -> tuple[str, str]:
    """(ground truth, predicted answer) with about half right."""
    right = rng.random() < 0.5
    if source in ("clevr_math", "super_clevr"):
        truth = str(rng.randint(0, 10))
        return truth, truth if right else str(int(truth) + rng.choice((-2, -1, 1, 2, 3)))
    if source in ("geomath", "geometry3k"):
        if rng.random() < 0.5:
            truth = rng.choice("ABCD")
            return truth, truth if right else rng.choice([c for c in "ABCD" if c != truth])
        truth = str(rng.choice((30, 45, 60, 12.5, 3.6, 100)))
        return truth, truth if right else rng.choice(("7", "2.5", f"{float(truth):.1f}0", "\\frac{1}{2}"))
    calls = _calls(rng, rng.randint(1, 4))
    if right:
        predicted = rng.sample(calls, len(calls))
    else:
        predicted = calls[:-1] + _calls(rng, 1)
    return ", ".join(calls), ", ".join(predicted)


def realistic_batch(n: int, seed: int = 0) -> list[Sample]:
    """n completions over all seven data sources; ~20% without <answer> tags."""
    rng = random.Random(seed)
    batch = []
    for i in range(n):
        source = SOURCES[i % len(SOURCES)]
        truth, answer = _answers(rng, source)
        cot = _cot(rng)
        roll = rng.random()
        if roll < 0.20:  # no answer tags: plain text, the answer at the end
            completion = f"{cot}. So the answer is {answer}."
        elif roll < 0.25:  # tags but broken format (trailing text)
            completion = f"<think>\n{cot}\n</think>\n<answer>\n{answer}\n</answer>\nDone."
        else:
            completion = f"<think>\n{cot}\n</think>\n<answer>\n{answer}\n</answer>"
        batch.append(Sample(source, completion, truth))
    return batch


# ----------------------------------------------------------------------------- (a) the baseline

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def baseline_score(sample: Sample) -> dict[str, float]:
    """SPEC §6, default modes, written plainly (per-sample regexes, math-verify in-process)."""
    from math_verify import parse, verify

    content, sol = sample.completion, sample.ground_truth
    fmt = 1.0 if FORMAT_PATTERN.fullmatch(content) else 0.0
    match = _ANSWER.search(content)
    answer = match.group(1).strip() if match else content.strip()
    acc = 0.0
    if sample.data_source.startswith("trance"):
        pred_all = CALL_PATTERN.findall(answer)
        pred, truth = set(pred_all), set(CALL_PATTERN.findall(sol))
        if pred and truth:
            acc = len(pred & truth) * (len(pred) / len(pred_all)) / max(len(pred), len(truth))
    else:
        sol_match = _ANSWER.search(sol)
        truth = sol_match.group(1).strip() if sol_match else sol.strip()
        acc = 1.0 if answer == truth else 0.0
        if acc == 0.0 and match is None:
            try:
                acc = 1.0 if verify(parse(content), parse(sol)) else 0.0
            except Exception:
                acc = 0.0
    return {"score": fmt + acc, "format": fmt, "accuracy": acc}


# ----------------------------------------------------------------------------- (c) the manager


def _dataproto(tokenizer, sample: Sample):
    """One trajectory as verl's agent loop hands it to a reward manager (response right-padded)."""
    import numpy as np
    import torch
    from verl import DataProto

    prompt = tokenizer("Answer the question.")["input_ids"]
    response = tokenizer(sample.completion)["input_ids"] + [tokenizer.eos_token_id]
    mask = torch.ones((1, len(prompt) + len(response)), dtype=torch.long)
    return DataProto.from_dict(
        tensors={"prompts": torch.tensor([prompt]), "responses": torch.tensor([response]), "attention_mask": mask},
        non_tensors={
            "data_source": np.array([sample.data_source], dtype=object),
            "reward_model": np.array([{"style": "rule", "ground_truth": sample.ground_truth}], dtype=object),
            "extra_info": np.array([{"index": 0}], dtype=object),
        },
    )


class ManagerRunner:
    """Builds the reward manager inside its own event loop (verl's requirement) and drives it."""

    def __init__(self, timeout_s: float, num_processes: int) -> None:
        from omegaconf import OmegaConf

        from verl_reason_rft.tiny_model import build_tokenizer

        self.tokenizer = build_tokenizer()
        settings = {"timeout_s": timeout_s, "num_processes": num_processes}
        self.config = OmegaConf.create({"reward": {"reason_rft": settings}})
        self.loop = asyncio.new_event_loop()
        self.manager = self.loop.run_until_complete(self._build())

    async def _build(self):
        from verl_reason_rft.reward_manager import ReasonRFTRewardManager

        return ReasonRFTRewardManager(config=self.config, tokenizer=self.tokenizer)

    def items(self, samples: list[Sample]) -> list:
        return [_dataproto(self.tokenizer, s) for s in tqdm(samples, desc="tokenize for (c)", leave=False)]

    def run(self, items: list, desc: str) -> tuple[list[dict], list[float]]:
        async def one(item, bar):
            start = time.perf_counter()
            out = await self.manager.run_single(item)
            bar.update()
            return out["reward_extra_info"], time.perf_counter() - start

        async def every():
            with tqdm(total=len(items), desc=desc, leave=False) as bar:
                return await asyncio.gather(*(one(item, bar) for item in items))

        results = self.loop.run_until_complete(every())
        return [r for r, _ in results], [t for _, t in results]

    def close(self) -> None:
        self.manager.pool.close()
        self.loop.close()


# ----------------------------------------------------------------------------- adversarial inputs


def adversarial_inputs() -> dict[str, str]:
    return {
        "1 MB of letters": "a" * 1_000_000,
        "1 MB of digits (untagged)": "7" * 1_000_000,
        "1 MB inside <answer>": "<think>x</think><answer>" + "9" * 1_000_000 + "</answer>",
        "1 MB CoT, tagged": "<think>" + "3 + 3 = 6 " * 100_000 + "</think><answer>3</answer>",
        "unclosed <answer> x150k": "<answer>" * 150_000,
        "</think> x120k": "<think>" + "</think>" * 120_000,
        "nested parens 50k": "(" * 50_000 + "1" + ")" * 50_000,
        "run of '(' 500k": "(" * 500_000,
        "nested braces 50k": "{" * 50_000 + "}" * 50_000,
        "9^9^9^9": "9^9^9^9",
        "$9^{9^{9^{9}}}$": "The answer is $9^{9^{9^{9}}}$",
        "\\boxed tower": "\\boxed{9^{9^{9^{9}}}}",
        "2^2^2^2^2^2^2": "2^2^2^2^2^2^2",
        "\\frac nesting 2000": "\\frac{" * 2000 + "1" + "}{2}" * 2000,
        "huge \\underbrace": "\\underbrace{" + "x+" * 50_000 + "x}_{n}",
        "40k calls": "change_color(1, red), " * 40_000,
        "'f(' x300k": "f(" * 300_000,
    }


ADVERSARIAL_SOURCES = ("clevr_math", "geomath", "trance")


def _baseline_child(samples: list[Sample], conn) -> None:
    baseline_score(Sample("clevr_math", "1", "1"))  # imports and warm-up, not timed
    start = time.perf_counter()
    for sample in samples:
        baseline_score(sample)
    conn.send(time.perf_counter() - start)


def baseline_latency_capped(samples: list[Sample], cap_s: float) -> float | None:
    """Seconds the baseline takes on ``samples`` (in a fresh process), or None if not done after cap_s."""
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_baseline_child, args=(samples, sender))
    proc.start()
    seconds = receiver.recv() if receiver.poll(cap_s + 10.0) else None  # + interpreter start-up
    if seconds is not None and seconds > cap_s:
        seconds = None
    proc.kill()
    proc.join()
    return seconds


# ----------------------------------------------------------------------------- driver


def _timed(fn, samples: list[Sample], desc: str) -> tuple[list[dict], list[float]]:
    results, latencies = [], []
    for sample in tqdm(samples, desc=desc, leave=False):
        start = time.perf_counter()
        results.append(fn(sample))
        latencies.append(time.perf_counter() - start)
    return results, latencies


def _row(name: str, latencies: list[float], wall: float, n: int) -> str:
    p50 = statistics.median(latencies) * 1e3
    p99 = sorted(latencies)[max(0, math.ceil(0.99 * len(latencies)) - 1)] * 1e3
    return f"| {name} | {n / wall:,.0f} | {wall:.1f} | {p50:.2f} | {p99:.1f} | {max(latencies) * 1e3:.0f} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="completions in the realistic batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout-s", type=float, default=5.0,
                        help="manager per-sample timeout (reward.reason_rft.timeout_s)")
    parser.add_argument("--num-processes", type=int, default=2, help="manager worker processes")
    parser.add_argument("--skip-manager", action="store_true", help="leave out column (c)")
    parser.add_argument("--skip-adversarial", action="store_true")
    parser.add_argument("--baseline-adversarial", action="store_true",
                        help="also time the baseline on 20 kB cuts of the adversarial inputs (5 s cap each)")
    args = parser.parse_args(argv)

    from verl_reason_rft import math_equiv
    from verl_reason_rft.scoring import compute_score, score_with_status

    def ours(sample: Sample) -> dict[str, float]:
        return compute_score(data_source=sample.data_source, solution_str=sample.completion,
                             ground_truth=sample.ground_truth)

    batch = realistic_batch(args.n, args.seed)
    untagged = sum("<answer>" not in s.completion for s in batch)
    print(f"realistic batch: {len(batch)} completions, {len(SOURCES)} data sources, {untagged} without <answer> tags, "
          f"mean {statistics.mean(len(s.completion) for s in batch):.0f} chars; {os.cpu_count()} CPUs; "
          f"math-verify budget {math_equiv.default_timeout_s()} s")

    baseline_score(batch[-1])  # imports, sympy warm-up
    math_equiv.warm_up()
    rows = ["| path | completions/s | wall s | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]

    start = time.perf_counter()
    base_results, base_lat = _timed(baseline_score, batch, "(a) baseline")
    wall = time.perf_counter() - start
    rows.append(_row("(a) baseline: plain regexes + in-process math-verify", base_lat, wall, len(batch)))

    math_equiv._cached_check.cache_clear()
    start = time.perf_counter()
    our_results, our_lat = _timed(ours, batch, "(b) compute_score")
    rows.append(_row("(b) `scoring.compute_score`", our_lat, time.perf_counter() - start, len(batch)))
    same = sum(a == b for a, b in zip(base_results, our_results))

    runner = None
    if not args.skip_manager:
        runner = ManagerRunner(args.timeout_s, args.num_processes)
        warm = [s for s in batch if "<answer>" not in s.completion and not s.data_source.startswith("trance")]
        runner.run(runner.items(warm[: 4 * args.num_processes]), "(c) warm-up")  # workers and their helpers
        items = runner.items(batch)
        start = time.perf_counter()
        mgr_results, mgr_lat = runner.run(items, "(c) manager")
        wall = time.perf_counter() - start
        name = f"(c) `ReasonRFTRewardManager.run_single`, {args.num_processes} workers (latency incl. queueing)"
        rows.append(_row(name, mgr_lat, wall, len(batch)))
        mgr_same = sum(
            {k: r[k] for k in ("score", "format", "accuracy")} == o for r, o in zip(mgr_results, our_results)
        )
    print("\n".join(rows))
    print(f"\n(b) equals (a) on {same}/{len(batch)} samples", end="")
    print(f"; (c) equals (b) on {mgr_same}/{len(batch)}" if runner else "")

    if not args.skip_adversarial:
        kinds = adversarial_inputs()
        print(f"\nadversarial batch: {len(kinds)} kinds x {len(ADVERSARIAL_SOURCES)} data sources "
              f"({', '.join(ADVERSARIAL_SOURCES)}), ground truth '3'")
        header = "| kind | size | (b) max s | (b) degraded |"
        header += " (c) max s | (c) timeouts |" if runner else ""
        header += " (a) all 3 on a 20 kB cut, s |" if args.baseline_adversarial else ""
        print(header)
        print("|" + "---|" * (header.count("|") - 1))
        worst = 0.0
        for kind, text in tqdm(kinds.items(), desc="adversarial", leave=False):
            samples = [Sample(source, text, "3") for source in ADVERSARIAL_SOURCES]
            lat, degraded = [], 0
            for sample in samples:
                start = time.perf_counter()
                _, why = score_with_status(sample.data_source, sample.completion, sample.ground_truth)
                lat.append(time.perf_counter() - start)
                degraded += why is not None
            worst = max(worst, *lat)
            line = f"| `{kind}` | {len(text):,} | {max(lat):.2f} | {degraded}/{len(samples)} |"
            if runner:
                infos, mlat = runner.run(runner.items(samples), kind)
                line += f" {max(mlat):.2f} | {sum(int(i['timeout']) for i in infos)}/{len(samples)} |"
            if args.baseline_adversarial:
                seconds = baseline_latency_capped([Sample(s.data_source, text[:20_000], "3") for s in samples], 5.0)
                line += f" {'> 5 s (killed)' if seconds is None else f'{seconds:.2f}'} |"
            print(line)
        print(f"\nworst single compute_score call on adversarial input: {worst:.2f} s")
    if runner:
        runner.close()
    math_equiv.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
