"""A query-conditioned path GNN for link prediction (NBFNet, Zhu et al., NeurIPS 2021).

For a query ``(h, r, ?)`` every node's state starts at the **boundary condition**: the query relation's vector
at ``h`` and zeros elsewhere. Each of ``layers`` generalised Bellman-Ford steps sends, along every edge
``u -e-> v`` of the known graph (both directions; the inverse of relation ``e`` is ``e + R``), the message
``x_u * w_e`` (DistMult: a path's messages compose its relations multiplicatively), sums the messages per target
together with the boundary, and updates through a linear map, layer norm and ReLU with a residual. A candidate
``v`` scores ``MLP([x_v ; q])``. Every entity of the graph is scored in one pass per query, so the model ranks
entities it never saw in training (GraIL's inductive splits) from the facts around them. Relation ids must mean
the same relation in the training and inference graphs (GraIL's splits share them by key:
:func:`kgreason.kge.inductive.load_inductive`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(kw_only=True)
class PathLinkConfig:
    """Shape of the path GNN (NBFNet's inductive settings: 6 layers of width 32).

    Attributes:
        hidden: node-state width.
        layers: Bellman-Ford steps (the longest path a score can use).
        layer_norm: layer norm after each step's linear map.
        short_cut: residual connection around each step.
    """

    hidden: int = 32
    layers: int = 6
    layer_norm: bool = True
    short_cut: bool = True

    def validate(self) -> PathLinkConfig:
        if self.hidden < 1 or self.layers < 1:
            raise ValueError(f"path GNN needs hidden >= 1 and layers >= 1, got {self.hidden}, {self.layers}")
        return self


@dataclass(frozen=True)
class PathGraph:
    """The known facts as directed edges in both directions: ``src``, ``dst``, ``edge_type`` each ``(2n,)``;
    the inverse of relation ``r`` is ``r + num_relations``."""

    num_entities: int
    num_relations: int
    src: Tensor
    dst: Tensor
    edge_type: Tensor

    @classmethod
    def from_triples(cls, triples: Tensor, *, num_entities: int, num_relations: int) -> PathGraph:
        rows = torch.as_tensor(triples, dtype=torch.long).reshape(-1, 3)  # (n, 3)
        h, r, t = rows.unbind(1)
        return cls(
            num_entities=num_entities,
            num_relations=num_relations,
            src=torch.cat([h, t]),
            dst=torch.cat([t, h]),
            edge_type=torch.cat([r, r + num_relations]),
        )

    def _keys(self, src: Tensor, dst: Tensor, edge_type: Tensor) -> Tensor:
        return (src * self.num_entities + dst) * (2 * self.num_relations) + edge_type  # (m,)

    def without(self, triples: Tensor) -> PathGraph:
        """This graph less the edges (both directions) of ``triples (n, 3)``: a training query must not read its
        own answer off the graph (NBFNet removes these easy edges)."""
        rows = torch.as_tensor(triples, dtype=torch.long).reshape(-1, 3)
        h, r, t = rows.unbind(1)
        drop = torch.cat([self._keys(h, t, r), self._keys(t, h, r + self.num_relations)])
        keep = ~torch.isin(self._keys(self.src, self.dst, self.edge_type), drop)  # (2n,)
        return PathGraph(
            num_entities=self.num_entities,
            num_relations=self.num_relations,
            src=self.src[keep],
            dst=self.dst[keep],
            edge_type=self.edge_type[keep],
        )

    def to(self, device: torch.device | str) -> PathGraph:
        return PathGraph(
            num_entities=self.num_entities,
            num_relations=self.num_relations,
            src=self.src.to(device),
            dst=self.dst.to(device),
            edge_type=self.edge_type.to(device),
        )


class PathLinkPredictor(nn.Module):
    """NBFNet over a :class:`PathGraph` (module docstring); ``forward`` scores every node for each query."""

    def __init__(self, *, config: PathLinkConfig, num_relations: int) -> None:
        super().__init__()
        self.config = config.validate()
        self.num_relations = num_relations
        hidden, kinds = config.hidden, 2 * num_relations
        self.query = nn.Embedding(kinds, hidden)
        self.relations = nn.ModuleList(nn.Embedding(kinds, hidden) for _ in range(config.layers))
        self.linears = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(config.layers))
        self.norms = nn.ModuleList(
            nn.LayerNorm(hidden) if config.layer_norm else nn.Identity() for _ in range(config.layers)
        )
        self.mlp = nn.Sequential(nn.Linear(2 * hidden, 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, 1))

    def forward(self, graph: PathGraph, anchor: Tensor, rel: Tensor) -> Tensor:
        """Scores ``(B, N)`` of every node as the answer of ``(anchor (B,), rel (B,), ?)``; ``rel`` in
        ``[0, 2R)`` (``r + R`` asks for heads of ``r``)."""
        b, n = anchor.numel(), graph.num_entities
        q = self.query(rel)  # (B, H)
        boundary = torch.zeros(b, n, q.size(1), device=q.device, dtype=q.dtype)  # (B, N, H)
        boundary[torch.arange(b, device=q.device), anchor] = q
        x = boundary
        for relation, linear, norm in zip(self.relations, self.linears, self.norms, strict=True):
            message = x[:, graph.src] * relation(graph.edge_type)  # (B, E, H)
            summed = boundary.index_add(1, graph.dst, message)  # (B, N, H)
            out = torch.relu(norm(linear(summed)))  # (B, N, H)
            x = out + x if self.config.short_cut else out
        features = torch.cat([x, q.unsqueeze(1).expand(-1, n, -1)], dim=-1)  # (B, N, 2H)
        return self.mlp(features).squeeze(-1)  # (B, N)


class PathLinkScorer:
    """A :class:`~kgreason.kge.evaluate.LinkScorer`: the path GNN over one graph of known facts (head
    prediction as the inverse relation's tail prediction)."""

    def __init__(self, model: PathLinkPredictor, graph: PathGraph, *, batch_size: int = 16) -> None:
        self.model = model
        self.graph = graph.to(next(model.parameters()).device)
        self.batch_size = batch_size

    @property
    def num_entities(self) -> int:
        return self.graph.num_entities

    @torch.no_grad()
    def score_all(self, anchor: Tensor, rel: Tensor, *, predict: str) -> Tensor:
        """``(B, E)`` scores of the queries ``anchor (B,)``, ``rel (B,)`` in base relation ids."""
        was = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        rel = rel + self.model.num_relations if predict == "head" else rel
        parts = [
            self.model(self.graph, a.to(device), r.to(device)).float().cpu()
            for a, r in zip(anchor.split(self.batch_size), rel.split(self.batch_size), strict=True)
        ]
        self.model.train(was)
        return torch.cat(parts) if parts else torch.empty(0, self.num_entities)
