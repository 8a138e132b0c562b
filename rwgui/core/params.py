"""Parameter specs, settings declared with their spec, and registries of named variants.

One spec feeds three consumers: the GUI form (``rwgui.gui.forms``), the CLI flags (``rwgui.cli``) and the
JSON config (``rwgui.core.config``). A variant declares its specs in its registry entry; a settings dataclass
declares each field once with :func:`setting`, and :func:`params_of` reads the specs back, so the default lives
in the field alone. Adding a variant or a setting touches one line or one file.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Callable, Iterator, Mapping
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

    def coerce(self, value: Any, owner: str = "") -> Any:
        """Convert ``value`` (from JSON, a CLI string or a widget) and check its range."""
        where = f"{owner}.{self.name}" if owner else self.name
        try:
            if self.kind == "int":
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                out: Any = int(value)
            elif self.kind == "float":
                if isinstance(value, bool):
                    raise ValueError
                out = float(value)
            elif self.kind == "bool":
                if isinstance(value, str):
                    low = value.strip().lower()
                    if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                        raise ValueError
                    out = low in ("1", "true", "yes", "on")
                else:
                    out = bool(value)
            elif self.kind == "choice":
                out = str(value)
            elif self.kind == "ints":
                if isinstance(value, str):
                    parts = [p for p in value.replace(" ", "").split(",") if p]
                    out = tuple(int(p) for p in parts)
                else:
                    out = tuple(int(v) for v in value)
                if not out:
                    raise ValueError
            else:
                out = str(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be of type {self.kind}; got {value!r}") from None
        if self.choices:  # the matching choice itself, so an enum's member comes back, not its string
            match = [c for c in self.choices if c == out]
            if not match:
                raise ConfigError(f"{where} must be one of {', '.join(map(str, self.choices))}; got {value!r}")
            out = match[0]
        values = out if self.kind == "ints" else (out,)
        if self.kind in ("int", "float", "ints"):
            for v in values:
                if self.min is not None and v < self.min:
                    raise ConfigError(f"{where} must be at least {self.min}; got {value!r}")
                if self.max is not None and v > self.max:
                    raise ConfigError(f"{where} must be at most {self.max}; got {value!r}")
        return out

    def to_json(self, value: Any) -> Any:
        """A JSON-friendly form of a coerced value."""
        return list(value) if self.kind == "ints" else value


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

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ConfigError(
            f"{self.name} has no parameter {name!r}; it has: {', '.join(p.name for p in self.params) or 'none'}"
        )

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def resolve(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults overlaid with ``values``, every value coerced and range-checked."""
        out = self.defaults()
        for key, value in (values or {}).items():
            out[key] = self.param(key).coerce(value, self.name)
        return {p.name: p.coerce(out[p.name], self.name) for p in self.params}

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

    def get(self, name: str) -> Variant[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries)}") from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __iter__(self) -> Iterator[Variant[T]]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
