"""Compiled (Numba) loops of the depthwise algorithm; imported lazily by :mod:`.depthwise`, never eagerly.

Five kernels, all over 2-d planes (a 1-d call is a 2-d call of height 1) of
contiguous ``(N, C_in, H, W)`` inputs and ``(C_out, C_in/groups, KH, KW)``
weights, written into a preallocated ``(N, C_out, OH, OW)`` output. Each
``(sample, output channel)`` plane is one task of a ``prange`` (Numba's thread
pool, ``NUMBA_NUM_THREADS`` threads).

:func:`flat` (stride 1, no input dilation: the forward and the input gradient of most layers)
    The NumPy path's flattened plane, per task: the input plane is copied into
    a zero-padded buffer of row pitch ``OW + d*(KW - 1)`` (L1/L2-sized), and
    each tap is one contiguous loop over all ``OH * pitch`` outputs of the
    padded grid (the ``pitch - OW`` extra columns are dropped at the end), so
    even 7x7 planes give loops of hundreds of elements that LLVM vectorises.
    Up to four taps of a kernel row share one pass over the accumulator, added
    one after the other in the tap order. Small planes are stacked: a task takes
    ``stack`` samples of one channel, their padded planes one under the other,
    and runs each tap over the whole stack (a 7x7 map's loop of 63 outputs
    becomes one of hundreds; the rows between two planes' outputs are computed
    and dropped). Each output's sum is the same whatever the stack.

:func:`phases` (input dilation at stride 1: the input gradient of a strided layer, a transposed layer)
    With input dilation ``l`` (``l - 1`` zeros between input elements), output
    row ``rho + l*i`` reads, under kernel row ``kh``, an input row only where
    ``rho + kh*d - pad`` is a multiple ``l*a`` of ``l``, and then row ``a + i``:
    each of the ``l_h * l_w`` phases of the output is a stride-1 correlation of
    the input with the taps of that phase. Per task the input plane is copied
    once into a zero-padded buffer, and each phase is computed like ``flat``
    (one contiguous loop per tap over the phase's grid of row pitch ``pitch``)
    and stored into its rows and columns of the output. No tap meets an
    inserted zero, nothing larger than a plane is allocated (no dilated copy of
    the output gradient), and the loops have no division. MobileNetV2's 3x3/2
    input gradient (96 channels at 112x112, batch 8, one thread, loaded Xeon):
    15 ms against 40-80 ms on :func:`direct`'s row loop.

:func:`strided` (a stride, no input dilation: the forward of a strided layer)
    Tap ``(i, j)`` reads the polyphase component ``(i*d mod s, j*d mod s)`` of
    the padded input, ``P[u, v] = x_pad[u*s + a, v*s + b]``, shifted by
    ``(i*d // s, j*d // s)``: per task each component a tap needs is copied
    once into a zero-padded buffer of row pitch ``OW + (KW-1)*d // s``, and
    each tap is one contiguous loop over the output grid, as in ``flat``
    (strided layers of MobileNetV2 and EfficientNet at 56x56 and below: 2-7x
    faster than :func:`direct`'s row loop on one thread).

:func:`direct` (any mix of stride and input dilation: calls no other kernel takes)
    Padding and input dilation are virtual: an input index is computed, and a
    tap that falls in the padding or on an inserted zero is skipped (negative
    pads, crops, need nothing special). For each output row, for each tap
    ``(i, j)``, one loop over the output columns
    ``acc[col] += w[i, j] * x[row*s + i*d, col*s + j*d]`` into a row
    accumulator that stays in L1; at stride 1 the loop is contiguous and LLVM
    vectorises it. With input dilation ``l`` (the input gradient of a strided
    convolution) the output columns are split into ``l`` phases ``col = p + l*t``:
    in each phase a tap reads consecutive input elements, so the loop is
    contiguous again (the sub-pixel idea, Shi et al. 2016, inside the kernel).

In :func:`flat`, :func:`phases`, :func:`strided` and :func:`direct` the sum of each
output is taken tap by tap in the reference's order, one multiply then one add
(no fused multiply-add, no ``fastmath``), so the result equals the NumPy tap
loop bit for bit.

:func:`small_output` (large kernel, tiny output: the weight gradient)
    The weight gradient of a depthwise layer is a correlation whose "kernel"
    is the output gradient (56x56, say) and whose output is the kernel size
    (3x3): looping over the taps would run 3136 loops of 3 columns. Here each
    output ``(a, b)`` keeps a vector of partial sums, one per kernel column,
    ``acc[a, b, j] += w[i, j] * x[a*s + i*d, b*s + j*d]``, a contiguous loop
    over the kernel's row, and sums the vector at the end. That is a different
    summation order from the reference (rows first, then columns), within
    float tolerance; integers never come here.

Compiled with ``cache=True`` (the machine code is written next to this file,
or under ``NUMBA_CACHE_DIR``; where neither is writable, without a cache).

Threads and fork (:func:`choose_threading_layer`, :func:`exclusive`)
    The ``prange`` loops run on Numba's threading layer, one of ``tbb``,
    ``omp`` and ``workqueue``. Numba's default order picks ``omp`` wherever
    GNU OpenMP is installed (most Linux machines), and libgomp is not fork
    safe: a ``multiprocessing`` pool forked after one compiled call hangs
    ("fork() called from a process already using GNU OpenMP"). Importing this
    module therefore asks Numba for its ``forksafe`` selection (``tbb`` where
    the ``tbb`` package is installed, which is also thread safe; ``omp`` where
    OpenMP is not GNU's, macOS and Windows; else ``workqueue``) and starts the
    pool at once, so the choice is fixed before any kernel runs. A layer the
    user chose (``NUMBA_THREADING_LAYER`` or ``numba.config.THREADING_LAYER``)
    is kept, and so is one that other Numba code in the process already
    started (a layer cannot change once its threads run).

    ``workqueue`` is not thread safe: two Python threads launching parallel
    kernels at once abort the process ("Concurrent access has been
    detected"). On that layer (on any layer but ``tbb`` and ``omp``) every
    kernel launch holds one process-wide lock, so calls from several threads
    (a threaded data loader) run one after the other, each on all of Numba's
    threads. A child forked while another thread held the lock gets a fresh
    lock (``os.register_at_fork``); ``workqueue`` itself frees its queues in
    the child and starts new threads on the child's first launch.

    Speed, measured on a 2-core Intel Xeon shared with other jobs (3x3
    depthwise, 8x144x56x56, float32, 2 threads, each layer in its own
    process, alternating): best times 2.3-2.7 ms on ``workqueue`` against
    1.95-2.4 ms on ``omp`` (about 15% more), medians 3.3-5 ms against 2-12 ms
    (GNU OpenMP's waiting threads fare worse on a busy machine). A launch
    costs 15-20 us on ``workqueue`` against 3-4 us on ``omp`` or ``tbb``,
    which shows on tiny calls only. Choosing per process does not help: a
    layer cannot be changed once its threads run, and ``omp`` in a parent
    breaks every child forked after its first kernel, so the fork-safe layer
    is used in every process. Installing ``tbb`` gives a layer that is fork
    safe and thread safe (no lock), about as fast as ``omp`` in the same runs
    (launch 3.7 us), and ``forksafe`` prefers it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading

import numba
import numpy as np
from numba import njit, prange
from numba import uint64 as _index

from ._common import numba_threads

#: Threading layers that Numba documents as thread safe: concurrent launches from Python threads need no lock.
THREADSAFE_LAYERS = ("tbb", "omp")

_launch_lock = threading.Lock()


def _load_pip_tbb() -> None:
    """Make the TBB of the ``tbb`` wheel (the ``fast`` extra) visible to numba's ``tbbpool``.

    pip puts ``libtbb.so.12`` in ``<prefix>/lib``, which numba's extension does not search; loading
    it first, globally, lets numba's own import of it succeed (then its ``forksafe`` choice is
    ``tbb``: fork safe, thread safe, and launches as fast as OpenMP). Without the wheel nothing happens.
    """
    library = os.path.join(sys.prefix, "lib", "libtbb.so.12")
    if sys.platform.startswith("linux") and os.path.exists(library):
        with contextlib.suppress(OSError):
            ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)


def choose_threading_layer() -> str:
    """Select Numba's fork-safe threading layer unless one is chosen or running already; start it; return its name.

    Numba, "The Threading Layers" (numba.readthedocs.io/en/stable/user/threading-layer.html):
    ``config.THREADING_LAYER`` must be set before any parallel compilation; the value ``forksafe``
    "provides a fork safe library"; "On Linux, the omp threading layer is not fork safe due to the
    GNU OpenMP runtime library (libgomp) not being fork safe". Its selection (numba/np/ufunc/parallel.py,
    ``_launch_threads``): ``tbb`` if installed, then ``omp`` except on Linux, then ``workqueue``
    ("workqueue is forksafe everywhere").
    """
    try:
        return numba.threading_layer()  # another library's parallel code already started a layer: it stays
    except ValueError:  # "Threading layer is not initialized."
        pass
    if "NUMBA_THREADING_LAYER" not in os.environ and str(numba.config.THREADING_LAYER).lower() == "default":
        numba.config.THREADING_LAYER = "forksafe"
        _load_pip_tbb()
    numba.get_num_threads()  # launches the layer's threads now: the choice is fixed before any kernel runs
    return numba.threading_layer()


def exclusive() -> contextlib.AbstractContextManager:
    """The lock to hold around a kernel launch: a process-wide one unless the layer is thread safe.

    ``workqueue`` is not thread safe (numba/np/ufunc/workqueue.c: "This module is not thread-safe";
    concurrent launches abort with "Concurrent access has been detected").
    """
    if numba.threading_layer() in THREADSAFE_LAYERS:
        return contextlib.nullcontext()
    return _launch_lock


@contextlib.contextmanager
def launch():
    """The context of every kernel launch: :func:`exclusive` held and numba set to the thread count the
    compiled kernels run on (:func:`._common.numba_threads`, per calling thread in numba); yields it."""
    with exclusive():
        threads = numba_threads(numba)
        if numba.get_num_threads() != threads:
            numba.set_num_threads(threads)
        yield threads


def _new_lock_in_child() -> None:
    """After a fork: the child's copy of the lock may be held by a thread that does not exist there."""
    global _launch_lock
    _launch_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX; where there is no fork there is nothing to reset
    os.register_at_fork(after_in_child=_new_lock_in_child)

