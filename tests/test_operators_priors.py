"""Operators (shapes, kernel, mask) and priors (sizes that are not multiples of 32)."""

import numpy as np
import pytest
import torch

from rwgui.core.config import preset
from rwgui.core.engine import Engine
from rwgui.core.errors import ConfigError, MaskError
from rwgui.core.operators import Identity, LanczosDownsample, PixelMask, lanczos_kernel_1d
from rwgui.core.priors import build_prior, make_input, padded_size
from rwgui.core.problems import denoise_problem, inpaint_problem, sr_problem


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_lanczos_kernel_sums_to_one_and_is_symmetric(factor):
    k = lanczos_kernel_1d(factor)
    assert k.shape == (4 * factor,)
    assert abs(k.sum() - 1) < 1e-12
    np.testing.assert_allclose(k, k[::-1])


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_downsampler_shape_and_constant_preserved(factor):
    op = LanczosDownsample(factor, 3)
    x = torch.full((1, 3, 8 * factor, 5 * factor), 0.3)
    y = op(x)
    assert y.shape == (1, 3, 8, 5)
    torch.testing.assert_close(y, torch.full_like(y, 0.3))
    assert op.observed_size((8 * factor, 5 * factor)) == (8, 5)


def test_downsampler_is_linear_and_lowpass():
    op = LanczosDownsample(4, 1)
    a, b = torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64)
    torch.testing.assert_close(op(2 * a + b), 2 * op(a) + op(b), atol=1e-5, rtol=1e-5)
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2
    assert op(checker[None, None].float()).std() < 0.05  # the highest frequency is filtered, not aliased


def test_identity_and_mask():
    x = torch.rand(1, 3, 10, 12)
    assert torch.equal(Identity()(x), x)
    m = (torch.rand(1, 1, 10, 12) > 0.5).float()
    y = PixelMask(m)(x)
    assert torch.equal(y[:, :, m[0, 0] == 0], torch.zeros_like(y[:, :, m[0, 0] == 0]))
    assert torch.equal(y[:, :, m[0, 0] == 1], x[:, :, m[0, 0] == 1])


@pytest.mark.parametrize("name", ["skip", "hourglass"])  # the hourglass params; other priors: test_priors_more
@pytest.mark.parametrize("hw", [(37, 45), (64, 32), (33, 97)])
def test_engine_output_matches_odd_sizes(name, hw):
    img = np.random.default_rng(0).random((*hw, 3)).astype(np.float32)
    cfg = preset("denoise", prior=name, prior_params={"channels_down": (8,), "channels_up": (8,)}, iterations=1)
    eng = Engine(denoise_problem(img), cfg)
    assert eng.padded[0] % 32 == 0 and eng.padded[1] % 32 == 0
    eng.step()
    assert eng.image().shape == (*hw, 3)
    assert eng.frame().shape == (*hw, 4) and eng.frame().dtype == np.uint8


def test_sr_output_is_factor_times_input():
    lr = np.random.default_rng(0).random((13, 21, 3)).astype(np.float32)
    p = sr_problem(lr, 4)
    cfg = preset("sr-x4", prior_params={"channels_down": (8,), "channels_up": (8,)}, iterations=1)
    eng = Engine(p, cfg)
    eng.step()
    assert eng.image().shape == (52, 84, 3)


def test_grayscale_runs_single_channel():
    img = np.random.default_rng(0).random((40, 40, 1)).astype(np.float32)
    cfg = preset("denoise", prior_params={"channels_down": (8,), "channels_up": (8,)}, iterations=1)
    eng = Engine(denoise_problem(img), cfg)
    eng.step()
    assert eng.image().shape == (40, 40, 1)
    assert eng.frame().shape == (40, 40, 4)


def test_paper_network_size():
    """The default skip net has the reference implementation's ~2.2 M parameters."""
    net = build_prior("skip", {}, in_channels=32, out_channels=3)
    n = sum(p.numel() for p in net.parameters())
    assert 2.1e6 < n < 2.3e6


def test_prior_spec_rejects_bad_values():
    with pytest.raises(ConfigError, match="channels_down"):
        build_prior("skip", {"num_scales": 3, "channels_down": (8, 8)}, in_channels=2, out_channels=3)
    with pytest.raises(ConfigError, match="upsample"):
        build_prior("skip", {"upsample": "cubic"}, in_channels=2, out_channels=3)
    with pytest.raises(ConfigError, match="unknown prior"):
        build_prior("resnet9000", {}, in_channels=2, out_channels=3)


def test_input_codes():
    g = torch.Generator().manual_seed(0)
    z = make_input("noise", 32, (64, 96), generator=g)
    assert z.shape == (1, 32, 64, 96) and 0 <= z.min() and z.max() <= 0.1
    m = make_input("meshgrid", 32, (64, 96), generator=g)
    assert m.shape == (1, 2, 64, 96) and m[0, 0, 0, -1] == 1 and m[0, 1, -1, 0] == 1
    obs = torch.rand(1, 3, 50, 70)
    o = make_input("observed", 0, (64, 96), generator=g, observed=obs)
    assert o.shape == (1, 3, 64, 96)
    assert torch.equal(o[..., :50, :70], obs)  # the photo sits where the engine crops its output
    assert padded_size((50, 70), 32) == (64, 96)


def test_inpaint_problem_mask_checks():
    img = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    with pytest.raises(MaskError, match="30x20"):
        inpaint_problem(img, np.ones((10, 10)))
    with pytest.raises(MaskError, match="known"):
        inpaint_problem(img, np.zeros((20, 30)))
    p = inpaint_problem(img, np.ones((20, 30)))
    assert p.mask.shape == (1, 1, 20, 30)


def test_the_skip_joins_hand_upsampling_a_dense_channels_last_gradient():
    """The concatenation's backward slices its gradient; the network hands the upsampling a dense one (its CPU
    backward is ~8x slower on the slice) with the same values, and the join stays channels-last."""
    import torch

    from rwgui.core.priors.skip import _DenseGrad

    x = torch.randn(1, 6, 8, 8).contiguous(memory_format=torch.channels_last).requires_grad_()
    seen = {}
    y = x * 1.0
    y.register_hook(lambda g: seen.setdefault("grad", g))
    skip = torch.randn(1, 2, 8, 8).contiguous(memory_format=torch.channels_last)
    h = torch.cat([skip, _DenseGrad.apply(y)], dim=1)
    assert h.is_contiguous(memory_format=torch.channels_last)
    w = torch.randn_like(h)
    (h * w).sum().backward()
    g = seen["grad"]
    assert g.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(g, w[:, 2:])
    assert torch.equal(x.grad, w[:, 2:])
