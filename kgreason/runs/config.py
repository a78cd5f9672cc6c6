"""The experiment config read by ``kgreason train CONFIG`` (sections task, data, knowledge, model, trainer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kgreason.core.config import KBConfig, RetrievalConfig, setting
from kgreason.models.config import ModelConfig
from kgreason.training.config import TrainerConfig


def rule_set_names() -> list[str]:
    """The registered rule-set names and aliases a config's ``knowledge.rules`` may give instead of a path."""
    from kgreason.rules.sets import rule_sets

    return [*rule_sets.names(), *rule_sets.aliases()]


@dataclass
class DataConfig:
    """Which dataset to read (a registered reader, see ``kgreason.data.readers``).

    Attributes:
        dataset: reader name, e.g. ``financial_phrasebank`` or ``conll2003``.
        options: reader options, e.g. ``{agreement: 50, split_seed: 42}``.
        data_dir: folder of the public data (default: ``$KGREASON_DATA``, else ``../shared/data``).
        max_train: use at most this many training examples (0: all; a fixed random subset, not a prefix).
        max_eval: use at most this many dev / test examples (0: all; a fixed random subset).
    """

    dataset: str = "financial_phrasebank"
    options: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = setting(None, path=True, must_exist=True)
    max_train: int = setting(0, ge=0, note="0: all")
    max_eval: int = setting(0, ge=0, note="0: all")


@dataclass
class KnowledgeConfig:
    """The knowledge base and retrieval for the graph variants (unused by ``model.variant: text``), and the rules.

    Attributes:
        rules: rule file for the soft rule-constraint loss (``model.constraint_weight`` > 0): a registered rule
            set (``kinship``: the shipped kinship rules; :data:`kgreason.rules.sets.rule_sets`) or a path.
        rule_facts: let the constraints see each example's own facts, not only its people's genders.
    """

    kb: KBConfig = field(default_factory=KBConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    rules: str | None = setting(None, path=True, must_exist=True, names=rule_set_names)
    rule_facts: bool = False


@dataclass
class ExperimentConfig:
    """A whole experiment.

    Attributes:
        name: run name (the default output folder is ``runs/<name>/seed<seed>``).
        task: task name (``sequence_classification``, ``token_classification``, ``relation_classification``,
            ``multiple_choice``).
        output_dir: where the run folder goes (``{name}`` and ``{seed}`` are filled in).
        evaluate_test: evaluate the best (dev-selected) model once on the test split at the end.
    """

    name: str = "experiment"
    task: str = "sequence_classification"
    output_dir: str = "runs/{name}/seed{seed}"
    evaluate_test: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
