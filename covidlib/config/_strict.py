"""Strict (de)serialisation of the frozen configs: unknown or missing keys are errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    pass


_Config = TypeVar("_Config")


def _check_keys(cls: type, values: Any, where: str) -> dict[str, Any]:
    """Return ``values`` as a dict after refusing unknown or missing keys of ``cls``."""
    label = where or cls.__name__
    if not isinstance(values, Mapping):
        raise ValueError(f"config key {label!r} must be a mapping, got {values!r}.")
    names = [f.name for f in fields(cls)]
    prefix = f"{where}." if where else ""
    unknown = sorted(str(k) for k in set(values) - set(names))
    if unknown:
        raise ValueError(
            f"unknown config key '{prefix}{unknown[0]}'"
            + (f" (and {unknown[1:]})" if len(unknown) > 1 else "")
            + f"; the keys of {label} are {names}."
        )
    missing = [name for name in names if name not in values]
    if missing:
        raise ValueError(
            f"missing config key '{prefix}{missing[0]}'"
            + (f" (and {missing[1:]})" if len(missing) > 1 else "")
            + f"; a saved {label} lists all of {names}."
        )
    return dict(values)


def _number(value: Any, name: str, kind: type) -> Any:
    """Return ``value`` as an int or float, refusing booleans, strings and None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    if kind is int:
        if float(value) != int(value):
            raise ValueError(f"{name} must be an integer, got {value!r}.")
        return int(value)
    return float(value)


def _pair(value: Any, name: str, kind: type) -> tuple[Any, Any]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be a pair of numbers, got {value!r}.")
    return (_number(value[0], name, kind), _number(value[1], name, kind))


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _fields_dict(obj: Any) -> dict[str, Any]:
    """A frozen config as JSON-ready data: nested configs become dicts, tuples lists."""
    out: dict[str, Any] = {}
    for item in fields(obj):
        value = getattr(obj, item.name)
        if hasattr(value, "to_dict"):
            value = value.to_dict()
        elif isinstance(value, tuple):
            value = json.loads(json.dumps(value))
        out[item.name] = value
    return out


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Return the dotted keys whose values differ between two nested config dicts.

    Example:
        >>> config_differences({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": 0})
        ['b.c', 'd']
    """
    differences: list[str] = []
    for key in sorted(set(saved) | set(current)):
        left, right = saved.get(key, _MISSING), current.get(key, _MISSING)
        if isinstance(left, Mapping) and isinstance(right, Mapping):
            differences += [f"{key}.{sub}" for sub in config_differences(left, right)]
        elif left != right:
            differences.append(key)
    return differences


def describe_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """Return ``key: saved X, requested Y`` for every differing dotted key ('' if none).

    Example:
        >>> describe_differences({"augment": {"blur_sigma": [0.1, 1.5]}},
        ...                      {"augment": {"blur_sigma": [0.1, 2.0]}})
        'augment.blur_sigma: saved [0.1, 1.5], requested [0.1, 2.0]'
    """
    return "; ".join(
        f"{key}: saved {_dig(saved, key)!r}, requested {_dig(current, key)!r}"
        for key in config_differences(saved, current)
    )


def _dig(data: Any, dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        value = value.get(part, "<missing>") if isinstance(value, Mapping) else "<missing>"
    return value


_MISSING = object()
