"""Small studio fixes: one rule for default result names (CLI and studio), and the wheel over the settings panel
scrolls it instead of changing the spin box or combo under the pointer."""

from __future__ import annotations

import argparse

import pytest

from rwgui.core.paths import default_output_name, extension_for_filter

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.mark.parametrize(
    ("given", "keep", "expected"),
    [
        ("photos/scan.jpg", False, "scan_restored.png"),
        ("scan.tif", True, "scan_restored.tif"),
        ("scan.jpg", True, "scan_restored.png"),  # re-compressing a JPEG would lose what was restored
        ("scan16.png", True, "scan16_restored.png"),  # a 16-bit PNG stays a PNG
        ("scan_restored.png", True, "scan_restored.png"),  # never doubled
        ("scan-restored.tiff", True, "scan-restored.tiff"),
        (None, True, "restored.png"),  # the bundled sample has no file
    ],
)
def test_default_output_name(given, keep, expected):
    assert default_output_name(given, keep_format=keep) == expected


def test_the_name_takes_the_chosen_filters_extension():
    assert extension_for_filter("a.png", "TIFF (*.tif *.tiff)").name == "a.tif"
    assert extension_for_filter("a", "PNG (*.png)").name == "a.png"
    assert extension_for_filter("a.tiff", "TIFF (*.tif *.tiff)").name == "a.tiff"
    assert extension_for_filter("my.photo", "PNG (*.png)").name == "my.photo.png"


def test_cli_default_uses_the_rule(tmp_path):
    from rwgui.cli import check_destinations

    photo = tmp_path / "old_restored.png"
    photo.write_bytes(b"")
    args = argparse.Namespace(input=str(photo), output=None, overwrite=False, report=None, save_config=None)
    with pytest.raises(Exception, match="input"):  # the rule gives the input's own name: refused, not doubled
        check_destinations(args)
    photo2 = tmp_path / "scan.jpg"
    args.input = str(photo2)
    assert check_destinations(args) == str(tmp_path / "scan_restored.png")


