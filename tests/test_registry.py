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


def test_aliases_resolve_but_are_not_listed():
    reg: Registry = Registry(kind="widget")
    reg.register("widget", Widget, aliases=("tests.Widget.v1",))
    assert reg.names() == ["widget"] and reg.aliases() == {"tests.Widget.v1": "widget"}
    assert reg.get("tests.Widget.v1") is Widget and "tests.Widget.v1" in reg
    assert reg.canonical("tests.Widget.v1") == "widget"
    with pytest.raises(RegistryError, match="alias 'tests.Widget.v1' already names 'widget'"):
        reg.register("other", object(), aliases=("tests.Widget.v1",))
    with pytest.raises(RegistryError, match="Did you mean 'tests.Widget.v1'"):
        reg.get("tests.Widget.v2")
    reg.unregister("widget")
    assert "tests.Widget.v1" not in reg and reg.aliases() == {}


def test_builtin_tasks_and_rule_sets_answer_to_versioned_names():
    from kgreason.rules import resolve_rules
    from kgreason.rules.kinship import kinship_rules
    from kgreason.tasks import build_task

    task = build_task("kgreason.TokenClassification.v1", labels=["O", "B-PER"])
    assert task.config()["name"] == "token_classification"  # saved models keep the short name
    assert resolve_rules("kgreason.Kinship.v1") is kinship_rules()
    with pytest.raises(RegistryError, match="unknown rule set 'kinshp'. Did you mean 'kinship'"):
        resolve_rules("kinshp")


def test_a_plugged_in_rule_set_is_a_config_line(tmp_path, monkeypatch):
    from kgreason.core.config import load_config
    from kgreason.rules.language import parse_rules
    from kgreason.rules.sets import rule_sets
    from kgreason.runs.config import ExperimentConfig

    rules = parse_rules(
        "type person.\npred parent(person, person), grandparent(person, person).\n"
        "grandparent(X, Z) :- parent(X, Y), parent(Y, Z).\n"
    )
    rule_sets.register("tests.Family.v1", lambda: rules)
    try:
        (tmp_path / "exp.yaml").write_text("knowledge:\n  rules: tests.Family.v1\n")
        monkeypatch.chdir(tmp_path)
        config = load_config(ExperimentConfig, tmp_path / "exp.yaml")
        assert config.knowledge.rules == "tests.Family.v1"
        from kgreason.rules import resolve_rules

        assert resolve_rules(config.knowledge.rules) is rules
        (tmp_path / "bad.yaml").write_text("knowledge:\n  rules: tests.Famly.v1\n")
        with pytest.raises(Exception, match="no such file or folder.*tests.Family.v1"):
            load_config(ExperimentConfig, tmp_path / "bad.yaml")
    finally:
        rule_sets.unregister("tests.Family.v1")
