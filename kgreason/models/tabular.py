"""TabularTerm: logits from an example's tabular features (free MLP + sign-constrained monotone part)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class TabularTerm(nn.Module):
    """Logits from an example's tabular features, added to the head's logits.

    Free features (sign 0) go through a small MLP. Signed features enter only the last label's logit, as
    ``Σ_k sign_k · softplus(w_k) · x_k``: their effect is monotone in the direction of their sign by construction
    (and each one's contribution is readable from the weights).

    Shapes:
        features: (B, F) -> logits (B, L)
    """

    def __init__(
        self, *, num_features: int, monotone: Sequence[int], num_labels: int, hidden: int = 64, dropout: float
    ) -> None:
        super().__init__()
        signs = [int(v) for v in monotone] if monotone else [0] * num_features
        if len(signs) != num_features:
            raise ValueError(f"feature_monotone has {len(signs)} signs for num_features={num_features}")
        if any(v not in (-1, 0, 1) for v in signs):
            raise ValueError(f"feature_monotone values must be -1, 0 or +1, got {signs}")
        self.num_labels = num_labels
        sign_t = torch.tensor(signs, dtype=torch.float32)  # (F,)
        self.register_buffer(
            "free_index", torch.nonzero(sign_t == 0).squeeze(-1), persistent=False
        )  # (F - S,) columns of the free features
        self.register_buffer(
            "signed_index", torch.nonzero(sign_t != 0).squeeze(-1), persistent=False
        )  # (S,) columns of the signed features
        self.register_buffer("signs", sign_t[sign_t != 0], persistent=False)  # (S,)
        self.mlp = None
        if self.free_index.numel():
            self.mlp = nn.Sequential(
                nn.Linear(int(self.free_index.numel()), hidden),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, num_labels),
            )
        self.monotone_weight = None
        if self.signed_index.numel():
            self.monotone_weight = nn.Parameter(torch.zeros(int(self.signed_index.numel())))  # (S,)

    def monotone_coefficients(self) -> Tensor:
        """(S,) effective signed weights of the monotone features on the last label's logit."""
        if self.monotone_weight is None:
            return torch.zeros(0)
        return self.signs * nn.functional.softplus(self.monotone_weight)  # (S,)

    def forward(self, features: Tensor) -> Tensor:
        features = features.float()  # (B, F)
        logits = features.new_zeros(features.shape[0], self.num_labels)  # (B, L)
        if self.mlp is not None:
            logits = logits + self.mlp(features[:, self.free_index])  # (B, L)
        if self.monotone_weight is not None:
            margin = (features[:, self.signed_index] * self.monotone_coefficients()).sum(-1)  # (B,)
            logits = logits + nn.functional.pad(
                margin[:, None], (self.num_labels - 1, 0)
            )  # (B, L) last column
        return logits
