"""Filtered link-prediction evaluation over both directions with realistic tie handling.

For every evaluation triple ``(h, r, t)`` the model scores all entities as the tail of ``(h, r, ?)`` and as the
head of ``(?, r, t)``. In the **filtered** setting every other entity that forms a known true triple (from
``filter_triples``, usually train + valid + test) is removed from the ranking; the target itself stays. Ranks are
1-based and **realistic**: the mean of the optimistic rank (``1 + #better``) and the pessimistic rank
(``#better + #tied``, the target included), i.e. the expected rank under random tie breaking — the rank PyKEEN
reports as ``realistic``. (PyG's ``KGEModel.test`` ranks tails only, unfiltered, 0-based, ties by sort order.)

GraIL's inductive protocol (Teru et al. 2020) ranks each triple against ``S = 50`` sampled negatives instead of
all entities. With ``negatives = S`` the evaluator also reports that protocol's Hits@k as its exact expectation
over the draws (NBFNet's ``hits@10_50``, Zhu et al. 2021): a query whose filtered rank among its ``C``
candidates is ``1 + b`` has a share ``p = b / C`` of negatives that beat it, and S draws (with replacement) leave
it in the top k with probability ``sum_{i<k} binom(S, i) p^i (1 - p)^(S - i)``. The candidates are the entities
that are neither the target, a filtered known answer, nor the query's own anchor (GraIL never draws it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor

if TYPE_CHECKING:
    from kgreason.kb.base import KnowledgeBase

DEFAULT_KS = (1, 3, 10)


class LinkScorer(Protocol):
    """Anything that scores all entities for a batch of queries (every model in :mod:`kgreason.kge.models`)."""

    @property
    def num_entities(self) -> int: ...

    def score_all(self, anchor: Tensor, rel: Tensor, *, predict: str) -> Tensor: ...


@dataclass(frozen=True)
class RankMetrics:
    """Rank statistics of one direction (or both): MRR, mean rank and Hits@k, over ``count`` ranks."""

    mrr: float
    mean_rank: float
    hits_at: dict[int, float]
    count: int

    @classmethod
    def from_ranks(cls, ranks: Tensor, *, ks: Sequence[int] = DEFAULT_KS) -> RankMetrics:
        """Metrics of realistic 1-based ranks ``(n,)``."""
        ranks = ranks.double()  # (n,)
        if ranks.numel() == 0:
            return cls(
                mrr=float("nan"), mean_rank=float("nan"), hits_at={k: float("nan") for k in ks}, count=0
            )
        return cls(
            mrr=float((1.0 / ranks).mean()),
            mean_rank=float(ranks.mean()),
            hits_at={int(k): float((ranks <= k).double().mean()) for k in ks},
            count=int(ranks.numel()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mrr": self.mrr,
            "mean_rank": self.mean_rank,
            **{f"hits_at_{k}": v for k, v in self.hits_at.items()},
            "count": self.count,
        }


@dataclass(frozen=True)
class LinkPredictionMetrics:
    """Head, tail and both-direction metrics of one evaluation (``both`` pools the head and tail ranks)."""

    head: RankMetrics
    tail: RankMetrics
    both: RankMetrics
    filtered: bool
    ranks: dict[str, Tensor] = field(default_factory=dict, repr=False, compare=False)
    #: GraIL's protocol (module docstring): ``{"negatives": S, "hits_at_k": ...}``; empty unless asked for.
    sampled: dict[str, float] = field(default_factory=dict)

    @property
    def mrr(self) -> float:
        return self.both.mrr

    @property
    def mean_rank(self) -> float:
        return self.both.mean_rank

    @property
    def hits_at(self) -> dict[int, float]:
        return self.both.hits_at

    def to_dict(self) -> dict[str, Any]:
        out = {
            "filtered": self.filtered,
            "rank": "realistic",
            "head": self.head.to_dict(),
            "tail": self.tail.to_dict(),
            "both": self.both.to_dict(),
        }
        if self.sampled:
            out["sampled"] = dict(self.sampled)
        return out

    def to_text(self) -> str:
        """A table: direction × MRR, MR, Hits@k."""
        ks = list(self.both.hits_at)
        header = (
            f"{'side':<6} {'MRR':>7} {'MR':>9} " + " ".join(f"{'H@' + str(k):>7}" for k in ks) + f" {'n':>7}"
        )
        lines = [f"{'filtered' if self.filtered else 'raw'} link prediction, realistic ranks", header]
        for side, m in (("head", self.head), ("tail", self.tail), ("both", self.both)):
            hits = " ".join(f"{m.hits_at[k]:>7.4f}" for k in ks)
            lines.append(f"{side:<6} {m.mrr:>7.4f} {m.mean_rank:>9.2f} {hits} {m.count:>7}")
        if self.sampled:
            n = int(self.sampled["negatives"])
            lines.append(
                f"against {n} sampled negatives (expected): "
                + " ".join(
                    f"H@{k.rsplit('_', 1)[-1]} {v:.4f}" for k, v in self.sampled.items() if k != "negatives"
                )
            )
        return "\n".join(lines)


class TripleFilter:
    """Known answers of every ``(anchor, relation)`` query, both directions, as two CSR tables.

    ``known(anchor, rel, predict=...)`` returns ``(row, entity)`` pairs: for query ``row`` of the batch, entity
    ``entity`` completes a known triple.
    """

    def __init__(self, *, triples: Tensor, num_entities: int, num_relations: int) -> None:
        triples = torch.as_tensor(triples, dtype=torch.long).reshape(-1, 3)  # (n, 3)
        if triples.numel() and (int(triples[:, 1].max()) >= num_relations or int(triples[:, 1].min()) < 0):
            raise ValueError(f"filter triples hold relation ids outside 0..{num_relations - 1}")
        if triples.numel() and (
            int(triples[:, [0, 2]].max()) >= num_entities or int(triples[:, [0, 2]].min()) < 0
        ):
            raise ValueError(f"filter triples hold entity ids outside 0..{num_entities - 1}")
        self.num_entities = num_entities
        self.num_relations = num_relations
        h, r, t = triples.unbind(dim=1)  # (n,) each
        self._tail = self._csr(h * num_relations + r, t)  # answers of (h, r, ?)
        self._head = self._csr(t * num_relations + r, h)  # answers of (?, r, t)

    @staticmethod
    def _csr(keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        pairs = torch.unique(torch.stack([keys, values], dim=1), dim=0)  # (m, 2) sorted by key, then value
        ukeys, counts = torch.unique_consecutive(pairs[:, 0], return_counts=True)  # (u,)
        starts = torch.cumsum(counts, dim=0) - counts  # (u,)
        return ukeys, starts, counts, pairs[:, 1].contiguous()

    def known(self, anchor: Tensor, rel: Tensor, *, predict: str) -> tuple[Tensor, Tensor]:
        """``(row (m,), entity (m,))`` of the known answers of each query of the batch."""
        ukeys, starts, counts, values = self._tail if predict == "tail" else self._head
        keys = anchor.cpu() * self.num_relations + rel.cpu()  # (B,)
        if ukeys.numel() == 0:
            empty = torch.empty(0, dtype=torch.long)
            return empty, empty
        pos = torch.searchsorted(ukeys, keys).clamp(max=ukeys.numel() - 1)  # (B,)
        found = ukeys[pos] == keys  # (B,)
        lengths = torch.where(found, counts[pos], torch.zeros_like(pos))  # (B,)
        rows = torch.repeat_interleave(torch.arange(keys.numel()), lengths)  # (m,)
        offsets = torch.arange(rows.numel()) - torch.repeat_interleave(
            torch.cumsum(lengths, 0) - lengths, lengths
        )
        entities = values[torch.repeat_interleave(starts[pos], lengths) + offsets]  # (m,)
        return rows, entities


def sampled_hits(ranks: Tensor, candidates: Tensor, *, negatives: int, k: int) -> Tensor:
    """Expected Hits@k ``(n,)`` against ``negatives`` draws from ``candidates (n,)`` entities, given realistic
    filtered ranks ``(n,)`` among them (module docstring)."""
    from math import comb

    p = ((ranks.double() - 1) / candidates.double().clamp(min=1)).clamp(
        0, 1
    )  # (n,) share of beating negatives
    total = torch.zeros_like(p)
    for i in range(min(k, negatives + 1)):
        total += comb(negatives, i) * p**i * (1 - p) ** (negatives - i)
    return total  # (n,)


def candidate_counts(
    num_entities: int, anchor: Tensor, targets: Tensor, exclude: tuple[Tensor, Tensor] | None
) -> Tensor:
    """Negatives a query can draw ``(B,)``: entities other than its target, its anchor and its known answers."""
    b = targets.numel()
    count = torch.full((b,), num_entities - 1, dtype=torch.long)
    anchor, targets = anchor.cpu(), targets.cpu()
    count -= (anchor != targets).long()
    if exclude is not None and exclude[0].numel():
        row, entity = (x.cpu() for x in exclude)
        drop = (entity != targets[row]) & (entity != anchor[row])
        count -= torch.zeros(b, dtype=torch.long).index_add_(0, row[drop], torch.ones_like(row[drop]))
    return count  # (B,)


def realistic_ranks(
    scores: Tensor, targets: Tensor, *, exclude: tuple[Tensor, Tensor] | None = None
) -> Tensor:
    """Realistic 1-based ranks ``(B,)`` of ``targets (B,)`` in ``scores (B, E)`` (higher score = better).

    ``exclude`` = ``(row, entity)`` pairs removed from the ranking (the filtered setting); a pair that names
    the row's target is ignored, so the target always stays. NaN scores rank last.
    """
    scores = torch.nan_to_num(scores.float(), nan=float("-inf"))  # (B, E)
    rows = torch.arange(scores.shape[0], device=scores.device)
    target_score = scores[rows, targets].unsqueeze(1)  # (B, 1)
    better = (scores > target_score).sum(dim=1)  # (B,)
    tied = (scores == target_score).sum(dim=1)  # (B,) includes the target itself
    if exclude is not None and exclude[0].numel():
        row, entity = (x.to(scores.device) for x in exclude)
        keep = entity != targets[row]  # never drop the target
        row, entity = row[keep], entity[keep]
        ex_scores = scores[row, entity]  # (m,)
        better = better - torch.zeros_like(better).index_add_(
            0, row, (ex_scores > target_score[row, 0]).long()
        )
        tied = tied - torch.zeros_like(tied).index_add_(0, row, (ex_scores == target_score[row, 0]).long())
    optimistic = better + 1
    pessimistic = better + tied
    return (optimistic + pessimistic).double() / 2  # (B,)


@torch.no_grad()
def evaluate_link_prediction(
    model: LinkScorer,
    *,
    triples: Tensor,
    filter_triples: Tensor | None = None,
    num_relations: int | None = None,
    batch_size: int = 256,
    ks: Sequence[int] = DEFAULT_KS,
    device: str | torch.device | None = None,
    progress: bool = False,
    keep_ranks: bool = False,
    negatives: int = 0,
) -> LinkPredictionMetrics:
    """Filtered (or raw, when ``filter_triples`` is None) MRR, mean rank and Hits@k of ``triples (n, 3)``.

    ``filter_triples`` should hold every known true triple (train + valid + test); ``num_relations`` defaults
    to the model's ``num_base_relations`` (or the largest relation id seen + 1). ``negatives > 0`` adds GraIL's
    protocol: expected Hits@k against that many sampled negatives (``metrics.sampled``; module docstring).
    """
    triples = torch.as_tensor(triples, dtype=torch.long).reshape(-1, 3)  # (n, 3)
    num_entities = int(model.num_entities)
    if num_relations is None:
        num_relations = getattr(model, "num_base_relations", None)
    if num_relations is None:
        both = triples if filter_triples is None else torch.cat([triples, torch.as_tensor(filter_triples)])
        num_relations = int(both[:, 1].max()) + 1 if both.numel() else 1
    if triples.numel() and int(triples[:, [0, 2]].max()) >= num_entities:
        raise ValueError(f"evaluation triples hold entity ids >= the model's {num_entities} entities")
    filt = None
    if filter_triples is not None:
        filt = TripleFilter(triples=filter_triples, num_entities=num_entities, num_relations=num_relations)
    if device is None:
        params = getattr(model, "parameters", None)
        first = next(iter(params()), None) if callable(params) else None
        device = first.device if first is not None else torch.device("cpu")
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    ranks: dict[str, list[Tensor]] = {"head": [], "tail": []}
    candidates: list[Tensor] = []
    batches = triples.split(batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="evaluating", unit="batch", leave=False)
    try:
        for batch in batches:
            h, r, t = batch.to(device).unbind(dim=1)  # (B,) each
            for predict, anchor, target in (("tail", h, t), ("head", t, h)):
                scores = model.score_all(anchor, r, predict=predict)  # (B, E)
                exclude = filt.known(anchor, r, predict=predict) if filt is not None else None
                ranks[predict].append(realistic_ranks(scores, target, exclude=exclude).cpu())
                if negatives > 0:
                    candidates.append(candidate_counts(num_entities, anchor, target, exclude))
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    head = torch.cat(ranks["head"]) if ranks["head"] else torch.empty(0)  # (n,)
    tail = torch.cat(ranks["tail"]) if ranks["tail"] else torch.empty(0)  # (n,)
    sampled: dict[str, float] = {}
    if negatives > 0 and candidates:
        # ranks were appended tail, head per batch: interleave the same way
        order = [r for pair in zip(ranks["tail"], ranks["head"], strict=True) for r in pair]
        pooled, counts = torch.cat(order), torch.cat(candidates)
        sampled = {"negatives": float(negatives)}
        for k in ks:
            sampled[f"hits_at_{k}"] = float(sampled_hits(pooled, counts, negatives=negatives, k=k).mean())
    return LinkPredictionMetrics(
        head=RankMetrics.from_ranks(head, ks=ks),
        tail=RankMetrics.from_ranks(tail, ks=ks),
        both=RankMetrics.from_ranks(torch.cat([head, tail]), ks=ks),
        filtered=filt is not None,
        ranks={"head": head, "tail": tail} if keep_ranks else {},
        sampled=sampled,
    )


def rank_split(
    scorer: LinkScorer,
    kb: KnowledgeBase,
    *,
    split: str = "test",
    triples: Tensor | None = None,
    negatives: int = 0,
    batch_size: int = 128,
    progress: bool = False,
) -> LinkPredictionMetrics:
    """Filtered metrics of ``kb``'s ``split`` triples (or of ``triples (n, 3)``) over all of ``kb``'s
    entities, every split of ``kb`` filtering, ranks kept (for paired probes)."""
    return evaluate_link_prediction(
        scorer,
        triples=kb.triples(split) if triples is None else triples,
        filter_triples=kb.triples(),
        num_relations=kb.num_relations,
        batch_size=batch_size,
        negatives=negatives,
        keep_ranks=True,
        progress=progress,
    )