def test_studio_offers_the_rules_name_under_the_matching_filter(window, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    seen = {}

    def fake(parent, title, start, filt, selected=""):
        seen.update(start=start, selected=selected)
        return str(tmp_path / "picked"), "TIFF (*.tif *.tiff)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake)
    saved = []
    monkeypatch.setattr(window.io, "save_result", lambda path: saved.append(path))
    window.io.ask_save_result()
    assert seen["start"].endswith("restored.png") and "restored-restored" not in seen["start"]
    assert seen["selected"].startswith("PNG")
    assert saved == [str(tmp_path / "picked.tif")]  # no extension typed: the chosen filter's


def _wheel(widget, dy: int = -120) -> None:
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    pos = QPointF(widget.rect().center())
    ev = QWheelEvent(
        pos,
        QPointF(widget.mapToGlobal(pos.toPoint())),
        QPoint(0, 0),
        QPoint(0, dy),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, ev)


def test_wheel_over_an_unfocused_spin_box_scrolls_the_panel(qtbot, window):
    from PySide6.QtWidgets import QComboBox, QSpinBox

    panel = window.settings_panel
    window.resize(900, 420)  # short enough that the panel scrolls
    qtbot.waitUntil(lambda: panel.verticalScrollBar().maximum() > 0, timeout=3000)
    boxes = [w for w in panel.widget().findChildren(QSpinBox) if w.isVisible()]
    combos = [w for w in panel.widget().findChildren(QComboBox) if w.isVisible()]
    assert boxes and combos
    for w in (boxes[0], combos[0], panel.task_combo):
        window.photo_view.setFocus()
        value = w.value() if isinstance(w, QSpinBox) else w.currentIndex()
        before = panel.verticalScrollBar().value()
        _wheel(w)
        assert (w.value() if isinstance(w, QSpinBox) else w.currentIndex()) == value, w.objectName()
        assert panel.verticalScrollBar().value() > before  # the wheel went on to the panel
        panel.verticalScrollBar().setValue(0)
    box = boxes[0]
    box.setFocus()
    qtbot.waitUntil(box.hasFocus, timeout=1000)
    value = box.value()
    _wheel(box, dy=120)
    assert box.value() != value  # focused, the wheel changes it as ever


def test_ints_editor_is_as_tall_as_a_spin_box_and_shows_an_example(window):
    from PySide6.QtWidgets import QLineEdit, QSpinBox

    edit = window.settings_panel.widget().findChild(QLineEdit, "channels_down")
    assert edit is not None
    assert edit.minimumHeight() >= QSpinBox().sizeHint().height()
    assert "16, 32, 64" in edit.placeholderText()


# ----- SURE with the Deep Decoder names the real cause ---------------------------------------------------------
def test_sure_with_the_deep_decoder_blames_the_prior_not_the_input_code():
    """The Deep Decoder grows its output from a small code whatever the input code, so "set input code
    'observed'" (the fix for the other priors) cannot help: the error names the prior and what to choose."""
    import numpy as np
    import torch

    from rwgui.core.config import preset
    from rwgui.core.engine import Engine
    from rwgui.core.errors import ConfigError
    from rwgui.core.priors import build_prior, input_stride
    from rwgui.core.problems import denoise_problem
    from rwgui.core.stopping import SURE_PRIORS, Observation, build_rule

    img = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    for code in ("observed", "noise"):  # 'observed' already set: the old message asked for it all the same
        cfg = preset("denoise", prior="deep-decoder", input_code=code, stop="sure", iterations=3, device="cpu")
        with pytest.raises(ConfigError, match=r"sure cannot judge this prior.*Deep Decoder.*skip") as err:
            Engine(denoise_problem(img), cfg).step()
        assert "channels" not in str(err.value)
    x = torch.zeros(1, 3, 64, 64)
    small_code = Observation(1, x, x, 0.0, probe=None, input_shape=(1, 3, 2, 2))
    with pytest.raises(ConfigError, match="32 times smaller"):
        build_rule("sure").observe(small_code)
    for name in SURE_PRIORS:  # the priors the message offers do take the photo at its own size
        assert input_stride(build_prior(name, {}, in_channels=3, out_channels=3)) == 1


# ----- a flag several priors share has each one's help ---------------------------------------------------------
def test_a_flag_several_variants_share_says_what_it_means_for_each():
    """The CLI has one flag per parameter name: --channels is the U-Net's channels per level and the Deep Decoder's
    channels per layer, and its help must not describe the Deep Decoder's by the U-Net's words."""
    from rwgui.cli import build_parser
    from rwgui.core.errors import ConfigError
    from rwgui.core.priors import PRIORS
    from rwgui.core.stopping import STOPPING_RULES

    helps = {a.option_strings[0]: a.help for a in build_parser()._actions if a.option_strings}
    for flag, name in (("--channels", "channels"), ("--bias", "bias"), ("--upsample", "upsample")):
        for variant in PRIORS:
            own = [p.help for p in variant.params if p.name == name]
            assert not own or (variant.name in helps[flag] and own[0] in helps[flag]), (flag, variant.name)
    assert helps["--channels"].index("unet:") < helps["--channels"].index("deep-decoder: Channels per layer")
    assert helps["--layers"].startswith("deep-decoder: ")  # a flag only one prior takes says which
    assert helps["--stop-sigma"].startswith("sure: ")
    assert PRIORS.flag_help("sigmoid") == "Squash the output to [0, 1] with a sigmoid."  # every prior's, alike
    with pytest.raises(ConfigError, match="no stopping rule has a parameter 'channels'"):
        STOPPING_RULES.flag_help("channels")


# ----- one recipe of synthetic damage: the samples' and the benchmarks' ----------------------------------------
def _same_problem(a, b) -> bool:
    import torch

    def same(x, y):
        return (x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))

    return (
        a.task == b.task
        and a.size == b.size
        and a.task_params == b.task_params
        and all(same(getattr(a, n), getattr(b, n)) for n in ("observed", "ground_truth", "mask", "code_source"))
    )


def test_the_benchmarks_damage_a_photo_as_the_bundled_samples_are_damaged():
    import numpy as np

    from rwgui.bench.common import crop, make_problem
    from rwgui.core import imageio
    from rwgui.core.problems import add_gaussian_noise, denoise_problem, inpaint_problem, random_pixel_mask
    from rwgui.core.samples import centre_crop, damage, load_sample, sample_path

    photo = imageio.read(sample_path("chelsea")).pixels
    img = centre_crop(photo, 48)
    assert np.array_equal(crop(photo, 48), img) and img.shape[:2] == (48, 48)
    named = [("denoise", "denoise", 4), ("inpaint", "inpaint", 4), ("sr-x2", "sr", 2), ("sr-x4", "sr", 4)]
    named += [(t, t, 4) for t in ("jpeg", "deblur", "real-noise", "flash")]
    for preset_name, task, factor in named:
        sample = load_sample(task, "chelsea", factor=factor, size=48).problem()
        assert _same_problem(make_problem(preset_name, img), sample), preset_name
    # the benchmarks' own damage: half the pixels dropped at random, through the same recipe
    mask = random_pixel_mask((48, 48), 0.5, 0)
    assert _same_problem(make_problem("inpaint-pixels", img), inpaint_problem(img * mask[..., None], mask, img))
    # and the recipe is the one both used before: the paper's noise level, seed 0
    assert _same_problem(damage(img, "denoise").problem(), denoise_problem(add_gaussian_noise(img, 25 / 255, 0), img))
    with pytest.raises(ValueError, match="no synthetic damage for the unknown task 'blur'"):
        damage(img, "blur")
