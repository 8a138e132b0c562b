"""The pixel conversions: exact round trips at 8 and 16 bits, rounding (not truncation), gray and RGB, display."""

from __future__ import annotations

import numpy as np
import pytest

from rwgui.core.pixels import (
    as_float,
    as_u16,
    float_to_u8,
    float_to_u16,
    image_to_tensor,
    rgba8_for_display,
    tensor_to_image,
    u16_to_float,
)


def test_every_8_bit_value_round_trips_exactly():
    k = np.arange(256, dtype=np.uint8)
    f = as_float(k)
    assert f.dtype == np.float32 and f[0] == 0.0 and f[-1] == 1.0
    np.testing.assert_array_equal(float_to_u8(f), k)
    np.testing.assert_array_equal(as_u16(k), k.astype(np.uint16) * 257)  # the exact widening: 255 -> 65535


def test_every_16_bit_value_round_trips_exactly():
    k = np.arange(65536, dtype=np.uint16)
    f = u16_to_float(k)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(as_float(k), f)
    np.testing.assert_array_equal(float_to_u16(f), k)
    np.testing.assert_array_equal(as_u16(f), k)
    np.testing.assert_array_equal(as_u16(k), k)


def test_quantising_rounds_to_nearest_and_clips():
    x = np.array([-1.0, 0.0, 0.49 / 255, 0.51 / 255, 1.49 / 255, 0.5, 254.6 / 255, 1.0, 2.0, np.nan], np.float32)
    assert float_to_u8(x).tolist() == [0, 0, 0, 1, 1, 128, 255, 255, 255, 0]
    y = np.array([0.0, 0.49 / 65535, 0.51 / 65535, 0.5, 1.0, 3.0, np.nan], np.float32)
    assert float_to_u16(y).tolist() == [0, 0, 1, 32768, 65535, 65535, 0]


def test_as_float_passes_floats_and_refuses_other_integers():
    f = np.array([[0.25, 0.75]], np.float32)
    assert as_float(f) is f
    with pytest.raises(TypeError):
        as_float(np.array([1, 2], np.int32))


@pytest.mark.parametrize("shape", [(3, 5), (3, 5, 1), (3, 5, 3)])
def test_display_gray_and_rgb_are_opaque_rgba(shape):
    rng = np.random.default_rng(0)
    img = rng.random(shape).astype(np.float32)
    out = rgba8_for_display(img)
    assert out.shape == (3, 5, 4) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert (out[..., 3] == 255).all()
    want = float_to_u8(img.reshape(3, 5, -1))
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], want[..., -1 if want.shape[2] == 1 else c])


def test_display_of_16_bit_rounds_like_the_float_path():
    k = np.arange(0, 65536, 7, dtype=np.uint16).reshape(1, -1, 1)
    np.testing.assert_array_equal(rgba8_for_display(k)[..., 0], float_to_u8(u16_to_float(k))[..., 0])
    assert rgba8_for_display(np.array([[[128]]], np.uint16))[0, 0, 0] == 0  # 128/65535*255 = 0.498
    assert rgba8_for_display(np.array([[[129]]], np.uint16))[0, 0, 0] == 1  # 0.502


def test_display_keeps_rgba_and_refuses_odd_shapes():
    rgba = np.arange(2 * 2 * 4, dtype=np.uint8).reshape(2, 2, 4)
    np.testing.assert_array_equal(rgba8_for_display(rgba), rgba)
    with pytest.raises(ValueError):
        rgba8_for_display(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(TypeError):
        rgba8_for_display(np.zeros((2, 2, 3), np.int64))


def test_tensor_round_trip_copies_and_clamps():
    img = np.random.default_rng(1).random((4, 6, 3)).astype(np.float32)
    t = image_to_tensor(img)
    assert tuple(t.shape) == (1, 3, 4, 6)
    img[0, 0, 0] = 5.0  # the tensor is a copy
    assert float(t[0, 0, 0, 0]) != 5.0
    back = tensor_to_image(t * 2)
    assert back.shape == (4, 6, 3) and back.max() <= 1.0
    assert tuple(image_to_tensor(np.zeros((4, 6), np.float32)).shape) == (1, 1, 4, 6)
