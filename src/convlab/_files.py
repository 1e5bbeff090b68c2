"""Writing files safely: one atomic writer for every file convlab produces (bench JSON, checkpoints).

:func:`atomic_writer` opens a temporary file in the destination's folder and,
when the ``with`` block ends without an error, flushes it, ``fsync``s it, gives
it the permissions the destination has (or would get from ``open(path, "w")``)
and renames it over the destination with ``os.replace`` (atomic on POSIX and
Windows), then ``fsync``s the folder so the rename itself survives a power cut.
If the block raises (or the process is interrupted), the temporary file is
removed and the destination is left as it was: a reader sees the old file or
the new one, never half of one.

With ``overwrite=False`` an existing destination is refused with
``FileExistsError``; the final step is then ``os.link`` (which fails if the
name exists, so two writers cannot both win), falling back to a check and
``os.replace`` on file systems without hard links.

Only the standard library is imported (layer 0).

Examples
--------
>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "numbers.txt")
>>> with atomic_writer(path, text=True) as f:
...     _ = f.write("1 2 3\\n")
>>> open(path).read()
'1 2 3\\n'
>>> sorted(os.listdir(folder))  # no temporary file left behind
['numbers.txt']
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["atomic_writer", "write_bytes_atomic"]


def _default_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file (0o666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], *, text: bool = False, overwrite: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` atomically.

    Parameters
    ----------
    path
        The destination. Its folder must exist.
    text
        Open the temporary file in text mode (UTF-8) instead of binary.
    overwrite
        Replace an existing ``path`` (default). With False an existing file raises
        ``FileExistsError`` and is left untouched.

    Yields
    ------
    file
        The open temporary file; write the whole content to it inside the ``with`` block.
    """
    import tempfile

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8"} if text else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            mode = os.stat(path).st_mode & 0o7777  # an existing file keeps its permissions
        except FileNotFoundError:
            mode = _default_mode()
        os.chmod(temporary, mode)
        if overwrite:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)  # fails with FileExistsError if the name exists: no race
            except FileExistsError:
                raise
            except OSError as exc:  # no hard links here (some network and FAT file systems)
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                if os.path.lexists(path):
                    raise FileExistsError(errno.EEXIST, "File exists", path) from None
                os.replace(temporary, path)
            else:
                os.unlink(temporary)
        _fsync_folder(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_writer` (in chunks of 1 MiB)."""
    view = memoryview(data)
    chunk = 1 << 20
    with atomic_writer(path, overwrite=overwrite) as f:
        for start in range(0, len(view), chunk):
            f.write(view[start:start + chunk])
