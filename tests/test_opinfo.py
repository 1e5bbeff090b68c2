"""PyTorch's own test samples through convlab.functional: forward values and every vjp against torch.

PyTorch's OpInfo database (``torch.testing._internal.common_methods_invocations.op_db``)
lists, for each operator, the sample inputs torch's developers have collected
over the years (``op.sample_inputs``): unbatched inputs, empty batches, ``'same'``
padding, one-element tuples, ceil mode windows that hang over the padding,
negative pads, duplicate unpooling indices ... This module runs every sample of
every operator convlab mirrors (:data:`MIRRORS`) through ``convlab.functional``,
in float64 and float32, and compares

* forward: convlab's output (and indices, where the op returns them) with torch's
  (shape, dtype and values, :func:`tests.helpers.assert_close`);
* backward: the gradients from convlab's vjp (``conv_vjp``, ``conv_transpose_vjp``,
  ``max_pool_vjp`` ...) with torch's autograd for a random ``grad_output``, for
  every tensor argument torch differentiates (input, weight, bias; for the losses
  ``cross_entropy``, ``nll_loss``, ``mse_loss`` also a floating-point target).

One test per operator, dtype and direction iterates over its samples and reports
every sample that differs at once. Samples where convlab deliberately differs
from torch are named in :data:`EXPECTED_DIFFERENCES` (which operator, which
direction, which samples, the reason, and what convlab gives instead); each
named sample must still differ from torch and equal that alternative, and each
entry must name some sample, so the list cannot rot. fold has no OpInfo entry:
it runs on unfold's samples (the columns unfold makes, folded back).
:func:`test_every_related_opinfo_is_mirrored_or_excused` fails when torch adds an
operator of the family that is neither mirrored nor excused in :data:`NOT_MIRRORED`.

The database is imported once per process (a few seconds) on first use; the test
ids are a fixed list, identical on every pytest-xdist worker. The module skips
only where torch, expecttest or torch's internal test module is absent.

``python -m tests.test_opinfo`` prints the counts: samples per operator, forward
and backward, passes and documented differences.
"""

from __future__ import annotations

import functools
import inspect
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the OpInfo tests compare with PyTorch: pip install 'convlab[torch]'")
pytest.importorskip("expecttest", reason="torch's OpInfo database imports expecttest: pip install 'convlab[dev]'")

import convlab.functional as F  # noqa: E402
from tests.helpers import assert_close  # noqa: E402

OPINFO_MODULE = "torch.testing._internal.common_methods_invocations"

# torch's own warning about a padded copy for padding='same' with even kernels (a conv2d sample): not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")


@functools.cache
def op_db() -> dict[tuple[str, str], object]:
    """torch's OpInfo entries by ``(name, variant_test_name)``, imported once per process."""
    module = pytest.importorskip(OPINFO_MODULE, reason="torch's internal OpInfo module is not importable")
    return {(op.name, op.variant_test_name): op for op in module.op_db}


# --------------------------------------------------------------------------- what convlab mirrors


@dataclass(frozen=True)
class Mirror:
    """One OpInfo entry and the convlab function and vjp that mirror it.

    ``forward`` has torch's argument names, so a sample's arguments bind to it;
    ``vjp`` takes ``grad_output`` and the same arguments (plus ``ndim`` when
    ``ndim`` is set) and returns the gradients by argument name.
    """

    opinfo: tuple[str, str]
    forward: Callable
    vjp: Callable
    ndim: int | None = None
    derive: Callable | None = None  # (op, samples) -> (torch function, samples): an op built on another's samples


