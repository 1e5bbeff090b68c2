"""The one helper that compares a convlab op with PyTorch: shape, dtype, values and every gradient.

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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

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
