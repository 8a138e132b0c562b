"""Parameter specs, settings declared with their spec, and registries of named variants.

One spec feeds three consumers: the GUI form (``rwgui.gui.forms``), the CLI flags (``rwgui.cli``) and the
JSON config (``rwgui.core.config``). A variant declares its specs in its registry entry; a settings dataclass
declares each field once with :func:`setting`, and :func:`params_of` reads the specs back, so the default lives
in the field alone. Adding a variant or a setting touches one line or one file.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import numbers
import operator
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")

#: Kinds a parameter can have. ``ints`` is a comma-separated list of integers (channels per scale).
KINDS = ("int", "float", "bool", "choice", "ints", "str")


@dataclass(frozen=True)
class Param:
    """One tunable setting of a variant: what the form shows, the CLI accepts and the JSON stores."""

    name: str
    kind: str
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    #: the allowed values: strings for a ``choice``; an ``int`` or ``float`` may also be limited to a few values
    choices: tuple[Any, ...] = ()
    log: bool = False  # a hint for forms: the value spans decades (learning rates, weights)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown parameter kind {self.kind!r}")
        if self.choices and self.kind not in ("choice", "int", "float"):
            raise ValueError(f"{self.name}: only choice, int and float parameters take choices")
        if (self.kind == "choice" or self.choices) and self.default not in self.choices:
            raise ValueError(f"default {self.default!r} of {self.name} is not among its choices")

    @property
    def flag(self) -> str:
        """The CLI flag for this parameter, e.g. ``--num-scales``."""
        return "--" + self.name.replace("_", "-")

    def coerce(self, value: Any, owner: str = "", where: str | None = None) -> Any:
        """Convert ``value`` (from JSON, a CLI string or a widget) and check its type and range.

        ``where`` is the key path the value came from (``prior_params.channels_down``); without it the path is
        ``owner.name``. Every refusal is a :class:`ConfigError` of one line naming that path, what the value must
        be and what it was (``prior_params.channels_down[2]: must be an integer from 1 to 512; got "x"``): the one
        rule for settings files, the CLI's flags and the forms, so a malformed file cannot get past it as some
        other exception.
        """
        where = where or (f"{owner}.{self.name}" if owner else self.name)
        try:
            if self.kind == "int":
                out: Any = _to_int(value)
            elif self.kind == "float":
                out = _to_float(value)
            elif self.kind == "bool":
                out = _to_bool(value)
            elif self.kind == "ints":
                return self._coerce_ints(value, where)
            elif isinstance(value, str):  # choice and str: text only, so a list or a number is not a name
                out = str(value)
            else:
                raise TypeError
        except (TypeError, ValueError, OverflowError):
            raise self._refuse(where, value) from None
        if self.choices:  # the matching choice itself, so an enum's member comes back, not its string
            match = [c for c in self.choices if c == out]
            if not match:
                raise self._refuse(where, value)
            out = match[0]
        if not self._in_range(out):
            raise self._refuse(where, value)
        return out

    def _coerce_ints(self, value: Any, where: str) -> tuple[int, ...]:
        """A list (or ``"128,64"`` from the CLI) of integers; a bad element is named by its index."""
        if isinstance(value, str):
            try:
                out = tuple(_to_int(p) for p in value.replace(" ", "").split(",") if p)
            except (TypeError, ValueError, OverflowError):
                raise self._refuse(where, value) from None
            bad = [v for v in out if not self._in_range(v)]
            if not out or bad:
                raise self._refuse(where, value)
            return out
        if isinstance(value, (str, bytes, Mapping, set, frozenset)) or not isinstance(value, Iterable):
            raise self._refuse(where, value)
        items = list(value)
        if not items:
            raise self._refuse(where, value)
        result = []
        for i, item in enumerate(items):
            try:
                v = _to_int(item)
            except (TypeError, ValueError, OverflowError):
                v = None
            if v is None or not self._in_range(v):
                raise ConfigError(f"{where}[{i}]: must be {self._expected(one=True)}; got {shown(item)}")
            result.append(v)
        return tuple(result)

    def _in_range(self, v: Any) -> bool:
        if self.kind not in ("int", "float", "ints"):
            return True
        return (self.min is None or v >= self.min) and (self.max is None or v <= self.max)

    def _expected(self, one: bool = False) -> str:
        """What a valid value is, in words: ``an integer from 1 to 512``, ``one of skip, hourglass``."""
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        integral = self.kind in ("int", "ints")
        lo, hi = (None if b is None else _number(b, integral) for b in (self.min, self.max))
        span = f" from {lo} to {hi}" if lo and hi else f" at least {lo}" if lo else f" at most {hi}" if hi else ""
        what = {
            "int": "an integer",
            "float": "a finite number",
            "bool": "true or false",
            "ints": "an integer" if one else "a non-empty list of integers",
            "choice": "text",
            "str": "text",
        }[self.kind]
        return what + span

    def _refuse(self, where: str, value: Any) -> ConfigError:
        return ConfigError(f"{where}: must be {self._expected()}; got {shown(value)}")

    def to_json(self, value: Any) -> Any:
        """A JSON-friendly form of a coerced value."""
        return list(value) if self.kind == "ints" else value


def _to_int(value: Any) -> int:
    """An integer from an int, an integral finite float or a string; a bool is refused (it is an int in Python)."""
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f) or not f.is_integer():
            raise ValueError
        return int(f)
    if isinstance(value, str):
        return int(value.strip())
    return operator.index(value)


def _to_float(value: Any) -> float:
    """A finite float: NaN and infinities are refused (a JSON file may spell them ``NaN``/``Infinity``, or write a
    number too large for a float), as is a bool."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise TypeError
    out = float(value)  # OverflowError for an integer beyond a float's range
    if not math.isfinite(out):
        raise ValueError
    return out


