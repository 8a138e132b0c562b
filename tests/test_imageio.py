"""Round trips of rwgui.core.imageio on real files in tmp_path (small images, no Qt)."""

from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from rwgui.core import imageio
from rwgui.core.errors import ImageReadError, ImageTooLargeError, ImageWriteError, MaskError
from rwgui.core.pixels import float_to_u8, float_to_u16

PIL = pytest.importorskip("PIL")
from PIL import Image as PILImage  # noqa: E402
from PIL import ImageOps  # noqa: E402


def _rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _levels(bits: int, shape: tuple[int, ...]) -> np.ndarray:
    """Random floats that sit exactly on the quantisation grid, so round trips must be exact."""
    top = 255 if bits == 8 else 65535
    return _rng().integers(0, top + 1, shape).astype(np.float32) / np.float32(top)


def _exif(orientation: int) -> bytes:
    ex = PILImage.Exif()
    ex[0x0112] = orientation
    return ex.tobytes()


# --------------------------------------------------------------------------------------- lossless round trips
@pytest.mark.parametrize("ext", ["png", "tif"])
@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_lossless_round_trip(tmp_path: Path, ext: str, bits: int, channels: int, with_alpha: bool) -> None:
    px = _levels(bits, (7, 9, channels))
    alpha = _levels(bits, (7, 9)) if with_alpha else None
    path = tmp_path / f"img.{ext}"
    imageio.write(path, px, bit_depth=bits, alpha=alpha)
    img = imageio.read(path)
    assert img.meta.bit_depth == bits
    assert img.meta.format == ext
    assert img.meta.has_alpha is with_alpha
    assert img.size == (9, 7)
    assert img.pixels.dtype == np.float32
    if with_alpha:
        assert img.alpha is not None
        np.testing.assert_array_equal(img.alpha, alpha)
        # OpenCV cannot encode gray+alpha, so gray comes back as three equal channels.
        assert img.meta.channels == 4
        np.testing.assert_array_equal(img.pixels, np.broadcast_to(px, (7, 9, 3)))
    else:
        assert img.alpha is None
        assert img.meta.channels == channels
        np.testing.assert_array_equal(img.pixels, px)


def test_rgb_order_is_rgb(tmp_path: Path) -> None:
    path = tmp_path / "red.png"
    PILImage.new("RGB", (3, 2), (255, 0, 0)).save(path)
    img = imageio.read(path)
    np.testing.assert_array_equal(img.pixels[0, 0], [1.0, 0.0, 0.0])
    imageio.write(tmp_path / "red2.png", img.pixels)
    assert PILImage.open(tmp_path / "red2.png").getpixel((0, 0)) == (255, 0, 0)


def test_sixteen_bit_png_from_other_writer(tmp_path: Path) -> None:
    """A 16-bit RGBA PNG (which Pillow would read as 8-bit) keeps all 16 bits."""
    raw = _rng().integers(0, 65536, (5, 6, 4), dtype=np.uint16)
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), raw)
    img = imageio.read(path)
    assert (img.meta.bit_depth, img.meta.channels, img.meta.has_alpha) == (16, 4, True)
    np.testing.assert_array_equal(float_to_u16(img.pixels), raw[:, :, 2::-1])
    np.testing.assert_array_equal(float_to_u16(img.alpha), raw[:, :, 3])


def test_gray_alpha_png(tmp_path: Path) -> None:
    la = _rng().integers(0, 256, (4, 5, 2), dtype=np.uint8)
    path = tmp_path / "la.png"
    PILImage.fromarray(la, "LA").save(path)
    img = imageio.read(path)
    assert img.pixels.shape == (4, 5, 1)
    assert (img.meta.channels, img.meta.has_alpha) == (2, True)
    np.testing.assert_array_equal(float_to_u8(img.pixels[:, :, 0]), la[:, :, 0])
    np.testing.assert_array_equal(float_to_u8(img.alpha), la[:, :, 1])


def test_float_tiff_is_clipped_and_reported_16_bit(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    data = np.array([[[-0.5, 0.25, 2.0]]], dtype=np.float32)
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, data, photometric="rgb")
    img = imageio.read(path)
    assert img.meta.bit_depth == 16
    np.testing.assert_allclose(img.pixels[0, 0], [0.0, 0.25, 1.0])


