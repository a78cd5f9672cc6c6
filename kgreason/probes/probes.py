"""Causal probes and generalisation gaps: an intervention plus the outcome that should follow, as an Effect.

Every probe takes a predictor ``predict(examples) -> labels`` and calls it ONCE (originals and intervened
examples in one list), so a slow model batches everything. ``reference=`` passes predictions already made on the
original examples; the predictor then sees only the intervened ones.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from kgreason.core.example import Example
from kgreason.probes.effects import Effect, bootstrap_ci
from kgreason.probes.interventions import (
    PERTURBATIONS,
    drop_facts,
    edit_facts,
    perturb_graph,
    rename_entities,
)

if TYPE_CHECKING:
    from kgreason.rules import RuleSet

Predictor = Callable[[Sequence[Example]], list[str]]

DEFAULT_FRACTIONS = (0.1, 0.25, 0.5, 0.75, 1.0)


def correctness(predictions: Sequence[Any], examples: Sequence[Example]) -> np.ndarray:
    """``predictions[i] == examples[i].label`` as a float array of 0 / 1, shape ``(n,)``."""
    if len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    return np.array(
        [p == e.label for p, e in zip(predictions, examples, strict=True)], dtype=np.float64
    )  # (n,)


def accuracy(
    predictions: Sequence[Any],
    examples: Sequence[Example],
    *,
    name: str = "accuracy",
    confidence: float = 0.95,
    seed: int = 0,
) -> Effect:
    """Accuracy with a bootstrap CI."""
    return bootstrap_ci(correctness(predictions, examples), confidence=confidence, seed=seed).effect(name)


def _predict(
    predict: Predictor,
    originals: Sequence[Example],
    variants: Sequence[Example],
    reference: Sequence[Any] | None,
) -> tuple[list[Any], list[Any]]:
    """Predictions on ``originals`` (``reference`` when given) and on ``variants``, from one predictor call."""
    if reference is not None and len(reference) != len(originals):
        raise ValueError(f"reference has {len(reference)} predictions for {len(originals)} examples")
    batch = list(variants) if reference is not None else [*originals, *variants]
    predictions = list(predict(batch)) if batch else []
    if len(predictions) != len(batch):
        raise ValueError(f"the predictor returned {len(predictions)} labels for {len(batch)} examples")
    if reference is not None:
        return list(reference), predictions
    return predictions[: len(originals)], predictions[len(originals) :]


# ------------------------------------------------------------------------------------------------- ablation


def knowledge_ablation(
    predict: Predictor,
    examples: Sequence[Example],
    *,
    which: str = "path",
    reference: Sequence[Any] | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> Effect:
    """Accuracy drop when the path facts (``which="path"``) or all facts are removed from text and graph.

    ``estimate = acc(original) - acc(ablated)`` with a paired bootstrap CI; a model that reasons from the facts
    shows a large drop, one that guesses from the question shows none.
    """
    ablated = [drop_facts(e, which=which) for e in examples]
    before, after = _predict(predict, examples, ablated, reference)
    c0, c1 = correctness(before, examples), correctness(after, ablated)  # (n,), (n,)
    ci = bootstrap_ci(c0, minus=c1, confidence=confidence, seed=seed)
    return ci.effect(
        f"knowledge_ablation[{which}]",
        accuracy_original=float(c0.mean()) if len(c0) else float("nan"),
        accuracy_ablated=float(c1.mean()) if len(c1) else float("nan"),
        which=which,
    )


# ------------------------------------------------------------------------------------------- counterfactual


def counterfactual_consistency(
    predict: Predictor,
    examples: Sequence[Example],
    *,
    rules: RuleSet,
    labels: Sequence[str],
    seed: int = 0,
    reference: Sequence[Any] | None = None,
    confidence: float = 0.95,
) -> Effect:
    """Share of counterfactually edited examples predicted as the rules' new answer.

    One path fact of each example is edited (:func:`~kgreason.probes.interventions.edit_facts`) so that the
    rules give a different, unique answer; examples without such an edit are skipped. ``details`` gives the
    counts, the accuracy on the originals (all, and the edited subset) and the share of edited examples still
    predicted as their OLD label (a model that ignores the facts keeps its answer).
    """
    edited = edit_facts(examples, rules=rules, labels=labels, rng=random.Random(seed))
    kept = [i for i, e in enumerate(edited) if e is not None]
    variants = [edited[i] for i in kept]
    before, after = _predict(predict, examples, variants, reference)  # type: ignore[arg-type]
    c_original = correctness(before, examples)  # (n,)
    consistent = correctness(after, variants)  # (m,)
    old = np.array(
        [p == examples[i].label for p, i in zip(after, kept, strict=True)], dtype=np.float64
    )  # (m,)
    ci = bootstrap_ci(consistent, confidence=confidence, seed=seed)
    return ci.effect(
        "counterfactual_consistency",
        n_edited=len(kept),
        n_skipped=len(examples) - len(kept),
        accuracy_original=_mean(c_original),
        accuracy_original_edited_subset=_mean(c_original[kept]),
        share_old_label=_mean(old),
    )


# --------------------------------------------------------------------------------------------- perturbation


@dataclass
class CurvePoint:
    """Accuracy at one perturbation fraction (0 = the original examples)."""

    fraction: float
    accuracy: float
    ci_low: float
    ci_high: float
    n: int


@dataclass
class PerturbationCurve:
    """Accuracy against the fraction of perturbed facts, per perturbation kind.

    ``effects[kind]`` is ``acc(0) - acc(largest fraction)`` with a paired bootstrap CI.
    """

    points: dict[str, list[CurvePoint]]
    effects: dict[str, Effect]
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "points": {
                kind: [
                    {
                        "fraction": p.fraction,
                        "accuracy": p.accuracy,
                        "ci_low": p.ci_low,
                        "ci_high": p.ci_high,
                        "n": p.n,
                    }
                    for p in pts
                ]
                for kind, pts in self.points.items()
            },
            "effects": {kind: effect.to_dict() for kind, effect in self.effects.items()},
            "details": dict(self.details),
        }


def perturbation_curve(
    predict: Predictor,
    examples: Sequence[Example],
    *,
    kinds: Sequence[str] = PERTURBATIONS,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    relations: Sequence[str] | None = None,
    reference: Sequence[Any] | None = None,
    confidence: float = 0.95,
) -> PerturbationCurve:
    """Accuracy as more of each story graph is perturbed (Raman et al., ICLR 2021: swap, rewire, delete).

    The facts change, the text does not: a model that reads the graph should degrade, one that reads only the
    text should not. All perturbed copies go to the predictor in one call.
    """
    for kind in kinds:
        if kind not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {kind!r}; expected one of {list(PERTURBATIONS)}")
    fractions = sorted(float(f) for f in fractions if f > 0)
    if not fractions:
        raise ValueError("fractions must hold at least one value above 0")
    grid = [(kind, f) for kind in kinds for f in fractions]
    variants: list[Example] = []
    for kind, f in grid:
        rng = random.Random(f"{seed}:{kind}:{f}")
        variants.extend(
            perturb_graph(e, kind=kind, fraction=f, rng=rng, relations=relations) for e in examples
        )
    before, after = _predict(predict, examples, variants, reference)
    c0 = correctness(before, examples)  # (n,)
    n = len(examples)
    base = bootstrap_ci(c0, confidence=confidence, seed=seed)
    points: dict[str, list[CurvePoint]] = {
        kind: [CurvePoint(0.0, base.estimate, base.low, base.high, n)] for kind in kinds
    }
    last: dict[str, np.ndarray] = {}
    for g, (kind, f) in enumerate(grid):
        c = correctness(after[g * n : (g + 1) * n], variants[g * n : (g + 1) * n])  # (n,)
        ci = bootstrap_ci(c, confidence=confidence, seed=seed)
        points[kind].append(CurvePoint(f, ci.estimate, ci.low, ci.high, n))
        last[kind] = c
    effects = {
        kind: bootstrap_ci(c0, minus=last[kind], confidence=confidence, seed=seed).effect(
            f"perturbation[{kind}]", fraction=fractions[-1], accuracy_original=base.estimate
        )
        for kind in kinds
    }
    return PerturbationCurve(points=points, effects=effects, details={"seed": seed, "fractions": fractions})


# ------------------------------------------------------------------------------------------------- renaming


def name_invariance(
    predict: Predictor,
    examples: Sequence[Example],
    *,
    seed: int = 0,
    names_by_gender: Mapping[str, Sequence[str]] | None = None,
    reference: Sequence[Any] | None = None,
    confidence: float = 0.95,
) -> Effect:
    """Share of predictions unchanged when every person is renamed (same gender, unused names).

    Reasoning over kinship does not depend on names, so a faithful model scores 1.
    """
    rng = random.Random(seed)
    renamed = [rename_entities(e, rng=rng, names_by_gender=names_by_gender) for e in examples]
    before, after = _predict(predict, examples, renamed, reference)
    same = np.array([a == b for a, b in zip(before, after, strict=True)], dtype=np.float64)  # (n,)
    ci = bootstrap_ci(same, confidence=confidence, seed=seed)
    return ci.effect(
        "name_invariance",
        accuracy_original=_mean(correctness(before, examples)),
        accuracy_renamed=_mean(correctness(after, renamed)),
    )


# ------------------------------------------------------------------------------------------ generalisation


@dataclass
class GeneralisationReport:
    """Accuracy by reasoning depth and by noise type, and the IID-vs-OOD depth gap.

    Attributes:
        by_depth: depth -> accuracy (Effect with CI).
        by_noise: noise kind -> accuracy.
        iid, ood: accuracy on depths seen in training / not seen.
        gap: ``iid - ood`` (unpaired bootstrap: two groups of examples).
        overall: accuracy on all examples.
    """

    by_depth: dict[int, Effect]
    by_noise: dict[str, Effect]
    iid: Effect
    ood: Effect
    gap: Effect
    overall: Effect
    train_depths: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "by_depth": {str(d): e.to_dict() for d, e in self.by_depth.items()},
            "by_noise": {k: e.to_dict() for k, e in self.by_noise.items()},
            "iid": self.iid.to_dict(),
            "ood": self.ood.to_dict(),
            "gap": self.gap.to_dict(),
            "overall": self.overall.to_dict(),
            "train_depths": list(self.train_depths),
        }


def generalisation_gaps(
    predict: Predictor | Sequence[Any],
    examples: Sequence[Example],
    *,
    train_depths: Sequence[int],
    confidence: float = 0.95,
    seed: int = 0,
) -> GeneralisationReport:
    """Accuracy by ``metadata["depth"]`` and ``metadata["noise"]``, and the gap between trained and unseen depths.

    ``predict`` is a predictor (called once) or the predictions already made on ``examples``.
    """
    predictions = list(predict(list(examples))) if callable(predict) else list(predict)
    correct = correctness(predictions, examples)  # (n,)
    depths = np.array([int(e.metadata.get("depth", -1)) for e in examples])  # (n,)
    noise = [str(e.metadata.get("noise", "unknown")) for e in examples]
    by_depth = {
        int(d): bootstrap_ci(correct[depths == d], confidence=confidence, seed=seed).effect(
            f"accuracy[depth={d}]"
        )
        for d in sorted(set(depths.tolist()))
    }
    by_noise = {
        kind: bootstrap_ci(correct[[k == kind for k in noise]], confidence=confidence, seed=seed).effect(
            f"accuracy[noise={kind}]"
        )
        for kind in sorted(set(noise))
    }
    iid_mask = np.isin(depths, list(train_depths))  # (n,)
    iid = bootstrap_ci(correct[iid_mask], confidence=confidence, seed=seed).effect("accuracy[iid]")
    ood = bootstrap_ci(correct[~iid_mask], confidence=confidence, seed=seed).effect("accuracy[ood]")
    gap = bootstrap_ci(
        correct[iid_mask], minus=correct[~iid_mask], paired=False, confidence=confidence, seed=seed
    )
    return GeneralisationReport(
        by_depth=by_depth,
        by_noise=by_noise,
        iid=iid,
        ood=ood,
        gap=gap.effect(
            "generalisation_gap[iid-ood]",
            n_iid=int(iid_mask.sum()),
            n_ood=int((~iid_mask).sum()),
            train_depths=sorted(int(d) for d in train_depths),
        ),
        overall=bootstrap_ci(correct, confidence=confidence, seed=seed).effect("accuracy"),
        train_depths=sorted(int(d) for d in train_depths),
    )


def train_test_gap(
    *,
    train_correct: Sequence[float] | np.ndarray,
    test_correct: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    seed: int = 0,
) -> Effect:
    """``acc(train) - acc(test)`` from per-example correctness (0 / 1), with an unpaired bootstrap CI.

    Build the inputs with :func:`correctness`.
    """
    train = np.asarray(train_correct, dtype=np.float64)  # (n_train,)
    test = np.asarray(test_correct, dtype=np.float64)  # (n_test,)
    ci = bootstrap_ci(train, minus=test, paired=False, confidence=confidence, seed=seed)
    return ci.effect(
        "train_test_gap",
        accuracy_train=_mean(train),
        accuracy_test=_mean(test),
        n_train=len(train),
        n_test=len(test),
    )


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")
