"""The U-Net, ResNet and Deep Decoder priors: specs, shapes with every input code, speed settings, memory
probe, a short run that fits, and that the CLI and the studio offer them from the registry alone."""

import importlib

import numpy as np
import pytest
import torch

from rwgui.cli import build_parser, make_config
from rwgui.core.config import SpeedConfig, preset
from rwgui.core.engine import Engine
from rwgui.core.errors import ConfigError
from rwgui.core.memory import estimate_memory
from rwgui.core.priors import INPUT_CODES, PRIORS, build_prior, input_stride, make_input
from rwgui.core.problems import denoise_problem

NEW = ("unet", "resnet", "deep-decoder")
MODULES = {"unet": "unet", "resnet": "resnet", "deep-decoder": "deep_decoder"}
#: Narrow versions, so that a 37x45 step takes milliseconds; the architecture (levels, strides) stays.
SMALL = {
    "unet": {"channels": (8, 8, 16, 16, 16)},
    "resnet": {"blocks": 2, "width": 8},
    "deep-decoder": {"channels": (16,)},
}


def _photo(hw, channels, seed=0):
    """A smooth picture plus a little texture: something a network fits faster than noise."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    rng = np.random.default_rng(seed)
    img = np.stack([base * (0.8 + 0.1 * c) for c in range(channels)], axis=-1) + 0.05 * rng.random((h, w, channels))
    return np.clip(img, 0, 1).astype(np.float32)


def _config(name, code, **over):
    params = over.pop("prior_params", SMALL[name])
    return preset("denoise", prior=name, prior_params=params, input_code=code, stop="fixed", **over)


# ----- specs --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NEW)
def test_specs_are_valid_and_documented(name):
    variant = PRIORS.get(name)
    assert variant.help.endswith(".") and variant.help.count(". ") == 0  # one sentence, shown by the studio
    for p in variant.params:
        assert p.coerce(p.default) == p.default, p.name
        values = p.default if p.kind == "ints" else (p.default,)
        for v in values if p.kind in ("int", "float", "ints") else ():
            assert p.min is None or v >= p.min, p.name
            assert p.max is None or v <= p.max, p.name
        assert p.help, p.name
    module = importlib.import_module(f"rwgui.core.priors.{MODULES[name]}")
    doc = module.__doc__ or ""
    assert "Default" in doc and ("20" in doc or "19" in doc)  # what it is, its paper (a year) and its defaults


def test_shared_knobs_keep_one_kind_and_one_set_of_choices():
    """The CLI has one flag per parameter name: priors that share a name must agree on what it takes."""
    seen = {}
    for variant in PRIORS:
        for p in variant.params:
            if p.name in seen:
                assert seen[p.name] == (p.kind, p.choices), (variant.name, p.name)
            seen[p.name] = (p.kind, p.choices)


def test_cli_accepts_the_new_priors_and_their_flags(tmp_path):
    photo = tmp_path / "a.png"
    ap = build_parser()
    for argv, prior, expect in [
        (["--prior", "deep-decoder", "--layers", "5", "--channels", "32"], "deep-decoder", {"layers": 5}),
        (["--prior", "unet", "--levels", "3", "--channels", "8,16,32,64"], "unet", {"channels": (8, 16, 32, 64)}),
        (["--prior", "resnet", "--blocks", "4", "--width", "16"], "resnet", {"blocks": 4, "width": 16}),
    ]:
        args = ap.parse_args(["denoise", str(photo), *argv])
        cfg = make_config(args, None)
        assert cfg.prior == prior
        resolved = PRIORS.get(prior).resolve(cfg.prior_params)
        for key, value in expect.items():
            assert resolved[key] == value
    with pytest.raises(ConfigError, match="deep-decoder has no parameter 'width'"):
        make_config(ap.parse_args(["denoise", str(photo), "--prior", "deep-decoder", "--width", "8"]), None)


def test_channel_lists_are_checked():
    with pytest.raises(ConfigError, match="channels needs 1 or 6 values"):
        build_prior("deep-decoder", {"channels": (8, 8)}, in_channels=4, out_channels=3)
    with pytest.raises(ConfigError, match="channels needs 1 or 5 values"):
        build_prior("unet", {"channels": (8, 8)}, in_channels=4, out_channels=3)
    # fewer levels keep the listed widths (the extra values are ignored), so changing levels alone works
    net = build_prior("unet", {"levels": 2}, in_channels=4, out_channels=3)
    assert net.size_multiple == 4
    with pytest.raises(ConfigError):
        build_prior("resnet", {"width": 0}, in_channels=4, out_channels=3)


# ----- shapes, input codes, gradients ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("code", INPUT_CODES)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_input_code_builds_runs_and_gives_the_photos_shape(name, code, channels):
    hw = (37, 45)  # a multiple of nothing the priors need: the engine pads and crops
    cfg = _config(name, code, iterations=1, speed=SpeedConfig(precision="float32"))
    eng = Engine(denoise_problem(_photo(hw, channels)), cfg)
    mult, stride = eng.net.size_multiple, input_stride(eng.net)
    assert eng.padded[0] % mult == 0 and eng.padded[1] % mult == 0
    assert tuple(eng.z.shape[-2:]) == (eng.padded[0] // stride, eng.padded[1] // stride)
    eng.step()
    assert eng.image().shape == (*hw, channels)
    grads = [p.grad for p in eng.net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)  # backward reached every weight
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_the_deep_decoders_code_is_small_and_the_observed_one_is_the_shrunk_photo():
    img = _photo((128, 96), 3)
    net = build_prior("deep-decoder", {}, in_channels=3, out_channels=3)
    assert input_stride(net) == 32 == net.size_multiple
    gen = torch.Generator().manual_seed(0)
    observed = torch.from_numpy(img).permute(2, 0, 1)[None]
    noise = make_input("noise", 32, (128, 96), generator=gen, stride=32)
    assert noise.shape == (1, 32, 4, 3) and 0 <= float(noise.min()) and float(noise.max()) <= 0.1
    code = make_input("observed", 3, (128, 96), generator=gen, observed=observed, stride=32)
    assert code.shape == (1, 3, 4, 3)
    # antialiased: each code pixel is close to the mean of its 32x32 block of the photo
    blocks = observed.reshape(1, 3, 4, 32, 3, 32).mean(dim=(3, 5))
    assert float((code - blocks).abs().max()) < 0.1
    mesh = make_input("meshgrid", 2, (128, 96), generator=gen, stride=32)
    assert mesh.shape == (1, 2, 4, 3)
    with torch.no_grad():
        assert net(code).shape == (1, 3, 128, 96)


@pytest.mark.parametrize("name", NEW)
def test_speed_settings_channels_last_and_bfloat16(name):
    cfg = _config(
        name, "noise", iterations=2, speed=SpeedConfig(precision="bfloat16", channels_last=True, fused_optimizer=True)
    )
    eng = Engine(denoise_problem(_photo((40, 40), 3)), cfg)
    assert eng.autocast_dtype is torch.bfloat16
    assert eng.z.is_contiguous(memory_format=torch.channels_last)
    result = eng.run()
    assert result.iterations_run == 2 and all(np.isfinite(r.loss) for r in result.reports)
    assert eng.image().shape == (40, 40, 3)


@pytest.mark.parametrize("name", NEW)
def test_memory_estimate_probes_each_prior(name):
    cfg = _config(name, "noise", prior_params={}, device="cpu")
    small = estimate_memory(cfg, (128, 128), 3)
    big = estimate_memory(cfg, (256, 256), 3)
    n_params = sum(p.numel() for p in build_prior(name, {}, in_channels=32, out_channels=3).parameters())
    assert small.parameter_bytes == big.parameter_bytes == 16 * n_params  # weights, grads, Adam's moments
    assert 3.0 < big.activation_bytes / small.activation_bytes < 5.0  # activations grow with the area
    assert big.total_bytes > small.total_bytes > 0
    bf16 = estimate_memory(cfg, (256, 256), 3, torch.bfloat16)
    assert bf16.activation_bytes < big.activation_bytes


# ----- it fits, and the deep decoder is small -----------------------------------------------------------------
@pytest.mark.parametrize("name", NEW)
def test_a_short_run_reduces_the_data_loss(name):
    """20 iterations on a 32x32 noisy photo, each prior at its defaults: the fit gets better."""
    clean = _photo((32, 32), 3)
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    cfg = _config(name, "noise", prior_params={}, iterations=20)
    result = Engine(denoise_problem(noisy, ground_truth=clean), cfg).run()
    data = [r.loss_terms["data"] for r in result.reports]
    assert len(data) == 20
    assert min(data[-5:]) < 0.7 * data[0], data


def test_the_deep_decoder_has_far_fewer_weights_than_the_skip_network_and_the_photo_has_pixels():
    def count(name):
        return sum(p.numel() for p in build_prior(name, {}, in_channels=32, out_channels=3).parameters())

    dd, skip = count("deep-decoder"), count("skip")
    assert dd * 50 < skip
    assert dd < 256 * 256 * 3 / 4  # under-parameterised: far fewer weights than a 256x256 photo has values


# ----- the studio lists them without widget code ----------------------------------------------------------------
def test_the_studios_prior_list_comes_from_the_registry(qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QComboBox

    from rwgui.gui.settings_dock import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    form = panel.prior_form
    combo = form.findChild(QComboBox)
    items = [combo.itemText(i) for i in range(combo.count())]
    assert items == PRIORS.names() and set(NEW) <= set(items)
    for name in NEW:
        i = combo.findText(name)
        assert combo.itemData(i, Qt.ItemDataRole.ToolTipRole) == PRIORS.get(name).help
        form.set_variant(name)
        assert form.variant() == (name, PRIORS.get(name).resolve({}))
        assert panel.config().prior == name