def _mirrors() -> dict[str, Mirror]:
    table = {}
    for nd in (1, 2, 3):
        table[f"conv{nd}d"] = Mirror((f"nn.functional.conv{nd}d", ""), getattr(F, f"conv{nd}d"), F.conv_vjp, nd)
        table[f"conv_transpose{nd}d"] = Mirror((f"nn.functional.conv_transpose{nd}d", ""),
                                               getattr(F, f"conv_transpose{nd}d"), F.conv_transpose_vjp, nd)
        for kind in ("max_pool", "avg_pool", "adaptive_max_pool", "adaptive_avg_pool"):
            table[f"{kind}{nd}d"] = Mirror((f"nn.functional.{kind}{nd}d", ""), getattr(F, f"{kind}{nd}d"),
                                           getattr(F, f"{kind}_vjp"), nd)
        for variant in ("", "grad"):
            table[f"max_unpool{nd}d" + (f"_{variant}" if variant else "")] = Mirror(
                (f"nn.functional.max_unpool{nd}d", variant), getattr(F, f"max_unpool{nd}d"), F.max_unpool_vjp, nd)
    table["unfold"] = Mirror(("nn.functional.unfold", ""), F.unfold, F.unfold_vjp)
    for mode in ("constant", "reflect", "replicate", "replicate_negative", "circular"):
        table[f"pad_{mode}"] = Mirror(("nn.functional.pad", mode), F.pad, F.pad_vjp)
    table["constant_pad_nd"] = Mirror(("constant_pad_nd", ""), _constant_pad_nd, _constant_pad_nd_vjp)
    table["channel_shuffle"] = Mirror(("nn.functional.channel_shuffle", ""), F.channel_shuffle, F.channel_shuffle_vjp)
    # torch has no OpInfo for fold: unfold's samples give it its inputs (the columns unfold makes).
    table["fold_from_unfold_samples"] = Mirror(("nn.functional.unfold", ""), F.fold, F.fold_vjp,
                                               derive=_fold_samples)
    # the losses of training and the softmax under them (convlab.ops.loss)
    for loss in ("cross_entropy", "nll_loss", "mse_loss"):
        table[loss] = Mirror((f"nn.functional.{loss}", ""), getattr(F, loss), getattr(F, f"{loss}_vjp"))
    for name in ("log_softmax", "softmax"):
        table[name] = Mirror((name, ""), getattr(F, name), getattr(F, f"{name}_vjp"))
    return table


def _constant_pad_nd(input, pad, value=0.0):
    """``torch.constant_pad_nd(input, pad, value)``: ``pad`` in constant mode."""
    return F.pad(input, pad, "constant", value)


def _constant_pad_nd_vjp(grad_output, input, pad, value=0.0):
    return F.pad_vjp(grad_output, input, pad, "constant", value)


def _fold_samples(op, found):
    """fold's samples: for each unfold sample, its columns folded back to the sample's spatial size."""
    unfold = torch.nn.functional.unfold
    derived = []
    for sample in found:
        args = inspect.signature(unfold).bind(sample.input, *sample.args, **sample.kwargs).arguments
        columns = unfold(**args).detach().requires_grad_(True)
        settings = {k: args[k] for k in ("kernel_size", "dilation", "padding", "stride") if k in args}
        derived.append(type(sample)(columns, args=(tuple(sample.input.shape[-2:]),), kwargs=settings))
    return torch.nn.functional.fold, derived


MIRRORS = _mirrors()

#: OpInfo entries of the family (names matching :data:`FAMILY`) that convlab does not mirror, and why.
NOT_MIRRORED = {
    ("nn.functional.fractional_max_pool2d", ""): "fractional max pooling (random windows) is not in convlab",
    ("nn.functional.fractional_max_pool3d", ""): "fractional max pooling (random windows) is not in convlab",
    ("nn.functional.pixel_shuffle", ""): "pixel shuffle is not in convlab.functional",
    ("nn.functional.pixel_unshuffle", ""): "pixel unshuffle is not in convlab.functional",
    ("max_pool2d_with_indices_backward", ""): "an aten backward kernel; max_pool2d's backward test covers it",
    ("unfold", ""): "Tensor.unfold (a strided view of one dimension), not nn.functional.unfold",
    ("unfold_copy", ""): "Tensor.unfold's copy, not nn.functional.unfold",
    ("softmax", "with_dtype"): "the dtype argument (a cast before the op) is not in convlab.functional.softmax",
    ("log_softmax", "with_dtype"): "the dtype argument (a cast before the op) is not in convlab.functional.log_softmax",
    ("_softmax_backward_data", ""): "an aten backward kernel; softmax's backward test covers it",
    ("torch.ops.aten._safe_softmax.default", ""): "an aten internal (softmax that gives 0 for fully masked rows)",
    ("masked.softmax", ""): "masked reductions (torch.masked) are not in convlab",
    ("masked.log_softmax", ""): "masked reductions (torch.masked) are not in convlab",
    ("nn.functional.linear_cross_entropy", ""): "the fused linear + cross entropy is not in convlab",
    ("nn.functional.linear_cross_entropy", "chunked"): "the fused linear + cross entropy is not in convlab",
    ("nn.functional.linear_cross_entropy", "chunked_none"): "the fused linear + cross entropy is not in convlab",
    ("nn.functional.binary_cross_entropy", ""): "binary cross entropy is not in convlab",
    ("nn.functional.binary_cross_entropy_with_logits", ""): "binary cross entropy is not in convlab",
    ("nn.functional.gaussian_nll_loss", ""): "the Gaussian NLL loss is not in convlab",
    ("nn.functional.poisson_nll_loss", ""): "the Poisson NLL loss is not in convlab",
}
FAMILY = re.compile(r"conv|pool|pad|fold|shuffle|im2col|col2im|cross_entropy|nll_loss|mse_loss|softmax")

