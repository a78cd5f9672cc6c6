"""Tabular baselines and neighbour-default graph features on small CompanyGraphs built here."""

from __future__ import annotations

import numpy as np
import pytest

from kgreason.finance.baselines import (
    BaselineError,
    TabularBaseline,
    evaluate_baseline,
    neighbour_default_features,
    neighbour_feature_names,
)
from kgreason.finance.graph import COMPANY, PERSON, CompanyGraph


def _graph(
    *, name: str, companies: int, persons: int, edges: list[tuple[int, int, int]], features: np.ndarray, **kw
) -> CompanyGraph:
    nodes = [f"C{i:04d}" for i in range(companies)] + [f"P{i:03d}" for i in range(persons)]
    kinds = np.array([COMPANY] * companies + [PERSON] * persons, dtype=np.int8)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 3)
    return CompanyGraph(
        name=name,
        nodes=nodes,
        kinds=kinds,
        relations=["guarantees", "officer_of"],
        edges=e,
        edge_weight=np.ones(len(e), dtype=np.float32),
        companies=np.arange(companies, dtype=np.int64),
        feature_names=kw.pop("feature_names"),
        features=features.astype(np.float32),
        periods=np.zeros(companies, dtype=np.int32),
        texts=[[] for _ in range(companies)],
        lawsuits=[[] for _ in range(companies)],
        **kw,
    ).validate()


@pytest.fixture(scope="module")
def synthetic() -> CompanyGraph:
    """300 companies; default risk rises with leverage (with a dip at the very top that a monotone model
    must not follow), revenue is heavy-tailed with gaps, noise is noise."""
    rng = np.random.default_rng(7)
    n, persons = 300, 40
    leverage = rng.uniform(0, 1, n)
    revenue = rng.lognormal(3, 2, n)
    revenue[rng.uniform(size=n) < 0.1] = np.nan
    noise = rng.normal(size=n)
    logit = 10 * (leverage - 0.5) - 3 * (leverage > 0.85)
    labels = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    labels[rng.choice(n, 15, replace=False)] = -1
    splits = np.array(["train"] * 180 + ["dev"] * 60 + ["test"] * 60, dtype=object)
    edges = [(int(a), 0, int(b)) for a, b in rng.integers(0, n, (400, 2))]
    edges += [
        (n + int(p), 1, int(c))
        for p, c in zip(rng.integers(0, persons, 300), rng.integers(0, n, 300), strict=True)
    ]
    return _graph(
        name="synthetic",
        companies=n,
        persons=persons,
        edges=edges,
        features=np.stack([leverage, revenue, noise], axis=1),
        feature_names=["leverage", "revenue", "noise"],
        labels=labels,
        splits=splits,
        monotone={"leverage": 1},
    )


@pytest.mark.parametrize("kind", ["logistic", "gbm", "gbm+graph"])
def test_baselines_learn_the_signal(synthetic, kind):
    result = evaluate_baseline(synthetic, kind=kind, seed=0)
    assert result.test.auc > 0.8 and result.dev.auc > 0.8
    assert result.p_test.shape == result.test_rows.shape == (result.test.n,)
    assert np.all(synthetic.labels[result.test_rows] >= 0)
    assert result.dev.threshold == result.test.threshold == result.threshold
    assert 0 < result.seconds < 30


def test_logistic_transforms_heavy_tails_and_tunes_c(synthetic):
    model = TabularBaseline(kind="logistic").fit(synthetic)
    assert model.heavy_columns_ == [1]  # revenue
    assert model.C_ in (0.01, 0.1, 1.0, 10.0)


def test_gbm_respects_monotone_constraint(synthetic):
    grid = np.linspace(0, 1, 41)
    rows = np.arange(len(grid))

    def curves(model: TabularBaseline) -> np.ndarray:
        out = []
        for base in (0, 5, 9):
            features = synthetic.features.copy()
            features[rows] = synthetic.features[base]
            features[rows, 0] = grid
            out.append(model.predict_proba(synthetic.with_features(features), rows))
        return np.stack(out)  # (3, 41)

    constrained = curves(TabularBaseline(kind="gbm", seed=0).fit(synthetic))
    assert np.all(np.diff(constrained, axis=1) >= -1e-12)
    assert constrained[:, -1].min() > constrained[:, 0].max()
    free = curves(TabularBaseline(kind="gbm", seed=0, monotone={}).fit(synthetic))
    assert np.diff(free, axis=1).min() < -1e-3  # the dip is learnable: the constraint is what holds it back


def test_baseline_errors(synthetic):
    with pytest.raises(BaselineError, match="before fit"):
        TabularBaseline(kind="gbm").predict_proba(synthetic, [0])
    model = TabularBaseline(kind="logistic").fit(synthetic)
    other = synthetic.with_features(synthetic.features[:, :2])
    other.feature_names = ["leverage", "revenue"]
    with pytest.raises(BaselineError, match="features differ"):
        model.predict_proba(other, [0])
    with pytest.raises(Exception, match="monotone"):
        TabularBaseline(kind="gbm", monotone={"nope": 1}).fit(synthetic)


def test_neighbour_default_features_by_hand():
    # companies A B C D, person P; A=default(train) B=default(dev) C=survived(train) D=unknown(train)
    a, b, c, d, p = range(5)
    edges = [(a, 0, b), (b, 0, c), (a, 0, a), (c, 0, d), (c, 0, d), (d, 0, a), (p, 1, a), (p, 1, b)]
    graph = _graph(
        name="tiny",
        companies=4,
        persons=1,
        edges=edges,
        features=np.zeros((4, 1)),
        feature_names=["x"],
        labels=np.array([1, 1, 0, -1], dtype=np.int8),
        splits=np.array(["train", "dev", "train", "train"], dtype=object),
    )
    out = neighbour_default_features(graph, known_rows=graph.rows("train"))  # (4, 4)
    assert neighbour_feature_names(graph) == [
        "known_defaults:guarantees",
        "known_defaults:officer_of",
        "degree:guarantees",
        "degree:officer_of",
    ]
    # A: self-loop ignored, B (dev) unseen -> 0; B and D see A; C sees B (unseen) and D (unknown)
    assert out[:, 0].tolist() == [0, 1, 0, 1]
    assert out[:, 1].tolist() == [0, 0, 0, 0]  # P is a person, not a known default
    assert out[:, 2].tolist() == [2, 2, 2, 2]  # distinct neighbours (C-D twice counts once)
    assert out[:, 3].tolist() == [1, 1, 0, 0]
    everyone = neighbour_default_features(graph, known_rows=np.arange(4))
    assert everyone[:, 0].tolist() == [1, 1, 1, 1]  # now B's default is visible to A and C; D stays unknown
    with pytest.raises(BaselineError, match="known_rows"):
        neighbour_default_features(graph, known_rows=[7])
