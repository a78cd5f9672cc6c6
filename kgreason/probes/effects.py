"""Effects with bootstrap confidence intervals: what every probe returns."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: Bootstrap methods accepted by :func:`bootstrap_ci` (scipy.stats.bootstrap's names, lower-cased).
METHODS = {"percentile": "percentile", "bca": "BCa", "basic": "basic"}


@dataclass
class Effect:
    """An estimated effect (an accuracy, a drop, a share) with its confidence interval.

    Attributes:
        name: what was measured (``"knowledge_ablation[path]"``).
        estimate: the point estimate on the full sample.
        ci_low, ci_high: the bootstrap confidence interval (NaN when the sample is too small for one).
        n: the number of units (examples) it rests on.
        confidence: the interval's confidence level.
        details: anything else the probe reports (counts, the accuracies the difference is made of).
    """

    name: str
    estimate: float
    ci_low: float
    ci_high: float
    n: int
    confidence: float = 0.95
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes ``None``; nested effects and numpy scalars are converted)."""
        return _jsonable(asdict(self))

    def __str__(self) -> str:
        return (
            f"{self.name}: {self.estimate:.4f} [{self.ci_low:.4f}, {self.ci_high:.4f}] "
            f"({self.confidence:.0%} CI, n={self.n})"
        )


@dataclass(frozen=True)
class ConfidenceInterval:
    """A bootstrap confidence interval around a point estimate."""

    estimate: float
    low: float
    high: float
    n: int
    confidence: float
    method: str

    def effect(self, name: str, **details: Any) -> Effect:
        """This interval as an :class:`Effect` named ``name`` (extra keywords go to ``details``)."""
        return Effect(
            name=name,
            estimate=self.estimate,
            ci_low=self.low,
            ci_high=self.high,
            n=self.n,
            confidence=self.confidence,
            details={"bootstrap": self.method, **details},
        )


def bootstrap_ci(
    sample: Sequence[float] | np.ndarray,
    *,
    minus: Sequence[float] | np.ndarray | None = None,
    paired: bool = True,
    statistic: Callable[..., Any] | None = None,
    confidence: float = 0.95,
    method: str = "percentile",
    n_resamples: int = 2000,
    seed: int = 0,
) -> ConfidenceInterval:
    """The bootstrap CI of ``mean(sample)``, or of ``mean(sample) - mean(minus)`` when ``minus`` is given.

    Uses :func:`scipy.stats.bootstrap` (seeded, vectorised). With ``minus`` and ``paired=True`` both samples are
    resampled with the same indices (one unit = one example seen under two conditions, e.g. before and after an
    intervention); with ``paired=False`` they are resampled independently (two groups of examples, e.g. IID
    vs OOD depths). ``statistic(*samples, axis=-1)`` replaces the mean (difference) when given.

    ``method`` is ``"percentile"`` (default), ``"bca"`` or ``"basic"``; where BCa is undefined (a constant
    sample) the percentile interval is used and ``method`` says so. Fewer than two units give a NaN interval.
    """
    if method.lower() not in METHODS:
        raise ValueError(f"unknown bootstrap method {method!r}; expected one of {sorted(METHODS)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    a = np.asarray(sample, dtype=np.float64).ravel()  # (n,)
    samples = [a]
    if minus is not None:
        b = np.asarray(minus, dtype=np.float64).ravel()  # (m,)
        if paired and len(b) != len(a):
            raise ValueError(f"paired samples differ in length: {len(a)} vs {len(b)}")
        samples.append(b)
    if statistic is None:
        statistic = _mean if minus is None else _mean_difference
    n = len(a) if minus is None or paired else len(a) + len(samples[1])
    estimate = float(statistic(*samples, axis=-1)) if min(len(s) for s in samples) > 0 else math.nan
    if min(len(s) for s in samples) < 2:
        return ConfidenceInterval(estimate, math.nan, math.nan, n, confidence, "none (fewer than 2 units)")
    from scipy.stats import bootstrap

    chosen = METHODS[method.lower()]
    if chosen == "BCa" and all(np.ptp(s) == 0 for s in samples):
        chosen = "percentile"  # BCa's acceleration is undefined on constant data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DegenerateDataWarning: handled below
        result = bootstrap(
            tuple(samples),
            statistic,
            n_resamples=n_resamples,
            vectorized=True,
            paired=minus is not None and paired,
            confidence_level=confidence,
            method=chosen,
            rng=np.random.default_rng(seed),
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if chosen == "BCa" and (math.isnan(low) or math.isnan(high)):
        return bootstrap_ci(
            sample,
            minus=minus,
            paired=paired,
            statistic=statistic,
            confidence=confidence,
            method="percentile",
            n_resamples=n_resamples,
            seed=seed,
        )
    return ConfidenceInterval(estimate, low, high, n, confidence, chosen)


def _mean(a: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis)


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Effect):
        return value.to_dict()
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
