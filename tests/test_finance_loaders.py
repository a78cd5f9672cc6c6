"""Finance ontology, CSV loader / writer and RDF loader: tiny fixtures written into tmp_path."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kgreason.finance.csv_loader import load_company_csv
from kgreason.finance.errors import FinanceDataError
from kgreason.finance.graph import (
    COMPANY,
    INDUSTRY,
    NODE_KINDS,
    PERSON,
    REGION,
    CompanyGraph,
    CompanyGraphError,
)
from kgreason.finance.ontology import DEFAULT_PATH, load_ontology
from kgreason.finance.rdf_loader import load_company_rdf
from kgreason.finance.writer import write_company_csv

EXAMPLE = Path(__file__).resolve().parents[1] / "knowledge" / "finance" / "example.ttl"

GOOD = {
    "companies.csv": """\
        company_id,name,registered_capital,paid_in_capital,founded_months_ago,industry,region,lawsuits_lost
        c1,Alpha Ltd,1000,800,120,retail,north,0
        c2,Beta Ltd,500,,60,retail,south,2
        c3,Gamma Ltd,200,200,30,steel,north,1
        """,
    "persons.csv": """\
        person_id,name
        p1,Ann Lee
        """,
    "edges.csv": """\
        head,relation,tail,weight
        c1,owns,c2,0.6
        p1,owns,c1,1.0
        c1,guarantees,c3,
        c3,supplies,c1,250
        p1,legalRepresentativeOf,c2,
        p2,executiveOf,c3,
        """,
    "labels.csv": """\
        company_id,defaulted,period,split
        c1,0,2020,train
        c2,1,2020,train
        c3,0,2021,test
        """,
    "texts.csv": """\
        company_id,text
        c2,"Beta missed a payment, again."
        c2,Beta's chief executive resigned.
        """,
}


def write_folder(folder: Path, files: dict[str, str], **changes: str) -> Path:
    """Write the fixture files (with ``changes``: file name with dots as underscores -> new text)."""
    folder.mkdir(parents=True, exist_ok=True)
    merged = dict(files)
    for key, text in changes.items():
        merged[key.replace("_csv", ".csv")] = text
    for name, text in merged.items():
        if text is not None:
            (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def replace_line(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


def append(text: str, line: str) -> str:
    return textwrap.dedent(text) + line + "\n"


def canonical(graph: CompanyGraph) -> dict:
    """A graph as plain dicts keyed by node ids (order-free), for round-trip comparisons."""
    rows = graph.company_rows()
    return {
        "nodes": dict(zip(graph.nodes, (NODE_KINDS[k] for k in graph.kinds.tolist()), strict=True)),
        "edges": {
            (graph.nodes[h], graph.relations[r], graph.nodes[t]): float(w)
            for (h, r, t), w in zip(graph.edges.tolist(), graph.edge_weight.tolist(), strict=True)
        },
        "feature_names": list(graph.feature_names),
        "features": {key: graph.features[row].tobytes() for key, row in rows.items()},
        "labels": {key: int(graph.labels[row]) for key, row in rows.items()},
        "splits": {key: str(graph.splits[row]) for key, row in rows.items()},
        "periods": {key: int(graph.periods[row]) for key, row in rows.items()},
        "texts": {key: list(graph.texts[row]) for key, row in rows.items()},
        "lawsuits": {key: list(graph.lawsuits[row]) for key, row in rows.items()},
        "names": dict(graph.metadata.get("names", {})),
    }


# ------------------------------------------------------------------------------------------------ ontology
def test_ontology_classes_relations_and_annotations():
    onto = load_ontology()
    assert onto.path == DEFAULT_PATH and DEFAULT_PATH.is_file()
    assert {"Company", "Person", "Industry", "Region", "Lawsuit", "Qualification"} <= set(onto.classes)
    assert onto.classes["Qualification"].kind == "Industry" and onto.classes["Lawsuit"].kind == ""
    owns = onto.relations["owns"]
    assert owns.domain == ("Company", "Person") and owns.range == ("Company",) and owns.ownership
    assert owns.label == "owns" and "share" in owns.comment
    assert onto.ownership_relations == ("owns",)
    for name in ("guarantees", "supplies", "branchOf", "lendsTo", "tradesWith", "rentsFrom", "creditorOf"):
        assert onto.relations[name].domain == ("Company",) == onto.relations[name].range
    for name in ("legalRepresentativeOf", "executiveOf", "supervisorOf"):
        assert onto.relations[name].domain == ("Person",)
    assert onto.relations["inIndustry"].range == ("Industry",)
    assert onto.relations["inRegion"].range == ("Region",)
    features = {a.feature for a in onto.company_attributes.values() if a.feature}
    assert features == {"registered_capital", "paid_in_capital", "founded_months_ago"}
    assert {"defaulted", "period", "split", "news"} <= set(onto.company_attributes)
    assert onto.company_attributes["defaulted"].datatype == "xsd:boolean"
    assert set(onto.lawsuit_properties) == {
        "plaintiff",
        "defendant",
        "cause",
        "court",
        "outcome",
        "monthsBefore",
    }
    assert len(onto.smesd_edge_types) == 20


def test_check_edge_domain_range_and_smesd_names():
    onto = load_ontology()
    assert onto.check_edge("owns", "Person", "Company") is None
    assert onto.check_edge("owns", "Company", "Company") is None
    assert (
        onto.check_edge("guarantees", "Person", "Company")
        == "guarantees needs a Company as head, got a Person"
    )
    assert "as tail, got a Person" in onto.check_edge("owns", "Company", "Person")
    assert (
        onto.check_edge("hasQualification", "Company", "Industry") is None
    )  # Qualification is Industry-kind
    assert onto.check_edge("inRegion", "Company", "Industry") is not None
    assert "did you mean 'guarantees'" in onto.check_edge("guarantee", "Company", "Company")
    # SMEsD names check as the relation they map to, inverses swapped
    assert onto.check_edge("invest_CP", "Person", "Company") is None
    assert onto.check_edge("invested_CP", "Company", "Person") is None
    assert "inverse of owns" in onto.check_edge("invested_CP", "Person", "Company")
    assert onto.check_edge("supervised", "Company", "Person") is None
    assert onto.resolve("invested_CC") == (onto.relations["owns"], False)
    assert onto.resolve("invest_CC") == (onto.relations["owns"], True)


# ---------------------------------------------------------------------------------------------- CSV: good
def test_csv_loads_everything(tmp_path):
    graph = load_company_csv(write_folder(tmp_path / "g", GOOD), name="tiny")
    assert graph.name == "tiny"
    index = graph.node_index()
    assert graph.company_ids() == ["c1", "c2", "c3"]
    assert (
        graph.kinds[index["p1"]] == PERSON and graph.kinds[index["p2"]] == PERSON
    )  # p2 implicit (executiveOf)
    assert graph.kinds[index["industry:retail"]] == INDUSTRY and graph.kinds[index["region:south"]] == REGION
    assert graph.kinds[graph.companies].tolist() == [COMPANY] * 3
    assert graph.feature_names == [
        "registered_capital",
        "paid_in_capital",
        "founded_months_ago",
        "lawsuits_lost",
    ]
    assert graph.features[0].tolist() == [1000, 800, 120, 0]
    assert math.isnan(graph.features[1, 1])  # empty cell = missing
    assert graph.labels.tolist() == [0, 1, 0]
    assert graph.splits.tolist() == ["train", "train", "test"] and graph.periods.tolist() == [
        2020,
        2020,
        2021,
    ]
    assert graph.texts == [[], ["Beta missed a payment, again.", "Beta's chief executive resigned."], []]
    assert graph.metadata["names"] == {
        "c1": "Alpha Ltd",
        "c2": "Beta Ltd",
        "c3": "Gamma Ltd",
        "p1": "Ann Lee",
    }
    edges = canonical(graph)["edges"]
    assert edges[("c1", "owns", "c2")] == pytest.approx(0.6)
    assert edges[("c3", "supplies", "c1")] == 250.0 and edges[("c1", "guarantees", "c3")] == 1.0
    assert ("c2", "inIndustry", "industry:retail") in edges and ("c3", "inRegion", "region:north") in edges
    assert len(edges) == 6 + 3 + 3
    assert graph.edges_of("owns").shape == (2, 2)
    assert graph.monotone == {}  # no lawsuits_defendant columns here


def test_csv_only_companies(tmp_path):
    folder = tmp_path / "g"
    folder.mkdir()
    (folder / "companies.csv").write_text("company_id\nx\ny\n", encoding="utf-8")
    graph = load_company_csv(folder)
    assert (
        graph.company_ids() == ["x", "y"] and graph.edges.shape == (0, 3) and graph.features.shape == (2, 0)
    )
    assert graph.labels.tolist() == [-1, -1]


def test_csv_allows_ownership_cycles_when_asked(tmp_path):
    edges = append(GOOD["edges.csv"], "c2,owns,c1,0.1")
    folder = write_folder(tmp_path / "g", GOOD, edges_csv=edges)
    with pytest.raises(FinanceDataError, match="ownership cycle"):
        load_company_csv(folder)
    assert load_company_csv(folder, allow_ownership_cycles=True).edges_of("owns").shape == (3, 2)


# ----------------------------------------------------------------------------------------------- CSV: bad
BAD_CASES = {
    "unknown company in labels": (
        "labels_csv",
        lambda t: append(t, "c9,1,,"),
        "labels.csv, line 5: unknown company id 'c9'",
    ),
    "person in labels": (
        "labels_csv",
        lambda t: append(t, "p1,1,,"),
        "labels.csv, line 5: 'p1' is a Person, not a company",
    ),
    "unknown company in texts": (
        "texts_csv",
        lambda t: append(t, "c7,Hello."),
        "texts.csv, line 4: unknown company id 'c7'",
    ),
    "empty text": ("texts_csv", lambda t: append(t, 'c1,"   "'), "texts.csv, line 4: empty text for 'c1'"),
    "edge to a missing company": (
        "edges_csv",
        lambda t: append(t, "c1,guarantees,c9,"),
        "edges.csv, line 8: unknown company id 'c9' as tail of guarantees",
    ),
    "edge from an unknown owner": (
        "edges_csv",
        lambda t: append(t, "zz,owns,c1,0.5"),
        "edges.csv, line 8: unknown id 'zz' as head of owns",
    ),
    "relation not in the ontology": (
        "edges_csv",
        lambda t: append(t, "c1,guarante,c2,"),
        "edges.csv, line 8: relation 'guarante' is not in the finance ontology; did you mean 'guarantees'",
    ),
    "person as guarantor": (
        "edges_csv",
        lambda t: append(t, "p1,guarantees,c2,"),
        "edges.csv, line 8: guarantees needs a Company as head, got a Person ('p1' -> 'c2')",
    ),
    "company as legal representative": (
        "edges_csv",
        lambda t: append(t, "c1,legalRepresentativeOf,c2,"),
        "edges.csv, line 8: legalRepresentativeOf needs a Person as head, got a Company",
    ),
    "ownership cycle": (
        "edges_csv",
        lambda t: append(t, "c2,owns,c1,0.1"),
        "edges.csv, line 8: ownership cycle c1 -> c2 -> c1 (edges at lines 2, 8)",
    ),
    "ownership share above 1": (
        "edges_csv",
        lambda t: replace_line(t, "c1,owns,c2,0.6", "c1,owns,c2,60"),
        "edges.csv, line 2: owns weight 60 (expected a share between 0 and 1)",
    ),
    "non-numeric weight": (
        "edges_csv",
        lambda t: replace_line(t, "c3,supplies,c1,250", "c3,supplies,c1,lots"),
        "edges.csv, line 5: weight 'lots' is not a number",
    ),
    "duplicate edge": (
        "edges_csv",
        lambda t: append(t, "c1,guarantees,c3,"),
        "edges.csv, line 8: duplicate edge c1 guarantees c3",
    ),
    "self loop": (
        "edges_csv",
        lambda t: append(t, "c1,supplies,c1,"),
        "edges.csv, line 8: supplies edge from 'c1' to itself",
    ),
    "missing edge column": (
        "edges_csv",
        lambda t: "head,relaton,tail\nc1,owns,c2\n",
        "edges.csv, line 1: missing column 'relation'; found 'relaton', did you mean 'relation'?",
    ),
    "negative capital": (
        "companies_csv",
        lambda t: replace_line(t, "c3,Gamma Ltd,200,", "c3,Gamma Ltd,-5,"),
        "companies.csv, line 4: negative capital: registered_capital = -5",
    ),
    "non-numeric feature": (
        "companies_csv",
        lambda t: replace_line(t, "c2,Beta Ltd,500,", "c2,Beta Ltd,12k,"),
        "companies.csv, line 3: registered_capital '12k' is not a number",
    ),
    "fractional lawsuit count": (
        "companies_csv",
        lambda t: replace_line(t, "north,1", "north,1.5"),
        "companies.csv, line 4: lawsuits_lost '1.5' is not a valid count",
    ),
    "duplicate company id": (
        "companies_csv",
        lambda t: append(t, "c1,Again,1,1,1,retail,north,0"),
        "companies.csv, line 5: duplicate company_id 'c1' (first at line 2)",
    ),
    "person id equal to a company id": (
        "persons_csv",
        lambda t: append(t, "c2,Someone"),
        "persons.csv, line 3: duplicate id 'c2' (already defined at companies.csv, line 3)",
    ),
    "missing company_id column": (
        "companies_csv",
        lambda t: replace_line(t, "company_id,name", "companyid,name"),
        "companies.csv, line 1: missing column 'company_id'; found 'companyid', did you mean 'company_id'?",
    ),
    "label column in companies.csv": (
        "companies_csv",
        lambda t: "company_id,defaulted\nc1,1\n",
        "companies.csv, line 1: outcomes belong in labels.csv",
    ),
    "wrong field count": (
        "companies_csv",
        lambda t: append(t, "c4,Delta"),
        "companies.csv, line 5: row has 2 fields (expected 8 fields",
    ),
    "label not 0/1": (
        "labels_csv",
        lambda t: replace_line(t, "c2,1,2020", "c2,yes,2020"),
        "labels.csv, line 3: defaulted 'yes' is not 0 or 1",
    ),
    "duplicate label": (
        "labels_csv",
        lambda t: append(t, "c1,0,,"),
        "labels.csv, line 5: duplicate label for 'c1' (first at line 2)",
    ),
    "unknown split": (
        "labels_csv",
        lambda t: replace_line(t, "2021,test", "2021,tst"),
        "labels.csv, line 4: unknown split 'tst'; did you mean 'test'?",
    ),
    "unknown labels column": (
        "labels_csv",
        lambda t: "company_id,defaulted,note\nc1,0,x\n",
        "labels.csv, line 1: unknown column 'note'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES), ids=list(BAD_CASES))
def test_csv_bad_input_names_file_and_line(tmp_path, case):
    key, change, message = BAD_CASES[case]
    file_name = key.replace("_csv", ".csv")
    folder = write_folder(tmp_path / "g", GOOD, **{key: change(textwrap.dedent(GOOD[file_name]))})
    with pytest.raises(FinanceDataError) as info:
        load_company_csv(folder)
    assert message in str(info.value)
    assert str(info.value).startswith(str(folder / file_name))


def test_csv_invalid_utf8_and_missing_companies(tmp_path):
    folder = write_folder(tmp_path / "g", GOOD)
    (folder / "texts.csv").write_bytes(b"company_id,text\nc1,ok\nc2,caf\xe9\n")
    with pytest.raises(FinanceDataError, match=r"texts.csv, line 3: invalid UTF-8 byte 0xe9"):
        load_company_csv(folder)
    with pytest.raises(FinanceDataError, match="companies.csv not found"):
        load_company_csv(tmp_path / "nothing")


def test_csv_period_conflict(tmp_path):
    companies = "company_id,period\nc1,2019\n"
    folder = write_folder(
        tmp_path / "g", {"companies.csv": companies, "labels.csv": "company_id,defaulted,period\nc1,1,2020\n"}
    )
    with pytest.raises(
        FinanceDataError, match=r"labels.csv, line 2: period 2020 contradicts companies.csv line 2"
    ):
        load_company_csv(folder)


# -------------------------------------------------------------------------------------------- round trips
def test_csv_round_trip(tmp_path):
    graph = load_company_csv(write_folder(tmp_path / "in", GOOD))
    out = write_company_csv(graph, tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == [
        "companies.csv",
        "edges.csv",
        "groups.csv",
        "labels.csv",
        "lawsuits.csv",
        "persons.csv",
        "texts.csv",
    ]
    again = load_company_csv(out)
    assert canonical(again) == canonical(graph)
    assert "industry" in (out / "companies.csv").read_text().splitlines()[0]  # groups folded into columns


def test_rdf_example_round_trips_through_csv(tmp_path):
    graph = load_company_rdf(EXAMPLE)
    again = load_company_csv(write_company_csv(graph, tmp_path / "out"))
    assert canonical(again) == canonical(graph)


def test_writer_keeps_unprefixed_groups_in_edges(tmp_path):
    graph = load_company_csv(write_folder(tmp_path / "in", GOOD))
    nodes = [*graph.nodes, "gold-club"]
    kinds = np.append(graph.kinds, INDUSTRY).astype(np.int8)
    rid = graph.relation_id("hasQualification")
    edges = np.vstack([graph.edges, [[0, rid, len(nodes) - 1]]])
    weird = graph.with_edges(edges, np.append(graph.edge_weight, 1.0).astype(np.float32))
    weird.nodes, weird.kinds = nodes, kinds
    again = load_company_csv(write_company_csv(weird, tmp_path / "out"))
    assert canonical(again) == canonical(weird)
    assert "gold-club" in (tmp_path / "out" / "edges.csv").read_text()


def test_writer_refuses_before_touching_files(tmp_path):
    graph = load_company_csv(write_folder(tmp_path / "in", GOOD))
    out = write_company_csv(graph, tmp_path / "out")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = graph.with_features(graph.features)
    bad.feature_names = ["registered_capital", "paid_in_capital", "founded_months_ago", "split"]
    with pytest.raises(CompanyGraphError, match="reserved columns"):
        write_company_csv(bad, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temp files, nothing changed


def test_csv_groups_file(tmp_path):
    groups = "group_id,kind,name\nindustry:retail,Industry,Retail trade\nclub,Qualification,Gold club\n"
    folder = write_folder(tmp_path / "g", GOOD, groups_csv=groups)
    graph = load_company_csv(folder)
    index = graph.node_index()
    assert (
        graph.kinds[index["club"]] == INDUSTRY
        and graph.metadata["names"]["industry:retail"] == "Retail trade"
    )
    assert int((graph.kinds == INDUSTRY).sum()) == 3  # retail (declared once), steel, club without members
    (folder / "groups.csv").write_text("group_id,kind\nx,Company\n", encoding="utf-8")
    with pytest.raises(
        FinanceDataError, match=r"groups.csv, line 2: kind 'Company' \(expected Industry or Region"
    ):
        load_company_csv(folder)


# --------------------------------------------------------------------------------------------------- RDF
def test_rdf_example_loads():
    graph = load_company_rdf(EXAMPLE)
    summary = graph.summary()
    assert summary["nodes"] == {"Company": 5, "Person": 2, "Industry": 4, "Region": 2}
    rows = graph.company_rows()
    assert graph.company_ids() == ["C001", "C002", "C003", "C004", "C005"]
    edges = canonical(graph)["edges"]
    assert ("C001", "guarantees", "C002") in edges and ("P001", "owns", "C001") in edges
    assert ("C001", "owns", "C003") in edges and ("C002", "inIndustry", "manufacturing") in edges
    assert summary["relations"]["owns"] == 3 and summary["relations"]["guarantees"] == 2
    assert (
        graph.labels[rows["C002"]] == 1
        and graph.labels[rows["C001"]] == 0
        and graph.labels[rows["C005"]] == -1
    )
    assert graph.periods[rows["C001"]] == 2021 and graph.splits[rows["C003"]] == "dev"
    assert (
        graph.texts[rows["C002"]] == sorted(graph.texts[rows["C002"]]) and len(graph.texts[rows["C002"]]) == 2
    )
    steel = graph.lawsuits[rows["C002"]]
    assert [(s.role, s.cause, s.court, s.outcome, s.months_before) for s in steel] == [
        ("defendant", "loan contract", "grassroots", "lost", 4)
    ]
    assert (
        graph.lawsuits[rows["C005"]][0].outcome == "won" and graph.lawsuits[rows["C003"]][0].outcome == "won"
    )
    j = graph.feature_names.index("lawsuits_lost_defendant")
    assert graph.features[rows["C002"], j] == 1 and graph.features[rows["C003"], j] == 0
    assert math.isnan(graph.features[rows["C003"], graph.feature_names.index("paid_in_capital")])
    assert graph.monotone == {"lawsuits_defendant": 1, "lawsuits_lost_defendant": 1}
    assert graph.metadata["names"]["C005"] == "Harbor Bank"
    assert graph.metadata["iris"]["C001"] == "https://example.org/companies#C001"


def test_rdf_ntriples_and_xml_give_the_same_graph(tmp_path):
    import rdflib

    source = rdflib.Graph().parse(EXAMPLE)
    expected = canonical(load_company_rdf(EXAMPLE))
    for fmt, suffix in (("nt", ".nt"), ("xml", ".rdf")):
        path = tmp_path / f"example{suffix}"
        source.serialize(path, format=fmt, encoding="utf-8")
        assert canonical(load_company_rdf(path)) == expected


def test_rdf_file_may_embed_the_ontology(tmp_path):
    lines = (DEFAULT_PATH.read_text(encoding="utf-8") + EXAMPLE.read_text(encoding="utf-8")).splitlines()
    prefixes = sorted({line for line in lines if line.startswith("@prefix")})
    path = tmp_path / "combined.ttl"
    path.write_text(
        "\n".join(prefixes + [line for line in lines if not line.startswith("@prefix")]), encoding="utf-8"
    )
    assert canonical(load_company_rdf(path)) == canonical(load_company_rdf(EXAMPLE))


TTL_HEAD = """\
@prefix fin: <https://kgreason.dev/finance#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <https://example.org/x#> .
ex:c1 a fin:Company .
ex:c2 a fin:Company .
ex:p1 a fin:Person .
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "ex:p1 fin:guarantees ex:c1 .",
            "guarantees needs a Company as head, got a Person in triple ex:p1 fin:guarantees ex:c1",
        ),
        (
            "ex:c1 fin:inIndustry ex:p1 .",
            "inIndustry needs a Industry as tail, got a Person in triple ex:c1 fin:inIndustry ex:p1",
        ),
        ("ex:c1 fin:guarantee ex:c2 .", "predicate fin:guarantee is not in the finance ontology"),
        ("ex:c1 fin:owns ex:c9 .", "object ex:c9 is not a typed fin: node"),
        ("ex:c1 fin:registeredCapital -3 .", "fin:registeredCapital is negative"),
        ('ex:c1 fin:registeredCapital "lots" .', "fin:registeredCapital is not a number"),
        ('ex:c1 fin:registeredCapital "INF"^^xsd:double .', "fin:registeredCapital is not a finite number"),
        ('ex:c1 fin:registeredCapital "NaN"^^xsd:double .', "fin:registeredCapital is not a finite number"),
        ("ex:c1 fin:registeredCapital 1e300 .", "fin:registeredCapital is not a finite number"),
        ("ex:c1 fin:registeredCapital " + "9" * 400 + " .", "fin:registeredCapital is not a finite number"),
        ("ex:c1 fin:defaulted 1 .", "fin:defaulted is not a boolean"),
        ("ex:c1 a fin:Person .", "ex:c1 is typed both fin:"),
        ('ex:c1 fin:split "valid" .', "unknown split 'valid'"),
        ("ex:x1 fin:owns ex:c1 .", "subject ex:x1 has no fin: class"),
        (
            'ex:l1 a fin:Lawsuit ; fin:plaintiff ex:p1 ; fin:cause "c" ; fin:court "k" ; '
            'fin:outcome "plaintiff won" ; fin:monthsBefore 3 .',
            "lawsuit ex:l1: party ex:p1 is a Person",
        ),
        (
            'ex:l1 a fin:Lawsuit ; fin:defendant ex:c1 ; fin:cause "c" ; fin:court "k" ; '
            'fin:outcome "draw" ; fin:monthsBefore 3 .',
            "lawsuit ex:l1: outcome 'draw'",
        ),
    ],
)
def test_rdf_violations_name_the_triple(tmp_path, body, message):
    path = tmp_path / "bad.ttl"
    path.write_text(TTL_HEAD + body + "\n", encoding="utf-8")
    with pytest.raises(FinanceDataError) as info:
        load_company_rdf(path)
    assert message in str(info.value) and str(info.value).startswith(str(path))


