"""Checks on where a result will be written, made before any work starts.

Why this module exists: a restoration can run for hours, and a path that cannot be written is otherwise found
only when the result is saved, after the run. These checks are cheap (no decoding, no engine) and Qt-free, so
the CLI runs them before its first step and the studio can run them before it starts a long run or saves.

Writability is tested by creating and removing a file in the folder, not by ``os.access``: access() asks about
permission bits only, and is wrong on read-only mounts, network shares, ACLs and for root.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from rwgui.core.errors import OutputPathError
from rwgui.core.imageio import WRITE_EXTENSIONS

PathLike = str | os.PathLike


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file: ``os.path.samefile`` when both exist (hard links, symbolic
    links, case-insensitive file systems), otherwise their resolved absolute paths."""
    pa, pb = Path(os.fspath(a)), Path(os.fspath(b))
    with contextlib.suppress(OSError):
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    return pa.resolve() == pb.resolve()


def check_writable(path: PathLike, what: str = "the result") -> Path:
    """Raise OutputPathError unless a file can be created at ``path``: its folder exists, is a folder and
    takes a new file (tried with a temporary file, removed at once), and ``path`` itself is not a folder.
    ``what`` names the file in the message ("the report"). Returns the path."""
    p = Path(os.fspath(path))
    folder = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise OutputPathError(f"cannot write {what} to '{p}': it is a folder; give a file name inside it")
    if not folder.exists():
        raise OutputPathError(
            f"cannot write {what} to '{p}': the folder '{folder}' does not exist; create it or pick another folder"
        )
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {what} to '{p}': '{folder}' is a file, not a folder; pick a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".rwgui-check-", suffix=".tmp", dir=folder)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputPathError(
            f"cannot write {what} to '{p}': the folder '{folder}' does not take new files ({reason}); "
            "pick a folder you can write to"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return p


def check_output_path(path: PathLike, input_path: PathLike | None = None, overwrite: bool = False) -> Path:
    """Raise OutputPathError unless a restored image can be written at ``path``: a format ``imageio.write``
    knows (by extension), a folder that takes new files, and not the photo being restored (``input_path``)
    unless ``overwrite``, so that the original is never replaced by accident. Returns the path."""
    p = Path(os.fspath(path))
    ext = p.suffix.lower().lstrip(".")
    if ext not in WRITE_EXTENSIONS:
        kind = f"'.{ext}'" if ext else "no extension"
        raise OutputPathError(
            f"cannot write '{p}': {kind} is not an image format rwgui writes; "
            f"end the name with one of .{', .'.join(WRITE_EXTENSIONS)}"
        )
    if input_path is not None and not overwrite and same_file(p, input_path):
        raise OutputPathError(
            f"the output '{p}' is the input photo; pick another name with -o, or pass --overwrite to replace it"
        )
    return check_writable(p, "the result")


#: The suffix every default output name carries (CLI, studio): ``photo.png`` -> ``photo_restored.png``.
RESTORED_SUFFIX = "_restored"
_RESTORED_SPELLINGS = ("_restored", "-restored", " restored", ".restored")


def default_output_name(input_path: PathLike | None, suffix: str = RESTORED_SUFFIX, keep_format: bool = False) -> str:
    """The file name a result is offered under: the input's stem plus ``suffix``, never doubled, ending ``.png``;
    with ``keep_format`` a PNG or TIFF input keeps its own extension (other formats lose detail: a JPEG would
    re-compress what was restored, so they become PNG).

    One rule for the CLI and the studio, so a result is named the same whichever made it: ``scan.jpg`` ->
    ``scan_restored.png``, ``scan_restored.png`` -> ``scan_restored.png`` (not ``scan_restored_restored``), and
    a photo without a file (a bundled sample) -> ``restored.png``. A 16-bit PNG stays a PNG: PNG holds 16 bits."""
    p = Path(os.fspath(input_path)) if input_path else None
    stem = p.stem if p is not None else ""
    own = p.suffix.lower().lstrip(".") if p is not None else ""
    ext = own if keep_format and own in ("png", "tif", "tiff") else "png"
    if not stem:
        return f"{suffix.strip('_- .') or 'restored'}.{ext}"
    if suffix and not any(stem.lower().endswith(s) for s in (suffix.lower(), *_RESTORED_SPELLINGS)):
        stem += suffix
    return f"{stem}.{ext}"


def extension_for_filter(path: PathLike, name_filter: str) -> Path:
    """``path`` with the first extension of a file dialog's ``name_filter`` (``"TIFF (*.tif *.tiff)"``) when it
    has none of that filter's extensions, so the name matches the format the person chose: ``a.png`` under
    the TIFF filter becomes ``a.tif``, ``a`` becomes ``a.tif``, ``a.tiff`` stays."""
    p = Path(os.fspath(path))
    exts = [e.lower() for e in re.findall(r"\*\.(\w+)", name_filter)]
    if not exts or p.suffix.lower().lstrip(".") in exts:
        return p
    if p.suffix.lower().lstrip(".") in WRITE_EXTENSIONS:
        return p.with_suffix("." + exts[0])
    return p.with_name(p.name + "." + exts[0])
