"""Causal checks of a trained risk model against the company-graph generator's known structural model.

* **Contagion recovery** — for guarantor–debtor pairs ``(i, j)`` with ``i`` a test company, the model's what-if
  effect ``p_i(j defaulted) − p_i(j not known to have defaulted)`` (calibrated probabilities; the debtor's
  outcome set in ``node_status`` and in the verbalized facts) against the generator's interventional truth
  ``P(D_i | do(D_j = 1)) − P(D_i | do(D_j = 0))`` (:func:`kgreason.finance.causal.true_contagion_effect`).
  The model's control is "the debtor's outcome is unknown", so the matched truth is
  ``P(D_i | do(D_j = 1)) − P(D_i)`` (no intervention on ``j``); ``do(1) − do(0)`` is reported beside it. The model
  also conditions on the other neighbours' known outcomes while the truth averages over them. The verdict asks
  whether the matched truth lies in the estimate's 95 % bootstrap CI and how large the relative error is.
* **Knowledge ablation** — for test companies next to a known default, how much the probability falls when the
  ego subgraph's edges are removed (does the model use the graph at all?), with a bootstrap CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kgreason.finance.dataset import STATUS_DEFAULTED, STATUS_UNKNOWN


def _pair_effects(scorer: Any, pairs: np.ndarray) -> np.ndarray:
    """(P,) calibrated what-if effects of each pair ``(i, j)`` (company rows)."""
    featurizer = scorer.prepared.featurizer
    g = scorer.prepared.graph
    items = []
    for i, j in pairs.tolist():
        node = int(g.companies[j])
        for value in (STATUS_DEFAULTED, STATUS_UNKNOWN):
            status = featurizer.node_status(overrides={node: value})
            items.extend(scorer._encode([i], status=status))
    cal = scorer.calibrator.transform(scorer._forward(items))  # (2P,)
    return cal[0::2] - cal[1::2]


def _ablation(scorer: Any, rows: np.ndarray) -> np.ndarray:
    """(n,) calibrated probability with the ego subgraph minus without its edges."""
    import dataclasses

    items = scorer._encode(rows.tolist())
    bare = []
    for item in items:
        graph = item.graph.clone()
        keep = graph.edge_type < 0  # (e,) nothing
        graph.edge_index = graph.edge_index[:, keep]
        graph.edge_type = graph.edge_type[keep]
        graph.rule_edge_mask = graph.rule_edge_mask[keep]
        bare.append(dataclasses.replace(item, graph=graph))
    cal = scorer.calibrator.transform(scorer._forward(items + bare))
    return cal[: len(items)] - cal[len(items) :]


def contagion_recovery(
    *,
    suite: Any,
    graph_config: Any,
    run_dirs: list[Path],
    pairs: int = 200,
    relation: str = "guarantees",
) -> dict[str, Any]:
    """Estimated vs true contagion effect and the graph-ablation probe, over the fused runs of a suite."""
    from kgreason.core.paths import data_dir
    from kgreason.finance.causal import default_probabilities, true_contagion_effect
    from kgreason.finance.generator import GeneratorConfig, generate_company_graph
    from kgreason.finance.scoring import RiskScorer
    from kgreason.finance.sources import source_name
    from kgreason.probes.effects import bootstrap_ci

    if source_name(graph_config.source) != "kgreason.finance.Generator.v1":
        raise ValueError("contagion recovery needs the generator's causal world (data.source: generator)")
    root = data_dir(graph_config.data_dir)
    generated = generate_company_graph(
        GeneratorConfig(data_dir=None if root is None else str(root), **graph_config.options)
    )
    graph, world = generated.graph, generated.world
    truth = true_contagion_effect(world, relation, samples=suite.recovery_samples, seed=0)
    natural = default_probabilities(world, samples=suite.recovery_samples, seed=1)  # (C,) no intervention
    test = graph.splits[truth.exposed] == "test"
    chosen = np.flatnonzero(test)
    rng = np.random.default_rng(0)
    if len(chosen) > pairs:
        chosen = np.sort(rng.choice(chosen, size=pairs, replace=False))
    pair_rows = np.stack([truth.exposed[chosen], truth.sources[chosen]], axis=1)  # (P, 2) guarantor, debtor
    true_effects = truth.effects[chosen]  # (P,) do(D_j = 1) - do(D_j = 0)
    # the model's control leaves j's outcome unknown, i.e. drawn by the world: do(D_j = 1) - no intervention
    matched = truth.p_default[chosen] - natural[truth.exposed[chosen]]  # (P,)
    per_run, ablations = [], []
    node_status = None
    for run_dir in run_dirs:
        scorer = RiskScorer.load(run_dir)
        per_run.append(_pair_effects(scorer, pair_rows))
        if node_status is None:
            node_status = scorer.prepared.featurizer.node_status()
            rows = graph.rows("test")
            linked = []
            for row in rows.tolist():
                node = int(graph.companies[row])
                neighbours = scorer.prepared.featurizer.neighbours(node)
                if any(node_status[other] == STATUS_DEFAULTED for _, other, _ in neighbours):
                    linked.append(row)
            linked_rows = np.asarray(linked[:300], dtype=np.int64)
        if len(linked_rows):
            ablations.append(_ablation(scorer, linked_rows))
    if not per_run:
        return {"summary": "no fused runs to check"}
    estimated = np.mean(np.stack(per_run), axis=0)  # (P,) averaged over seeds
    ci = bootstrap_ci(estimated, seed=0)
    true_do = float(true_effects.mean())
    true_matched = float(matched.mean())
    relative_error = abs(ci.estimate - true_matched) / abs(true_matched) if true_matched else float("nan")
    within = ci.low <= true_matched <= ci.high
    from scipy.stats import spearmanr

    varies = len(estimated) > 2 and np.ptp(estimated) > 0 and np.ptp(matched) > 0
    rho = float(spearmanr(estimated, matched).statistic) if varies else float("nan")
    out: dict[str, Any] = {
        "relation": relation,
        "pairs": len(pair_rows),
        "true_effect_matched": round(true_matched, 4),
        "true_effect_do": round(true_do, 4),
        "true_effect_do_stderr": round(float(truth.stderr), 4),
        "true_closed_form": round(float(truth.closed_form[chosen].mean()), 4),
        "estimated_effect": round(ci.estimate, 4),
        "estimated_ci95": [round(ci.low, 4), round(ci.high, 4)],
        "estimated_per_seed": [round(float(e.mean()), 4) for e in per_run],
        "relative_error": round(relative_error, 3),
        "spearman_per_pair": round(rho, 3),
        "truth_in_ci": bool(within),
        "strength": truth.strength,
    }
    if ablations:
        drop = np.mean(np.stack(ablations), axis=0)
        a = bootstrap_ci(drop, seed=0)
        out["graph_ablation"] = {
            "companies": len(drop),
            "effect": round(a.estimate, 4),
            "ci95": [round(a.low, 4), round(a.high, 4)],
            "uses_graph": bool(a.low > 0),
        }
    verdict = (
        "recovered (the matched truth lies inside the 95% CI)"
        if within
        else f"not recovered (relative error {relative_error:.0%} against the matched truth)"
    )
    out["summary"] = (
        f"Guarantee contagion on {len(pair_rows)} test guarantor–debtor pairs: the fused model's what-if effect "
        f"p(debtor defaulted) − p(debtor's outcome unknown) is {ci.estimate:.3f} [{ci.low:.3f}, {ci.high:.3f}]; "
        f"the generator's truth for the same contrast, P(D_i | do(D_j = 1)) − P(D_i), is {true_matched:.3f}, "
        f"and for do(D_j = 1) − do(D_j = 0) {true_do:.3f} (strength s = {truth.strength}); {verdict}; "
        f"per-pair Spearman {rho:.2f}."
    )
    return out
