"""Risk-model metrics: discrimination (AUC, KS, Gini), calibration (Brier, ECE), decisions and drift (PSI).

Every function takes ``y`` (0/1 outcomes, 1 = default) and ``p`` (predicted default probabilities) of the
same length. A decision threshold is to be chosen on DEV (:func:`best_f1_threshold`) and then applied to test.

Population stability index (:func:`psi`), the usual reading::

    PSI < 0.1          stable
    0.1 <= PSI <= 0.25 moderate shift, investigate
    PSI > 0.25         significant shift
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kgreason.core.errors import KGReasonError

#: PSI bands: below ``PSI_STABLE`` stable, above ``PSI_SHIFT`` a significant shift, between moderate.
PSI_STABLE, PSI_SHIFT = 0.1, 0.25
#: Proportion used for an empty PSI bin (keeps ``ln(a / e)`` finite).
PSI_EPSILON = 1e-4


class MetricError(KGReasonError, ValueError):
    """Inputs a metric cannot be computed on (length mismatch, one class only, values out of range)."""


@dataclass(frozen=True)
class RiskMetrics:
    """Metrics of one set of scores. ``f1``/``precision``/``recall``/``accuracy`` use ``p >= threshold``."""

    auc: float
    ks: float
    gini: float
    brier: float
    ece: float
    f1: float
    precision: float
    recall: float
    accuracy: float
    log_loss: float
    n: int
    positives: int
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CalibrationBins:
    """Reliability-diagram bins (empty bins dropped).

    Shapes: ``edges`` (bins + 1,), the rest (b,) for the b non-empty bins.
    """

    edges: np.ndarray
    counts: np.ndarray
    mean_predicted: np.ndarray
    fraction_positive: np.ndarray


# ------------------------------------------------------------------------------------------------ checks
def _check(y: Any, p: Any, *, both_classes: bool = False) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1:
        raise MetricError(f"y and p must be 1-D, got shapes {y.shape} and {p.shape}")
    if y.shape[0] != p.shape[0]:
        raise MetricError(f"length mismatch: {y.shape[0]} outcomes but {p.shape[0]} scores")
    if y.shape[0] == 0:
        raise MetricError("no samples (empty y and p)")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise MetricError(f"y must hold 0/1 outcomes (1 = default), found {sorted(values)[:5]}")
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
        raise MetricError("p must hold finite probabilities in [0, 1]")
    if both_classes and len(values) < 2:
        only = "defaults" if values == {1} else "survivors"
        raise MetricError(f"AUC/KS are undefined when y holds only {only} ({y.shape[0]} samples)")
    return y.astype(np.int64), p


# ------------------------------------------------------------------------------------- discrimination
def auc(y: Any, p: Any) -> float:
    """Area under the ROC curve (scikit-learn); raises :class:`MetricError` on a single class."""
    from sklearn.metrics import roc_auc_score

    y, p = _check(y, p, both_classes=True)
    return float(roc_auc_score(y, p))


def ks_statistic(y: Any, p: Any) -> float:
    """Kolmogorov–Smirnov statistic: ``max |TPR - FPR|`` over all thresholds.

    Equals the two-sample KS statistic between the scores of defaults and of survivors.
    """
    from sklearn.metrics import roc_curve

    y, p = _check(y, p, both_classes=True)
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)  # (t,)
    return float(np.max(np.abs(tpr - fpr)))


# ---------------------------------------------------------------------------------------- calibration
def brier(y: Any, p: Any) -> float:
    """Brier score: mean squared error of the probabilities (lower is better)."""
    from sklearn.metrics import brier_score_loss

    y, p = _check(y, p)
    return float(brier_score_loss(y, p, pos_label=1))


def calibration_bins(y: Any, p: Any, *, bins: int = 10, strategy: str = "uniform") -> CalibrationBins:
    """Bin the scores (``uniform`` edges on [0, 1] or ``quantile`` edges of ``p``) for ECE and plots."""
    y, p = _check(y, p)
    if bins < 1:
        raise MetricError(f"bins must be >= 1, got {bins}")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)  # (bins + 1,)
    elif strategy == "quantile":
        edges = np.quantile(p, np.linspace(0.0, 1.0, bins + 1))  # (bins + 1,)
        edges[0], edges[-1] = 0.0, 1.0
    else:
        raise MetricError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    inner = np.unique(edges[1:-1])
    index = np.searchsorted(inner, p, side="right")  # (n,) bin of each score; the last bin includes 1.0
    counts = np.bincount(index, minlength=len(inner) + 1)
    sum_p = np.bincount(index, weights=p, minlength=len(inner) + 1)
    sum_y = np.bincount(index, weights=y, minlength=len(inner) + 1)
    keep = counts > 0
    return CalibrationBins(
        edges=np.concatenate([[0.0], inner, [1.0]]),
        counts=counts[keep],
        mean_predicted=sum_p[keep] / counts[keep],
        fraction_positive=sum_y[keep] / counts[keep],
    )


def expected_calibration_error(y: Any, p: Any, *, bins: int = 10, strategy: str = "uniform") -> float:
    """ECE: ``sum_b n_b / n * |mean(y_b) - mean(p_b)|`` over the score bins (see :func:`calibration_bins`)."""
    table = calibration_bins(y, p, bins=bins, strategy=strategy)
    weights = table.counts / table.counts.sum()
    return float(np.sum(weights * np.abs(table.fraction_positive - table.mean_predicted)))


# ------------------------------------------------------------------------------------------- decisions
def best_f1_threshold(y: Any, p: Any) -> float:
    """The threshold ``t`` maximising F1 of ``p >= t``; choose it on DEV, then apply it to test."""
    from sklearn.metrics import precision_recall_curve

    y, p = _check(y, p, both_classes=True)
    precision, recall, thresholds = precision_recall_curve(y, p)  # (t + 1,), (t + 1,), (t,)
    precision, recall = precision[:-1], recall[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float(thresholds[int(np.argmax(f1))])


def risk_metrics(y_true: Any, p: Any, *, threshold: float = 0.5, bins: int = 10) -> RiskMetrics:
    """All metrics of :class:`RiskMetrics` (ECE with ``bins`` uniform bins)."""
    from sklearn.metrics import accuracy_score, log_loss, precision_recall_fscore_support

    y, p = _check(y_true, p, both_classes=True)
    predicted = (p >= threshold).astype(np.int64)  # (n,)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, predicted, average="binary", pos_label=1, zero_division=0
    )
    area = auc(y, p)
    return RiskMetrics(
        auc=area,
        ks=ks_statistic(y, p),
        gini=2.0 * area - 1.0,
        brier=brier(y, p),
        ece=expected_calibration_error(y, p, bins=bins),
        f1=float(f1),
        precision=float(precision),
        recall=float(recall),
        accuracy=float(accuracy_score(y, predicted)),
        log_loss=float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        n=int(y.shape[0]),
        positives=int(y.sum()),
        threshold=float(threshold),
    )


# ------------------------------------------------------------------------------------------------ drift
def psi(expected: Any, actual: Any, *, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected``: ``sum (a - e) * ln(a / e)``.

    Bins are the quantiles of ``expected`` (ties merged, so a discrete feature gets one bin per value);
    empty bins get proportion :data:`PSI_EPSILON`. ``nan`` values form their own "missing" bin, so a change in
    the missing rate counts as a shift. Read it with :data:`PSI_STABLE` / :data:`PSI_SHIFT` (module docstring).
    """
    e = np.asarray(expected, dtype=np.float64).ravel()
    a = np.asarray(actual, dtype=np.float64).ravel()
    if e.size == 0 or a.size == 0:
        raise MetricError(f"psi needs two non-empty samples, got {e.size} and {a.size} values")
    if bins < 1:
        raise MetricError(f"bins must be >= 1, got {bins}")
    if np.isinf(e).any() or np.isinf(a).any():
        raise MetricError("psi: samples must not hold infinite values")
    e_known = e[~np.isnan(e)]
    if e_known.size:
        inner = np.unique(np.quantile(e_known, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    else:
        inner = np.empty(0)
    e_share = _bin_shares(e, inner)
    a_share = _bin_shares(a, inner)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def _bin_shares(x: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Shares of ``x`` in the bins cut at ``inner`` plus a last "missing" bin; empty bins get the epsilon."""
    missing = np.isnan(x)
    index = np.searchsorted(inner, x[~missing], side="right")  # (n_known,)
    counts = np.bincount(index, minlength=len(inner) + 1).astype(np.float64)
    counts = np.append(counts, missing.sum())  # (bins + 1,)
    return np.maximum(counts / x.size, PSI_EPSILON)


def feature_psi(
    train_features: Any, test_features: Any, names: Sequence[str], *, bins: int = 10
) -> dict[str, float]:
    """PSI of every feature column, test against train (``nan`` = missing, see :func:`psi`)."""
    train = np.asarray(train_features, dtype=np.float64)
    test = np.asarray(test_features, dtype=np.float64)
    if train.ndim != 2 or test.ndim != 2:
        raise MetricError(f"features must be 2-D, got shapes {train.shape} and {test.shape}")
    if not train.shape[1] == test.shape[1] == len(names):
        raise MetricError(
            f"column mismatch: train has {train.shape[1]}, test {test.shape[1]} columns, {len(names)} names"
        )
    return {name: psi(train[:, j], test[:, j], bins=bins) for j, name in enumerate(names)}


def psi_band(value: float) -> str:
    """``stable`` / ``moderate`` / ``shift`` for a PSI value (module docstring)."""
    if value < PSI_STABLE:
        return "stable"
    return "moderate" if value <= PSI_SHIFT else "shift"
