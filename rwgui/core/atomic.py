"""Files that are either whole or absent: write beside the target, flush to disk, then rename onto it.

A crash, a kill or a full disk during the write leaves whatever was at the path before (a result, a report, a
session, a settings cache) readable: the rename is the one step that makes the new file visible.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "wb", **open_kw: Any) -> Iterator[IO[Any]]:
    """Open a hidden temporary file beside ``path`` for writing (``mode`` "wb" or "w"); when the block ends
    without an error it is synced and renamed onto ``path``, otherwise removed. OSError passes to the caller,
    which says what could not be written. New files get the usual permissions (0o666 less the umask)."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, mode.replace("w", "x"), **open_kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
