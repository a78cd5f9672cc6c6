"""A user's company graph from a folder of CSV files, checked against the finance ontology.

Files (UTF-8, header row first; only ``companies.csv`` is required)::

    companies.csv  company_id[, name][, industry][, region][, period][, split][, <numeric feature>...]
    persons.csv    person_id[, name]
    groups.csv     group_id, kind (Industry / Region / Qualification)[, name]
    edges.csv      head, relation, tail[, weight]
    labels.csv     company_id, defaulted (0/1)[, period][, split]
    texts.csv      company_id, text                 (one sentence or paragraph a row)
    lawsuits.csv   company_id, role, cause, court, outcome, months_before

Every other ``companies.csv`` column is a numeric feature (empty cell = missing); ``industry`` / ``region``
create ``industry:<value>`` / ``region:<value>`` nodes with ``inIndustry`` / ``inRegion`` edges. Edge ends are
company ids, person ids or group node ids; an id that is none of them is created when the relation admits
a single non-company kind at that end (a ``legalRepresentativeOf`` head becomes a Person); ``groups.csv``
declares group nodes with their names (and groups without members). Relations are the
ontology's (SMEsD edge type names are read as the relations they map to). Anything wrong raises
:class:`FinanceDataError` naming the file, the line and what was expected; nothing is dropped or half-loaded.

Without any ``split`` (neither file has the column, or every cell is empty), ``kgreason finance train`` and
``check`` give the labelled companies a seeded stratified train / dev / test split
(:func:`kgreason.finance.checks.default_split`, seed ``data.split_seed`` of the risk config).
"""

from __future__ import annotations

import csv
import difflib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kgreason.finance.errors import FinanceDataError
from kgreason.finance.graph import (
    COMPANY,
    DEFAULT,
    NODE_KINDS,
    SPLITS,
    SURVIVED,
    CompanyGraph,
    Lawsuit,
    empty_arrays,
)
from kgreason.finance.ontology import DEFAULT_MONOTONE, FinanceOntology, load_ontology

__all__ = ["COMPANY_COLUMNS", "LAWSUIT_OUTCOMES", "LAWSUIT_ROLES", "FinanceDataError", "load_company_csv"]

#: Non-feature columns of companies.csv.
COMPANY_COLUMNS = ("company_id", "name", "industry", "region", "period", "split")
INDUSTRY_PREFIX, REGION_PREFIX = "industry:", "region:"
NON_NEGATIVE = ("registered_capital", "paid_in_capital", "founded_months_ago")
LAWSUIT_ROLES = ("plaintiff", "defendant")
LAWSUIT_OUTCOMES = ("won", "lost")
_FILES = {
    "companies.csv": (("company_id",), COMPANY_COLUMNS),
    "persons.csv": (("person_id",), ("person_id", "name")),
    "groups.csv": (("group_id", "kind"), ("group_id", "kind", "name")),
    "edges.csv": (("head", "relation", "tail"), ("head", "relation", "tail", "weight")),
    "labels.csv": (("company_id", "defaulted"), ("company_id", "defaulted", "period", "split")),
    "texts.csv": (("company_id", "text"), ("company_id", "text")),
    "lawsuits.csv": (
        ("company_id", "role", "cause", "court", "outcome", "months_before"),
        ("company_id", "role", "cause", "court", "outcome", "months_before"),
    ),
}


@dataclass
class _Table:
    """A parsed CSV file: header and ``(line, {column: cell})`` rows (line = the row's first line)."""

    path: Path
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]

    def error(
        self, message: str, line: int | None = None, *, expected: str | None = None
    ) -> FinanceDataError:
        return FinanceDataError(message, path=self.path, line=line, expected=expected)


