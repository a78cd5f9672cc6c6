"""Tabular baselines for default prediction on a :class:`~kgreason.finance.graph.CompanyGraph`.

Kinds:

* ``logistic``: median imputation -> signed ``log1p`` of heavy-tailed columns -> standardisation ->
  L2 logistic regression, ``C`` chosen on DEV log-loss from :data:`C_GRID` (fixed ``C = 1`` when dev has
  one class only). Ignores monotone constraints (a linear model is monotone in each feature anyway, with
  the sign it learns).
* ``gbm``: scikit-learn ``HistGradientBoostingClassifier`` (``nan`` handled natively), ``monotonic_cst``
  from the graph's ``monotone`` map, early stopping on an internal validation fraction of train (or on dev
  with ``early_stopping="dev"``), seeded.
* ``logistic+graph`` / ``gbm+graph``: the same on the features plus :func:`neighbour_default_features`
  (known defaults among the neighbours and degree, per relation): the cheap graph baseline.

Models fit on labelled ``train`` rows only; dev is used for model selection and thresholds; test only to
report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from kgreason.core.errors import ConfigError, KGReasonError
from kgreason.finance.graph import DEFAULT, CompanyGraph
from kgreason.finance.metrics import RiskMetrics, best_f1_threshold, risk_metrics

KINDS = ("logistic", "gbm", "logistic+graph", "gbm+graph")
#: Inverse regularisation strengths tried for ``logistic`` (picked by dev log-loss).
C_GRID = (0.01, 0.1, 1.0, 10.0)
#: A column whose train sample skewness exceeds this in absolute value gets the signed ``log1p``.
HEAVY_TAIL_SKEW = 2.0


class BaselineError(KGReasonError, ValueError):
    """A baseline that cannot be fitted or applied (no labelled train rows, other features, bad rows)."""


# ------------------------------------------------------------------------------------- graph features
def neighbour_feature_names(graph: CompanyGraph) -> list[str]:
    """Names of the :func:`neighbour_default_features` columns."""
    return [f"known_defaults:{r}" for r in graph.relations] + [f"degree:{r}" for r in graph.relations]


def neighbour_default_features(graph: CompanyGraph, *, known_rows: Any) -> np.ndarray:
    """Per company and relation: how many distinct neighbours are KNOWN defaults, and its degree.

    Edges count in both directions; a neighbour counts as a known default only if it is a company whose row
    is in ``known_rows`` (rows whose label may be seen, e.g. labelled train rows) with label 1. A company's own
    label never counts (self-loops are dropped). Unknown labels (-1) never count.

    Returns:
        (C, 2R) float32: ``[known_defaults per relation..., degree per relation...]``
        (:func:`neighbour_feature_names`).
    """
    import scipy.sparse as sp

    known = np.asarray(known_rows, dtype=np.int64).ravel()  # (k,)
    c, n, r = graph.num_companies, graph.num_nodes, len(graph.relations)
    if known.size and (known.min() < 0 or known.max() >= c):
        raise BaselineError(f"known_rows must be company rows in [0, {c}), got {known.min()}..{known.max()}")
    known_default = np.zeros(n, dtype=np.float64)  # (N,) 1 at nodes of known defaults
    defaults = known[graph.labels[known] == DEFAULT]
    known_default[graph.companies[defaults]] = 1.0
    out = np.zeros((c, 2 * r), dtype=np.float32)  # (C, 2R)
    edges = np.asarray(graph.edges, dtype=np.int64).reshape(-1, 3)  # (M, 3)
    for rel in range(r):
        pairs = edges[(edges[:, 1] == rel) & (edges[:, 0] != edges[:, 2])]  # (m, 3) self-loops dropped
        if not len(pairs):
            continue
        heads, tails = pairs[:, 0], pairs[:, 2]
        adj = sp.coo_matrix(
            (np.ones(2 * len(pairs)), (np.concatenate([heads, tails]), np.concatenate([tails, heads]))),
            shape=(n, n),
        ).tocsr()  # (N, N) duplicates summed
        adj.data[:] = 1.0  # distinct neighbours
        rows = adj[graph.companies]  # (C, N)
        out[:, rel] = rows @ known_default
        out[:, r + rel] = np.asarray(rows.sum(axis=1)).ravel()
    return out


# ----------------------------------------------------------------------------------------- transforms
def signed_log1p(x: np.ndarray, *, columns: list[int]) -> np.ndarray:
    """``sign(x) * log1p(|x|)`` on ``columns`` of ``x`` (n, F), other columns unchanged."""
    x = np.array(x, dtype=np.float64, copy=True)
    if columns:
        sub = x[:, columns]
        x[:, columns] = np.sign(sub) * np.log1p(np.abs(sub))
    return x


def heavy_tailed_columns(x: np.ndarray) -> list[int]:
    """Columns of ``x`` (n, F) whose finite values have ``|skewness| > HEAVY_TAIL_SKEW``."""
    from scipy.stats import skew

    heavy = []
    for j in range(x.shape[1]):
        col = x[:, j][np.isfinite(x[:, j])]
        if col.size >= 3 and np.ptp(col) > 0 and abs(float(skew(col))) > HEAVY_TAIL_SKEW:
            heavy.append(j)
    return heavy


# --------------------------------------------------------------------------------------------- model
class TabularBaseline:
    """A tabular default-probability model on a company graph's features (module docstring).

    Args:
        kind: one of :data:`KINDS`.
        seed: seeds the gradient boosting (and its validation split).
        monotone: feature name -> +1 / -1 for ``gbm``; ``None`` takes the graph's ``monotone`` map.
        early_stopping: ``internal`` (a validation fraction of train) or ``dev`` (the labelled dev rows).
    """

    def __init__(
        self,
        *,
        kind: str = "logistic",
        seed: int = 0,
        monotone: dict[str, int] | None = None,
        early_stopping: str = "internal",
    ) -> None:
        if kind not in KINDS:
            raise ConfigError(f"baseline kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if early_stopping not in ("internal", "dev"):
            raise ConfigError(f"early_stopping must be 'internal' or 'dev', got {early_stopping!r}")
        self.kind = kind
        self.seed = seed
        self.monotone = monotone
        self.early_stopping = early_stopping
        self.model: Any = None
        self.feature_names_: list[str] = []
        self.C_: float | None = None
        self.heavy_columns_: list[int] = []
        self.monotonic_cst_: list[int] = []

    @property
    def uses_graph(self) -> bool:
        return self.kind.endswith("+graph")

    # ------------------------------------------------------------------------------------------ inputs
    def _matrix(self, graph: CompanyGraph) -> np.ndarray:
        x = np.asarray(graph.features, dtype=np.float64)  # (C, F)
        if self.uses_graph:
            known = graph.labelled_rows("train")
            x = np.hstack([x, neighbour_default_features(graph, known_rows=known)])  # (C, F + 2R)
        return x

    def _names(self, graph: CompanyGraph) -> list[str]:
        names = list(graph.feature_names)
        return names + neighbour_feature_names(graph) if self.uses_graph else names

    # --------------------------------------------------------------------------------------------- fit
    def fit(self, graph: CompanyGraph) -> TabularBaseline:
        """Fit on the labelled ``train`` rows of ``graph``; returns ``self``."""
        train = graph.labelled_rows("train")
        y = graph.labels[train].astype(np.int64)
        if len(np.unique(y)) < 2:
            raise BaselineError(
                f"{graph.name}: need defaults and survivors among train rows, got {len(y)} rows"
            )
        self.feature_names_ = self._names(graph)
        x_all = self._matrix(graph)  # (C, F')
        dev = graph.labelled_rows("dev")
        y_dev = graph.labels[dev].astype(np.int64)
        if self.kind.startswith("logistic"):
            self._fit_logistic(x_all[train], y, x_all[dev], y_dev)
        else:
            self._fit_gbm(graph, x_all[train], y, x_all[dev], y_dev)
        return self

    def _fit_logistic(self, x: np.ndarray, y: np.ndarray, x_dev: np.ndarray, y_dev: np.ndarray) -> None:
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        self.heavy_columns_ = heavy_tailed_columns(x)

        def build(c: float) -> Pipeline:
            return Pipeline(
                [
                    ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                    ("log", FunctionTransformer(signed_log1p, kw_args={"columns": self.heavy_columns_})),
                    ("scale", StandardScaler()),
                    ("logistic", LogisticRegression(C=c, max_iter=2000)),
                ]
            )

        if len(np.unique(y_dev)) < 2:  # no dev signal: fixed C
            self.C_, self.model = 1.0, build(1.0).fit(x, y)
            return
        best: tuple[float, float, Any] | None = None
        for c in C_GRID:
            model = build(c).fit(x, y)
            loss = float(log_loss(y_dev, model.predict_proba(x_dev)[:, 1], labels=[0, 1]))
            if best is None or loss < best[0]:
                best = (loss, c, model)
        _, self.C_, self.model = best

    def _fit_gbm(
        self, graph: CompanyGraph, x: np.ndarray, y: np.ndarray, x_dev: np.ndarray, y_dev: np.ndarray
    ) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier

        monotone = graph.monotone if self.monotone is None else self.monotone
        unknown = sorted(set(monotone) - set(self.feature_names_))
        if unknown:
            raise ConfigError(f"monotone names {unknown} are not features of {graph.name}")
        bad = {k: v for k, v in monotone.items() if v not in (-1, 0, 1)}
        if bad:
            raise ConfigError(f"monotone directions must be +1, -1 or 0, got {bad}")
        self.monotonic_cst_ = [int(monotone.get(name, 0)) for name in self.feature_names_]
        use_dev = self.early_stopping == "dev" and len(np.unique(y_dev)) == 2
        stop = use_dev or len(y) >= 100
        self.model = HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=500 if stop else 100,
            max_leaf_nodes=15,
            min_samples_leaf=min(20, max(2, len(y) // 20)),
            l2_regularization=1.0,
            monotonic_cst=self.monotonic_cst_,
            early_stopping=stop,
            validation_fraction=None if use_dev else 0.15,
            n_iter_no_change=20,
            random_state=self.seed,
        )
        if use_dev:
            self.model.fit(x, y, X_val=x_dev, y_val=y_dev)
        else:
            self.model.fit(x, y)

    # ----------------------------------------------------------------------------------------- predict
    def predict_proba(self, graph: CompanyGraph, rows: Any) -> np.ndarray:
        """Default probability of company ``rows`` of ``graph`` (its features must match the fitted ones)."""
        if self.model is None:
            raise BaselineError(f"{self.kind} baseline used before fit()")
        if self._names(graph) != self.feature_names_:
            raise BaselineError(f"{graph.name}: features differ from the ones the baseline was fitted on")
        rows = np.asarray(rows, dtype=np.int64).ravel()  # (n,)
        if rows.size and (rows.min() < 0 or rows.max() >= graph.num_companies):
            raise BaselineError(f"rows must lie in [0, {graph.num_companies})")
        x = self._matrix(graph)[rows]  # (n, F')
        return self.model.predict_proba(x)[:, 1]  # (n,)


# ----------------------------------------------------------------------------------------- evaluation
@dataclass
class BaselineResult:
    """Dev and test metrics of one baseline; the F1 threshold is chosen on dev and applied to both.

    ``p_dev`` / ``p_test`` are aligned with ``dev_rows`` / ``test_rows`` (labelled rows of each split).
    """

    kind: str
    seed: int
    dev: RiskMetrics
    test: RiskMetrics
    p_dev: np.ndarray
    p_test: np.ndarray
    dev_rows: np.ndarray
    test_rows: np.ndarray
    threshold: float
    seconds: float


def evaluate_baseline(
    graph: CompanyGraph, *, kind: str = "logistic", seed: int = 0, monotone: dict[str, int] | None = None
) -> BaselineResult:
    """Fit :class:`TabularBaseline` on train, score labelled dev and test rows; ``seconds`` = fit + predict."""
    start = time.perf_counter()
    model = TabularBaseline(kind=kind, seed=seed, monotone=monotone).fit(graph)
    dev_rows, test_rows = graph.labelled_rows("dev"), graph.labelled_rows("test")
    p_dev = model.predict_proba(graph, dev_rows)  # (n_dev,)
    p_test = model.predict_proba(graph, test_rows)  # (n_test,)
    seconds = time.perf_counter() - start
    y_dev, y_test = graph.labels[dev_rows], graph.labels[test_rows]
    threshold = best_f1_threshold(y_dev, p_dev)
    return BaselineResult(
        kind=kind,
        seed=seed,
        dev=risk_metrics(y_dev, p_dev, threshold=threshold),
        test=risk_metrics(y_test, p_test, threshold=threshold),
        p_dev=p_dev,
        p_test=p_test,
        dev_rows=dev_rows,
        test_rows=test_rows,
        threshold=threshold,
        seconds=seconds,
    )
