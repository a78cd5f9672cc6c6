"""Task heads: what each head reads from the text and graph sides, and the MLP that scores it.

Every head concatenates the parts its variant has (``text`` reads only token states, ``graph`` only the graph
vector, ``fused`` / ``fused_facts`` both), then applies dropout -> Linear -> GELU -> dropout -> Linear:

* ``sequence``: [CLS] ⊕ graph vector -> ``num_labels``;
* ``relation``: the states at the head and tail marker tokens ⊕ graph vector -> ``num_labels``;
* ``token``: each token state ⊕ its example's graph vector (broadcast over tokens) -> ``num_labels`` per token;
* ``choice``: like ``sequence`` over the ``B·C`` (example, choice) rows -> one score per choice.

The graph vector is the example's context-node state ⊕ its attention-pooled graph (see
:class:`~kgreason.models.reasoner.GraphReasoner`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from kgreason.models.config import HEADS


@dataclass
class HeadOutput:
    """Logits and the representation the head's MLP read.

    Shapes:
        logits: (R, L) sequence / relation / choice rows, (R, T, L) token
        features: (R, D), or (R, T, D) token
    """

    logits: Tensor
    features: Tensor


class Head(nn.Module):
    """One task head (see the module docstring).

    Args:
        kind: ``sequence``, ``token``, ``choice`` or ``relation``.
        num_labels: outputs per row (per token for ``token``; 1 for ``choice``).
        text_dim: width of the token states (0 when the variant has no text side).
        graph_dim: width of the graph vector (0 when the variant has no graph side).
        dropout: dropout before each linear layer.
    """

    def __init__(self, *, kind: str, num_labels: int, text_dim: int, graph_dim: int, dropout: float) -> None:
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {kind!r}")
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}")
        if text_dim <= 0 and graph_dim <= 0:
            raise ValueError("a head needs token states, a graph vector, or both")
        self.kind = kind
        text_parts = 2 if kind == "relation" else 1
        in_dim = text_parts * max(text_dim, 0) + max(graph_dim, 0)
        hidden = text_dim if text_dim > 0 else graph_dim
        self.uses_text = text_dim > 0
        self.uses_graph = graph_dim > 0
        self.mlp = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_labels),
        )

    def forward(
        self,
        *,
        tokens: Tensor | None,
        graph: Tensor | None,
        marker_positions: Tensor | None = None,
        num_tokens: int | None = None,
    ) -> HeadOutput:
        """Score rows.

        Shapes:
            tokens: (R, T, D_t) token states (``None`` without a text side)
            graph: (R, D_g) graph vectors (``None`` without a graph side)
            marker_positions: (R, 2) for ``relation``
            num_tokens: T for a ``token`` head without token states (the graph vector is repeated T times)
        """
        parts: list[Tensor] = []
        if self.uses_text:
            if tokens is None:
                raise ValueError(f"the {self.kind} head reads token states, but none were given")
            if self.kind == "relation":
                if marker_positions is None:
                    raise ValueError(
                        "the relation head needs batch.marker_positions (the two entity markers)"
                    )
                rows = torch.arange(tokens.size(0), device=tokens.device)  # (R,)
                parts += [
                    tokens[rows, marker_positions[:, 0]],
                    tokens[rows, marker_positions[:, 1]],
                ]  # (R, D_t) x2
            elif self.kind == "token":
                parts.append(tokens)  # (R, T, D_t)
            else:
                parts.append(tokens[:, 0])  # (R, D_t) [CLS]
        if self.uses_graph:
            if graph is None:
                raise ValueError(f"the {self.kind} head reads graph vectors, but none were given")
            if self.kind == "token":
                width = tokens.size(1) if tokens is not None else int(num_tokens or 1)
                graph = graph[:, None, :].expand(-1, width, -1)  # (R, T, D_g)
            parts.append(graph)
        features = torch.cat(parts, dim=-1)  # (R, D) or (R, T, D)
        return HeadOutput(logits=self.mlp(features), features=features)
