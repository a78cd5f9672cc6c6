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
        node_relevance: ``(N,)`` relevance of each KB node to its example's text (fused variants; ``(N, C)`` for
            multiple choice), else ``None``.
        graph_attention: ``(N,)`` pooling attention weight of each KB node within its graph (sums to 1 per
            non-empty graph; ``(N, C)`` for multiple choice), else ``None``.
        pooled: the representation the head read: ``(B, D)``, ``(B, T, D)`` for token classification,
            ``(B, C, D)`` for multiple choice; else ``None``.
    """

    logits: Tensor
    loss: Tensor | None = None
    node_relevance: Tensor | None = None
    graph_attention: Tensor | None = None
    pooled: Tensor | None = None