def _to_bool(value: Any) -> bool:
    """true/false, 0/1, or a CLI word (yes/no, on/off); anything else (a list, null, 2) is refused, not truthy."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError
    raise TypeError


def _number(x: float, integral: bool) -> str:
    return str(int(x)) if integral or float(x).is_integer() else f"{x:g}"


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def key_path(where: str, key: Any) -> str:
    """``where`` followed by a mapping's ``key``: ``prior_params.num_scales``. A key that is not a plain name is
    quoted (``speed["a b"]``), so a path names its key exactly and stays on one line whatever the file holds."""
    k = str(key)
    if _PLAIN_KEY.fullmatch(k):
        return f"{where}.{k}" if where else k
    return f"{where}[{shown(k)}]"


def shown(value: Any, depth: int = 0) -> str:
    """A short, one-line, JSON-like rendering of a value for a message: strings and lists are cut, nesting is
    shown two levels deep, a huge integer by its size, so a message stays one readable line whatever the value."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        text = json.dumps(value[:40] + ("…" if len(value) > 40 else ""), ensure_ascii=False)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate cannot be printed
    if isinstance(value, numbers.Integral):
        bits = int(value).bit_length()
        return str(value) if bits < 64 else f"an integer of {bits} bits"
    if isinstance(value, float):
        return json.dumps(value)  # NaN, Infinity as JSON spells them
    if isinstance(value, Mapping):
        if depth >= 2:
            return "{…}"
        items = [f"{shown(str(k))}: {shown(v, depth + 1)}" for k, v in list(value.items())[:4]]
        return "{" + ", ".join(items + (["…"] if len(value) > 4 else [])) + "}"
    if isinstance(value, (list, tuple)):
        if depth >= 2:
            return "[…]"
        parts = [shown(v, depth + 1) for v in value[:6]]
        return "[" + ", ".join(parts + (["…"] if len(value) > 6 else [])) + "]"
    return shown(str(value))


#: The key under which :func:`setting` stores a field's spec in ``dataclasses.Field.metadata``.
PARAM_KEY = "rwgui.param"


@dataclass(frozen=True)
class _Spec:
    """A Param without its name and default: the field supplies both, so neither is written twice."""

    help: str
    kind: str | None
    min: float | None
    max: float | None
    choices: tuple[Any, ...]
    log: bool


def setting(
    default: Any,
    help: str,
    *,
    kind: str | None = None,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[Any, ...] | list[Any] = (),
    log: bool = False,
) -> Any:
    """A dataclass field that is also a :class:`Param`: the one declaration of a setting.

    ``kind`` is read from the field's annotation when not given (``int``, ``float``, ``bool``, ``str``;
    ``str`` with ``choices`` or a ``StrEnum`` is a ``choice``; ``tuple[int, ...]`` is ``ints``).
    :func:`params_of` builds the Params; the CLI flags, the GUI forms and the JSON follow them.
    """
    spec = _Spec(help, kind, min, max, tuple(choices), log)
    return dataclasses.field(default=default, metadata={PARAM_KEY: spec})


def _kind_of(hint: Any, spec: _Spec) -> str:
    if spec.kind is not None:
        return spec.kind
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "choice"
    if hint is str:
        return "choice" if spec.choices else "str"
    if hint in (bool, int, float):  # bool first: it is an int too
        return str(hint.__name__)
    if typing.get_origin(hint) is tuple and typing.get_args(hint)[:1] == (int,):
        return "ints"
    raise TypeError(f"cannot infer a parameter kind from {hint!r}; pass kind=")