# --------------------------------------------------------------------------- samples


def _describe(value) -> str:
    if torch.is_tensor(value):
        return f"T{tuple(value.shape)}"
    if isinstance(value, (tuple, list)) and not isinstance(value, torch.Size):
        inner = ", ".join(_describe(v) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    return repr(tuple(value)) if isinstance(value, torch.Size) else repr(value)


def describe(sample) -> str:
    """A sample as a call, tensors by shape: ``T(1, 3, 4, 4), (-1, 1, -2, 1), 'circular'``."""
    parts = [_describe(sample.input)] + [_describe(a) for a in sample.args]
    parts += [f"{k}={_describe(v)}" for k, v in sample.kwargs.items()]
    return ", ".join(parts)


def _numpy(value):
    """torch arguments -> convlab arguments: tensors to NumPy copies, ``torch.Size`` to a tuple."""
    if torch.is_tensor(value):
        return value.detach().numpy().copy()
    if isinstance(value, torch.Size):
        return tuple(value)
    return value


def samples(mirror: Mirror, dtype) -> tuple[Callable, list]:
    """torch's function and the OpInfo samples of one entry, drawn from a fixed seed."""
    torch.manual_seed(0)
    random.seed(0)
    op = op_db()[mirror.opinfo]
    found = list(op.sample_inputs("cpu", dtype, requires_grad=True))
    return mirror.derive(op, found) if mirror.derive is not None else (op.op, found)


# --------------------------------------------------------------------------- one sample


def _split(out) -> list:
    """The outputs as a list: the differentiable output first (max pooling's indices after it)."""
    return list(out) if isinstance(out, tuple) else [out]


def forward_pair(mirror: Mirror, torch_fn: Callable, sample) -> tuple[list, list]:
    """convlab's outputs and torch's, as NumPy arrays."""
    theirs = [t.detach().numpy() for t in _split(torch_fn(sample.input, *sample.args, **sample.kwargs))]
    bound = inspect.signature(mirror.forward).bind(sample.input, *sample.args, **sample.kwargs)
    ours = _split(mirror.forward(**{k: _numpy(v) for k, v in bound.arguments.items()}))
    return ours, theirs


def backward_pair(mirror: Mirror, torch_fn: Callable, sample, seed: int) -> tuple[dict, dict] | None:
    """convlab's vjp and torch's autograd for one random ``grad_output``, by argument name.

    None where torch defines no gradient for the sample (no argument needs one, or its backward refuses).
    """
    bound = inspect.signature(mirror.forward).bind(sample.input, *sample.args, **sample.kwargs)
    wrt = {name: v for name, v in bound.arguments.items() if torch.is_tensor(v) and v.requires_grad}
    out = _split(torch_fn(sample.input, *sample.args, **sample.kwargs))[0]
    if not wrt or not out.requires_grad:
        return None
    grad_output = np.random.default_rng(seed).standard_normal(tuple(out.shape)).astype(out.detach().numpy().dtype)
    try:
        grads = torch.autograd.grad(out, list(wrt.values()), torch.from_numpy(grad_output.copy()), allow_unused=True)
    except RuntimeError:
        return None
    theirs = {name: g.numpy() if g is not None else np.zeros(tuple(t.shape), grad_output.dtype)
              for (name, t), g in zip(wrt.items(), grads, strict=True)}
    arguments = {k: _numpy(v) for k, v in bound.arguments.items()}
    if mirror.ndim is not None:
        arguments["ndim"] = mirror.ndim
    result = mirror.vjp(grad_output, **arguments)
    ours = result._asdict() if hasattr(result, "_asdict") else {"input": result}
    return {name: ours.get(name) for name in theirs}, theirs


def compare(ours, theirs) -> None:
    """AssertionError unless every output (list) or gradient (dict) equals torch's (:func:`assert_close`)."""
    if isinstance(theirs, dict):
        for name, expected in theirs.items():
            assert ours[name] is not None, f"the vjp gave no gradient for {name!r}"
            assert_close(ours[name], expected, f"gradient of {name}")
        return
    assert len(ours) == len(theirs), f"{len(ours)} outputs, torch has {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert_close(a, b, "output" if i == 0 else f"extra output {i} (indices)")


# --------------------------------------------------------------------------- documented differences


@dataclass(frozen=True)
class Difference:
    """Samples where convlab deliberately differs from torch, and what convlab gives instead.

    ``where(sample)`` picks the samples; ``instead(sample, theirs)`` derives convlab's
    result from torch's. Every picked sample must differ from torch and equal ``instead``.
    """

    name: str
    keys: tuple[str, ...]
    direction: str
    where: Callable
    instead: Callable
    reason: str


def _index_planes(sample) -> np.ndarray:
    """max_unpool's indices, one row per ``(n, c)`` plane."""
    indices = sample.args[0].numpy()
    return indices.reshape(indices.shape[0] * indices.shape[1], -1)  # (N*C, prod(I))


def _duplicate_indices(sample) -> bool:
    return any(np.unique(row).size < row.size for row in _index_planes(sample))


def _gradient_to_last_writer(sample, theirs: dict) -> dict:
    """torch's gathered gradient, kept only for the element whose value the output keeps (the last writer)."""
    planes = _index_planes(sample)
    kept = np.zeros(planes.shape, dtype=bool)
    for row, plane in zip(kept, planes, strict=True):
        _, first_from_end = np.unique(plane[::-1], return_index=True)
        row[plane.size - 1 - first_from_end] = True
    return {"input": np.where(kept.reshape(theirs["input"].shape), theirs["input"], 0)}


EXPECTED_DIFFERENCES = [
    Difference(
        name="max_unpool with duplicate indices",
        keys=("max_unpool1d", "max_unpool2d", "max_unpool3d"),
        direction="backward",
        where=_duplicate_indices,
        instead=_gradient_to_last_writer,
        reason="where overlapping max-pooling windows pick one element twice, its index appears twice and only "
               "the last write survives in the output. torch's backward gathers grad_output at every index, so "
               "each copy gets the gradient (counted twice through max_pool's backward; torch's own OpInfo "
               "skips its gradient checks for these samples, see sample_inputs_max_unpool_grad). convlab's "
               "vjp is the exact derivative of the forward: the kept copy gets it, the overwritten ones 0.",
    ),
]


def _difference(key: str, direction: str, sample) -> Difference | None:
    for difference in EXPECTED_DIFFERENCES:
        if key in difference.keys and direction == difference.direction and difference.where(sample):
            return difference
    return None


# --------------------------------------------------------------------------- one operator


@dataclass
class Tally:
    samples: int = 0
    passed: int = 0
    documented: int = 0  # differ from torch as EXPECTED_DIFFERENCES says, and equal its `instead`
    no_reference: int = 0  # torch defines no gradient for the sample


def check_operator(key: str, dtype_name: str, direction: str) -> tuple[Tally, list[str]]:
    """Run every sample of ``key``; return the counts and the unexpected outcomes (differences, stale entries)."""
    mirror = MIRRORS[key]
    torch_fn, found = samples(mirror, getattr(torch, dtype_name))
    tally, problems = Tally(samples=len(found)), []
    for index, sample in enumerate(found):
        where = f"sample {index}: {key}({describe(sample)})"
        try:
            if direction == "forward":
                pair = forward_pair(mirror, torch_fn, sample)
            else:
                pair = backward_pair(mirror, torch_fn, sample, seed=index)
                if pair is None:
                    tally.no_reference += 1
                    continue
        except (ValueError, TypeError) as error:
            problems.append(f"{where}: convlab refuses it: {type(error).__name__}: {error}")
            continue
        ours, theirs = pair
        difference = _difference(key, direction, sample)
        try:
            if difference is None:
                compare(ours, theirs)
                tally.passed += 1
                continue
        except AssertionError as error:
            problems.append(f"{where}: {str(error).strip().splitlines()[0]}")
            continue
        try:
            compare(ours, theirs)
        except AssertionError:
            try:
                compare(ours, difference.instead(sample, theirs))
                tally.documented += 1
            except AssertionError as error:
                problems.append(f"{where}: differs from torch, but not as {difference.name!r} says: "
                                f"{str(error).strip().splitlines()[0]}")
        else:
            problems.append(f"{where}: listed in EXPECTED_DIFFERENCES ({difference.name!r}) but now agrees "
                            "with torch: narrow or remove the entry")
    for difference in EXPECTED_DIFFERENCES:
        if key in difference.keys and direction == difference.direction and not any(map(difference.where, found)):
            problems.append(f"EXPECTED_DIFFERENCES {difference.name!r} picks none of torch's samples of {key} "
                            f"({dtype_name}): remove {key} from it")
    return tally, problems


CASES = [pytest.param(key, dtype, direction, id=f"{key}-{dtype}-{direction}")
         for key in MIRRORS for dtype in ("float64", "float32") for direction in ("forward", "backward")]


@pytest.mark.parametrize(("key", "dtype", "direction"), CASES)
def test_opinfo_samples(key: str, dtype: str, direction: str) -> None:
    tally, problems = check_operator(key, dtype, direction)
    assert tally.samples > 0, f"torch's OpInfo entry {MIRRORS[key].opinfo} has no samples"
    assert not problems, f"{len(problems)} of {tally.samples} samples differ from torch:\n" + "\n".join(problems)


def test_every_related_opinfo_is_mirrored_or_excused() -> None:
    entries = {key for key in op_db() if FAMILY.search(key[0])}
    mirrored = {m.opinfo for m in MIRRORS.values()}
    assert mirrored <= set(op_db()), f"OpInfo entries convlab mirrors that torch lacks: {mirrored - set(op_db())}"
    unaccounted = entries - mirrored - set(NOT_MIRRORED)
    assert not unaccounted, f"OpInfo entries of the family neither mirrored nor in NOT_MIRRORED: {sorted(unaccounted)}"
    stale = set(NOT_MIRRORED) - entries
    assert not stale, f"NOT_MIRRORED names entries torch no longer has: {sorted(stale)}"


# --------------------------------------------------------------------------- the rules the samples exposed

X2 = np.random.default_rng(0).standard_normal((1, 2, 7, 7))
X3 = np.random.default_rng(1).standard_normal((1, 2, 5, 6, 7))
W2 = np.random.default_rng(2).standard_normal((3, 2, 3, 3))
W3 = np.random.default_rng(3).standard_normal((3, 2, 2, 3, 2))

#: Calls with a one-entry (or, for pooling strides, empty) per-dimension value that torch accepts:
#: ``(name, args, kwargs)`` for both ``torch.nn.functional`` and ``convlab.functional``.
ONE_ENTRY_CALLS = [
    ("conv2d", (X2, W2), dict(stride=(2,))),
    ("conv2d", (X2, W2), dict(padding=(1,), dilation=(2,))),
    ("conv3d", (X3, W3), dict(stride=(2,), padding=(1,))),
    ("conv_transpose2d", (X2, W2.transpose(1, 0, 2, 3).copy()), dict(stride=(2,), output_padding=(1,))),
    ("conv_transpose3d", (X3, W3.transpose(1, 0, 2, 3, 4).copy()), dict(stride=(2,), padding=(1,), dilation=(2,))),
    ("max_pool2d", (X2, (3,)), dict(stride=(2,), padding=(1,), dilation=(2,))),
    ("max_pool2d", (X2, 3, ()), dict(return_indices=True)),
    ("max_pool3d", (X3, (2,)), dict(stride=())),
    ("avg_pool2d", (X2, (3, 3), (1, 1), (1,), True, False, 2), {}),  # the OpInfo sample of issue 16
    ("avg_pool2d", (X2, (2, 2), (), (0,), False, True, -2), {}),  # the other one
    ("avg_pool3d", (X3, (3,)), dict(stride=(2,), padding=(1,), ceil_mode=True)),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), ONE_ENTRY_CALLS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(ONE_ENTRY_CALLS)])
