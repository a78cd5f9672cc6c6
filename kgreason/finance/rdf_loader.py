"""A user's company graph from RDF (Turtle, N-Triples, RDF/XML...) typed with the finance ontology.

Instances are typed ``fin:Company``, ``fin:Person``, ``fin:Industry``, ``fin:Region``, ``fin:Qualification``
or ``fin:Lawsuit``; node keys are the IRIs' local names (the part after ``#`` or the last ``/``; blank nodes
keep their ``_:`` label). Object properties become edges (domain and range checked against the ontology),
company datatype properties become features (``fin:featureName``), ``fin:defaulted`` / ``fin:period`` /
``fin:split`` the outcome, ``fin:news`` the texts (sorted: RDF has no statement order), ``rdfs:label`` the names (``metadata["names"]``), and each
``fin:Lawsuit`` resource one :class:`~kgreason.finance.graph.Lawsuit` record per company involved, whose
counts (:func:`~kgreason.finance.graph.lawsuit_counts`) are added as features. rdflib keeps no line numbers,
so errors name the offending triple. Schema resources (``fin:`` terms, OWL / RDFS declarations, RDF lists)
are skipped, so a file may embed the ontology.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgreason.finance.csv_loader import LARGEST
from kgreason.finance.errors import FinanceDataError
from kgreason.finance.graph import (
    DEFAULT,
    NODE_KINDS,
    SPLITS,
    SURVIVED,
    CompanyGraph,
    Lawsuit,
    empty_arrays,
    lawsuit_counts,
)
from kgreason.finance.ontology import DEFAULT_MONOTONE, FIN, FinanceOntology, load_ontology

__all__ = ["load_company_rdf"]

_COUNT_FEATURES = tuple(lawsuit_counts([]))
_WINNER = {
    "plaintiff won": "plaintiff",
    "defendant failed": "plaintiff",
    "defendant won": "defendant",
    "plaintiff failed": "defendant",
}


Show = Callable[[Any], str]
Fail = Callable[..., FinanceDataError]


@dataclass
class _Statements:
    """What the data triples say: feature values by column and company row, per-company outcome arrays and
    texts, the labels of each node key, the edges and each lawsuit resource's properties."""

    values: dict[str, dict[int, float]]
    arrays: dict[str, np.ndarray]
    texts: list[list[str]]
    labels_of: dict[str, list[Any]] = field(default_factory=dict)
    edges: list[tuple[int, int, int]] = field(default_factory=list)
    suits: dict[Any, dict[str, list[Any]]] = field(default_factory=dict)


def _parse(path: Path, fmt: str) -> Any:
    """Parse ``path`` with rdflib; a parser error becomes a :class:`FinanceDataError` with its line."""
    import rdflib

    from kgreason.kb.loaders.rdf import rdflib_error

    graph = rdflib.Graph()
    try:
        graph.parse(path, format=fmt)
    except Exception as err:  # rdflib's parsers raise many types; map them to file:line errors
        located = rdflib_error(err, path=path, fmt=fmt, data=path.read_bytes(), line=None)
        raise FinanceDataError(
            located.detail, path=path, line=located.line, column=located.column, expected=located.expected
        ) from err
    return graph


def _instance_classes(graph: Any, ontology: FinanceOntology, show: Show, fail: Fail) -> dict[Any, str]:
    """Each data resource's fin: class name; raise on a class outside the ontology or a second class."""
    import rdflib
    from rdflib.namespace import RDF

    classes = {rdflib.URIRef(FIN + c): c for c in ontology.classes}
    kind_of: dict[Any, str] = {}  # resource -> class name
    for s, _, o in graph.triples((None, RDF.type, None)):
        if str(s).startswith(FIN):
            continue  # schema terms
        if o not in classes:
            if str(o).startswith(FIN):
                raise fail(
                    (s, RDF.type, o),
                    f"class {show(o)} is not in the finance ontology",
                    expected=", ".join(ontology.classes),
                )
            continue
        if s in kind_of and kind_of[s] != classes[o]:
            raise fail((s, RDF.type, o), f"{show(s)} is typed both fin:{kind_of[s]} and fin:{classes[o]}")
        kind_of[s] = classes[o]
    return kind_of


