"""Company-graph sources are registered components: versioned names, the short names as aliases, plug-ins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kgreason.core.errors import ConfigError
from kgreason.finance.config import GraphSourceConfig
from kgreason.finance.graph import CompanyGraph
from kgreason.finance.sources import SOURCE_ALIASES, company_graph_sources, read_company_graph, source_name
from kgreason.finance.training import load_company_graph

EXAMPLE = Path(__file__).resolve().parents[1] / "knowledge" / "finance" / "example.ttl"
BUILT_INS = [
    "kgreason.finance.CSV.v1",
    "kgreason.finance.Generator.v1",
    "kgreason.finance.RDF.v1",
    "kgreason.finance.SMEsD.v1",
]


def _csv(folder: Path, n: int = 30) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["company_id,leverage"] + [f"c{i:03d},{i / n:.3f}" for i in range(n)]
    (folder / "companies.csv").write_text("\n".join(rows) + "\n")
    labels = ["company_id,defaulted"] + [f"c{i:03d},{int(i < n // 3)}" for i in range(n)]
    (folder / "labels.csv").write_text("\n".join(labels) + "\n")
    return folder


def _same(a: CompanyGraph, b: CompanyGraph) -> bool:
    return a.nodes == b.nodes and np.array_equal(a.edges, b.edges) and list(a.splits) == list(b.splits)


def test_built_ins_are_registered_under_versioned_names_and_short_aliases():
    assert [n for n in company_graph_sources.names() if n.startswith("kgreason.finance.")] == BUILT_INS
    assert sorted(SOURCE_ALIASES.values()) == BUILT_INS
    assert source_name("csv") == "kgreason.finance.CSV.v1"
    assert source_name("kgreason.finance.RDF.v1") == "kgreason.finance.RDF.v1"


def test_short_and_versioned_names_load_the_same_graph(tmp_path):
    folder = _csv(tmp_path / "data")
    short = load_company_graph(GraphSourceConfig(source="csv", path=str(folder)))
    versioned = load_company_graph(GraphSourceConfig(source="kgreason.finance.CSV.v1", path=str(folder)))
    assert _same(short, versioned) and short.num_companies == 30
    rdf = read_company_graph(GraphSourceConfig(source="kgreason.finance.RDF.v1", path=str(EXAMPLE)))
    assert _same(rdf, read_company_graph(GraphSourceConfig(source="rdf", path=str(EXAMPLE))))
    options = {"num_companies": 120, "num_groups": 30, "seed": 3}
    generated = read_company_graph(GraphSourceConfig(source="generator", options=options))
    again = read_company_graph(GraphSourceConfig(source="kgreason.finance.Generator.v1", options=options))
    assert _same(generated, again) and np.array_equal(generated.features, again.features, equal_nan=True)


def test_unknown_source_is_one_line_with_a_suggestion():
    with pytest.raises(ConfigError) as caught:
        load_company_graph(GraphSourceConfig(source="cvs", path="x"))
    message = str(caught.value)
    assert message.startswith("data.source: unknown company-graph source 'cvs'. Did you mean 'csv'?")
    assert "kgreason.finance.SMEsD.v1" in message and "\n" not in message


@pytest.mark.parametrize("source", ["csv", "kgreason.finance.RDF.v1"])
def test_file_sources_need_a_path(source):
    with pytest.raises(ConfigError, match="needs data.path"):
        read_company_graph(GraphSourceConfig(source=source))


def test_a_plug_in_source_is_named_by_config(tmp_path):
    folder = _csv(tmp_path / "data", n=24)

    def read_renamed(*, path=None, data_dir=None, prefix="x"):
        from kgreason.finance.csv_loader import load_company_csv

        graph = load_company_csv(path)
        graph.name = prefix + graph.name
        return graph

    company_graph_sources.register("tests.Renamed.v1", read_renamed)
    try:
        config = GraphSourceConfig(source="tests.Renamed.v1", path=str(folder), options={"prefix": "p-"})
        graph = load_company_graph(config)
    finally:
        company_graph_sources.unregister("tests.Renamed.v1")
    assert graph.name == "p-data" and graph.num_companies == 24
    with pytest.raises(ConfigError, match="unknown company-graph source 'tests.Renamed.v1'"):
        source_name("tests.Renamed.v1")