def test_one_entry_is_repeated_for_every_dimension_like_torch(name, args, kwargs):
    theirs = getattr(torch.nn.functional, name)(*(torch.from_numpy(a) if isinstance(a, np.ndarray) else a
                                                  for a in args), **kwargs)
    ours = getattr(F, name)(*args, **kwargs)
    compare(_split(ours), [t.numpy() for t in _split(theirs)])


def test_one_entry_is_repeated_where_torch_refuses_it():
    """unfold/fold and max_unpool follow the same rule, where torch refuses one entry (a documented extension)."""
    unfold = torch.nn.functional.unfold
    columns = F.unfold(X2, 3, padding=(1,), stride=(2,))
    assert_close(columns, unfold(torch.from_numpy(X2), 3, padding=1, stride=2).numpy())
    with pytest.raises(RuntimeError, match="padding equals to 2"):
        unfold(torch.from_numpy(X2), 3, padding=(1,))
    # (fold's output_size, like the N-d functions' kernel_size, also sets the number of dimensions: (7,) is 1-D)
    assert_close(F.fold(columns, 7, 3, padding=(1,), stride=(2,)),
                 torch.nn.functional.fold(torch.from_numpy(columns), (7, 7), 3, padding=1, stride=2).numpy())
    values, indices = F.max_pool2d(X2[..., :6, :6], 2, return_indices=True)
    assert_close(F.max_unpool2d(values, indices, (2,), stride=(2,)),
                 torch.nn.functional.max_unpool2d(torch.from_numpy(values), torch.from_numpy(indices), 2).numpy())