def _node_keys(kind_of: dict[Any, str], show: Show, path: Path) -> dict[str, Any]:
    """The resource of every node key (local names; blank nodes ``_:label``), lawsuits left out."""
    import rdflib

    owner: dict[str, Any] = {}
    for resource, cls in kind_of.items():
        if cls == "Lawsuit":
            continue
        text = str(resource)
        key = (
            f"_:{text}" if isinstance(resource, rdflib.BNode) else text.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        )
        if not key or key in owner:
            raise FinanceDataError(
                f"{show(resource)} and {show(owner.get(key, resource))} share the node key {key!r}",
                path=path,
                expected="instances with distinct local names",
            )
        owner[key] = resource
    return owner


def _read_statements(
    graph: Any,
    ontology: FinanceOntology,
    kind_of: dict[Any, str],
    keys: dict[Any, str],
    node_id: dict[Any, int],
    row_of: dict[int, int],
    show: Show,
    fail: Fail,
) -> _Statements:
    """Read every data triple (type statements and schema resources skipped), checked against the ontology."""
    import rdflib
    from rdflib.namespace import RDF, RDFS

    attributes = {rdflib.URIRef(FIN + a): spec for a, spec in ontology.company_attributes.items()}
    relation_names = list(ontology.relations)
    relations = {rdflib.URIRef(FIN + r): i for i, r in enumerate(relation_names)}
    lawsuit_props = {rdflib.URIRef(FIN + p): p for p in ontology.lawsuit_properties}
    feature_cols = [spec.feature for spec in ontology.company_attributes.values() if spec.feature]
    found = _Statements(
        values={f: {} for f in feature_cols},
        arrays=empty_arrays(len(row_of), 0),
        texts=[[] for _ in row_of],
        suits={r: {} for r, c in kind_of.items() if c == "Lawsuit"},
    )
    labels, splits, periods = found.arrays["labels"], found.arrays["splits"], found.arrays["periods"]

    schema = _schema_subjects(graph)
    for triple in graph:
        s, p, o = triple
        if p == RDF.type or s in schema:
            continue
        if s not in kind_of:
            raise fail(
                triple,
                f"subject {show(s)} has no fin: class",
                expected="rdf:type fin:Company, fin:Person, ...",
            )
        cls = kind_of[s]
        if cls == "Lawsuit":
            if p not in lawsuit_props:
                raise fail(
                    triple,
                    f"{show(p)} is not a lawsuit property",
                    expected=", ".join(ontology.lawsuit_properties),
                )
            found.suits[s].setdefault(lawsuit_props[p], []).append(o)
            continue
        if p == RDFS.label:
            if not isinstance(o, rdflib.Literal):
                raise fail(triple, "rdfs:label must be a literal")
            found.labels_of.setdefault(keys[s], []).append(o)
            continue
        if p in relations:
            relation = relation_names[relations[p]]
            if o not in kind_of or kind_of[o] == "Lawsuit":
                raise fail(triple, f"object {show(o)} is not a typed fin: node", expected="a typed instance")
            problem = ontology.check_edge(relation, cls, kind_of[o])
            if problem:
                raise fail(triple, problem)
            found.edges.append((node_id[s], relations[p], node_id[o]))
            continue
        if p in attributes:
            if cls != "Company":
                raise fail(triple, f"{show(p)} describes a Company, not a {cls}")
            row = row_of[node_id[s]]
            _company_literal(
                triple, attributes[p], row, found.values, labels, splits, periods, found.texts, fail
            )
            continue
        if str(p).startswith(FIN) and p in lawsuit_props:
            raise fail(triple, f"{show(p)} describes a Lawsuit, not a {cls}")
        raise fail(
            triple,
            f"predicate {show(p)} is not in the finance ontology",
            expected="an ontology property or rdfs:label",
        )
    return found


def _feature_matrix(
    ontology: FinanceOntology, values: dict[str, dict[int, float]], lawsuits: list[list[Lawsuit]]
) -> tuple[np.ndarray, list[str]]:
    """The features (C, F) and their names: the attribute columns with a value, then the lawsuit counts when
    any company has a lawsuit."""
    num = len(lawsuits)
    feature_cols = [spec.feature for spec in ontology.company_attributes.values() if spec.feature]
    used = [f for f in feature_cols if values[f]]
    counts = [lawsuit_counts(s) for s in lawsuits]
    features = np.full((num, len(used)), np.nan, dtype=np.float32)  # (C, F)
    for j, f in enumerate(used):
        for row, value in values[f].items():
            features[row, j] = value
    feature_names = list(used)
    if any(lawsuits):
        extra = np.asarray([[c[k] for k in _COUNT_FEATURES] for c in counts], dtype=np.float32)  # (C, 4)
        features = np.concatenate([features, extra.reshape(num, -1)], axis=1)
        feature_names += list(_COUNT_FEATURES)
    return features, feature_names


