"""Random-weights loss priors: frozen, reproducible, differentiable, re-drawn on schedule."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rwgui.core.errors import ConfigError
from rwgui.core.lossprior import LOSS_PRIORS, LossPrior, build_loss_prior, total_variation

NAMES = LOSS_PRIORS.names()
COMMON = {"weight", "count", "redraw_every", "init", "depth", "width", "kernel_size"}


def make(name: str, channels: int = 3, seed: int = 0, **params) -> LossPrior:
    prior = build_loss_prior(name, params, channels=channels, seed=seed, device="cpu")
    assert prior is not None
    return prior


def images(channels: int = 3, h: int = 24, w: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, channels, h, w, generator=g), torch.rand(1, channels, h, w, generator=g)


def weights(prior: LossPrior) -> list[torch.Tensor]:
    return [p.detach().clone() for p in prior.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_registry_has_all_variants_with_common_params():
    assert set(NAMES) == {"cdc", "inn", "taylor", "zero-order", "conv", "transformer"}
    for variant in LOSS_PRIORS:
        assert COMMON <= {p.name for p in variant.params}, variant.name
        assert variant.param("init").default == "kaiming"
        assert variant.param("redraw_every").default == 0
    assert LOSS_PRIORS.get("cdc").param("theta").default == 0.7
    assert LOSS_PRIORS.get("taylor").param("order").default == 3


@pytest.mark.parametrize("name", NAMES)
def test_no_trainable_parameters_and_no_grads_collected(name):
    prior = make(name)
    params = list(prior.parameters())
    assert params, "the random weights should be visible as (frozen) parameters"
    assert sum(p.requires_grad for p in params) == 0
    ax, y = images()
    ax.requires_grad_(True)
    prior(ax, y, 0).backward()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("name", NAMES)
def test_building_leaves_global_rng_alone(name):
    state = torch.get_rng_state()
    make(name, count=2)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_other_seed_differs(name):
    ax, y = images()
    a, b, c = make(name, seed=5), make(name, seed=5), make(name, seed=6)
    assert same(weights(a), weights(b))
    assert torch.equal(a(ax, y, 0), b(ax, y, 0))
    assert torch.equal(a.nets[0](y), b.nets[0](y))
    assert not torch.allclose(a.nets[0](y), c.nets[0](y))
    assert not torch.allclose(a(ax, y, 0), c(ax, y, 0))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("init", ["normal", "uniform", "kaiming", "xavier", "orthogonal"])
def test_gradient_reaches_the_input(name, init):
    ax, y = images(h=20, w=28)
    ax.requires_grad_(True)
    loss = make(name, init=init)(ax, y, 0)
    assert loss.dim() == 0 and loss.dtype == torch.float32 and loss.item() > 0
    loss.backward()
    assert ax.grad is not None and torch.isfinite(ax.grad).all()
    assert ax.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels", [1, 3])
def test_odd_sizes_and_grayscale(name, channels):
    ax, y = images(channels, 37, 45)
    ax.requires_grad_(True)
    loss = make(name, channels=channels, count=2)(ax, y, 0)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert ax.grad.abs().amax(dim=(0, 2, 3)).min() > 0  # every channel gets gradient


@pytest.mark.parametrize("name", NAMES)
def test_edge_pixels_get_gradient(name):
    """Strided/padded variants must not drop the last rows and columns of odd sizes."""
    ax, y = images(3, 37, 45)
    ax.requires_grad_(True)
    make(name)(ax, y, 0).backward()
    assert ax.grad[..., -1, :].abs().sum() > 0 and ax.grad[..., :, -1].abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_zero_when_ax_equals_y(name):
    _, y = images()
    assert make(name, count=3)(y.clone(), y, 0).item() == pytest.approx(0.0, abs=1e-7)


def test_weight_scales_the_term_and_count_averages():
    ax, y = images()
    one = make("conv", weight=1.0)(ax, y, 0)
    assert make("conv", weight=0.25)(ax, y, 0).item() == pytest.approx(0.25 * one.item(), rel=1e-5)
    prior = make("conv", weight=1.0, count=3)
    terms = [(net(ax) - net(y)).abs().mean() for net in prior.nets]
    assert prior(ax, y, 0).item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)
    assert not torch.equal(prior.nets[0][0].weight, prior.nets[1][0].weight)  # K distinct networks


@pytest.mark.parametrize("redraw_every", [1, 3])
def test_redraw_exactly_every_r_steps(redraw_every):
    ax, y = images(h=16, w=16)
    prior = make("cdc", redraw_every=redraw_every)
    assert prior.draws == 1 and prior.draw_index == 0
    before = weights(prior)
    changed = []
    for it in range(8):
        prior(ax, y, it)
        prior(ax, y, it)  # a second call at the same iteration (closures) must not re-draw
        now = weights(prior)
        changed.append(not same(before, now))
        before = now
    expected = [it > 0 and it % redraw_every == 0 for it in range(8)]
    assert changed == expected
    assert prior.draws == 1 + sum(expected)
    # draw n uses seed + n: it equals the first draw of a prior seeded seed + n
    assert same(weights(prior), weights(make("cdc", seed=7 // redraw_every)))


def test_no_redraw_when_r_is_zero():
    ax, y = images(h=16, w=16)
    prior = make("inn", redraw_every=0)
    start = weights(prior)
    for it in range(0, 50, 7):
        prior(ax, y, it)
    assert same(start, weights(prior)) and prior.draws == 1


def test_redraw_changes_the_cached_target():
    ax, y = images(h=16, w=16)
    prior = make("conv", redraw_every=2)
    first = prior(ax, y, 1)
    second = prior(ax, y, 2)
    fresh = make("conv", seed=1)(ax, y, 0)  # draw 1 = seed 0 + 1, with R(y) computed from scratch
    assert not torch.equal(first, second)
    assert torch.equal(second, fresh)


def test_target_cache_follows_in_place_changes_of_y():
    ax, y = images(h=16, w=16)
    prior = make("taylor")
    prior(ax, y, 0)
    y.mul_(0.5)
    assert torch.equal(prior(ax, y, 1), make("taylor")(ax, y, 0))


@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("depth", [4, 8])
def test_inn_inverts(channels, depth):
    _, y = images(channels, 33, 40)
    for init in ("kaiming", "normal", "orthogonal"):
        net = make("inn", channels=channels, depth=depth, width=32, kernel_size=5, init=init).nets[0]
        z = net(y)
        assert z.shape[1] == channels + channels % 2
        assert not torch.allclose(z[:, :channels], y, atol=1e-2)  # it does transform
        assert torch.allclose(net.inverse(z), y, atol=1e-5, rtol=0)


def test_cdc_with_theta_zero_is_a_plain_conv_stack():
    _, y = images()
    prior = make("cdc", theta=0.0, depth=3)
    convs = [m for m in prior.nets[0] if hasattr(m, "weight")]
    assert len(convs) == 3
    x = y
    for i, m in enumerate(convs):
        x = F.conv2d(F.leaky_relu(x, 0.2) if i else x, m.weight, padding=m.weight.shape[-1] // 2)
    assert torch.allclose(prior.nets[0](y), x, atol=1e-6)
    assert not torch.allclose(make("cdc", theta=0.7, depth=3).nets[0](y), x, atol=1e-3)


def test_cdc_ignores_constant_images_at_theta_one():
    """With θ = 1 a CDC layer sees differences only: a constant image maps to zero away from borders."""
    net = make("cdc", theta=1.0, depth=1).nets[0]
    out = net(torch.full((1, 3, 16, 16), 0.6))
    assert out[..., 1:-1, 1:-1].abs().max() < 1e-5 and out.abs().max() > 1e-2


def test_zero_order_kernels_are_averages():
    prior = make("zero-order", kernel_size=5, depth=3)
    for p in prior.parameters():
        assert (p >= 0).all()
        assert torch.allclose(p.sum((1, 2, 3)), torch.ones(p.shape[0]), atol=1e-5)
    out = prior.nets[0](torch.full((1, 3, 20, 20), 0.3))
    assert torch.allclose(out, torch.full_like(out, 0.3), atol=1e-5)


def test_transformer_pools_large_token_grids():
    prior = make("transformer", patch=4, grid=8)
    tokens = prior.nets[0](torch.rand(1, 3, 64, 80))
    assert tokens.shape[1] == 8 * 8  # 16x20 patches pooled to at most 8x8
    assert make("transformer", patch=4, grid=8).nets[0](torch.rand(1, 3, 17, 9)).shape[1] == 5 * 3


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_autocast(name):
    ax, y = images(3, 21, 30)
    prior = make(name)
    reference = prior(ax, y, 0).item()
    ax.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = prior(ax, y, 0)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert loss.item() == pytest.approx(reference, rel=0.1)
    loss.backward()
    assert ax.grad.abs().sum() > 0


def test_total_variation():
    assert total_variation(torch.full((1, 3, 16, 16), 0.4)).item() == 0.0
    assert total_variation(torch.rand(1, 3, 16, 16)).item() > 0.1
    x = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]]).view(1, 1, 2, 3)
    assert total_variation(x).item() == pytest.approx(2 / 4 + 2 / 3)  # mean|dx| + mean|dy|


def test_none_unknown_and_invalid_configs():
    assert build_loss_prior("none", {}, channels=3, seed=0, device="cpu") is None
    with pytest.raises(ConfigError, match="none, cdc"):
        build_loss_prior("cdcc", {}, channels=3, seed=0, device="cpu")
    with pytest.raises(ConfigError, match="odd"):
        make("conv", kernel_size=4)
    with pytest.raises(ConfigError, match="heads"):
        make("transformer", width=30, heads=4)
    with pytest.raises(ConfigError):
        make("inn", count=9)
    with pytest.raises(ConfigError):
        make("cdc", init="gaussian")
    with pytest.raises(ConfigError):
        make("taylor", nonsense=1)