def test_one_entry_rule_keeps_the_checks():
    with pytest.raises(ValueError, match=r"conv2d: `stride` has 3 entries \(1, 2, 3\), but the operation has 2 "
                                         r"spatial dimensions; give one entry"):
        F.conv2d(X2, W2, stride=(1, 2, 3))
    with pytest.raises(ValueError, match=r"conv2d: `stride` has 0 entries \(\)"):
        F.conv2d(X2, W2, stride=())  # torch refuses an empty stride for a convolution too
    with pytest.raises(ValueError, match=r"conv2d: `dilation\[0\]` \(=0\) must be >= 1"):
        F.conv2d(X2, W2, dilation=(0,))
    with pytest.raises(TypeError, match=r"max_pool2d: `kernel_size\[0\]` must be an integer, got 2.0"):
        F.max_pool2d(X2, (2.0,))
    with pytest.raises(ValueError, match=r"avg_pool2d: `padding` has 0 entries"):
        F.avg_pool2d(X2, 3, 1, ())  # torch: "padding must either be a single int, or a tuple of two ints"
    assert F.conv2d(X2, W2, padding=((0, 1),)).shape == (1, 3, 6, 6)  # one (lo, hi) pair: every dimension


@pytest.mark.parametrize("pad", [(-1, 1), (1, -1), (-1, 2), (-2, 2), (2, -2), (-1, -1), (4, 4), (-4, 0)])
def test_circular_pad_wraps_what_the_crop_leaves(pad):
    x = np.arange(1.0, 5.0).reshape(1, 1, 4)
    expected = torch.nn.functional.pad(torch.from_numpy(x), pad, mode="circular").numpy()
    assert_close(F.pad(x, pad, mode="circular"), expected)


