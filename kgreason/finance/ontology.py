"""The finance ontology (``knowledge/finance/finance.ttl``) as Python: classes, relations, attributes.

Loaders check every edge with :meth:`FinanceOntology.check_edge` (domain / range), find the ownership
relations whose edges must not form cycles, and map SMEsD's 20 edge type names onto the ontology's relations.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgreason.core.errors import KBFormatError

FIN = "https://kgreason.dev/finance#"
#: Feature name -> monotone direction shared by the finance loaders (more lost lawsuits never lowers risk).
DEFAULT_MONOTONE = {"lawsuits_defendant": 1, "lawsuits_lost_defendant": 1}


@dataclass(frozen=True)
class ClassSpec:
    """An ontology class; ``kind`` is the CompanyGraph node kind storing it ('' for Lawsuit: not a node)."""

    name: str
    kind: str
    label: str
    comment: str


@dataclass(frozen=True)
class RelationSpec:
    """An object property between graph nodes (class names in ``domain`` / ``range``)."""

    name: str
    domain: tuple[str, ...]
    range: tuple[str, ...]
    ownership: bool
    label: str
    comment: str
    smesd: tuple[str, ...] = ()
    smesd_inverse: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttributeSpec:
    """A datatype property; ``feature`` is the CompanyGraph feature column it fills (None if it is no feature)."""

    name: str
    datatype: str
    feature: str | None
    label: str
    comment: str


@dataclass(frozen=True)
class SmesdMapping:
    """An SMEsD edge type read as an ontology relation (``inverse``: SMEsD's head is the relation's tail)."""

    edge_type: str
    relation: str
    inverse: bool


@dataclass(frozen=True)
class FinanceOntology:
    """Parsed finance ontology; see :func:`load_ontology`."""

    path: Path
    classes: dict[str, ClassSpec]
    relations: dict[str, RelationSpec]
    company_attributes: dict[str, AttributeSpec]
    lawsuit_properties: dict[str, AttributeSpec | RelationSpec]
    smesd_edge_types: dict[str, SmesdMapping] = field(default_factory=dict)

    @property
    def ownership_relations(self) -> tuple[str, ...]:
        return tuple(name for name, spec in self.relations.items() if spec.ownership)

    def kinds_of(self, classes: tuple[str, ...]) -> tuple[str, ...]:
        """Node kinds storing instances of ``classes`` (``Qualification`` -> ``Industry``), in order."""
        kinds = [self.classes[c].kind for c in classes if c in self.classes and self.classes[c].kind]
        return tuple(dict.fromkeys(kinds))

    def resolve(self, relation: str) -> tuple[RelationSpec, bool]:
        """The relation spec of an ontology relation or an SMEsD edge type name, and whether it is inverted.

        Raises:
            KeyError: unknown name (the message suggests close names).
        """
        if relation in self.relations:
            return self.relations[relation], False
        if relation in self.smesd_edge_types:
            mapping = self.smesd_edge_types[relation]
            return self.relations[mapping.relation], mapping.inverse
        raise KeyError(self.unknown_relation_message(relation))

    def unknown_relation_message(self, relation: str) -> str:
        close = difflib.get_close_matches(
            relation, [*self.relations, *self.smesd_edge_types], n=3, cutoff=0.6
        )
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"relation {relation!r} is not in the finance ontology{hint} (relations: {', '.join(self.relations)})"

    def head_kinds(self, relation: str) -> tuple[str, ...]:
        """Node kinds a head of ``relation`` may have (SMEsD names resolved, inverses swapped)."""
        spec, inverse = self.resolve(relation)
        return self.kinds_of(spec.range if inverse else spec.domain)

    def tail_kinds(self, relation: str) -> tuple[str, ...]:
        spec, inverse = self.resolve(relation)
        return self.kinds_of(spec.domain if inverse else spec.range)

    def check_edge(self, relation: str, head_kind: str, tail_kind: str) -> str | None:
        """``None`` when ``head_kind -relation-> tail_kind`` fits the domain and range, else the reason.

        Kinds are CompanyGraph node kinds or ontology class names; ``relation`` is an ontology relation or an
        SMEsD edge type name (checked as the relation it maps to).
        """
        try:
            spec, inverse = self.resolve(relation)
        except KeyError as err:
            return str(err.args[0])
        domain, range_ = (spec.range, spec.domain) if inverse else (spec.domain, spec.range)
        for end, kind, classes in (("head", head_kind, domain), ("tail", tail_kind, range_)):
            if kind not in classes and kind not in self.kinds_of(classes):
                need = " or ".join(classes)
                via = f" (SMEsD {relation!r} = inverse of {spec.name})" if inverse else ""
                return f"{relation}{via} needs a {need} as {end}, got a {kind}"
        return None


def ontology_path() -> Path:
    """The shipped ``knowledge/finance/finance.ttl`` (package data)."""
    from kgreason.core.resources import knowledge_path

    return knowledge_path("finance", "finance.ttl")


def __getattr__(name: str) -> Path:  # ``DEFAULT_PATH`` of earlier releases, looked up when asked for
    if name == "DEFAULT_PATH":
        return ontology_path()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ontology(path: str | Path | None = None) -> FinanceOntology:
    """Parse the finance ontology (default: the shipped ``knowledge/finance/finance.ttl``) with rdflib.

    Raises:
        KBFormatError: the file does not parse, or a property lacks its domain or range.
    """
    return _load(str(Path(path).resolve() if path is not None else ontology_path()))


class _Terms:
    """Reads the terms of a parsed ontology graph, raising :class:`KBFormatError` naming ``path``."""

    def __init__(self, graph: Any, path: Path) -> None:
        import rdflib

        self.graph, self.path, self.fin = graph, path, rdflib.Namespace(FIN)

    def local(self, term: Any) -> str:
        """The name of a ``fin:`` term."""
        text = str(term)
        if not text.startswith(FIN):
            raise KBFormatError(f"{text} is outside the finance namespace {FIN}", path=self.path)
        return text[len(FIN) :]

    def text(self, subject: Any, predicate: Any) -> str:
        """The literal value of ``predicate`` on ``subject`` ('' if none)."""
        value = self.graph.value(subject, predicate)
        return "" if value is None else str(value)

    def class_list(self, subject: Any, predicate: Any) -> tuple[str, ...]:
        """The class names (or xsd datatype) a domain / range names: one class or an ``owl:unionOf``."""
        import rdflib
        from rdflib.collection import Collection
        from rdflib.namespace import OWL

        graph = self.graph
        value = graph.value(subject, predicate)
        if value is None:
            raise KBFormatError(
                f"{self.local(subject)} has no {predicate.n3(graph.namespace_manager)}", path=self.path
            )
        if isinstance(value, rdflib.BNode):
            members = graph.value(value, OWL.unionOf)
            if members is None:
                raise KBFormatError(
                    f"{self.local(subject)}: blank {predicate} without owl:unionOf", path=self.path
                )
            return tuple(self.local(m) for m in Collection(graph, members))
        if str(value).startswith(FIN):
            return (self.local(value),)
        return (value.n3(graph.namespace_manager),)  # xsd datatypes

    def ordered(self, kind: Any) -> list[Any]:
        """The ``fin:`` resources typed ``kind``, in declaration order."""
        import rdflib
        from rdflib.namespace import RDF

        # rdflib's memory store yields subjects in parse order, i.e. declaration order in the file
        return [
            s
            for s in self.graph.subjects(RDF.type, kind)
            if isinstance(s, rdflib.URIRef) and str(s).startswith(FIN)
        ]


def _object_properties(
    terms: _Terms, classes: dict[str, ClassSpec], lawsuit: dict[str, AttributeSpec | RelationSpec]
) -> tuple[dict[str, RelationSpec], dict[str, SmesdMapping]]:
    """The relations and the SMEsD edge type mappings; lawsuit object properties go into ``lawsuit``."""
    from rdflib.namespace import OWL, RDFS

    graph, fin, path = terms.graph, terms.fin, terms.path
    relations: dict[str, RelationSpec] = {}
    smesd: dict[str, SmesdMapping] = {}
    for prop in terms.ordered(OWL.ObjectProperty):
        name = terms.local(prop)
        spec = RelationSpec(
            name=name,
            domain=terms.class_list(prop, RDFS.domain),
            range=terms.class_list(prop, RDFS.range),
            ownership=bool(graph.value(prop, fin.ownership) and graph.value(prop, fin.ownership).toPython()),
            label=terms.text(prop, RDFS.label),
            comment=terms.text(prop, RDFS.comment),
            smesd=tuple(sorted(str(v) for v in graph.objects(prop, fin.smesdEdgeType))),
            smesd_inverse=tuple(sorted(str(v) for v in graph.objects(prop, fin.smesdInverseEdgeType))),
        )
        for cls in (*spec.domain, *spec.range):
            if cls not in classes:
                raise KBFormatError(
                    f"{name}: class {cls!r} is not declared", path=path, expected="an owl:Class"
                )
        if "Lawsuit" in spec.domain:
            lawsuit[name] = spec
            continue
        relations[name] = spec
        for edge_type, inverse in [
            *((e, False) for e in spec.smesd),
            *((e, True) for e in spec.smesd_inverse),
        ]:
            if edge_type in smesd:
                raise KBFormatError(f"SMEsD edge type {edge_type!r} is mapped twice", path=path)
            smesd[edge_type] = SmesdMapping(edge_type, name, inverse)
    return relations, smesd


def _datatype_properties(
    terms: _Terms, lawsuit: dict[str, AttributeSpec | RelationSpec]
) -> dict[str, AttributeSpec]:
    """The company attributes; lawsuit datatype properties go into ``lawsuit``."""
    from rdflib.namespace import OWL, RDFS

    attributes: dict[str, AttributeSpec] = {}
    for prop in terms.ordered(OWL.DatatypeProperty):
        name = terms.local(prop)
        domain = terms.class_list(prop, RDFS.domain)
        feature = terms.graph.value(prop, terms.fin.featureName)
        spec = AttributeSpec(
            name=name,
            datatype=terms.class_list(prop, RDFS.range)[0],
            feature=None if feature is None else str(feature),
            label=terms.text(prop, RDFS.label),
            comment=terms.text(prop, RDFS.comment),
        )
        (lawsuit if "Lawsuit" in domain else attributes)[name] = spec
    return attributes


@functools.lru_cache(maxsize=4)
def _load(path_text: str) -> FinanceOntology:
    """Parse the ontology at ``path_text`` (cached)."""
    import rdflib
    from rdflib.namespace import OWL, RDFS

    path = Path(path_text)
    graph = rdflib.Graph()
    try:
        graph.parse(path, format=rdflib.util.guess_format(path.name) or "turtle")
    except FileNotFoundError:
        raise KBFormatError("ontology file not found", path=path) from None
    except Exception as err:  # rdflib raises many parser error types
        raise KBFormatError(f"cannot parse the ontology: {err}", path=path, expected="Turtle") from err
    terms = _Terms(graph, path)
    classes = {
        terms.local(c): ClassSpec(
            terms.local(c),
            terms.text(c, terms.fin.nodeKind),
            terms.text(c, RDFS.label),
            terms.text(c, RDFS.comment),
        )
        for c in terms.ordered(OWL.Class)
    }
    lawsuit: dict[str, AttributeSpec | RelationSpec] = {}
    relations, smesd = _object_properties(terms, classes, lawsuit)
    attributes = _datatype_properties(terms, lawsuit)
    return FinanceOntology(
        path=path,
        classes=classes,
        relations=relations,
        company_attributes=attributes,
        lawsuit_properties=lawsuit,
        smesd_edge_types=smesd,
    )
