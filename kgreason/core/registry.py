"""Named registries of components, filled by decorators and by package entry points.

A component is referred to by a versioned name (``"kgreason.RDF.v1"``), by the class or function itself, or by
an instance; :meth:`Registry.resolve` turns any of these into an object at the boundary (PyKEEN's
``resolver`` style). Installed packages add components through an entry-point group, so users need no import
flag: ``[project.entry-points."kgreason.knowledge_bases"] my_kb = "my_pkg:MyKB"``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from functools import reduce
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from kgreason.core.errors import RegistryError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return `` Did you mean 'x'?`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    if not close:  # a dotted key given without its section: compare the last parts
        tails = {c.rsplit(".", 1)[-1]: c for c in choices}
        close = [
            tails[t] for t in difflib.get_close_matches(name.rsplit(".", 1)[-1], list(tails), n=1, cutoff=0.6)
        ]
    return f" Did you mean {close[0]!r}?" if close else ""


class Registry(Generic[T]):
    """A mapping from names to components, with lazy loading of an entry-point group.

    Args:
        kind: what the registry holds, used in messages (``"knowledge base"``).
        entry_point_group: the ``importlib.metadata`` entry-point group scanned on first lookup.
    """

    def __init__(self, *, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._entry_points_loaded = False

    def register(
        self, name: str, obj: T | None = None, *, aliases: tuple[str, ...] = (), overwrite: bool = False
    ) -> Any:
        """Register ``obj`` under ``name`` (and other names, ``aliases``); without ``obj`` return a decorator.

        An alias resolves like its name but is not listed by :meth:`names` (e.g. a versioned name beside the
        short name saved models already carry).
        """

        def add(item: T) -> T:
            if name in self._items and self._items[name] is not item and not overwrite:
                raise RegistryError(f"{self.kind} {name!r} is already registered")
            for alias in aliases:
                if self._aliases.get(alias, name) != name and not overwrite:
                    raise RegistryError(f"{self.kind} alias {alias!r} already names {self._aliases[alias]!r}")
            self._items[name] = item
            self._aliases.update(dict.fromkeys(aliases, name))
            return item

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests and for replacing a component at run time)."""
        self._load_entry_points()
        self._items.pop(name, None)
        self._aliases = {a: n for a, n in self._aliases.items() if n != name and a != name}

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or self.entry_point_group is None:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name in self._items:
                continue
            try:
                self._items[ep.name] = ep.load()
            except Exception as err:  # a broken plug-in must not break kgreason
                raise RegistryError(
                    f"the {self.kind} plug-in {ep.name!r} ({ep.value}) from entry-point group "
                    f"{self.entry_point_group!r} failed to load: {err}"
                ) from err

    def names(self) -> list[str]:
        """All registered names, including those of installed plug-ins."""
        self._load_entry_points()
        return sorted(self._items)

    def aliases(self) -> dict[str, str]:
        """Each alias and the name it resolves to."""
        self._load_entry_points()
        return dict(sorted(self._aliases.items()))

    def canonical(self, name: str) -> str:
        """The registered name ``name`` stands for (itself unless it is an alias)."""
        self._load_entry_points()
        return name if name in self._items else self._aliases.get(name, name)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """Return the component registered as ``name``, or raise with a suggestion.

        A component registered as a ``"module:attribute"`` string is imported on first use, so registering
        built-ins costs no import.
        """
        self._load_entry_points()
        name = self.canonical(name)
        try:
            item = self._items[name]
        except KeyError:
            names = sorted([*self._items, *self._aliases])
            raise RegistryError(
                f"unknown {self.kind} {name!r}.{did_you_mean(name, names)} Registered: {', '.join(names) or 'none'}"
            ) from None
        if isinstance(item, str) and ":" in item:
            module, _, attribute = item.partition(":")
            item = reduce(getattr, attribute.split("."), import_module(module))
            self._items[name] = item
        return item

    def resolve(self, query: str | type | Callable[..., Any] | Any, /, **kwargs: Any) -> Any:
        """Turn a registered name, a class/factory or an instance into an instance.

        Names and callables are called with ``kwargs``; an instance is returned as it is (``kwargs`` must then
        be empty).
        """
        if isinstance(query, str):
            return self.get(query)(**kwargs)
        if inspect.isclass(query) or inspect.isfunction(query) or inspect.ismethod(query):
            return query(**kwargs)
        if kwargs:
            raise RegistryError(f"keyword arguments {sorted(kwargs)} given for an already built {self.kind}")
        return query
