"""KGReasonModel: a pretrained text encoder fused with a relation-aware GNN over each example's subgraph.

The design follows QA-GNN (Yasunaga et al., NAACL 2021): the text becomes one extra **context node** of the
example's knowledge subgraph, every KB node is scored for its **relevance** to the text, and a GNN reasons
jointly over the context node and the KB nodes::

    input_ids ──► encoder (AutoModel) ──► token states (B,T,D) ──────────────────────────┐
                                   └──► [CLS] (B,D) ─► Linear ─► context node c_b ─┐     │
                                                  (graph variant: a learned vector)│     │
    batch.graph (PyG Batch)                                                         ▼     │
      n_id ──► entity features (KGE / names / learned) ─► Linear ─┐       joint graph per example:
      seed_mask ──► node type (context / seed / other) ───────────┤  KB edges r, inverse edges r+R,
                                                                   ▼  c→seed 2R, seed→c 2R+1
                   relevance ρ_i = σ(Bilinear(c_b, h_i))  ──►  h_i + Linear(ρ_i)   (fused variants)
                                                                   ▼
                     RelationalGNN: RGCN / GATv2 × layers, residual + LayerNorm + dropout
                                                                   ▼
          attention pooling over the example's KB nodes, query = context state: α_i = softmax_b(q·k_i)
                                                                   ▼
               graph vector g_b = context state ⊕ Σ α_i v_i  ──────────────────────────►  head ◄─┘
                                      sequence: [CLS] ⊕ g · relation: markers ⊕ g · token: token ⊕ g
                                      choice: per-choice [CLS] ⊕ g  ──►  MLP  ──►  logits, CE loss

The four variants share this code path and differ only in which side exists: ``text`` (encoder + head on
token states, graphs ignored), ``graph`` (no encoder call; a learned context vector), ``fused`` and
``fused_facts`` (identical models; ``fused_facts`` data carries retrieved fact sentences in its text, see
:class:`~kgreason.models.knowledge.KnowledgeFeaturizer`). An example with an empty subgraph has only its
context node, and its pooled graph is zero.

For multiple choice the ``(B, C, T)`` inputs run as ``B·C`` texts; each choice's [CLS] is the context node of
its own copy of the example's graph, so graph reasoning is conditioned on the choice. ``node_relevance`` and
``graph_attention`` are then ``(N, C)`` (one column per choice) instead of ``(N,)``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from kgreason.models.config import HEADS, VARIANTS, ModelConfig
from kgreason.models.gnn import RelationalGNN
from kgreason.models.heads import Head
from kgreason.models.knowledge import NODE_FEATURES, QUERY_ROLES, EntityFeatures
from kgreason.models.output import ModelOutput
from kgreason.tasks.base import IGNORE_INDEX

if TYPE_CHECKING:
    from torch_geometric.data import Batch as GraphBatch

    from kgreason.training.batch import Batch

#: Node types: the example's context node, a seed entity (linked in the text), any other entity.
CONTEXT, SEED, OTHER = 0, 1, 2


def num_edge_types(num_relations: int) -> int:
    """Edge types of the joint graph: KB relations, their inverses, context→seed and seed→context."""
    return 2 * num_relations + 2


@dataclass
class ReasonerOutput:
    """What the graph side gives the head.

    Shapes:
        vector: (G, 2H) context-node state ⊕ pooled graph, one row per graph
        node_relevance: (N,) relevance of each KB node to its text (``None`` without text)
        graph_attention: (N,) pooling weight of each KB node within its graph
    """

    vector: Tensor
    node_relevance: Tensor | None
    graph_attention: Tensor


class EntityEncoder(nn.Module):
    """Global entity ids -> node features of width ``hidden``.

    ``kge`` vectors are a parameter when ``freeze_kge`` is off, else a buffer; ``names`` vectors are always a
    buffer; ``learned`` is an ``nn.Embedding``. Ids ``< 0`` (nodes that are not KB entities, e.g. the entities of a
    story graph) get a learned ``unknown`` vector.
    """

    def __init__(self, *, config: ModelConfig, features: EntityFeatures | None, hidden: int) -> None:
        super().__init__()
        kind = config.node_features
        if kind not in NODE_FEATURES:
            raise ValueError(f"node_features must be one of {', '.join(NODE_FEATURES)}, got {kind!r}")
        self.kind = kind
        self.num_entities = int(config.num_entities)
        self.unknown = nn.Parameter(torch.randn(hidden) * 0.02)  # (H,)
        self.learned = None
        self.proj = None
        self.register_buffer("kge", None)
        self.register_buffer("names", None)
        if kind == "learned":
            if self.num_entities > 0:
                self.learned = nn.Embedding(self.num_entities, hidden)
                nn.init.normal_(self.learned.weight, std=0.02)
            return
        features = features or EntityFeatures()
        want = {"kge": ("kge",), "names": ("names",), "kge+names": ("kge", "names")}[kind]
        width = 0
        for part in want:
            table = getattr(features, part)
            if table is None:
                raise ValueError(
                    f"node_features={kind!r} needs {part} vectors for the {self.num_entities} KB entities: build "
                    "them with kgreason.models.knowledge.build_entity_features(config, kb=kb) and pass "
                    "entity_features=..."
                )
            if table.dim() != 2 or table.size(0) != self.num_entities:
                raise ValueError(
                    f"{part} vectors have shape {tuple(table.shape)}; expected ({self.num_entities}, d) "
                    f"for num_entities={self.num_entities}"
                )
            table = table.detach().float().clone()
            if part == "kge" and not config.freeze_kge:
                self.kge = nn.Parameter(table)  # (E, d_kge) fine-tuned
            else:
                setattr(self, part, table)  # (E, d) fixed buffer
            width += table.size(1)
        self.proj = nn.Linear(width, hidden)

    def forward(self, n_id: Tensor) -> Tensor:
        """(N,) global ids -> (N, H) features."""
        known = n_id >= 0  # (N,)
        if n_id.numel() and int(n_id.max()) >= self.num_entities:
            raise IndexError(
                f"entity id {int(n_id.max())} is out of range: the model was built for num_entities="
                f"{self.num_entities}"
            )
        ids = n_id.clamp(min=0)  # (N,)
        unknown = self.unknown.expand(n_id.numel(), -1)  # (N, H)
        if self.kind == "learned":
            if self.learned is None:
                return unknown
            return torch.where(known[:, None], self.learned(ids), unknown)  # (N, H)
        parts = [table[ids] for table in (self.kge, self.names) if table is not None]  # (N, d_i)
        projected = self.proj(torch.cat(parts, dim=-1))  # (N, H)
        return torch.where(known[:, None], projected, unknown)  # (N, H)


class GraphReasoner(nn.Module):
    """The graph side: context nodes joined to the subgraphs, relevance, the GNN and attention pooling.

    Args:
        config: the model config (``gnn``, ``num_relations``, ``node_features``, ``variant``).
        text_dim: width of the encoder's [CLS] state (0 for the ``graph`` variant: a learned context vector).
        entity_features: KB entity vectors for ``kge`` / ``names`` node features.
    """

    def __init__(self, *, config: ModelConfig, text_dim: int, entity_features: EntityFeatures | None) -> None:
        super().__init__()
        hidden = config.gnn.hidden
        self.hidden = hidden
        self.num_relations = int(config.num_relations)
        self.entities = EntityEncoder(config=config, features=entity_features, hidden=hidden)
        self.node_type = nn.Embedding(3, hidden)
        # query roles of story-graph nodes (``node_role``: 0 other, 1 query head, 2 query tail); zero at start
        self.node_role = nn.Embedding(len(QUERY_ROLES), hidden)
        nn.init.zeros_(self.node_role.weight)
        if text_dim > 0:
            self.context = nn.Linear(text_dim, hidden)
            self.relevance = nn.Bilinear(hidden, hidden, 1)
            self.relevance_proj = nn.Linear(1, hidden)
            self.context_vector = None
        else:
            self.context = None
            self.relevance = None
            self.relevance_proj = None
            self.context_vector = nn.Parameter(torch.randn(hidden) * 0.02)  # (H,)
        self.input_norm = nn.LayerNorm(hidden)
        self.input_dropout = nn.Dropout(config.gnn.dropout)
        self.gnn = RelationalGNN(config=config.gnn, num_edge_types=num_edge_types(self.num_relations))
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    @property
    def out_dim(self) -> int:
        return 2 * self.hidden

    def forward(self, graph: GraphBatch, *, cls: Tensor | None, num_graphs: int) -> ReasonerOutput:
        """Reason over ``num_graphs`` subgraphs (``cls``: (G, D) [CLS] states, ``None`` for the graph variant)."""
        from torch_geometric.utils import scatter, softmax

        n_id = graph.n_id.long()  # (N,)
        num_nodes = n_id.numel()
        device = n_id.device
        batch = graph.batch if num_nodes else n_id.new_zeros(0)  # (N,) graph of each node
        seed = graph.seed_mask.bool() if getattr(graph, "seed_mask", None) is not None else None
        if seed is None:
            seed = torch.ones(num_nodes, dtype=torch.bool, device=device)  # (N,)
        edge_index = graph.edge_index.long()  # (2, E)
        edge_type = graph.edge_type.long()  # (E,)
        if edge_type.numel() and (int(edge_type.min()) < 0 or int(edge_type.max()) >= self.num_relations):
            raise ValueError(
                f"edge_type values must lie in [0, {self.num_relations}) (num_relations of the model config), "
                f"got [{int(edge_type.min())}, {int(edge_type.max())}]"
            )

        # node inputs: KB nodes 0..N-1, then one context node per graph N..N+G-1
        node_type = torch.where(seed, SEED, OTHER)  # (N,)
        h = self.entities(n_id) + self.node_type(node_type)  # (N, H)
        role = getattr(graph, "node_role", None)
        if role is not None:
            h = h + self.node_role(role.long())  # (N, H) who is asked about (a directed query pair)
        if self.context is not None:
            if cls is None:
                raise ValueError("the fused graph side needs the encoder's [CLS] states")
            context = self.context(cls)  # (G, H)
        else:
            context = self.context_vector.expand(num_graphs, -1)  # (G, H)
        context = context + self.node_type.weight[CONTEXT]  # (G, H)
        relevance = None
        if self.relevance is not None:
            relevance = torch.sigmoid(self.relevance(context[batch], h)).squeeze(-1)  # (N,)
            h = h + self.relevance_proj(relevance[:, None])  # (N, H)
        x = self.input_dropout(self.input_norm(torch.cat([h, context])))  # (N + G, H)

        # edges: KB edges, their inverses, context -> seed and seed -> context
        linked = (
            seed | ~_graph_any(seed, batch, num_graphs)[batch]
        )  # (N,) graphs without seeds link all nodes
        nodes = torch.nonzero(linked).squeeze(-1)  # (S,)
        ctx = num_nodes + batch[nodes]  # (S,)
        r = self.num_relations
        src = torch.cat([edge_index[0], edge_index[1], ctx, nodes])  # (2E + 2S,)
        dst = torch.cat([edge_index[1], edge_index[0], nodes, ctx])  # (2E + 2S,)
        types = torch.cat(
            [
                edge_type,
                edge_type + r,
                torch.full_like(nodes, 2 * r),
                torch.full_like(nodes, 2 * r + 1),
            ]
        )  # (2E + 2S,)
        states = self.gnn(x, torch.stack([src, dst]), types)  # (N + G, H)
        node_states, context_states = states[:num_nodes], states[num_nodes:]  # (N, H), (G, H)

        # attention pooling over each graph's KB nodes, the context state as query
        score = (self.query(context_states)[batch] * self.key(node_states)).sum(-1) / math.sqrt(
            self.hidden
        )  # (N,)
        attention = softmax(score, batch, num_nodes=num_graphs)  # (N,) sums to 1 per non-empty graph
        pooled = scatter(
            attention[:, None] * self.value(node_states), batch, dim=0, dim_size=num_graphs, reduce="sum"
        )  # (G, H); zero for empty graphs
        vector = torch.cat([context_states, pooled], dim=-1)  # (G, 2H)
        return ReasonerOutput(vector=vector, node_relevance=relevance, graph_attention=attention)


def _graph_any(mask: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
    """(G,) whether any node of each graph is set in ``mask``."""
    counts = torch.zeros(num_graphs, dtype=torch.long, device=mask.device)  # (G,)
    return counts.index_add(0, batch, mask.long()) > 0


class KGReasonModel(nn.Module):
    """The knowledge-fused model and its baselines (see the module docstring).

    Args:
        config: what to build (:class:`~kgreason.models.config.ModelConfig`).
        encoder: a Hugging Face encoder to use instead of loading ``config.encoder`` (ignored by the ``graph``
            variant).
        tokenizer: its tokenizer (kept for ``save_pretrained``; loaded with the encoder when not given).
        entity_features: KB entity vectors for ``kge`` / ``names`` node features
            (:func:`~kgreason.models.knowledge.build_entity_features`); a tensor ``(E, d)`` is taken as the kind
            ``config.node_features`` names (``kge`` or ``names``).

    Attributes:
        encoder: the Hugging Face encoder (``None`` for the ``graph`` variant).
        reasoner: the graph side (``None`` for the ``text`` variant).
        head: the task head.
    """

    def __init__(
        self,
        config: ModelConfig,
        *,
        encoder: nn.Module | None = None,
        tokenizer: Any = None,
        entity_features: EntityFeatures | Tensor | None = None,
    ) -> None:
        super().__init__()
        _validate(config)
        self.config = config
        self.tokenizer = tokenizer
        self.encoder_source: str | None = None
        text_dim = 0
        if config.variant != "graph":
            if encoder is None:
                from kgreason.models.encoder import load_encoder_for_training

                parts = load_encoder_for_training(config.encoder)
                encoder, self.encoder_source = parts.model, parts.source.name
                self.tokenizer = tokenizer if tokenizer is not None else parts.tokenizer
            text_dim = int(encoder.config.hidden_size)
            self.encoder = encoder
        else:
            self.encoder = None
        self.reasoner: GraphReasoner | None = None
        if config.variant != "text":
            if isinstance(entity_features, Tensor):
                if config.node_features not in ("kge", "names"):
                    raise ValueError(
                        f"node_features={config.node_features!r} takes an EntityFeatures(kge=..., names=...), "
                        "not one tensor"
                    )
                entity_features = EntityFeatures(**{config.node_features: entity_features})
            self.reasoner = GraphReasoner(config=config, text_dim=text_dim, entity_features=entity_features)
        graph_dim = self.reasoner.out_dim if self.reasoner is not None else 0
        self.head = Head(
            kind=config.head,
            num_labels=config.num_labels,
            text_dim=text_dim,
            graph_dim=graph_dim,
            dropout=config.dropout,
        )

    # ------------------------------------------------------------------------------------------- forward
    def forward(self, batch: Batch) -> ModelOutput:
        choice = self.config.head == "choice"
        input_ids, mask, types = batch.input_ids, batch.attention_mask, batch.token_type_ids
        num_examples = int(input_ids.shape[0])
        num_choices = int(input_ids.shape[1]) if choice else 1
        if choice:
            if input_ids.dim() != 3:
                raise ValueError(f"the choice head expects input_ids (B, C, T), got {tuple(input_ids.shape)}")
            input_ids = input_ids.flatten(0, 1)  # (B·C, T)
            mask = mask.flatten(0, 1)  # (B·C, T)
            types = types.flatten(0, 1) if types is not None else None  # (B·C, T)
        rows = int(input_ids.shape[0])  # B, or B·C
        tokens = None
        if self.encoder is not None:
            kwargs = {"input_ids": input_ids, "attention_mask": mask}
            if types is not None:
                kwargs["token_type_ids"] = types
            tokens = self.encoder(**kwargs).last_hidden_state  # (R, T, D)

        graph_vector = relevance = attention = None
        if self.reasoner is not None:
            graph = batch.graph
            if graph is None:
                raise ValueError(
                    f"variant {self.config.variant!r} needs batch.graph: attach subgraphs to the encoded "
                    "dataset with kgreason.models.knowledge.KnowledgeFeaturizer.attach"
                )
            if int(graph.num_graphs) != num_examples:
                raise ValueError(
                    f"batch.graph holds {int(graph.num_graphs)} graphs for {num_examples} examples"
                )
            if choice:
                graph, node_map = _repeat_graphs(graph, num_choices)
            cls = tokens[:, 0] if tokens is not None else None  # (R, D)
            reasoned = self.reasoner(graph, cls=cls, num_graphs=rows)
            graph_vector = reasoned.vector  # (R, 2H)
            relevance, attention = reasoned.node_relevance, reasoned.graph_attention
            if choice:
                relevance = relevance[node_map] if relevance is not None else None  # (N, C)
                attention = attention[node_map]  # (N, C)

        out = self.head(
            tokens=tokens,
            graph=graph_vector,
            marker_positions=batch.marker_positions,
            num_tokens=int(input_ids.shape[1]),
        )
        logits, pooled = out.logits, out.features  # (R, L) / (R, T, L), (R, D) / (R, T, D)
        if choice:
            logits = logits.view(num_examples, num_choices)  # (B, C)
            empty = mask.view(num_examples, num_choices, -1).sum(-1) == 0  # (B, C) padded choices
            logits = logits.masked_fill(empty, torch.finfo(logits.dtype).min)
            pooled = pooled.view(num_examples, num_choices, -1)  # (B, C, D)
        loss = None
        if batch.labels is not None:
            flat = logits.float().reshape(-1, logits.shape[-1])  # (B, L) / (B·T, L)
            loss = nn.functional.cross_entropy(flat, batch.labels.reshape(-1), ignore_index=IGNORE_INDEX)
            if self.config.constraint_weight > 0 and batch.label_masks is not None:
                loss = loss + self.rule_loss(logits, batch.label_masks)
            if self.training and self.encoder is not None:
                from kgreason.models.peft import adalora_regularization

                penalty = adalora_regularization(self.encoder)  # None unless the encoder is AdaLoRA-wrapped
                if penalty is not None:
                    loss = loss + penalty
        return ModelOutput(
            logits=logits,
            loss=loss,
            node_relevance=relevance,
            graph_attention=attention,
            pooled=pooled,
        )

    def rule_loss(self, logits: Tensor, label_masks: Tensor) -> Tensor:
        """The weighted soft rule-constraint loss of ``logits`` (B, L) under ``label_masks`` (B, 2, L)."""
        from kgreason.rules import LabelMasks, soft_constraint_loss

        if logits.dim() != 2 or label_masks.shape != (logits.shape[0], 2, logits.shape[1]):
            raise ValueError(
                f"label_masks {tuple(label_masks.shape)} do not fit logits {tuple(logits.shape)}: expected (B, 2, L)"
            )
        probs = logits.float().softmax(-1)  # (B, L)
        masks = LabelMasks(entailed=label_masks[:, 0], forbidden=label_masks[:, 1])
        return soft_constraint_loss(
            probs, masks, tnorm=self.config.constraint_tnorm, weight=self.config.constraint_weight
        )

    # ------------------------------------------------------------------------------------------- persistence
    def save_pretrained(self, directory: str | os.PathLike[str], *, task_config: dict | None = None) -> Path:
        """Write the model folder (see :mod:`kgreason.models.pretrained`)."""
        from kgreason.models.pretrained import save_pretrained

        return save_pretrained(self, directory, task_config=task_config)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> KGReasonModel:
        """Rebuild a model written by :meth:`save_pretrained` (no original checkpoint needed)."""
        from kgreason.models.pretrained import load_pretrained

        return load_pretrained(directory)


def _validate(config: ModelConfig) -> None:
    if config.variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {config.variant!r}")
    if config.head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}, got {config.head!r}")
    if config.head == "choice" and config.num_labels != 1:
        raise ValueError(
            f"the choice head scores each choice once: num_labels must be 1, got {config.num_labels}"
        )
    if config.num_entities < 0 or config.num_relations < 0:
        raise ValueError("num_entities and num_relations must be >= 0")


def _repeat_graphs(graph: GraphBatch, times: int) -> tuple[GraphBatch, Tensor]:
    """Each graph repeated ``times`` times in place (graph b -> rows b·C .. b·C + C-1), and where every original
    node went: ``(N, C)`` indices into the repeated nodes."""
    from torch_geometric.data import Batch as GraphBatch

    graphs = graph.to_data_list()
    repeated = GraphBatch.from_data_list([g for g in graphs for _ in range(times)])
    ptr = graph.ptr  # (B + 1,)
    new_ptr = repeated.ptr  # (B·C + 1,)
    n = int(ptr[-1])
    batch = graph.batch  # (N,)
    local = torch.arange(n, device=ptr.device) - ptr[batch]  # (N,)
    rows = batch[:, None] * times + torch.arange(times, device=ptr.device)[None, :]  # (N, C)
    return repeated, new_ptr[rows] + local[:, None]  # (N, C)