def test_signed_tiff_is_refused_with_advice(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    path = tmp_path / "signed.tif"
    tifffile.imwrite(path, np.arange(12, dtype=np.int16).reshape(3, 4))
    with pytest.raises(ImageReadError, match="signed.tif.*int16.*16-bit unsigned"):
        imageio.read(path)


# ------------------------------------------------------------------------------------------- lossy / other formats
@pytest.mark.parametrize("ext", ["jpg", "jpeg", "bmp", "webp"])
def test_eight_bit_formats_readable(tmp_path: Path, ext: str) -> None:
    px = np.zeros((32, 16, 3), np.float32)
    px[:16] = (0.9, 0.2, 0.1)
    px[16:] = (0.1, 0.3, 0.8)
    path = tmp_path / f"img.{ext}"
    imageio.write(path, px, alpha=np.full((32, 16), 0.5, np.float32))
    img = imageio.read(path)
    assert img.meta.bit_depth == 8 and img.pixels.shape == (32, 16, 3)
    inner = np.r_[0:12, 20:32]  # JPEG's chroma upsampling blurs the rows next to the colour edge
    assert np.abs(img.pixels - px)[inner].max() < 0.05
    if ext in ("jpg", "jpeg"):
        assert img.alpha is None  # JPEG drops alpha by design
    else:
        assert img.alpha is not None and np.abs(img.alpha - 0.5).max() < 0.01


def test_sixteen_bit_to_jpeg_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError, match="8 bits"):
        imageio.write(tmp_path / "x.jpg", np.zeros((2, 2, 3)), bit_depth=16)


def test_write_like_picks_bit_depth(tmp_path: Path) -> None:
    px = _levels(16, (3, 4, 3))
    meta = imageio.ImageMeta("src.tif", 16, 3, False, 1, "tif")
    imageio.write_like(tmp_path / "a.png", px, meta)
    imageio.write_like(tmp_path / "a.jpg", px, meta)
    assert imageio.read(tmp_path / "a.png").meta.bit_depth == 16
    assert imageio.read(tmp_path / "a.jpg").meta.bit_depth == 8


def test_quantisers_round_and_clip() -> None:
    x = np.array([-1.0, 0.0, 0.5 / 255, 0.6 / 255, 0.5, 1.0, 2.0, np.nan], np.float32)
    assert float_to_u8(x).tolist() == [0, 0, 0, 1, 128, 255, 255, 0]
    assert float_to_u16(np.array([0.0, 0.5, 1.0, 3.0])).tolist() == [0, 32768, 65535, 65535]


# ----------------------------------------------------------------------------------------------- orientation
def test_jpeg_exif_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    """Stored 40 wide x 24 high with a red top-left block; orientation 6 means 'rotate 90 deg clockwise'."""
    stored = np.full((24, 40, 3), 255, np.uint8)
    stored[:8, :8] = (255, 0, 0)
    path = tmp_path / "rot.jpg"
    PILImage.fromarray(stored).save(path, quality=95, exif=_exif(6))
    img = imageio.read(path)
    assert img.meta.orientation == 6
    assert img.size == (24, 40)  # width and height swapped
    # After a clockwise turn the stored top-left corner is the top-right corner.
    np.testing.assert_allclose(img.pixels[2, -3], [1, 0, 0], atol=0.06)
    np.testing.assert_allclose(img.pixels[2, 2], [1, 1, 1], atol=0.06)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_match_pillow(tmp_path: Path, fmt: str, orientation: int) -> None:
    stored = _rng().integers(0, 256, (4, 6, 3), dtype=np.uint8)
    buf = io.BytesIO()
    extra = {"lossless": True} if fmt == "WEBP" else {}
    PILImage.fromarray(stored).save(buf, fmt, exif=_exif(orientation), **extra)
    path = tmp_path / f"o{orientation}.{fmt.lower()}"
    path.write_bytes(buf.getvalue())
    expected = np.asarray(ImageOps.exif_transpose(PILImage.open(io.BytesIO(buf.getvalue()))))
    img = imageio.read(path)
    assert img.meta.orientation == orientation
    np.testing.assert_array_equal(float_to_u8(img.pixels), expected)


def test_orientation_applies_to_alpha(tmp_path: Path) -> None:
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[0, 0, 3] = 255
    path = tmp_path / "a.png"
    PILImage.fromarray(rgba, "RGBA").save(path, exif=_exif(8))  # 8 = rotate 90 deg counter-clockwise
    img = imageio.read(path)
    assert img.alpha is not None and img.alpha.shape == (6, 4)
    assert img.alpha[-1, 0] == 1.0 and img.alpha.sum() == 1.0


# ------------------------------------------------------------------------------------------------ paths
def test_unicode_path(tmp_path: Path) -> None:
    path = tmp_path / "фото_写真.png"
    px = _levels(8, (3, 5, 3))
    imageio.write(path, px)
    assert path.exists()
    img = imageio.read(str(path))
    np.testing.assert_array_equal(img.pixels, px)
    assert img.meta.path == str(path)


