"""Sessions on disk: everything of a :class:`~rwgui.core.session.Session` in one ``.rwgui`` file.

Why a file of its own kind: a restoration is more than its result. The person painted a mask, chose settings,
pinned iterates and picked one as the result; a run may have taken hours. Saving the session keeps all of it,
and the autosave (:mod:`rwgui.core.autosave`) writes the same file so a crash loses at most one interval.

The format (version :data:`FORMAT_VERSION`)
--------------------------------------------
A ``.rwgui`` file is a ZIP archive (members stored, not compressed: PNG is compressed already and ``.npy``
pixels hardly compress, while storing keeps a 512x512 session's write in milliseconds). Unzipped, the same
members in a folder open as well. Nothing in it is pickled: arrays are ``.npy`` files read with
``numpy.load(allow_pickle=False)`` after their header is checked (dtype, shape, size against the member's bytes),
images are PNG, the rest is JSON. Members:

* ``session.json``: the manifest (below), written last;
* ``photo/pixels.npy``: the photo, HxWxC float32 in [0, 1] as it was read (pixel-exact on reopen, whatever
  the file's bit depth); ``photo/alpha.npy`` (HxW float32) and ``photo/ground_truth.npy`` when present;
  ``photo/mask.png`` when the photo came with a mask (the inpainting sample);
* ``mask.png``: the painted mask, 8-bit gray, 255 = known, 0 = hole (``mask.npy`` float32 if it ever holds
  values an 8-bit PNG cannot keep exactly); ``working_mask.png`` likewise: the mask the run started with;
* ``iterates/<key>.npy`` (HxWxC uint16, as the history keeps them) and ``iterates/<key>-thumb.png`` (RGBA
  8-bit) for every kept image: raw iterates by iteration, ``average`` and ``pick_average``. All that the
  history holds is written at full size; the history's memory cap bounds that;
* ``curves/<column>.npy`` (float64, NaN = missing): ``iteration``, ``loss``, ``psnr``, ... and ``loss_<term>``;
* ``lab/<n>.npy``: the image of each Lab result (HxWxC float32).

The manifest is a JSON object::

    {"format": "rwgui-session", "version": 1, "saved_at": <unix time>, "rwgui": "<version>",
     "photo": {"name", "path", "sample", "meta": {ImageMeta's fields}, "pixels", "alpha", "ground_truth",
               "mask"} | null,                  # member names, or null when absent
     "mask": member | null, "settings": RunConfig JSON | null, "run_config": RunConfig JSON | null,
     "working": {"mode", "task", "full_size", "size", "box", "margin"} | null, "working_mask": member | null,
     "history": {"pick_iteration", "chosen", "dropped",
                 "entries": [{"key", "iteration", "pinned", "pixels", "thumb"}]},
     "curves": {"rows": n, "columns": {name: member}},
     "lab": {"results": [{"key", "variant_label", "config", "pick_iteration", "psnr", "best", "image"}],
             "shown": n, "taken": index | null}}

``chosen`` is the person's "Keep this one" (null = the rule's pick); a history key is an iteration (int) or
``"average"`` / ``"pick_average"``. ``lab.results[:shown]`` are the Lab's results; a taken result that is no
longer among them follows as one more record.

Writing is atomic: the archive is written under a temporary name in the same folder, flushed to disk, and
``os.replace``-d onto the final name, the one step that makes it visible. A write killed at any point leaves
the previous file as it was (and at worst a stray ``.<name>.<8 hex digits>.tmp`` file).

Reading checks everything before anything is used: a file of a newer format version, a malformed manifest, a
missing member or an array of the wrong kind is a :class:`~rwgui.core.errors.SessionFileError` that says what
is wrong; :func:`read_session` returns a :class:`SessionData` and :func:`apply_session` puts it into a session,
so a failed open changes nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from .atomic import atomic_file
from .config import RunConfig
from .errors import RwguiError, SessionFileError
from .history import AVERAGE, PICK_AVERAGE, IterateHistory, Key
from .imageio import ImageMeta
from .photo import Photo
from .session import LabResult, Session
from .working_size import RUN_MODES, Working

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "SUFFIX",
    "KeptEntry",
    "SessionData",
    "Taken",
    "apply_session",
    "is_session_path",
    "peek_session",
    "read_session",
    "write_session",
]

FORMAT = "rwgui-session"
FORMAT_VERSION = 1
MANIFEST = "session.json"
SUFFIX = ".rwgui"
MAX_MANIFEST_BYTES = 64 * 2**20  # a manifest is a few kB; anything near this is not one
_SPECIAL_KEYS = {str(AVERAGE): AVERAGE, str(PICK_AVERAGE): PICK_AVERAGE}


# ------------------------------------------------------------------------------------------------ the data
@dataclass(frozen=True)
class KeptEntry:
    """One kept image of the history as saved: uint16 HxWxC pixels and its uint8 RGBA thumbnail."""

    key: Key
    iteration: int
    pixels: np.ndarray
    thumb: np.ndarray
    pinned: bool = False
    label: str = ""  # a named entry's name (a Lab result taken into the history)


@dataclass(frozen=True)
class Taken:
    """A Lab result the history holds under ``key``, with the working size it was made at and its mask."""

    key: str
    result: LabResult
    working: Working | None
    working_mask: np.ndarray | None


@dataclass
class SessionData:
    """A session's content detached from any session object: what is written, or what was read.

    :meth:`snapshot` takes it from a live session on the GUI thread cheaply, so that a worker thread can
    write it: the session replaces its arrays (photo, mask, kept iterates, Lab images) rather than writing
    into them, so those are shared; the curves, which grow in place, are copied."""

    photo: Photo | None = None
    mask: np.ndarray | None = None
    settings: RunConfig | None = None
    run_config: RunConfig | None = None
    working: Working | None = None
    working_mask: np.ndarray | None = None
    entries: tuple[KeptEntry, ...] = ()
    pick_iteration: int | None = None
    chosen: Key | None = None
    dropped: int = 0
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    lab_results: tuple[LabResult, ...] = ()
    lab_result: LabResult | None = None
    taken: tuple[Taken, ...] = ()
    saved_at: float = 0.0

    @classmethod
    def snapshot(cls, session: Session) -> SessionData:
        h = session.history
        entries, taken = [], []
        for key in h.keys():
            e = h.entry(key)
            entries.append(KeptEntry(key, e.iteration, e.pixels, e.thumb, e.pinned, getattr(e, "label", "")))
            if _is_named(key) and (result := session.taken_result(key)) is not None:
                taken.append(Taken(str(key), result, *session.working_for(key)))
        return cls(
            photo=session.photo,
            mask=None if session.mask is None else session.mask.copy(),
            settings=session.settings,
            run_config=session.run_config,
            working=session.working,
            working_mask=session.working_mask,
            entries=tuple(entries),
            pick_iteration=h.pick_iteration,
            chosen=h.chosen if h.chosen is not None and h.chosen in h else None,
            dropped=h.dropped,
            curves=session.curves.columns(),
            lab_results=session.lab_results,
            lab_result=session.lab_result,
            taken=tuple(taken),
            saved_at=time.time(),
        )

    @property
    def nbytes(self) -> int:
        """About how many bytes a write of this data takes (its arrays)."""
        arrays: list[np.ndarray | None] = [self.mask, self.working_mask]
        if self.photo is not None:
            arrays += [self.photo.pixels, self.photo.alpha, self.photo.ground_truth, self.photo.mask]
        arrays += [e.pixels for e in self.entries] + [e.thumb for e in self.entries]
        arrays += list(self.curves.values()) + [r.image for r in self.lab_results]
        arrays += [t.working_mask for t in self.taken]
        return sum(int(a.nbytes) for a in arrays if a is not None)

    def fill_history(self, h: IterateHistory) -> None:
        """Put the kept iterates, pins, the rule's pick and the chosen result into ``h`` (emptied first), through
        the history's own methods: raw iterates in order (each pinned as it comes, so thinning never drops a
        pin), then the pick with its running average, then the latest average, then the choice."""
        h.clear()
        raw = {e.key: e for e in self.entries if isinstance(e.key, int)}
        special = {e.key: e for e in self.entries if not isinstance(e.key, int)}
        named = [e for e in self.entries if _is_named(e.key)]
        for it in sorted(raw):
            e = raw[it]
            h.add(it, e.pixels, e.thumb)
            if e.pinned and it in h:
                h.pin(it)
        if self.pick_iteration is not None:
            pa = special.get(PICK_AVERAGE)
            h.set_pick(self.pick_iteration, raw[self.pick_iteration].pixels, None if pa is None else pa.pixels)
        if (avg := special.get(AVERAGE)) is not None:
            h.set_average(avg.iteration, avg.pixels, avg.thumb)
        for e in named:
            h.put(str(e.key), e.iteration, e.pixels, e.label, e.thumb)
        if self.chosen is not None and self.chosen in h:
            h.choose(self.chosen)
        h.dropped = self.dropped


def apply_session(session: Session, data: SessionData, unsaved: bool = False) -> None:
    """Make ``session`` hold ``data`` (its events fire: views follow). ``data`` comes from :func:`read_session`,
    which checked it, so nothing here can fail half-way for a reason the file holds. The old photo goes first,
    so that a view following the settings (a task change) never acts on it. ``unsaved``: the session's work is
    in no file the person saved (a recovered autosave)."""
    session.set_photo(None)
    if data.settings is not None:
        session.set_settings(data.settings)
    session.set_photo(data.photo)
    session.set_mask(None if data.mask is None else data.mask.copy())
    session.set_lab_results(data.lab_results)

    def fill(history: IterateHistory, curves: Any) -> None:
        data.fill_history(history)
        curves.load_columns(data.curves)

    taken = [(t.key, t.result, t.working, t.working_mask) for t in data.taken]
    session.restore_run(data.run_config, data.working, data.working_mask, fill, taken, data.lab_result, unsaved)


# ------------------------------------------------------------------------------------------------ writing
def _png(img: np.ndarray) -> bytes:
    a = np.ascontiguousarray(img)
    if a.ndim == 3 and a.shape[2] == 3:
        a = a[:, :, ::-1]
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, [2, 1, 0, 3]]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(a), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise SessionFileError("could not encode a PNG member of the session")
    return buf.tobytes()


class _Writer:
    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf

    def npy(self, name: str, arr: np.ndarray | None) -> str | None:
        if arr is None:
            return None
        with self.zf.open(name, "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)
        return name

    def png(self, name: str, img: np.ndarray) -> str:
        self.zf.writestr(name, _png(img))
        return name

    def mask(self, stem: str, mask: np.ndarray | None) -> str | None:
        """A mask as an 8-bit PNG when that keeps it exactly (painted masks are 0 or 1), else as .npy."""
        if mask is None:
            return None
        m = np.asarray(mask, dtype=np.float32)
        if m.ndim == 3:
            m = m[:, :, 0]
        u8 = np.rint(np.clip(m, 0, 1) * 255).astype(np.uint8)
        if np.array_equal(u8.astype(np.float32) / np.float32(255), m):
            return self.png(stem + ".png", u8)
        return self.npy(stem + ".npy", m)


def _key_name(key: Key) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(key))


def _is_named(key: Key) -> bool:
    """A history key that is neither a run's iteration nor one of its two averages (a Lab result taken)."""
    return isinstance(key, str) and key not in _SPECIAL_KEYS


