"""math-verify with a hard time limit, usable from any thread.

``math_verify.parse``/``verify`` can run for seconds, or forever inside C code (``9^9^9^9``
makes sympy build a gigantic integer), where no signal can interrupt them, and their own
signal-based timeouts do nothing off the main thread (verl calls rewards from worker threads).
So checks run in helper processes: a clean ``python`` that imports math-verify once and forks a
warm worker (started lazily; one caller at a time each; a thread-safe pool). A check that
overruns its budget gets its worker killed and replaced by a fresh fork in milliseconds, and
the answer is "not equivalent", with the reason recorded for whoever collects notes
(:func:`collect_notes`). POSIX only (the helper forks).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from functools import lru_cache
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Iterator

logger = logging.getLogger(__name__)

TIMEOUT_ENV = "REASON_RFT_MATH_TIMEOUT_S"
WORKERS_ENV = "REASON_RFT_MATH_WORKERS"
MEMORY_ENV = "REASON_RFT_MATH_MEMORY_MB"
DEFAULT_TIMEOUT_S = 0.5
DEFAULT_WORKERS = 2
DEFAULT_MEMORY_MB = 4096
#: a helper's first start (interpreter + sympy import) is not charged to the check budget.
STARTUP_TIMEOUT_S = 60.0
#: extra wait for the helper itself (it enforces the budget on its worker; this never triggers
#: unless the helper is stuck, which then gets killed and replaced).
HELPER_GRACE_S = 0.5
#: results for short inputs are cached (GRPO groups repeat the same short answers).
_CACHE_MAX_CHARS = 2048

_notes: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("reason_rft_math_notes", default=None)


class MathVerifyTimeout(RuntimeError):
    """One check ran past its budget (its worker was killed)."""


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        logger.warning("ignoring %s=%r: not a number", name, os.environ.get(name))
        return default


def default_timeout_s() -> float:
    return _env_float(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)


@contextlib.contextmanager
def collect_notes() -> Iterator[list[str]]:
    """Collect, for the calls made inside the block (this thread / task only), why a check gave up."""
    notes: list[str] = []
    token = _notes.set(notes)
    try:
        yield notes
    finally:
        _notes.reset(token)


def _note(reason: str) -> None:
    notes = _notes.get()
    if notes is not None:
        notes.append(reason)


def equivalent(prediction: str, gold: str, timeout_s: float | None = None) -> bool:
    """``verify(parse(prediction), parse(gold))`` as the original Reason-RFT code calls it.

    Argument order matters to math-verify and follows the original. False when the check
    fails, errs or runs past ``timeout_s`` (default :data:`DEFAULT_TIMEOUT_S`, env
    ``REASON_RFT_MATH_TIMEOUT_S``); a timeout is noted (see :func:`collect_notes`).
    """
    if not prediction.strip() or not gold.strip():
        return False  # parse("") is [], and verify([], x) is False
    budget = default_timeout_s() if timeout_s is None else float(timeout_s)
    try:
        if len(prediction) + len(gold) <= _CACHE_MAX_CHARS:
            return _cached_check(prediction, gold, budget)
        return _pool().check(prediction, gold, budget)
    except MathVerifyTimeout as exc:
        _note(str(exc))
        return False
    except Exception as exc:  # a helper that cannot start must not stop training
        logger.warning("math-verify check failed: %s", exc)
        _note(f"math-verify error: {exc}")
        return False


@lru_cache(maxsize=65536)
def _cached_check(prediction: str, gold: str, budget: float) -> bool:
    return _pool().check(prediction, gold, budget)


# ----------------------------------------------------------------------------- helper processes


class _Helper:
    """One helper process and its socket; used by one caller at a time."""

    def __init__(self) -> None:
        parent_sock, child_sock = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[1])  # last on sys.path: shadows nothing
        memory_mb = int(_env_float(MEMORY_ENV, DEFAULT_MEMORY_MB))
        code = (
            f"import sys; sys.path.append({package_root!r}); "
            f"from verl_reason_rft.math_equiv import serve; serve({child_sock.fileno()}, {memory_mb})"
        )
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code],
                pass_fds=[child_sock.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                close_fds=True,
            )
        finally:
            child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self.ready = False

    def is_ready(self) -> bool:
        """True once the helper has started (non-blocking)."""
        if not self.ready:
            with contextlib.suppress(Exception):
                if self.conn.poll(0):
                    self.wait_ready(0)
        return self.ready

    def wait_ready(self, timeout: float) -> None:
        if self.ready:
            return
        if not self.conn.poll(timeout):
            self.kill()
            raise RuntimeError(f"math-verify helper did not start within {timeout:.0f}s")
        message = self.conn.recv()
        if message != "ready":
            self.kill()
            raise RuntimeError(f"math-verify helper failed to start: {message}")
        self.ready = True

    def check(self, prediction: str, gold: str, budget: float) -> bool:
        deadline = time.monotonic() + budget + HELPER_GRACE_S
        self.conn.send((prediction, gold, budget))
        if not self.conn.poll(max(0.0, deadline - time.monotonic())):
            self.kill()
            raise MathVerifyTimeout(f"math-verify timeout after {budget:g}s (helper unresponsive)")
        result, error = self.conn.recv()
        if result is None:
            raise MathVerifyTimeout(f"math-verify timeout after {budget:g}s")
        if error:
            logger.debug("math-verify raised: %s", error)
        return bool(result)

    def alive(self) -> bool:
        return not self.conn.closed and self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
            self.proc.wait(timeout=5)
        with contextlib.suppress(Exception):
            self.conn.close()


class _Pool:
    """Up to ``size`` helpers, started as concurrent callers need them; a dead one is replaced at once."""

    #: after a helper fails to start, checks give up at once for this long instead of retrying.
    BROKEN_COOLDOWN_S = 30.0

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.pid = os.getpid()
        self._idle: list[_Helper] = []
        self._count = 0
        self._broken_until = 0.0
        self._cond = threading.Condition()

    def _spawn(self) -> None:
        """Start one more helper into the idle list (caller holds the lock)."""
        self._idle.append(_Helper())
        self._count += 1

    def _acquire(self) -> _Helper:
        with self._cond:
            if time.monotonic() < self._broken_until:
                raise RuntimeError("math-verify helpers failed to start recently; skipping the check")
            while True:
                for helper in [h for h in self._idle if not h.alive()]:
                    self._idle.remove(helper)
                    helper.kill()
                    self._count -= 1
                if self._idle:  # a warm helper first; one still starting only if none is warm
                    helper = next((h for h in self._idle if h.is_ready()), self._idle[0])
                    self._idle.remove(helper)
                    return helper
                if self._count < self.size:  # all busy: one more helper (a single-threaded caller needs one)
                    self._spawn()
                    continue
                self._cond.wait()

    def _release(self, helper: _Helper) -> None:
        with self._cond:
            if helper.alive():
                self._idle.append(helper)
            else:
                self._count -= 1
                if time.monotonic() >= self._broken_until:
                    try:  # replace the killed helper now: it warms up while callers move on
                        self._spawn()
                    except Exception as exc:
                        logger.warning("could not restart a math-verify helper: %s", exc)
            self._cond.notify()

    def check(self, prediction: str, gold: str, budget: float) -> bool:
        helper = self._acquire()
        try:
            try:
                helper.wait_ready(STARTUP_TIMEOUT_S)
            except Exception:
                self._broken_until = time.monotonic() + self.BROKEN_COOLDOWN_S
                raise
            return helper.check(prediction, gold, budget)
        except MathVerifyTimeout:
            raise  # the helper killed its worker (or itself, if it stopped answering)
        except BaseException:
            helper.kill()
            raise
        finally:
            self._release(helper)

    def close(self) -> None:
        with self._cond:
            for helper in self._idle:
                helper.kill()
            self._idle.clear()
            self._count = 0


_POOL: _Pool | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> _Pool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():  # after a fork the parent's helpers are not ours
            _POOL = _Pool(int(_env_float(WORKERS_ENV, DEFAULT_WORKERS)))
        return _POOL


def warm_up() -> None:
    """Start the helpers now (a reward manager's constructor can pay the start-up cost early)."""
    equivalent("1", "1")


@atexit.register
def shutdown() -> None:
    """Stop this process's helpers (also runs at exit)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None and _POOL.pid == os.getpid():
            _POOL.close()
        _POOL = None
    _cached_check.cache_clear()


# ----------------------------------------------------------------------------- inside a helper
#
# A helper is a small "zygote": it imports and warms up math-verify once, then forks a worker
# that does the checks. When a check overruns, the helper kills that worker and forks a new,
# already-warm one in milliseconds, so one bad input never delays the next check.


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _limit_memory(memory_mb: int) -> None:
    if memory_mb <= 0:
        return
    with contextlib.suppress(Exception):
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _run_checks(conn: Connection) -> None:
    """Worker loop: answer ``(prediction, gold)`` until the helper goes away."""
    from math_verify import parse, verify

    while True:
        try:
            prediction, gold = conn.recv()
        except (EOFError, OSError):
            return
        try:
            # The helper enforces the time limit; math-verify's own alarms are not needed.
            gold_parsed = parse(gold, parsing_timeout=None)
            result = verify(parse(prediction, parsing_timeout=None), gold_parsed, timeout_seconds=None)
            reply = (bool(result), "")
        except BaseException as exc:  # MemoryError, RecursionError, sympy errors
            reply = (False, f"{type(exc).__name__}: {exc}"[:500])
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return


class _Worker:
    """A forked, warm worker of the helper process (POSIX)."""

    def __init__(self, upstream: Connection, memory_mb: int) -> None:
        mine, theirs = socket.socketpair()
        self.pid = os.fork()
        if self.pid == 0:  # the worker
            code = 0
            try:
                mine.close()
                upstream.close()
                _die_with_parent()
                _limit_memory(memory_mb)
                _run_checks(Connection(theirs.detach()))
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        self.conn = Connection(mine.detach())

    def kill(self) -> None:
        import signal

        with contextlib.suppress(Exception):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            os.waitpid(self.pid, 0)
        with contextlib.suppress(Exception):
            self.conn.close()


def serve(fd: int, memory_mb: int = DEFAULT_MEMORY_MB) -> None:
    """Helper process main loop: answer ``(prediction, gold, budget)`` until the socket closes.

    No parent-death signal here (Linux sends it when the *thread* that started us exits); the
    loop is back in ``recv`` within one budget, and sees the parent's socket close.
    """
    conn = Connection(fd)
    if os.getppid() == 1:
        return
    try:
        logging.getLogger("math_verify").setLevel(logging.ERROR)  # no "timeout disabled" warnings
        from math_verify import parse, verify

        verify(parse("1/2"), parse("0.5"))  # load sympy's lazy parts once, before forking workers
        worker = _Worker(conn, memory_mb)
    except Exception as exc:
        conn.send(f"{type(exc).__name__}: {exc}")
        return
    conn.send("ready")
    while True:
        try:
            prediction, gold, budget = conn.recv()
        except (EOFError, OSError):
            worker.kill()
            return
        deadline = time.monotonic() + budget
        answered = False
        try:
            worker.conn.send((prediction, gold))
            if worker.conn.poll(max(0.0, deadline - time.monotonic())):
                reply, answered = worker.conn.recv(), True
            else:
                reply = (None, "timeout")
        except (EOFError, OSError) as exc:  # the worker died (a signal, the memory limit)
            reply = (False, f"math-verify worker died: {exc!r}")
        if not answered:  # overran or died: a fresh, warm fork takes its place
            worker.kill()
            worker = _Worker(conn, memory_mb)
        try:
            conn.send(reply)
        except (EOFError, OSError):
            worker.kill()
            return
