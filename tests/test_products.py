"""The stacked products of the compiled Winograd paths split over threads (ops/algorithms/_products.py)."""

from __future__ import annotations

import multiprocessing
import warnings

import numpy as np
import pytest

from convlab.ops.algorithms import _products

pytest.importorskip("threadpoolctl")


@pytest.mark.parametrize("count", [1, 2, 5, 36])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_split_products_equal_one_matmul_bit_for_bit(count, threads):
    rng = np.random.default_rng(count * 10 + threads)
    a = rng.standard_normal((count, 37, 19)).astype(np.float32)
    b = rng.standard_normal((count, 19, 23)).astype(np.float32)
    expected = np.matmul(a, b)
    out = np.full_like(expected, np.nan)
    with _products.split_products(threads):
        _products.matmul_stack(a, b, out, threads)
    assert np.array_equal(out, expected)  # the same GEMM call per matrix: the same numbers


def test_a_transposed_output_view_is_written_in_place():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((6, 3, 8, 5)), rng.standard_normal((6, 3, 5, 4))
    buffer = np.zeros(6 * 8 * 3 * 4)
    view = buffer.reshape(6, 8, 3, 4).transpose(0, 2, 1, 3)  # as the Winograd path's (alpha^2, G, tiles, kb)
    with _products.split_products(2):
        _products.matmul_stack(a, b, view, 2)
    assert np.array_equal(view, np.matmul(a, b))


def test_blas_holds_one_thread_inside_and_its_setting_returns_after():
    from threadpoolctl import threadpool_info

    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    with _products.split_products(2):
        inside = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    after = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert inside and all(n == 1 for n in inside)
    assert after == before


def test_errstate_of_the_caller_holds_in_the_worker_threads():
    a = np.full((4, 3, 3), np.inf)
    b = np.zeros((4, 3, 3))
    out = np.empty((4, 3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(invalid="ignore"), _products.split_products(2):
            _products.matmul_stack(a, b, out, 2)  # inf * 0: invalid, silenced in every thread
    assert np.isnan(out).all()


def _child(queue):
    a = np.ones((8, 4, 4))
    out = np.empty((8, 4, 4))
    with _products.split_products(2):
        _products.matmul_stack(a, a, out, 2)
    queue.put(float(out.sum()))


def test_a_forked_child_gets_a_pool_of_its_own():
    a = np.ones((8, 4, 4))
    with _products.split_products(2):
        _products.matmul_stack(a, a, np.empty_like(a), 2)  # the parent's pool exists before the fork
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == 8 * 16 * 4.0


def test_run_shares_runs_every_task_once_on_several_threads_and_raises_their_error():
    import threading

    seen = []
    lock = threading.Lock()

    def task(i):
        with lock:
            seen.append((i, threading.get_ident()))

    _products.run_shares([lambda i=i: task(i) for i in range(3)], 3)
    assert sorted(i for i, _ in seen) == [0, 1, 2]
    assert seen[[i for i, _ in seen].index(0)][1] == threading.get_ident()  # the first on this thread
    assert len({ident for _, ident in seen}) > 1

    def fail():
        raise ValueError("share 1")

    with pytest.raises(ValueError, match="share 1"):
        _products.run_shares([lambda: None, fail], 2)


def test_run_shares_keeps_the_callers_errstate():
    a = np.full((2, 2), np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(invalid="ignore"):
            _products.run_shares([lambda: a * 0, lambda: a * 0], 2)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("chunk", [1, 2, 6])
def test_matmul_accumulate_adds_every_product_once(threads, chunk):
    rng = np.random.default_rng(threads * 10 + chunk)
    a = rng.standard_normal((7, 5, 9))
    b = rng.standard_normal((7, 9, 4))
    out = rng.standard_normal((7, 5, 4))
    expected = out + np.matmul(a, b)
    with _products.split_products(threads):
        _products.matmul_accumulate(a, b, out, threads, chunk)
    np.testing.assert_array_equal(out, expected)  # the same product, then one addition: the same numbers
