"""Plug-in knowledge bases: decorator registration, entry points of an installed distribution, the conformance
test case for a custom KB and a TripleStore, and the knowledge/README.md example run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from kgreason.cli import app
from kgreason.core.errors import RegistryError
from kgreason.core.registry import Registry
from kgreason.kb import sources
from kgreason.kb.base import KnowledgeBase
from kgreason.kb.conformance import KnowledgeBaseTestCase, check_knowledge_base
from kgreason.kb.sources import knowledge_bases, open_kb
from kgreason.kb.store import TripleStore

REPO = Path(__file__).resolve().parents[1]
README = REPO / "knowledge" / "README.md"
GROUP = "kgreason.knowledge_bases"


class TinyKB(KnowledgeBase):
    """Three cities and a country, with labels and aliases; ``scale`` repeats the chain for bigger graphs."""

    name = "tiny-cities"

    def __init__(self, *, scale: int = 1) -> None:
        cities = [("Lyon", "Lugdunum"), ("Paris", "City of Light"), ("Marseille", "Massilia"), ("France", "")]
        self.names: list[tuple[str, str]] = []  # (label, alias or "") by entity id
        for copy in range(scale):
            tag = f" {copy}" if copy else ""
            self.names += [(label + tag, alias and alias + tag) for label, alias in cities]
        rows = [[4 * i + c, 0, 4 * i + 3] for i in range(scale) for c in range(3)]  # cities in their country
        rows += [[4 * i, 1, 4 * i + 1] for i in range(scale)]  # Lyon near Paris
        self.rows = torch.tensor(rows, dtype=torch.int64)  # (n, 3)

    @property
    def num_entities(self) -> int:
        return len(self.names)

    @property
    def num_relations(self) -> int:
        return 2

    def entity_key(self, entity: int) -> str:
        return f"city:{entity}"

    def relation_key(self, relation: int) -> str:
        return ("locatedIn", "nearTo")[relation]

    def entity_label(self, entity: int) -> str:
        return self.names[entity][0]

    def has_label(self, entity: int) -> bool:
        return True

    def entity_aliases(self, entity: int) -> tuple[str, ...]:
        alias = self.names[entity][1]
        return (alias,) if alias else ()

    def triples(self, split: str | None = None) -> torch.Tensor:
        return self.rows


# --------------------------------------------------------------------------------------------- (a) decorator
def test_decorator_registration_and_open_kb():
    name = "tests.Tiny.v1"
    assert name not in knowledge_bases
    try:
        registered = knowledge_bases.register(name)(TinyKB)
        assert registered is TinyKB  # the decorator returns the class unchanged
        kb = open_kb(None, format=name)
        assert isinstance(kb, TinyKB)
        assert open_kb(None, format=name, scale=2).num_entities == 8  # keyword arguments reach the class
        assert [m.best.label for m in kb.link("From Lugdunum to the City of Light")] == ["Lyon", "Paris"]
        assert kb.verbalize(kb.triples()[:1]) == ["Lyon located in France."]
        with pytest.raises(RegistryError, match="already registered"):
            knowledge_bases.register(name)(TripleStore)
        with pytest.raises(RegistryError, match="Did you mean 'tests.Tiny.v1'"):
            open_kb(None, format="tests.Tiny.v2")
    finally:
        knowledge_bases.unregister(name)
    assert name not in knowledge_bases


# ------------------------------------------------------------------------------------------ (b) entry points
PLUGIN_MODULE = '''
"""A demo plug-in distribution: one knowledge base, found through its entry point."""
import torch

from kgreason.kb.base import KnowledgeBase


class DemoKB(KnowledgeBase):
    name = "demo"

    def __init__(self, source=None, *, size=3):
        self.source = source
        self.size = size

    @property
    def num_entities(self):
        return self.size

    @property
    def num_relations(self):
        return 1

    def entity_key(self, entity):
        return f"node{entity}"

    def relation_key(self, relation):
        return "next"

    def triples(self, split=None):
        ids = torch.arange(self.size - 1)
        return torch.stack([ids, torch.zeros_like(ids), ids + 1], dim=1)  # (size - 1, 3)
'''


def write_distribution(root: Path, *, name: str, entry_points: dict[str, str], module: str | None) -> None:
    """A real (unpacked, wheel-style) distribution: a module plus ``<name>-0.1.dist-info``."""
    if module is not None:
        (root / f"{name}.py").write_text(module, encoding="utf-8")
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n", encoding="utf-8")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}", encoding="utf-8")


def test_entry_point_plugin_found_by_name_without_import(tmp_path, monkeypatch):
    from importlib.metadata import entry_points

    write_distribution(
        tmp_path,
        name="kgr_demo_plugin",
        entry_points={"demo.Chain.v1": "kgr_demo_plugin:DemoKB"},
        module=PLUGIN_MODULE,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "kgr_demo_plugin", raising=False)
    assert "demo.Chain.v1" in {ep.name for ep in entry_points(group=GROUP)}
    registry: Registry = Registry(kind="knowledge base", entry_point_group=GROUP)
    assert "kgr_demo_plugin" not in sys.modules  # nothing imported it
    plugin = registry.get("demo.Chain.v1")
    assert "kgr_demo_plugin" in sys.modules
    assert plugin.__name__ == "DemoKB" and issubclass(plugin, KnowledgeBase)
    assert "demo.Chain.v1" in registry.names()
    # open_kb resolves the plug-in by name through the (patched-in) fresh registry, passing the source along.
    monkeypatch.setattr(sources, "knowledge_bases", registry)
    kb = open_kb(tmp_path / "anything.dat", format="demo.Chain.v1", size=5)
    assert kb.source == tmp_path / "anything.dat"
    assert kb.triples().tolist() == [[0, 0, 1], [1, 0, 2], [2, 0, 3], [3, 0, 4]]
    assert check_knowledge_base(kb).ok
    monkeypatch.delitem(sys.modules, "kgr_demo_plugin")


def test_broken_entry_point_gives_a_clear_error(tmp_path, monkeypatch):
    write_distribution(
        tmp_path,
        name="kgr_broken_plugin",
        entry_points={"demo.Broken.v1": "kgr_no_such_module:KB"},
        module=None,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry = Registry(kind="knowledge base", entry_point_group=GROUP)
    with pytest.raises(RegistryError) as caught:
        registry.get("kgreason.TSV.v1")
    message = str(caught.value)
    assert "'demo.Broken.v1'" in message and "kgr_no_such_module:KB" in message
    assert GROUP in message and "No module named 'kgr_no_such_module'" in message


def test_installed_plugin_works_from_the_command_line(tmp_path):
    """A fresh process finds the plug-in through its entry point alone (no import flag)."""
    write_distribution(
        tmp_path,
        name="kgr_demo_plugin",
        entry_points={"demo.Chain.v1": "kgr_demo_plugin:DemoKB"},
        module=PLUGIN_MODULE,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-m", "kgreason.cli", "kb", "validate", "whatever", "--format", "demo.Chain.v1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "conformance of demo (DemoKB)" in done.stdout
    assert "OK: 10/10 checks passed" in done.stdout


# -------------------------------------------------------------------------------------- (c) the test case
class TestTinyKBConformance(KnowledgeBaseTestCase):
    sample = 20

    def make_kb(self) -> KnowledgeBase:
        return TinyKB(scale=30)


class TestTripleStoreConformance(KnowledgeBaseTestCase):
    def make_kb(self) -> KnowledgeBase:
        return open_kb(REPO / "knowledge" / "examples" / "family.ttl")


class TestSplitFolderConformance(KnowledgeBaseTestCase):
    sample = 200

    def make_kb(self) -> KnowledgeBase:
        from kgreason.core.paths import data_dir

        root = data_dir()
        if root is None or not (root / "kg" / "umls").is_dir():
            pytest.skip("public data folder not found")
        return open_kb(root / "kg" / "umls", progress=False)


# ------------------------------------------------------------------------------------------ README example
def readme_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_custom_kb_is_under_40_lines():
    (block,) = [b for b in readme_blocks("python") if "class OrgChartKB" in b]
    lines = block.splitlines()
    kb_lines = lines[: next(i for i, line in enumerate(lines) if line.startswith("kb = "))]
    while not kb_lines[-1].strip():
        kb_lines.pop()
    assert len(kb_lines) < 40
    (snippet,) = readme_blocks("toml")
    assert f'[project.entry-points."{GROUP}"]' in snippet and '"acme.OrgChart.v1"' in snippet


def test_readme_python_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    namespace: dict[str, object] = {"__name__": "readme"}
    try:
        for block in readme_blocks("python"):
            exec(compile(block, str(README), "exec"), namespace)
        printed = capsys.readouterr().out
        assert "Ada Moreau is the mother of Claire Moreau." in printed
        assert "[('Dee Fox', 'Dee Fox'), ('Ada Ruiz', 'Ada Ruiz')]" in printed
        assert "['Bea Kim reports to Ada Ruiz.']" in printed
        # The conformance test case as the README subclasses it.
        case = namespace["TestOrgChartKB"]
        assert case.__test__ is True
        for name in sorted(n for n in dir(case) if n.startswith("test_")):
            getattr(case(), name)()
        # The CLI lines, in process (the decorator registered the class), on a real org-chart file.
        chart = tmp_path / "org.tsv"
        chart.write_text("Bea Kim\tAda Ruiz\nDee Fox\tBea Kim\nEli Park\tAda Ruiz\n", encoding="utf-8")
        runner = CliRunner()
        validate = runner.invoke(app, ["kb", "validate", str(chart), "--format", "acme.OrgChart.v1"])
        assert validate.exit_code == 0, validate.output
        assert "OK: 10/10" in validate.output
        info = runner.invoke(app, ["kb", "info", str(chart), "--format", "acme.OrgChart.v1", "--json"])
        assert info.exit_code == 0 and '"num_entities": 4' in info.output, info.output
        linked = runner.invoke(
            app, ["link", "Eli Park asked Ada Ruiz.", "--kb", str(chart), "-f", "acme.OrgChart.v1"]
        )
        assert linked.exit_code == 0 and "Eli Park" in linked.output, linked.output
        # A malformed chart is refused with the file and line.
        bad = tmp_path / "bad.tsv"
        bad.write_text("Bea Kim\tAda Ruiz\nDee Fox\n", encoding="utf-8")
        refused = runner.invoke(app, ["kb", "validate", str(bad), "--format", "acme.OrgChart.v1"])
        assert refused.exit_code == 2
        assert f"{bad}, line 2: not two columns (expected employee<TAB>manager)" in refused.output
    finally:
        knowledge_bases.unregister("acme.OrgChart.v1")


def test_entry_point_snippet_matches_a_real_distribution(tmp_path, monkeypatch):
    """The README's entry-point declaration, as an installed package would carry it, resolves to the class."""
    (block,) = [b for b in readme_blocks("python") if "class OrgChartKB" in b]
    module = block.split("\nkb = ")[0]  # the module part, without the lines that use it
    (snippet,) = readme_blocks("toml")
    name, target = re.search(r'^"([^"]+)" = "([^"]+)"$', snippet, flags=re.M).groups()
    write_distribution(tmp_path, name="acme_kb", entry_points={name: target}, module=module)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "acme_kb", raising=False)
    registry: Registry = Registry(kind="knowledge base", entry_point_group=GROUP)
    try:
        plugin = registry.get(name)
        assert plugin.__name__ == "OrgChartKB"
        assert check_knowledge_base(plugin()).ok
    finally:
        knowledge_bases.unregister(name)  # importing the module ran its decorator too
        monkeypatch.delitem(sys.modules, "acme_kb", raising=False)