def load_company_rdf(
    path: str | Path,
    *,
    ontology: FinanceOntology | None = None,
    format: str | None = None,
    name: str | None = None,
) -> CompanyGraph:
    """Load a company graph from an RDF file; ``format`` is rdflib's name (default: from the extension).

    Raises:
        FinanceDataError: a syntax error (with its line), an untyped or doubly typed resource, a property
            outside the ontology, a domain / range violation or a bad literal, naming the triple.
    """
    from kgreason.kb.loaders.rdf import rdf_format

    path = Path(path)
    ontology = ontology or load_ontology()
    if not path.is_file():
        raise FinanceDataError("file not found", path=path, expected="an RDF file")
    fmt = rdf_format(path, format)
    graph = _parse(path, fmt)

    def show(term: Any) -> str:
        return term.n3(graph.namespace_manager)

    def fail(triple: tuple[Any, Any, Any], message: str, expected: str | None = None) -> FinanceDataError:
        s, p, o = triple
        return FinanceDataError(
            f"{message} in triple {show(s)} {show(p)} {show(o)}", path=path, expected=expected
        )

    kind_of = _instance_classes(graph, ontology, show, fail)
    owner = _node_keys(kind_of, show, path)
    ordered = sorted(
        owner.items(), key=lambda kv: (NODE_KINDS.index(ontology.classes[kind_of[kv[1]]].kind), kv[0])
    )
    nodes = [key for key, _ in ordered]
    node_id = {resource: i for i, (_, resource) in enumerate(ordered)}
    kinds = np.asarray(
        [NODE_KINDS.index(ontology.classes[kind_of[r]].kind) for _, r in ordered], dtype=np.int8
    )  # (N,)
    companies = [node_id[r] for _, r in ordered if kind_of[r] == "Company"]
    row_of = {node: row for row, node in enumerate(companies)}
    keys = {resource: key for key, resource in owner.items()}
    found = _read_statements(graph, ontology, kind_of, keys, node_id, row_of, show, fail)

    # RDF statements have no order: one name per node (no-language / English first), texts sorted
    names = {
        key: str(min(literals, key=lambda lit: (lit.language not in (None, "en"), str(lit))))
        for key, literals in sorted(found.labels_of.items())
    }
    for sentences in found.texts:
        sentences.sort()
    lawsuits: list[list[Lawsuit]] = [[] for _ in companies]
    for suit, props in found.suits.items():
        for party, lawsuit in _lawsuit_records(suit, props, kind_of, show, path):
            lawsuits[row_of[node_id[party]]].append(lawsuit)
    for records in lawsuits:
        records.sort(key=lambda r: (r.months_before, r.role, r.cause, r.court, r.outcome))

    features, feature_names = _feature_matrix(ontology, found.values, lawsuits)
    unique_edges = sorted(set(found.edges))
    result = CompanyGraph(
        name=name or path.stem,
        nodes=nodes,
        kinds=kinds,
        relations=list(ontology.relations),
        edges=np.asarray(unique_edges, dtype=np.int64).reshape(-1, 3),  # (M, 3)
        edge_weight=np.ones(len(unique_edges), dtype=np.float32),  # (M,)
        companies=np.asarray(companies, dtype=np.int64),  # (C,)
        feature_names=feature_names,
        features=features,
        labels=found.arrays["labels"],
        splits=found.arrays["splits"],
        periods=found.arrays["periods"],
        texts=found.texts,
        lawsuits=lawsuits,
        metadata={
            "source": "rdf",
            "path": str(path),
            "format": fmt,
            "names": names,
            "iris": {key: str(r) for key, r in owner.items()},
            "ontology": str(ontology.path),
        },
        monotone={f: d for f, d in DEFAULT_MONOTONE.items() if f in feature_names},
    )
    return result.validate()


def _schema_subjects(graph) -> set[Any]:
    """Resources that belong to an embedded schema, not to the data: ``fin:`` terms, resources typed with an
    RDF / RDFS / OWL class, and the blank nodes of RDF lists (``owl:unionOf`` members)."""
    from rdflib.namespace import OWL, RDF, RDFS

    vocab = (str(OWL), str(RDFS), str(RDF))
    schema = {s for s in graph.subjects() if str(s).startswith(FIN)}
    schema |= {s for s, o in graph.subject_objects(RDF.type) if str(o).startswith(vocab)}
    schema |= set(graph.subjects(RDF.first)) | set(graph.subjects(RDF.rest))
    return schema


