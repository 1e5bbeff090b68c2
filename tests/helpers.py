"""Shared test helpers: the one comparison with PyTorch, and the one Hypothesis strategy of convolutions.

``check_against_torch`` compares a convlab op with PyTorch: shape, dtype,
values and every gradient.

Usage::

    check_against_torch(
        forward=lambda input, weight, bias: F.conv2d(input, weight, bias, stride=2),
        vjp=lambda grad_output, input, weight, bias: F.conv_vjp(grad_output, input, weight, bias, stride=2),
        torch_forward=lambda input, weight, bias: torch.nn.functional.conv2d(input, weight, bias, stride=2),
        inputs={"input": x, "weight": w, "bias": b},
    )

``vjp`` returns a mapping or a NamedTuple of gradients keyed like ``inputs``
(None for an input that has no gradient). Inputs that are None are passed as
None to both sides. Integer inputs are compared exactly and have no gradients.

``conv_cases()`` draws random convolution configurations (:class:`ConvCase`):
1-3 spatial dims, groups (depthwise with a channel multiplier included),
every padding form and mode, stride, dilation, bias and batch; the explicit
``(lo, hi)`` pairs each padding form means are derived here, by hand and
independently of ``convlab.shapes``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

torch = None  # imported lazily so modules without torch tests still import this file


def _torch():
    global torch
    if torch is None:
        import torch as _t

        torch = _t
    return torch


# Per-dtype tolerances, relative to the magnitude of the expected array.
TOLERANCES = {
    np.dtype(np.float64): 1e-10,
    np.dtype(np.complex128): 1e-10,
    np.dtype(np.float32): 2e-5,
    np.dtype(np.complex64): 2e-5,
    np.dtype(np.float16): 2e-3,
}


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str = "output") -> None:
    """Same shape, same dtype, and values equal to the dtype's tolerance (exact for integers)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != expected {expected.dtype}"
    if actual.dtype.kind in "iub":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    tol = TOLERANCES[actual.dtype]
    finite = np.isfinite(expected)
    scale = max(1.0, float(np.abs(expected[finite]).max())) if finite.any() else 1.0
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, equal_nan=True, err_msg=what)


def _as_mapping(grads) -> Mapping[str, np.ndarray | None]:
    if hasattr(grads, "_asdict"):
        return grads._asdict()
    return dict(grads)


def check_against_torch(
    forward: Callable[..., np.ndarray],
    vjp: Callable[..., object] | None,
    torch_forward: Callable[..., object],
    inputs: Mapping[str, np.ndarray | None],
    *,
    seed: int = 0,
) -> np.ndarray:
    """Compare ``forward``/``vjp`` with ``torch_forward`` (autograd) on ``inputs``; return convlab's output.

    When the forward functions return tuples (e.g. values and indices), the
    first element is the differentiable output and the rest are compared exactly.
    """
    t = _torch()
    tensors = {}
    for name, value in inputs.items():
        if value is None:
            tensors[name] = None
            continue
        tensor = t.from_numpy(np.array(value, copy=True))
        if tensor.is_floating_point() or tensor.is_complex():
            tensor.requires_grad_(True)
        tensors[name] = tensor
    ours = forward(**inputs)
    theirs = torch_forward(**tensors)
    ours_rest, theirs_rest = (), ()
    if isinstance(theirs, tuple):
        ours, *ours_rest = ours
        theirs, *theirs_rest = theirs
    assert_close(ours, theirs.detach().numpy(), "output")
    for i, (a, b) in enumerate(zip(ours_rest, theirs_rest, strict=True)):
        assert_close(a, b.detach().numpy(), f"extra output {i}")
    if vjp is None or not theirs.requires_grad:
        return ours
    rng = np.random.default_rng(seed)
    grad_output = rng.standard_normal(ours.shape)
    if ours.dtype.kind == "c":
        grad_output = grad_output + 1j * rng.standard_normal(ours.shape)
    grad_output = grad_output.astype(ours.dtype)
    # For complex outputs torch's backward(v) returns J^H v, while a vjp is J^T g = conj(J^H conj(g)):
    # feed torch conj(g) here and conjugate its gradient below.
    theirs.backward(t.from_numpy(np.conj(grad_output) if grad_output.dtype.kind == "c" else grad_output.copy()))
    grads = _as_mapping(vjp(grad_output, **inputs))
    for name, tensor in tensors.items():
        if tensor is None or not tensor.requires_grad:
            continue
        assert name in grads and grads[name] is not None, f"vjp gave no gradient for {name!r}"
        expected = tensor.grad.numpy() if tensor.grad is not None else np.zeros(tensor.shape, tensor.numpy().dtype)
        if expected.dtype.kind == "c":
            # torch's gradient of a complex input is the conjugate Wirtinger one: conj of the
            # plain vjp for holomorphic ops like convolution.
            expected = np.conj(expected)
        assert_close(grads[name], expected, f"gradient of {name}")
    return ours


