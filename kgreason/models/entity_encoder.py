"""EntityEncoder: a subgraph node's global entity id -> its input feature vector (KGE, name or learned)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kgreason.models.config import ModelConfig
from kgreason.models.knowledge import NODE_FEATURES, EntityFeatures


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
        self.register_buffer("attributes", None)
        if kind == "learned":
            if self.num_entities > 0:
                self.learned = nn.Embedding(self.num_entities, hidden)
                nn.init.normal_(self.learned.weight, std=0.02)
            return
        features = features or EntityFeatures()
        want = {
            "kge": ("kge",),
            "names": ("names",),
            "kge+names": ("kge", "names"),
            "attributes": ("attributes",),
        }[kind]
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
            table = table.detach().float().clone()  # (E, d)
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
        tables = (self.kge, self.names, self.attributes)
        parts = [table[ids] for table in tables if table is not None]  # (N, d_i)
        projected = self.proj(torch.cat(parts, dim=-1))  # (N, H)
        return torch.where(known[:, None], projected, unknown)  # (N, H)
