"""The records of every algorithm of the primitive, in the order users see them.

Adding an algorithm: write its module (``conv_general``, ``unsupported``,
``estimate`` and an ``ALGORITHM`` record at the end; see the existing ones),
then add its record here. The table of ``ALGORITHMS``, the candidates of
``algorithm='auto'``, the planner, the fallback of a named algorithm, the
benchmark and the tests all read this list.
"""

from __future__ import annotations

from . import (
    col2im,
    depth_to_space,
    depthwise,
    direct,
    fft,
    gemm,
    im2col,
    matrix,
    reference,
    space_to_batch,
    subpixel,
    winograd,
)
from ._record import Algorithm

__all__ = ["RECORDS"]

RECORDS: dict[str, Algorithm] = {record.name: record for record in (
    reference.ALGORITHM,
    im2col.ALGORITHM,
    matrix.ALGORITHM,
    gemm.ALGORITHM,
    winograd.ALGORITHM_F2,
    winograd.ALGORITHM_F4,
    fft.ALGORITHM,
    depthwise.ALGORITHM,
    depthwise.ALGORITHM_NUMPY,
    direct.ALGORITHM,
    subpixel.ALGORITHM,
    col2im.ALGORITHM,
    space_to_batch.ALGORITHM,
    depth_to_space.ALGORITHM,
)}
