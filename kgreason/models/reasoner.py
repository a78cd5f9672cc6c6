"""GraphReasoner: the graph side of :class:`~kgreason.models.fused.KGReasonModel`.

Each example's text joins its knowledge subgraph as one context node (QA-GNN): KB nodes are scored for their
relevance to the text, a :class:`~kgreason.models.gnn.RelationalGNN` runs over the joint graph, and attention
pooling with the context state as query gives the graph vector the head reads (:class:`ReasonerOutput`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from kgreason.models.config import ModelConfig
from kgreason.models.entity_encoder import EntityEncoder
from kgreason.models.gnn import RelationalGNN
from kgreason.models.knowledge import NODE_STATUS, QUERY_ROLES, EntityFeatures

if TYPE_CHECKING:
    from torch_geometric.data import Batch as GraphBatch

#: Node types: the example's context node, a seed entity (linked in the text), any other entity.
CONTEXT, SEED, OTHER = 0, 1, 2


def num_edge_types(num_relations: int) -> int:
    """Edge types of the joint graph: KB relations, their inverses, context→seed and seed→context."""
    return 2 * num_relations + 2


@dataclass
class ReasonerOutput:
    """What the graph side gives the head.

    Shapes:
        vector: (G, 2H) context-node state ⊕ pooled graph (⊕ mean seed-node state with ``seed_readout``: (G, 3H)),
            one row per graph
        node_relevance: (N,) relevance of each KB node to its text (``None`` without text)
        graph_attention: (N,) pooling weight of each KB node within its graph
    """

    vector: Tensor
    node_relevance: Tensor | None
    graph_attention: Tensor


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
        # known outcomes of nodes (``node_status``: 0 unknown, 1 negative, 2 positive); zero at start
        self.node_status = None
        if config.node_status:
            self.node_status = nn.Embedding(len(NODE_STATUS), hidden)
            nn.init.zeros_(self.node_status.weight)
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
        self.seed_readout = bool(config.seed_readout)

    @property
    def out_dim(self) -> int:
        return (3 if self.seed_readout else 2) * self.hidden

    def forward(self, graph: GraphBatch, *, cls: Tensor | None, num_graphs: int) -> ReasonerOutput:
        """Reason over ``num_graphs`` subgraphs (``cls``: (G, D) [CLS] states, ``None`` for the graph variant)."""
        from torch_geometric.utils import scatter, softmax

        n_id = graph.n_id.long()  # (N,)
        num_nodes = n_id.numel()  # N
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
        status = getattr(graph, "node_status", None)
        if self.node_status is not None and status is not None:
            h = h + self.node_status(status.long())  # (N, H) what is known of each node's outcome
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
        parts = [context_states, pooled]
        if self.seed_readout:
            seeds = scatter(
                node_states[seed], batch[seed], dim=0, dim_size=num_graphs, reduce="mean"
            )  # (G, H) mean state of each graph's seed nodes (node classification: the node itself)
            parts.append(seeds)
        vector = torch.cat(parts, dim=-1)  # (G, 2H) or (G, 3H)
        return ReasonerOutput(vector=vector, node_relevance=relevance, graph_attention=attention)


def _graph_any(mask: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
    """(G,) whether any node of each graph is set in ``mask``."""
    counts = torch.zeros(num_graphs, dtype=torch.long, device=mask.device)  # (G,)
    return counts.index_add(0, batch, mask.long()) > 0