def test_rdf_syntax_error_has_a_line(tmp_path):
    path = tmp_path / "broken.ttl"
    path.write_text(TTL_HEAD + "ex:c1 fin:owns ex:c2 \n ex:c2 ;; .\n", encoding="utf-8")
    with pytest.raises(FinanceDataError, match=r"broken.ttl, line \d+"):
        load_company_rdf(path)


# -------------------------------------------------------------------------------------------- properties
CSV_COLUMNS = [
    "company_id", "name", "industry", "region", "period", "split", "registered_capital", "paid_in_capital",
    "founded_months_ago", "lawsuits", "lawsuits_lost", "leverage", "defaulted", "", " company_id",
]  # fmt: skip
CSV_CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "c1",
            "c2",
            "c1 ",
            "0",
            "1",
            "-1",
            "2.5",
            "1e308",
            "1e309",
            "-inf",
            "nan",
            "NaN",
            "train",
            "dev",
            "tset",
            "2020",
            "0x10",
            "1_000",
            "é",
            "\ufeff",
            '"',
            '""',
            "a,b",
            "a\nb",
            "\r",
            "\x00",
        ]
    ),
    st.text(max_size=6),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def _quote(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\n\r') else cell


@st.composite
def companies_csv(draw: st.DrawFn) -> bytes:
    """companies.csv content: CSV-shaped (header + rows of likely-troublesome cells), any text or any bytes."""
    kind = draw(st.sampled_from(["table", "table", "table", "text", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "text":
        return draw(st.text(max_size=200)).encode("utf-8")
    header = draw(st.lists(st.sampled_from(CSV_COLUMNS), min_size=0, max_size=6))
    width = st.integers(min_value=max(0, len(header) - 1), max_value=len(header) + 1)
    rows = draw(st.lists(width.flatmap(lambda n: st.lists(CSV_CELLS, min_size=n, max_size=n)), max_size=6))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(",".join(_quote(c) for c in row) for row in [header, *rows])
    if draw(st.booleans()):
        text += newline
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    return text.encode(encoding, errors="replace")


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(content=companies_csv())
@example(content=b"company_id,leverage\nc1,1e300\n")  # finite in float64, inf in the float32 features
def test_csv_loader_raises_only_its_own_errors_on_any_companies_csv(content):
    """Whatever companies.csv holds, the loader returns a valid graph or raises a KGReasonError, quickly."""
    import tempfile
    import time
    import warnings

    from kgreason.core.errors import KGReasonError

    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # e.g. a float64 that overflows the float32 features
        (Path(folder) / "companies.csv").write_bytes(content)
        start = time.perf_counter()
        try:
            graph = load_company_csv(folder)
        except KGReasonError as err:
            assert str(err).startswith(str(Path(folder) / "companies.csv")), str(err)
        else:
            assert graph.num_companies == len({*graph.company_ids()})
            values = graph.features[~np.isnan(graph.features)]
            assert np.isfinite(values).all()  # a value is a finite number or missing, never inf
        assert time.perf_counter() - start < 1.0