def _working_dict(wk: Working | None) -> dict[str, Any] | None:
    if wk is None:
        return None
    return {
        "mode": str(wk.mode),
        "task": str(wk.task),
        "full_size": list(wk.full_size),
        "size": list(wk.size),
        "box": None if wk.box is None else list(wk.box),
        "margin": wk.margin,
    }


def _manifest(data: SessionData, w: _Writer) -> dict[str, Any]:
    from .. import __version__

    out: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION, "saved_at": data.saved_at or time.time()}
    out["rwgui"] = __version__
    p = data.photo
    out["photo"] = (
        None
        if p is None
        else {
            "name": p.name,
            "path": p.path,
            "sample": p.sample,
            "meta": {f.name: getattr(p.meta, f.name) for f in fields(ImageMeta)},
            "pixels": w.npy("photo/pixels.npy", p.pixels),
            "alpha": w.npy("photo/alpha.npy", p.alpha),
            "ground_truth": w.npy("photo/ground_truth.npy", p.ground_truth),
            "mask": w.mask("photo/mask", p.mask),
        }
    )
    out["mask"] = w.mask("mask", data.mask)
    out["settings"] = None if data.settings is None else data.settings.to_dict()
    out["run_config"] = None if data.run_config is None else data.run_config.to_dict()
    out["working"] = _working_dict(data.working)
    out["working_mask"] = w.mask("working_mask", data.working_mask)
    entries = []
    for i, e in enumerate(data.entries):
        name = _key_name(e.key) if isinstance(e.key, int) or not _is_named(e.key) else f"named-{i}"
        entries.append(
            {
                "key": e.key if isinstance(e.key, int) else str(e.key),
                "iteration": int(e.iteration),
                "pinned": bool(e.pinned),
                "label": e.label,
                "pixels": w.npy(f"iterates/{name}.npy", e.pixels),
                "thumb": w.png(f"iterates/{name}-thumb.png", e.thumb),
            }
        )
    chosen = data.chosen if data.chosen is None or isinstance(data.chosen, int) else str(data.chosen)
    out["history"] = {
        "pick_iteration": data.pick_iteration,
        "chosen": chosen,
        "dropped": int(data.dropped),
        "entries": entries,
    }
    cols = {name: w.npy(f"curves/{name}.npy", np.asarray(col, dtype=np.float64)) for name, col in data.curves.items()}
    rows = len(next(iter(data.curves.values()))) if data.curves else 0
    out["curves"] = {"rows": rows, "columns": cols}
    records = list(data.lab_results)

    def index(result: LabResult) -> int:
        for i, r in enumerate(records):
            if r is result:
                return i
        records.append(result)
        return len(records) - 1

    taken = None if data.lab_result is None else index(data.lab_result)
    in_history = [
        {
            "key": t.key,
            "result": index(t.result),
            "working": _working_dict(t.working),
            "working_mask": w.mask(f"lab/working_mask-{i}", t.working_mask),
        }
        for i, t in enumerate(data.taken)
    ]
    out["lab"] = {
        "results": [
            {
                "key": int(r.key),
                "variant_label": r.variant_label,
                "config": r.config.to_dict(),
                "pick_iteration": int(r.pick_iteration),
                "psnr": None if r.psnr is None or not math.isfinite(r.psnr) else float(r.psnr),
                "best": bool(r.best),
                "image": w.npy(f"lab/{i}.npy", np.asarray(r.image, dtype=np.float32)),
            }
            for i, r in enumerate(records)
        ],
        "shown": len(data.lab_results),
        "taken": taken,
        "in_history": in_history,
    }
    return out


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_session(path: str | os.PathLike[str], data: SessionData) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, flush, ``os.replace``); returns the path.

    An existing file at ``path`` stays as it was until the last step replaces it whole. OSError (a full disk,
    a read-only folder) becomes a SessionFileError naming the path."""
    path = Path(path)
    try:
        with atomic_file(path, "wb") as raw:
            with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                manifest = _manifest(data, _Writer(zf))
                zf.writestr(MANIFEST, json.dumps(manifest, indent=1))
    except OSError as exc:
        raise SessionFileError(f"cannot write the session '{path}': {exc.strerror or exc}") from None
    _fsync_dir(path.parent)
    return path


# ------------------------------------------------------------------------------------------------ reading
class _Source:
    """The members of a session: a ZIP archive or an unzipped folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zf: zipfile.ZipFile | None = None
        if path.is_dir():
            return
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, ValueError):
            raise SessionFileError(f"'{path}' is not an rwgui session (not a ZIP archive)") from None

    def close(self) -> None:
        if self.zf is not None:
            self.zf.close()

    def size(self, name: str) -> int:
        if self.zf is not None:
            try:
                return self.zf.getinfo(name).file_size
            except KeyError:
                raise SessionFileError(f"the session lacks '{name}', which its manifest names") from None
        return self._file(name).stat().st_size

    def _file(self, name: str) -> Path:
        p = (self.path / name).resolve()
        if self.path.resolve() not in p.parents or not p.is_file():
            raise SessionFileError(f"the session lacks '{name}', which its manifest names")
        return p

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        self.size(name)  # a missing member is named
        if self.zf is not None:
            with self.zf.open(name) as f:
                yield f
        else:
            with open(self._file(name), "rb") as f:
                yield f

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()


