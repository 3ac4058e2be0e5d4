"""A small pool of worker processes that runs one call at a time each, with a hard per-call timeout.

A call that runs past its timeout has its worker killed (the only way to stop a hung
math-verify or a runaway regex) and a fresh worker spawned in its place. Workers use the
``spawn`` start method (forking a Ray actor or a threaded process is unsafe), start lazily,
preload the modules they will need before the timeout clock starts, exit by themselves when
the parent dies (their pipe closes), and are shut down at interpreter exit.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import logging
import multiprocessing
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal

logger = logging.getLogger(__name__)

Status = Literal["ok", "error", "timeout"]

#: how long a fresh worker may take to import its preload modules
STARTUP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class FunctionRef:
    """A function the worker imports by name: ``module`` is a module name or a verl path
    (``pkg://pkg.mod``, ``file:///abs/reward.py``, ``/abs/reward.py``)."""

    module: str
    name: str


@dataclass(frozen=True)
class CallResult:
    status: Status
    value: Any = None
    #: error message with the worker's traceback (status ``error``), or the timeout message
    error: str = ""
    elapsed_s: float = 0.0


def load_function(ref: FunctionRef) -> Any:
    """Import ``ref``; plain module names and ``pkg://`` go through importlib, file paths through verl."""
    module = ref.module
    if module.startswith("pkg://"):
        module = module[len("pkg://") :].replace("/", ".")
    if "/" not in module and not module.endswith(".py"):
        return getattr(importlib.import_module(module), ref.name)
    from verl.utils.import_utils import load_extern_object  # only for file paths: importing verl is slow

    return load_extern_object(module_path=ref.module, object_name=ref.name)


#: what a worker does before it says ready: import ``"module"``, call ``"module:function"``,
#: or load a :class:`FunctionRef` (so the first timed call does not pay for imports)
Preload = tuple["str | FunctionRef", ...]


def _preload(preload: Preload, functions: dict[FunctionRef, Any]) -> None:
    for item in preload:
        if isinstance(item, FunctionRef):
            functions[item] = load_function(item)
        elif ":" in item:
            module, name = item.split(":", 1)
            getattr(importlib.import_module(module), name)()
        else:
            importlib.import_module(item)


def _worker_main(conn: Connection, preload: Preload) -> None:
    """Worker loop: preload, say ready, then answer ``(ref, kwargs)`` jobs until ``None`` or EOF."""
    functions: dict[FunctionRef, Any] = {}
    try:
        _preload(preload, functions)
        conn.send(("ready", None))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # parent gone
            return
        if job is None:
            return
        ref, kwargs = job
        try:
            if ref not in functions:
                functions[ref] = load_function(ref)
            conn.send(("ok", functions[ref](**kwargs)))
        except BaseException as exc:  # report everything, keep serving
            try:
                conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
            except Exception:  # unpicklable payload in the exception
                conn.send(("error", f"{type(exc).__name__}: {exc!r}"))


class _Worker:
    def __init__(self, ctx: multiprocessing.context.BaseContext, preload: Preload) -> None:
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child_conn, preload), daemon=True)
        self.process.start()
        child_conn.close()
        try:
            if not self.conn.poll(STARTUP_TIMEOUT_S):
                raise TimeoutError(f"no answer within {STARTUP_TIMEOUT_S:.0f}s")
            status, payload = self.conn.recv()
        except (EOFError, OSError, TimeoutError) as exc:
            self.kill()
            raise RuntimeError(
                f"scoring worker did not start ({exc!r}, exit code {self.process.exitcode}, preload {preload}). "
                "Workers use the 'spawn' start method, which re-imports the main script: a script that scores "
                "rewards needs an `if __name__ == '__main__':` guard."
            ) from None
        if status != "ready":
            self.kill()
            raise RuntimeError(f"scoring worker failed to import {preload}:\n{payload}")

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout=2)
        self.kill()


