"""Knowledge-graph embeddings: training and filtered link-prediction evaluation.

Modules: :mod:`~kgreason.kge.models` (TransE, DistMult, ComplEx, RotatE on ``torch_geometric.nn.kge`` with
reciprocal relations, 1-vs-all scoring and the shared loss), :mod:`~kgreason.kge.train` (``KGEConfig``,
``KGETrainer``, ``train_kge``), :mod:`~kgreason.kge.evaluate` (filtered, both directions, realistic ranks),
:mod:`~kgreason.kge.embeddings` (save / load keyed by the KB's ids; node features for the fused model) and
:mod:`~kgreason.cli.kge` (``kgreason kge train`` / ``kgreason kge eval``).

Names are exported lazily, so ``import kgreason.kge`` loads neither torch nor PyG.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_kge_model": "models",
    "negative_sampling_loss": "models",
    "n3_penalty": "models",
    "MODELS": "models",
    "KGEConfig": "train",
    "KGETrainer": "train",
    "KGETrainResult": "train",
    "default_config": "train",
    "train_kge": "train",
    "LinkPredictionMetrics": "evaluate",
    "RankMetrics": "evaluate",
    "evaluate_link_prediction": "evaluate",
    "rank_split": "evaluate",
    "KBAlignedScorer": "embeddings",
    "KGEEmbeddings": "embeddings",
    "load_kge": "embeddings",
    "save_kge": "embeddings",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"kgreason.kge.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'kgreason.kge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
