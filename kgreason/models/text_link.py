"""Text link prediction: a bi-encoder that embeds ``(head text, relation)`` and ``tail text`` (SimKGC).

Wang et al., *SimKGC: Simple Contrastive Knowledge Graph Completion with Pre-trained Language Models*, ACL 2022:
two BERT towers (one for the query ``head text [SEP] relation``, one for entities), mean pooling, L2
normalisation, cosine scores divided by a learned temperature, and an InfoNCE loss whose negatives are the other
answers of the batch (in-batch), the answers of the previous batches (pre-batch, embeddings kept from those
steps) and the query's own head entity (self-negative), with an additive margin on the positive. Head
prediction is tail prediction with the relation's inverse (``"inverse <relation>"``), so one tower pair serves
both directions. Entities are their name and, where the KB has one, their description (``"name: gloss"``).

Because an entity is only its text, the model scores entities it never saw in training: the inductive setting
(GraIL's splits) needs no change. :class:`TextLinkScorer` precomputes the entity matrix once and answers the
:class:`~kgreason.kge.evaluate.LinkScorer` protocol, so the evaluator of ``kgreason kge eval`` ranks it, and
:meth:`TextLinkScorer.top_k` searches the matrix with faiss. Structure enters through
:class:`NeighbourhoodPrior`: candidates within ``hops`` of the query's head in the known graph get ``weight``
added to their score (SimKGC's neighbour re-ranking), and the query's head itself is ruled out unless the
relation is reflexive in the known graph.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from kgreason.models.model_folder import SavedEncoderModel

if TYPE_CHECKING:
    from kgreason.kb.base import KnowledgeBase

FORMAT = "kgreason.TextLinkPredictor"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"


@dataclass(kw_only=True)
class TextLinkConfig:
    """How the bi-encoder is built and scores.

    Attributes:
        encoder: ``embedded`` (the packaged all-MiniLM-L6-v2), a local folder or a hub id.
        max_length: word pieces per text (query pairs and entity texts).
        shared_towers: one encoder for queries and entities (siamese) instead of two copies (SimKGC).
        temperature: initial τ of ``cos / τ``.
        learn_temperature: τ is a parameter (clamped to >= 0.01, as SimKGC).
        margin: additive margin γ subtracted from the positive's cosine in training.
        pre_batch: previous batches whose entity embeddings serve as extra negatives (0: off).
        self_negatives: the query's own head entity is a negative (one more entity encoded per query).
        descriptions: entity texts hold the KB's descriptions; ``False`` keeps names only (the ablation).
        inverse_prefix: word put before a relation's text for head prediction.
    """

    encoder: str = "embedded"
    max_length: int = 64
    shared_towers: bool = False
    temperature: float = 0.05
    learn_temperature: bool = True
    margin: float = 0.02
    pre_batch: int = 2
    self_negatives: bool = True
    descriptions: bool = True
    inverse_prefix: str = "inverse"


def _clean(text: str) -> str:
    return " ".join(text.replace("_", " ").split())


def entity_text(kb: KnowledgeBase, entity: int, *, descriptions: bool = True) -> str:
    """``"name: description"`` (or the name alone) of ``entity``; an unlabelled NELL key
    ``concept:city:new_york`` reads as ``"new york (city)"``."""
    key = kb.entity_key(entity)
    if not kb.has_label(entity) and key.startswith("concept:") and key.count(":") >= 2:
        _, kind, name = key.split(":", 2)
        label = f"{name} ({kind})"
    else:
        label = kb.entity_label(entity)
    label = _clean(label)
    description = kb.entity_description(entity) if descriptions else None
    return f"{label}: {_clean(description)}" if description else label


def relation_text(kb: KnowledgeBase, relation: int) -> str:
    """The relation's label (KG-BERT's ``relation2text`` where loaded, else a readable form of its key; NELL's
    ``concept:worksfor`` reads ``worksfor``)."""
    return _clean(kb.relation_label(relation).removeprefix("concept:"))


@dataclass(frozen=True)
class LinkTexts:
    """The texts a bi-encoder reads for one KB: one per entity and one per relation (ids are the KB's)."""

    entities: list[str]
    relations: list[str]

    @classmethod
    def from_kb(
        cls, kb: KnowledgeBase, *, descriptions: bool = True, shuffle_seed: int | None = None
    ) -> LinkTexts:
        """Every entity's and relation's text; ``shuffle_seed`` gives each entity another entity's description
        (a seeded permutation of the descriptions over the entities that have one: the shuffle ablation)."""
        entities = [entity_text(kb, e, descriptions=descriptions) for e in range(kb.num_entities)]
        if shuffle_seed is not None and descriptions:
            names = [entity_text(kb, e, descriptions=False) for e in range(kb.num_entities)]
            described = [e for e in range(kb.num_entities) if kb.entity_description(e)]
            glosses = [_clean(kb.entity_description(e) or "") for e in described]
            np.random.default_rng(shuffle_seed).shuffle(glosses)
            for e, gloss in zip(described, glosses, strict=True):
                entities[e] = f"{names[e]}: {gloss}"
        return cls(entities=entities, relations=[relation_text(kb, r) for r in range(kb.num_relations)])

    def query(self, relation: int, *, inverse: bool, prefix: str = "inverse") -> str:
        text = self.relations[relation]
        return f"{prefix} {text}" if inverse else text


@dataclass
class ContrastiveOutput:
    """Loss and logits of one training batch.

    Attributes:
        loss: InfoNCE over every query's candidates plus the reverse (entity -> query) in-batch term.
        logits: (B, C) scaled scores; column ``i`` of the first ``B`` is query ``i``'s answer.
        accuracy: share of queries whose answer scores highest among the unmasked candidates.
    """

    loss: Tensor
    logits: Tensor
    accuracy: float


class TextLinkPredictor(SavedEncoderModel, nn.Module):
    """The query and entity towers (see the module docstring).

    Shapes:
        encode_queries: B (head, relation) text pairs -> (B, H); encode_entities: B texts -> (B, H)
    """

    folder_format = FORMAT
    folder_version = FORMAT_VERSION
    config_file = CONFIG_NAME
    config_section = "text_link"
    config_class = TextLinkConfig
    what = "text link predictor"

    def __init__(
        self,
        *,
        config: TextLinkConfig,
        encoder: nn.Module,
        tokenizer: Any,
        entity_encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.query_encoder = encoder
        if not config.shared_towers and entity_encoder is None:
            import copy

            entity_encoder = copy.deepcopy(encoder)
        self.entity_encoder = None if config.shared_towers else entity_encoder
        # log(1 / τ), SimKGC's parametrisation
        self.log_inv_t = nn.Parameter(
            torch.tensor(math.log(1.0 / config.temperature)), requires_grad=config.learn_temperature
        )
        self._queue: list[tuple[Tensor, Tensor]] = []  # pre-batch: (entity ids (B,), vectors (B, H))

    @property
    def entity_tower(self) -> nn.Module:
        return self.query_encoder if self.entity_encoder is None else self.entity_encoder

    @property
    def device(self) -> torch.device:
        return self.log_inv_t.device

    @property
    def scale(self) -> Tensor:
        """1 / τ, with τ >= 0.01."""
        return self.log_inv_t.exp().clamp(max=100.0)

    def _embed(self, tower: nn.Module, texts: Sequence[str], pairs: Sequence[str] | None = None) -> Tensor:
        enc = self.tokenizer(
            list(texts),
            list(pairs) if pairs is not None else None,
            truncation="longest_first" if pairs is not None else True,
            max_length=self.config.max_length,
            padding=True,
            return_tensors="pt",
        ).to(self.device)
        hidden = tower(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
        return nn.functional.normalize(pooled.float(), dim=-1)  # (B, H)

    def encode_queries(self, heads: Sequence[str], relations: Sequence[str]) -> Tensor:
        return self._embed(self.query_encoder, heads, relations)  # (B, H)

    def encode_entities(self, texts: Sequence[str]) -> Tensor:
        return self._embed(self.entity_tower, texts)  # (B, H)

    def reset_queue(self) -> None:
        self._queue.clear()

    def contrastive(
        self,
        queries: Tensor,
        answers: Tensor,
        anchors: Tensor | None,
        *,
        answer_ids: Tensor,
        anchor_ids: Tensor,
        known: Tensor,
    ) -> ContrastiveOutput:
        """InfoNCE of one batch.

        Args:
            queries: (B, H) query vectors; answers: (B, H) their answers' vectors; anchors: (B, H) the queries'
                head entities' vectors (self-negatives).
            answer_ids, anchor_ids: (B,) entity ids of the answers and the anchors.
            known: (B, B) bool, ``known[i, j]``: entity ``answer_ids[j]`` is a known answer of query ``i``
                (those columns are masked; the diagonal is the positive).
        """
        b = queries.size(0)
        cos = queries @ answers.T  # (B, B)
        eye = torch.eye(b, dtype=torch.bool, device=cos.device)
        cos = cos - self.config.margin * eye  # additive margin on the positive
        masked = known & ~eye  # (B, B) other known answers are not negatives
        columns, masks = [cos], [masked]
        if anchors is not None:  # self-negative: the query's own head, unless it is the answer
            columns.append((queries * anchors).sum(-1, keepdim=True))  # (B, 1)
            masks.append((anchor_ids == answer_ids).unsqueeze(1))
        for ids, vectors in self._queue:  # pre-batch negatives (vectors from earlier steps, no gradient)
            columns.append(queries @ vectors.T)  # (B, P)
            masks.append(ids.unsqueeze(0) == answer_ids.unsqueeze(1))
        # mask after scaling: a -inf times the learned scale would give NaN gradients
        logits = (torch.cat(columns, dim=1) * self.scale).masked_fill(
            torch.cat(masks, 1), float("-inf")
        )  # (B, C)
        labels = torch.arange(b, device=cos.device)
        loss = nn.functional.cross_entropy(logits, labels)
        reverse = logits[:, :b].T  # (B, B) entity -> queries
        loss = loss + nn.functional.cross_entropy(reverse, labels)
        if self.config.pre_batch > 0 and self.training:
            self._queue.append((answer_ids.detach(), answers.detach()))
            del self._queue[: -self.config.pre_batch]
        accuracy = float((logits.argmax(1) == labels).float().mean())
        return ContrastiveOutput(loss=loss, logits=logits, accuracy=accuracy)

    # ---------------------------------------------------------------------------------------- save / load
    def folder_encoder(self) -> nn.Module:
        return self.query_encoder

    @classmethod
    def from_folder_parts(
        cls, *, config: TextLinkConfig, encoder_config: Any, tokenizer: Any
    ) -> TextLinkPredictor:
        from kgreason.encoders.resolve import encoder_from_config

        entity_encoder = None if config.shared_towers else encoder_from_config(encoder_config)
        return cls(
            config=config,
            encoder=encoder_from_config(encoder_config),
            tokenizer=tokenizer,
            entity_encoder=entity_encoder,
        )


def build_text_link_predictor(config: TextLinkConfig) -> TextLinkPredictor:
    """A predictor over ``config.encoder`` (both towers start from the same pretrained weights)."""
    from kgreason.models.encoder import load_encoder_for_training

    parts = load_encoder_for_training(config.encoder)
    return TextLinkPredictor(config=config, encoder=parts.model, tokenizer=parts.tokenizer)


@dataclass
class NeighbourhoodPrior:
    """Structure as a score prior: ``weight`` for candidates within ``hops`` of the query's head in the known
    graph (edges in both directions), and the head itself ruled out unless its relation is reflexive there.

    Built from the known triples (``(n, 3)``, training facts; at inductive test time the inference graph's).
    """

    num_entities: int
    hops: int = 0
    weight: float = 0.0
    reflexive: frozenset[int] = field(default_factory=frozenset)
    _adjacency: Any = field(default=None, repr=False)

    @classmethod
    def from_triples(
        cls, triples: Tensor | np.ndarray, *, num_entities: int, hops: int = 0, weight: float = 0.0
    ) -> NeighbourhoodPrior:
        import scipy.sparse as sp

        rows = np.asarray(triples, dtype=np.int64).reshape(-1, 3)  # (n, 3)
        h, r, t = rows[:, 0], rows[:, 1], rows[:, 2]
        reflexive = frozenset(int(x) for x in np.unique(r[h == t]))
        data = np.ones(2 * len(rows), dtype=np.float32)
        adjacency = sp.csr_matrix(
            (data, (np.concatenate([h, t]), np.concatenate([t, h]))), shape=(num_entities, num_entities)
        )
        adjacency.data[:] = 1.0
        return cls(
            num_entities=num_entities, hops=hops, weight=weight, reflexive=reflexive, _adjacency=adjacency
        )

    def with_weight(self, *, hops: int, weight: float) -> NeighbourhoodPrior:
        return NeighbourhoodPrior(
            num_entities=self.num_entities,
            hops=hops,
            weight=weight,
            reflexive=self.reflexive,
            _adjacency=self._adjacency,
        )

    def apply(self, scores: Tensor, anchor: Tensor, rel: Tensor) -> Tensor:
        """(B, E) scores of queries with heads ``anchor (B,)`` and relations ``rel (B,)`` -> adjusted scores."""
        scores = scores.clone()
        rows = torch.arange(scores.size(0), device=scores.device)
        if self.reflexive:
            keep = torch.tensor([int(r) in self.reflexive for r in rel.tolist()], device=scores.device)
            off = rows[~keep]
            scores[off, anchor[~keep]] = float("-inf")
        else:
            scores[rows, anchor] = float("-inf")
        if self.hops > 0 and self.weight != 0.0 and self._adjacency is not None:
            reach = self._adjacency[anchor.cpu().numpy()]  # (B, E) sparse
            for _ in range(self.hops - 1):
                reach = reach + reach @ self._adjacency
            near = torch.from_numpy((reach > 0).toarray()).to(scores.device)  # (B, E)
            near[rows, anchor] = False
            scores = scores + self.weight * near.to(scores.dtype)
        return scores


class TextLinkScorer:
    """Scores every entity of one KB for batches of queries (:class:`~kgreason.kge.evaluate.LinkScorer`).

    The entity matrix is encoded once (``(E, H)``); a query batch is encoded and multiplied by it. Query vectors
    are kept, so ranking the same queries again (another prior, another protocol) encodes nothing; build a new
    scorer after the model changes.
    """

    def __init__(
        self,
        model: TextLinkPredictor,
        texts: LinkTexts,
        *,
        prior: NeighbourhoodPrior | None = None,
        batch_size: int = 256,
        progress: bool = False,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model
        self.texts = texts
        self.prior = prior
        self.batch_size = batch_size
        self.dtype = dtype
        self.entities = self._encode_entities(progress=progress)  # (E, H)
        self._queries: dict[tuple[str, int, int], Tensor] = {}  # (predict, anchor, relation) -> (H,)
        self._index: Any = None  # faiss index over the entity matrix, built on the first top_k

    @property
    def num_entities(self) -> int:
        return len(self.texts.entities)

    def _autocast(self):
        import contextlib

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.model.device.type, dtype=self.dtype)

    @torch.no_grad()
    def _encode_entities(self, *, progress: bool) -> Tensor:
        from tqdm.auto import tqdm

        was = self.model.training
        self.model.eval()
        texts = self.texts.entities
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = []
        bar = tqdm(
            total=len(texts), desc="encoding entities", unit="entity", disable=not progress, leave=False
        )
        with bar, self._autocast():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                chunks.append(self.model.encode_entities([texts[i] for i in rows]).float().cpu())  # (b, H)
                bar.update(len(rows))
        self.model.train(was)
        if not chunks:
            return torch.empty(0, 0)
        out = torch.empty(len(texts), chunks[0].size(1))
        out[torch.tensor(order)] = torch.cat(chunks)
        return out  # (E, H)

    @torch.no_grad()
    def encode_queries(self, anchor: Tensor, rel: Tensor, *, predict: str) -> Tensor:
        """(B, H) vectors of the queries ``(anchor, rel, ?)`` (``predict="tail"``) or ``(?, rel, anchor)``."""
        keys = [(predict, a, r) for a, r in zip(anchor.tolist(), rel.tolist(), strict=True)]
        todo = [k for k in dict.fromkeys(keys) if k not in self._queries]
        if todo:
            was = self.model.training
            self.model.eval()
            inverse = predict == "head"
            heads = [self.texts.entities[a] for _, a, _ in todo]
            prefix = self.model.config.inverse_prefix
            rels = [self.texts.query(r, inverse=inverse, prefix=prefix) for _, _, r in todo]
            with self._autocast():
                vectors = self.model.encode_queries(heads, rels).float().cpu()  # (b, H)
            self.model.train(was)
            self._queries.update(zip(todo, vectors, strict=True))
        if not keys:
            return torch.empty(0, self.entities.size(1))
        return torch.stack([self._queries[k] for k in keys])  # (B, H)

    def score_all(self, anchor: Tensor, rel: Tensor, *, predict: str) -> Tensor:
        """(B, E) cosine scores (+ the prior) of every entity for each query."""
        anchor, rel = anchor.cpu(), rel.cpu()
        scores = self.encode_queries(anchor, rel, predict=predict) @ self.entities.T  # (B, E)
        return self.prior.apply(scores, anchor, rel) if self.prior is not None else scores

    def top_k(
        self, anchor: Tensor, rel: Tensor, *, predict: str, k: int = 10
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best entities of each query with faiss (inner product over the entity matrix; no prior):
        ``(scores (B, k), ids (B, k))``."""
        import faiss

        if self._index is None:  # built once per scorer
            self._index = faiss.IndexFlatIP(self.entities.size(1))
            self._index.add(np.ascontiguousarray(self.entities.numpy(), dtype=np.float32))
        index = self._index
        queries = np.ascontiguousarray(self.encode_queries(anchor, rel, predict=predict).numpy())
        return index.search(queries, min(k, self.num_entities))
