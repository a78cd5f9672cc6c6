"""Registry: names, lazy module:attribute entries, resolution of name / class / instance."""

from __future__ import annotations

import pytest

from kgreason.core.errors import RegistryError
from kgreason.core.registry import Registry
from kgreason.kb.sources import knowledge_bases


class Widget:
    def __init__(self, size: int = 1) -> None:
        self.size = size


def test_register_decorator_and_resolve():
    reg: Registry = Registry(kind="widget")
    reg.register("tests.Widget.v1")(Widget)
    assert reg.resolve("tests.Widget.v1", size=3).size == 3
    assert reg.resolve(Widget, size=2).size == 2
    instance = Widget()
    assert reg.resolve(instance) is instance
    with pytest.raises(RegistryError, match="already built"):
        reg.resolve(instance, size=2)
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("tests.Widget.v1", object())


def test_unknown_name_suggests_closest():
    reg: Registry = Registry(kind="widget")
    reg.register("tests.Widget.v1", Widget)
    with pytest.raises(
        RegistryError, match=r"unknown widget 'tests.Widgit.v1'. Did you mean 'tests.Widget.v1'"
    ):
        reg.get("tests.Widgit.v1")


def test_lazy_entries_import_on_first_use():
    reg: Registry = Registry(kind="thing")
    reg.register("json.dumps.v1", "json:dumps")
    assert reg.get("json.dumps.v1")([1]) == "[1]"


def test_builtin_sources_are_registered():
    names = knowledge_bases.names()
    for name in ("kgreason.RDF.v1", "kgreason.TSV.v1", "kgreason.SplitFolder.v1", "kgreason.TripleStore.v1"):
        assert name in names
