"""Financial risk scoring on company graphs.

The flow: a :class:`~kgreason.finance.graph.CompanyGraph` (from CSV, RDF, SMEsD or the generator) ->
:class:`~kgreason.finance.dataset.CompanyFeaturizer` (texts, ego subgraphs, scaled features) -> the shared fused
model trained by the shared trainer (:func:`~kgreason.finance.training.train_risk_model`) -> calibration on dev ->
:class:`~kgreason.finance.scoring.RiskScorer` (scores, reason codes, what-ifs) -> CLI and REST service.
"""

from kgreason.finance.graph import CompanyGraph, CompanyGraphError, Lawsuit
from kgreason.finance.records import CompanyScore, Explanation, Reason, Scenario, Scorer, WhatIf

__all__ = [
    "CompanyGraph",
    "CompanyGraphError",
    "CompanyScore",
    "Explanation",
    "Lawsuit",
    "Reason",
    "Scenario",
    "Scorer",
    "WhatIf",
]
