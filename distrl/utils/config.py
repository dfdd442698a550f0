"""Dataclass config helpers: field validation and ``key=value`` overrides.

Every error names the field and the bad value, so a typo on the command line
or in a config file is caught before anything starts.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Iterable, Mapping, TypeVar

C = TypeVar("C")


class ConfigError(ValueError):
    """A config key is unknown or its value is invalid."""


def require(condition: bool, owner: str, field: str, value: Any, must: str) -> None:
    """Raises ``ConfigError('<owner>.<field> must <must>, got <value>')`` unless ``condition``."""
    if not condition:
        raise ConfigError(f"{owner}.{field} must {must}, got {value!r}")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def positive(config: Any, *fields: str) -> None:
    """Checks that each named numeric field is finite and > 0 (``inf`` and ``nan`` are refused:
    a learning rate of inf trains with NaN losses from the first update)."""
    for name in fields:
        value = getattr(config, name)
        require(_finite(value) and value > 0, type(config).__name__, name, value, "be a finite number > 0")


def non_negative(config: Any, *fields: str) -> None:
    """Checks that each named numeric field is finite and >= 0."""
    for name in fields:
        value = getattr(config, name)
        require(_finite(value) and value >= 0, type(config).__name__, name, value, "be a finite number >= 0")


def in_unit_interval(config: Any, *fields: str) -> None:
    """Checks that each named field lies in [0, 1]."""
    for name in fields:
        value = getattr(config, name)
        require(0.0 <= value <= 1.0, type(config).__name__, name, value, "lie in [0, 1]")


def field_docs(config_cls: type) -> dict[str, str]:
    """Returns each field's one-line doc (the ``#:`` style comment kept in ``metadata['doc']``)."""
    return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(config_cls)}


def doc(default: Any, text: str) -> Any:
    """A dataclass field with a default and a one-line description (shown by ``--help``)."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"doc": text})
    return dataclasses.field(default=default, metadata={"doc": text})


def parse_value(text: str, annotation: Any, key: str) -> Any:
    """Parses ``text`` into the type named by a dataclass field annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for candidate in inner:
            try:
                return parse_value(text, candidate, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: cannot parse {text!r} as {annotation}")
    if origin in (tuple, list):
        items = [t for t in text.strip("()[] ").split(",") if t.strip()]
        item_type = args[0] if args else str
        parsed = [parse_value(t.strip(), item_type, key) for t in items]
        return tuple(parsed) if origin is tuple else parsed
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected a boolean (true/false), got {text!r}")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if number.is_integer():
            return int(number)
        raise ConfigError(f"{key}: expected an integer, got {text!r}")
    if annotation is float:
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {text!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{key}: expected a finite number, got {text!r}")
        return number
    if annotation is str:
        return text
    raise ConfigError(f"{key}: cannot parse values of type {annotation}")


def apply_overrides(config: C, overrides: Mapping[str, Any] | Iterable[str], owner: str | None = None) -> C:
    """Returns a copy of dataclass ``config`` with overrides applied and re-validated.

    ``overrides`` is a mapping of field name to value (values that are strings
    are parsed by the field's type) or an iterable of ``key=value`` strings.
    Unknown keys raise ``ConfigError`` listing the valid ones.
    """
    owner = owner or type(config).__name__
    if not isinstance(overrides, Mapping):
        pairs = {}
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like key=value")
            key, value = item.split("=", 1)
            pairs[key.strip()] = value.strip()
        overrides = pairs
    hints = typing.get_type_hints(type(config))
    names = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for key, value in overrides.items():
        if key not in names:
            raise ConfigError(f"unknown {owner} key {key!r}; valid keys: {', '.join(sorted(names))}")
        if isinstance(value, str) and hints[key] is not str:
            value = parse_value(value, hints[key], f"{owner}.{key}")
        elif isinstance(value, list) and typing.get_origin(hints[key]) is tuple:
            value = tuple(value)
        changes[key] = value
    return dataclasses.replace(config, **changes)


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a dataclass config."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}

