"""Probability calibration of risk scores: Platt scaling, isotonic regression, or none; fit on DEV scores.

A fitted :class:`Calibrator` is a handful of numbers, persisted as JSON (no pickle)::

    platt:     p' = sigmoid(coef * logit(p) + intercept)
    isotonic:  p' = interp(p, x_thresholds, y_thresholds)   (clipped at both ends)
    none:      p' = p

``transform`` always evaluates these closed forms, so a calibrator reloaded from JSON gives bit-identical
outputs to the one that was fitted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgreason.core.atomic import atomic_write_text
from kgreason.core.errors import ConfigError, KGReasonError

METHODS = ("platt", "isotonic", "none")
#: Probabilities are clipped to [EPS, 1 - EPS] before taking the logit.
EPS = 1e-6
#: Inverse L2 strength of the Platt fit: mild, so that perfectly separated dev scores keep a finite slope.
PLATT_C = 100.0


class CalibrationError(KGReasonError, ValueError):
    """A calibrator used before fitting, fitted on unusable data, or read from a bad file."""


def logit(p: Any) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: Any) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


class Calibrator:
    """Maps raw scores to calibrated default probabilities.

    ``fit(scores, y)`` / ``transform(scores)`` take probabilities, or logits with ``logits=True``.
    """

    def __init__(self, *, method: str = "platt") -> None:
        if method not in METHODS:
            raise ConfigError(f"calibration method must be one of {', '.join(METHODS)}, got {method!r}")
        self.method = method
        self.coef: float | None = None
        self.intercept: float | None = None
        self.x_thresholds: np.ndarray | None = None
        self.y_thresholds: np.ndarray | None = None
        self.fitted = method == "none"

    # ------------------------------------------------------------------------------------------ fitting
    def fit(self, scores: Any, y: Any, *, logits: bool = False) -> Calibrator:
        """Fit on DEV scores (never on test) and their 0/1 outcomes; returns ``self``."""
        z = _as_logits(scores, logits=logits)  # (n,)
        y = np.asarray(y)
        if y.shape != z.shape:
            raise CalibrationError(f"length mismatch: {z.shape[0]} scores but {y.shape[0]} outcomes")
        if not set(np.unique(y).tolist()) <= {0, 1}:
            raise CalibrationError("outcomes must be 0/1 (1 = default)")
        if self.method == "none":
            return self
        if len(np.unique(y)) < 2:
            raise CalibrationError(
                f"cannot fit a {self.method} calibrator on a single class ({y.shape[0]} samples)"
            )
        if self.method == "platt":
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(C=PLATT_C, max_iter=1000).fit(z[:, None], y)
            self.coef = float(model.coef_[0, 0])
            self.intercept = float(model.intercept_[0])
        else:
            from sklearn.isotonic import IsotonicRegression

            model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
            model.fit(sigmoid(z), y.astype(np.float64))
            self.x_thresholds = np.asarray(model.X_thresholds_, dtype=np.float64)
            self.y_thresholds = np.asarray(model.y_thresholds_, dtype=np.float64)
        self.fitted = True
        return self

    def transform(self, scores: Any, *, logits: bool = False) -> np.ndarray:
        """Calibrated probabilities, shape of ``scores``."""
        if not self.fitted:
            raise CalibrationError(f"{self.method} calibrator used before fit()")
        z = _as_logits(scores, logits=logits)
        if self.method == "none":
            return sigmoid(z) if logits else np.asarray(scores, dtype=np.float64).copy()
        if self.method == "platt":
            return sigmoid(self.coef * z + self.intercept)
        return np.interp(sigmoid(z), self.x_thresholds, self.y_thresholds)

    # ------------------------------------------------------------------------------------------ persist
    def to_dict(self) -> dict[str, Any]:
        if not self.fitted:
            raise CalibrationError(f"{self.method} calibrator is not fitted; nothing to save")
        if self.method == "platt":
            return {"method": "platt", "coef": self.coef, "intercept": self.intercept}
        if self.method == "isotonic":
            return {
                "method": "isotonic",
                "x_thresholds": self.x_thresholds.tolist(),
                "y_thresholds": self.y_thresholds.tolist(),
            }
        return {"method": "none"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        if not isinstance(data, dict):
            kind = "array" if isinstance(data, list) else type(data).__name__
            raise CalibrationError(
                f"a JSON {kind}, not a calibrator (expected an object with 'method' in {', '.join(METHODS)})"
            )
        method = data.get("method")
        if method not in METHODS:
            raise CalibrationError(f"calibrator dict needs 'method' in {', '.join(METHODS)}, got {method!r}")
        out = cls(method=method)
        try:
            if method == "platt":
                out.coef, out.intercept = float(data["coef"]), float(data["intercept"])
            elif method == "isotonic":
                x = np.asarray(data["x_thresholds"], dtype=np.float64)
                y = np.asarray(data["y_thresholds"], dtype=np.float64)
                if x.ndim != 1 or x.shape != y.shape or x.size == 0 or np.any(np.diff(x) < 0):
                    raise CalibrationError("isotonic thresholds must be two equal-length lists, x increasing")
                out.x_thresholds, out.y_thresholds = x, y
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            raise CalibrationError(f"bad {method} calibrator dict: {exc!r}") from None
        out.fitted = True
        return out

    def save(self, path: str | Path) -> Path:
        """Write the calibrator as JSON, atomically."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Calibrator:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CalibrationError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
        try:
            return cls.from_dict(data)
        except CalibrationError as exc:
            raise CalibrationError(f"{path}: {exc}") from None

    def __repr__(self) -> str:
        return f"Calibrator(method={self.method!r}, fitted={self.fitted})"