def params_of(cls: type) -> tuple[Param, ...]:
    """The Params of the :func:`setting` fields of dataclass ``cls``, in field order (plain fields are skipped)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(PARAM_KEY)
        if spec is None:
            continue
        hint = hints[f.name]
        choices = spec.choices
        if not choices and isinstance(hint, type) and issubclass(hint, enum.Enum):
            choices = tuple(hint)
        out.append(Param(f.name, _kind_of(hint, spec), f.default, spec.help, spec.min, spec.max, choices, spec.log))
    return tuple(out)


@dataclass(frozen=True)
class Variant(Generic[T]):
    """A named entry of a registry: its parameter spec and the factory that builds it."""

    name: str
    help: str
    params: tuple[Param, ...]
    factory: Callable[..., T]
    tasks: tuple[str, ...] = ()  # tasks it suits; empty means all

    def param(self, name: str, where: str = "") -> Param:
        """The parameter ``name``; a ConfigError (prefixed by the key path ``where``) lists the real ones."""
        for p in self.params:
            if p.name == name:
                return p
        at = f"{where}: " if where else ""
        raise ConfigError(
            f"{at}{self.name} has no parameter {name!r}; it has: {', '.join(p.name for p in self.params) or 'none'}"
        )

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def resolve(self, values: Mapping[str, Any] | None = None, where: str | None = None) -> dict[str, Any]:
        """Defaults overlaid with ``values``, every value coerced and range-checked.

        ``where`` is the key path of ``values`` in a settings file (``prior_params``): errors then name
        ``prior_params.num_scales``; without it they name ``skip.num_scales``."""
        base = self.name if where is None else where
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise ConfigError(f"{base}: must be an object of {self.name}'s parameters; got {shown(values)}")
        out = self.defaults()
        for key, value in values.items():
            path = key_path(base, key)
            out[key] = self.param(key, path if where is not None else "").coerce(value, where=path)
        return {p.name: p.coerce(out[p.name], where=key_path(base, p.name)) for p in self.params}

    def to_json(self, values: Mapping[str, Any]) -> dict[str, Any]:
        resolved = self.resolve(values)
        return {p.name: p.to_json(resolved[p.name]) for p in self.params}

    def build(self, values: Mapping[str, Any] | None = None, **context: Any) -> T:
        """Build the variant from resolved parameters plus context the caller supplies (channels, device, ...)."""
        return self.factory(**context, **self.resolve(values))


@dataclass
class Registry(Generic[T]):
    """Named variants of one kind (priors, loss priors, stopping rules)."""

    kind: str
    _entries: dict[str, Variant[T]] = field(default_factory=dict)

    def register(self, variant: Variant[T]) -> Variant[T]:
        if variant.name in self._entries:
            raise ValueError(f"{self.kind} {variant.name!r} is registered twice")
        self._entries[variant.name] = variant
        return variant

    def add(
        self,
        name: str,
        help: str,
        params: tuple[Param, ...] | list[Param] = (),
        tasks: tuple[str, ...] = (),
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator form of :meth:`register`."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self.register(Variant(name, help, tuple(params), factory, tasks))
            return factory

        return deco

    def get(self, name: str, where: str = "") -> Variant[T]:
        """The variant called ``name``; anything else (an unknown name, a list, a number) is a ConfigError
        listing the names, prefixed by the key path ``where`` when given."""
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        at = f"{where}: " if where else ""
        names = ", ".join(self._entries)
        if not isinstance(name, str):
            raise ConfigError(f"{at}must be the name of a {self.kind} (one of: {names}); got {shown(name)}")
        raise ConfigError(f"{at}unknown {self.kind} {name!r}; choose one of: {names}")

    def names(self) -> list[str]:
        return list(self._entries)

    def flag_help(self, name: str) -> str:
        """The help of the one CLI flag the variants' parameter ``name`` share (the CLI has one flag per name).

        Each meaning is prefixed by the variants it belongs to (``unet: Channels per level ... deep-decoder:
        Channels per layer ...``), so a variant's flag is never described by another variant's help, and a flag
        only some variants take says which; a parameter every variant has alike keeps its plain help."""
        owners: dict[str, list[str]] = {}  # help text -> the variants whose parameter it describes
        for variant in self:
            for p in variant.params:
                if p.name == name:
                    owners.setdefault(p.help, []).append(variant.name)
        if not owners:
            raise ConfigError(f"no {self.kind} has a parameter {name!r}")
        if len(owners) == 1 and len(next(iter(owners.values()))) == len(self):
            return next(iter(owners))
        return " ".join(f"{', '.join(variants)}: {text}" for text, variants in owners.items())

    def __iter__(self) -> Iterator[Variant[T]]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
