"""The registry of probes a suite runs by name: what each measures, what a predictor must read for it to apply.

A probe is a :class:`Probe`: a ``run(context) -> dict`` (JSON-ready) and the capabilities it ``needs`` of the
predictor it probes (``"graph"``: the predictor reads the facts as a graph, so editing the graph but not the text
means something; ``"text_encoder"``: it is a text model whose encoder layers and head can be read). A suite's
``probes.run`` lists names; each built-in answers to a short name (the report's key) and a versioned one
(``kgreason.KnowledgeAblation.v1``). Installed packages add probes through the entry-point group
``kgreason.probes``; a probe registered at run time (``probes.register("my_probe", Probe(...))``) is one suite
line away::

    probes:
      run: [ablation, my_probe]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kgreason.core.registry import Registry

if TYPE_CHECKING:
    from kgreason.core.example import Example
    from kgreason.probes.probes import Predictor
    from kgreason.rules.language import RuleSet

#: What a predictor can read, as probes name it in :attr:`Probe.needs`.
CAPABILITIES = ("graph", "text_encoder")


@dataclass(frozen=True, kw_only=True)
class ProbeContext:
    """What one probe run sees: the predictor, the sample and the unedited predictions all probes share.

    ``options``: the suite's probe settings (``perturbation_kinds``, ``perturbation_fractions``,
    ``inlp_iterations``, ``max_length`` ...); ``reads``: the predictor's capabilities (:data:`CAPABILITIES`).
    """

    predictor: Predictor
    sample: Sequence[Example]
    reference: Sequence[Any]
    seed: int
    labels: Sequence[str]
    rules: RuleSet | None = None
    relations: Sequence[str] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    reads: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True)
class Probe:
    """A named measurement of a predictor on a sample; applies where the predictor reads all it ``needs``."""

    run: Callable[[ProbeContext], dict[str, Any]]
    needs: frozenset[str] = frozenset()
    description: str = ""

    def applies(self, reads: frozenset[str]) -> bool:
        return self.needs <= reads


def _ablation(context: ProbeContext) -> dict[str, Any]:
    from kgreason.probes.probes import knowledge_ablation

    return knowledge_ablation(
        context.predictor, context.sample, which="path", reference=context.reference, seed=context.seed
    ).to_dict()


def _counterfactual(context: ProbeContext) -> dict[str, Any]:
    from kgreason.probes.probes import counterfactual_consistency

    if context.rules is None:
        raise ValueError("the counterfactual probe needs the suite's rules")
    return counterfactual_consistency(
        context.predictor,
        context.sample,
        rules=context.rules,
        labels=context.labels,
        seed=context.seed,
        reference=context.reference,
    ).to_dict()


def _perturbation(context: ProbeContext) -> dict[str, Any]:
    from kgreason.probes.probes import perturbation_curve

    return perturbation_curve(
        context.predictor,
        context.sample,
        kinds=list(context.options["perturbation_kinds"]),
        fractions=list(context.options["perturbation_fractions"]),
        seed=context.seed,
        relations=list(context.relations),
        reference=context.reference,
    ).to_dict()


def _rename(context: ProbeContext) -> dict[str, Any]:
    from kgreason.probes.probes import name_invariance

    return name_invariance(
        context.predictor, context.sample, seed=context.seed, reference=context.reference
    ).to_dict()


def _representation(context: ProbeContext) -> dict[str, Any]:
    from kgreason.probes.representation import representation_summary

    return representation_summary(
        context.predictor,
        context.sample,
        classes=context.labels,
        max_length=int(context.options["max_length"]),
        inlp_iterations=int(context.options["inlp_iterations"]),
        seed=context.seed,
    )


#: Registered probes (built-ins plus the ``kgreason.probes`` entry points).
probes: Registry[Probe] = Registry(kind="probe", entry_point_group="kgreason.probes")

#: The built-ins: (short name, versioned name, probe), in the order a suite runs and reports them.
BUILT_IN_PROBES: tuple[tuple[str, str, Probe], ...] = (
    (
        "ablation",
        "kgreason.KnowledgeAblation.v1",
        Probe(run=_ablation, description="accuracy drop when the path facts are removed from text and graph"),
    ),
    (
        "counterfactual",
        "kgreason.CounterfactualConsistency.v1",
        Probe(
            run=_counterfactual, description="share of rule-changing fact edits followed by the prediction"
        ),
    ),
    (
        "perturbation",
        "kgreason.PerturbationCurve.v1",
        Probe(
            run=_perturbation,
            needs=frozenset({"graph"}),
            description="accuracy as more of the story graph is swapped, rewired or deleted (text unchanged)",
        ),
    ),
    (
        "rename",
        "kgreason.NameInvariance.v1",
        Probe(run=_rename, description="share of predictions unchanged when every person is renamed"),
    ),
    (
        "representation",
        "kgreason.RepresentationProbe.v1",
        Probe(
            run=_representation,
            needs=frozenset({"text_encoder"}),
            description="linear probes per encoder layer, INLP and the amnesic effect on the head",
        ),
    ),
)
for _short, _versioned, _probe in BUILT_IN_PROBES:
    probes.register(_short, _probe, aliases=(_versioned,))
del _short, _versioned, _probe

#: The built-in probes' short names, in run order (a suite's default ``probes.run``).
PROBE_NAMES = tuple(short for short, _, _ in BUILT_IN_PROBES)


def ordered_probes(names: Sequence[str]) -> list[str]:
    """``names`` as registered names, built-ins first in their run order, then the others as given."""
    canonical = list(dict.fromkeys(probes.canonical(name) for name in names))
    rank = {name: i for i, name in enumerate(PROBE_NAMES)}
    return sorted(canonical, key=lambda name: (rank.get(name, len(rank)), canonical.index(name)))
