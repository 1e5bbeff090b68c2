"""``convlab demo``: the tutorials' worked examples, one after another, computed by the engine.

The examples live in :mod:`convlab.examples`, one module each; this walk runs
them in :data:`convlab.examples.ORDER`, numbering them. Every step prints its
input, kernel, settings, the output and the output-size formula with the
numbers substituted (from :mod:`convlab.shapes`). The data ships with the
package; nothing is downloaded. Run the walk with ``convlab demo`` or
``python -m convlab.demo``; one example with ``convlab demo NAME`` (or
``python -m convlab.examples.NAME``); ``convlab demo --list`` names them.

>>> print(catalog()[1])
cross_correlation           Two-dimensional cross-correlation, figure 5.1 (seed 003)

The text helpers that ``convlab conv`` shares with the examples are in
:mod:`convlab.examples.worked` and are re-exported here:

>>> ex = worked_example([[[0, 1, 2], [3, 4, 5], [6, 7, 8]]], [[[[0, 1], [2, 3]]]])
>>> ex.output.tolist()
[[[19, 25], [37, 43]]]
>>> print(ex.explanations[0])
H_out = floor((3 + 0 + 0 - (2-1) - 1) / 1) + 1 = 2
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from .examples import ORDER, load
from .examples.worked import WorkedExample, format_array, format_matrix, worked_example

__all__ = ["WorkedExample", "catalog", "format_array", "format_matrix", "main", "run", "run_one", "worked_example"]


def run(file: TextIO | None = None) -> dict[str, object]:
    """Print the whole walk to ``file`` (standard output by default); return each example's result by name."""
    out = file if file is not None else sys.stdout
    print("convlab demo: the tutorials' worked examples, computed by the engine", file=out)
    print("(import convlab.functional as F; arrays are (C, H, W) without a batch axis unless shown;", file=out)
    print(" each example also runs on its own: convlab demo NAME, or python -m convlab.examples.NAME)", file=out)
    results = {}
    for number, name in enumerate(ORDER, start=1):
        print(file=out)
        results[name] = load(name).run(out, number=number)
    return results


def run_one(name: str, file: TextIO | None = None) -> object:
    """Print the example ``name`` (one of :data:`convlab.examples.ORDER`) on its own; return its result.

    Raises the ValueError of :func:`convlab.examples.load` (which lists the names) for an unknown name.
    """
    return load(name).run(file)


def catalog() -> list[str]:
    """One line per example, in the walk's order: its name and its title."""
    width = max(len(name) for name in ORDER) + 2
    return [f"{name.ljust(width)}{load(name).TITLE}" for name in ORDER]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m convlab.demo``: the whole walk."""
    run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
