"""What every kgreason model returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


@dataclass
class ModelOutput:
    """The output of a model's ``forward(batch)``.

    Attributes:
        logits: ``(B, L)`` for sequence / relation classification, ``(B, T, L)`` for token classification,
            ``(B, C)`` for multiple choice.
        loss: mean loss over the batch when the batch has labels, else ``None``.
        node_relevance: ``(N,)`` relevance of each graph node to its example's text (fused variants), else
            ``None``.
        graph_attention: ``(N,)`` pooling attention weight of each node within its graph, else ``None``.
        pooled: ``(B, D)`` the representation the head read, else ``None``.
    """

    logits: Tensor
    loss: Tensor | None = None
    node_relevance: Tensor | None = None
    graph_attention: Tensor | None = None
    pooled: Tensor | None = None