class _Reader:
    """Typed access to the manifest: each getter names the key path that is wrong."""

    def __init__(self, src: _Source) -> None:
        self.src = src

    @staticmethod
    def fail(where: str, what: str) -> SessionFileError:
        return SessionFileError(f"the session's manifest is malformed at '{where}': {what}")

    def get(self, d: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, optional: bool = False):
        if key not in d:
            raise self.fail(_at(where, key), "missing")
        v = d[key]
        if v is None and optional:
            return None
        if isinstance(v, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(_at(where, key), f"expected {_kind(kind)}, found {type(v).__name__}")
        if not isinstance(v, kind):
            raise self.fail(_at(where, key), f"expected {_kind(kind)}, found {type(v).__name__}")
        return v

    def obj(self, d: Mapping[str, Any], key: str, where: str, optional: bool = False) -> dict[str, Any] | None:
        return self.get(d, key, dict, where, optional)

    def npy(self, name: Any, where: str, dtypes: tuple[str, ...], ndims: tuple[int, ...]) -> np.ndarray:
        if not isinstance(name, str):
            raise self.fail(where, "expected a member name")
        if not name.endswith(".npy"):
            raise self.fail(where, f"'{name}' is not an .npy member")
        size = self.src.size(name)
        bad = SessionFileError(f"'{name}' in the session is not a valid array for {where}")
        with self.src.open(name) as f:
            try:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise bad
            except ValueError:
                raise bad from None
        if dtype.hasobject:
            raise SessionFileError(f"'{name}' in the session holds Python objects, which rwgui never reads")
        if dtype.name not in dtypes or len(shape) not in ndims:
            raise SessionFileError(
                f"'{name}' in the session is {dtype.name} with {len(shape)} dimensions; {where} needs "
                f"{' or '.join(dtypes)} with {' or '.join(map(str, ndims))}"
            )
        if math.prod(shape) * dtype.itemsize > size:
            raise bad
        with self.src.open(name) as f:
            try:
                arr = np.load(io.BytesIO(f.read()), allow_pickle=False)
            except (ValueError, OSError, EOFError):
                raise bad from None
        if arr.dtype.kind == "f" and not np.isfinite(arr).all() and not where.startswith("curves"):
            raise SessionFileError(f"'{name}' in the session holds values that are not numbers ({where})")
        return np.ascontiguousarray(arr)

    def png(self, name: Any, where: str) -> np.ndarray:
        if not isinstance(name, str) or not name.endswith(".png"):
            raise self.fail(where, "expected a .png member name")
        buf = np.frombuffer(self.src.read(name), np.uint8)
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
        if img is None:
            raise SessionFileError(f"'{name}' in the session is not a readable PNG ({where})")
        if img.ndim == 3 and img.shape[2] == 3:
            img = img[:, :, ::-1]
        elif img.ndim == 3 and img.shape[2] == 4:
            img = img[:, :, [2, 1, 0, 3]]
        return np.ascontiguousarray(img)

    def mask(self, name: Any, where: str, shape: tuple[int, int] | None) -> np.ndarray | None:
        if name is None:
            return None
        if isinstance(name, str) and name.endswith(".npy"):
            m = self.npy(name, where, ("float32",), (2,))
        else:
            img = self.png(name, where)
            if img.dtype != np.uint8 or img.ndim != 2:
                raise SessionFileError(f"'{name}' in the session is not an 8-bit gray mask ({where})")
            m = img.astype(np.float32) / np.float32(255)
        if shape is not None and m.shape != shape:
            raise SessionFileError(
                f"the session's {where} is {m.shape[1]}x{m.shape[0]} but its photo is {shape[1]}x{shape[0]}"
            )
        if m.min(initial=0) < 0 or m.max(initial=0) > 1:
            raise SessionFileError(f"the session's {where} holds values outside [0, 1]")
        return m

    def config(self, d: Mapping[str, Any], key: str, where: str) -> RunConfig | None:
        v = self.get(d, key, dict, where, optional=True)
        if v is None:
            return None
        try:
            return RunConfig.from_dict(v)
        except RwguiError as exc:
            raise self.fail(_at(where, key), str(exc)) from None
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise self.fail(_at(where, key), f"not valid settings ({exc})") from None


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _key(v: Any, where: str) -> Key:
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return int(v)
    if isinstance(v, str) and v in _SPECIAL_KEYS:
        return _SPECIAL_KEYS[v]
    if isinstance(v, str) and v:
        return v  # a named entry (a Lab result taken)
    raise _Reader.fail(where, f"{v!r} is not an iteration, one of {sorted(_SPECIAL_KEYS)} or a name")


def _float01(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise SessionFileError(f"the session's {where} holds values outside [0, 1]")
    return arr


def _read_manifest(src: _Source) -> dict[str, Any]:
    if src.size(MANIFEST) > MAX_MANIFEST_BYTES:
        raise SessionFileError("the session's manifest is too large to be one")
    try:
        m = json.loads(src.read(MANIFEST).decode("utf-8"))
    except UnicodeDecodeError:
        raise SessionFileError("the session's manifest is not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise SessionFileError(f"the session's manifest is not valid JSON: {exc}") from None
    if not isinstance(m, dict):
        raise SessionFileError("the session's manifest is not a JSON object")
    if m.get("format") != FORMAT:
        raise SessionFileError("this file is not an rwgui session (its manifest names another format)")
    version = m.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _Reader.fail("version", "expected an integer")
    if version > FORMAT_VERSION:
        raise SessionFileError(
            f"the session was saved by a newer rwgui (format version {version}); this rwgui reads version "
            f"{FORMAT_VERSION} and older. Update rwgui to open it."
        )
    if version < 1:
        raise _Reader.fail("version", f"{version} is not a version")
    return m


def _read_photo(r: _Reader, m: dict[str, Any]) -> Photo | None:
    p = r.obj(m, "photo", "", optional=True)
    if p is None:
        return None
    w = "photo"
    meta_d = r.obj(p, "meta", w)
    assert meta_d is not None
    kinds: dict[str, type | tuple[type, ...]] = {
        "path": str,
        "bit_depth": int,
        "channels": int,
        "has_alpha": bool,
        "orientation": int,
        "format": str,
    }
    meta = ImageMeta(**{k: r.get(meta_d, k, t, "photo.meta") for k, t in kinds.items()})
    if meta.bit_depth not in (8, 16):
        raise r.fail("photo.meta.bit_depth", f"{meta.bit_depth} is not 8 or 16")
    pixels = _float01(r.npy(p.get("pixels"), "photo.pixels", ("float32",), (3,)), "photo")
    if pixels.shape[2] not in (1, 3) or 0 in pixels.shape:
        raise SessionFileError(f"the session's photo has {pixels.shape[2]} channels; rwgui holds 1 or 3")
    hw = pixels.shape[:2]
    alpha = None
    if r.get(p, "alpha", str, w, optional=True) is not None:
        alpha = _float01(r.npy(p["alpha"], "photo.alpha", ("float32",), (2,)), "photo's alpha")
        if alpha.shape != hw:
            raise SessionFileError("the session's alpha is not the size of its photo")
    gt = None
    if r.get(p, "ground_truth", str, w, optional=True) is not None:
        gt = _float01(r.npy(p["ground_truth"], "photo.ground_truth", ("float32",), (3,)), "ground truth")
    pmask = r.mask(r.get(p, "mask", str, w, optional=True), "photo's mask", None)
    return Photo(
        name=r.get(p, "name", str, w),
        pixels=pixels,
        alpha=alpha,
        meta=meta,
        path=r.get(p, "path", str, w, optional=True),
        ground_truth=gt,
        sample=r.get(p, "sample", str, w, optional=True),
        mask=pmask,
    )


def _pair(r: _Reader, d: dict[str, Any], key: str, where: str) -> tuple[int, int]:
    v = r.get(d, key, list, where)
    if len(v) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v):
        raise r.fail(_at(where, key), "expected two positive integers")
    return int(v[0]), int(v[1])


def _read_working(r: _Reader, m: dict[str, Any], where: str = "") -> Working | None:
    d = r.obj(m, "working", where, optional=True)
    if d is None:
        return None
    w = f"{where}.working" if where else "working"
    mode = r.get(d, "mode", str, w)
    if mode not in RUN_MODES:
        raise r.fail(f"{w}.mode", f"{mode!r} is not {', '.join(RUN_MODES[:-1])} or {RUN_MODES[-1]}")
    box_v = r.get(d, "box", list, w, optional=True)
    box = None
    if box_v is not None:
        if len(box_v) != 4 or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in box_v):
            raise r.fail(f"{w}.box", "expected four non-negative integers")
        box = (box_v[0], box_v[1], box_v[2], box_v[3])
    return Working(
        mode, r.get(d, "task", str, w), _pair(r, d, "full_size", w), _pair(r, d, "size", w), box,
        int(r.get(d, "margin", int, w)),
    )  # fmt: skip


def _read_history(r: _Reader, m: dict[str, Any]) -> tuple[tuple[KeptEntry, ...], int | None, Key | None, int]:
    h = r.obj(m, "history", "")
    assert h is not None
    entries: list[KeptEntry] = []
    seen: set[Key] = set()
    shape: tuple[int, ...] | None = None
    for i, e in enumerate(r.get(h, "entries", list, "history")):
        w = f"history.entries[{i}]"
        if not isinstance(e, dict):
            raise r.fail(w, "expected an object")
        key = _key(e.get("key"), f"{w}.key")
        if key in seen:
            raise r.fail(f"{w}.key", f"{key} appears twice")
        seen.add(key)
        it = r.get(e, "iteration", int, w)
        if isinstance(key, int) and it != key:
            raise r.fail(f"{w}.iteration", "differs from its key")
        px = r.npy(e.get("pixels"), f"{w}.pixels", ("uint16",), (3,))
        if shape is not None and px.shape != shape:
            raise SessionFileError(f"the session's kept images differ in size ({w})")
        shape = px.shape
        thumb = r.png(e.get("thumb"), f"{w}.thumb")
        if thumb.dtype != np.uint8 or thumb.ndim != 3 or thumb.shape[2] != 4:
            raise SessionFileError(f"the session's thumbnail at {w} is not an 8-bit RGBA PNG")
        label = r.get(e, "label", str, w) if "label" in e else ""
        entries.append(KeptEntry(key, int(it), px, thumb, bool(r.get(e, "pinned", bool, w)), label))
    pick = r.get(h, "pick_iteration", int, "history", optional=True)
    if pick is not None and pick not in seen:
        raise r.fail("history.pick_iteration", f"iteration {pick} is not among the kept iterates")
    if pick is None and PICK_AVERAGE in seen:
        raise r.fail("history.pick_iteration", "an average at the pick is kept but no pick is named")
    chosen_v = h.get("chosen")
    chosen = None if chosen_v is None else _key(chosen_v, "history.chosen")
    if chosen is not None and chosen not in seen:
        raise r.fail("history.chosen", f"{chosen} is not among the kept images")
    dropped = r.get(h, "dropped", int, "history")
    return tuple(entries), pick, chosen, int(dropped)


def _read_curves(r: _Reader, m: dict[str, Any]) -> dict[str, np.ndarray]:
    c = r.obj(m, "curves", "")
    assert c is not None
    rows = r.get(c, "rows", int, "curves")
    cols: dict[str, np.ndarray] = {}
    for name, member in r.get(c, "columns", dict, "curves").items():
        a = r.npy(member, f"curves.{name}", ("float64",), (1,))
        if len(a) != rows:
            raise r.fail(f"curves.columns.{name}", f"{len(a)} rows where the curves have {rows}")
        cols[name] = a
    if cols and "iteration" not in cols:
        raise r.fail("curves.columns", "no 'iteration' column")
    return cols


def _read_lab(
    r: _Reader, m: dict[str, Any], kept: set[Key]
) -> tuple[tuple[LabResult, ...], LabResult | None, tuple[Taken, ...]]:
    lab = r.obj(m, "lab", "")
    assert lab is not None
    records = []
    for i, d in enumerate(r.get(lab, "results", list, "lab")):
        w = f"lab.results[{i}]"
        if not isinstance(d, dict):
            raise r.fail(w, "expected an object")
        cfg = r.config(d, "config", w)
        if cfg is None:
            raise r.fail(f"{w}.config", "missing")
        psnr = r.get(d, "psnr", (int, float), w, optional=True)
        image = _float01(r.npy(d.get("image"), f"{w}.image", ("float32",), (3,)), f"Lab result {i}")
        records.append(
            LabResult(
                int(r.get(d, "key", int, w)),
                r.get(d, "variant_label", str, w),
                cfg,
                int(r.get(d, "pick_iteration", int, w)),
                image,
                None if psnr is None else float(psnr),
                bool(r.get(d, "best", bool, w)),
            )
        )
    shown = r.get(lab, "shown", int, "lab")
    if not 0 <= shown <= len(records):
        raise r.fail("lab.shown", f"{shown} does not fit {len(records)} results")
    taken_i = r.get(lab, "taken", int, "lab", optional=True)
    if taken_i is not None and not 0 <= taken_i < len(records):
        raise r.fail("lab.taken", f"{taken_i} is not a result's index")
    taken = []
    for i, d in enumerate(r.get(lab, "in_history", list, "lab") if "in_history" in lab else []):
        w = f"lab.in_history[{i}]"
        if not isinstance(d, dict):
            raise r.fail(w, "expected an object")
        key = r.get(d, "key", str, w)
        if key not in kept or not _is_named(key):
            raise r.fail(f"{w}.key", f"{key!r} is not a named entry of the history")
        ri = r.get(d, "result", int, w)
        if not 0 <= ri < len(records):
            raise r.fail(f"{w}.result", f"{ri} is not a result's index")
        wmask = r.mask(r.get(d, "working_mask", str, w, optional=True), f"{w}.working_mask", None)
        taken.append(Taken(key, records[ri], _read_working(r, d, w), wmask))
    return tuple(records[:shown]), None if taken_i is None else records[taken_i], tuple(taken)


def read_session(path: str | os.PathLike[str]) -> SessionData:
    """Read and check a session (a ``.rwgui`` archive or its unzipped folder); SessionFileError says what is
    wrong. The result is checked to the point that :func:`apply_session` cannot fail on it."""
    p = Path(path)
    if not p.exists():
        raise SessionFileError(f"no session at '{p}'")
    try:
        src = _Source(p)
    except OSError as exc:
        raise SessionFileError(f"cannot read the session '{p}': {exc.strerror or exc}") from None
    try:
        return _read(src)
    except OSError as exc:
        raise SessionFileError(f"cannot read the session '{p}': {exc.strerror or exc}") from None
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise SessionFileError(f"the session '{p}' is damaged: {exc}") from None
    finally:
        src.close()


def _read(src: _Source) -> SessionData:
    m = _read_manifest(src)
    r = _Reader(src)
    saved_at = r.get(m, "saved_at", (int, float), "")
    photo = _read_photo(r, m)
    hw = None if photo is None else photo.pixels.shape[:2]
    mask = r.mask(r.get(m, "mask", str, "", optional=True), "mask", hw)
    working = _read_working(r, m)
    wmask = r.mask(r.get(m, "working_mask", str, "", optional=True), "working mask", None)
    entries, pick, chosen, dropped = _read_history(r, m)
    data = SessionData(
        photo=photo,
        mask=mask,
        settings=r.config(m, "settings", ""),
        run_config=r.config(m, "run_config", ""),
        working=working,
        working_mask=wmask,
        entries=entries,
        pick_iteration=pick,
        chosen=chosen,
        dropped=dropped,
        curves=_read_curves(r, m),
        saved_at=float(saved_at),
    )
    data.lab_results, data.lab_result, data.taken = _read_lab(r, m, {e.key for e in entries})
    data.fill_history(IterateHistory(cap_bytes=2**62, max_entries=2**31))  # every check the history makes
    return data


def is_session_path(path: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` names a session rather than a photo: a ``.rwgui`` file, or a folder or ZIP archive
    holding a session manifest (the command line's ``rwgui SESSION``)."""
    if not path:
        return False
    p = Path(path)
    if p.suffix.lower() == SUFFIX:
        return True
    if p.is_dir():
        return (p / MANIFEST).is_file()
    return False


def peek_session(path: str | os.PathLike[str]) -> tuple[float, str]:
    """When a session was saved and a one-line description (photo, kept iterates), from its manifest alone:
    cheap enough to list autosaves at start-up. SessionFileError when the manifest cannot be read."""
    p = Path(path)
    try:
        src = _Source(p)
    except OSError as exc:
        raise SessionFileError(f"cannot read the session '{p}': {exc.strerror or exc}") from None
    try:
        m = _read_manifest(src)
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise SessionFileError(f"the session '{p}' is damaged: {exc}") from None
    finally:
        src.close()
    saved_at = m.get("saved_at")
    saved_at = float(saved_at) if isinstance(saved_at, (int, float)) and not isinstance(saved_at, bool) else 0.0
    photo = m.get("photo")
    name = photo.get("name") if isinstance(photo, dict) and isinstance(photo.get("name"), str) else "no photo"
    h = m.get("history")
    entries = h.get("entries") if isinstance(h, dict) else None
    n = (
        sum(1 for e in entries if isinstance(e, dict) and isinstance(e.get("key"), int))
        if isinstance(entries, list)
        else 0
    )
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(saved_at)) if saved_at else "at an unknown time"
    return saved_at, f"{name}, {n} kept iterate{'s' if n != 1 else ''}, saved {when}"
