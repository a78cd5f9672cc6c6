"""What scoring returns: a score with its reasons, an explanation, a what-if; and the scorer contract.

The CLI (``kgreason finance score``) and the REST service (``kgreason finance serve``) both talk to a
:class:`Scorer`, so the service can be tested and load-tested against any implementation of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from kgreason.core.errors import KGReasonError

#: Kinds of reasons: a tabular feature, a neighbour in the graph, a relation type, a text fact (sentence).
REASON_KINDS = ("feature", "neighbour", "relation", "fact")


@dataclass(frozen=True)
class Reason:
    """One reason behind a score.

    Attributes:
        code: a stable reason code (e.g. ``F:lawsuits_lost``, ``N:guarantees:C0042``, ``R:guarantees``, ``T:3``).
        kind: one of :data:`REASON_KINDS`.
        text: the reason in plain words ("Guarantees C0042, which defaulted").
        contribution: change of the default probability this part causes (removing it lowers the probability
            by this much; negative contributions lower the risk).
    """

    code: str
    kind: str
    text: str
    contribution: float


@dataclass(frozen=True)
class CompanyScore:
    """The score of one company.

    Attributes:
        company_id: the company's key in the graph.
        score: the model's raw default probability.
        probability: the calibrated default probability.
        reasons: the top reasons raising the risk, largest contribution first.
        model_version: the version of the model that scored (name + short weights hash).
    """

    company_id: str
    score: float
    probability: float
    reasons: list[Reason]
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Explanation:
    """All attributions of one company's score, ranked by absolute contribution within each kind."""

    company_id: str
    probability: float
    model_version: str
    features: list[Reason] = field(default_factory=list)
    neighbours: list[Reason] = field(default_factory=list)
    relations: list[Reason] = field(default_factory=list)
    facts: list[Reason] = field(default_factory=list)

    def ranked(self, *, top: int | None = None, positive_only: bool = True) -> list[Reason]:
        """Reasons of every kind, largest contribution first (only risk-raising ones by default)."""
        everything = [*self.features, *self.neighbours, *self.relations, *self.facts]
        if positive_only:
            everything = [r for r in everything if r.contribution > 0]
        everything.sort(key=lambda r: -abs(r.contribution))
        return everything[:top] if top is not None else everything

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: What-if scenarios: a neighbour defaults / survives, an edge is removed, a feature is set.
SCENARIOS = ("neighbour_defaults", "neighbour_survives", "remove_edge", "set_feature")


@dataclass(frozen=True)
class Scenario:
    """An intervention on the graph before re-scoring a company.

    Attributes:
        kind: one of :data:`SCENARIOS`.
        target: the neighbour's key (``neighbour_*``, ``remove_edge``) or the feature name (``set_feature``).
        relation: the relation of the edge to remove (``remove_edge``; ``None``: every edge to ``target``).
        value: the feature's new value (``set_feature``).
    """

    kind: str
    target: str
    relation: str | None = None
    value: float | None = None


@dataclass(frozen=True)
class WhatIf:
    """A company's calibrated probability before and after a scenario."""

    company_id: str
    scenario: Scenario
    before: float
    after: float
    model_version: str

    @property
    def delta(self) -> float:
        return self.after - self.before

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["delta"] = self.delta
        return out


class FeatureOverrideError(KGReasonError, ValueError):
    """Feature overrides of a scoring call that name no feature, a company not scored, or an impossible value."""


@runtime_checkable
class Scorer(Protocol):
    """What the CLI and the service need from a trained risk model over its company graph.

    Unknown company ids raise ``KeyError`` naming them; a bad scenario raises ``ValueError``.
    """

    model_version: str

    def company_ids(self) -> list[str]: ...

    def score(
        self,
        company_ids: list[str],
        *,
        top_reasons: int = 3,
        overrides: Mapping[str, Mapping[str, float]] | None = None,
    ) -> list[CompanyScore]: ...

    def explain(self, company_id: str, *, top: int = 10) -> Explanation: ...

    def what_if(self, company_id: str, scenario: Scenario) -> WhatIf: ...
