"""A name → object registry, in the style of PyG/mmcv: users pick components by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from kgkd.errors import ConfigError
from kgkd.utils.suggest import did_you_mean, suggestion

__all__ = ["Registry", "did_you_mean", "suggestion"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to classes/functions; unknown names get a did-you-mean error.

    >>> LOSSES = Registry("loss")
    >>> @LOSSES.register("kd")
    ... class KD: ...
    >>> LOSSES.get("kd") is KD
    True
    """

    def __init__(self, kind: str, aliases: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self.aliases = dict(aliases or {})  # other spellings → registered name, for did-you-mean only
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` (names are unique)."""

        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ConfigError(f"{self.kind} '{name}' is already registered")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """Return the object registered as ``name`` or raise a ConfigError with suggestions."""
        try:
            return self._items[name]
        except KeyError:
            hint = suggestion(name, self._items, self.aliases)
            raise ConfigError(
                f"unknown {self.kind} '{name}'.{hint} Available: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
