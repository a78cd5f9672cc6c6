"""Writing a benchmark's results: ``<stem>.json`` and ``<stem>.md``, each atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kgreason.core.atomic import atomic_write_text


def write_results(stem: Path, report: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``report`` as ``stem.json`` and ``markdown`` as ``stem.md``; return both paths."""
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    atomic_write_text(json_path, json.dumps(report, indent=2) + "\n")
    atomic_write_text(md_path, markdown)
    return json_path, md_path


def link_summary(metrics: Any) -> dict[str, float]:
    """MRR, Hits@1 and Hits@10 of link-prediction metrics, and GraIL's Hits@10 (50) when they have it."""
    out = {"mrr": metrics.mrr, "hits_at_1": metrics.hits_at[1], "hits_at_10": metrics.hits_at[10]}
    if metrics.sampled:
        out["hits_at_10_50"] = metrics.sampled.get("hits_at_10", float("nan"))
    return out


def link_probe(full: Any, ablated: Any) -> dict[str, float]:
    """The paired bootstrap CI of the test MRR change from ``full`` to ``ablated`` (same queries)."""
    from kgreason.probes.link import mrr_change_ci

    ci = mrr_change_ci(full, ablated)
    return {"mrr_change": ci.estimate, "low": ci.low, "high": ci.high}
