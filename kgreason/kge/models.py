"""KGE models: ``torch_geometric.nn.kge`` TransE, DistMult, ComplEx and RotatE, plus what link prediction needs.

Each class here subclasses the PyG model (same parameters, initialisation and ``forward``) and adds:

* **reciprocal relations** (Lacroix et al. 2018): the model holds ``2R`` relations and head prediction
  ``(?, r, t)`` is tail prediction ``(t, r + R, ?)``;
* **query / candidate factorisation**: ``score(h, r, t) = match(query(h, r), candidate(t))``, so one query is
  scored against ``K`` sampled negatives or against **all** entities (1-vs-all) without looping entities;
* export / import of the embeddings as real matrices (complex models: real and imaginary parts concatenated).

Scores are "higher is more plausible". Distance models (TransE, RotatE) score ``-distance``; the margin lives in
the loss (:func:`negative_sampling_loss`), not in the score.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn.kge import ComplEx, DistMult, RotatE, TransE

#: Registered model names.
MODELS = ("transe", "distmult", "complex", "rotate")
#: Loss names: self-adversarial logistic loss with a margin (Sun et al. 2019), pairwise margin ranking, and
#: cross-entropy (softmax of the positive against its negatives, or against all entities with 0 negatives).
LOSSES = ("nssa", "margin", "ce")
#: Which side of a triple a query predicts.
DIRECTIONS = ("head", "tail")


class KGEMixin:
    """What kgreason adds to a PyG KGE model; subclasses implement the row / query / match primitives.

    An entity's **row** is its raw parameter vector (complex models: ``re | im`` concatenated), a relation's row
    likewise (RotatE: phases); rows are what :meth:`export_embeddings` saves. A **candidate** is what a row looks
    like as an answer (TransE normalises it), a **query** combines the anchor's and the relation's rows.
    Computing on rows lets a training step look every entity of a batch up once.

    Shapes: ``B`` queries, ``K`` candidates each, ``E`` entities, ``D`` the width of a query / candidate vector
    (``dim`` for real models, ``2 * dim`` for complex ones).
    """

    name: ClassVar[str]
    #: Entity vectors are complex (real and imaginary parts concatenated on export).
    is_complex: ClassVar[bool] = False
    #: The model scores ``-distance`` (TransE, RotatE): a margin in the loss makes sense.
    is_distance: ClassVar[bool] = False
    #: Lacroix et al.'s N3 regulariser applies (tensor-factorisation models).
    supports_n3: ClassVar[bool] = False

    num_nodes: int
    hidden_channels: int
    node_emb: torch.nn.Embedding
    rel_emb: torch.nn.Embedding

    def _init_kge(self, *, num_relations: int, reciprocal: bool, sparse: bool) -> None:
        self.num_base_relations = num_relations
        self.reciprocal = reciprocal
        self.sparse = sparse

    @property
    def num_entities(self) -> int:
        return self.num_nodes

    # ------------------------------------------------------------------------- primitives (per model)
    def entity_rows(self, index: Tensor | None = None) -> Tensor:
        """Rows of entities ``index`` (any shape ``S``) → ``(*S, De)``; the whole table when None."""
        return self.node_emb.weight if index is None else self.node_emb(index)

    def relation_rows(self, index: Tensor | None = None) -> Tensor:
        """Rows of relations ``index`` → ``(*S, Dr)``; the whole table when None."""
        return self.rel_emb.weight if index is None else self.rel_emb(index)

    def as_candidates(self, rows: Tensor) -> Tensor:
        """Entity rows ``(*S, De)`` as answer candidates ``(*S, D)``."""
        return rows

    def tail_query_from(self, head: Tensor, rel: Tensor) -> Tensor:
        """Query of ``(head, rel, ?)`` from rows ``(B, De)``, ``(B, Dr)`` → ``(B, D)``."""
        raise NotImplementedError

    def head_query_from(self, rel: Tensor, tail: Tensor) -> Tensor:
        """Query of ``(?, rel, tail)`` from rows → ``(B, D)`` (used only without reciprocal relations)."""
        raise NotImplementedError

    def match(self, query: Tensor, cand: Tensor) -> Tensor:
        """Scores of broadcastable ``query (..., D)`` and ``cand (..., D)`` → ``(...)``."""
        raise NotImplementedError

    def match_all(self, query: Tensor, cand: Tensor) -> Tensor:
        """Scores of every query ``(B, D)`` against every candidate ``(N, D)`` → ``(B, N)``."""
        raise NotImplementedError

    def match_each(self, query: Tensor, cand: Tensor) -> Tensor:
        """Scores of each query ``(B, D)`` against its own candidates ``(B, K, D)`` → ``(B, K)`` (a batched GEMM
        where the score allows it: far fewer passes over the ``(B, K, D)`` block than elementwise scoring)."""
        return self.match(query.unsqueeze(1), cand)

    def n3_factors(self, head: Tensor, rel: Tensor, tail: Tensor) -> list[Tensor]:
        """Moduli of the factors that N3 penalises (``|x|^3``), from rows."""
        raise NotImplementedError(f"N3 regularisation does not apply to {self.name}")

    # ------------------------------------------------------------------------- index-based API
    def candidates(self, index: Tensor | None = None) -> Tensor:
        """Candidate vectors of entities ``index`` → ``(*S, D)``; all entities when None."""
        return self.as_candidates(self.entity_rows(index))

    def tail_query(self, head: Tensor, rel: Tensor) -> Tensor:
        """Query vectors of ``(head, rel, ?)`` → ``(B, D)``."""
        return self.tail_query_from(self.entity_rows(head), self.relation_rows(rel))

    def head_query(self, rel: Tensor, tail: Tensor) -> Tensor:
        """Query vectors of ``(?, rel, tail)`` → ``(B, D)``."""
        return self.head_query_from(self.relation_rows(rel), self.entity_rows(tail))

    def query(self, anchor: Tensor, rel: Tensor, *, predict: str) -> Tensor:
        """Query vectors ``(B, D)`` for predicting the ``predict`` side (``"tail"``: anchor is the head)."""
        if predict == "tail":
            return self.tail_query(anchor, rel)
        if predict != "head":
            raise ValueError(f"predict must be 'head' or 'tail', got {predict!r}")
        if self.reciprocal:
            return self.tail_query(anchor, rel + self.num_base_relations)
        return self.head_query(rel, anchor)

    def score_triples(self, head: Tensor, rel: Tensor, tail: Tensor) -> Tensor:
        """Scores ``(B,)`` of triples (forward direction)."""
        return self.match(self.tail_query(head, rel), self.candidates(tail))

    def score_all(self, anchor: Tensor, rel: Tensor, *, predict: str) -> Tensor:
        """Scores ``(B, E)`` of every entity as the ``predict`` side of ``(anchor, rel)`` (1-vs-all)."""
        return self.match_all(self.query(anchor, rel, predict=predict), self.candidates())

    def export_embeddings(self) -> tuple[Tensor, Tensor]:
        """``(entity (E, De), relation (R', Dr))`` rows as real matrices (complex parts concatenated re | im)."""
        return self.entity_rows().detach().clone(), self.relation_rows().detach().clone()

    def import_embeddings(self, entity: Tensor, relation: Tensor) -> None:
        """Inverse of :meth:`export_embeddings`."""
        _copy(self.node_emb, entity)
        _copy(self.rel_emb, relation)

    def extra_config(self) -> dict[str, float]:
        """Constructor arguments beyond the shared ones (saved with the embeddings)."""
        return {}


def _copy(target: torch.nn.Embedding, value: Tensor) -> None:
    if tuple(value.shape) != tuple(target.weight.shape):
        raise ValueError(f"embedding shape {tuple(value.shape)} != expected {tuple(target.weight.shape)}")
    with torch.no_grad():
        target.weight.copy_(value.to(target.weight))


def _neg_distance_all(query: Tensor, cand: Tensor, p: float) -> Tensor:
    return -torch.cdist(query.unsqueeze(0), cand.unsqueeze(0), p=p).squeeze(0)  # (B, N)


def _neg_l2_all(query: Tensor, cand: Tensor) -> Tensor:
    """``-‖q - c‖₂`` of every ``query (B, D)`` and ``cand (N, D)`` via ``‖q‖² + ‖c‖² - 2 q·c`` (one GEMM)."""
    sq = query.pow(2).sum(-1, keepdim=True) + cand.pow(2).sum(-1) - 2 * (query @ cand.t())  # (B, N)
    return -sq.clamp_min(1e-9).sqrt()


def _dot_each(query: Tensor, cand: Tensor) -> Tensor:
    return torch.bmm(cand, query.unsqueeze(-1)).squeeze(-1)  # (B, K)


def _neg_l2_each(query: Tensor, cand: Tensor) -> Tensor:
    """``-‖q - c‖₂`` of ``query (B, D)`` and ``cand (B, K, D)`` via ``‖q‖² + ‖c‖² - 2 q·c``."""
    sq = query.pow(2).sum(-1, keepdim=True) + cand.pow(2).sum(-1) - 2 * _dot_each(query, cand)  # (B, K)
    return -sq.clamp_min(1e-9).sqrt()


class _ComplexRows:
    """Entity rows ``re | im`` from PyG's two entity tables."""

    node_emb: torch.nn.Embedding
    node_emb_im: torch.nn.Embedding
    hidden_channels: int

    def entity_rows(self, index: Tensor | None = None) -> Tensor:
        if index is None:
            return torch.cat([self.node_emb.weight, self.node_emb_im.weight], dim=-1)  # (E, 2d)
        return torch.cat([self.node_emb(index), self.node_emb_im(index)], dim=-1)  # (*S, 2d)


class TransEModel(KGEMixin, TransE):
    """TransE: ``score = -‖norm(h) + r - norm(t)‖_p`` (PyG normalises entity vectors inside the score)."""

    name = "transe"
    is_distance = True

    def __init__(
        self,
        *,
        num_entities: int,
        num_relations: int,
        dim: int,
        reciprocal: bool = False,
        p_norm: float = 1.0,
        sparse: bool = False,
    ) -> None:
        TransE.__init__(
            self, num_entities, num_relations * (2 if reciprocal else 1), dim, p_norm=p_norm, sparse=sparse
        )
        self._init_kge(num_relations=num_relations, reciprocal=reciprocal, sparse=sparse)

    def as_candidates(self, rows: Tensor) -> Tensor:
        return F.normalize(rows, p=self.p_norm, dim=-1)  # (*S, d)

    def tail_query_from(self, head: Tensor, rel: Tensor) -> Tensor:
        return self.as_candidates(head) + rel  # (B, d)

    def head_query_from(self, rel: Tensor, tail: Tensor) -> Tensor:
        return self.as_candidates(tail) - rel  # (B, d): ‖h + r - t‖ = ‖h - (t - r)‖

    def match(self, query: Tensor, cand: Tensor) -> Tensor:
        return -(query - cand).norm(p=self.p_norm, dim=-1)

    def match_all(self, query: Tensor, cand: Tensor) -> Tensor:
        if self.p_norm == 2:
            return _neg_l2_all(query, cand)  # (B, N)
        return _neg_distance_all(query, cand, self.p_norm)  # (B, N)

    def match_each(self, query: Tensor, cand: Tensor) -> Tensor:
        if self.p_norm == 2:
            return _neg_l2_each(query, cand)  # (B, K)
        return self.match(query.unsqueeze(1), cand)

    def extra_config(self) -> dict[str, float]:
        return {"p_norm": float(self.p_norm)}


class DistMultModel(KGEMixin, DistMult):
    """DistMult: ``score = <h, r, t>``."""

    name = "distmult"
    supports_n3 = True

    def __init__(
        self,
        *,
        num_entities: int,
        num_relations: int,
        dim: int,
        reciprocal: bool = False,
        sparse: bool = False,
    ) -> None:
        DistMult.__init__(self, num_entities, num_relations * (2 if reciprocal else 1), dim, sparse=sparse)
        self._init_kge(num_relations=num_relations, reciprocal=reciprocal, sparse=sparse)

    def tail_query_from(self, head: Tensor, rel: Tensor) -> Tensor:
        return head * rel  # (B, d)

    def head_query_from(self, rel: Tensor, tail: Tensor) -> Tensor:
        return rel * tail  # (B, d)

    def match(self, query: Tensor, cand: Tensor) -> Tensor:
        return (query * cand).sum(dim=-1)

    def match_all(self, query: Tensor, cand: Tensor) -> Tensor:
        return query @ cand.t()  # (B, N)

    def match_each(self, query: Tensor, cand: Tensor) -> Tensor:
        return _dot_each(query, cand)  # (B, K)

    def n3_factors(self, head: Tensor, rel: Tensor, tail: Tensor) -> list[Tensor]:
        return [head.abs(), rel.abs(), tail.abs()]


def _modulus(rows: Tensor) -> Tensor:
    re, im = rows.chunk(2, dim=-1)
    return torch.sqrt(re * re + im * im + 1e-12)


class ComplExModel(_ComplexRows, KGEMixin, ComplEx):
    """ComplEx: ``score = Re(<h, r, conj(t)>)``; rows are ``re | im``."""

    name = "complex"
    is_complex = True
    supports_n3 = True

    def __init__(
        self,
        *,
        num_entities: int,
        num_relations: int,
        dim: int,
        reciprocal: bool = False,
        sparse: bool = False,
    ) -> None:
        ComplEx.__init__(self, num_entities, num_relations * (2 if reciprocal else 1), dim, sparse=sparse)
        self._init_kge(num_relations=num_relations, reciprocal=reciprocal, sparse=sparse)

    def relation_rows(self, index: Tensor | None = None) -> Tensor:
        if index is None:
            return torch.cat([self.rel_emb.weight, self.rel_emb_im.weight], dim=-1)  # (R', 2d)
        return torch.cat([self.rel_emb(index), self.rel_emb_im(index)], dim=-1)  # (*S, 2d)

    def tail_query_from(self, head: Tensor, rel: Tensor) -> Tensor:
        h_re, h_im = head.chunk(2, dim=-1)  # (B, d)
        r_re, r_im = rel.chunk(2, dim=-1)  # (B, d)
        return torch.cat([h_re * r_re - h_im * r_im, h_im * r_re + h_re * r_im], dim=-1)  # (B, 2d)

    def head_query_from(self, rel: Tensor, tail: Tensor) -> Tensor:
        t_re, t_im = tail.chunk(2, dim=-1)  # (B, d)
        r_re, r_im = rel.chunk(2, dim=-1)  # (B, d)
        return torch.cat([r_re * t_re + r_im * t_im, r_re * t_im - r_im * t_re], dim=-1)  # (B, 2d)

    def match(self, query: Tensor, cand: Tensor) -> Tensor:
        return (query * cand).sum(dim=-1)

    def match_all(self, query: Tensor, cand: Tensor) -> Tensor:
        return query @ cand.t()  # (B, N)

    def match_each(self, query: Tensor, cand: Tensor) -> Tensor:
        return _dot_each(query, cand)  # (B, K)

    def n3_factors(self, head: Tensor, rel: Tensor, tail: Tensor) -> list[Tensor]:
        return [_modulus(head), _modulus(rel), _modulus(tail)]

    def import_embeddings(self, entity: Tensor, relation: Tensor) -> None:
        d = self.hidden_channels
        _copy(self.node_emb, entity[:, :d])
        _copy(self.node_emb_im, entity[:, d:])
        _copy(self.rel_emb, relation[:, :d])
        _copy(self.rel_emb_im, relation[:, d:])


class RotatEModel(_ComplexRows, KGEMixin, RotatE):
    """RotatE: ``score = -‖h ∘ r - t‖₂`` with ``r = exp(iθ)`` (PyG's norm over all real and imaginary parts).

    ``init_range``: entities start uniform in ``±init_range`` (PyG's xavier init shrinks with the number of
    entities, which puts every entity of a large KB almost at the origin).
    """

    name = "rotate"
    is_complex = True
    is_distance = True

    def __init__(
        self,
        *,
        num_entities: int,
        num_relations: int,
        dim: int,
        reciprocal: bool = False,
        init_range: float | None = None,
        sparse: bool = False,
    ) -> None:
        RotatE.__init__(
            self, num_entities, num_relations * (2 if reciprocal else 1), dim, margin=0.0, sparse=sparse
        )
        self._init_kge(num_relations=num_relations, reciprocal=reciprocal, sparse=sparse)
        self.init_range = init_range
        if init_range is not None:
            torch.nn.init.uniform_(self.node_emb.weight, -init_range, init_range)
            torch.nn.init.uniform_(self.node_emb_im.weight, -init_range, init_range)

    @staticmethod
    def _rotate(entity: Tensor, theta: Tensor, *, inverse: bool) -> Tensor:
        re, im = entity.chunk(2, dim=-1)  # (B, d)
        cos, sin = torch.cos(theta), torch.sin(theta)  # (B, d)
        if inverse:
            sin = -sin
        return torch.cat([re * cos - im * sin, re * sin + im * cos], dim=-1)  # (B, 2d)

    def tail_query_from(self, head: Tensor, rel: Tensor) -> Tensor:
        return self._rotate(head, rel, inverse=False)  # h ∘ r

    def head_query_from(self, rel: Tensor, tail: Tensor) -> Tensor:
        return self._rotate(tail, rel, inverse=True)  # t ∘ conj(r): ‖h ∘ r - t‖ = ‖h - t ∘ conj(r)‖

    def match(self, query: Tensor, cand: Tensor) -> Tensor:
        return -(query - cand).norm(p=2, dim=-1)

    def match_all(self, query: Tensor, cand: Tensor) -> Tensor:
        return _neg_l2_all(query, cand)  # (B, N)

    def match_each(self, query: Tensor, cand: Tensor) -> Tensor:
        return _neg_l2_each(query, cand)  # (B, K)

    def import_embeddings(self, entity: Tensor, relation: Tensor) -> None:
        d = self.hidden_channels
        _copy(self.node_emb, entity[:, :d])
        _copy(self.node_emb_im, entity[:, d:])
        _copy(self.rel_emb, relation)

    def extra_config(self) -> dict[str, float]:
        return {} if self.init_range is None else {"init_range": float(self.init_range)}


MODEL_CLASSES: dict[str, type[KGEMixin]] = {
    "transe": TransEModel,
    "distmult": DistMultModel,
    "complex": ComplExModel,
    "rotate": RotatEModel,
}

KGEModel = TransEModel | DistMultModel | ComplExModel | RotatEModel


def build_kge_model(
    name: str,
    *,
    num_entities: int,
    num_relations: int,
    dim: int,
    reciprocal: bool = False,
    sparse: bool = False,
    **kwargs: float,
) -> KGEModel:
    """A KGE model by name (``transe``, ``distmult``, ``complex``, ``rotate``); ``kwargs`` go to its class.

    ``num_relations`` counts the KB's relations; with ``reciprocal`` the model holds ``2 * num_relations``.
    """
    key = name.strip().lower()
    if key not in MODEL_CLASSES:
        raise ValueError(f"unknown KGE model {name!r}; expected one of {', '.join(MODELS)}")
    if num_entities < 1 or num_relations < 1 or dim < 1:
        raise ValueError(
            f"need num_entities, num_relations and dim >= 1, got {num_entities}, {num_relations}, {dim}"
        )
    cls = MODEL_CLASSES[key]
    return cls(  # type: ignore[call-arg, return-value]
        num_entities=num_entities,
        num_relations=num_relations,
        dim=dim,
        reciprocal=reciprocal,
        sparse=sparse,
        **kwargs,
    )


# ----------------------------------------------------------------------------------------------- losses
def adversarial_weights(negative: Tensor, temperature: float) -> Tensor:
    """Self-adversarial weights ``softmax(α · score)`` over each row of negatives (no gradient); uniform if α = 0."""
    if temperature <= 0:
        return torch.full_like(negative, 1.0 / negative.shape[-1])
    return torch.softmax(temperature * negative.detach(), dim=-1)  # (B, K)


def negative_sampling_loss(
    positive: Tensor,
    negative: Tensor,
    *,
    loss: str = "nssa",
    margin: float = 0.0,
    adversarial_temperature: float = 0.0,
) -> Tensor:
    """Loss of positive scores ``(B,)`` against their sampled negatives ``(B, K)`` (scores: higher = better).

    * ``nssa``: ``-log σ(γ + s⁺) - Σ_k w_k log σ(-(γ + s⁻_k))``, halved as in Sun et al.'s code; ``w`` are
      self-adversarial weights with temperature ``α`` (uniform when ``α = 0``, which is the plain logistic /
      softplus loss when ``γ = 0``).
    * ``margin``: ``Σ_k w_k max(0, γ - s⁺ + s⁻_k)``.
    * ``ce``: cross-entropy of the positive among ``[s⁺, s⁻_1..K]`` (``γ``, ``α`` unused).
    """
    if loss == "ce":
        logits = torch.cat([positive.unsqueeze(-1), negative], dim=-1)  # (B, 1 + K)
        return F.cross_entropy(logits, torch.zeros_like(positive, dtype=torch.long))
    weights = adversarial_weights(negative, adversarial_temperature)  # (B, K)
    if loss == "nssa":
        pos = -F.logsigmoid(margin + positive)  # (B,)
        neg = -(weights * F.logsigmoid(-(margin + negative))).sum(dim=-1)  # (B,)
        return (pos.mean() + neg.mean()) / 2
    if loss == "margin":
        return (weights * F.relu(margin - positive.unsqueeze(-1) + negative)).sum(dim=-1).mean()
    raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")


def n3_penalty(model: KGEMixin, head: Tensor, rel: Tensor, tail: Tensor) -> Tensor:
    """N3 regulariser (Lacroix et al. 2018): ``Σ |factor|³ / B`` over the batch's head, relation and tail ids."""
    return n3_penalty_rows(model, model.entity_rows(head), model.relation_rows(rel), model.entity_rows(tail))


def n3_penalty_rows(model: KGEMixin, head: Tensor, rel: Tensor, tail: Tensor) -> Tensor:
    """:func:`n3_penalty` from rows already looked up: ``(B, De)``, ``(B, Dr)``, ``(B, De)``."""
    if not model.supports_n3:
        raise ValueError(f"N3 regularisation applies to distmult and complex, not {model.name}")
    factors = model.n3_factors(head, rel, tail)
    return sum(f.pow(3).sum() for f in factors) / head.shape[0]  # type: ignore[return-value]


def default_rotate_init(*, margin: float, dim: int) -> float:
    """Sun et al.'s entity init range ``(γ + ε) / dim`` with ``ε = 2``."""
    return (margin + 2.0) / dim


__all__ = [
    "DIRECTIONS",
    "LOSSES",
    "MODELS",
    "ComplExModel",
    "DistMultModel",
    "KGEMixin",
    "KGEModel",
    "RotatEModel",
    "TransEModel",
    "adversarial_weights",
    "build_kge_model",
    "default_rotate_init",
    "n3_penalty",
    "n3_penalty_rows",
    "negative_sampling_loss",
]
