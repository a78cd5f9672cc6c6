"""Label constraints from rules: entailed / forbidden masks, constrained argmax, violation rate, soft losses."""

from __future__ import annotations

import pytest
import torch

from kgreason.core.errors import ConfigError
from kgreason.rules import (
    KINSHIP_LABELS,
    LabelConstraints,
    LabelMasks,
    constrained_predictions,
    denial_truth,
    facts_from_triples,
    implication_truth,
    kinship_rules,
    parse_rules,
    soft_constraint_loss,
    violation_rate,
)

LABELS = list(KINSHIP_LABELS)


def world(story, genders, query):
    return facts_from_triples(story, genders=genders), query


@pytest.fixture(scope="module")
def masks() -> LabelMasks:
    constraints = LabelConstraints(rules=kinship_rules(), labels=LABELS)
    return constraints.masks(
        [
            world([("a", "mother", "b"), ("b", "mother", "c")], {}, ("a", "c")),  # grandmother
            world([("a", "son", "b")], {}, ("b", "a")),  # a is b's parent, gender unknown
            world([("a", "son", "b"), ("b", "brother", "c")], {}, ("c", "b")),  # only: c is b's male sibling
        ]
    )


def test_masks_kinship(masks):
    idx = {label: i for i, label in enumerate(LABELS)}
    assert masks.entailed.shape == masks.forbidden.shape == (3, len(LABELS))
    assert masks.entailed.dtype == torch.bool
    # world 0: grandmother entailed, everything else forbidden (one relation per pair)
    assert masks.entailed[0].nonzero().flatten().tolist() == [idx["grandmother"]]
    assert masks.forbidden[0].sum() == len(LABELS) - 1 and not masks.forbidden[0, idx["grandmother"]]
    # world 1: nothing entailed; father and mother are both possible, all else is forbidden
    assert not masks.entailed[1].any()
    allowed = {LABELS[i] for i in (~masks.forbidden[1]).nonzero().flatten().tolist()}
    assert allowed == {"father", "mother"}
    # world 2: c is b's sibling (gender of b unknown, c is male): brother, sister allowed? b is male (son)
    allowed = {LABELS[i] for i in (~masks.forbidden[2]).nonzero().flatten().tolist()}
    assert allowed == {"brother"}  # b is a son, so b is c's brother
    assert masks.entailed[2, idx["brother"]]


def test_masks_only_count_new_violations():
    """A world that already violates a denial does not make every label forbidden."""
    rules = parse_rules(
        "type p.\npred r(p, p), s(p, p), t(p, p), bad(p).\n"
        "false :- bad(X).\nexclusive r, s.\n"  # r and s exclude each other; t is free
    )
    constraints = LabelConstraints(rules=rules, labels=["r", "s", "t"])
    m = constraints.masks([([("bad", ("x",)), ("r", ("x", "y"))], ("x", "y"))])
    assert m.entailed.tolist() == [[True, False, False]]
    assert m.forbidden.tolist() == [[False, True, False]]


def test_unknown_label_is_a_config_error():
    with pytest.raises(ConfigError, match="cousin"):
        LabelConstraints(rules=kinship_rules(), labels=["cousin"])


def test_constrained_predictions_never_forbidden():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 7, generator=gen)  # (B, L)
    forbidden = torch.rand(200, 7, generator=gen) < 0.6  # (B, L)
    forbidden[0] = True  # every label forbidden: plain argmax, counted as a violation
    pred = constrained_predictions(logits, forbidden)
    assert pred.dtype == torch.long and pred.shape == (200,)
    ok = ~forbidden[1:].all(dim=1)
    assert not forbidden[1:][ok][torch.arange(int(ok.sum())), pred[1:][ok]].any()
    assert pred[0] == logits[0].argmax()
    # among the allowed labels it is the best one
    best = logits.masked_fill(forbidden, float("-inf")).max(dim=1).values
    assert torch.equal(logits[1:][ok].gather(1, pred[1:][ok, None]).squeeze(1), best[1:][ok])
    assert violation_rate(pred, forbidden) == pytest.approx(forbidden.all(dim=1).float().mean().item())
    assert forbidden.all(dim=1).sum() >= 1
    raw = logits.argmax(dim=1)
    assert violation_rate(raw, forbidden) == pytest.approx(
        forbidden[torch.arange(200), raw].float().mean().item()
    )
    assert violation_rate(raw[:0], forbidden[:0]) == 0.0


def test_tnorm_values_by_hand():
    body = torch.tensor([[0.9, 0.8], [0.5, 0.4], [1.0, 1.0]])  # (G, K)
    head = torch.tensor([0.3, 0.2, 0.6])  # (G,)
    # product: a = 0.72, 0.2, 1.0; Reichenbach 1 - a + a h
    assert implication_truth(body, head, "product").tolist() == pytest.approx(
        [1 - 0.72 + 0.72 * 0.3, 0.84, 0.6]
    )
    # Łukasiewicz: a = 0.7, 0, 1; min(1, 1 - a + h)
    assert implication_truth(body, head, "lukasiewicz").tolist() == pytest.approx([0.6, 1.0, 0.6])
    assert denial_truth(body, "product").tolist() == pytest.approx([0.28, 0.8, 0.0])
    assert denial_truth(body, "lukasiewicz").tolist() == pytest.approx([0.3, 1.0, 0.0])
    with pytest.raises(ConfigError, match="tnorm"):
        denial_truth(body, "goedel")


def test_soft_constraint_loss_values_and_gradients(masks):
    logits = torch.zeros(3, len(LABELS), requires_grad=True)
    probs = logits.softmax(dim=-1)  # uniform: p = 1/18
    loss = soft_constraint_loss(probs, masks, tnorm="product", weight=2.0)
    n_ent, n_forb = int(masks.entailed.sum()), int(masks.forbidden.sum())
    p = 1 / len(LABELS)
    expected = 2.0 * (n_ent * (1 - p) + n_forb * p) / (n_ent + n_forb)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    idx = LABELS.index("grandmother")
    assert logits.grad[0, idx] < 0  # gradient descent raises the entailed label
    # a confident, consistent prediction has (near) zero loss with both t-norms
    good = torch.full((3, len(LABELS)), 1e-6)
    good[0, idx] = 1.0
    good[1, LABELS.index("mother")] = 1.0
    good[2, LABELS.index("brother")] = 1.0
    for tnorm in ("product", "lukasiewicz"):
        assert soft_constraint_loss(good, masks, tnorm=tnorm).item() < 1e-5
    empty = LabelMasks(
        entailed=torch.zeros(2, 3, dtype=torch.bool), forbidden=torch.zeros(2, 3, dtype=torch.bool)
    )
    probs = torch.rand(2, 3, requires_grad=True)
    zero = soft_constraint_loss(probs, empty)
    assert zero.item() == 0.0 and zero.requires_grad