THREADING_LAYER = choose_threading_layer()

# The hot loops index the 4-d arrays directly with unsigned indices and count from 0: a signed index
# gets a wraparound test (negative -> from the end) that stops LLVM from vectorising the loop, and a
# slice (a view) costs an atomic reference count update that the threads contend for. Measured on a
# 3x3 depthwise layer (8x144x56x56, float32, 2 threads): 10 ms with views, 7 ms with a signed loop
# variable, 2 ms as written.


def _jit(fn):
    """``njit(parallel=True, cache=True)``, or without the cache where no cache directory is writable."""
    try:
        return njit(parallel=True, cache=True, nogil=True)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(parallel=True, nogil=True)(fn)


@_jit
def direct(x, w, y, sh, sw, ph, pw, dh, dw, lh, lw, groups):  # pragma: no cover - compiled
    n_samples, _, height, width = x.shape
    c_out, cg, kh_size, kw_size = w.shape
    out_h, out_w = y.shape[2], y.shape[3]
    og = c_out // groups
    dilated_h = (height - 1) * lh + 1
    dilated_w = (width - 1) * lw + 1
    # With input dilation at stride 1 the columns split into lw phases; past out_w phases each holds at most
    # one column (the same layout, per_phase = 1), so the accumulator stays out_w long whatever lw is.
    phases = min(lw, max(out_w, 1)) if sw == 1 else 1
    per_phase = (out_w + phases - 1) // phases
    for task in prange(n_samples * c_out):
        n = task // c_out
        o = task - n * c_out
        g = o // og
        acc = np.empty(phases * per_phase, dtype=y.dtype)  # column ow lives at (ow % phases)*per_phase + ow//phases
        for oh in range(out_h):
            acc[:] = 0
            for c in range(cg):
                ci = g * cg + c
                for kh in range(kh_size):
                    q = oh * sh + kh * dh - ph  # row in the dilated input
                    if q < 0 or q >= dilated_h or q % lh != 0:
                        continue
                    r = q // lh
                    for kw in range(kw_size):
                        wv = w[o, c, kh, kw]
                        off = kw * dw - pw  # column ow reads column ow*sw + off of the dilated input
                        if dilated_w - 1 - off < 0:
                            continue
                        lo = 0 if off >= 0 else (-off + sw - 1) // sw
                        hi = min(out_w, (dilated_w - 1 - off) // sw + 1)
                        if hi <= lo:
                            continue
                        if lw == 1:
                            start = lo * sw + off
                            if sw == 1:
                                for t in range(hi - lo):
                                    acc[_index(lo + t)] += wv * x[n, ci, r, _index(start + t)]
                            else:
                                for t in range(hi - lo):
                                    acc[_index(lo + t)] += wv * x[n, ci, r, _index(start + t * sw)]
                        elif sw == 1:
                            first = lo + (-(off + lo)) % lw  # first column whose input is not an inserted zero
                            if first >= hi:
                                continue
                            count = (hi - first + lw - 1) // lw
                            base = (first % lw) * per_phase + first // lw  # consecutive in its phase
                            start = (first + off) // lw
                            for t in range(count):
                                acc[_index(base + t)] += wv * x[n, ci, r, _index(start + t)]
                        else:  # input dilation and stride together: a plain loop (only arbitrary calls do this)
                            for ow in range(lo, hi):
                                col = ow * sw + off
                                if col % lw == 0:
                                    acc[ow] += wv * x[n, ci, r, col // lw]
            if phases == 1:
                y[n, o, oh, :] = acc
            else:
                for ow in range(out_w):
                    y[n, o, oh, ow] = acc[(ow % phases) * per_phase + ow // phases]


@_jit
def phases(x, w, y, ph, pw, dh, dw, lh, lw, groups):  # pragma: no cover - compiled
    # y[n, o, oh, ow] = sum_{c, kh, kw} w[o, c, kh, kw] * X[n, g*cg + c, oh + kh*dh - ph, ow + kw*dw - pw], with X the
    # input dilated by (lh, lw) (zeros between its elements), at stride 1: the input gradient of a strided layer.
    # Output row oh = rho + lh*i reads, under tap kh, dilated row rho + kh*dh - ph + lh*i, an input row only where
    # rho + kh*dh - ph = lh*a (then input row a + i); columns alike with phi + lw*j and b. So each phase (rho, phi) of
    # the output is a stride-1 correlation of the input with the taps of that phase at offsets (a, b): computed,
    # like ``flat``, on a padded grid of row pitch ``pitch`` as one contiguous loop per tap, then stored into its
    # rows and columns (every lh-th, lw-th) of the output. No tap meets an inserted zero; no division in the loops.
    n_samples, _, height, width = x.shape
    c_out, cg, kh_size, kw_size = w.shape
    out_h, out_w = y.shape[2], y.shape[3]
    og = c_out // groups
    per_h = (out_h + lh - 1) // lh  # rows and columns of the largest phase
    per_w = (out_w + lw - 1) // lw
    a0 = (-ph) // lh  # the lowest input row and column any phase reads (floor division)
    b0 = (-pw) // lw
    rows = (lh - 1 + (kh_size - 1) * dh - ph) // lh + per_h - a0  # input rows a0 .. a0 + rows - 1 in the buffer
    pitch = (lw - 1 + (kw_size - 1) * dw - pw) // lw + per_w - b0  # and columns b0 .. b0 + pitch - 1
    r0, r1 = max(0, a0), min(height, a0 + rows)  # the source rows and columns that land in the buffer
    s0, s1 = max(0, b0), min(width, b0 + pitch)
    period = (rows + 1) * pitch  # one spare row per plane: the last taps' runs stay inside
    yf = y.reshape(n_samples * c_out * out_h * out_w)  # a view of the contiguous output
    for task in prange(n_samples * c_out):
        n = task // c_out
        o = task - n * c_out
        g = o // og
        buf = np.zeros(cg * period, dtype=y.dtype)
        acc = np.empty(per_h * pitch, dtype=y.dtype)
        for c in range(cg):
            ci = g * cg + c
            for r in range(r0, r1):
                base = c * period + (r - a0) * pitch - b0
                for t in range(s0, s1):
                    buf[_index(base + t)] = x[n, ci, r, _index(t)]
        for rho in range(min(lh, out_h)):  # past the output's size a phase is empty (a huge stride: few rows)
            n_i = (out_h - rho + lh - 1) // lh
            for phi in range(min(lw, out_w)):
                n_j = (out_w - phi + lw - 1) // lw
                if n_i <= 0 or n_j <= 0:
                    continue
                length = n_i * pitch
                for t in range(length):
                    acc[_index(t)] = 0
                for c in range(cg):
                    for kh in range(kh_size):
                        q = rho + kh * dh - ph
                        a = q // lh
                        if a * lh != q:
                            continue  # this tap row meets inserted zeros only
                        for kw in range(kw_size):
                            p = phi + kw * dw - pw
                            b = p // lw
                            if b * lw != p:
                                continue
                            wv = w[o, c, kh, kw]
                            start = c * period + (a - a0) * pitch + (b - b0)
                            for t in range(length):
                                acc[_index(t)] += wv * buf[_index(start + t)]
                for i in range(n_i):
                    ybase = (task * out_h + rho + lh * i) * out_w + phi
                    row = i * pitch
                    for j in range(n_j):
                        yf[_index(ybase + lw * j)] = acc[_index(row + j)]


def _jit_serial(fn):
    """:func:`_jit` without ``parallel``: a helper called from the kernels."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # no cache locator
        return njit(nogil=True)(fn)


@_jit_serial
def _components(size, dilation, stride):  # pragma: no cover - compiled
    """For taps ``k < size`` at offsets ``k*dilation``: the index of each tap's polyphase offset
    ``k*dilation mod stride`` among the distinct ones, the distinct offsets, and their count."""
    index = np.empty(size, dtype=np.int64)
    offsets = np.empty(size, dtype=np.int64)
    count = 0
    for k in range(size):
        offset = (k * dilation) % stride
        found = -1
        for j in range(count):
            if offsets[j] == offset:
                found = j
        if found < 0:
            offsets[count] = offset
            found = count
            count += 1
        index[k] = found
    return index, offsets, count


@_jit
def strided(x, w, y, sh, sw, ph, pw, dh, dw, groups):  # pragma: no cover - compiled
    # y[n, o, oh, ow] = sum_{c, kh, kw} w[o, c, kh, kw] * xp[n, g*cg + c, oh*sh + kh*dh, ow*sw + kw*dw], xp the input
    # zero-padded by (ph, pw) (negative: cropped). Tap (kh, kw) reads the polyphase component (al, be) =
    # (kh*dh mod sh, kw*dw mod sw) of xp, P[u, v] = xp[u*sh + al, v*sw + be], at (oh + qa, ow + qb) with
    # (qa, qb) = (kh*dh // sh, kw*dw // sw): each component is copied once into a buffer of row pitch
    # ``pitch``, and each tap is, like ``flat``, one contiguous loop over the whole output grid.
    n_samples, _, height, width = x.shape
    c_out, cg, kh_size, kw_size = w.shape
    out_h, out_w = y.shape[2], y.shape[3]
    og = c_out // groups
    pitch = out_w + ((kw_size - 1) * dw) // sw  # output columns plus the largest column offset of a tap
    rows = out_h + ((kh_size - 1) * dh) // sh
    period = (rows + 1) * pitch  # one spare row per component: the last taps' runs stay inside
    # The components the taps read, numbered compactly: at most min(s, K) distinct offsets per dimension (a huge
    # stride does not make s*s buffers). Kernel row kh reads row component row_of[kh], whose offset is al_of[.].
    row_of, al_of, n_rows = _components(kh_size, dh, sh)
    col_of, be_of, n_cols = _components(kw_size, dw, sw)
    phases = n_rows * n_cols
    length = out_h * pitch
    yf = y.reshape(n_samples * c_out * out_h * out_w)  # a view of the contiguous output
    for task in prange(n_samples * c_out):
        n = task // c_out
        o = task - n * c_out
        g = o // og
        buf = np.zeros(phases * period, dtype=y.dtype)
        acc = np.zeros(length, dtype=y.dtype)
        for c in range(cg):
            ci = g * cg + c
            for p in range(phases):
                al = al_of[p // n_cols]
                be = be_of[p - (p // n_cols) * n_cols]
                base = p * period
                for u in range(rows):
                    r = u * sh + al - ph  # the input row of component row u
                    row = base + u * pitch
                    if r < 0 or r >= height:
                        if c > 0:
                            for v in range(pitch):
                                buf[_index(row + v)] = 0
                        continue
                    # component columns v whose input column v*sw + be - pw lies inside the input
                    v0 = 0 if be - pw >= 0 else (pw - be + sw - 1) // sw
                    v1 = min(pitch, (width - 1 - be + pw) // sw + 1) if width - 1 - be + pw >= 0 else 0
                    if c > 0:
                        for v in range(0, min(v0, pitch)):
                            buf[_index(row + v)] = 0
                        for v in range(max(v1, 0), pitch):
                            buf[_index(row + v)] = 0
                    for v in range(v0, v1):
                        buf[_index(row + v)] = x[n, ci, r, _index(v * sw + be - pw)]
            for kh in range(kh_size):
                qa = (kh * dh) // sh
                for kw in range(kw_size):
                    qb = (kw * dw) // sw
                    wv = w[o, c, kh, kw]
                    start = (row_of[kh] * n_cols + col_of[kw]) * period + qa * pitch + qb
                    for t in range(length):
                        acc[_index(t)] += wv * buf[_index(start + t)]
        ybase = task * out_h * out_w
        for oh in range(out_h):
            for ow in range(out_w):
                yf[_index(ybase + oh * out_w + ow)] = acc[_index(oh * pitch + ow)]


@_jit
def flat(x, w, y, ph, pw, dh, dw, groups, stack):  # pragma: no cover - compiled
    n_samples, _, height, width = x.shape
    c_out, cg, kh_size, kw_size = w.shape
    out_h, out_w = y.shape[2], y.shape[3]
    og = c_out // groups
    pitch = out_w + (kw_size - 1) * dw  # the padded row, as wide as the last tap needs
    rows = out_h + (kh_size - 1) * dh  # padded rows of one sample's plane
    # the source rows that land in the buffer (negative pads crop)
    r0, r1 = max(0, -ph), min(height, rows - ph)
    c0, c1 = max(0, -pw), min(width, pitch - pw)
    chunks = (n_samples + stack - 1) // stack
    for task in prange(chunks * c_out):
        chunk = task // c_out
        o = task - chunk * c_out
        g = o // og
        n0 = chunk * stack
        count = min(stack, n_samples - n0)
        # ``count`` samples' padded planes one under the other (a period of ``rows`` rows), one spare row:
        # the last taps' runs stay inside. The outputs are computed on the whole stacked grid, so each tap
        # is one loop over all of them (the rows between two samples' outputs are computed and dropped).
        plane = np.zeros((count * rows + 1) * pitch, dtype=y.dtype)
        length = ((count - 1) * rows + out_h) * pitch
        acc = np.zeros(length, dtype=y.dtype)
        for c in range(cg):
            ci = g * cg + c
            if c > 0:
                plane[:] = 0
            for k in range(count):
                for r in range(r0, r1):
                    row = (k * rows + r + ph) * pitch + c0 + pw
                    for t in range(c1 - c0):
                        plane[_index(row + t)] = x[n0 + k, ci, r, _index(c0 + t)]
            for kh in range(kh_size):
                # Up to four taps of a kernel row per pass over the accumulator, added one after the
                # other in the tap order (the same sum as one tap per pass, a quarter of the traffic).
                kw = 0
                while kw < kw_size:
                    taps = min(4, kw_size - kw)
                    s0 = kh * dh * pitch + kw * dw
                    w0 = w[o, c, kh, kw]
                    if taps == 4:
                        w1, w2, w3 = w[o, c, kh, kw + 1], w[o, c, kh, kw + 2], w[o, c, kh, kw + 3]
                        for t in range(length):
                            i = s0 + t
                            acc[_index(t)] = (((acc[_index(t)] + w0 * plane[_index(i)]) + w1 * plane[_index(i + dw)])
                                              + w2 * plane[_index(i + 2 * dw)]) + w3 * plane[_index(i + 3 * dw)]
                    elif taps == 3:
                        w1, w2 = w[o, c, kh, kw + 1], w[o, c, kh, kw + 2]
                        for t in range(length):
                            i = s0 + t
                            acc[_index(t)] = (((acc[_index(t)] + w0 * plane[_index(i)]) + w1 * plane[_index(i + dw)])
                                              + w2 * plane[_index(i + 2 * dw)])
                    elif taps == 2:
                        w1 = w[o, c, kh, kw + 1]
                        for t in range(length):
                            i = s0 + t
                            acc[_index(t)] = (acc[_index(t)] + w0 * plane[_index(i)]) + w1 * plane[_index(i + dw)]
                    else:
                        for t in range(length):
                            acc[_index(t)] += w0 * plane[_index(s0 + t)]
                    kw += taps
        for k in range(count):
            for oh in range(out_h):
                base = (k * rows + oh) * pitch
                for ow in range(out_w):
                    y[n0 + k, o, oh, _index(ow)] = acc[_index(base + ow)]


@_jit
def small_output(x, w, y, sh, sw, ph, pw, dh, dw, groups):  # pragma: no cover - compiled
    n_samples, _, height, width = x.shape
    c_out, cg, kh_size, kw_size = w.shape
    out_h, out_w = y.shape[2], y.shape[3]
    og = c_out // groups
    for task in prange(n_samples * c_out):
        n = task // c_out
        o = task - n * c_out
        g = o // og
        acc = np.zeros((out_h, out_w, kw_size), dtype=y.dtype)  # one partial sum per kernel column
        for c in range(cg):
            ci = g * cg + c
            for kh in range(kh_size):
                for a in range(out_h):
                    q = a * sh + kh * dh - ph
                    if q < 0 or q >= height:
                        continue
                    for b in range(out_w):
                        base = b * sw - pw  # kernel column j reads input column base + j*dw
                        if width - 1 - base < 0:
                            continue
                        lo = 0 if base >= 0 else (-base + dw - 1) // dw
                        hi = min(kw_size, (width - 1 - base) // dw + 1)
                        if hi <= lo:
                            continue
                        start = base + lo * dw
                        if dw == 1:
                            for j in range(hi - lo):
                                acc[a, b, _index(lo + j)] += (w[o, c, kh, _index(lo + j)]
                                                              * x[n, ci, q, _index(start + j)])
                        else:
                            for j in range(hi - lo):
                                acc[a, b, _index(lo + j)] += (w[o, c, kh, _index(lo + j)]
                                                              * x[n, ci, q, _index(start + j * dw)])
        for a in range(out_h):
            for b in range(out_w):
                total = acc[a, b, 0]
                for j in range(1, kw_size):
                    total += acc[a, b, j]
                y[n, o, a, b] = total



def _jit_reduce(fn):
    """:func:`_jit` with LLVM allowed to reassociate and contract the sums (``fastmath`` flags ``reassoc`` and
    ``contract`` only: NaN and inf keep their IEEE meaning), so that a dot product becomes vector partial sums."""
    flags = {"reassoc", "contract"}
    try:
        return njit(parallel=True, cache=True, nogil=True, fastmath=flags)(fn)
    except RuntimeError:  # no cache locator
        return njit(parallel=True, nogil=True, fastmath=flags)(fn)


@_jit_reduce
def weight_grad(x, g, gw, sh, sw, ph, pw, dh, dw, multiplier, chunks, stack):  # pragma: no cover - compiled
    # gw[chunk, o, i, j] = sum over the chunk's samples n and the outputs (a, b) of
    #     g[n, o, a, b] * x[n, o // multiplier, a*sh + i*dh - ph, b*sw + j*dw - pw]   (zero outside x)
    # One task per (chunk of samples, output channel). Its input planes are copied into zero-padded
    # buffers of row pitch ``cols`` (the padding as real zeros, so 0 * inf gives NaN as in the reference),
    # ``stack`` samples one after the other with a period of ``period`` elements. At stride 1 the output
    # gradient is copied onto the same pitch and period (zeros elsewhere), and each tap is one dot product
    # over the whole stack, ``sum_t grid[t] * plane[t + i*dh*cols + j*dw]``, up to four taps of a kernel
    # row per pass: long vectorised loops even on 7x7 maps. A plane holding NaN or inf would meet the
    # grid's zeros (0 * inf = NaN where the reference has no product): a stack holding one, and every
    # strided call, takes dot products along the output rows instead.
    n_samples, _, height, width = x.shape
    c_out, out_h, out_w = g.shape[1], g.shape[2], g.shape[3]
    kh_size, kw_size = gw.shape[2], gw.shape[3]
    rows = (out_h - 1) * sh + (kh_size - 1) * dh + 1  # the padded rows and columns the windows read
    cols = (out_w - 1) * sw + (kw_size - 1) * dw + 1
    period = (rows + 1) * cols  # one spare row per plane: the last taps' runs stay inside
    per_chunk = (n_samples + chunks - 1) // chunks
    r0, r1 = max(0, ph), min(rows, height + ph)  # the buffer rows and columns that hold input values
    c0, c1 = max(0, pw), min(cols, width + pw)
    flat = sh == 1 and sw == 1
    for task in prange(c_out * chunks):
        chunk = task // c_out
        o = task - chunk * c_out
        ci = o // multiplier
        plane = np.zeros(stack * period, dtype=gw.dtype)
        grid = np.zeros(stack * period if flat else 1, dtype=gw.dtype)
        acc = np.zeros(kh_size * kw_size, dtype=gw.dtype)
        zero = acc[0]  # the sums run in the array's precision (a literal 0.0 would make them float64)
        first, last = chunk * per_chunk, min(n_samples, (chunk + 1) * per_chunk)
        for n0 in range(first, last, stack):
            count = min(stack, last - n0)
            for k in range(count):
                for r in range(r0, r1):
                    base = k * period + r * cols
                    for t in range(c0, c1):
                        plane[_index(base + t)] = x[n0 + k, ci, _index(r - ph), _index(t - pw)]
            # NaN or inf anywhere in the stack makes this sum NaN (0 * inf = NaN); a vectorised pass of its own
            # (a test inside the copy loop above kept that loop scalar: 7x7 maps 0.98 -> 0.75 ms, one thread)
            check = zero
            for t in range(count * period):
                check += plane[_index(t)] * zero
            finite = check == zero
            if flat and finite:
                for k in range(count):
                    for a in range(out_h):
                        base = k * period + a * cols
                        for b in range(out_w):
                            grid[_index(base + b)] = g[n0 + k, o, a, _index(b)]
                length = (count - 1) * period + out_h * cols
                for i in range(kh_size):
                    j = 0
                    while j < kw_size:
                        s0 = i * dh * cols + j * dw
                        taps = min(4, kw_size - j)
                        t0 = zero
                        t1 = zero
                        t2 = zero
                        t3 = zero
                        if taps == 4:
                            for t in range(length):
                                gv = grid[_index(t)]
                                q = s0 + t
                                t0 += gv * plane[_index(q)]
                                t1 += gv * plane[_index(q + dw)]
                                t2 += gv * plane[_index(q + 2 * dw)]
                                t3 += gv * plane[_index(q + 3 * dw)]
                        elif taps == 3:
                            for t in range(length):
                                gv = grid[_index(t)]
                                q = s0 + t
                                t0 += gv * plane[_index(q)]
                                t1 += gv * plane[_index(q + dw)]
                                t2 += gv * plane[_index(q + 2 * dw)]
                        elif taps == 2:
                            for t in range(length):
                                gv = grid[_index(t)]
                                q = s0 + t
                                t0 += gv * plane[_index(q)]
                                t1 += gv * plane[_index(q + dw)]
                        else:
                            for t in range(length):
                                t0 += grid[_index(t)] * plane[_index(s0 + t)]
                        base = i * kw_size + j
                        acc[base] += t0
                        if taps > 1:
                            acc[base + 1] += t1
                        if taps > 2:
                            acc[base + 2] += t2
                        if taps > 3:
                            acc[base + 3] += t3
                        j += taps
            else:
                for k in range(count):
                    for a in range(out_h):
                        for i in range(kh_size):
                            row = k * period + (a * sh + i * dh) * cols
                            for j in range(kw_size):
                                s0 = row + j * dw
                                t0 = zero
                                for b in range(out_w):
                                    t0 += g[n0 + k, o, a, _index(b)] * plane[_index(s0 + b * sw)]
                                acc[i * kw_size + j] += t0
        for i in range(kh_size):
            for j in range(kw_size):
                gw[chunk, o, i, j] = acc[i * kw_size + j]
