"""Checks of a company graph before training: a default split when the data gives none, and label leakage.

* :func:`default_split`: when no labelled company has a split (``labels.csv`` / ``companies.csv`` without a
  ``split`` column, an RDF file without ``fin:split``), the labelled companies get a seeded stratified split
  (scikit-learn's ``train_test_split``, train / dev / test = ``fractions``, seed ``data.split_seed`` of the
  risk config). A graph where any labelled company has a split is left as it is.
* :func:`leakage_warnings`: a feature column that is a copy of the label (two values, one per outcome), that
  separates defaulted from survived companies perfectly, or that is missing exactly for one outcome tells the
  model the answer; ``kgreason finance check`` and ``train`` warn about it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from kgreason.core.errors import ConfigError
from kgreason.finance.errors import FinanceDataError
from kgreason.finance.graph import DEFAULT, SPLITS, SURVIVED, CompanyGraph

#: Train / dev / test shares of the default split.
DEFAULT_SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
#: The seed of the default split when the config gives none (``data.split_seed``).
DEFAULT_SPLIT_SEED = 13
#: Labelled companies of each outcome a copy-of-the-label warning needs (fewer: a coincidence is likely).
MIN_COPY_PER_CLASS = 2
#: Labelled companies of each outcome a perfect-separation warning needs.
MIN_SEPARATION_PER_CLASS = 10


def labels_source(graph: CompanyGraph) -> str:
    """Where a graph's outcomes come from, for messages (``<folder>/labels.csv``, the RDF file, the name)."""
    path = graph.metadata.get("path")
    if not path:
        return graph.name
    return str(Path(path) / "labels.csv") if graph.metadata.get("source") == "csv" else str(path)


def default_split(
    graph: CompanyGraph,
    *,
    seed: int = DEFAULT_SPLIT_SEED,
    fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS,
) -> tuple[CompanyGraph, str | None]:
    """``graph`` with a seeded stratified split of its labelled companies when none has a split, and a note.

    Returns the graph unchanged and ``None`` when a labelled company already has a split (or none is
    labelled). Unlabelled companies keep no split (they are context, never examples).

    Raises:
        ConfigError: ``fractions`` are not three positive shares summing to 1.
        FinanceDataError: fewer than three labelled companies (one per split), naming the labels' file.
    """
    fractions = check_split_fractions(fractions)
    labelled = np.flatnonzero(graph.labels >= 0)  # (n,)
    if not len(labelled) or np.any(graph.splits[labelled] != ""):
        return graph, None
    source = labels_source(graph)
    if len(labelled) < len(SPLITS):
        raise FinanceDataError(
            f"only {len(labelled)} labelled companies and no split column",
            path=source,
            expected="at least 3 labelled companies for a default train / dev / test split, or a 'split' column",
        )
    parts, stratified = _split_rows(labelled, graph.labels[labelled], seed=seed, fractions=fractions)
    splits = graph.splits.copy()
    for name, rows in zip(SPLITS, parts, strict=True):
        splits[rows] = name
    metadata = {
        **graph.metadata,
        "split": {"method": "stratified" if stratified else "random", "seed": seed, "fractions": fractions},
    }
    counts = " / ".join(f"{name} {len(rows)}" for name, rows in zip(SPLITS, parts, strict=True))
    how = "stratified by outcome" if stratified else "not stratified: too few companies of one outcome"
    note = (
        f"{source}: no labelled company has a split; made a seeded split of the {len(labelled)} labelled "
        f"companies ({counts}; {how}; seed {seed}, data.split_seed in the config); give labels.csv a "
        "'split' column (train / dev / test) to choose your own"
    )
    return replace(graph, splits=splits, metadata=metadata), note


def check_split_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """The three shares (train, dev, test) as floats; :class:`ConfigError` unless positive and summing to 1."""
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values) or abs(sum(values) - 1) > 1e-6:
        raise ConfigError(
            f"data.split_fractions must be three positive shares (train, dev, test) summing to 1, got {list(fractions)}"
        )
    return values  # type: ignore[return-value]