def test_unicode_folder_and_mask(tmp_path: Path) -> None:
    folder = tmp_path / "Zoë's 照片"
    folder.mkdir()
    mask = np.ones((3, 4), np.float32)
    mask[1, 1] = 0
    imageio.write_mask(folder / "maske.png", mask)
    np.testing.assert_array_equal(imageio.read_mask(folder / "maske.png", (3, 4)), mask)


# ------------------------------------------------------------------------------------------------ read errors
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="nothere.png.*does not exist"):
        imageio.read(tmp_path / "nothere.png")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.png.*empty"):
        imageio.read(tmp_path / "empty.png")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageReadError, match="folder.png.*folder"):
        imageio.read(tmp_path / "folder.png")


def test_truncated_png(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    imageio.write(good, _levels(8, (32, 32, 3)))
    bad = tmp_path / "broken.png"
    bad.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ImageReadError, match="broken.png.*PNG.*corrupt"):
        imageio.read(bad)


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n" * 10)
    with pytest.raises(ImageReadError, match="notes.png.*not a supported image format"):
        imageio.read(path)


@pytest.mark.parametrize("ext", ["png", "jpg", "tif", "bmp", "webp"])
def test_too_large_is_refused(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"big.{ext}"
    imageio.write(path, np.zeros((20, 30, 3), np.float32))
    assert imageio.read(path, max_pixels=600).size == (30, 20)
    with pytest.raises(ImageTooLargeError, match=f"big.{ext}.*30x20"):
        imageio.read(path, max_pixels=599)


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("PNG", {}),
        ("JPEG", {"exif": b""}),
        ("JPEG", {"progressive": True}),
        ("TIFF", {}),
        ("BMP", {}),
        ("WEBP", {"lossless": False}),  # VP8 chunk
        ("WEBP", {"lossless": True}),  # VP8L chunk
        ("WEBP", {"lossless": True, "exif": "orientation"}),  # VP8X extended header
    ],
)
def test_too_large_checked_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, options: dict
) -> None:
    """The header parser finds the size of every writer's files, so no decoder memory is spent on them."""
    if options.get("exif") == "orientation":
        options = {**options, "exif": _exif(6)}
    path = tmp_path / f"big.{fmt.lower()}"
    PILImage.new("RGB", (30, 20), (10, 20, 30)).save(path, fmt, **options)

    def no_decode(*_a: object, **_k: object) -> None:
        raise AssertionError("decoded although the header already said it is too large")

    monkeypatch.setattr(imageio.cv2, "imdecode", no_decode)
    with pytest.raises(ImageTooLargeError, match="30x20"):
        imageio.read(path, max_pixels=599)


def test_png_exif_chunk_stays_valid_after_orientation_reset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """We reset the orientation tag in our copy before decoding; the chunk CRC must be redone for libpng."""
    path = tmp_path / "o.png"
    PILImage.new("RGB", (6, 4), (200, 10, 10)).save(path, exif=_exif(6))
    seen: list[bytes] = []
    real_decode = cv2.imdecode

    def spy(buf: np.ndarray, flags: int) -> np.ndarray:
        seen.append(buf.tobytes())
        return real_decode(buf, flags)

    monkeypatch.setattr(imageio.cv2, "imdecode", spy)
    assert imageio.read(path).size == (4, 6)
    data = seen[0]
    at = data.index(b"eXIf") - 4
    length = int.from_bytes(data[at : at + 4], "big")
    chunk = data[at + 4 : at + 8 + length]
    assert zlib.crc32(chunk) == int.from_bytes(data[at + 8 + length : at + 12 + length], "big")
    assert data != path.read_bytes()  # the orientation really was reset in the decoded copy


# ------------------------------------------------------------------------------------------------ write errors
def test_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError, match="out.xyz.*unknown file type"):
        imageio.write(tmp_path / "out.xyz", np.zeros((2, 2, 3)))
    assert os.listdir(tmp_path) == []


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError, match="out.png.*folder does not exist"):
        imageio.write(tmp_path / "nope" / "out.png", np.zeros((2, 2, 3)))


def test_failed_encode_leaves_old_file_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keep.png"
    path.write_bytes(b"old contents")
    monkeypatch.setattr(imageio.cv2, "imencode", lambda *a, **k: (False, None))
    with pytest.raises(ImageWriteError, match="keep.png"):
        imageio.write(path, np.zeros((2, 2, 3)))
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["keep.png"]


