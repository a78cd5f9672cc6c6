"""Risk metrics, calibrators and plots on tiny hand-checked arrays."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kgreason.finance.calibration import CalibrationError, Calibrator, select_calibrator
from kgreason.finance.metrics import (
    MetricError,
    auc,
    best_f1_threshold,
    brier,
    expected_calibration_error,
    feature_psi,
    ks_statistic,
    psi,
    psi_band,
    risk_metrics,
)

Y = np.array([0, 0, 1, 1])
P = np.array([0.1, 0.4, 0.35, 0.8])


def test_auc_ks_by_hand_and_against_libraries():
    from scipy.stats import ks_2samp
    from sklearn.metrics import roc_auc_score

    assert auc(Y, P) == pytest.approx(0.75)  # 3 of 4 (default, survivor) pairs ranked right
    assert ks_statistic(Y, P) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, 200), 0, 1)
    p[:20] = np.round(p[:20], 1)  # ties
    assert ks_statistic(y, p) == pytest.approx(ks_2samp(p[y == 1], p[y == 0]).statistic)
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p))


def test_brier_ece_and_threshold_by_hand():
    assert brier([0, 1], [0.2, 0.6]) == pytest.approx(0.1)
    # each bin's mean prediction equals its default rate -> ECE 0
    p = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(y, p) == pytest.approx(0.0)
    assert expected_calibration_error(y, p, strategy="quantile") == pytest.approx(0.0)
    # bins {0.2: rate 0, 0.8: rate 0.5} -> 0.5 * 0.2 + 0.5 * 0.3
    assert expected_calibration_error([0, 0, 1, 0], [0.2, 0.2, 0.8, 0.8]) == pytest.approx(0.25)
    assert expected_calibration_error([1, 0], [0.9, 0.9]) == pytest.approx(0.4)
    # F1 at 0.8: 0.667, at 0.4: 0.5, at 0.35: 0.8, at 0.1: 0.667
    assert best_f1_threshold(Y, P) == pytest.approx(0.35)


def test_risk_metrics_bundle():
    m = risk_metrics(Y, P, threshold=0.35)
    assert m.gini == pytest.approx(2 * m.auc - 1)
    assert (m.n, m.positives) == (4, 2)
    assert m.recall == pytest.approx(1.0) and m.precision == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(0.8) and m.accuracy == pytest.approx(0.75)
    assert m.log_loss == pytest.approx(-np.mean(np.log([0.9, 0.6, 0.35, 0.8])))
    d = m.to_dict()
    assert {"auc", "ks", "gini", "brier", "ece", "f1", "log_loss", "n", "positives"} <= set(d)
    json.dumps(d)


def test_metric_errors():
    with pytest.raises(MetricError, match="only survivors"):
        auc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(MetricError, match="length mismatch"):
        brier([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(MetricError, match="0/1"):
        brier([0, 2], [0.1, 0.2])
    with pytest.raises(MetricError, match="probabilities"):
        brier([0, 1], [0.1, 1.2])


def test_psi():
    rng = np.random.default_rng(1)
    base = rng.normal(size=5000)
    assert psi(base, base) == pytest.approx(0.0)
    assert psi(base, rng.normal(size=5000)) < 0.1
    shifted = psi(base, rng.normal(loc=1.0, size=5000))
    assert shifted > 0.25 and psi_band(shifted) == "shift"
    # bins of expected [0,1,2,3] cut at 1.5: shares (.5,.5) vs (.75,.25)
    assert psi([0, 1, 2, 3], [0, 0, 0, 3], bins=2) == pytest.approx(0.25 * math.log(1.5) + 0.25 * math.log(2))
    train = np.stack([base, np.where(base > 1, np.nan, base)], axis=1)
    test = np.stack([base, np.where(base > 0, np.nan, base)], axis=1)  # missing rate 16% -> 50%
    out = feature_psi(train, test, ["a", "b"])
    assert out["a"] == pytest.approx(0.0) and out["b"] > 0.25
    with pytest.raises(MetricError, match="column mismatch"):
        feature_psi(train, test, ["a"])


def _toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = rng.uniform(0.02, 0.98, n)
    y = (rng.uniform(size=n) < true).astype(int)
    z = np.log(true / (1 - true))
    return 1 / (1 + np.exp(-(3 * z + 1))), y  # overconfident, shifted scores


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibrator_improves_brier_and_round_trips(tmp_path, method):
    p_dev, y_dev = _toy(2000, 0)
    p_test, y_test = _toy(2000, 1)
    cal = Calibrator(method=method).fit(p_dev, y_dev)
    assert brier(y_test, cal.transform(p_test)) < brier(y_test, p_test) - 0.01
    out = cal.transform(p_test)
    assert np.all(np.diff(cal.transform(np.linspace(0, 1, 101))) >= 0)
    again = Calibrator.load(cal.save(tmp_path / "cal.json"))
    assert np.array_equal(again.transform(p_test), out)
    assert np.array_equal(Calibrator.from_dict(json.loads(json.dumps(cal.to_dict()))).transform(p_test), out)
    if method == "platt":  # inverts p' = sigmoid(3 logit + 1)
        assert cal.coef == pytest.approx(1 / 3, abs=0.05) and cal.intercept == pytest.approx(-1 / 3, abs=0.1)
    logits = np.log(p_test / (1 - p_test))
    assert np.allclose(cal.transform(logits, logits=True), out, atol=1e-9)


def test_calibrator_errors_and_none(tmp_path):
    with pytest.raises(CalibrationError, match="before fit"):
        Calibrator(method="platt").transform([0.5])
    with pytest.raises(CalibrationError, match="single class"):
        Calibrator(method="isotonic").fit([0.1, 0.2], [0, 0])
    none = Calibrator(method="none")
    assert np.array_equal(none.transform([0.1, 0.7]), [0.1, 0.7])
    assert Calibrator.load(none.save(tmp_path / "n.json")).method == "none"
    (tmp_path / "bad.json").write_text('{"method": "platt", "coef": 1.0}')
    with pytest.raises(CalibrationError, match="bad.json"):
        Calibrator.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text('{"method":\n')
    with pytest.raises(CalibrationError, match="line 2"):
        Calibrator.load(tmp_path / "broken.json")


def test_select_calibrator():
    p_dev, y_dev = _toy(1000, 2)
    chosen = select_calibrator(p_dev, y_dev, cv=5)
    assert set(chosen.cv_brier) == {"platt", "isotonic", "none"}
    assert chosen.method == min(("platt", "isotonic"), key=chosen.cv_brier.get)
    assert chosen.cv_brier[chosen.method] < chosen.cv_brier["none"]
    assert chosen.calibrator.fitted and chosen.calibrator.method == chosen.method


def test_plots_write_png(tmp_path):
    from kgreason.finance.plots import reliability_diagram, roc_plot

    p, y = _toy(300, 3)
    curves = {"raw": (y, p), "calibrated": (y, Calibrator(method="platt").fit(p, y).transform(p))}
    for path in (reliability_diagram(curves, tmp_path / "rel.png"), roc_plot(curves, tmp_path / "roc.png")):
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
    assert not list(tmp_path.glob(".*.tmp"))
