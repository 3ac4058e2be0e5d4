"""Bounded math-verify: same verdicts as math-verify itself, a hard time limit, thread-safe."""

from __future__ import annotations

import threading
import time

import pytest
from math_verify import parse, verify

from verl_reason_rft import math_equiv

PAIRS = [
    ("3", "3.0"),
    ("The answer is \\frac{1}{2}", "0.5"),
    ("$x = 4$", "4"),
    ("12", "13"),
    ("B", "B"),
    ("(A)", "A"),
    ("there are 7 objects left", "7"),
    ("\\sqrt{2}", "1.41421356"),
    ("", "3"),
    ("   ", "3"),
    ("3", ""),
]

# Inputs that make math-verify / sympy hang or run for seconds (C code: no signal stops them).
HANGING = ["9^9^9^9", "$9^{9^{9^{9}}}$", "\\boxed{9^{9^{9^{9}}}}", "2^2^2^2^2^2^2"]


@pytest.mark.parametrize("prediction, gold", PAIRS)
def test_verdict_matches_math_verify_in_process(prediction, gold):
    expected = bool(verify(parse(prediction), parse(gold)))
    assert math_equiv.equivalent(prediction, gold) is expected


@pytest.mark.parametrize("bomb", HANGING)
def test_hanging_input_is_cut_at_the_budget_and_noted(bomb):
    with math_equiv.collect_notes() as notes:
        start = time.perf_counter()
        assert math_equiv.equivalent(bomb, "3", timeout_s=0.3) is False
        elapsed = time.perf_counter() - start
    assert elapsed < 2.0
    assert notes and "timeout" in notes[0]
    # the helper recovered: the next check is answered correctly and quickly
    start = time.perf_counter()
    assert math_equiv.equivalent("2", "2.0") is True
    assert time.perf_counter() - start < 2.0


def test_a_timeout_is_not_cached():
    with math_equiv.collect_notes() as notes:
        math_equiv.equivalent("9^9^9^9", "7", timeout_s=0.2)
        math_equiv.equivalent("9^9^9^9", "7", timeout_s=0.2)
    assert len(notes) == 2


def test_notes_are_per_thread_and_only_inside_the_block():
    math_equiv.equivalent("9^9^9^9", "5", timeout_s=0.2)  # outside any block: nothing recorded
    seen: dict[str, list[str]] = {}

    def work(name: str, prediction: str) -> None:
        with math_equiv.collect_notes() as notes:
            math_equiv.equivalent(prediction, "5", timeout_s=0.3)
        seen[name] = notes

    threads = [threading.Thread(target=work, args=("bomb", "9^9^9^9 + 2")), threading.Thread(target=work, args=("ok", "5"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen["ok"] == []
    assert len(seen["bomb"]) == 1


def test_many_threads_get_correct_answers():
    cases = [(str(i), f"{i}.0", True) for i in range(12)] + [(str(i), str(i + 1), False) for i in range(12)]
    results: list[tuple[bool, bool]] = []
    lock = threading.Lock()

    def work(prediction: str, gold: str, expected: bool) -> None:
        got = math_equiv.equivalent(prediction + " ", gold)  # the space defeats the cache
        with lock:
            results.append((got, expected))

    threads = [threading.Thread(target=work, args=case) for case in cases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == len(cases)
    assert all(got == expected for got, expected in results)


def test_helpers_stop_on_shutdown_and_restart_on_demand():
    math_equiv.equivalent("1", "1.0 ")
    pool = math_equiv._POOL
    processes = [helper.proc for helper in pool._idle]
    assert processes and all(proc.poll() is None for proc in processes)
    math_equiv.shutdown()
    assert all(proc.poll() is not None for proc in processes)
    assert math_equiv.equivalent("6", "6.0  ") is True