def _as_logits(scores: Any, *, logits: bool) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise CalibrationError(f"scores must be 1-D, got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise CalibrationError("scores must be finite")
    if logits:
        return s
    if s.size and (s.min() < 0.0 or s.max() > 1.0):
        raise CalibrationError("probabilities must lie in [0, 1] (pass logits=True for raw logits)")
    return logit(s)


# ---------------------------------------------------------------------------------------------- select
@dataclass
class CalibratorSelection:
    """The chosen method, fitted on all of dev, and the cross-validated dev Brier of every method tried.

    ``cv_brier["none"]`` (the uncalibrated scores on the same folds) is reported for reference.
    """

    method: str
    calibrator: Calibrator
    cv_brier: dict[str, float]


def select_calibrator(
    p_dev: Any,
    y_dev: Any,
    *,
    methods: Sequence[str] = ("platt", "isotonic"),
    cv: int = 5,
    seed: int = 0,
) -> CalibratorSelection:
    """Pick the method with the lowest mean Brier over stratified ``cv``-fold splits of DEV.

    Each method is fitted on ``cv - 1`` folds and scored on the held-out fold (so isotonic's tendency to
    overfit small dev sets is paid for); the winner is then refitted on all of dev. Folds are capped by the
    minority-class count; ties go to the method listed first. Put ``"none"`` in ``methods`` to allow keeping
    the raw scores.
    """
    from sklearn.model_selection import StratifiedKFold

    p = np.asarray(p_dev, dtype=np.float64)
    y = np.asarray(y_dev)
    if p.ndim != 1 or p.shape != y.shape:
        raise CalibrationError(f"p_dev and y_dev must be 1-D of one length, got {p.shape} and {y.shape}")
    if not methods or any(m not in METHODS for m in methods):
        raise ConfigError(f"methods must be a non-empty subset of {', '.join(METHODS)}, got {list(methods)}")
    minority = int(min((y == 1).sum(), (y == 0).sum()))
    folds = min(cv, minority)
    if folds < 2:
        raise CalibrationError(f"select_calibrator needs >= 2 dev samples of each class, got {minority}")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    errors: dict[str, list[float]] = {m: [] for m in dict.fromkeys([*methods, "none"])}
    for fit_idx, held_idx in splitter.split(p[:, None], y):
        for method in errors:
            cal = Calibrator(method=method).fit(p[fit_idx], y[fit_idx])
            errors[method].append(float(np.mean((cal.transform(p[held_idx]) - y[held_idx]) ** 2)))
    cv_brier = {m: float(np.mean(v)) for m, v in errors.items()}
    best = min(methods, key=lambda m: cv_brier[m])
    return CalibratorSelection(method=best, calibrator=Calibrator(method=best).fit(p, y), cv_brier=cv_brier)