def _split_rows(
    rows: np.ndarray, labels: np.ndarray, *, seed: int, fractions: tuple[float, float, float]
) -> tuple[list[np.ndarray], bool]:
    """``rows`` cut into train / dev / test (each non-empty); stratified by ``labels`` when both cuts allow it."""
    from sklearn.model_selection import train_test_split

    n = len(rows)
    n_rest = min(n - 1, max(2, round(n * (fractions[1] + fractions[2]))))
    n_test = min(n_rest - 1, max(1, round(n_rest * fractions[2] / (fractions[1] + fractions[2]))))
    try:
        train, rest, _, rest_labels = train_test_split(
            rows, labels, test_size=n_rest, random_state=seed, stratify=labels
        )
        dev, test = train_test_split(rest, test_size=n_test, random_state=seed, stratify=rest_labels)
        stratified = True
    except ValueError:  # a class with too few members for a stratified cut
        train, rest = train_test_split(rows, test_size=n_rest, random_state=seed)
        dev, test = train_test_split(rest, test_size=n_test, random_state=seed)
        stratified = False
    return [np.sort(part) for part in (train, dev, test)], stratified


def missing_splits(graph: CompanyGraph) -> list[str]:
    """The splits (``train``, ``dev``, ``test``) without a labelled company; a risk run needs all three."""
    return [split for split in SPLITS if not len(graph.labelled_rows(split))]


def split_counts(graph: CompanyGraph) -> str:
    """Labelled companies per split, e.g. ``train 210, dev 45, test 45`` (``none``: no split)."""
    labelled = graph.splits[graph.labels >= 0]
    counts = {name or "none": int((labelled == name).sum()) for name in (*SPLITS, "")}
    return ", ".join(f"{name} {count}" for name, count in counts.items() if count) or "none"


def leakage_warnings(graph: CompanyGraph) -> list[str]:
    """One line per feature column that gives the outcome away on the labelled companies."""
    labelled = np.flatnonzero(graph.labels >= 0)
    y = graph.labels[labelled]
    source = labels_source(graph)
    out: list[str] = []
    for j, name in enumerate(graph.feature_names):
        x = graph.features[labelled, j].astype(np.float64)
        present = ~np.isnan(x)
        bad, good = x[present & (y == DEFAULT)], x[present & (y == SURVIVED)]
        missing_bad, missing_good = ~present[y == DEFAULT], ~present[y == SURVIVED]
        if min(len(missing_bad), len(missing_good)) >= MIN_COPY_PER_CLASS and (
            (missing_bad.all() and not missing_good.any()) or (missing_good.all() and not missing_bad.any())
        ):
            which = "defaulted" if missing_bad.all() else "survived"
            out.append(
                f"possible label leakage: feature {name!r} is missing for exactly the {which} companies of "
                f"{source} (its missingness is a copy of the label); drop it, or fill it for every company"
            )
            continue
        if min(len(bad), len(good)) < MIN_COPY_PER_CLASS:
            continue
        if len(np.unique(bad)) == 1 and len(np.unique(good)) == 1 and bad[0] != good[0]:
            same = bad[0] == DEFAULT and good[0] == SURVIVED
            what = "identical to the label" if same else "a copy of the label"
            out.append(
                f"possible label leakage: feature {name!r} is {what} ({_show(bad[0])} for every defaulted, "
                f"{_show(good[0])} for every survived company of {source}); a model would learn the answer "
                "from it: drop the column unless it is known before the outcome"
            )
        elif min(len(bad), len(good)) >= MIN_SEPARATION_PER_CLASS and (
            bad.min() > good.max() or bad.max() < good.min()
        ):
            out.append(
                f"possible label leakage: feature {name!r} separates the {len(bad)} defaulted from the "
                f"{len(good)} survived companies of {source} perfectly (AUC 1); check that it is known "
                "before the outcome"
            )
    return out


def _show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
