"""The worker pool: results, errors with tracebacks, hard timeouts that kill and respawn a worker."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from verl_reason_rft.process_pool import FunctionRef, TimeoutProcessPool

GETPID = FunctionRef("os", "getpid")
SLEEP = FunctionRef("pool_test_functions", "sleep")
SQRT = FunctionRef("pool_test_functions", "sqrt")

FUNCTIONS = """
import math, time
def sleep(secs): time.sleep(secs)
def sqrt(x): return math.sqrt(x)
"""


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pool_functions")
    (folder / "pool_test_functions.py").write_text(FUNCTIONS)
    sys.path.insert(0, str(folder))  # spawn workers start with the parent's sys.path
    pool = TimeoutProcessPool(num_processes=2, preload=("pool_test_functions",))
    yield pool
    pool.close()
    sys.path.remove(str(folder))


def test_result_comes_from_another_process(pool):
    result = pool.call(GETPID, {}, timeout_s=30)
    assert result.status == "ok" and result.value != os.getpid() and result.elapsed_s >= 0


def test_error_carries_the_workers_traceback_and_the_worker_survives(pool):
    result = pool.call(SQRT, {"x": -1.0}, timeout_s=30)
    assert result.status == "error" and "ValueError" in result.error and "Traceback" in result.error
    assert pool.call(SQRT, {"x": 9.0}, timeout_s=30).value == 3.0


def test_unknown_function_is_an_error_not_a_crash(pool):
    result = pool.call(FunctionRef("pool_test_functions", "no_such_function"), {}, timeout_s=30)
    assert result.status == "error" and "no_such_function" in result.error


def test_timeout_kills_the_worker_and_a_fresh_one_takes_its_place(pool):
    pool.call(GETPID, {}, timeout_s=30)
    before = set(pool.pids)
    respawns = pool.respawns
    start = time.perf_counter()
    result = pool.call(SLEEP, {"secs": 60}, timeout_s=0.5)
    assert result.status == "timeout" and "0.5" in result.error
    assert time.perf_counter() - start < 10
    assert pool.respawns == respawns + 1
    # the killed worker is gone for good: no surviving worker has its pid, and calls still work
    pids = {pool.call(GETPID, {}, timeout_s=60).value for _ in range(4)}
    killed = before - set(pool.pids)
    assert all(not _alive(pid) for pid in killed)
    assert pids and len(pool.pids) <= pool.num_processes


def test_calls_run_in_parallel_up_to_num_processes(pool):
    for _ in range(2):  # make sure both workers exist, so spawn time is not measured
        threading.Thread(target=pool.call, args=(GETPID, {}, 60)).start()
    pool.call(SLEEP, {"secs": 0}, timeout_s=60)
    results = []
    threads = [threading.Thread(target=lambda: results.append(pool.call(SLEEP, {"secs": 1.5}, 30))) for _ in range(2)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status for r in results] == ["ok", "ok"]
    assert time.perf_counter() - start < 2.9  # two 1.5 s calls at once, not one after the other


def test_closed_pool_refuses_calls():
    pool = TimeoutProcessPool(num_processes=1)
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.call(GETPID, {}, timeout_s=5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0); it is dead for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