def numerical_vjp(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, grad_output: np.ndarray,
                  eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of ``<f(x), grad_output>`` with respect to ``x`` (float64)."""
    x = np.array(x, dtype=np.float64, copy=True)
    out = np.zeros_like(x)
    flat, gflat = x.reshape(-1), out.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + eps
        plus = np.vdot(grad_output, f(x))
        flat[i] = keep - eps
        minus = np.vdot(grad_output, f(x))
        flat[i] = keep
        gflat[i] = (plus - minus) / (2 * eps)
    return out


# --------------------------------------------------------------------------- random convolution configurations


MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")
PADDING_FORMS = ("int", "tuple", "pairs", "valid", "same", "same_tf", "full", "causal")


def tf_same_pairs(size, kernel, stride, dilation):
    """TensorFlow 'SAME': O = ceil(I/s), total = max((O-1)s + d(k-1) + 1 - I, 0), lo = total // 2."""
    pairs = []
    for i, k, s, d in zip(size, kernel, stride, dilation, strict=True):
        out = -(-i // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - i, 0)
        pairs.append((total // 2, total - total // 2))
    return tuple(pairs)


def int_or_tuple(draw, values):
    """``values``, or its single entry as an int when all entries agree (half the time): both forms users type."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return tuple(values)


def _per_dim(value, nd):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * nd


@dataclass(frozen=True)
class ConvCase:
    nd: int
    batch: int | None  # None: unbatched (C, *S); tests that choose their own batch use arrays(batch=...)
    c_in: int
    c_out: int
    groups: int
    kernel: tuple
    size: tuple
    stride: object  # the argument given to convlab: a tuple (an int too with loose_arguments)
    dilation: object
    padding: object  # the argument given to convlab
    mode: str
    pairs: tuple  # the explicit (lo, hi) pairs the padding means, derived here
    torch_padding: object  # torch's own `padding=` argument, or None where torch must pad by hand (F.pad)
    bias: bool
    wrapper: bool  # use conv1d/2d/3d rather than the N-d conv
    seed: int

    @property
    def out_size(self):
        stride, dilation = _per_dim(self.stride, self.nd), _per_dim(self.dilation, self.nd)
        return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1
                     for n, (lo, hi), d, k, s in zip(self.size, self.pairs, dilation, self.kernel, stride, strict=True))

    @property
    def slack(self):
        """Trailing padded elements no window reaches: the output_padding of the adjoint transposed conv."""
        stride, dilation = _per_dim(self.stride, self.nd), _per_dim(self.dilation, self.nd)
        return tuple((n + lo + hi - d * (k - 1) - 1) % s
                     for n, (lo, hi), d, k, s in zip(self.size, self.pairs, dilation, self.kernel, stride, strict=True))

    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups,
                    padding_mode=self.mode)

    def arrays(self, dtype=np.float64, batch=1):
        """Input ``(batch, C_in, *S)``, weight and bias (None without bias), drawn from the case's seed."""
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((batch, self.c_in, *self.size)).astype(dtype)
        w = rng.standard_normal((self.c_out, self.c_in // self.groups, *self.kernel)).astype(dtype)
        b = rng.standard_normal(self.c_out).astype(dtype) if self.bias else None
        return x, w, b


@st.composite
def conv_cases(draw, dims=(1, 2, 3), modes=MODES, forms=PADDING_FORMS, loose_arguments=False):
    """Random convolution configurations; ``loose_arguments`` also gives stride and dilation as a single int
    (where all entries agree) and ``(lo, hi)`` pairs as lists, the looser forms a user may type."""
    nd = draw(st.sampled_from(dims))
    kmax = 3 if nd < 3 else 2
    if draw(st.booleans()):  # depthwise with a channel multiplier
        c_in = draw(st.integers(1, 3))
        groups, c_out = c_in, c_in * draw(st.integers(1, 2))
    else:
        groups = draw(st.integers(1, 3))
        c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    form = draw(st.sampled_from(forms))
    mode = draw(st.sampled_from(modes))
    kernel = tuple(draw(st.integers(1, kmax)) for _ in range(nd))
    stride = (1,) * nd if form == "same" else tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    spans = tuple(d * (k - 1) for k, d in zip(kernel, dilation, strict=True))
    if form == "int":
        p = draw(st.integers(0, 2))
        padding, pairs, torch_padding = p, ((p, p),) * nd, p
    elif form == "tuple":
        ps = tuple(draw(st.integers(0, 2)) for _ in range(nd))
        padding, pairs, torch_padding = ps, tuple((p, p) for p in ps), ps
    elif form == "pairs":
        pairs = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(nd))
        padding = [list(p) for p in pairs] if loose_arguments and draw(st.booleans()) else pairs
        torch_padding = None
    elif form == "valid":
        padding, pairs, torch_padding = "valid", ((0, 0),) * nd, "valid"
    elif form == "same":  # PyTorch: total d(k-1), the odd element on the right
        padding, pairs, torch_padding = "same", tuple((t // 2, t - t // 2) for t in spans), "same"
    elif form == "full":
        padding, pairs, torch_padding = "full", tuple((t, t) for t in spans), spans
    elif form == "causal":
        padding, pairs, torch_padding = "causal", tuple((t, 0) for t in spans), None
    else:
        padding, pairs, torch_padding = "same_tf", None, None
    if mode != "zeros":
        torch_padding = None  # pad with F.pad in the mode, then a valid convolution
    size = []
    for i in range(nd):
        extent = spans[i] + 1
        if pairs is None:  # same_tf pads at most d(k-1) in all; a non-zero mode needs that much input
            need = 1 if mode == "zeros" else extent
        else:
            lo, hi = pairs[i]
            need = max(1, extent - lo - hi)
            if mode == "reflect":
                need = max(need, lo + 1, hi + 1)
            elif mode in ("circular", "symmetric"):
                need = max(need, lo, hi)
        size.append(draw(st.integers(need, need + (3 if nd < 3 else 2))))
    size = tuple(size)
    if pairs is None:
        pairs = tf_same_pairs(size, kernel, stride, dilation)
    return ConvCase(
        nd=nd,
        batch=draw(st.sampled_from([None, 1, 2])),
        c_in=c_in,
        c_out=c_out,
        groups=groups,
        kernel=kernel,
        size=size,
        stride=int_or_tuple(draw, stride) if loose_arguments else stride,
        dilation=int_or_tuple(draw, dilation) if loose_arguments else dilation,
        padding=padding,
        mode=mode,
        pairs=pairs,
        torch_padding=torch_padding,
        bias=draw(st.booleans()),
        wrapper=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )
