"""SMEsD (Wei et al. 2024): 3,976 Chinese SMEs, the people around them, lawsuits and bankruptcy outcomes.

Reads ``split_data_idx.pkl`` and ``{train,validate,test}_data.pkl`` (see ``SMEsD.md`` beside them) into one
:class:`~kgreason.finance.graph.CompanyGraph`. The pickles are read only through :func:`safe_unpickle`, which
refuses every global (no code can run). What the files hold and how they are read, as checked on the data:

* **Index space.** One index space, companies first: the three split lists cover exactly 0..3975 (3,976
  companies), and every end of a person edge type (supervise, execute, stakeholder, invest_CP and their
  inverses) is >= 3976 while every end of a company-company type is < 3976 (so persons are 3976..6380;
  2,402 of ComRisk's 2,405 appear in an edge). Nodes are ``c<idx>`` and ``p<idx>``.
* **Per-file arrays.** ``attributes`` and ``labels`` are indexed by position in that split's index list
  (lengths 2,816 / 721 / 491); lawsuits are keyed by the global company index.
* **Time split.** train_data -> ``train`` (bankruptcies 2014-18), validate_data -> ``dev`` (2019),
  test_data -> ``test`` (2020-21). 51 companies (52 extra appearances; one is in all three files) are in
  more than one file with identical attributes, labels and lawsuits; each is kept in its **earliest** split,
  so dev and test hold no company already seen in training (train 2,816, dev 686, test 474).
* **Edges.** The three files' edges are united and de-duplicated (25,952 distinct, no weight conflicts); all
  20 edge types keep SMEsD's names as relations. Weights are SMEsD's (investment amounts, same unit as the
  registered capital, presumably 10,000 CNY, for the invest types; 1 otherwise). The ontology maps each name onto a ``fin:``
  relation (``knowledge/finance/README.md``); note that ``invest_CC`` points from the invested company to the
  investor (amounts add up to the head's registered capital), so ``invested_CC`` is ``fin:owns``.
* **Hyperedges.** ``industry`` -> Industry nodes ``industry:<name>`` with ``inIndustry`` edges (SMEsD split
  names at the enumeration comma "、" into groups with identical members; consecutive such groups are
  joined back, so every company has one industry; the industry ``-`` means unknown and gets no edge), ``area`` ->
  Region nodes ``region:<name>`` with ``inRegion``; ``qualify`` groups are keyed by a person index and hold
  companies linked to that person, so they become Industry-kind group nodes ``qualify:p<idx>`` with
  ``hasQualification`` edges (ontology class ``fin:Qualification``). Names stay in Chinese as in the source.
* **Features.** ``registered_capital``, ``paid_in_capital``, ``months_since_setup`` (from the attribute
  arrays), the :func:`~kgreason.finance.graph.lawsuit_counts`, and one ``cause_<category>`` count per cause
  category. Lawsuits decode to English cause / court names; SMEsD's result (``plaintiff won`` ...) gives the
  company's role and outcome. ``time_label`` (months // 48) is dropped: it repeats the months.
* **No texts, no periods.** SMEsD has no news (texts are empty lists) and no exact bankruptcy year (periods 0).
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgreason.finance.errors import FinanceDataError
from kgreason.finance.graph import (
    COMPANY,
    DEFAULT,
    INDUSTRY,
    NODE_KINDS,
    PERSON,
    REGION,
    SURVIVED,
    CompanyGraph,
    Lawsuit,
    empty_arrays,
    lawsuit_counts,
)
from kgreason.finance.ontology import DEFAULT_MONOTONE, FinanceOntology, load_ontology

__all__ = ["CAUSES", "COURTS", "EDGE_TYPES", "RESULTS", "read_smesd", "safe_unpickle"]

NUM_COMPANIES = 3976
#: SMEsD's 20 edge types, in type-id order (SMEsD.md).
EDGE_TYPES = (
    "supervised", "supervise", "executed", "execute", "stakeholderd", "stakeholder",
    "invest_CC", "invested_CC", "invest_CP", "invested_CP", "branch", "branched",
    "loan", "deal", "rent", "creditor", "loaned", "dealed", "rented", "creditored",
)  # fmt: skip
#: English names of SMEsD's 11 lawsuit cause categories (SMEsD.md lists the Chinese causes of each).
CAUSES = (
    "loan contract",
    "sales contract",
    "lease contract",
    "construction, processing and transport contract",
    "creditor's rights and debt transfer",
    "other contract",
    "intellectual property and competition",
    "labour dispute",
    "tort liability",
    "company, securities, insurance and bills",
    "property rights, maritime and other",
)
CAUSE_FEATURES = (
    "cause_loan",
    "cause_sales",
    "cause_lease",
    "cause_construction",
    "cause_debt",
    "cause_other_contract",
    "cause_ip",
    "cause_labour",
    "cause_tort",
    "cause_corporate",
    "cause_property",
)
COURTS = ("grassroots", "intermediate", "higher", "supreme")
#: SMEsD result category -> (the company's role, its outcome).
RESULTS = (("plaintiff", "won"), ("plaintiff", "lost"), ("defendant", "won"), ("defendant", "lost"))
_FILES = (("train", "train_data.pkl"), ("dev", "validate_data.pkl"), ("test", "test_data.pkl"))
_HYPER = (("industry", "industry:", INDUSTRY, "inIndustry"), ("area", "region:", REGION, "inRegion"))
MISSING_INDUSTRY = "-"
ATTRIBUTES = ("registered_capital", "paid_in_capital", "months_since_setup")
CITATION = (
    "Shaopeng Wei, Jia Lv, Yu Guo, Qing Yang, Xingyan Chen, Yu Zhao, Qing Li, Fuzhen Zhuang, Gang Kou. "
    "Combining Intra-Risk and Contagion Risk for Enterprise Bankruptcy Prediction Using Graph Neural Networks. "
    "Information Sciences 120081, 2024. doi:10.1016/j.ins.2023.120081"
)


class PickleRefusedError(FinanceDataError, pickle.UnpicklingError):
    """A pickle that names a global, or does not decode; the message names the file."""


class _NoGlobals(pickle.Unpickler):
    """An unpickler that refuses every global: only builtin containers, numbers and strings load."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: only plain lists, dicts, numbers and strings are allowed"
        )


def safe_unpickle(path: str | Path) -> Any:
    """Load a pickle that may hold only builtin values; any global (class, function) is refused.

    Raises:
        PickleRefusedError: the pickle names a global (the message names it) or is malformed; it is both a
            :class:`FinanceDataError` naming the file and a :class:`pickle.UnpicklingError`.
    """
    with open(path, "rb") as handle:
        try:
            return _NoGlobals(handle).load()
        except pickle.UnpicklingError as err:
            if str(err).startswith("refusing to load global"):
                raise PickleRefusedError(str(err), path=path, expected="a pickle of plain values") from None
            detail = err
        except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, MemoryError) as err:
            detail = err
    raise PickleRefusedError(
        f"not a readable pickle ({type(detail).__name__}: {detail})",
        path=path,
        expected="an SMEsD pickle of plain lists, dicts, numbers and strings",
    )


def _rejoin_names(members_of: dict[str, list[int]]) -> dict[str, list[int]]:
    """Undo SMEsD's split of industry names at the enumeration comma: consecutive groups with the very same
    members are fragments of one name ('电力', '热力生产和供应业' -> '电力、热力生产和供应业')."""
    joined: dict[str, list[int]] = {}
    previous: tuple[str, frozenset[int]] | None = None
    for name, members in members_of.items():
        key = frozenset(members)
        if previous is not None and previous[1] == key:
            name = f"{previous[0]}、{name}"
            joined[name] = joined.pop(previous[0])
        else:
            joined[name] = list(members)
        previous = (name, key)
    return joined


#: What the SMEsD folder holds (the ``expected`` of a folder-not-found error).
SMESD_FILES = "smesd/ with split_data_idx.pkl, train_data.pkl, validate_data.pkl and test_data.pkl"
#: How to point kgreason at the SMEsD release.
HOW_TO_SET = "pass --data-dir DIR or set $KGREASON_DATA=DIR, where DIR holds smesd/"


def _default_dir() -> Path:
    from kgreason.core.paths import DATA_ENV, data_dir

    root = data_dir()
    if root is None:
        raise FinanceDataError(
            f"SMEsD data folder not found (no --data-dir, ${DATA_ENV} is not set, no ../shared/data); "
            + HOW_TO_SET,
            path="smesd",
            expected=SMESD_FILES,
        )
    if not (root / "smesd").is_dir():
        given = f"--data-dir / ${DATA_ENV}" if os.environ.get(DATA_ENV) else "../shared/data"
        where = "does not exist" if not root.is_dir() else "has no smesd/"
        raise FinanceDataError(
            f"SMEsD data folder not found (the data folder {root}, from {given}, {where}); {HOW_TO_SET}",
            path=root / "smesd",
            expected=SMESD_FILES,
        )
    return root / "smesd"


def _smesd_folder(data_dir: str | Path | None) -> Path:
    """The SMEsD folder: ``data_dir`` itself, or its ``smesd/`` (a data root), else the default data folder's."""
    if data_dir is None:
        return _default_dir()
    folder = Path(data_dir)
    if not (folder / "split_data_idx.pkl").is_file() and (folder / "smesd" / "split_data_idx.pkl").is_file():
        return folder / "smesd"
    if not folder.is_dir():
        raise FinanceDataError(
            f"SMEsD data folder not found; {HOW_TO_SET}", path=folder, expected=SMESD_FILES
        )
    return folder


def _check(condition: bool, path: Path, message: str, expected: str) -> None:
    if not condition:
        raise FinanceDataError(message, path=path, expected=expected)


#: One split file read: ``(split, path, indices, lawsuits, attributes, graph, hyper, labels)``.
_Part = tuple[str, Path, list[int], dict, list, Any, dict, list]


@dataclass
class _Companies:
    """The companies merged over the split files (earliest split wins) and per-file counts."""

    split_of: dict[int, str] = field(default_factory=dict)
    attrs: dict[int, Sequence[float]] = field(default_factory=dict)
    label_of: dict[int, int] = field(default_factory=dict)
    suits_of: dict[int, list[list[int]]] = field(default_factory=dict)
    raw: dict[str, dict[str, int]] = field(default_factory=dict)
    conflicts: int = 0


def _read_parts(folder: Path) -> tuple[Path, list[_Part]]:
    """Check the files are there and read the split index lists and the three split files."""
    for _, file_name in (("", "split_data_idx.pkl"), *_FILES):
        _check((folder / file_name).is_file(), folder / file_name, "file not found", "an SMEsD pickle")
    split_path = folder / "split_data_idx.pkl"
    split_lists = safe_unpickle(split_path)
    _check(
        isinstance(split_lists, list) and len(split_lists) == 3,
        split_path,
        "not three index lists",
        "[train_idx, valid_idx, test_idx]",
    )
    parts = []
    for (split, file_name), indices in zip(_FILES, split_lists, strict=True):
        path = folder / file_name
        data = safe_unpickle(path)
        _check(
            isinstance(data, list) and len(data) == 5,
            path,
            "not a 5-part SMEsD split",
            "[lawsuits, attributes, graph, hyper, labels]",
        )
        parts.append((split, path, list(indices), *data))
    return split_path, parts


def _merge_companies(parts: list[_Part], split_path: Path) -> _Companies:
    """The companies of the three files: earliest split wins for indices listed in several files."""
    found = _Companies()
    for split, path, indices, lawsuits, attributes, _, _, labels in parts:
        _check(
            len(attributes) == len(indices) == len(labels),
            path,
            f"{len(attributes)} attribute rows and {len(labels)} labels for {len(indices)} companies",
            "one attribute row and one label per index of split_data_idx.pkl",
        )
        _check(
            set(lawsuits) <= set(indices),
            path,
            "lawsuits of companies outside the split",
            "keys of the split",
        )
        for position, idx in enumerate(indices):
            _check(
                isinstance(idx, int) and 0 <= idx < NUM_COMPANIES,
                split_path,
                f"company index {idx!r}",
                f"0..{NUM_COMPANIES - 1}",
            )
            _check(labels[position] in (0, 1), path, f"label {labels[position]!r}", "0 or 1")
            _check(len(attributes[position]) == 3, path, "attribute row of wrong length", "3 values")
            if idx in found.split_of:
                same = (
                    tuple(found.attrs[idx]) == tuple(attributes[position])
                    and found.label_of[idx] == labels[position]
                    and found.suits_of[idx] == lawsuits.get(idx, [])
                )
                found.conflicts += not same
                continue
            found.split_of[idx], found.attrs[idx] = split, attributes[position]
            found.label_of[idx] = labels[position]
            found.suits_of[idx] = lawsuits.get(idx, [])
        found.raw[split] = {
            "companies": len(indices),
            "bankrupt": int(sum(labels)),
            "survived": int(len(labels) - sum(labels)),
            "with_lawsuits": sum(1 for idx in indices if lawsuits.get(idx)),
        }
    _check(
        sorted(found.split_of) == list(range(NUM_COMPANIES)),
        split_path,
        f"{len(found.split_of)} distinct company indices",
        f"exactly 0..{NUM_COMPANIES - 1}",
    )
    return found


def _merge_edges(
    parts: list[_Part], folder: Path, raw: dict[str, dict[str, int]]
) -> tuple[np.ndarray, np.ndarray, int]:
    """The union of the files' edges, de-duplicated: SMEsD-index triples (M, 3), weights (M,) and the number of
    weight conflicts; each file's edge count goes into ``raw``."""
    edge_weight: dict[tuple[int, int, int], float] = {}
    weight_conflicts = 0
    for split, path, _, _, _, graph, _, _ in parts:
        pairs, types, weights = graph
        _check(
            len(pairs) == len(types) == len(weights), path, "edge lists of different lengths", "equal lengths"
        )
        raw[split]["edges"] = len(pairs)
        for (head, tail), edge_type, weight in zip(pairs, types, weights, strict=True):
            _check(0 <= edge_type < len(EDGE_TYPES), path, f"edge type {edge_type!r}", "0..19")
            key = (int(head), int(edge_type), int(tail))
            if key in edge_weight and edge_weight[key] != weight:
                weight_conflicts += 1
            edge_weight.setdefault(key, float(weight))
    triples = np.asarray(sorted(edge_weight), dtype=np.int64).reshape(-1, 3)  # (M, 3) SMEsD indices
    weights = np.asarray([edge_weight[tuple(t)] for t in triples.tolist()], dtype=np.float32)  # (M,)
    _check(triples[:, [0, 2]].min(initial=0) >= 0, folder, "a negative node index", "indices >= 0")
    return triples, weights, weight_conflicts


def _merge_hyperedges(
    parts: list[_Part], folder: Path, person_ids: np.ndarray
) -> tuple[dict[str, dict[str, set[int]]], int, list[int]]:
    """The hyperedge groups united over the files (industry names rejoined, the unknown industry dropped), how
    many companies had the unknown industry, and the sorted qualify keys (person indices)."""
    groups: dict[str, dict[str, set[int]]] = {"industry": {}, "area": {}, "qualify": {}}
    for _, path, _, _, _, _, hyper, _ in parts:
        _check(set(hyper) == set(groups), path, f"hyperedge kinds {sorted(hyper)}", "industry, area, qualify")
        for kind, members_of in hyper.items():
            named = _rejoin_names(members_of) if kind == "industry" else members_of
            for group, members in named.items():
                groups[kind].setdefault(str(group), set()).update(int(m) for m in members)
    industry_missing = len(groups["industry"].pop(MISSING_INDUSTRY, ()))
    all_persons = set(person_ids.tolist())
    qualify_keys = sorted(int(k) for k in groups["qualify"])
    _check(
        all(k in all_persons for k in qualify_keys),
        folder,
        "a qualify group key is not a person index",
        "person indices",
    )
    return groups, industry_missing, qualify_keys


def _nodes_and_edges(
    triples: np.ndarray,
    weights: np.ndarray,
    person_ids: np.ndarray,
    groups: dict[str, dict[str, set[int]]],
    qualify_keys: list[int],
    folder: Path,
) -> tuple[list[str], list[int], list[str], np.ndarray, np.ndarray]:
    """Nodes (companies, persons, industries, regions, qualification groups), their kinds, the relations, the
    edges (M, 3) in node ids and their weights (M,)."""
    nodes = [f"c{i}" for i in range(NUM_COMPANIES)] + [f"p{i}" for i in person_ids.tolist()]
    kinds = [COMPANY] * NUM_COMPANIES + [PERSON] * len(person_ids)
    lookup = np.full(int(triples[:, [0, 2]].max(initial=NUM_COMPANIES)) + 1, -1, dtype=np.int64)
    lookup[:NUM_COMPANIES] = np.arange(NUM_COMPANIES)
    lookup[person_ids] = NUM_COMPANIES + np.arange(len(person_ids))
    relations = [*EDGE_TYPES, "inIndustry", "inRegion", "hasQualification"]
    edges = [np.stack([lookup[triples[:, 0]], triples[:, 1], lookup[triples[:, 2]]], axis=1)]  # (M, 3)
    weight_parts = [weights]
    group_edges = []
    for (kind, prefix, node_kind, relation), names in [
        *((h, sorted(groups[h[0]])) for h in _HYPER),
        (("qualify", "qualify:", INDUSTRY, "hasQualification"), [str(k) for k in qualify_keys]),
    ]:
        rid = relations.index(relation)
        for name in names:
            key = prefix + (f"p{name}" if kind == "qualify" else name)
            group = len(nodes)
            nodes.append(key)
            kinds.append(node_kind)
            members = groups[kind][name]
            _check(
                all(0 <= m < NUM_COMPANIES for m in members),
                folder,
                f"{kind} {name} has a non-company",
                "companies",
            )
            group_edges += [(m, rid, group) for m in sorted(members)]
    if group_edges:
        edges.append(np.asarray(group_edges, dtype=np.int64))
        weight_parts.append(np.ones(len(group_edges), dtype=np.float32))
    edge_array = np.concatenate(edges).astype(np.int64) if edges else np.zeros((0, 3), np.int64)  # (M, 3)
    return nodes, kinds, relations, edge_array, np.concatenate(weight_parts).astype(np.float32)


def _check_edge_kinds(
    ontology: FinanceOntology,
    relations: list[str],
    edge_array: np.ndarray,
    kind_array: np.ndarray,
    nodes: list[str],
    folder: Path,
) -> None:
    """Check every edge against the ontology's domain / range; raise on the first that breaks it."""
    for r, name in enumerate(relations):
        rows = edge_array[edge_array[:, 1] == r]  # (m, 3)
        for end, column, allowed in (
            ("head", 0, ontology.head_kinds(name)),
            ("tail", 2, ontology.tail_kinds(name)),
        ):
            bad = ~np.isin(kind_array[rows[:, column]], [NODE_KINDS.index(k) for k in allowed])  # (m,)
            if bad.any():
                head, _, tail = rows[np.flatnonzero(bad)[0]].tolist()
                raise FinanceDataError(
                    f"{name} edge {nodes[head]} -> {nodes[tail]}: {end} is a {NODE_KINDS[kind_array[rows[bad][0, column]]]}",
                    path=folder,
                    expected=f"a {' or '.join(allowed)} {end} (companies are indices below {NUM_COMPANIES})",
                )


def _company_rows(
    found: _Companies, folder: Path
) -> tuple[list[str], dict[str, np.ndarray], list[list[Lawsuit]]]:
    """The feature names, the per-company arrays (features, labels, splits, periods) and the decoded lawsuits."""
    feature_names = [*ATTRIBUTES, *lawsuit_counts([]), *CAUSE_FEATURES]
    arrays = empty_arrays(NUM_COMPANIES, len(feature_names))
    features, labels, splits = arrays["features"], arrays["labels"], arrays["splits"]
    lawsuits: list[list[Lawsuit]] = []
    for idx in range(NUM_COMPANIES):
        records = []
        causes = np.zeros(len(CAUSES), dtype=np.float32)  # (11,)
        for record in found.suits_of[idx]:
            _check(len(record) == 5, folder, f"lawsuit record {record!r} of company {idx}", "5 values")
            cause, court, result, months, _ = record
            _check(
                0 <= cause < len(CAUSES) and 0 <= court < len(COURTS) and 0 <= result < 4 and months >= 0,
                folder,
                f"lawsuit record {record!r} of company {idx}",
                "cause 0..10, court 0..3, result 0..3, months >= 0",
            )
            role, outcome = RESULTS[result]
            records.append(Lawsuit(role, CAUSES[cause], COURTS[court], outcome, int(months)))
            causes[cause] += 1
        lawsuits.append(records)
        counts = lawsuit_counts(records)
        capital, paid, months = found.attrs[idx]
        _check(
            capital >= 0 and paid >= 0 and months >= 0, folder, f"negative attribute of company {idx}", ">= 0"
        )
        features[idx] = [capital, paid, months, *counts.values(), *causes]
        labels[idx] = DEFAULT if found.label_of[idx] == 1 else SURVIVED
        splits[idx] = found.split_of[idx]
    return feature_names, arrays, lawsuits


def read_smesd(
    data_dir: str | Path | None = None, *, ontology: FinanceOntology | None = None
) -> CompanyGraph:
    """Read SMEsD from ``data_dir`` (the SMEsD folder or a data folder holding ``smesd/``; default:
    ``<data>/smesd`` of :func:`kgreason.core.paths.data_dir`) into a :class:`CompanyGraph`.

    Raises:
        FinanceDataError: the folder or a file is missing, or a file does not have SMEsD's structure (the
            message says what, and how to point kgreason at the data).
        pickle.UnpicklingError: a pickle names a global.
    """
    start = time.perf_counter()
    folder = _smesd_folder(data_dir)
    ontology = ontology or load_ontology()
    split_path, parts = _read_parts(folder)
    found = _merge_companies(parts, split_path)
    raw = found.raw
    triples, weights, weight_conflicts = _merge_edges(parts, folder, raw)
    is_person = triples[:, [0, 2]] >= NUM_COMPANIES  # (M, 2) companies first in the index space
    person_ids = np.unique(triples[:, [0, 2]][is_person])  # (P,)
    groups, industry_missing, qualify_keys = _merge_hyperedges(parts, folder, person_ids)
    nodes, kinds, relations, edge_array, edge_weight = _nodes_and_edges(
        triples, weights, person_ids, groups, qualify_keys, folder
    )
    kind_array = np.asarray(kinds, dtype=np.int8)  # (N,)
    _check_edge_kinds(ontology, relations, edge_array, kind_array, nodes, folder)
    feature_names, arrays, lawsuits = _company_rows(found, folder)
    splits = arrays["splits"]

    final = {s: int((splits == s).sum()) for s, _ in _FILES}
    graph = CompanyGraph(
        name="smesd",
        nodes=nodes,
        kinds=kind_array,
        relations=relations,
        edges=edge_array,
        edge_weight=edge_weight,  # (M,)
        companies=np.arange(NUM_COMPANIES, dtype=np.int64),  # (C,)
        feature_names=feature_names,
        features=arrays["features"],  # (C, F)
        labels=arrays["labels"],
        splits=splits,
        periods=arrays["periods"],
        texts=[[] for _ in range(NUM_COMPANIES)],
        lawsuits=lawsuits,
        metadata={
            "source": "SMEsD (shaopengw/ComRisk)",
            "path": str(folder),
            "citation": CITATION,
            "license": "no license stated by the source; research use, cite the paper",
            "split_years": {"train": "2014-2018", "dev": "2019", "test": "2020-2021"},
            "files": raw,
            "split_counts": final,
            "overlap": {
                "policy": "a company listed in several files is kept in its earliest split (train < dev < test)",
                "extra_appearances": sum(v["companies"] for v in raw.values()) - NUM_COMPANIES,
                "companies": int(np.sum(np.bincount(np.concatenate([p[2] for p in parts])) > 1)),
                "conflicting_records": found.conflicts,
            },
            "edge_types": list(EDGE_TYPES),
            "edge_type_relations": {
                name: {"relation": m.relation, "inverse": m.inverse}
                for name, m in ontology.smesd_edge_types.items()
            },
            "distinct_edges": len(triples),
            "edge_weight_conflicts": weight_conflicts,
            "persons": len(person_ids),
            "boundary": (
                f"companies are indices 0..{NUM_COMPANIES - 1} (the union of the split lists); every end of a "
                "person edge type is >= 3976 and every company-company end < 3976"
            ),
            "hyperedges": {k: len(v) for k, v in groups.items()},
            "industry_missing": industry_missing,
            "qualify": "groups keyed by a person index holding companies linked to that person",
            "units": "capital and invest weights: presumably 10,000 CNY (SMEsD does not say); months_since_setup: months",
            "load_seconds": round(time.perf_counter() - start, 3),
        },
        monotone=dict(DEFAULT_MONOTONE),
    )
    return graph.validate()