@pytest.mark.parametrize("pad", [(3, -2), (-2, 3), (-4, 1)])
def test_circular_pad_refuses_a_wrap_longer_than_the_crop_leaves(pad):
    # torch refuses (3, -2) (its copy would overlap itself) and returns uninitialised memory for (-4, 1).
    with pytest.raises(ValueError, match=r"pad: circular padding \(=\(-?\d, -?\d\)\) must be at most the size "
                                         r"left after cropping \(=\d of 4\)"):
        F.pad(np.arange(1.0, 5.0).reshape(1, 1, 4), pad, mode="circular")


def main() -> None:  # pragma: no cover - the counts for the report
    torch.set_num_threads(1)  # as tests/conftest.py does
    row = "{:30s} {:8s} {:9s} {:>7} {:>6} {:>10} {:>7} {:>6}"
    print(row.format("operator", "dtype", "direction", "samples", "passed", "documented", "no grad", "differ"))
    totals: dict[tuple[str, str], list[int]] = {}
    for case in CASES:
        key, dtype, direction = case.values
        tally, problems = check_operator(key, dtype, direction)
        counts = [tally.samples, tally.passed, tally.documented, tally.no_reference, len(problems)]
        print(row.format(key, dtype, direction, *counts))
        for problem in problems[:5]:
            print("    ", problem)
        total = totals.setdefault((dtype, direction), [0] * 5)
        total[:] = [a + b for a, b in zip(total, counts, strict=True)]
    for (dtype, direction), total in totals.items():
        print(row.format("all", dtype, direction, *total))


if __name__ == "__main__":
    main()
