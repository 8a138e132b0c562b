"""Every settings file is handled: whatever a file given as settings holds, the outcome is a valid RunConfig or a
ConfigError of one line naming what is wrong and where (its key path), in the core, the CLI (exit 2) and the
studio (a dialog; the settings shown stay as they were).

A property-based part feeds arbitrary JSON values and mutations of a valid exported file at every key path to
the parser (parsing only, no engine run), and a corpus of broken files made here goes through the CLI and the
studio's File > Import settings.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rwgui.core import imageio
from rwgui.core.config import RunConfig, preset
from rwgui.core.errors import ConfigError
from rwgui.core.params import key_path

#: Enough examples to reach every key path of the exported file many times over; parsing only, so fast.
PROPERTY = settings(
    max_examples=500,
    deadline=None,
    database=None,  # nothing written into the working tree; a failure prints its example and seed
    suppress_health_check=[HealthCheck.too_slow],
)

#: Keys whose value names a variant: changing one makes the variant's parameters (``<key>_params``) wrong.
SELECTORS = ("task", "prior", "stop", "loss_prior")


def _exported(name: str, **overrides: Any) -> dict[str, Any]:
    """A settings file as the studio's Export settings writes it (every variant's parameters in full)."""
    return json.loads(preset(name, **overrides).to_json())


#: Valid files to mutate: every variant holds parameters (sr-x4 has a loss prior, deblur task parameters).
BASES = [_exported("sr-x4", stop="es-wmv"), _exported("deblur")]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats()  # NaN and the infinities included
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)


def _outcome(text: str | bytes) -> RunConfig | ConfigError:
    """Parse; a ConfigError is returned, any other exception fails the test where it happens."""
    try:
        cfg = RunConfig.from_json(text)
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, f"not one line: {message!r}"
        return exc
    assert RunConfig.from_json(cfg.to_json()) == cfg  # what was accepted writes back and reads the same
    return cfg


# ----- property-based ------------------------------------------------------------------------------------
@PROPERTY
@given(json_values)
def test_any_json_value_is_settings_or_a_config_error(value):
    _outcome(json.dumps(value))


@PROPERTY
@given(st.dictionaries(st.sampled_from(sorted(BASES[0]) + ["extra"]), json_values, max_size=6))
def test_any_values_under_the_real_keys_are_settings_or_a_config_error(value):
    _outcome(json.dumps(value))


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a parsed file: dict keys and list indices, the root excluded."""
    out = []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in children:
        out.append(path + (k,))
        out.extend(_paths(v, path + (k,)))
    return out


def _spelled(path: tuple[Any, ...]) -> str:
    """A key path as the messages write it: ``prior_params.channels_down[2]``."""
    text = ""
    for k in path:
        text = f"{text}[{k}]" if isinstance(k, int) else key_path(text, k)
    return text


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        data = data[k]
    return data


MUTATIONS = [(b, p) for b in range(len(BASES)) for p in _paths(BASES[b])]
CONTAINERS = [(b, p) for b in range(len(BASES)) for p in [(), *_paths(BASES[b])] if isinstance(_at(BASES[b], p), dict)]


@PROPERTY
@given(
    st.sampled_from(MUTATIONS),
    st.sampled_from(["replace", "delete"]),
    json_values,
)
def test_a_changed_or_deleted_value_at_any_key_path_is_valid_or_named(where, how, value):
    base, path = where
    data = copy.deepcopy(BASES[base])
    parent, key = _at(data, path[:-1]), path[-1]
    if how == "replace":
        parent[key] = value
    else:
        del parent[key]
        if isinstance(key, int):  # a list lost an element: the list is what may now be wrong
            path = path[:-1]
    result = _outcome(json.dumps(data))
    if isinstance(result, RunConfig):
        return
    message = str(result)
    if how == "replace" and path[0] not in SELECTORS:
        assert _spelled(path) in message, f"{_spelled(path)} not named in: {message}"
    else:  # a variant's name changed or a key went back to its default: the message names that setting's key
        assert str(path[0]) in message, f"{path[0]} not named in: {message}"


