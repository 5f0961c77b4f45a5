"""One YAML → typed-dataclass coercer, shared by recipe configs and ``EngineConfig``.

:func:`from_mapping` checks every key of a mapping against a dataclass's fields
(did-you-mean for typos, aliases included) and every value against the field's
annotation with :func:`coerce`. Errors are :class:`~kgkd.errors.ConfigValueError`
carrying the dotted key, so a loader can say which file line or ``--set`` gave
the bad value. A nested dataclass with its own ``from_dict`` classmethod (e.g.
``EngineConfig``) builds itself; its errors are prefixed with the section key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, Union

from kgkd.errors import ConfigError, ConfigValueError
from kgkd.utils.suggest import suggestion

__all__ = ["coerce", "describe", "from_mapping", "type_name"]

C = TypeVar("C")

#: Scalar annotation → (does a YAML value fit it, what the error says it must be).
_SCALARS: dict[type, tuple[Callable[[Any], bool], str]] = {
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
}


def type_name(tp: Any) -> str:
    """A readable annotation: ``int | null``, ``list[str]``, ``'mse' | 'cosine'``."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def describe(value: Any) -> str:
    """``'many' (str)``: a value and its type, for error messages."""
    return f"{value!r} ({type(value).__name__})"


def coerce(
    value: Any,
    tp: Any,
    key: str,
    *,
    what: str = "config",
    aliases: Mapping[str, str] | None = None,
) -> Any:
    """Check ``value`` against annotation ``tp`` and return it (ints widen to float).

    ``key`` is the dotted key named in errors, ``what`` the kind of config
    (``"config"``, ``"engine config"``), ``aliases`` other spellings of keys for
    did-you-mean hints in nested sections.
    """
    label = f"{what} key '{key}'"
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigValueError(
                f"{label} must be a mapping of {tp.__name__} settings, got {describe(value)}", key
            )
        own = getattr(tp, "from_dict", None)
        if callable(own):  # a section that validates itself: its errors are prefixed with the key
            try:
                return own(value)
            except ConfigError as exc:
                inner = getattr(exc, "key", None)
                raise ConfigValueError(
                    f"{key}: {exc}", f"{key}.{inner}" if inner else key
                ) from None
        return from_mapping(tp, value, section=key, what=what, aliases=aliases)  # type: ignore[arg-type]
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key, what=what, aliases=aliases)
            except ConfigError:
                continue
        raise ConfigValueError(f"{label} must be {type_name(tp)}, got {describe(value)}", key)
    if value is None:
        raise ConfigValueError(f"{label} may not be null; give a {type_name(tp)} value", key)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            hint = suggestion(value, allowed)
            raise ConfigValueError(
                f"{label} must be one of {list(allowed)}, got {value!r}.{hint}", key
            )
        return value
    if origin is list or tp is list:
        if not isinstance(value, list):
            raise ConfigValueError(
                f"{label} must be a list ({type_name(tp)}), got {describe(value)}", key
            )
        (item_tp,) = typing.get_args(tp) or (Any,)
        return [
            coerce(v, item_tp, f"{key}[{i}]", what=what, aliases=aliases)
            for i, v in enumerate(value)
        ]
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigValueError(
                f"{label} must be a list ({type_name(tp)}), got {describe(value)}", key
            )
        args = [a for a in typing.get_args(tp) if a is not Ellipsis] or [Any]
        return tuple(
            coerce(v, args[0] if len(args) == 1 else args[i], f"{key}[{i}]", what=what, aliases=aliases)
            for i, v in enumerate(value)
        )
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigValueError(f"{label} must be a mapping, got {describe(value)}", key)
        return dict(value)
    if tp in _SCALARS:
        accepts, wanted = _SCALARS[tp]
        if not accepts(value):
            raise ConfigValueError(f"{label} must be {wanted}, got {describe(value)}", key)
        return float(value) if tp is float else value
    raise ConfigError(f"{label} has an unsupported type {type_name(tp)}")  # pragma: no cover


def from_mapping(
    cls: type[C],
    data: Mapping[str, Any],
    *,
    section: str = "",
    what: str = "config",
    aliases: Mapping[str, str] | None = None,
) -> C:
    """Build dataclass ``cls`` from ``data``; unknown keys get the closest valid key.

    ``section`` is the dotted path of ``data`` (``"data"``, ``""`` at the top), used
    in every key an error names.
    """
    if not isinstance(data, Mapping):
        where = f" '{section}'" if section else ""
        raise ConfigValueError(
            f"{what}{where} must be a mapping of settings, got {describe(data)}", section
        )
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    prefix = f"{section}." if section else ""
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            hint = suggestion(key, names, aliases, cutoff=0.5, prefix=prefix)
            under = f" under {section!r}" if section else ""
            raise ConfigValueError(
                f"unknown {what} key '{dotted}'.{hint} Valid keys{under}: {', '.join(names)}",
                dotted,
            )
        kwargs[key] = coerce(value, hints[key], dotted, what=what, aliases=aliases)
    return cls(**kwargs)
