"""Rules as constraints on a model's label predictions: hard masks, constrained argmax, soft (t-norm) losses.

A *world* is ``(atoms, (x, y))``: the facts of one example and the pair whose relation the model predicts.
For each label ``l`` (a binary predicate), :meth:`LabelConstraints.masks` says whether the rules *entail*
``l(x, y)`` and whether ``l(x, y)`` is *forbidden*: adding it makes a denial fire that did not fire without it.
Both are computed exactly by ONE vectorised :func:`forward_chain` call over ``B * (L + 1)`` disjoint worlds (each
example as given, and each example plus one candidate label), comparing the denial firings of each candidate
world with those of its example. Masks depend only on the example's facts, so compute them once per dataset.

The soft constraints are grounded formulas over probabilities, evaluated with a t-norm (product: ``T(a, b) = ab``
and Reichenbach implication ``1 - a + ab``; Łukasiewicz: ``T(a, b) = max(0, a + b - 1)`` and implication
``min(1, 1 - a + b)``). We checked ``ltntorch`` (PyPI): it grounds formulas through its own Variable/Predicate
classes; for our already grounded ``(G, K)`` tensors this small tested module is the better fit.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from kgreason.core.errors import ConfigError
from kgreason.rules.chaining import FactAtom, forward_chain
from kgreason.rules.language import RuleSet

if TYPE_CHECKING:
    import torch

TNorm = Literal["product", "lukasiewicz"]
World = tuple[Sequence[FactAtom], tuple[Hashable, Hashable]]


@dataclass
class LabelMasks:
    """Per example and label: ``entailed`` (the rules derive it) and ``forbidden`` (it would violate a denial)."""

    entailed: torch.Tensor  # (B, L) bool
    forbidden: torch.Tensor  # (B, L) bool


class LabelConstraints:
    """Hard constraints of a rule set over a label vocabulary (each label a binary predicate of the rules)."""

    def __init__(self, *, rules: RuleSet, labels: Sequence[str]) -> None:
        self.rules = rules
        self.labels = list(labels)
        self.predicates = []
        for label in self.labels:
            pred = label if label in rules.predicates else rules.predicate_for(label)
            if pred not in rules.predicates and label == "neice":
                pred = "niece"
            if len(rules.predicates.get(pred, ())) != 2:
                raise ConfigError(
                    f"label {label!r}: expected a binary predicate of the rules "
                    f"({', '.join(rules.binary_predicates)})"
                )
            self.predicates.append(pred)

    def masks(self, worlds: Sequence[World]) -> LabelMasks:
        """Masks for a batch of worlds ``(atoms, (x, y))``; one forward-chaining call for all B * (L + 1) worlds."""
        import torch

        num_b, num_l = len(worlds), len(self.labels)
        atoms: list[FactAtom] = []
        for b, (facts, (x, y)) in enumerate(worlds):
            for w in range(-1, num_l):  # -1: the example as given
                tag = (b, w)
                atoms.extend((p, tuple((tag, a) for a in args)) for p, args in facts)
                if w >= 0:
                    atoms.append((self.predicates[w], ((tag, x), (tag, y))))
        closure = forward_chain(self.rules, facts=atoms)

        heads = closure.ids(((b, -1), w[1][0]) for b, w in enumerate(worlds))
        tails = closure.ids(((b, -1), w[1][1]) for b, w in enumerate(worlds))
        pairs = np.stack([heads, tails], axis=1)  # (B, 2)
        entailed = np.zeros((num_b, num_l), dtype=bool)
        for j, pred in enumerate(self.predicates):
            entailed[:, j] = closure.holds_many(pred, pairs)  # (B,)

        forbidden = np.zeros((num_b, num_l), dtype=bool)
        # Constant id -> (example, candidate, name id); constants of the rule file itself belong to no world.
        names: dict[Hashable, int] = {}
        const_b = np.full(len(closure.constants), -1, dtype=np.int64)
        const_w = np.full(len(closure.constants), -2, dtype=np.int64)
        const_name = np.empty(len(closure.constants), dtype=np.int64)
        for i, c in enumerate(closure.constants):
            is_tagged = isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], tuple) and len(c[0]) == 2
            if is_tagged:
                (const_b[i], const_w[i]), name = c[0], c[1]
            else:
                name = ("<rule constant>", c)
            const_name[i] = names.setdefault(name, len(names))
        for k, firing in enumerate(closure.firings):
            rows = firing.rows  # (m, v)
            b = const_b[rows].max(axis=1)  # (m,)
            w = const_w[rows].max(axis=1)  # (m,)
            keep = b >= 0
            rows, b, w = rows[keep], b[keep], w[keep]
            if rows.shape[0] == 0:
                continue
            signature = np.concatenate(
                [np.full((rows.shape[0], 1), k), b[:, None], const_name[rows]], axis=1
            )  # (m, 2 + v)
            _, inverse = np.unique(signature, axis=0, return_inverse=True)
            inverse = inverse.reshape(-1)
            baseline = np.zeros(int(inverse.max()) + 1, dtype=bool)
            baseline[inverse[w == -1]] = True
            new = (w >= 0) & ~baseline[inverse]  # (m,)
            forbidden[b[new], w[new]] = True
        return LabelMasks(entailed=torch.from_numpy(entailed), forbidden=torch.from_numpy(forbidden))


def constrained_predictions(logits: torch.Tensor, forbidden: torch.Tensor) -> torch.Tensor:
    """Argmax over the labels that are not forbidden; rows where all are forbidden fall back to plain argmax."""
    if logits.shape != forbidden.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and forbidden {tuple(forbidden.shape)}: expected one shape"
        )
    masked = logits.masked_fill(forbidden, float("-inf"))  # (B, L)
    all_forbidden = forbidden.all(dim=-1)  # (B,)
    return masked.argmax(dim=-1).where(~all_forbidden, logits.argmax(dim=-1))  # (B,)


def violation_rate(predictions: torch.Tensor, forbidden: torch.Tensor) -> float:
    """Fraction of predictions (``(B,)`` label indices) that are forbidden for their example."""
    import torch

    if predictions.numel() == 0:
        return 0.0
    hit = forbidden[torch.arange(predictions.shape[0], device=predictions.device), predictions.long()]  # (B,)
    return float(hit.float().mean().item())


def _conjunction(body: torch.Tensor, tnorm: TNorm) -> torch.Tensor:
    """T-norm over the last axis of ``body`` ``(G, K)`` -> ``(G,)``; the empty conjunction is true."""
    if tnorm == "product":
        return body.prod(dim=-1)  # (G,)
    if tnorm == "lukasiewicz":
        k = body.shape[-1]
        return (body.sum(dim=-1) - (k - 1)).clamp(min=0.0) if k else body.new_ones(body.shape[:-1])  # (G,)
    raise ConfigError(f"tnorm {tnorm!r}: expected 'product' or 'lukasiewicz'")


def implication_truth(body: torch.Tensor, head: torch.Tensor, tnorm: TNorm = "product") -> torch.Tensor:
    """Truth of grounded ``body_1 & ... & body_K -> head``: body ``(G, K)``, head ``(G,)`` -> ``(G,)``."""
    a = _conjunction(body, tnorm)  # (G,)
    if tnorm == "product":
        return 1.0 - a + a * head  # Reichenbach
    return (1.0 - a + head).clamp(max=1.0)  # Łukasiewicz


def denial_truth(body: torch.Tensor, tnorm: TNorm = "product") -> torch.Tensor:
    """Truth of grounded ``false :- body_1, ..., body_K`` (= not(body)): body ``(G, K)`` -> ``(G,)``."""
    return 1.0 - _conjunction(body, tnorm)


def soft_constraint_loss(
    probs: torch.Tensor, masks: LabelMasks, *, tnorm: TNorm = "product", weight: float = 1.0
) -> torch.Tensor:
    """``weight`` * mean over grounded constraints of (1 - truth); a scalar, differentiable in ``probs``.

    Entailed labels are implications with a true body (``true -> p_l``); forbidden labels are denials of
    ``p_l``. Without any grounded constraint the loss is 0 (still attached to the graph).
    """
    entailed = masks.entailed.to(probs.device)  # (B, L)
    forbidden = masks.forbidden.to(probs.device)  # (B, L)
    if probs.shape != entailed.shape or probs.shape != forbidden.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and masks {tuple(entailed.shape)}: expected one shape")
    heads = probs[entailed]  # (G1,)
    denied = probs[forbidden]  # (G2,)
    if heads.numel() + denied.numel() == 0:
        return probs.sum() * 0.0
    import torch

    truth = torch.cat(
        [
            implication_truth(heads.new_ones(heads.shape[0], 0), heads, tnorm),  # (G1,)
            denial_truth(denied[:, None], tnorm),  # (G2,)
        ]
    )  # (G1 + G2,)
    return weight * (1.0 - truth).mean()