def test_failure_after_temp_file_removes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(imageio.os, "replace", broken_replace)
    with pytest.raises(ImageWriteError, match="new.png.*No space left"):
        imageio.write(tmp_path / "new.png", np.zeros((4, 4, 3)))
    assert os.listdir(tmp_path) == []  # neither the target nor the temp file


def test_written_file_has_normal_permissions(tmp_path: Path) -> None:
    path = tmp_path / "perm.png"
    imageio.write(path, np.zeros((2, 2, 3)))
    if os.name == "posix":
        umask = os.umask(0)
        os.umask(umask)
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_bad_shapes_are_programming_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        imageio.write(tmp_path / "a.png", np.zeros((2, 2, 4)))
    with pytest.raises(ValueError):
        imageio.write(tmp_path / "a.png", np.zeros((2, 2, 3)), alpha=np.zeros((3, 3)))


def test_integer_frames_are_accepted(tmp_path: Path) -> None:
    frame = _rng().integers(0, 65536, (3, 3, 3), dtype=np.uint16)
    imageio.write(tmp_path / "f.png", frame, bit_depth=16)
    np.testing.assert_array_equal(float_to_u16(imageio.read(tmp_path / "f.png").pixels), frame)


# ------------------------------------------------------------------------------------------------ masks
def test_mask_255_is_known_any_channels_and_depth(tmp_path: Path) -> None:
    holes = np.zeros((4, 5), bool)
    holes[1:3, 2:4] = True
    gray = np.where(holes, 0, 255).astype(np.uint8)
    PILImage.fromarray(gray, "L").save(tmp_path / "m8.png")
    PILImage.fromarray(np.dstack([gray] * 3), "RGB").save(tmp_path / "mrgb.png")
    cv2.imwrite(str(tmp_path / "m16.png"), np.where(holes, 0, 65535).astype(np.uint16))
    for name in ("m8.png", "mrgb.png", "m16.png"):
        mask = imageio.read_mask(tmp_path / name, (4, 5))
        assert mask.dtype == np.float32 and mask.shape == (4, 5)
        np.testing.assert_array_equal(mask, (~holes).astype(np.float32))


def test_mask_threshold_at_half_range(tmp_path: Path) -> None:
    PILImage.fromarray(np.array([[127, 128, 0, 255]], np.uint8), "L").save(tmp_path / "t.png")
    assert imageio.read_mask(tmp_path / "t.png", (1, 4)).tolist() == [[0, 1, 0, 1]]


def test_mask_wrong_size_names_both_sizes(tmp_path: Path) -> None:
    imageio.write_mask(tmp_path / "m.png", np.ones((4, 5)))
    with pytest.raises(MaskError, match=r"5x4.*7x6"):
        imageio.read_mask(tmp_path / "m.png", (6, 7))


def test_mask_without_known_pixel(tmp_path: Path) -> None:
    imageio.write_mask(tmp_path / "black.png", np.zeros((4, 5)))
    with pytest.raises(MaskError, match="no known pixel"):
        imageio.read_mask(tmp_path / "black.png", (4, 5))


def test_write_mask_is_8_bit_png_255_known(tmp_path: Path) -> None:
    imageio.write_mask(tmp_path / "m.png", np.array([[1.0, 0.0], [0.7, 0.2]]))
    pil = PILImage.open(tmp_path / "m.png")
    assert pil.format == "PNG" and pil.mode == "L"
    assert np.asarray(pil).tolist() == [[255, 0], [255, 0]]
    with pytest.raises(ImageWriteError, match="PNG"):
        imageio.write_mask(tmp_path / "m.jpg", np.ones((2, 2)))


def test_write_result_resizes_the_photos_alpha_bicubic(tmp_path: Path) -> None:
    """The CLI and the studio write results through this one helper: same depth, same resized alpha."""
    alpha = np.zeros((8, 8), np.float32)
    alpha[2:6, 2:6] = 1.0
    meta = imageio.ImageMeta("x.png", 16, 4, True, 1, "png")
    px = np.full((16, 16, 3), 0.5, np.float32)
    imageio.write_result(tmp_path / "r.png", px, meta, alpha)
    back = imageio.read(tmp_path / "r.png")
    assert back.meta.bit_depth == 16 and back.alpha is not None and back.alpha.shape == (16, 16)
    want = np.clip(cv2.resize(alpha, (16, 16), interpolation=cv2.INTER_CUBIC), 0, 1)
    np.testing.assert_array_equal(back.alpha, float_to_u16(want) / np.float32(65535))
    imageio.write_result(tmp_path / "same.png", px[:8, :8], meta, alpha)  # same size: alpha as it is
    np.testing.assert_array_equal(imageio.read(tmp_path / "same.png").alpha, alpha)
