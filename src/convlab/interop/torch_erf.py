"""The effective receptive field of torch models, through autograd.

Importing this module (``import convlab.interop`` does) registers :func:`probe` as the
backend of :func:`convlab.analysis.effective_receptive_field` for ``torch.nn.Module``
models, the way :mod:`convlab.interop.torch_analysis` registers the analysis' reader;
torch is imported inside the function.

The unit's layer is chosen as for convlab models: the model's output when it is
``(N, C, H, W)``, otherwise the last top-level child (in the order the forward pass
runs them, seen by forward hooks) whose output is ``(N, C, h, w)`` with ``h*w > 1``
(torchvision's ResNet-18: ``layer4``). The gradient is
``torch.autograd.grad(output, x, grad_outputs=one_hot)`` (no ``.grad`` is touched), in
eval mode (BatchNorm's running statistics), in the model's own dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..analysis.erf import GradientProbe, check_unit, one_hot, register_erf_backend
from .torch_analysis import is_torch_module

__all__ = ["probe"]


def probe(model: Any, inputs: np.ndarray, unit: object) -> GradientProbe:
    """Input gradients of one unit of ``model`` for ``inputs`` ``(N, C, H, W)``; see the module docstring."""
    import torch

    from ..analysis import analyze

    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float64
    x = torch.tensor(inputs, dtype=dtype, requires_grad=True)
    seen: list[tuple[str, Any]] = []
    handles = []
    for name, child in model.named_children():
        handles.append(child.register_forward_hook(
            lambda _m, _i, out, name=name: seen.append((name, out))))
    was_training = model.training
    try:
        model.eval()
        with torch.enable_grad():
            output = model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    layer, chosen = "", output
    if not (isinstance(output, torch.Tensor) and output.ndim == 4 and output.shape[2] * output.shape[3] > 1):
        spatial = [(n, o) for n, o in seen
                   if isinstance(o, torch.Tensor) and o.ndim == 4 and o.shape[2] * o.shape[3] > 1]
        if not spatial:
            raise ValueError("effective_receptive_field: no top-level child of the torch model has a spatial "
                             f"output (N, C, H, W) for the input {tuple(inputs.shape[1:])}")
        layer, chosen = spatial[-1]
    checked = check_unit(unit, tuple(chosen.shape[1:]), layer)
    grad_out = torch.from_numpy(one_hot(tuple(chosen.shape), checked, np.float64)).to(chosen.dtype)
    (grad,) = torch.autograd.grad(chosen, x, grad_outputs=grad_out)
    return GradientProbe(grad.detach().cpu().numpy(), layer, tuple(chosen.shape[1:]), checked,
                         _field(analyze, model, tuple(inputs.shape[1:]), layer))


def _field(analyze: Any, model: Any, shape: tuple[int, ...], layer: str) -> Any:
    """The theoretical field of ``layer``'s output: the analysis' last row inside that child (None if not found)."""
    try:
        report = analyze(model, (1, *shape))
    except (ValueError, TypeError, NotImplementedError):
        return None
    if not layer:
        return report.receptive_field
    rows = [r for r in report if r.name == layer or r.name.startswith(layer + ".")]
    return rows[-1].receptive_field if rows else None


register_erf_backend(is_torch_module, probe, name="torch")
