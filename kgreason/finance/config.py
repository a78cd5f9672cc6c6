"""The config of ``kgreason finance train CONFIG`` (sections data, featurizer, model, trainer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kgreason.core.config import setting
from kgreason.core.errors import ConfigError
from kgreason.finance.checks import DEFAULT_SPLIT_FRACTIONS, DEFAULT_SPLIT_SEED, check_split_fractions
from kgreason.finance.dataset import FeaturizerConfig
from kgreason.models.config import GNNConfig, ModelConfig
from kgreason.training.config import TrainerConfig

#: Risk model variants: the shared fused model's variants (``text``, ``graph``, ``fused``).
RISK_VARIANTS = ("text", "graph", "fused")
CALIBRATIONS = ("auto", "platt", "isotonic", "none")
#: Risk runs hand their seeds to scikit-learn (calibration folds, the default split), which takes [0, 2**32 - 1].
RISK_SEED_MAX = 2**32 - 1


def check_risk_seeds(seeds: list[int], key: str) -> None:
    """Refuse seeds outside scikit-learn's range before a model is trained with them."""
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= RISK_SEED_MAX:
            raise ConfigError(f"{key}: expected seeds in [0, 2**32 - 1] (scikit-learn's range), got {seed!r}")


def _check_fractions(value: list[float], key: str) -> None:
    check_split_fractions(value)


@dataclass
class GraphSourceConfig:
    """Where the company graph comes from.

    Attributes:
        source: a registered company-graph source (:data:`kgreason.finance.sources.company_graph_sources`):
            ``generator`` (the embedded company-graph generator), ``smesd`` (the SMEsD release in the data
            folder), ``csv`` (a folder with companies.csv, edges.csv, labels.csv[, texts.csv]), ``rdf`` (a
            Turtle / N-Triples / RDF-XML file using the finance ontology), their versioned names
            (``kgreason.finance.CSV.v1``, ...) or a plug-in's name.
        path: the CSV folder or RDF file (``csv`` / ``rdf``).
        data_dir: folder of the public data (default: ``$KGREASON_DATA``, else ``../shared/data``); the generator
            draws news from its Financial PhraseBank when present.
        options: the source's settings; the generator's (e.g. ``{num_companies: 3000, seed: 7}``), see
            :class:`kgreason.finance.generator.GeneratorConfig`.
        split_seed: seed of the default split: when no labelled company has a split (a ``labels.csv`` without
            a ``split`` column, an RDF file without ``fin:split``), the labelled companies get a seeded
            stratified train / dev / test split (:func:`kgreason.finance.checks.default_split`), the same for
            every training seed.
        split_fractions: train / dev / test shares of that default split.
    """

    source: str = "generator"
    path: str | None = None
    data_dir: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    split_seed: int = setting(DEFAULT_SPLIT_SEED, ge=0, le=RISK_SEED_MAX)
    split_fractions: list[float] = setting(
        default_factory=lambda: list(DEFAULT_SPLIT_FRACTIONS), validate=_check_fractions
    )


def default_risk_model() -> ModelConfig:
    return ModelConfig(
        variant="fused",
        max_length=128,
        node_features="attributes",
        node_status=True,
        seed_readout=True,
        freeze_encoder=True,
        text_pooling="mean",
        graph_rule_weight=1.0,
        gnn=GNNConfig(type="rgcn", layers=2, hidden=128, dropout=0.2, num_bases=8),
    )


def default_risk_trainer() -> TrainerConfig:
    return TrainerConfig(epochs=10, batch_size=32, learning_rate=5e-5, head_learning_rate=1e-2)


def default_featurizer() -> FeaturizerConfig:
    return FeaturizerConfig(hops=2, max_nodes=32)


@dataclass
class RiskConfig:
    """A risk-model run.

    Attributes:
        name: run name (output folder ``runs/finance/<name>/seed<seed>`` by default).
        output_dir: where the run folder goes (``{name}`` and ``{seed}`` are filled in).
        seeds: seeds ``kgreason finance train`` runs (mean ± std is reported over them).
        use_features: feed the company's tabular features to the model (off for the text-only baseline).
        calibration: ``auto`` (Platt or isotonic, whichever has the lower cross-validated Brier score on dev),
            ``platt``, ``isotonic`` or ``none``; always fitted on dev.
        data: the company graph (:class:`GraphSourceConfig`).
        featurizer: how companies become examples (:class:`~kgreason.finance.dataset.FeaturizerConfig`).
        model: the shared model config; ``variant`` is ``text``, ``graph`` or ``fused``, ``graph_rule_weight`` the
            guarantor rule (0: off). Node features, label count and sizes are set from the graph. The default
            keeps the pretrained encoder frozen (mean-pooled, cached: 3x cheaper on CPU); a ``model`` section
            in a YAML file starts from ModelConfig's own defaults, so write every setting you rely on.
        trainer: the shared trainer's settings (model selection on dev AUC).
    """

    name: str = "risk"
    output_dir: str = "runs/finance/{name}/seed{seed}"
    seeds: list[int] = setting(default_factory=lambda: [13], validate=check_risk_seeds)
    use_features: bool = True
    calibration: str = "auto"
    data: GraphSourceConfig = field(default_factory=GraphSourceConfig)
    featurizer: FeaturizerConfig = field(default_factory=default_featurizer)
    model: ModelConfig = field(default_factory=default_risk_model)
    trainer: TrainerConfig = field(default_factory=default_risk_trainer)