class TimeoutProcessPool:
    """``num_processes`` spawn workers; :meth:`call` blocks until a worker is free, then runs one call.

    Thread-safe: run up to ``num_processes`` calls at once from threads (e.g. a
    ``ThreadPoolExecutor`` of that size, as the reward manager does).
    """

    def __init__(self, num_processes: int = 2, preload: Preload = ()) -> None:
        if num_processes < 1:
            raise ValueError(f"num_processes must be >= 1, got {num_processes}")
        self.num_processes = num_processes
        self.preload = tuple(preload)
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._free = threading.Semaphore(num_processes)
        self._closed = False
        #: workers killed on timeout (or found dead) since the pool was made
        self.respawns = 0
        self._executor = ThreadPoolExecutor(max_workers=num_processes, thread_name_prefix="reason-rft-pool")
        atexit.register(self.close)

    def _acquire(self) -> _Worker:
        self._free.acquire()
        with self._lock:
            if self._closed:
                self._free.release()
                raise RuntimeError("the process pool is closed")
            if self._idle:
                return self._idle.pop()
        try:
            return _Worker(self._ctx, self.preload)  # spawn outside the lock: it takes seconds
        except BaseException:
            self._free.release()
            raise

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            if self._closed:
                worker.stop()
            else:
                self._idle.append(worker)
        self._free.release()

    def _dead(self, worker: _Worker) -> None:
        """Kill ``worker`` and free its slot: the next call spawns a fresh one."""
        worker.kill()
        with self._lock:
            self.respawns += 1
        self._free.release()

    def call(self, ref: FunctionRef, kwargs: dict[str, Any], timeout_s: float) -> CallResult:
        """Run ``ref(**kwargs)`` in a worker; the clock starts when the worker has the job."""
        worker = self._acquire()
        start = time.perf_counter()
        try:
            worker.conn.send((ref, kwargs))
            if worker.conn.poll(timeout_s):
                status, payload = worker.conn.recv()
                elapsed = time.perf_counter() - start
                self._release(worker)
                if status == "ok":
                    return CallResult("ok", value=payload, elapsed_s=elapsed)
                return CallResult("error", error=str(payload), elapsed_s=elapsed)
            self._dead(worker)
            return CallResult(
                "timeout",
                error=f"{ref.module}:{ref.name} ran past {timeout_s:g}s; worker killed",
                elapsed_s=time.perf_counter() - start,
            )
        except (EOFError, OSError, ValueError) as exc:  # worker died mid-call (segfault, OOM kill)
            code = worker.process.exitcode
            self._dead(worker)
            return CallResult("error", error=f"scoring worker died (exit code {code}): {exc!r}",
                              elapsed_s=time.perf_counter() - start)
        except BaseException:
            self._dead(worker)
            raise

    async def acall(self, ref: FunctionRef, kwargs: dict[str, Any], timeout_s: float) -> CallResult:
        """:meth:`call` from a coroutine, on this pool's own threads (never the loop's default executor)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.call, ref, kwargs, timeout_s)

    @property
    def pids(self) -> list[int]:
        """Pids of the idle workers (for tests and diagnostics)."""
        with self._lock:
            return [w.process.pid for w in self._idle]

    def close(self) -> None:
        """Stop every idle worker; workers busy in a call stop when they are released."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()
        self._executor.shutdown(wait=False)
        atexit.unregister(self.close)


_SHARED: dict[tuple[int, Preload], TimeoutProcessPool] = {}
_SHARED_LOCK = threading.Lock()


def shared_pool(num_processes: int, preload: Preload = ()) -> TimeoutProcessPool:
    """One pool per process and setting (reward managers built in one process share it)."""
    key = (num_processes, tuple(preload))
    with _SHARED_LOCK:
        pool = _SHARED.get(key)
        if pool is None or pool._closed:
            pool = _SHARED[key] = TimeoutProcessPool(num_processes, preload)
        return pool
