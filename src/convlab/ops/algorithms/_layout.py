"""What the fast algorithms share: a description of one primitive call, padded buffers, refusals.

Every algorithm of :mod:`convlab.ops.algorithms` computes the same primitive,
``conv_general(x, weight, stride, padding, dilation, input_dilation, groups)``.
:class:`Call` holds those arguments' shapes and derived sizes, so that an
algorithm can say whether it applies (``unsupported(call)`` returns the reason
it does not, or None) and the cost model can estimate it, before any array is
touched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ...shapes import output_length
from .. import _checks

__all__ = [
    "Call",
    "as_view",
    "block_bytes",
    "budget_bytes",
    "check_applies",
    "dilated_length",
    "empty_result",
    "padded_channels_first",
    "padded_channels_last",
]

Pairs = tuple[tuple[int, int], ...]


def dilated_length(size: int, input_dilation: int) -> int:
    """Length after inserting ``input_dilation - 1`` zeros between elements: ``(S - 1)*ld + 1`` (0 stays 0)."""
    return (size - 1) * input_dilation + 1 if size > 0 else 0


class Call(NamedTuple):
    """The shapes and hyperparameters of one call of the primitive (no arrays).

    ``x_shape`` is ``(N, C_in, *S)``, ``w_shape`` is ``(C_out, C_in/groups, *K)``;
    ``padding`` holds explicit ``(lo, hi)`` pairs (negative values crop).
    """

    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Pairs
    dilation: tuple[int, ...]
    input_dilation: tuple[int, ...]
    groups: int
    dtype: np.dtype

    @classmethod
    def of(
        cls,
        x: np.ndarray | Sequence[int],
        weight: np.ndarray | Sequence[int],
        stride: Sequence[int],
        padding: Sequence[tuple[int, int]],
        dilation: Sequence[int],
        input_dilation: Sequence[int],
        groups: int,
        dtype: np.dtype | type | str | None = None,
    ) -> Call:
        """Describe a call from its arrays (or their shapes and a ``dtype``)."""
        if isinstance(x, np.ndarray) and isinstance(weight, np.ndarray):
            dt = np.result_type(x, weight)
            x_shape, w_shape = x.shape, weight.shape
        else:
            x_shape, w_shape = tuple(x), tuple(weight)
            dt = np.dtype(dtype if dtype is not None else np.float64)
        nd = len(w_shape) - 2
        for name, value in (("stride", stride), ("padding", padding), ("dilation", dilation),
                            ("input_dilation", input_dilation)):
            if len(value) != nd:
                raise ValueError(f"conv_general: `{name}` has {len(value)} entries for {nd} spatial dimensions")
        return cls(
            tuple(int(s) for s in x_shape),
            tuple(int(s) for s in w_shape),
            tuple(int(s) for s in stride),
            tuple((int(lo), int(hi)) for lo, hi in padding),
            tuple(int(d) for d in dilation),
            tuple(int(d) for d in input_dilation),
            int(groups),
            np.dtype(dt),
        )

    # ------------------------------------------------------------------ derived sizes

    @property
    def nd(self) -> int:
        return len(self.w_shape) - 2

    @property
    def batch(self) -> int:
        return self.x_shape[0]

    @property
    def c_in(self) -> int:
        return self.x_shape[1]

    @property
    def c_out(self) -> int:
        return self.w_shape[0]

    @property
    def cg(self) -> int:
        """Input channels per group."""
        return self.w_shape[1]

    @property
    def og(self) -> int:
        """Output channels per group."""
        return self.c_out // self.groups

    @property
    def kernel(self) -> tuple[int, ...]:
        return self.w_shape[2:]

    @property
    def size(self) -> tuple[int, ...]:
        return self.x_shape[2:]

    @property
    def padded_size(self) -> tuple[int, ...]:
        """Spatial size after input dilation and padding."""
        return tuple(dilated_length(s, ld) + lo + hi
                     for s, ld, (lo, hi) in zip(self.size, self.input_dilation, self.padding, strict=True))

    @property
    def effective_kernel(self) -> tuple[int, ...]:
        """Kernel extent with dilation: ``d*(k-1) + 1``."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation, strict=True))

    @property
    def out_size(self) -> tuple[int, ...]:
        """``floor((S_padded - d*(k-1) - 1) / s) + 1`` per dimension, 0 when the kernel does not fit."""
        return tuple(output_length(p, k, s, d) for p, k, s, d in
                     zip(self.padded_size, self.kernel, self.stride, self.dilation, strict=True))

    @property
    def positions(self) -> int:
        return math.prod(self.out_size)

    @property
    def taps(self) -> int:
        return math.prod(self.kernel)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the direct sum (taps that land on inserted zeros included)."""
        return self.batch * self.c_out * self.positions * self.cg * self.taps

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.batch, self.c_out) + self.out_size

    @property
    def is_empty(self) -> bool:
        return self.batch == 0 or self.c_out == 0 or self.positions == 0

    def describe(self) -> str:
        """A one-line summary, e.g. ``x (8, 64, 56, 56) * w (64, 64, 3, 3), stride (1, 1), ...``."""
        parts = [f"x {self.x_shape} * w {self.w_shape}"]
        if any(s != 1 for s in self.stride):
            parts.append(f"stride {self.stride}")
        if any(p != (0, 0) for p in self.padding):
            parts.append(f"padding {self.padding}")
        if any(d != 1 for d in self.dilation):
            parts.append(f"dilation {self.dilation}")
        if any(d != 1 for d in self.input_dilation):
            parts.append(f"input_dilation {self.input_dilation}")
        if self.groups != 1:
            parts.append(f"groups {self.groups}")
        parts.append(f"{self.dtype} -> output {self.out_shape}")
        return ", ".join(parts)


def budget_bytes() -> int:
    """The memory budget of one buffer (:func:`convlab.ops.get_memory_budget`), read at call time."""
    return _checks.get_memory_budget()


def block_bytes(target: int) -> int:
    """A working block of about ``target`` bytes, but at most a quarter of the memory budget."""
    return max(1, min(target, budget_bytes() // 4))


def as_view(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` reshaped without a copy; raises if impossible, so ``out=`` and ``copyto`` never write to a copy."""
    v = a.view()
    v.shape = shape
    return v


