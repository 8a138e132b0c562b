"""Stopping rules pick the known minimum, respect burn-in and patience, stay bounded and accurate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rwgui.core.errors import ConfigError
from rwgui.core.stopping import (
    STOPPING_RULES,
    EMVRule,
    Observation,
    SureRule,
    WMVRule,
    build_rule,
    estimate_noise_sigma,
    wmv_memory_cap,
)


def obs(i: int, x: np.ndarray | torch.Tensor, **kw) -> Observation:
    t = torch.as_tensor(x, dtype=torch.float32)
    return Observation(iteration=i, output=t, observed=kw.pop("observed", t), data_loss=0.0, **kw)


def walk(steps: np.ndarray, seed: int = 0, shape=(1, 3, 16, 16)) -> np.ndarray:
    """Iterates x_t = x_{t-1} + steps[t] * random direction: the per-step change follows ``steps``."""
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((len(steps), *shape))
    return 0.5 + np.cumsum(steps[:, None, None, None, None] * dirs, axis=0)


def brute_wmv(xs: np.ndarray, w: int) -> np.ndarray:
    """VAR_t over the full history in plain numpy (NaN while the window is not full)."""
    flat = xs.reshape(len(xs), -1).astype(np.float32).astype(np.float64)
    out = np.full(len(xs), np.nan)
    for t in range(w - 1, len(xs)):
        win = flat[t - w + 1 : t + 1]
        out[t] = ((win - win.mean(0)) ** 2).sum(0).mean() / w
    return out


def feed(rule, xs: np.ndarray):
    return [rule.observe(obs(i + 1, x)) for i, x in enumerate(xs)]


def v_shape(n: int, k: int) -> np.ndarray:
    return 0.01 * (np.abs(np.arange(n) - k) + 1.0)


def test_wmv_picks_the_brute_force_minimum():
    xs = walk(v_shape(120, 60))
    verdicts = feed(WMVRule(window=10, patience=1000), xs)
    expected = int(np.nanargmin(brute_wmv(xs, 10))) + 1
    assert 55 < expected < 75
    assert verdicts[-1].pick_iteration == expected
    news = [i + 1 for i, v in enumerate(verdicts) if v.new_pick]
    assert news[-1] == expected and all(verdicts[i - 1].pick_iteration == i for i in news)
    assert all(v.signal is None for v in verdicts[:9]) and verdicts[9].signal is not None


def test_wmv_incremental_equals_brute_force_over_a_long_run():
    # small moves around 0.5: var ~1e-6 while x^2 ~ 0.25, so float32 running sums would be off by ~30%
    rng = np.random.default_rng(1)
    xs = 0.5 + 1e-3 * rng.standard_normal((3000, 1, 3, 4, 4))
    w = 7
    signals = np.array([np.nan if v.signal is None else v.signal for v in feed(WMVRule(window=w), xs)])
    ref = brute_wmv(xs, w)
    assert np.isnan(signals[: w - 1]).all()
    np.testing.assert_allclose(signals[w - 1 :], ref[w - 1 :], rtol=1e-6)


def test_burn_in_skips_an_early_dip():
    steps = v_shape(200, 150)
    steps[20:40] = 0.001  # a deeper dip early on
    xs = walk(steps)
    assert feed(WMVRule(window=10, burn_in=0), xs)[-1].pick_iteration < 50
    v = feed(WMVRule(window=10, burn_in=60), xs)
    assert v[-1].pick_iteration == 60 + int(np.nanargmin(brute_wmv(xs, 10)[60:])) + 1 > 140
    assert all(x.pick_iteration is None for x in v[:60])


def test_patience_stops_exactly_p_after_the_last_minimum():
    xs = walk(v_shape(150, 40))
    verdicts = feed(WMVRule(window=5, patience=17), xs)
    best = verdicts[-1].pick_iteration
    first_stop = next(i + 1 for i, v in enumerate(verdicts) if v.stop)
    assert first_stop == best + 17
    assert all(v.stop for v in verdicts[first_stop - 1 :])


def test_wmv_memory_is_bounded_on_large_images():
    rule = build_rule("es-wmv")
    assert isinstance(rule, WMVRule) and rule.window == 100 and rule.max_pixels == 65536
    gen = torch.Generator().manual_seed(0)
    for i in range(3):
        rule.observe(obs(i + 1, torch.rand(1, 3, 2048, 2048, generator=gen)))
    cap = wmv_memory_cap(100, 65536)
    assert cap < 28 * 2**20  # versus 5 GB for a window of 100 full-size float32 copies
    assert rule.memory_bytes == cap
    small = build_rule("es-wmv", {"window": 10})
    small.observe(obs(1, torch.rand(1, 3, 2048, 2048, generator=gen)))
    assert rule.memory_bytes - small.memory_bytes == 90 * 65536 * 4  # W only scales the reduced size


def test_wmv_subset_variance_tracks_full_variance():
    xs = walk(v_shape(40, 20), shape=(1, 3, 64, 64))
    full = feed(WMVRule(window=5, max_pixels=1 << 20), xs)
    sub = feed(WMVRule(window=5, max_pixels=2048), xs)
    for a, b in zip(full[4:], sub[4:]):
        assert abs(a.signal - b.signal) < 0.1 * a.signal


def test_emv_picks_its_known_minimum():
    xs = walk(v_shape(200, 120))
    rule = EMVRule(alpha=0.1, burn_in=0, patience=10_000)
    verdicts = feed(rule, xs)
    flat = xs.reshape(len(xs), -1).astype(np.float32).astype(np.float64)
    ema, emv, ref = flat[0].copy(), 0.0, []
    for x in flat[1:]:
        emv = 0.9 * (emv + 0.1 * np.mean((x - ema) ** 2))
        ema = 0.9 * ema + 0.1 * x
        ref.append(emv)
    ref = np.array(ref)[rule.warm_up - 1 :]  # signals start at observation warm_up + 1
    expected = int(np.argmin(ref)) + rule.warm_up + 1
    assert 110 < expected < 140
    assert verdicts[-1].pick_iteration == expected
    np.testing.assert_allclose([v.signal for v in verdicts[rule.warm_up :]], ref, rtol=1e-9)
    assert all(v.signal is None for v in verdicts[: rule.warm_up])


def test_fixed_keeps_the_latest():
    rule = build_rule("fixed")
    for i in range(1, 5):
        v = rule.observe(obs(i, np.zeros((1, 1, 2, 2))))
        assert (v.signal, v.pick_iteration, v.new_pick, v.stop) == (None, i, True, False)


def _blur(x: torch.Tensor, s: float) -> torch.Tensor:
    r = torch.arange(-4, 5, dtype=x.dtype)
    k = torch.exp(-0.5 * (r / s) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (4, 4, 0, 0), mode="reflect"), k.view(1, 1, 1, 9).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, 4, 4), mode="reflect"), k.view(1, 1, 9, 1).repeat(c, 1, 1, 1), groups=c)


def _clean(n: int = 64) -> torch.Tensor:
    u = torch.linspace(0, 1, n)
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    img = torch.stack([0.5 + 0.3 * torch.sin(3 * xx + 2 * yy), 0.4 + 0.3 * xx * yy, 0.5 + 0.2 * torch.cos(4 * yy)])
    detail = 0.15 * (xx > 0.5) + 0.1 * torch.sin(25 * xx) * torch.cos(20 * yy)  # so blurring has a cost
    return img[None] + detail[None, None]


@pytest.mark.parametrize("width", [0.6, 1.0, 2.0])
def test_sure_matches_true_mse_for_a_linear_smoother(width):
    sigma, clean, errs, mses = 0.1, _clean(), [], []
    for seed in range(5):
        y = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed))
        x = _blur(y, width)
        rule = SureRule(sigma=sigma)
        v = rule.observe(obs(1, x, observed=y, probe=lambda b, y=y: _blur(y + b, width), input_shape=tuple(y.shape)))
        mse = float(((x - clean) ** 2).mean())
        errs.append(v.signal - mse)
        mses.append(mse)
    assert abs(np.mean(errs)) < 0.1 * np.mean(mses)
    naive = float(((y - x) ** 2).mean()) - sigma**2  # without the divergence term SURE would be far off
    assert abs(naive - mses[-1]) > 0.5 * mses[-1]


def test_sure_picks_the_true_mse_minimum():
    sigma, clean = 0.1, _clean()
    y = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(3))
    widths = [3.0, 1.5, 0.8, 0.5, 0.3]
    rule, mses = SureRule(sigma=sigma, patience=100), []
    for i, s in enumerate(widths):
        x = _blur(y, s)
        mses.append(float(((x - clean) ** 2).mean()))
        rule.observe(obs(i + 1, x, observed=y, probe=lambda b, s=s: _blur(y + b, s), input_shape=tuple(y.shape)))
    assert rule.observe(obs(6, y, observed=y, probe=lambda b: y + b)).pick_iteration == int(np.argmin(mses)) + 1
    assert int(np.argmin(mses)) + 1 == 2  # not at either end


def test_sure_with_estimated_sigma_is_close():
    clean = _clean()
    y = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    x = _blur(y, 1.0)
    o = obs(1, x, observed=y, probe=lambda b: _blur(y + b, 1.0))
    assert SureRule(sigma=0).observe(o).signal == pytest.approx(SureRule(sigma=0.1).observe(o).signal, rel=0.3)


def test_sure_needs_a_probe_and_denoising():
    with pytest.raises(ConfigError, match="input code 'observed'"):
        build_rule("sure", {"sigma": 0.1}).observe(obs(1, np.zeros((1, 3, 8, 8))))
    lo = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ConfigError, match="only defined for denoising"):
        build_rule("sure").observe(obs(1, torch.zeros(1, 3, 8, 8), observed=lo, probe=lambda b: b))


@pytest.mark.parametrize("sigma", [25 / 255, 50 / 255])
@pytest.mark.parametrize("kind", ["array", "tensor"])
def test_noise_estimator_accuracy(sigma, kind):
    clean = _clean(256)
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(7))
    img = noisy if kind == "tensor" else noisy[0].permute(1, 2, 0).numpy()
    assert estimate_noise_sigma(img) == pytest.approx(sigma, rel=0.05)  # lands within ~1% here
    photo = (noisy.clamp(0, 1) * 255).round() / 255  # clipped and 8-bit, as a real photo is
    assert estimate_noise_sigma(photo) == pytest.approx(sigma, rel=0.15)
    assert estimate_noise_sigma(clean[0, 0].numpy()) < 0.1 * sigma  # a smooth image reads as almost clean


def test_registry_and_unknown_names():
    assert set(STOPPING_RULES.names()) == {"fixed", "es-wmv", "es-emv", "sure"}
    with pytest.raises(ConfigError, match="es-wmv"):
        build_rule("early-ish")
    with pytest.raises(ConfigError):
        build_rule("es-wmv", {"windw": 3})
    with pytest.raises(ConfigError):
        build_rule("es-wmv", {"window": 1})


def test_reset_forgets_the_run():
    xs = walk(v_shape(60, 30))
    rule = WMVRule(window=5, patience=5)
    first = feed(rule, xs)
    rule.reset()
    assert [v.signal for v in feed(rule, xs)] == [v.signal for v in first]