def _company_literal(triple, spec, row, values, labels, splits, periods, texts, fail) -> None:
    import rdflib

    _, _, o = triple
    if not isinstance(o, rdflib.Literal):
        raise fail(triple, f"fin:{spec.name} needs a literal", expected=f"a {spec.datatype} literal")
    value = o.toPython()
    if spec.feature is not None:
        if isinstance(value, bool) or (not isinstance(value, int | float) and not _is_decimal(value)):
            raise fail(triple, f"fin:{spec.name} is not a number", expected=f"a {spec.datatype} literal")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            number = math.inf
        if not math.isfinite(number) or abs(number) > LARGEST:
            raise fail(
                triple,
                f"fin:{spec.name} is not a finite number that fits the features (float32)",
                expected=f"a number between 0 and {LARGEST:.4g}",
            )
        if number < 0:
            raise fail(triple, f"fin:{spec.name} is negative", expected="a value >= 0")
        if row in values[spec.feature]:
            raise fail(triple, f"a second fin:{spec.name} value for the company", expected="one value")
        values[spec.feature][row] = number
    elif spec.name == "defaulted":
        if not isinstance(value, bool):
            raise fail(
                triple,
                "fin:defaulted is not a boolean",
                expected='"true"^^xsd:boolean or "false"^^xsd:boolean',
            )
        labels[row] = DEFAULT if value else SURVIVED
    elif spec.name == "period":
        year = value
        if o.datatype is not None and str(o.datatype).endswith("#gYear"):  # rdflib keeps gYear as a Literal
            match = re.match(r"\d{4,}", str(o))
            year = int(match.group(0)) if match else None
        if isinstance(year, bool) or not isinstance(year, int) or year <= 0:
            raise fail(triple, "fin:period is not a year", expected="an xsd:gYear or a positive integer")
        periods[row] = year
    elif spec.name == "split":
        if str(value) not in SPLITS:
            raise fail(triple, f"unknown split {str(value)!r}", expected=", ".join(SPLITS))
        splits[row] = str(value)
    elif spec.name == "news":
        if not str(value).strip():
            raise fail(triple, "empty fin:news text", expected="a sentence")
        texts[row].append(str(value))
    else:
        raise fail(triple, f"fin:{spec.name} has no reader", expected="a feature attribute")


def _is_decimal(value: Any) -> bool:
    from decimal import Decimal

    return isinstance(value, Decimal)


def _lawsuit_records(suit, props, kind_of, show, path) -> list[tuple[Any, Lawsuit]]:
    """``(party, Lawsuit)`` for every company named by one fin:Lawsuit resource, seen from its side."""

    def one(prop: str) -> Any:
        found = props.get(prop, [])
        if len(found) != 1:
            raise FinanceDataError(
                f"lawsuit {show(suit)} has {len(found)} fin:{prop} values",
                path=path,
                expected=f"exactly one fin:{prop}",
            )
        return found[0]

    parties = [p for role in ("plaintiff", "defendant") for p in props.get(role, [])]
    if not parties:
        raise FinanceDataError(
            f"lawsuit {show(suit)} names no company", path=path, expected="fin:plaintiff or fin:defendant"
        )
    for party in parties:
        if kind_of.get(party) != "Company":
            what = f"a {kind_of[party]}" if party in kind_of else "untyped"
            raise FinanceDataError(
                f"lawsuit {show(suit)}: party {show(party)} is {what}",
                path=path,
                expected="fin:plaintiff / fin:defendant range fin:Company",
            )
    outcome = str(one("outcome")).strip().lower()
    if outcome not in _WINNER:
        raise FinanceDataError(
            f"lawsuit {show(suit)}: outcome {outcome!r}",
            path=path,
            expected="'plaintiff won' or 'defendant won'",
        )
    months = one("monthsBefore").toPython()
    if isinstance(months, bool) or not isinstance(months, int) or months < 0:
        raise FinanceDataError(
            f"lawsuit {show(suit)}: fin:monthsBefore {months!r}",
            path=path,
            expected="a non-negative xsd:integer",
        )
    cause, court, winner = str(one("cause")), str(one("court")), _WINNER[outcome]
    return [
        (party, Lawsuit(role, cause, court, "won" if role == winner else "lost", months))
        for role in ("plaintiff", "defendant")
        for party in props.get(role, [])
    ]
