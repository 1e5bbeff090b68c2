"""Pictures of convolution: animations of any configuration and static figures, drawn from the engine's numbers.

matplotlib and Pillow are imported on first use (the ``viz`` extra:
``pip install "convlab[viz]"``); importing this package needs neither.
"""

from __future__ import annotations

__all__: list[str] = ["Animation", "animate", "animation_scene", "conv_arithmetic"]

_LAZY = {"Animation": ".animate", "animate": ".animate", "animation_scene": ".animate", "conv_arithmetic": ".animate"}
#: The static figures (viz/figures.py), lazily too.
_FIGURES = ("checkerboard", "checkerboard_counts", "conv_matrix", "correlation", "correlation_matrix", "coverage",
            "coverage_counts", "curves", "erf", "erf_panel", "feature_map_arrays", "feature_maps", "kernels",
            "read_metrics", "receptive_field", "receptive_field_boxes")
_LAZY.update(dict.fromkeys(_FIGURES, ".figures"))
__all__ += list(_FIGURES)


def __getattr__(name: str):
    # Lazy: importing convlab.viz loads neither matplotlib nor Pillow (nor the engine's explain).
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name], __name__)
        # Importing convlab.viz.animate bound the module to `animate`: the function wins, whichever name came first.
        globals().update({lazy: getattr(module, lazy) for lazy, where in _LAZY.items() if where == _LAZY[name]})
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
