"""A registry of named things (stages, input formats, refiner backends, executor kinds): a name is
registered once, and a lookup of an unknown name says which names exist and the closest one."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class UnknownName(ConfigError, KeyError):
    """A lookup of a name nothing registered. A KeyError too: `name in registry` callers and older code
    catching KeyError keep working."""

    def __str__(self) -> str:  # KeyError would quote the message
        return ConfigError.__str__(self)


def where(obj: Any) -> str:
    """`module.qualname` of a registered class or function (what a duplicate's message names)."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def same_definition(old: Any, new: Any) -> bool:
    """The same class or function defined again: a module imported a second time (importlib test mode, a
    plugin loaded by path and by name) registers again, and that is no conflict."""
    return old is new or where(old) == where(new)


class Registry(Generic[T]):
    """`what` names the kind of thing in messages ("stage", "reader format"). `origin(item)` is the class or
    function that defined an item (default: the item): a name registered again by the same definition is
    no conflict, by another one is refused, naming both."""

    def __init__(self, what: str, origin: Callable[[T], Any] | None = None) -> None:
        self.what = what
        self._origin: Callable[[T], Any] = origin or (lambda item: item)
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> None:
        if not name:
            raise ValueError(f"a {self.what} needs a name")
        old = self._items.get(name)
        if old is not None:
            first, second = self._origin(old), self._origin(item)
            if not same_definition(first, second):
                raise ValueError(f"{self.what} {name!r} registered twice ({where(first)} and {where(second)})")
        self._items[name] = item

    def get(self, name: str) -> T:
        if name not in self._items:
            raise UnknownName(self.unknown(name))
        return self._items[name]

    def unknown(self, name: object) -> str:
        """The message for a name not registered: the known names, and the closest one."""
        hint = difflib.get_close_matches(str(name), list(self._items), n=1)
        return (
            f"unknown {self.what} {name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; known: {', '.join(self._items)}"
        )

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        """In the order registered."""
        return list(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def copy(self) -> Registry[T]:
        """A registry holding the same entries, which later registrations leave alone (a test's own)."""
        twin: Registry[T] = Registry(self.what, self._origin)
        twin._items = dict(self._items)
        return twin
