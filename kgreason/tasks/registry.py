"""The registry of tasks and :func:`build_task`.

Installed packages add tasks through the entry-point group ``kgreason.tasks``::

    [project.entry-points."kgreason.tasks"]
    span_extraction = "my_pkg.tasks:SpanExtractionTask"
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from kgreason.core.errors import ConfigError
from kgreason.core.registry import Registry, did_you_mean
from kgreason.tasks.base import Task

#: Registered task classes (built-ins plus the ``kgreason.tasks`` entry points). Each built-in also answers to a
#: versioned name (``kgreason.SequenceClassification.v1``); saved models carry the short name.
tasks: Registry[type[Task]] = Registry(kind="task", entry_point_group="kgreason.tasks")

tasks.register(
    "sequence_classification",
    aliases=("kgreason.SequenceClassification.v1",),
    obj="kgreason.tasks.sequence:SequenceClassificationTask",
)
tasks.register(
    "token_classification",
    aliases=("kgreason.TokenClassification.v1",),
    obj="kgreason.tasks.token:TokenClassificationTask",
)
tasks.register(
    "relation_classification",
    aliases=("kgreason.RelationClassification.v1",),
    obj="kgreason.tasks.relation:RelationClassificationTask",
)
tasks.register(
    "multiple_choice", aliases=("kgreason.MultipleChoice.v1",), obj="kgreason.tasks.choice:MultipleChoiceTask"
)


def build_task(name: str, *, labels: Sequence[str] = (), **options: Any) -> Task:
    """The task registered as ``name`` with ``labels`` (and task options, e.g. ``no_relation``).

    ``build_task(**task.config())`` rebuilds ``task``.

    Raises:
        RegistryError: no task is registered as ``name``.
        ConfigError: an option the task does not take.
    """
    cls = tasks.get(name)
    parameters = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        accepted = sorted(p for p in parameters if p != "labels")
        for key in options:
            if key not in parameters or key == "labels":
                raise ConfigError(
                    f"task {name!r} has no option {key!r}.{did_you_mean(key, accepted)} "
                    f"Options: {', '.join(accepted) or 'none'}"
                )
    return cls(labels=list(labels), **options)
