"""A registry of named things (executor kinds, ...): a name is registered once, and a lookup of an unknown
name says which names exist and the closest one."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> None:
        if not name:
            raise ValueError(f"a {self.what} needs a name")
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._items[name] = item

    def get(self, name: str) -> T:
        if name not in self._items:
            hint = difflib.get_close_matches(name, list(self._items), n=1)
            raise ConfigError(
                f"unknown {self.what} {name!r}; known: {', '.join(self._items)}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
            )
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        """In the order registered."""
        return list(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
