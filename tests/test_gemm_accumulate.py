"""gemm's weight gradient with its products added in place (BLAS beta = 1) and its per-sample blocks.

Every path is compared with the reference algorithm (and the ResNet-shaped cases with torch), NaN and inf
included; the extra memory of the paths that exist to save it is checked with tracemalloc (NumPy reports
its allocations there), never a time.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import convlab.functional as F
from convlab.ops.algorithms import _blas, gemm, reference
from tests.helpers import assert_close

# NaN and inf inputs make the products warn (0 * inf), as NumPy does
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["cc", "fc", "cf", "ff"])
@pytest.mark.parametrize("c_order", ["C", "F"])
def test_gemm_add_adds_the_product_in_place_for_every_contiguous_layout(dtype, layout, c_order):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5, 9)).astype(dtype)
    b = rng.standard_normal((9, 4)).astype(dtype)
    a = np.asfortranarray(a) if layout[0] == "f" else a
    b = np.asfortranarray(b) if layout[1] == "f" else b
    c0 = rng.standard_normal((5, 4)).astype(dtype)
    c = np.array(c0, order=c_order)
    address = c.__array_interface__["data"][0]
    assert _blas.gemm_add(c, a, b) is c
    assert c.__array_interface__["data"][0] == address
    np.testing.assert_allclose(c, c0 + a.astype(np.float64) @ b, rtol=10 * np.finfo(dtype).eps * 9)


def test_gemm_add_falls_back_on_strided_operands_integers_and_mixed_dtypes():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((6, 10))[:, ::2]  # not contiguous: f2py would copy it
    b = rng.standard_normal((5, 3))
    c = np.zeros((6, 3))
    np.testing.assert_allclose(_blas.gemm_add(c, a, b), a @ b, rtol=1e-12)
    ci = np.ones((2, 2), dtype=np.int64)
    _blas.gemm_add(ci, np.arange(4).reshape(2, 2), np.arange(4).reshape(2, 2))
    np.testing.assert_array_equal(ci, 1 + np.arange(4).reshape(2, 2) @ np.arange(4).reshape(2, 2))
    cf = np.zeros((2, 2), dtype=np.float32)
    _blas.gemm_add(cf, np.eye(2), np.ones((2, 2), dtype=np.float32))  # float64 @ float32 into float32
    np.testing.assert_array_equal(cf, np.ones((2, 2), dtype=np.float32))
    empty = np.full((2, 2), 3.0)
    _blas.gemm_add(empty, np.zeros((2, 0)), np.zeros((0, 2)))
    np.testing.assert_array_equal(empty, np.full((2, 2), 3.0))


def test_gemm_add_propagates_nan_and_inf():
    c = np.zeros((2, 2), dtype=np.float32)
    a = np.array([[np.nan, 0.0], [np.inf, 1.0]], dtype=np.float32)
    b = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    _blas.gemm_add(c, a, b)
    expected = np.zeros((2, 2), dtype=np.float32)
    expected += a @ b
    np.testing.assert_array_equal(c, expected)  # NaN where NaN, inf where inf, 0*inf = NaN as in matmul


def _reference_weight_grad(xp, gy, kernel, stride, dilation, groups):
    """The correlation of the input (C_in/g, g*N, *S) with the output gradient as the kernel, by the reference."""
    n, c_in = xp.shape[:2]
    nd = len(kernel)
    c_out, cg, og = gy.shape[1], c_in // groups, gy.shape[1] // groups
    sp = tuple(range(3, 3 + nd))
    xt = xp.reshape((n, groups, cg) + xp.shape[2:]).transpose((2, 1, 0) + sp).reshape((cg, groups * n) + xp.shape[2:])
    wt = gy.reshape((n, groups, og) + gy.shape[2:]).transpose((1, 2, 0) + sp).reshape((c_out, n) + gy.shape[2:])
    r = reference.conv_general(xt, wt, dilation, ((0, 0),) * nd, stride, (1,) * nd, groups)
    return r[(slice(None), slice(None)) + tuple(slice(0, k) for k in kernel)].swapaxes(0, 1)


def _with_nonfinite(a, rng):
    a = a.copy()
    flat = a.reshape(-1)
    idx = rng.choice(flat.size, 3, replace=False)
    flat[idx] = [np.nan, np.inf, -np.inf]
    return a


@pytest.mark.parametrize("nonfinite", [False, True])
@pytest.mark.parametrize("case", [
    # x (padded), gy, kernel, stride, dilation, groups: gradients larger than the window block (in place)
    ((2, 4, 4, 4), (2, 32, 2, 2), (3, 3), (1, 1), (1, 1), 1),
    ((2, 8, 6, 6), (2, 48, 2, 2), (3, 3), (2, 2), (1, 1), 2),
    ((3, 4, 9), (3, 40, 3), (3,), (2,), (2,), 1),
    ((2, 4, 3, 4, 4), (2, 24, 1, 2, 2), (3, 3, 3), (1, 1, 1), (1, 1, 1), 1),
])
def test_the_weight_gradient_added_in_place_equals_the_reference(case, nonfinite):
    x_shape, gy_shape, kernel, stride, dilation, groups = case
    rng = np.random.default_rng(sum(x_shape) + sum(gy_shape))
    xp, gy = rng.standard_normal(x_shape), rng.standard_normal(gy_shape)
    if nonfinite:
        xp, gy = _with_nonfinite(xp, rng), _with_nonfinite(gy, rng)
    # the in-place path is the one taken: the gradient of one group is at least the window block
    cg, og = x_shape[1] // groups, gy_shape[1] // groups
    rows = gy_shape[0] * int(np.prod(gy_shape[2:]))
    assert int(np.prod(kernel)) * cg * og >= rows * int(np.prod(kernel)) * x_shape[1]
    expected = _reference_weight_grad(xp, gy, kernel, stride, dilation, groups)
    assert_close(gemm.weight_grad(xp, gy, kernel, stride, dilation, groups), expected, "weight gradient")
    got32 = gemm.weight_grad(xp.astype(np.float32), gy.astype(np.float32), kernel, stride, dilation, groups)
    assert_close(got32, expected.astype(np.float32), "weight gradient, float32")


@pytest.mark.parametrize("nonfinite", [False, True])
@pytest.mark.parametrize("case", [
    ((3, 6, 10, 10), (3, 5, 8, 8), (3, 3), (1, 1), (1, 1), 1),  # 64 positions a sample
    ((2, 6, 21, 21), (2, 4, 10, 10), (3, 3), (2, 2), (1, 1), 2),  # strided, grouped
    ((2, 3, 70), (2, 5, 33), (5,), (2,), (1,), 1),  # 1-d, 3 channels
])
def test_per_sample_blocks_read_the_output_gradient_in_place_and_equal_the_reference(case, nonfinite, monkeypatch):
    x_shape, gy_shape, kernel, stride, dilation, groups = case
    monkeypatch.setattr(gemm, "MIN_ROWS", 16)  # a sample's positions are enough rows: blocks within a sample
    rng = np.random.default_rng(sum(gy_shape))
    xp, gy = rng.standard_normal(x_shape), rng.standard_normal(gy_shape)
    if nonfinite:
        xp, gy = _with_nonfinite(xp, rng), _with_nonfinite(gy, rng)
    expected = _reference_weight_grad(xp, gy, kernel, stride, dilation, groups)
    assert_close(gemm.weight_grad(xp, gy, kernel, stride, dilation, groups), expected, "weight gradient")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride", [1, 2])
def test_the_pointwise_weight_gradient_sums_samples_in_place(dtype, stride):
    rng = np.random.default_rng(3 + stride)
    xp = rng.standard_normal((4, 6, 7, 7)).astype(dtype)
    out = (7 - 1) // stride + 1
    gy = rng.standard_normal((4, 5, out, out)).astype(dtype)
    xp, gy = _with_nonfinite(xp, rng), _with_nonfinite(gy, rng)
    expected = _reference_weight_grad(xp.astype(np.float64), gy.astype(np.float64), (1, 1), (stride,) * 2, (1, 1), 1)
    assert_close(gemm.weight_grad(xp, gy, (1, 1), (stride,) * 2, (1, 1), 1), expected.astype(dtype), "1x1")


def test_resnet_shaped_weight_gradients_match_torch_and_hold_no_second_gradient():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    # ResNet-50's 1x1 1024->256 layer at 7x7 (batch 4): the per-sample products are added into one gradient
    x = rng.standard_normal((4, 1024, 7, 7), dtype=np.float32)
    gy = rng.standard_normal((4, 256, 7, 7), dtype=np.float32)
    tracemalloc.start()
    try:
        got = F.conv_weight_grad(x, (256, 1024, 1, 1), gy, algorithm="gemm")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * got.nbytes  # the gradient and small temporaries, no (N, 256, 1024) stack
    expected = torch.nn.grad.conv2d_weight(torch.from_numpy(x).double(), (256, 1024, 1, 1),
                                           torch.from_numpy(gy).double()).numpy()
    assert_close(got, expected.astype(np.float32), "1x1 weight gradient")
    # a 3x3 512->512 layer at 5x5: the gradient (9 MiB) is larger than the window block, added in place
    x = rng.standard_normal((2, 512, 5, 5), dtype=np.float32)
    gy = rng.standard_normal((2, 512, 5, 5), dtype=np.float32)
    tracemalloc.start()
    try:
        got = F.conv_weight_grad(x, (512, 512, 3, 3), gy, padding=1, algorithm="gemm")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the (K*C, C_out) sum, its transposed copy (the result) and the inputs' copies: no third gradient
    assert peak < 2.5 * got.nbytes
    expected = torch.nn.grad.conv2d_weight(torch.from_numpy(x).double(), (512, 512, 3, 3),
                                           torch.from_numpy(gy).double(), padding=1).numpy()
    assert_close(got, expected.astype(np.float32), "3x3 weight gradient")


@pytest.mark.parametrize("nonfinite", [False, True])
def test_an_rgb_stem_s_weight_gradient_runs_gemm_directly_and_equals_the_reference_and_torch(nonfinite):
    torch = pytest.importorskip("torch")
    from convlab.ops.algorithms import trace

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 20, 20))
    w_shape = (8, 3, 7, 7)
    kw = dict(stride=2, padding=3)
    gy = rng.standard_normal(F.conv(x, np.zeros(w_shape), **kw).shape)
    if nonfinite:
        x, gy = _with_nonfinite(x, rng), _with_nonfinite(gy, rng)
    with trace() as events:
        got = F.conv_weight_grad(x, w_shape, gy, **kw)
    assert [(e.role, e.algorithm) for e in events] == [("weight_grad", "gemm")]
    expected = F.conv_vjp(gy, x, np.zeros(w_shape), algorithm="reference", **kw).weight
    assert_close(got, expected, "3-channel weight gradient")
    if not nonfinite:
        t = torch.nn.grad.conv2d_weight(torch.from_numpy(x), w_shape, torch.from_numpy(gy), **kw).numpy()
        assert_close(got, t, "3-channel weight gradient against torch")


@pytest.mark.parametrize("nonfinite", [False, True])
@pytest.mark.parametrize("case", [
    # x (padded), gy, kernel, stride, dilation, groups: thin products (a small gradient over many rows)
    ((4, 3, 20, 20), (4, 2, 7, 7), (7, 7), (2, 2), (1, 1), 1),  # blocks within one sample
    ((6, 4, 6, 6), (6, 6, 4, 4), (3, 3), (1, 1), (1, 1), 2),  # blocks of several samples, grouped
    ((3, 4, 40), (3, 5, 36), (5,), (1,), (1,), 1),
    ((2, 4, 5, 5, 5), (2, 3, 3, 3, 3), (3, 3, 3), (1, 1, 1), (1, 1, 1), 1),
])
def test_thin_weight_gradients_summed_on_threads_equal_the_reference(case, nonfinite, monkeypatch):
    pytest.importorskip("threadpoolctl")
    x_shape, gy_shape, kernel, stride, dilation, groups = case
    monkeypatch.setattr(gemm, "blas_threads", lambda: 2)  # as if BLAS ran on two threads
    monkeypatch.setattr(gemm, "WEIGHT_GRAD_CHUNK_BYTES", 1)  # the smallest blocks: many to share
    monkeypatch.setattr(gemm, "MIN_ROWS", 8)
    shares = []

    def counting(tasks, threads):
        tasks = list(tasks)
        shares.append(len(tasks))
        return gemm_run_shares(tasks, threads)

    from convlab.ops.algorithms import _products

    gemm_run_shares = _products.run_shares
    monkeypatch.setattr(gemm, "run_shares", counting)
    rng = np.random.default_rng(sum(x_shape))
    xp, gy = rng.standard_normal(x_shape), rng.standard_normal(gy_shape)
    if nonfinite:
        xp, gy = _with_nonfinite(xp, rng), _with_nonfinite(gy, rng)
    expected = _reference_weight_grad(xp, gy, kernel, stride, dilation, groups)
    assert_close(gemm.weight_grad(xp, gy, kernel, stride, dilation, groups), expected, "weight gradient")
    assert shares == [2]
    got32 = gemm.weight_grad(xp.astype(np.float32), gy.astype(np.float32), kernel, stride, dilation, groups)
    assert_close(got32, expected.astype(np.float32), "weight gradient, float32")


def test_a_gradient_as_large_as_a_block_stays_on_blas_threads(monkeypatch):
    monkeypatch.setattr(gemm, "blas_threads", lambda: 2)
    monkeypatch.setattr(gemm, "run_shares", lambda tasks, threads: pytest.fail("split a large gradient"))
    rng = np.random.default_rng(2)
    xp, gy = rng.standard_normal((2, 4, 4, 4)), rng.standard_normal((2, 32, 2, 2))
    expected = _reference_weight_grad(xp, gy, (3, 3), (1, 1), (1, 1), 1)
    assert_close(gemm.weight_grad(xp, gy, (3, 3), (1, 1), (1, 1), 1), expected, "weight gradient")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thin_pointwise_products_shared_among_threads_equal_the_reference_and_the_blas_split(dtype, monkeypatch):
    pytest.importorskip("threadpoolctl")
    from convlab.ops.algorithms import _products

    rng = np.random.default_rng(11)
    x = _with_nonfinite(rng.standard_normal((5, 12, 4, 3)), rng).astype(dtype)  # C_in 12 > C_out 5: thin
    w = rng.standard_normal((5, 12, 1, 1)).astype(dtype)
    args = ((1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1)
    with np.errstate(invalid="ignore"):
        unsplit = gemm.conv_general(x, w, *args)
        monkeypatch.setattr(gemm, "blas_threads", lambda: 2)
        calls = []
        monkeypatch.setattr(gemm, "matmul_stack", lambda *a: calls.append(a[-1]) or _products.matmul_stack(*a))
        got = gemm.conv_general(x, w, *args)
        expected = reference.conv_general(x.astype(np.float64), w.astype(np.float64), *args)
    assert calls == [2]
    np.testing.assert_array_equal(got, unsplit)  # the same GEMM per sample, the same numbers
    assert_close(got, expected.astype(dtype), "1x1, shared among threads")
    # a wide product (C_out > C_in) and a grouped one stay with BLAS
    calls.clear()
    gemm.conv_general(rng.standard_normal((2, 4, 3, 3)), rng.standard_normal((8, 4, 1, 1)), *args)
    gemm.conv_general(rng.standard_normal((2, 8, 3, 3)), rng.standard_normal((2, 4, 1, 1)), *args[:-1], 2)
    assert calls == []


@pytest.mark.parametrize("stride", [1, 2])
def test_the_pointwise_weight_gradient_summed_by_rows_on_threads_equals_the_reference(stride, monkeypatch):
    pytest.importorskip("threadpoolctl")
    from convlab.ops.algorithms import _products

    monkeypatch.setattr(gemm, "SHARE_GRAD_ROWS", True)  # off by default (slower on a quiet machine)
    monkeypatch.setattr(gemm, "blas_threads", lambda: 2)
    shares = []
    monkeypatch.setattr(gemm, "run_shares", lambda tasks, threads: shares.append(len(tasks := list(tasks)))
                        or _products.run_shares(tasks, threads))
    rng = np.random.default_rng(13 + stride)
    xp = _with_nonfinite(rng.standard_normal((3, 6, 7, 7)), rng)
    out = (7 - 1) // stride + 1
    gy = _with_nonfinite(rng.standard_normal((3, 20, out, out)), rng)  # 20 output channels: 10 rows a thread
    expected = _reference_weight_grad(xp, gy, (1, 1), (stride,) * 2, (1, 1), 1)
    for dtype in (np.float64, np.float32):
        got = gemm.weight_grad(xp.astype(dtype), gy.astype(dtype), (1, 1), (stride,) * 2, (1, 1), 1)
        assert_close(got, expected.astype(dtype), f"1x1 weight gradient by rows, {np.dtype(dtype)}")
    assert shares == [2, 2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wide_pointwise_products_shared_by_output_channels_equal_the_reference(dtype, monkeypatch):
    pytest.importorskip("threadpoolctl")
    from convlab.ops.algorithms import _products

    rng = np.random.default_rng(17)
    x = _with_nonfinite(rng.standard_normal((3, 6, 5, 4)), rng).astype(dtype)
    w = rng.standard_normal((24, 6, 1, 1)).astype(dtype)  # C_out 24 >= C_in 6: wide, 12 rows a thread
    monkeypatch.setattr(gemm, "SHARE_WIDE_ROWS", True)  # off by default (no gain on a quiet machine)
    args = ((1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1), 1)
    with np.errstate(invalid="ignore"):
        unsplit = gemm.conv_general(x, w, *args)
        monkeypatch.setattr(gemm, "blas_threads", lambda: 2)
        shares = []
        monkeypatch.setattr(gemm, "run_shares", lambda tasks, threads: shares.append(len(tasks := list(tasks)))
                            or _products.run_shares(tasks, threads))
        got = gemm.conv_general(x, w, *args)
        expected = reference.conv_general(x.astype(np.float64), w.astype(np.float64), *args)
    assert shares == [2]
    assert_close(got, unsplit, "1x1 shared by output channels against BLAS's split")
    assert_close(got, expected.astype(dtype), "1x1 shared by output channels")


@pytest.mark.parametrize("chunk", [None, 256])  # 256 bytes: the kernel cut into pieces, products added
@pytest.mark.parametrize("case", [
    ((2, 3, 17, 17), (16, 3, 7, 7), (2, 2), ((3, 3), (3, 3)), (1, 1)),  # a stem
    ((2, 8, 9, 9), (24, 8, 3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2)),  # dilated
    ((2, 4, 30), (16, 4, 5), (2,), ((2, 2),), (1,)),
    ((1, 4, 5, 6, 6), (16, 4, 3, 3, 3), (1, 1, 1), ((1, 1),) * 3, (1, 1, 1)),
])
def test_window_gemms_shared_by_output_channels_equal_the_reference(case, chunk, monkeypatch):
    pytest.importorskip("threadpoolctl")
    from convlab.ops.algorithms import _products

    x_shape, w_shape, stride, padding, dilation = case
    nd = len(stride)
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    x = _with_nonfinite(rng.standard_normal(x_shape), rng)
    w = rng.standard_normal(w_shape)
    args = (stride, padding, dilation, (1,) * nd, 1)
    monkeypatch.setattr(gemm, "SHARE_WINDOW_COLUMNS", True)  # off by default (slower on a quiet machine)
    if chunk is not None:
        monkeypatch.setattr(gemm, "CHUNK_BYTES", chunk)
        monkeypatch.setattr(gemm, "MIN_ROWS", 4)
    with np.errstate(invalid="ignore"):
        unsplit = gemm.conv_general(x, w, *args)
        monkeypatch.setattr(gemm, "blas_threads", lambda: 2)
        shares = []
        monkeypatch.setattr(gemm, "run_shares", lambda tasks, threads: shares.append(len(tasks := list(tasks)))
                            or _products.run_shares(tasks, threads))
        got = gemm.conv_general(x, w, *args)
        expected = reference.conv_general(x, w, *args)
    assert shares and set(shares) == {2}
    if chunk is not None:
        assert len(shares) > 1  # every block and piece shared
    np.testing.assert_array_equal(got, unsplit)  # the same products, column by column
    assert_close(got, expected, "windows shared by output channels")
