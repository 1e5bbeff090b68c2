"""FFT convolution: transform, multiply (or a GEMM per frequency), transform back.

The convolution theorem (Mathieu, Henaff & LeCun, "Fast training of
convolutional networks through FFTs", arXiv:1312.5851, for its use in deep
learning): a correlation with a kernel is a product in the frequency domain,
so its cost hardly depends on the kernel size. It pays for large kernels
(a 31x31 depthwise kernel costs 961 multiply-adds per output directly) and
for large single-channel images.

One spatial dimension, padded input ``x`` of length ``S``, kernel extent
``E = d*(k-1) + 1``: the stride-1 correlation ``y[t] = sum_u w[u] x[t + u*d]``
for ``t < S - E + 1`` is the linear convolution of ``x`` with the flipped,
dilated kernel ``v[E-1-u*d] = w[u]``, read from index ``E - 1``. A circular
convolution of any length ``n >= S`` gives those entries exactly (the
wrap-around only reaches indices below ``E - 1``); so does one of the
shorter length ``max(X + lo, E - lo + (O-1)*s)`` for the unpadded input of
length ``X`` (the wrapped entries land where no output is read: a 'same' layer
needs ``X + lo``, not ``X + 2 lo``; :func:`fft_lengths`), rounded up to the
next fast length (``scipy.fft.next_fast_len``). Then:

* ``X = rfftn(x, s=n)`` ``(N, C_in, *F)``, one axis at a time from the last
  (pruned: the zero rows of the padding are not transformed along the rows):
  scipy zero-pads the end to ``n``, and the left padding ``lo`` is not copied
  in but read as a circular shift of the output by ``lo``; negative pads are
  slices; only input dilation needs a materialized copy;
* ``V``, the kernel's transform ``(C_out, C_in/g, *F)``, as a pruned FFT (one
  axis at a time, so the untransformed axes keep the kernel's small extent: a
  full-size FFT of the mostly-zero padded kernel would cost as much as an
  input plane, a third of the work for one large image);
* depthwise-like calls (one input channel per group) multiply elementwise,
  broadcasting over the channel multiplier; otherwise the channel sum is, per
  frequency, a complex GEMM ``(N, C_in/g) @ (C_in/g, C_out/g)``, all
  frequencies and groups in one ``np.matmul``;
* ``irfftn`` one axis at a time, keeping after each only the valid entries
  ``E-1, E-1+s, ...`` (the following axes transform only those lines): a
  strided call is computed at stride 1 and subsampled, so it does up to
  ``prod(s)`` times the necessary work, which the cost model weighs;
* dilation is a dilated kernel; input dilation is materialized (zeros);
* one filter per group (``C_out/g == 1``: the weight gradient of a depthwise
  layer, where the batch plays the channels) multiplies elementwise and sums
  the group's channels, instead of a matrix-vector product per frequency;
  with one block of samples (the weight gradient) the kernel, as large as the
  input, is transformed a chunk of channels at a time and summed at once,
  never held whole (1024x1024 single-channel weight gradient at batch 8:
  104 -> 26 MiB extra, torch 51);
* memory: the input and output spectra are streamed in blocks of samples and
  groups of about :data:`BLOCK_BYTES` (transform, multiply, transform back,
  crop into the output), so a call's extra memory is its output, the kernel
  spectrum and a few blocks, not three whole-call spectra (a RepLKNet 31x31
  layer at batch 8: 133 MiB before, against torch's 28). Blocks of 2 MiB
  measured fastest (they stay in the cache): against whole-call spectra, 1.5-2x
  faster on 7x7 to 31x31 depthwise layers, the same on a 1024x1024 image
  (one plane, one block).

Real inputs use the real-input transforms (``rfftn``, half the spectrum);
complex inputs the full ones. float32 stays in single precision (complex64).
The rounding error of an FFT convolution is about ``eps * log2(n)`` relative to
the largest input-kernel products, spread evenly over the output (not
proportional to each output's magnitude): small outputs next to large ones
have a larger relative error than with direct sums, within the tolerance of
the tests for the sizes of deep learning. Integers are refused (not exact).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from ._costs import MACHINE, fft_threads, fmt, gemm_rate, stream, thread_factor
from ._layout import Call, block_bytes, budget_bytes, check_applies, empty_result, padded_channels_first
from ._record import Algorithm, Estimate

__all__ = ["ALGORITHM", "BLOCK_BYTES", "FFT_PLANE_SECONDS", "WORKERS", "conv_general", "depthwise_weight_grad",
           "estimate", "fft_lengths",
           "largest_buffer", "unsupported", "workers"]

def _scipy_fft():
    """``scipy.fft``, imported on first use: it takes about a third of a second, which commands that never
    convolve (``convlab summary``, ``convlab models``) should not pay."""
    import scipy.fft

    return scipy.fft


#: Threads ``scipy.fft`` may use (its ``workers=``); the benchmark runs both libraries on 2 threads.
WORKERS = 2


def workers() -> int:
    """:data:`WORKERS`, or fewer where ``OMP_NUM_THREADS`` asks for fewer threads (as it does of BLAS and of the
    compiled kernels: ``convlab bench --threads 1`` then times one thread on every side)."""
    try:
        return max(1, min(WORKERS, int(os.environ["OMP_NUM_THREADS"])))
    except (KeyError, ValueError):
        return WORKERS


def unsupported(call: Call) -> str | None:
    """FFT convolution needs floating-point (or complex) numbers, and spectra within the memory budget."""
    if call.dtype.kind not in "fc":
        return (f"it needs a floating-point dtype, got {call.dtype} (FFT rounding would make integer "
                f"results inexact)")
    name, shape, nbytes = largest_buffer(call)
    if nbytes > budget_bytes():
        return (f"its {name} of shape {shape} would need {nbytes:,} bytes, more than the memory budget of "
                f"{budget_bytes():,} bytes (convlab.ops.set_memory_budget changes it)")
    return None


def largest_buffer(call: Call) -> tuple[str, tuple[int, ...], int]:
    """The largest array the FFT path allocates: its name, shape and bytes.

    The input and output spectra are streamed in blocks (:func:`_blocks`), so
    the one whole-call array besides the output (which every algorithm
    returns) is the kernel spectrum; a block holds at least one sample of one
    group.
    """
    lengths = fft_lengths(call)
    complex_data = call.dtype.kind == "c"
    freq = lengths if complex_data else lengths[:-1] + (lengths[-1] // 2 + 1,)
    spectral = _spectral_dtype(call.dtype).itemsize
    n, cg, og = call.batch, call.cg, call.og
    candidates = [
        ("kernel spectrum", (call.c_out, cg) + freq, spectral),
        ("input spectrum of one block", (1, cg) + freq, spectral),
        ("stride-1 output of one block", (1, og) + lengths, call.dtype.itemsize),
    ]
    if not (cg == 1 or og == 1):  # the per-frequency GEMMs take the whole batch of a block
        candidates.append(("input spectrum of one block", (n, call.c_in) + freq, spectral))
    return max(((name, shape, math.prod(shape) * item) for name, shape, item in candidates), key=lambda t: t[2])


def _spectral_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.complex64 if dtype in (np.float32, np.complex64) else np.complex128)


def fft_lengths(call: Call) -> tuple[int, ...]:
    """Transform length per spatial dimension: the next fast length at or above the shortest that is exact.

    Per dimension, the transform reads the input cropped by the negative pads and past the last window
    (length ``X``) and the flipped, dilated kernel (extent ``E``); their linear convolution has
    ``L = X + E - 1`` entries and output ``t`` is entry ``a + t*s``, ``a = E - 1 - lo`` (``lo`` the left
    zero padding). A circular convolution of length ``n`` adds entries ``n`` apart, so it is exact on
    the outputs when no other entry lands on them: ``n >= L - a`` (the entries past the last output
    wrap below the first) and ``n > a + (O-1)*s`` (the first entries wrap above the last), that is
    ``n >= max(X + lo, E - lo + (O-1)*s)``, at most ``X + lo + hi``, the padded size. For a 'same'
    layer that is ``X + lo`` where the padded size is ``X + 2 lo``: RepLKNet's 31x31 kernel on 28x28
    maps takes transforms of 45x45 instead of 60x60. Input dilation (materialized zeros) keeps the
    padded size; ``n`` is at least ``E`` (the kernel is transformed at that length, not folded).
    """
    real = call.dtype.kind != "c"
    nd = call.nd
    return tuple(_fast_len(n, real and i == nd - 1) for i, n in enumerate(_least_lengths(call)))


def _least_lengths(call: Call) -> tuple[int, ...]:
    """The shortest exact transform length per spatial dimension (:func:`fft_lengths` before rounding up)."""
    if any(ld != 1 for ld in call.input_dilation):
        return tuple(max(1, s) for s in call.padded_size)
    least = []
    for length, (lo, _), extent, out, stride in zip(_source_sizes(call), call.padding, call.effective_kernel,
                                                     call.out_size, call.stride, strict=True):
        lo = max(0, lo)
        least.append(max(length + lo, extent - lo + (out - 1) * stride, extent, 1))
    return tuple(least)


def _source_sizes(call: Call) -> tuple[int, ...]:
    """Per spatial dimension, the input entries the transform reads: the input cropped by the negative pads and
    past the last window (a stride may leave the last entries unread), at least one."""
    sizes = []
    for size, (lo, hi), extent, out, stride in zip(call.size, call.padding, call.effective_kernel, call.out_size,
                                                    call.stride, strict=True):
        cropped = size + min(0, lo) + min(0, hi)
        sizes.append(max(1, min(cropped, (out - 1) * stride + extent - max(0, lo))))
    return tuple(sizes)


def _fast_len(n: int, real: bool) -> int:
    """The next length at or above ``n`` that scipy.fft transforms fast (``real``: for a real transform)."""
    return _scipy_fft().next_fast_len(n, real=real)


def conv_general(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    input_dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """Same contract as :func:`convlab.ops.algorithms.reference.conv_general`, for float and complex dtypes."""
    call = Call.of(x, weight, stride, padding, dilation, input_dilation, groups)
    check_applies("fft", unsupported(call))
    if call.is_empty or call.cg == 0:
        return empty_result(call)
    nd, groups, cg, og = call.nd, call.groups, call.cg, call.og
    dtype = call.dtype
    complex_data = dtype.kind == "c"
    lengths = fft_lengths(call)
    extent = call.effective_kernel
    if any(ld != 1 for ld in call.input_dilation):
        # Input dilation: the zeros and the padding materialized a block at a time (the transform pads the
        # end to its length), never for the whole call (a fresh copy of the whole input, dilated).
        def source(n0, n1, c0, c1):
            return padded_channels_first(x[n0:n1, c0:c1], call.padding, call.input_dilation, dtype=dtype)

        shift = (0,) * nd
    else:
        # Crops are slices; the zero padding is the transform's own (scipy pads the end to the
        # length), and a left pad ``lo`` becomes a circular shift of the output by ``lo``: the
        # length is one at which no wrapped-around entry lands on an output (fft_lengths).
        view = x[(slice(None), slice(None)) + tuple(slice(max(0, -lo), max(0, -lo) + length) for length, (lo, _) in
                                                    zip(_source_sizes(call), call.padding, strict=True))]

        def source(n0, n1, c0, c1):
            return view[n0:n1, c0:c1].astype(dtype, copy=False)

        shift = tuple(max(0, lo) for lo, _ in call.padding)
    spectral = _spectral_dtype(dtype)
    # Output t of dimension i is entry (t*s + E - 1 - shift) mod length of the circular convolution.
    starts = tuple(e - 1 - sh for e, sh in zip(extent, shift, strict=True))
    result = np.empty(call.out_shape, dtype=dtype)
    elementwise = cg == 1 or og == 1
    blocks = _blocks(call, lengths, spectral.itemsize, elementwise)
    # One filter per group and one block of samples (the weight gradient of a depthwise layer, whose kernel,
    # the output gradient, is as large as the input): each group's kernel spectrum serves once, so it is
    # transformed a chunk of channels at a time inside the loop and summed into the block's product, never
    # held whole (1024x1024 images: three whole-call spectra of the 8 samples were 104 MiB against torch's 51).
    streamed = og == 1 and cg > 1 and all(b[0] == (0, call.batch) for b in blocks)
    if not streamed:
        spectrum_w = _kernel_spectrum(weight, call.dilation, extent, lengths, complex_data, spectral)  # (C_out, Cg, *F)
        freq = spectrum_w.shape[2:]
        if not elementwise:
            ws = np.ascontiguousarray(spectrum_w.reshape(groups, og, cg, -1).transpose(3, 0, 2, 1))  # (F, G, Cg, og)
    for (n0, n1), (g0, g1) in blocks:
        nb, gb = n1 - n0, g1 - g0
        if streamed:
            product = _streamed_channel_sum(source(n0, n1, g0 * cg, g1 * cg), weight[g0:g1], call, extent, lengths,
                                            spectral)
        else:
            spectrum_x = _forward(source(n0, n1, g0 * cg, g1 * cg), lengths, complex_data)  # (nb, gb*Cg, *F)
            n_freq = math.prod(freq)
            spectrum_x = spectrum_x.reshape(nb, gb, cg, n_freq)  # (nb, gb, Cg, F)
            w_block = spectrum_w[g0 * og:g1 * og].reshape(gb, og, cg, n_freq)  # (gb, og, Cg, F)
            if cg == 1 and og == 1:
                spectrum_x *= w_block[:, 0]  # one input channel and one filter per group: in place
                product = spectrum_x
            elif cg == 1:
                # One input channel per group: multiply, broadcasting over the og filters of each group.
                product = spectrum_x * w_block[:, :, 0]  # (nb, gb, og, F)
            elif og == 1:
                # One filter per group (the weight gradient of a depthwise layer): multiply, sum the group's channels.
                spectrum_x *= w_block[:, 0]
                product = spectrum_x.sum(axis=2, keepdims=True)  # (nb, gb, 1, F)
            else:
                # Per frequency and group: (nb, Cg) @ (Cg, og), as one batched complex GEMM.
                xs = np.ascontiguousarray(spectrum_x.transpose(3, 1, 0, 2))  # (F, gb, nb, Cg)
                del spectrum_x
                product = np.matmul(xs, ws[:, g0:g1]).transpose(2, 1, 3, 0)  # (nb, gb, og, F)
            product = np.ascontiguousarray(product).reshape((nb, gb * og) + freq)  # (nb, gb*og, *F)
        result[n0:n1, g0 * og:g1 * og] = _inverse(product, lengths, starts, call.out_size, call.stride,
                                                  complex_data)
        del product
    return result


def _forward(block: np.ndarray, lengths: Sequence[int], complex_data: bool) -> np.ndarray:
    """The transform of ``block`` ``(nb, c, *X)`` zero-padded to ``lengths``, one axis at a time from the last.

    The same numbers as ``rfftn(block, s=lengths)`` (``fftn`` for complex data), pruned: each axis is
    transformed before the axes in front of it are padded, so the zero rows a padded array would have are
    never transformed along the last axis (RepLKNet's 28x28 maps in transforms of 45x45: 28 row transforms
    instead of 45, then 23 column transforms).
    """
    sfft = _scipy_fft()
    nd = len(lengths)
    out = block
    for i in reversed(range(nd)):
        transform = sfft.rfft if (i == nd - 1 and not complex_data) else sfft.fft
        out = transform(out, n=lengths[i], axis=2 + i, workers=workers(), overwrite_x=out is not block)
    return out


def _inverse(product: np.ndarray, lengths: Sequence[int], starts: Sequence[int], out_size: Sequence[int],
             stride: Sequence[int], complex_data: bool) -> np.ndarray:
    """The outputs ``starts + t*stride`` (mod length) of the inverse transform of ``product``, one axis at a time.

    The same numbers as ``irfftn(product, s=lengths)`` read at those entries, pruned: after each axis's
    inverse only its output entries are kept, so the following axes transform only those lines (28 of 45
    rows in RepLKNet's case; a strided call keeps every ``s``-th).
    """
    sfft = _scipy_fft()
    nd = len(lengths)
    out = product
    for i in range(nd):
        transform = sfft.irfft if (i == nd - 1 and not complex_data) else sfft.ifft
        out = transform(out, n=lengths[i], axis=2 + i, workers=workers(), overwrite_x=True)
        out = _entries(out, 2 + i, starts[i], out_size[i], stride[i], lengths[i])
    return out


def _streamed_channel_sum(source: np.ndarray, weight: np.ndarray, call: Call, extent: Sequence[int],
                          lengths: Sequence[int], spectral: np.dtype) -> np.ndarray:
    """``sum_c X[:, g, c] * W[g, c]`` over the channels of a block of groups (one filter per group: ``source``
    ``(nb, gb*Cg, *X)``, ``weight`` ``(gb, Cg, *K)``), the input's and the kernel's spectra transformed a chunk of
    channels at a time (about :data:`BLOCK_BYTES` each).

    Shape ``(nb, gb, *F)``: the product of one filter per group, ready for the inverse transform.
    """
    complex_data = call.dtype.kind == "c"
    nb, gb, cg = source.shape[0], weight.shape[0], weight.shape[1]
    freq = lengths[:-1] + ((lengths[-1] if complex_data else lengths[-1] // 2 + 1),)
    xg = source.reshape((nb, gb, cg) + source.shape[2:])  # (nb, gb, Cg, *X): a view
    per_channel = nb * gb * math.prod(freq) * spectral.itemsize
    chunk = max(1, min(cg, block_bytes(BLOCK_BYTES) // max(per_channel, 1)))
    total = np.zeros((nb, gb) + freq, dtype=spectral)  # (nb, gb, *F)
    for c0 in range(0, cg, chunk):
        c1 = min(cg, c0 + chunk)
        spectrum_x = _forward(xg[:, :, c0:c1].reshape((nb, gb * (c1 - c0)) + source.shape[2:]), lengths,
                              complex_data).reshape((nb, gb, c1 - c0) + freq)  # (nb, gb, cb, *F)
        spectrum_w = _kernel_spectrum(weight[:, c0:c1], call.dilation, extent, lengths, complex_data,
                                      spectral)  # (gb, cb, *F)
        spectrum_x *= spectrum_w
        total += spectrum_x.sum(axis=2)
    return total


def depthwise_weight_grad(x: np.ndarray, grad_output: np.ndarray, padding: Sequence[tuple[int, int]],
                          stride: Sequence[int], dilation: Sequence[int], kernel: Sequence[int]) -> np.ndarray:
    """The weight gradient of a depthwise layer (``groups == C_in``, ``C_out = m C_in``) by FFT, a block of
    channels at a time.

    ``gw[o, 0, *k] = sum_{n, p} grad_output[n, o, *p] * x_pad[n, o // m, *(p*stride + k*dilation)]`` is,
    per channel, the correlation of the padded input planes with the output gradient's, summed over the
    samples (:func:`convlab.ops._conv_common.weight_grad_raw` computes it for the whole layer at once:
    samples as channels, after a padded copy and transposed copies of both arrays). Here each block of
    channels (about :data:`BLOCK_BYTES` of spectra) is transposed on its own and handed to
    :func:`conv_general` with the layer's padding, which the transform reads as a shift (no padded copy):
    the extra memory is a block, not the whole layer twice over. Shape ``(C_out, 1, *K)``.
    """
    n, c_in = x.shape[:2]
    nd = x.ndim - 2
    c_out = grad_output.shape[1]
    multiplier = c_out // max(c_in, 1)
    dtype = np.result_type(x, grad_output)
    kernel = tuple(kernel)
    gw = np.zeros((c_out, 1) + kernel, dtype=dtype)
    if n == 0 or c_in == 0:
        return gw
    probe = Call((1, n) + x.shape[2:], (multiplier, n) + grad_output.shape[2:], tuple(dilation), tuple(padding),
                 tuple(stride), (1,) * nd, 1, dtype)
    lengths = fft_lengths(probe)
    freq = math.prod(lengths[:-1]) * (lengths[-1] // 2 + 1 if dtype.kind != "c" else lengths[-1])
    per_channel = n * (1 + 2 * multiplier) * freq * _spectral_dtype(dtype).itemsize
    channels = max(1, min(c_in, block_bytes(BLOCK_BYTES) // max(per_channel, 1)))
    for c0 in range(0, c_in, channels):
        c1 = min(c_in, c0 + channels)
        cb = c1 - c0
        # (N, cb, *S) -> (cb, N, *S) -> (1, cb*N, *S): the block's samples as the channels of its groups
        xt = np.ascontiguousarray(x[:, c0:c1].swapaxes(0, 1), dtype=dtype).reshape((1, cb * n) + x.shape[2:])
        # (N, cb*m, *O) -> (cb*m, N, *O): the output gradient as the kernel
        wt = np.ascontiguousarray(grad_output[:, c0 * multiplier:c1 * multiplier].swapaxes(0, 1), dtype=dtype)
        r = conv_general(xt, wt, tuple(dilation), tuple(padding), tuple(stride), (1,) * nd, cb)  # (1, cb*m, *K')
        gw[c0 * multiplier:c1 * multiplier, 0] = r[(0, slice(None)) + tuple(slice(0, k) for k in kernel)]
    return gw


#: Target size of the spectra of one block: the input and output spectra are streamed in blocks of
#: samples and groups about this large, so a call's extra memory is its output plus a few blocks.
BLOCK_BYTES = 2 * 2**20


def _blocks(call: Call, lengths: Sequence[int], spectral_item: int, elementwise: bool):
    """Blocks ``((n0, n1), (g0, g1))`` of samples and groups whose spectra take about :data:`BLOCK_BYTES`.

    Elementwise products (one input channel or one filter per group) split the
    groups, then the samples; the per-frequency GEMMs keep every group and split
    the samples only (their rows).
    """
    complex_data = call.dtype.kind == "c"
    n_freq = math.prod(lengths[:-1]) * (lengths[-1] if complex_data else lengths[-1] // 2 + 1)
    per_group = max(call.cg, call.og) * n_freq * spectral_item  # one sample, one group, input or output side
    target = block_bytes(BLOCK_BYTES)
    n, groups = call.batch, call.groups
    if elementwise:
        per_sample = per_group * groups
        if per_sample <= target:
            nb = max(1, min(n, target // per_sample))
            return [((n0, min(n, n0 + nb)), (0, groups)) for n0 in range(0, n, nb)]
        gb = max(1, min(groups, target // per_group))
        return [((n0, n0 + 1), (g0, min(groups, g0 + gb))) for n0 in range(n) for g0 in range(0, groups, gb)]
    per_sample = per_group * groups
    nb = max(1, min(n, target // max(per_sample, 1)))
    return [((n0, min(n, n0 + nb)), (0, groups)) for n0 in range(0, n, nb)]


def _entries(full: np.ndarray, axis: int, start: int, count: int, step: int, length: int) -> np.ndarray:
    """Entries ``start + t*step`` (mod length), ``t < count``, of ``full`` along ``axis``: a view where they
    do not wrap around."""
    if 0 <= start and start + (count - 1) * step < length:
        index = [slice(None)] * full.ndim
        index[axis] = slice(start, start + (count - 1) * step + 1, step)
        return full[tuple(index)]
    return np.take(full, (start + step * np.arange(count)) % length, axis=axis)


def _kernel_spectrum(weight: np.ndarray, dilation: Sequence[int], extent: Sequence[int], lengths: Sequence[int],
                     complex_data: bool, spectral: np.dtype) -> np.ndarray:
    """The transform of the flipped, dilated kernel ``v[E-1-u*d] = w[u]``, zero-padded to ``lengths``.

    A pruned multidimensional FFT: one axis at a time from the last, each 1-D
    transform zero-padded to its length, so the axes not yet transformed keep
    their small kernel extent instead of the transform length. For a 31x31
    kernel on a 1024x1024 image that is ``31`` row transforms plus the column
    transforms, about half of a full ``rfftn`` of the padded kernel (a third
    of the work of the whole convolution).
    """
    nd = len(extent)
    flipped = np.zeros(weight.shape[:2] + tuple(extent), dtype=weight.dtype)
    flipped[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in dilation)] = weight
    spectrum = flipped[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]
    for i in reversed(range(nd)):
        transform = _scipy_fft().rfft if (i == nd - 1 and not complex_data) else _scipy_fft().fft
        spectrum = transform(spectrum, n=lengths[i], axis=2 + i, workers=workers())
    return spectrum.astype(spectral, copy=False)


#: Overhead of one plane in a batched ``scipy.fft`` transform, beyond its ``n log n`` flops: it decides
#: small maps (measured: ``rfft2`` of 7680 9x9 planes takes 1.44 ms where the flops say 0.82 ms; the
#: whole FFT algorithm on the MobileNetV2 3x3 depthwise layer at 7x7, 960 channels, batch 8, measured
#: 2.4-3.0 ms against 2.3 ms estimated without this term, 2.7 ms with it).
FFT_PLANE_SECONDS = 25e-9


def _fft_seconds(points: int, planes: float, complex_data: bool) -> float:
    per = (5.0 if complex_data else 2.5) * points * math.log2(max(points, 2))
    # Large planes split over the workers (measured about twice the rate from 2**16 points up, on two
    # workers); the rate is at the workers in effect (_costs.thread_factor).
    rate = MACHINE.fft_flops * thread_factor(fft_threads()) * (2 if points >= 2**16 else 1)
    return planes * (per / rate + FFT_PLANE_SECONDS)


def estimate(call: Call) -> Estimate:
    """The transforms, the spectral product and the padded copy.

    ``2.5 n log2(n)`` flops per real transform of ``n`` points (``5 n log2 n``
    complex), plus :data:`FFT_PLANE_SECONDS` per plane, for the ``N C_in``
    input planes, ``C_out C_in/g`` kernel planes (pruned: a fraction of a full
    transform) and ``N C_out`` output planes, at twice the rate for planes of
    2^16 points and more (the workers share a plane); the spectral product as
    a complex GEMM (``8 N C_in/g C_out`` flops per frequency) or, with one
    input channel or one filter per group, a streamed elementwise product (and the sum over the group's
    channels). A stride is
    computed at stride 1: all of it is paid.
    """
    complex_data = call.dtype.kind == "c"
    single = call.dtype in (np.float32, np.complex64)
    spectral_item = 8 if single else 16
    lengths = fft_lengths(call)
    points = math.prod(lengths)
    freq = points if complex_data else points // lengths[-1] * (lengths[-1] // 2 + 1)
    n, c_in, c_out, cg = call.batch, call.c_in, call.c_out, call.cg
    # The kernel's transform is pruned: the axes not yet transformed keep the kernel's extent.
    extent = call.effective_kernel
    pruned = sum(math.prod(e / length for e, length in zip(extent[:i], lengths[:i], strict=True))
                 for i in range(call.nd)) / call.nd
    transforms = (_fft_seconds(points, n * c_in, complex_data)
                  + pruned * _fft_seconds(points, c_out * cg, complex_data)
                  + _fft_seconds(points, n * c_out, complex_data))
    if cg == 1:
        product = stream(3 * n * c_out * freq * spectral_item)
        kind = "elementwise product"
    elif call.og == 1:
        # One filter per group (a depthwise layer's weight gradient): the input spectrum multiplied in place
        # (read, written) by the kernel's (read), then summed over the group's channels.
        product = stream((3 * n * c_in + n * c_out) * freq * spectral_item)
        kind = "elementwise product and channel sum"
    else:
        rate = gemm_rate(np.dtype(np.complex64 if single else np.complex128))
        gemm_seconds = 8 * n * cg * c_out * freq / rate
        shuffle = stream(2 * (n * c_in + c_out * cg + 2 * n * c_out) * freq * spectral_item)
        calls = freq * call.groups * MACHINE.call_seconds / 8  # small per-frequency GEMMs
        product = gemm_seconds + shuffle + calls
        kind = "per-frequency GEMMs"
    padded = stream(2 * n * c_in * points * call.dtype.itemsize)
    seconds = transforms + product + padded
    return Estimate(seconds, f"transforms of {lengths} {fmt(transforms)} + {kind} {fmt(product)}"
                             + (f" (stride {call.stride}: computed at stride 1)" if any(s > 1 for s in call.stride)
                                else ""))


ALGORITHM = Algorithm(
    name="fft",
    summary="FFT convolution (scipy.fft): floats and complex",
    primitive=conv_general,
    unsupported=unsupported,
    estimate=estimate,
    fixed_seconds=80e-6,
    exact_integers=False,
    nonfinite_exact=False,  # a NaN or inf anywhere in a plane makes every output of the plane NaN
)
