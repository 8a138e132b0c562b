"""Read and write photos as float32 arrays in [0, 1], keeping what the file says.

Why this module exists: the obvious one-liners lose information silently. ``cv2.imread`` cannot open
non-ASCII paths on Windows and ignores EXIF orientation for JPEG/PNG/WebP while (OpenCV 5) applying it for
TIFF; Pillow opens 16-bit RGB(A) PNG and TIFF as 8-bit. So we read the bytes ourselves
(``np.fromfile`` works with any path), look at the header with a small parser of our own (size before decoding,
EXIF orientation), neutralise the orientation tag in our copy of the bytes so that OpenCV decodes the raw
pixels whatever its version does, decode with ``cv2.imdecode(IMREAD_UNCHANGED)`` (keeps 16-bit and alpha) and
then apply the orientation ourselves. Only numpy and OpenCV are needed: core stays Qt- and Pillow-free.

Choices worth knowing:
* 32-bit float TIFFs (and other float files OpenCV decodes) are accepted: NaN becomes 0, values are clipped
  to [0, 1], and ``meta.bit_depth`` is 16 so that export keeps more than 8 bits. Signed or 32-bit integer
  samples are rejected with a message saying how to convert them.
* Gray + alpha PNGs decode as gray pixels (C = 1) plus alpha; ``meta.channels`` is then 2, as in the file.
* Written files carry no EXIF or ICC profile: the rotation is baked into the pixels, so a missing
  orientation tag (= 1) is the correct one.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rwgui.core.atomic import atomic_file
from rwgui.core.errors import ImageReadError, ImageTooLargeError, ImageWriteError, MaskError
from rwgui.core.pixels import as_float, float_to_u8, float_to_u16

PathLike = str | os.PathLike

#: Extensions offered in open dialogs. OpenCV may decode more (PPM, PFM, ...); ``read`` accepts those too.
READ_EXTENSIONS = ("png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp")
#: Extensions ``write`` understands.
WRITE_EXTENSIONS = ("png", "tif", "tiff", "jpg", "jpeg", "bmp", "webp")

_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageMeta:
    """What the file held, so that export can write the result back in the same kind."""

    path: str
    bit_depth: int  # 8 or 16 (float files report 16)
    channels: int  # as in the file: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    has_alpha: bool
    orientation: int  # EXIF orientation that was applied; 1 if none
    format: str  # lower-case extension of the path, e.g. 'png', 'jpg', 'tif'


@dataclass
class Image:
    """A decoded photo: ``pixels`` HxWxC float32 in [0, 1] (C = 1 or 3, RGB order), optional alpha HxW."""

    pixels: np.ndarray
    alpha: np.ndarray | None
    meta: ImageMeta

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), the order people and Qt use."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


# --------------------------------------------------------------------------------------------- header probe
@dataclass
class _Header:
    kind: str | None = None  # 'png', 'jpeg', 'tiff', 'bmp', 'webp' or None (unknown to us)
    width: int | None = None
    height: int | None = None
    orientation: int = 1
    orientation_at: tuple[int, str] | None = None  # byte offset of the SHORT value and its byte order
    png_color_type: int | None = None
    png_exif_chunk: tuple[int, int] | None = None  # (offset of the chunk type, data length): CRC to redo


def _parse_ifd0(buf: memoryview, base: int, head: _Header, sizes: bool) -> None:
    """Read orientation (and, for TIFF files, width/height) from the first IFD of a TIFF block at ``base``."""
    order = bytes(buf[base : base + 2])
    end = {b"II": "<", b"MM": ">"}.get(order)
    if end is None:
        return
    magic, off = struct.unpack_from(end + "HI", buf, base + 2)
    if magic != 42:  # BigTIFF (43) and garbage: leave it to OpenCV
        return
    count = struct.unpack_from(end + "H", buf, base + off)[0]
    for i in range(min(count, 4096)):
        p = base + off + 2 + 12 * i
        tag, typ, n = struct.unpack_from(end + "HHI", buf, p)
        if n != 1 or typ not in (3, 4):
            continue
        value = struct.unpack_from(end + ("H" if typ == 3 else "I"), buf, p + 8)[0]
        if tag == _ORIENTATION_TAG and typ == 3 and 1 <= value <= 8:
            head.orientation, head.orientation_at = value, (p + 8, end)
        elif sizes and tag == 256:
            head.width = value
        elif sizes and tag == 257:
            head.height = value


def _probe_jpeg(buf: memoryview, head: _Header) -> None:
    i = 2
    while i + 4 <= len(buf):
        if buf[i] != 0xFF:
            return
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no more headers
            return
        length = struct.unpack_from(">H", buf, i + 2)[0]
        seg = i + 4
        if marker == 0xE1 and bytes(buf[seg : seg + 6]) == b"Exif\0\0" and head.orientation_at is None:
            _parse_ifd0(buf, seg + 6, head, sizes=False)
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            head.height, head.width = struct.unpack_from(">HH", buf, seg + 1)
        i += 2 + length


def _chunks(buf: memoryview, i: int, riff: bool) -> Iterator[tuple[bytes, int, int]]:
    """(type, data offset, data length) of each chunk from offset ``i``. PNG and RIFF (WebP) walk their chunks
    the same way and differ only in the 8-byte header and what follows the data: PNG has a big-endian length
    then the type, and a 4-byte CRC after the data; RIFF has the type then a little-endian length, and pads
    the data to an even length."""
    while i + 8 <= len(buf):
        if riff:
            ctype, length = struct.unpack_from("<4sI", buf, i)
            after = length & 1
        else:
            length, ctype = struct.unpack_from(">I4s", buf, i)
            after = 4
        yield ctype, i + 8, length
        i += 8 + length + after


def _probe_png(buf: memoryview, head: _Header) -> None:
    for ctype, data, length in _chunks(buf, 8, riff=False):
        if ctype == b"IHDR":
            head.width, head.height = struct.unpack_from(">II", buf, data)
            head.png_color_type = buf[data + 9]
        elif ctype == b"eXIf":
            _parse_ifd0(buf, data, head, sizes=False)
            head.png_exif_chunk = (data - 4, length)
        elif ctype == b"IEND":
            return


def _probe_webp(buf: memoryview, head: _Header) -> None:
    for fourcc, data, _length in _chunks(buf, 12, riff=True):
        if fourcc == b"VP8X":
            w = int.from_bytes(buf[data + 4 : data + 7], "little") + 1
            h = int.from_bytes(buf[data + 7 : data + 10], "little") + 1
            head.width, head.height = w, h
        elif fourcc == b"VP8L" and head.width is None:
            bits = struct.unpack_from("<I", buf, data + 1)[0]
            head.width, head.height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        elif fourcc == b"VP8 " and head.width is None:
            w, h = struct.unpack_from("<HH", buf, data + 6)
            head.width, head.height = w & 0x3FFF, h & 0x3FFF
        elif fourcc == b"EXIF":
            start = data + 6 if bytes(buf[data : data + 6]) == b"Exif\0\0" else data
            _parse_ifd0(buf, start, head, sizes=False)


def _probe(buf: np.ndarray) -> _Header:
    """Identify the format and read size and orientation without decoding. Never raises."""
    mv = buf.data  # a memoryview of the bytes, no copy
    head = _Header()
    magic = bytes(mv[:12])
    try:
        if magic.startswith(b"\x89PNG\r\n\x1a\n"):
            head.kind = "png"
            _probe_png(mv, head)
        elif magic.startswith(b"\xff\xd8"):
            head.kind = "jpeg"
            _probe_jpeg(mv, head)
        elif magic[:4] in (b"II*\0", b"MM\0*"):
            head.kind = "tiff"
            _parse_ifd0(mv, 0, head, sizes=True)
        elif magic.startswith(b"BM"):
            head.kind = "bmp"
            if struct.unpack_from("<I", mv, 14)[0] == 12:  # OS/2 core header: 16-bit sizes
                head.width, head.height = struct.unpack_from("<HH", mv, 18)
            else:
                w, h = struct.unpack_from("<ii", mv, 18)
                head.width, head.height = abs(w), abs(h)
        elif magic[:4] == b"RIFF" and magic[8:12] == b"WEBP":
            head.kind = "webp"
            _probe_webp(mv, head)
    except (struct.error, IndexError, ValueError):
        pass  # truncated header: the decoder will say whether the file is usable
    return head


# ---------------------------------------------------------------------------------------------------- read
def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 1..8 (the transform that makes the stored pixels upright)."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(a, -1)
    if orientation == 7:
        return a[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(a, 1)
    return a


def _check_size(path: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"'{path}' is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels), more than the "
            f"{max_pixels / 1e6:.1f} megapixels rwgui opens. Downscale or crop it in an image editor first."
        )


def _load_bytes(path: str) -> np.ndarray:
    p = Path(path)
    if p.is_dir():
        raise ImageReadError(f"Cannot read '{path}': it is a folder, not a photo. Pick an image file.")
    try:
        buf = np.fromfile(p, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageReadError(f"Cannot read '{path}': the file does not exist. Check the path.") from None
    except OSError as exc:
        raise ImageReadError(f"Cannot read '{path}': {exc.strerror or exc}. Check the file's permissions.") from exc
    if buf.size == 0:
        raise ImageReadError(f"Cannot read '{path}': the file is empty (0 bytes). Pick another file.")
    return buf


def _to_float(arr: np.ndarray, path: str) -> tuple[np.ndarray, int]:
    if arr.dtype == np.uint8:
        return as_float(arr), 8  # exactly k/255, so round trips are exact
    if arr.dtype == np.uint16:
        return as_float(arr), 16
    if arr.dtype in (np.float32, np.float64):
        out = np.nan_to_num(arr.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(out, 0.0, 1.0), 16
    raise ImageReadError(
        f"Cannot read '{path}': its samples are {arr.dtype}, which rwgui does not handle. "
        "Save it as 8- or 16-bit unsigned (or 32-bit float) PNG/TIFF."
    )


def read(path: PathLike, *, max_pixels: int = 64_000_000) -> Image:
    """Read a photo: upright (EXIF orientation applied), RGB, float32 in [0, 1], alpha split off.

    Raises ImageReadError for a missing/empty/corrupt/unknown file and ImageTooLargeError when
    width*height > max_pixels (checked from the header before decoding for PNG/JPEG/TIFF/BMP/WebP).
    """
    spath = os.fspath(path)
    buf = _load_bytes(spath)
    head = _probe(buf)
    if head.width and head.height:
        _check_size(spath, head.width, head.height, max_pixels)
    if head.orientation_at is not None:  # decode the stored pixels; we rotate below, whatever OpenCV does
        at, end = head.orientation_at
        buf[at : at + 2] = np.frombuffer(struct.pack(end + "H", 1), dtype=np.uint8)
        if head.png_exif_chunk is not None:  # keep the chunk's CRC valid so libpng does not drop or reject it
            start, length = head.png_exif_chunk
            crc = zlib.crc32(buf.data[start : start + 4 + length])
            buf[start + 4 + length : start + 8 + length] = np.frombuffer(struct.pack(">I", crc), dtype=np.uint8)
    try:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        arr = None
    if arr is None or arr.size == 0:
        if head.kind is None:
            raise ImageReadError(
                f"Cannot read '{spath}': not a supported image format. Save it as PNG, JPEG, TIFF, BMP or WebP."
            )
        raise ImageReadError(
            f"Cannot read '{spath}': the {head.kind.upper()} data is corrupt or truncated. "
            "Re-export the photo or pick another file."
        )
    _check_size(spath, arr.shape[1], arr.shape[0], max_pixels)
    values, bit_depth = _to_float(arr, spath)
    if values.ndim == 2:
        values = values[:, :, None]
    n = values.shape[2]
    alpha: np.ndarray | None = None
    if n == 1:
        pixels, channels = values, 1
    elif n == 2:
        pixels, alpha, channels = values[:, :, :1], values[:, :, 1], 2
    elif n == 3:
        pixels, channels = values[:, :, ::-1], 3
    elif n == 4 and head.png_color_type == 4:  # gray+alpha PNG, expanded to BGRA by OpenCV
        pixels, alpha, channels = values[:, :, :1], values[:, :, 3], 2
    elif n == 4:
        pixels, alpha, channels = values[:, :, 2::-1], values[:, :, 3], 4
    else:
        raise ImageReadError(f"Cannot read '{spath}': {n} channels per pixel is not supported. Save it as RGB(A).")
    pixels = np.ascontiguousarray(_orient(pixels, head.orientation))
    if alpha is not None:
        alpha = np.ascontiguousarray(_orient(alpha, head.orientation))
    fmt = Path(spath).suffix.lower().lstrip(".") or (head.kind or "")
    meta = ImageMeta(spath, bit_depth, channels, alpha is not None, head.orientation, fmt)
    return Image(pixels, alpha, meta)


# --------------------------------------------------------------------------------------------------- write
@dataclass(frozen=True)
class _WriteSpec:
    ext: str
    sixteen: bool  # can store 16-bit samples
    alpha: bool  # can store an alpha channel
    params: tuple[int, ...]


_WRITERS = {
    "png": _WriteSpec(".png", True, True, (cv2.IMWRITE_PNG_COMPRESSION, 3)),  # ~level 1 speed, smaller files
    "tif": _WriteSpec(".tif", True, True, ()),
    "tiff": _WriteSpec(".tif", True, True, ()),
    "jpg": _WriteSpec(".jpg", False, False, (cv2.IMWRITE_JPEG_QUALITY, 95)),
    "jpeg": _WriteSpec(".jpg", False, False, (cv2.IMWRITE_JPEG_QUALITY, 95)),
    "bmp": _WriteSpec(".bmp", False, True, ()),
    "webp": _WriteSpec(".webp", False, True, ()),  # OpenCV's default WebP quality (> 100 / unset) is lossless
}


def _encodable(pixels: np.ndarray, alpha: np.ndarray | None, bit_depth: int) -> np.ndarray:
    """HxWxC RGB(+alpha) floats -> the BGR(A) integer array OpenCV encodes."""
    px = as_float(pixels)
    if px.ndim == 2:
        px = px[:, :, None]
    if px.ndim != 3 or px.shape[2] not in (1, 3):
        raise ValueError(f"pixels must be HxW, HxWx1 or HxWx3, got shape {px.shape}")
    quant = float_to_u16 if bit_depth == 16 else float_to_u8
    out = quant(px[:, :, ::-1])  # RGB -> BGR (a no-op for gray)
    if alpha is None:
        return out[:, :, 0] if out.shape[2] == 1 else out
    a = as_float(alpha)
    if a.shape != px.shape[:2]:
        raise ValueError(f"alpha must be {px.shape[:2]} (HxW) like the pixels, got {a.shape}")
    if out.shape[2] == 1:  # OpenCV encoders take 1, 3 or 4 channels: store gray+alpha as BGRA
        out = np.repeat(out, 3, axis=2)
    return np.dstack([out, quant(a)])


def _atomic_write_bytes(path: Path, data: np.ndarray) -> None:
    """Write to a hidden temp file beside ``path``, then rename: readers never see half a file."""
    opened = False
    try:
        with atomic_file(path, "wb") as f:
            opened = True
            f.write(np.ascontiguousarray(data).data)
    except OSError as exc:
        if not opened:
            reason = "the folder does not exist" if isinstance(exc, FileNotFoundError) else exc.strerror or str(exc)
            raise ImageWriteError(f"Cannot write '{path}': {reason}. Pick a folder you can write to.") from exc
        raise ImageWriteError(
            f"Cannot write '{path}': {exc.strerror or exc}. Check the disk space and that the path is not a folder."
        ) from exc


def write(path: PathLike, pixels: np.ndarray, *, bit_depth: int = 8, alpha: np.ndarray | None = None) -> None:
    """Write HxWxC (C = 1 or 3) [0, 1] pixels atomically; the format comes from the extension.

    PNG and TIFF store 8 or 16 bits and alpha. JPEG (quality 95) is 8-bit and has no alpha: alpha is dropped.
    BMP and WebP (lossless) are 8-bit and keep alpha. 16-bit to an 8-bit-only format is an ImageWriteError;
    use ``write_like`` to pick the depth automatically.
    """
    p = Path(os.fspath(path))
    fmt = p.suffix.lower().lstrip(".")
    spec = _WRITERS.get(fmt)
    if spec is None:
        raise ImageWriteError(
            f"Cannot write '{p}': unknown file type '{p.suffix or '(none)'}'. Use .png, .tif, .jpg, .bmp or .webp."
        )
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    if bit_depth == 16 and not spec.sixteen:
        raise ImageWriteError(f"Cannot write '{p}': {fmt.upper()} stores 8 bits only. Use PNG or TIFF for 16-bit.")
    arr = _encodable(pixels, alpha if spec.alpha else None, bit_depth)
    try:
        ok, data = cv2.imencode(spec.ext, arr, list(spec.params))
    except cv2.error as exc:
        raise ImageWriteError(f"Cannot write '{p}': OpenCV could not encode it ({exc}).") from exc
    if not ok or data is None:
        raise ImageWriteError(f"Cannot write '{p}': OpenCV could not encode it as {fmt.upper()}.")
    _atomic_write_bytes(p, data)


def write_like(path: PathLike, pixels: np.ndarray, meta: ImageMeta, alpha: np.ndarray | None = None) -> None:
    """Write with the source's bit depth where the output format can hold it (16-bit only for PNG/TIFF)."""
    spec = _WRITERS.get(Path(os.fspath(path)).suffix.lower().lstrip("."))
    bit_depth = 16 if meta.bit_depth == 16 and spec is not None and spec.sixteen else 8
    write(path, pixels, bit_depth=bit_depth, alpha=alpha)