def _read_table(path: Path, *, open_columns: bool = False) -> _Table:
    """Read ``path``; check required and allowed columns (``open_columns``: extra columns allowed)."""
    required, allowed = _FILES[path.name]
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise FinanceDataError(
            f"invalid UTF-8 byte {data[err.start]:#04x}", path=path, line=line, expected="UTF-8 text"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [cell.strip() for cell in next(reader)]
    except StopIteration:
        raise FinanceDataError(
            "empty file", path=path, line=1, expected=f"a header: {', '.join(allowed)}"
        ) from None
    except csv.Error as err:
        raise FinanceDataError(f"bad CSV: {err}", path=path, line=reader.line_num) from None
    table = _Table(path, header, [])
    seen: set[str] = set()
    for column in header:
        if column in seen:
            raise table.error(f"column {column!r} appears twice in the header", 1)
        seen.add(column)
    for column in required:
        if column not in header:
            close = difflib.get_close_matches(column, header, n=1, cutoff=0.6)
            hint = f"; found {close[0]!r}, did you mean {column!r}?" if close else ""
            raise table.error(
                f"missing column {column!r}{hint}", 1, expected=f"columns {', '.join(required)}"
            )
    if not open_columns:
        for column in header:
            if column not in allowed:
                close = difflib.get_close_matches(column, allowed, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise table.error(
                    f"unknown column {column!r}{hint}", 1, expected=f"columns {', '.join(allowed)}"
                )
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise table.error(f"bad CSV: {err}", reader.line_num) from None
        if row and any(cell.strip() for cell in row):
            if len(row) != len(header):
                raise table.error(
                    f"row has {len(row)} fields", line, expected=f"{len(header)} fields ({', '.join(header)})"
                )
            table.rows.append((line, {k: v.strip() for k, v in zip(header, row, strict=True)}))
        line = reader.line_num + 1
    return table


#: The largest magnitude a value may have: features and weights are stored as float32.
LARGEST = float(np.finfo(np.float32).max)


def _number(table: _Table, line: int, column: str, cell: str) -> float:
    """A finite number that fits float32, ``nan`` for an empty cell."""
    if cell == "":
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise table.error(
            f"{column} {cell!r} is not a number", line, expected="a finite number or an empty cell"
        )
    if abs(value) > LARGEST:
        raise table.error(
            f"{column} {cell!r} is too large",
            line,
            expected=f"a number between -{LARGEST:.4g} and {LARGEST:.4g}",
        )
    return value


def _integer(table: _Table, line: int, column: str, cell: str, *, minimum: int = 0) -> int:
    value = _number(table, line, column, cell)
    if math.isnan(value) or value != int(value) or value < minimum:
        raise table.error(
            f"{column} {cell!r} is not a valid count", line, expected=f"an integer >= {minimum}"
        )
    return int(value)


def _split(table: _Table, line: int, cell: str) -> str:
    if cell not in (*SPLITS, ""):
        close = difflib.get_close_matches(cell, SPLITS, n=1, cutoff=0.4)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise table.error(
            f"unknown split {cell!r}{hint}", line, expected=f"one of {', '.join(SPLITS)} or empty"
        )
    return cell


@dataclass
class _Nodes:
    """Node keys, kinds and where each was defined, built in order."""

    keys: list[str] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, kind: int, origin: str) -> int:
        self.index[key] = len(self.keys)
        self.keys.append(key)
        self.kinds.append(kind)
        self.origin[key] = origin
        return self.index[key]


@dataclass
class _Edges:
    """Edges in order of addition, the relation names they use (the ontology's first) and where each was read."""

    relations: list[str]
    ids: dict[str, int] = field(default_factory=dict)
    rows: list[tuple[int, int, int]] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    line: dict[tuple[int, int, int], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = {r: i for i, r in enumerate(self.relations)}

    def add(
        self, head: int, relation: str, tail: int, weight: float, where: str
    ) -> tuple[int, int, int] | None:
        """Add an edge; return the triple without adding it when it is already there (else ``None``)."""
        if relation not in self.ids:
            self.ids[relation] = len(self.relations)
            self.relations.append(relation)
        triple = (head, self.ids[relation], tail)
        if triple in self.line:
            return triple
        self.line[triple] = where
        self.rows.append(triple)
        self.weight.append(weight)
        return None


@dataclass
class _Companies:
    """companies.csv read: the table, its feature columns, the per-company arrays and the lines that set
    each company's period and split."""

    table: _Table
    feature_names: list[str]
    arrays: dict[str, np.ndarray]
    period_line: dict[int, int]
    split_line: dict[int, int]


def _read_companies(path: Path, nodes: _Nodes, names: dict[str, str]) -> _Companies:
    """Read companies.csv: add the company nodes (and their names) and fill features, periods and splits."""
    companies = _read_table(path, open_columns=True)
    if "defaulted" in companies.header:
        raise companies.error("outcomes belong in labels.csv, not in a 'defaulted' column", 1)
    feature_names = [c for c in companies.header if c not in COMPANY_COLUMNS]
    arrays = empty_arrays(len(companies.rows), len(feature_names))
    features, splits, periods = arrays["features"], arrays["splits"], arrays["periods"]
    period_line: dict[int, int] = {}
    split_line: dict[int, int] = {}
    for row, (line, cells) in enumerate(companies.rows):
        key = cells["company_id"]
        if not key:
            raise companies.error("empty company_id", line, expected="a company id")
        if key in nodes.index:
            first = nodes.origin[key].rsplit(", ", 1)[-1]
            raise companies.error(f"duplicate company_id {key!r} (first at {first})", line)
        nodes.add(key, COMPANY, f"companies.csv, line {line}")
        if cells.get("name"):
            names[key] = cells["name"]
        for j, column in enumerate(feature_names):
            value = _number(companies, line, column, cells[column])
            if column in NON_NEGATIVE and value < 0:
                what = "capital" if "capital" in column else "age"
                raise companies.error(
                    f"negative {what}: {column} = {cells[column]}", line, expected="a value >= 0"
                )
            if column.startswith("lawsuits") and not math.isnan(value):
                _integer(companies, line, column, cells[column])
            features[row, j] = value
        if cells.get("period"):
            periods[row] = _integer(companies, line, "period", cells["period"], minimum=1)
            period_line[row] = line
        if cells.get("split"):
            splits[row] = _split(companies, line, cells["split"])
            split_line[row] = line
    return _Companies(companies, feature_names, arrays, period_line, split_line)


def _read_persons(path: Path, nodes: _Nodes, names: dict[str, str]) -> None:
    """Read persons.csv: add the person nodes (and their names)."""
    persons = _read_table(path)
    for line, cells in persons.rows:
        key = cells["person_id"]
        if not key:
            raise persons.error("empty person_id", line, expected="a person id")
        if key in nodes.index:
            first = nodes.origin[key]
            raise persons.error(f"duplicate id {key!r} (already defined at {first})", line)
        nodes.add(key, NODE_KINDS.index("Person"), f"persons.csv, line {line}")
        if cells.get("name"):
            names[key] = cells["name"]


def _read_groups(path: Path, ontology: FinanceOntology, nodes: _Nodes, names: dict[str, str]) -> None:
    """Read groups.csv: add the group nodes (industries, regions, ...) and their names."""
    groups = _read_table(path)
    group_classes = [c for c, spec in ontology.classes.items() if spec.kind in ("Industry", "Region")]
    for line, cells in groups.rows:
        key = cells["group_id"]
        if not key:
            raise groups.error("empty group_id", line, expected="a group id")
        if key in nodes.index:
            raise groups.error(f"duplicate id {key!r} (already defined at {nodes.origin[key]})", line)
        if cells["kind"] not in group_classes:
            raise groups.error(f"kind {cells['kind']!r}", line, expected=" or ".join(group_classes))
        kind = NODE_KINDS.index(ontology.classes[cells["kind"]].kind)
        nodes.add(key, kind, f"groups.csv, line {line}")
        if cells.get("name"):
            names[key] = cells["name"]


def _add_industry_region_edges(companies: _Table, nodes: _Nodes, edges: _Edges) -> None:
    """The ``industry`` / ``region`` columns: create their nodes and the ``inIndustry`` / ``inRegion`` edges."""
    for column, prefix, relation in (
        ("industry", INDUSTRY_PREFIX, "inIndustry"),
        ("region", REGION_PREFIX, "inRegion"),
    ):
        if column not in companies.header:
            continue
        kind = NODE_KINDS.index(column.capitalize())
        for row, (line, cells) in enumerate(companies.rows):
            if not cells[column]:
                continue
            key = prefix + cells[column]
            if key not in nodes.index:
                nodes.add(key, kind, f"companies.csv, line {line}")
            elif nodes.kinds[nodes.index[key]] != kind:
                raise companies.error(
                    f"{column} id {key!r} is already a {NODE_KINDS[nodes.kinds[nodes.index[key]]]}", line
                )
            edges.add(row, relation, nodes.index[key], 1.0, f"companies.csv, line {line}")


def _read_labels(path: Path, company: _Companies, company_row: dict[str, int], nodes: _Nodes) -> None:
    """Read labels.csv into the companies' labels (and periods / splits, which must agree with companies.csv)."""
    labels, splits, periods = company.arrays["labels"], company.arrays["splits"], company.arrays["periods"]
    period_line, split_line = company.period_line, company.split_line
    table = _read_table(path)
    seen: dict[str, int] = {}
    for line, cells in table.rows:
        row = _company(table, line, cells["company_id"], company_row, nodes)
        if cells["company_id"] in seen:
            raise table.error(
                f"duplicate label for {cells['company_id']!r} (first at line {seen[cells['company_id']]})",
                line,
            )
        seen[cells["company_id"]] = line
        if cells["defaulted"] not in ("0", "1"):
            raise table.error(
                f"defaulted {cells['defaulted']!r} is not 0 or 1",
                line,
                expected="0 (survived) or 1 (defaulted)",
            )
        labels[row] = DEFAULT if cells["defaulted"] == "1" else SURVIVED
        if cells.get("period"):
            period = _integer(table, line, "period", cells["period"], minimum=1)
            if row in period_line and periods[row] != period:
                raise table.error(
                    f"period {period} contradicts companies.csv line {period_line[row]} ({periods[row]})",
                    line,
                )
            periods[row] = period
        if cells.get("split"):
            split = _split(table, line, cells["split"])
            if row in split_line and splits[row] != split:
                raise table.error(
                    f"split {split!r} contradicts companies.csv line {split_line[row]} ({splits[row]!r})",
                    line,
                )
            splits[row] = split


def _read_texts(path: Path, company_row: dict[str, int], nodes: _Nodes) -> list[list[str]]:
    """Each company's texts from texts.csv (empty lists when the file is absent)."""
    texts: list[list[str]] = [[] for _ in range(len(company_row))]
    if path.is_file():
        table = _read_table(path)
        for line, cells in table.rows:
            row = _company(table, line, cells["company_id"], company_row, nodes)
            if not cells["text"]:
                raise table.error(f"empty text for {cells['company_id']!r}", line, expected="a sentence")
            texts[row].append(cells["text"])
    return texts


def _read_lawsuits(path: Path, company_row: dict[str, int], nodes: _Nodes) -> list[list[Lawsuit]]:
    """Each company's lawsuits from lawsuits.csv (empty lists when the file is absent)."""
    lawsuits: list[list[Lawsuit]] = [[] for _ in range(len(company_row))]
    if path.is_file():
        table = _read_table(path)
        for line, cells in table.rows:
            row = _company(table, line, cells["company_id"], company_row, nodes)
            for column, allowed in (("role", LAWSUIT_ROLES), ("outcome", LAWSUIT_OUTCOMES)):
                if cells[column] not in allowed:
                    raise table.error(f"{column} {cells[column]!r}", line, expected=" or ".join(allowed))
            for column in ("cause", "court"):
                if not cells[column]:
                    raise table.error(f"empty {column}", line, expected=f"a {column} name")
            months = _integer(table, line, "months_before", cells["months_before"])
            lawsuits[row].append(
                Lawsuit(cells["role"], cells["cause"], cells["court"], cells["outcome"], months)
            )
    return lawsuits


def load_company_csv(
    folder: str | Path,
    *,
    ontology: FinanceOntology | None = None,
    name: str | None = None,
    allow_ownership_cycles: bool = False,
) -> CompanyGraph:
    """Load a company graph from ``folder`` (see the module docstring for the files).

    Args:
        folder: the folder holding ``companies.csv`` and the optional files.
        ontology: the finance ontology to check against (default: the shipped one).
        name: the graph's name (default: the folder's name).
        allow_ownership_cycles: accept cycles of ownership edges (cross-holdings) instead of raising.

    Raises:
        FinanceDataError: naming the file, line and what was expected.
    """
    folder = Path(folder)
    ontology = ontology or load_ontology()
    if not (folder / "companies.csv").is_file():
        raise FinanceDataError(
            "companies.csv not found", path=folder / "companies.csv", expected="a company table"
        )
    nodes = _Nodes()
    names: dict[str, str] = {}
    company = _read_companies(folder / "companies.csv", nodes, names)
    num = len(company.table.rows)
    edges = _Edges(list(ontology.relations))
    if (folder / "persons.csv").is_file():
        _read_persons(folder / "persons.csv", nodes, names)
    if (folder / "groups.csv").is_file():
        _read_groups(folder / "groups.csv", ontology, nodes, names)
    _add_industry_region_edges(company.table, nodes, edges)
    if (folder / "edges.csv").is_file():
        _read_edges(folder / "edges.csv", ontology, nodes, edges.add)
    if not allow_ownership_cycles:
        _check_ownership_cycles(
            folder / "edges.csv", ontology, nodes, edges.rows, edges.relations, edges.line
        )

    company_row = {nodes.keys[i]: i for i in range(num)}
    if (folder / "labels.csv").is_file():
        _read_labels(folder / "labels.csv", company, company_row, nodes)
    texts = _read_texts(folder / "texts.csv", company_row, nodes)
    lawsuits = _read_lawsuits(folder / "lawsuits.csv", company_row, nodes)

    feature_names = company.feature_names
    graph = CompanyGraph(
        name=name or folder.resolve().name,
        nodes=nodes.keys,
        kinds=np.asarray(nodes.kinds, dtype=np.int8),  # (N,)
        relations=edges.relations,
        edges=np.asarray(edges.rows, dtype=np.int64).reshape(-1, 3),  # (M, 3)
        edge_weight=np.asarray(edges.weight, dtype=np.float32),  # (M,)
        companies=np.arange(num, dtype=np.int64),  # (C,)
        feature_names=feature_names,
        features=company.arrays["features"],  # (C, F)
        labels=company.arrays["labels"],
        splits=company.arrays["splits"],
        periods=company.arrays["periods"],
        texts=texts,
        lawsuits=lawsuits,
        metadata={"source": "csv", "path": str(folder), "names": names, "ontology": str(ontology.path)},
        monotone={f: d for f, d in DEFAULT_MONOTONE.items() if f in feature_names},
    )
    return graph.validate()


def _company(table: _Table, line: int, key: str, company_row: dict[str, int], nodes: _Nodes) -> int:
    if key in company_row:
        return company_row[key]
    if key in nodes.index:
        kind = NODE_KINDS[nodes.kinds[nodes.index[key]]]
        raise table.error(
            f"{key!r} is a {kind}, not a company", line, expected="a company_id of companies.csv"
        )
    close = difflib.get_close_matches(key, list(company_row), n=1, cutoff=0.8)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise table.error(f"unknown company id {key!r}{hint}", line, expected="a company_id of companies.csv")


def _read_edges(path: Path, ontology: FinanceOntology, nodes: _Nodes, add_edge) -> None:
    table = _read_table(path)
    for line, cells in table.rows:
        relation = cells["relation"]
        try:
            spec, _ = ontology.resolve(relation)
        except KeyError as err:
            raise table.error(str(err.args[0]), line) from None
        ends = []
        for end, allowed in (
            ("head", ontology.head_kinds(relation)),
            ("tail", ontology.tail_kinds(relation)),
        ):
            key = cells[end]
            if not key:
                raise table.error(f"empty {end}", line, expected="a node id")
            if key not in nodes.index:
                if len(allowed) == 1 and allowed[0] != "Company":
                    nodes.add(key, NODE_KINDS.index(allowed[0]), f"edges.csv, line {line}")
                else:
                    where = "companies.csv" if allowed == ("Company",) else "companies.csv or persons.csv"
                    what = "company id" if allowed == ("Company",) else "id"
                    raise table.error(
                        f"unknown {what} {key!r} as {end} of {relation}", line, expected=f"an id of {where}"
                    )
            ends.append(nodes.index[key])
        head, tail = ends
        if head == tail:
            raise table.error(
                f"{relation} edge from {cells['head']!r} to itself", line, expected="two different nodes"
            )
        problem = ontology.check_edge(relation, NODE_KINDS[nodes.kinds[head]], NODE_KINDS[nodes.kinds[tail]])
        if problem:
            raise table.error(f"{problem} ({cells['head']!r} -> {cells['tail']!r})", line)
        weight = 1.0
        if cells.get("weight", ""):
            weight = _number(table, line, "weight", cells["weight"])
            if weight < 0 or (spec.ownership and relation == spec.name and weight > 1):
                expected = (
                    "a share between 0 and 1" if spec.ownership and relation == spec.name else "a value >= 0"
                )
                raise table.error(f"{relation} weight {cells['weight']}", line, expected=expected)
        first = add_edge(head, relation, tail, weight, f"edges.csv, line {line}")
        if first is not None:
            raise table.error(f"duplicate edge {cells['head']} {relation} {cells['tail']}", line)


def _check_ownership_cycles(path, ontology, nodes, edge_rows, relations, edge_line) -> None:
    """Raise on the first cycle of ownership edges, naming its ids and the lines of its edges."""
    import networkx as nx

    ownership = set()
    for r, name in enumerate(relations):
        spec, inverse = ontology.resolve(name)
        if spec.ownership:
            ownership.add((r, inverse))
    graph = nx.DiGraph()
    for head, r, tail in edge_rows:
        for rel, inverse in ownership:
            if r == rel:
                a, b = (tail, head) if inverse else (head, tail)
                graph.add_edge(a, b, where=edge_line[(head, r, tail)])
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    ids = [nodes.keys[a] for a, _ in cycle] + [nodes.keys[cycle[0][0]]]
    wheres = [graph.edges[a, b]["where"] for a, b in cycle]
    lines = [int(w.rsplit(" ", 1)[1]) for w in wheres]
    raise FinanceDataError(
        f"ownership cycle {' -> '.join(ids)} (edges at lines {', '.join(map(str, lines))})",
        path=path,
        line=max(lines),
        expected="ownership edges without cycles (pass allow_ownership_cycles=True for cross-holdings)",
    )
