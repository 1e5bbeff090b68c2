"""Bridges to other frameworks; each imports its framework lazily (``convlab.interop.torch``).

Importing this package registers the torch reader of the analysis
(:mod:`convlab.interop.torch_analysis`), so that :func:`convlab.analysis.analyze`
accepts a ``torch.nn.Module``; torch itself is imported only when a torch model is analysed or converted.
"""

from . import (
    torch_analysis,  # noqa: F401  (registers the analysis' reader for torch modules)
    torch_erf,  # noqa: F401  (registers the torch backend of analysis.effective_receptive_field)
)