def write_result(path: PathLike, pixels: np.ndarray, meta: ImageMeta, alpha: np.ndarray | None) -> None:
    """Write a restored image like the photo it came from (``meta`` and ``alpha`` are the photo's).

    The photo's bit depth where the format holds it, and its alpha, resized (bicubic, clipped) when the result
    has another size (super-resolution, a downscaled working size). The CLI and the studio's Save result both
    write through here, so the same result gives the same file."""
    px = np.asarray(pixels)
    h, w = px.shape[:2]
    if alpha is not None and alpha.shape[:2] != (h, w):
        alpha = np.clip(cv2.resize(np.asarray(alpha, np.float32), (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)
    write_like(path, px, meta, alpha=alpha)


# ---------------------------------------------------------------------------------------------------- masks
def read_mask(path: PathLike, shape_hw: tuple[int, int]) -> np.ndarray:
    """Read a mask file (white = known, black = hole) as float32 HxW with 1 = known, 0 = hole.

    Any channel count and bit depth: the mean of the colour channels is thresholded at half range; alpha is
    ignored. The mask is oriented like a photo (EXIF). Raises MaskError on a size mismatch or no known pixel.
    """
    img = read(path)
    h, w = shape_hw
    mh, mw = img.pixels.shape[:2]
    if (mh, mw) != (h, w):
        raise MaskError(
            f"The mask '{img.meta.path}' is {mw}x{mh} pixels but the photo is {w}x{h} (width x height). "
            "Paint or export the mask at the photo's size."
        )
    known = (img.pixels.mean(axis=2) >= 0.5).astype(np.float32)
    if not known.any():
        raise MaskError(
            f"The mask '{img.meta.path}' has no known pixel (it is all black). White marks the pixels to keep."
        )
    return known


def write_mask(path: PathLike, mask: np.ndarray) -> None:
    """Write a HxW mask (1 = known) as an 8-bit PNG with 255 = known: lossless, readable everywhere."""
    p = Path(os.fspath(path))
    if p.suffix.lower() != ".png":
        raise ImageWriteError(f"Cannot write mask '{p}': masks are saved as PNG. Use a .png name.")
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be HxW, got shape {m.shape}")
    write(p, (m >= 0.5).astype(np.float32), bit_depth=8)