@PROPERTY
@given(st.sampled_from(CONTAINERS), st.text(max_size=12), json_values)
def test_an_added_key_at_any_object_is_named(where, key, value):
    base, path = where
    data = copy.deepcopy(BASES[base])
    obj = _at(data, path)
    if key in obj:
        return
    obj[key] = value
    result = _outcome(json.dumps(data))
    assert isinstance(result, ConfigError), f"{_spelled(path + (key,))} was accepted"
    assert _spelled(path + (key,)) in str(result), f"{_spelled(path + (key,))} not named in: {result}"


# ----- a corpus of broken files ----------------------------------------------------------------------------
def _edited(**changes: Any) -> bytes:
    data = _exported("denoise")
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        _at(data, tuple(parents))[last] = value
    return json.dumps(data).encode()


def _literal(key: str, literal: str) -> bytes:
    """A valid file whose top-level ``key`` holds ``literal`` exactly as written (NaN, 1e400, ...)."""
    data = _exported("denoise")
    data[key] = "@@"
    return json.dumps(data).replace('"@@"', literal).encode()


#: name -> (file bytes, text the one-line message must hold: the key path, or what is wrong with the file)
CORPUS: dict[str, tuple[bytes, str]] = {
    "not utf-8": (_edited(preset="caf\u00e9").replace(b"\\u00e9", b"\xe9"), "not UTF-8"),
    "syntax error": (b'{"seed": 1,,}', "line 1, column 12"),
    "empty file": (b"", "not valid JSON"),
    "deep nesting": (b'{"prior_params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    "top-level array": (b"[1, 2]", "must be a JSON object"),
    "top-level string": (b'"denoise"', "must be a JSON object"),
    "list for a name": (_edited(prior=["skip"]), "prior: must be the name of a prior"),
    "dict for a name": (_edited(stop={"name": "fixed"}), "stop: must be the name"),
    "number for params": (_edited(prior_params=3), "prior_params: must be an object"),
    "string for speed": (_edited(speed="fast"), "speed: must be an object"),
    "string in a list of ints": (_edited(prior_params__channels_down=[128, 64, "x"]), "prior_params.channels_down[2]"),
    "bool in a list of ints": (_edited(prior_params__channels_up=[True]), "prior_params.channels_up[0]"),
    "dict for a list of ints": (_edited(prior_params__channels_skip={"a": 1}), "prior_params.channels_skip:"),
    "bool for an int": (_edited(iterations=True), "iterations: must be an integer"),
    "string for an int": (_edited(speed__threads="many"), "speed.threads: must be an integer"),
    "list for a bool": (_edited(auto_stop=[]), "auto_stop: must be true or false"),
    "null for a bool": (_edited(speed__compile=None), "speed.compile: must be true or false"),
    "bool for a choice": (_edited(device=True), "device: must be one of"),
    "number for text": (_edited(preset=3), "preset: must be text"),
    "NaN": (_literal("lr", "NaN"), "lr: must be a finite number"),
    "Infinity": (_literal("reg_noise_std", "Infinity"), "reg_noise_std: must be a finite number"),
    "-Infinity": (_literal("exp_weight", "-Infinity"), "exp_weight: must be a finite number"),
    "float beyond a double": (_literal("lr", "1e400"), "lr: must be a finite number"),
    "int beyond a double": (_literal("tv_weight", "1" + "0" * 400), "tv_weight: must be a finite number"),
    "int beyond its range": (_literal("iterations", str(10**30)), "iterations: must be an integer from 1 to"),
    "int of 5000 digits": (_literal("seed", "1" * 5000), "too many digits"),
    "out of range in speed": (_edited(speed__threads=5000), "speed.threads"),
    "unknown key": (_edited(colour="red"), "unknown settings: colour"),
    "unknown speed key": (_edited(speed__turbo=True), "unknown settings: speed.turbo"),
    "unknown variant": (_edited(prior="resnet50"), "prior: unknown prior 'resnet50'"),
    "params of another variant": (_edited(prior="resnet"), "prior_params.num_scales: resnet has no parameter"),
    "params for no loss prior": (_edited(loss_prior_params={"weight": 0.1}), "loss_prior_params"),
    "task params of another task": (_edited(task_params={"sigma": 2.0}), "task_params.sigma"),
    "bad task param": (_edited(task="deblur", preset="deblur", task_params={"sigma": "wide"}), "task_params.sigma"),
    "schema_version a string": (_edited(schema_version="1"), "schema_version: must be an integer"),
    "schema_version a bool": (_edited(schema_version=True), "schema_version: must be an integer"),
    "schema_version newer": (_edited(schema_version=2), "schema_version: the file is of version 2"),
    "duplicate key": (b'{"seed": 1, "seed": 2}', "seed: given twice"),
    "duplicate nested key": (b'{"speed": {"threads": 1, "threads": 2}}', "speed.threads: given twice"),
}


@pytest.fixture
def corpus(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "settings"
    folder.mkdir()
    paths = {}
    for i, (name, (raw, _)) in enumerate(CORPUS.items()):
        paths[name] = folder / f"{i:02d}.json"
        paths[name].write_bytes(raw)
    return paths


def test_the_corpus_base_is_valid_and_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "ok.json"
    path.write_bytes(b"\xef\xbb\xbf" + _edited())
    assert RunConfig.load(path) == preset("denoise")


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_broken_file_is_one_config_error_naming_where(corpus, name):
    with pytest.raises(ConfigError) as exc:
        RunConfig.load(corpus[name])
    message = str(exc.value)
    assert "\n" not in message and message.startswith(f"settings file {corpus[name]}: ")
    assert CORPUS[name][1] in message


def test_the_cli_exits_2_with_one_line_for_every_broken_file(corpus, tmp_path, capsys):
    from rwgui.cli import main

    photo = tmp_path / "noisy.png"
    imageio.write(photo, np.random.default_rng(0).random((16, 16, 3), dtype=np.float32))
    for name, path in corpus.items():
        with pytest.raises(SystemExit) as exc:
            main(["denoise", str(photo), "-o", str(tmp_path / "out.png"), "--config", str(path), "--quiet"])
        err = capsys.readouterr().err
        assert exc.value.code == 2, name
        assert err.count("\n") == 1 and err.startswith("rwgui-restore: error: settings file "), (name, err)
        assert CORPUS[name][1] in err and "Traceback" not in err, (name, err)
    assert not (tmp_path / "out.png").exists()


def test_the_studio_shows_each_broken_file_in_a_dialog_and_keeps_its_settings(window, corpus, tmp_path):
    before = window.current_settings()
    session_before = window.session.settings
    for name, path in corpus.items():
        window.last_error = None
        assert not window.import_settings(path), name
        message = window.last_error
        assert message is not None and CORPUS[name][1] in message and "\n" not in message, (name, message)
        assert window.error_box.text() == message and window.error_box.isVisible(), name
        assert window.current_settings() == before, name
        assert window.session.settings == session_before, name
    # a valid file is taken, whole: the panel and the session show it
    good = tmp_path / "good.json"
    good.write_text(json.dumps(dict(_exported("denoise"), iterations=123, lr=0.002)))
    window.last_error = None
    assert window.import_settings(good)
    assert window.last_error is None
    now = window.current_settings()
    assert (now.iterations, now.lr) == (123, 0.002) and window.session.settings == now


def test_importing_another_tasks_settings_changes_the_task(window, tmp_path):
    path = tmp_path / "sr.json"
    path.write_text(preset("sr-x2").to_json())
    assert window.import_settings(path)
    cfg = window.current_settings()
    assert (cfg.task, cfg.factor, cfg.iterations) == ("sr", 2, 2000)


def test_a_broken_session_settings_entry_is_the_same_message():
    """The session file reads its settings through RunConfig.from_dict: one parser, one set of messages."""
    from rwgui.core.session_file import SessionFileError, _Reader

    data = _exported("denoise")
    data["prior_params"]["channels_down"] = [128, "x"]
    with pytest.raises(ConfigError) as direct:
        RunConfig.from_dict(data)
    with pytest.raises(SessionFileError) as in_session:
        _Reader.config(_Reader.__new__(_Reader), {"settings": data}, "settings", "")
    assert str(direct.value) in str(in_session.value)
    assert "prior_params.channels_down[1]" in str(direct.value)


def test_a_non_finite_or_out_of_range_value_is_refused_from_a_flag_too():
    """The CLI's flags and the forms use the same rule: NaN is not a learning rate however it is written."""
    from rwgui.core.config import RUN_PARAMS

    lr = next(p for p in RUN_PARAMS if p.name == "lr")
    for bad in ("nan", "inf", float("nan"), math.inf, True, [0.1]):
        with pytest.raises(ConfigError, match="lr: must be a finite number"):
            lr.coerce(bad)
    assert lr.coerce("0.02") == 0.02
