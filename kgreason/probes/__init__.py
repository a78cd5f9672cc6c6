"""Causal probes and generalisation gaps: interventions on examples, and their effects with confidence intervals.

* :mod:`~kgreason.probes.effects`: :class:`Effect` and :func:`bootstrap_ci`;
* :mod:`~kgreason.probes.interventions`: drop / edit facts, perturb the graph, rename people (new Examples);
* :mod:`~kgreason.probes.probes`: knowledge ablation, counterfactual consistency, perturbation curves, name
  invariance, generalisation gaps;
* :mod:`~kgreason.probes.representation`: per-layer linear probes, INLP and amnesic probing.
"""

from kgreason.probes.effects import ConfidenceInterval, Effect, bootstrap_ci
from kgreason.probes.interventions import (
    PERTURBATIONS,
    InterventionError,
    drop_facts,
    edit_fact,
    edit_facts,
    perturb_graph,
    rename_entities,
)
from kgreason.probes.probes import (
    CurvePoint,
    GeneralisationReport,
    PerturbationCurve,
    Predictor,
    accuracy,
    correctness,
    counterfactual_consistency,
    generalisation_gaps,
    knowledge_ablation,
    name_invariance,
    perturbation_curve,
    train_test_gap,
)
from kgreason.probes.representation import (
    InlpResult,
    LayerProbeResult,
    LayerStates,
    amnesic_effect,
    inlp,
    layer_states,
    probe_layers,
    random_projection,
)

__all__ = [
    "PERTURBATIONS",
    "ConfidenceInterval",
    "CurvePoint",
    "Effect",
    "GeneralisationReport",
    "InlpResult",
    "InterventionError",
    "LayerProbeResult",
    "LayerStates",
    "PerturbationCurve",
    "Predictor",
    "accuracy",
    "amnesic_effect",
    "bootstrap_ci",
    "correctness",
    "counterfactual_consistency",
    "drop_facts",
    "edit_fact",
    "edit_facts",
    "generalisation_gaps",
    "inlp",
    "knowledge_ablation",
    "layer_states",
    "name_invariance",
    "perturb_graph",
    "perturbation_curve",
    "probe_layers",
    "random_projection",
    "rename_entities",
    "train_test_gap",
]
