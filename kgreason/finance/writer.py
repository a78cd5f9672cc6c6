"""Write a :class:`CompanyGraph` as the CSV folder :func:`~kgreason.finance.csv_loader.load_company_csv` reads.

``companies.csv`` (ids, names, features, industry / region, period, split), ``persons.csv``, ``groups.csv``
(industry / region nodes and their names), ``edges.csv``, ``labels.csv``, ``texts.csv`` and ``lawsuits.csv``.
Every file is rendered in memory first (a graph that cannot be written raises before anything is touched),
then each is replaced atomically (temporary file +
``os.replace``); files the graph has no rows for are still written with their header, so an older file
never survives beside new ones.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from kgreason.core.atomic import atomic_write_text
from kgreason.finance.csv_loader import COMPANY_COLUMNS, INDUSTRY_PREFIX, REGION_PREFIX
from kgreason.finance.graph import COMPANY, NODE_KINDS, UNKNOWN, CompanyGraph, CompanyGraphError

__all__ = ["write_company_csv"]

_PERSON, _INDUSTRY, _REGION = (NODE_KINDS.index(k) for k in ("Person", "Industry", "Region"))


def _number(value: float) -> str:
    """Shortest text that reads back to the same float32; empty for ``nan``."""
    return "" if math.isnan(value) else format(float(value), ".9g")


def _csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _group_columns(graph: CompanyGraph) -> tuple[dict[str, dict[int, str]], set[int]]:
    """The ``industry`` / ``region`` column of each company row (from its one prefixed group node, weight 1)
    and the edge indices folded into them."""
    nodes, kinds = graph.nodes, graph.kinds
    rows = {int(node): row for row, node in enumerate(graph.companies)}
    columns: dict[str, dict[int, str]] = {"industry": {}, "region": {}}
    folded: set[int] = set()
    for relation, column, prefix, kind in (
        ("inIndustry", "industry", INDUSTRY_PREFIX, _INDUSTRY),
        ("inRegion", "region", REGION_PREFIX, _REGION),
    ):
        if relation not in graph.relations:
            continue
        rid = graph.relation_id(relation)
        candidates = np.flatnonzero(graph.edges[:, 1] == rid)  # (m,)
        heads = graph.edges[candidates, 0]
        counts = dict(zip(*np.unique(heads, return_counts=True), strict=True)) if len(heads) else {}
        for m in candidates.tolist():
            head, _, tail = (int(v) for v in graph.edges[m])
            key = nodes[tail]
            if (
                counts[head] == 1
                and head in rows
                and kinds[tail] == kind
                and key.startswith(prefix)
                and len(key) > len(prefix)
                and graph.edge_weight[m] == 1.0
            ):
                columns[column][rows[head]] = key[len(prefix) :]
                folded.add(m)
    return columns, folded


def _companies_csv(graph: CompanyGraph, names: dict[str, str], columns: dict[str, dict[int, str]]) -> str:
    """companies.csv: id, name (when any company has one), features, group columns, period and split."""
    nodes = graph.nodes
    header = ["company_id"]
    if any(nodes[int(n)] in names for n in graph.companies):
        header.append("name")
    header += list(graph.feature_names)
    header += [c for c in ("industry", "region") if columns[c]]
    has_period, has_split = bool(np.any(graph.periods != 0)), bool(np.any(graph.splits != ""))
    header += ["period"] * has_period + ["split"] * has_split
    company_rows = []
    for row, node in enumerate(graph.companies):
        key = nodes[int(node)]
        cells = [key] + ([names.get(key, "")] if "name" in header else [])
        cells += [_number(v) for v in graph.features[row]]
        cells += [columns[c].get(row, "") for c in ("industry", "region") if columns[c]]
        cells += [str(int(graph.periods[row])) if graph.periods[row] else ""] * has_period
        cells += [str(graph.splits[row])] * has_split
        company_rows.append(cells)
    return _csv(header, company_rows)


def _other_files(graph: CompanyGraph, names: dict[str, str], folded: set[int]) -> dict[str, str]:
    """The text of every file but companies.csv (edges.csv leaves out the ``folded`` edges)."""
    nodes, kinds = graph.nodes, graph.kinds
    return {
        "persons.csv": _csv(
            ["person_id", "name"],
            [[nodes[i], names.get(nodes[i], "")] for i in np.flatnonzero(kinds == _PERSON)],
        ),
        "groups.csv": _csv(
            ["group_id", "kind", "name"],
            [
                [nodes[i], NODE_KINDS[kinds[i]], names.get(nodes[i], "")]
                for i in np.flatnonzero((kinds == _INDUSTRY) | (kinds == _REGION))
            ],
        ),
        "edges.csv": _csv(
            ["head", "relation", "tail", "weight"],
            [
                [nodes[h], graph.relations[r], nodes[t], _number(w)]
                for m, ((h, r, t), w) in enumerate(
                    zip(graph.edges.tolist(), graph.edge_weight.tolist(), strict=True)
                )
                if m not in folded
            ],
        ),
        "labels.csv": _csv(
            ["company_id", "defaulted"],
            [
                [nodes[int(node)], str(int(graph.labels[row]))]
                for row, node in enumerate(graph.companies)
                if graph.labels[row] != UNKNOWN
            ],
        ),
        "texts.csv": _csv(
            ["company_id", "text"],
            [
                [nodes[int(node)], text]
                for row, node in enumerate(graph.companies)
                for text in graph.texts[row]
            ],
        ),
        "lawsuits.csv": _csv(
            ["company_id", "role", "cause", "court", "outcome", "months_before"],
            [
                [nodes[int(node)], s.role, s.cause, s.court, s.outcome, str(s.months_before)]
                for row, node in enumerate(graph.companies)
                for s in graph.lawsuits[row]
            ],
        ),
    }


def write_company_csv(graph: CompanyGraph, folder: str | Path) -> Path:
    """Write ``graph`` into ``folder`` (created if needed) and return the folder.

    ``inIndustry`` / ``inRegion`` edges of ``industry:<v>`` / ``region:<v>`` nodes (one per company, weight 1)
    become the ``industry`` / ``region`` columns; every other edge goes to ``edges.csv``.

    Raises:
        CompanyGraphError: the graph is invalid or a feature is named like a reserved column.
    """
    graph.validate()
    folder = Path(folder)
    names: dict[str, str] = graph.metadata.get("names", {}) or {}
    clash = [f for f in graph.feature_names if f in COMPANY_COLUMNS or f == "defaulted"]
    if clash:
        raise CompanyGraphError(f"{graph.name}: features named like reserved columns: {clash}")
    columns, folded = _group_columns(graph)
    if np.any((graph.kinds == COMPANY) & ~np.isin(np.arange(len(graph.nodes)), graph.companies)):
        raise CompanyGraphError(f"{graph.name}: a Company node has no company row")
    files = {"companies.csv": _companies_csv(graph, names, columns), **_other_files(graph, names, folded)}
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, text in files.items():
        atomic_write_text(folder / file_name, text)
    return folder
