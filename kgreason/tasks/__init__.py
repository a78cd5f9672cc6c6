"""Task definitions: sequence, token and relation classification, and multiple choice.

Names are imported on first use, so ``import kgreason.tasks`` loads nothing heavy.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "build_task": "kgreason.tasks.registry",
    "tasks": "kgreason.tasks.registry",
    "Task": "kgreason.tasks.base",
    "TaskMetrics": "kgreason.tasks.base",
    "EncodedExample": "kgreason.tasks.base",
    "EncodedDataset": "kgreason.tasks.base",
    "LabelError": "kgreason.tasks.base",
    "IGNORE_INDEX": "kgreason.tasks.base",
    "ExampleError": "kgreason.tasks.sequence",
    "SequenceClassificationTask": "kgreason.tasks.sequence",
    "TokenClassificationTask": "kgreason.tasks.token",
    "RelationClassificationTask": "kgreason.tasks.relation",
    "MultipleChoiceTask": "kgreason.tasks.choice",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
