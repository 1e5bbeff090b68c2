"""The house style of the static figures: figures without pyplot, colour-blind-safe colour maps.

A figure is a :class:`matplotlib.figure.Figure` with a
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg` attached: nothing goes through
``pyplot``, so no global backend or state of the user's session is touched, and the
figure is never shown or registered with a GUI.

Colour maps: ``viridis`` for magnitudes, ``cividis`` for counts (both perceptually
uniform and readable with colour-vision deficiencies, Nuñez et al., PLOS ONE 2018 for
cividis), and ColorBrewer's ``PuOr`` for signed values (diverging, marked colour-blind
safe by ColorBrewer, Harrower & Brewer 2003), centred on 0.
"""

from __future__ import annotations

from typing import Any

__all__ = ["COUNTS", "DIVERGING", "SEQUENTIAL", "new_figure", "require_matplotlib", "signed_limits"]

SEQUENTIAL = "viridis"
COUNTS = "cividis"
DIVERGING = "PuOr"


def require_matplotlib() -> Any:
    """Import matplotlib, or an ImportError naming the extra to install."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is in the dev environment
        raise ImportError('convlab.viz needs matplotlib: pip install "convlab[viz]"') from exc
    return matplotlib


def new_figure(width: float, height: float, dpi: int = 100) -> Any:
    """A Figure of ``width`` x ``height`` inches on its own Agg canvas (no pyplot)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def signed_limits(values: Any) -> tuple[float, float]:
    """``(-m, m)`` with ``m`` the largest magnitude (1 for an all-zero array): a diverging map centred on 0."""
    import numpy as np

    m = float(np.max(np.abs(values))) if np.size(values) else 0.0
    m = m if m > 0 and np.isfinite(m) else 1.0
    return -m, m
