"""Many small matrix products at once: split over threads, each on one BLAS thread.

The compiled Winograd paths multiply a stack of ``alpha^2`` small matrices per
block of tiles (``np.matmul`` over a stacked first axis calls one BLAS GEMM per
matrix). With OpenBLAS on two threads every one of those GEMMs is split in two
and its threads woken and joined, which made the whole call slower on two
threads than on one (ResNet-18's 64-channel 3x3 layer at 56x56, batch 8, Intel
Xeon: 19.3 ms on two BLAS threads against 8.1 ms on one, torch 11.0).
:func:`matmul_stack` instead gives each of ``threads`` worker threads a
contiguous share of the stack and holds BLAS to one thread for the call
(`threadpoolctl <https://github.com/joblib/threadpoolctl>`_, part of the
``fast`` extra); ``np.matmul`` releases the GIL, so the shares run at the same
time. Each product is the same GEMM call as before on its own matrices, so the
numbers do not change. Without threadpoolctl, or on one thread, it is
``np.matmul``.

:func:`run_shares` runs a few callables at once on the same pool (the Winograd
paths' per-thread shares, which release the GIL in NumPy and in ``nogil``
compiled kernels), and :func:`matmul_accumulate` adds a stack of products into
an existing one, each thread adding its own share right after multiplying it.

The worker pool is created on first use and re-created in a forked child
(a pool's threads do not survive ``fork()``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["blas_single_thread", "matmul_accumulate", "matmul_stack", "run_shares", "share_ranges", "split_products"]

_LOCK = threading.Lock()
_POOL: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, workers, pool)
_CONTROLLER: list = []  # [ThreadpoolController] once built, [None] where threadpoolctl is absent


def _after_fork_in_child() -> None:
    """A forked child has none of the pool's threads and may inherit a held lock: start afresh."""
    global _LOCK, _POOL
    _LOCK = threading.Lock()
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _controller():
    if not _CONTROLLER:
        with _LOCK:
            if not _CONTROLLER:
                try:
                    from threadpoolctl import ThreadpoolController
                except ImportError:
                    _CONTROLLER.append(None)
                else:
                    _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def blas_single_thread():
    """A context holding BLAS to one thread (a no-op context where threadpoolctl is absent)."""
    controller = _controller()
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def split_products(threads: int):
    """The context around a loop of :func:`matmul_stack` calls on ``threads`` threads: BLAS on one thread
    where the products will be split (``threads > 1`` and threadpoolctl imports), else nothing changes."""
    if threads > 1 and available():
        return blas_single_thread()
    return contextlib.nullcontext()


def available() -> bool:
    """Whether the stacked products can be split over threads (threadpoolctl imports)."""
    return _controller() is not None


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL
    pid = os.getpid()
    with _LOCK:
        if _POOL is None or _POOL[0] != pid or _POOL[1] != workers:
            if _POOL is not None and _POOL[0] == pid:
                _POOL[2].shutdown(wait=False)
            _POOL = (pid, workers, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convlab-gemm"))
        return _POOL[2]


def share_ranges(count: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges ``(start, stop)`` of ``range(count)`` of about equal length (some empty
    where ``parts > count``)."""
    return list(itertools.pairwise([count * i // parts for i in range(parts + 1)]))


def matmul_stack(a: np.ndarray, b: np.ndarray, out: np.ndarray, threads: int) -> np.ndarray:
    """``np.matmul(a, b, out=out)`` over the first axis, that axis split among ``threads`` threads.

    Call it inside :func:`blas_single_thread` (the caller holds BLAS to one thread around its whole
    loop, so the limit is set once per call, not once per block).
    """
    count = a.shape[0]
    workers = min(threads, count)
    if workers <= 1 or not available():
        return np.matmul(a, b, out=out)
    # one share on this thread, each other in a copy of the caller's context (np.errstate holds there too)
    run_shares([functools.partial(np.matmul, a[s:t], b[s:t], out=out[s:t])
                for s, t in share_ranges(count, workers)], workers)
    return out


def run_shares(tasks, threads: int) -> None:
    """Run the callables ``tasks`` at once, one per thread (the first on this thread), and wait for all.

    For work that releases the GIL (NumPy's matmul, ``nogil`` compiled kernels): the compiled Winograd
    path's per-thread pipelines (:func:`.winograd._run_compiled`). Each runs in a copy of the caller's
    context (``np.errstate`` holds there); the first exception raised is raised here, after all ended.
    """
    tasks = list(tasks)
    if threads <= 1 or len(tasks) <= 1:
        for task in tasks:
            task()
        return
    pool = _pool(min(threads, len(tasks)))  # the size matmul_stack asks for, so the pool is kept
    futures = [pool.submit(contextvars.copy_context().run, task) for task in tasks[1:]]
    error = None
    try:
        tasks[0]()
    except BaseException as exc:  # re-raised once the others ended
        error = exc
    for future in futures:
        try:
            future.result()
        except BaseException as exc:
            error = error or exc
    if error is not None:
        raise error


def matmul_accumulate(a: np.ndarray, b: np.ndarray, out: np.ndarray, threads: int, chunk: int) -> np.ndarray:
    """``out += a @ b`` over the stacked first axis, split among ``threads`` threads like :func:`matmul_stack`.

    Each thread multiplies its share ``chunk`` matrices at a time into a scratch buffer of its own
    (``chunk`` of ``out``'s matrices) and adds that into ``out`` at once, while it is in the cache; the
    additions run on the threads too (NumPy's add releases the GIL). Call it inside
    :func:`blas_single_thread` where ``threads > 1``.
    """
    count = a.shape[0]
    workers = min(threads, count) if available() else 1
    chunk = max(1, chunk)

    def share(s: int, t: int) -> None:
        part = np.empty((min(chunk, t - s),) + out.shape[1:], dtype=out.dtype)
        for c0 in range(s, t, chunk):
            c1 = min(t, c0 + chunk)
            np.matmul(a[c0:c1], b[c0:c1], out=part[:c1 - c0])
            np.add(out[c0:c1], part[:c1 - c0], out=out[c0:c1])

    run_shares([functools.partial(share, s, t) for s, t in share_ranges(count, workers) if t > s], workers)
    return out