def check_applies(name: str, reason: str | None) -> None:
    """Raise ``ValueError`` naming the algorithm and why it does not apply (no-op when ``reason`` is None)."""
    if reason is not None:
        raise ValueError(f"conv_general: algorithm {name!r} does not apply to this convolution: {reason}")


def empty_result(call: Call) -> np.ndarray:
    """The all-zero output of a call with no samples, no output channels or no output positions."""
    return np.zeros(call.out_shape, dtype=call.dtype)


def _placement(size: int, ld: int, lo: int, hi: int) -> tuple[slice, slice]:
    """Source slice of ``x`` and destination slice in the padded buffer along one dimension.

    Element ``i`` of the input sits at ``i*ld`` of the dilated signal and at
    ``i*ld + lo`` of the padded one; a negative ``lo``/``hi`` crops the dilated
    signal, so only the ``i`` with ``0 <= i*ld + lo < D + lo + hi`` are kept.
    """
    length = dilated_length(size, ld)
    first_q, stop_q = max(0, -lo), min(length, length + hi)  # kept range of the dilated signal
    i0 = -(-first_q // ld)
    i1 = -(-stop_q // ld) if stop_q > 0 else 0
    i1 = min(i1, size)
    if i1 <= i0:
        return slice(0, 0), slice(0, 0)
    return slice(i0, i1), slice(i0 * ld + lo, (i1 - 1) * ld + lo + 1, ld)


def _padded(x: np.ndarray, padding: Sequence[tuple[int, int]], input_dilation: Sequence[int],
            extra: Sequence[int] | None, channels_last: bool, dtype: np.dtype | None) -> np.ndarray:
    nd = x.ndim - 2
    extra = tuple(extra) if extra is not None else (0,) * nd
    spatial = tuple(dilated_length(s, ld) + lo + hi + e for s, ld, (lo, hi), e in
                    zip(x.shape[2:], input_dilation, padding, extra, strict=True))
    if any(s < 0 for s in spatial):
        raise ValueError(f"internal: padding {tuple(padding)} crops more than the input {x.shape[2:]}")
    n, c = x.shape[:2]
    dtype = x.dtype if dtype is None else dtype
    if channels_last:
        buf = np.zeros((n,) + spatial + (c,), dtype=dtype)
    else:
        buf = np.zeros((n, c) + spatial, dtype=dtype)
    places = [_placement(s, ld, lo, hi) for s, ld, (lo, hi) in
              zip(x.shape[2:], input_dilation, padding, strict=True)]
    if n == 0 or c == 0 or any(src.stop <= src.start for src, _ in places):
        return buf
    src = x[(slice(None), slice(None)) + tuple(s for s, _ in places)]
    if channels_last:
        # (N, *S_kept, C): the kept input elements, channels last
        buf[(slice(None),) + tuple(d for _, d in places) + (slice(None),)] = np.moveaxis(src, 1, -1)
    else:
        buf[(slice(None), slice(None)) + tuple(d for _, d in places)] = src
    return buf


def padded_channels_last(x: np.ndarray, padding: Sequence[tuple[int, int]], input_dilation: Sequence[int],
                         extra: Sequence[int] | None = None, dtype: np.dtype | None = None) -> np.ndarray:
    """``x`` ``(N, C, *S)`` dilated, padded (negative pads crop) and moved to ``(N, *S_padded, C)`` in one copy.

    ``extra`` adds zeros at the high end of each spatial dimension (room for
    whole Winograd tiles, say). The channel axis is last and contiguous, so the
    window gathers that follow copy runs of ``C`` elements.
    """
    return _padded(x, padding, input_dilation, extra, True, dtype)


def padded_channels_first(x: np.ndarray, padding: Sequence[tuple[int, int]], input_dilation: Sequence[int],
                          extra: Sequence[int] | None = None, dtype: np.dtype | None = None) -> np.ndarray:
    """Like :func:`padded_channels_last` but keeping the ``(N, C, *S_padded)`` layout."""
    return _padded(x, padding, input_dilation, extra, False, dtype)
