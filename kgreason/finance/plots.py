"""Risk-model plots: reliability diagram and ROC curves (matplotlib, Agg backend, PNG written atomically).

``curves`` maps a model name to its ``(y, p)``: 0/1 outcomes and predicted default probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kgreason.core.atomic import atomic_path
from kgreason.finance.metrics import MetricError, auc, calibration_bins, expected_calibration_error


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return path


def reliability_diagram(
    curves: Mapping[str, tuple[Any, Any]],
    path: str | Path,
    *,
    bins: int = 10,
    title: str = "Reliability diagram",
) -> Path:
    """Observed default rate against mean predicted probability per uniform bin (ECE in the legend), the
    diagonal of perfect calibration, and below it a histogram of the predicted probabilities per model."""
    if not curves:
        raise MetricError("reliability_diagram needs at least one (y, p) curve")
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(6.0, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08}
    )
    top.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    edges = np.linspace(0.0, 1.0, bins + 1)  # (bins + 1,)
    for name, (y, p) in curves.items():
        table = calibration_bins(y, p, bins=bins)
        ece = expected_calibration_error(y, p, bins=bins)
        (line,) = top.plot(
            table.mean_predicted,
            table.fraction_positive,
            marker="o",
            markersize=4,
            label=f"{name} (ECE {ece:.3f})",
        )
        bottom.hist(
            np.asarray(p, dtype=float), bins=edges, histtype="step", linewidth=1.5, color=line.get_color()
        )
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("observed default rate")
    top.set_title(title)
    top.legend(fontsize=8, loc="upper left")
    top.grid(alpha=0.3)
    bottom.set_xlabel("predicted default probability")
    bottom.set_ylabel("companies")
    bottom.grid(alpha=0.3)
    fig.subplots_adjust(left=0.12, right=0.97, top=0.94, bottom=0.09)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def roc_plot(curves: Mapping[str, tuple[Any, Any]], path: str | Path, *, title: str = "ROC") -> Path:
    """ROC curve per model, AUC in the legend, and the chance diagonal."""
    from sklearn.metrics import roc_curve

    if not curves:
        raise MetricError("roc_plot needs at least one (y, p) curve")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    for name, (y, p) in curves.items():
        area = auc(y, p)
        fpr, tpr, _ = roc_curve(np.asarray(y), np.asarray(p, dtype=float))
        ax.plot(fpr, tpr, linewidth=1.5, label=f"{name} (AUC {area:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate (survivors flagged)")
    ax.set_ylabel("true positive rate (defaults caught)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
