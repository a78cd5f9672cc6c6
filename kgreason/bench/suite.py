"""Reasoning-suite definitions: YAML files that name the data, the variants, the probes and the anchors.

A suite file is data, validated by :func:`load_suite` (unknown keys are rejected with a suggestion) without
training anything. Suites ship in ``benchmarks/suites/``; ``kgreason bench reasoning --suite NAME`` finds them
by name, or takes a path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgreason.bench.variants import VARIANT_NAMES, constrainable_variants, reasoning_variants
from kgreason.core.errors import ConfigError
from kgreason.models.config import GNNConfig
from kgreason.probes.registry import PROBE_NAMES, probes
from kgreason.training.composer import ComposerTrainingConfig
from kgreason.training.config import TrainerConfig
from kgreason.training.story_reader import ReaderTrainingConfig

#: The built-in variants a reasoning suite runs by default (the registry: :mod:`kgreason.bench.variants`).
REASONING_VARIANTS = VARIANT_NAMES
#: The built-in probes a reasoning suite runs by default (the registry: :mod:`kgreason.probes.registry`).
PROBES = PROBE_NAMES
READER_CONTEXTS = ("marked", "sentence", "story")
READER_RENAMING = ("any", "gender", "none")
PERTURBATIONS = ("relation_swap", "rewire", "delete")


@dataclass
class DatasetSpec:
    """The reader and its options (``kinship``: the built-in generator; ``clutrr``: the public release).

    ``max_train``: cap on training stories (0: all); ``max_test_per_depth``: cap on test stories per depth.
    """

    reader: str = "kinship"
    options: dict[str, Any] = field(default_factory=dict)
    max_train: int = 0
    max_test_per_depth: int = 0


@dataclass(kw_only=True)
class ReaderSpec(ReaderTrainingConfig):
    """How the story reader (variants ``reader``, ``reader_learned``) trains: the training settings of
    :class:`~kgreason.training.story_reader.ReaderTrainingConfig` (``epochs``, ``batch_size``, ``lr``, ``head_lr``,
    ``max_train`` ...; ``seed`` is replaced by each suite seed), plus:

    ``dev_stories``: dev stories read after each epoch to keep the best one; ``context``: ``marked`` (one pass per
    pair and sentence, the pair's people marked), ``sentence`` (each sentence read on its own) or ``story`` (the
    whole story in one pass); ``rename``: rename every training story's people afresh each epoch (the training
    families' names otherwise tell the reader who is whose relative): ``gender`` keeps each person's gender,
    ``any`` draws names regardless of gender (genders are then read from pronouns and relation words, not names),
    ``none`` trains on the stories as they are; ``augment``: a story reader (``kinship``: the built-in generator)
    whose training stories are added, ``augment_options`` its options.
    """

    dev_stories: int = 300
    context: str = "marked"
    rename: str = "gender"
    augment: str = ""
    augment_options: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class ComposerSpec(ComposerTrainingConfig):
    """How the relation composer (variant ``composer``) trains: the settings of
    :class:`~kgreason.training.composer.ComposerTrainingConfig` (``epochs``, ``batch_size``, ``lr``; ``seed``
    replaced by each suite seed), ``extra_states`` (latent states beyond the relation vocabulary), ``direction``
    (``forward``, ``backward`` or ``meet``: see :mod:`kgreason.models.composer`), and ``augment`` /
    ``augment_options``: a story reader (``kinship``: the built-in generator) whose training stories are added."""

    extra_states: int = 8
    direction: str = "meet"
    augment: str = ""
    augment_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProbeSpec:
    """Which causal probes run, on how many test stories (stratified over depths), with what bootstrap."""

    run: list[str] = field(default_factory=lambda: list(PROBES))
    examples: int = 200
    perturbation_kinds: list[str] = field(default_factory=lambda: list(PERTURBATIONS))
    perturbation_fractions: list[float] = field(default_factory=lambda: [0.1, 0.5, 1.0])
    inlp_iterations: int = 8
    bootstrap_resamples: int = 1000


@dataclass
class Anchor:
    """A published result to print beside ours: accuracy (%) by test depth, with its source."""

    name: str = ""
    citation: str = ""
    setting: str = ""
    accuracy: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass
class SuiteConfig:
    """One reasoning suite.

    Attributes:
        name: suite name (results go to ``<output_dir>/<name>.{json,md,png}``).
        description: one paragraph: what it measures and on which data.
        dataset: reader and options.
        train_depths: depths seen in training (IID); every other test depth is out of distribution.
        variants: registered variants: ``rules`` (forward chaining on the gold story graph),
            ``text_stated`` (the same over each relation as the text states it: a faithful reader's ceiling), ``text``,
            ``graph``, ``fused``, ``neuro_symbolic`` (the encoder extracts each story relation given the gold
            pairs, the rules compose them), ``reader`` / ``reader_learned`` (the story reader reads the graph
            from the text alone; hand-written or learned rules compose it).
        constraints: also score every neural variant with rule-constrained inference.
        soft_constraints: variants (``text``, ``graph``, ``fused``) trained a second time with the soft
            rule-constraint loss added to cross-entropy (rows ``<variant> + soft rules``).
        constraint_weight: weight of that loss; ``constraint_tnorm``: ``product`` or ``lukasiewicz``.
        extractor_augment: a story reader (e.g. ``kinship``) whose training facts are added to the
            neuro-symbolic extractor's training sentences; ``extractor_augment_options``: its options.
        seeds: one training run per variant and seed; tables give mean ± std.
        encoder: the text encoder (``embedded``: the packaged all-MiniLM-L6-v2).
        max_length: token limit of story + question.
        trainer: trainer settings shared by the variants.
        variant_trainer: per-variant overrides of ``trainer`` (``{graph: {epochs: 20}}``); the extractor of
            ``neuro_symbolic`` is trained with ``trainer`` + ``variant_trainer.neuro_symbolic``.
        gnn: the GNN of ``graph`` and ``fused``.
        reader: how the story reader of ``reader`` / ``reader_learned`` trains.
        composer: how the relation composer of ``composer`` trains.
        probes: the causal probes.
        anchors: published numbers to print beside ours.
        goal: the goal the suite checks, in words.
    """

    name: str = "reasoning"
    description: str = ""
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    train_depths: list[int] = field(default_factory=lambda: [2, 3])
    variants: list[str] = field(default_factory=lambda: list(REASONING_VARIANTS))
    constraints: bool = True
    soft_constraints: list[str] = field(default_factory=list)
    constraint_weight: float = 1.0
    constraint_tnorm: str = "product"
    extractor_augment: str = ""
    extractor_augment_options: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [13])
    encoder: str = "embedded"
    max_length: int = 192
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    variant_trainer: dict[str, dict[str, Any]] = field(default_factory=dict)
    gnn: GNNConfig = field(default_factory=GNNConfig)
    reader: ReaderSpec = field(default_factory=ReaderSpec)
    composer: ComposerSpec = field(default_factory=ComposerSpec)
    probes: ProbeSpec = field(default_factory=ProbeSpec)
    anchors: list[Anchor] = field(default_factory=list)
    goal: str = ""


def suites_dir() -> Path:
    """The shipped suite files (``benchmarks/suites`` of the repository, package data ``kgreason.suites``)."""
    from kgreason.core.resources import suites_path

    return suites_path()


def available_suites() -> list[str]:
    """Names of the suite files that ship in ``benchmarks/suites``."""
    from kgreason.core.resources import packaged_names

    return packaged_names(suites_dir(), ".yaml")


def find_suite(name_or_path: str | Path) -> Path:
    """A suite file by path, or by name in ``benchmarks/suites``."""
    from kgreason.core.registry import did_you_mean

    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.is_file():
        if not path.is_file():
            raise ConfigError(f"suite file {path} not found")
        return path
    candidate = suites_dir() / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    names = available_suites()
    raise ConfigError(
        f"no suite named {name_or_path!r}.{did_you_mean(str(name_or_path), names)} "
        f"Suites: {', '.join(names) or 'none found'}"
    )


def load_suite(name_or_path: str | Path, *, overrides: list[str] | None = None) -> SuiteConfig:
    """Read and validate a suite (dotted ``overrides`` like ``trainer.epochs=1``)."""
    from kgreason.core.config import build_config, load_config
    from kgreason.core.registry import did_you_mean
    from kgreason.data.readers import readers

    path = find_suite(name_or_path)
    suite = load_config(SuiteConfig, path, list(overrides or []))
    where = f"{path}"
    variants = reasoning_variants.names()
    for variant in suite.variants:
        if variant not in reasoning_variants:
            raise ConfigError(
                f"{where}: unknown variant {variant!r}.{did_you_mean(variant, variants)} "
                f"Variants: {', '.join(variants)}"
            )
    suite.variants = [reasoning_variants.canonical(v) for v in suite.variants]
    constrainable = constrainable_variants()
    for variant in suite.soft_constraints:
        if reasoning_variants.canonical(variant) not in constrainable:
            raise ConfigError(
                f"{where}: soft_constraints: {variant!r} is not one of {', '.join(constrainable)}"
            )
    suite.soft_constraints = [reasoning_variants.canonical(v) for v in suite.soft_constraints]
    if suite.constraint_tnorm not in {"product", "lukasiewicz"}:
        raise ConfigError(
            f"{where}: constraint_tnorm must be product or lukasiewicz, got {suite.constraint_tnorm!r}"
        )
    for key, overrides_of in suite.variant_trainer.items():
        if key not in reasoning_variants:
            raise ConfigError(f"{where}: variant_trainer.{key}: not a variant ({', '.join(variants)})")
        build_config(TrainerConfig, overrides_of, _prefix=f"variant_trainer.{key}.")
    suite.variant_trainer = {reasoning_variants.canonical(k): v for k, v in suite.variant_trainer.items()}
    for probe in suite.probes.run:
        if probe not in probes:
            names = probes.names()
            raise ConfigError(
                f"{where}: unknown probe {probe!r}.{did_you_mean(probe, names)} Probes: {', '.join(names)}"
            )
    if suite.reader.context not in READER_CONTEXTS:
        raise ConfigError(
            f"{where}: reader.context must be one of {', '.join(READER_CONTEXTS)}, got {suite.reader.context!r}"
        )
    if suite.reader.rename not in READER_RENAMING:
        raise ConfigError(
            f"{where}: reader.rename must be one of {', '.join(READER_RENAMING)}, got {suite.reader.rename!r}"
        )
    for kind in suite.probes.perturbation_kinds:
        if kind not in PERTURBATIONS:
            raise ConfigError(
                f"{where}: unknown perturbation {kind!r}.{did_you_mean(kind, list(PERTURBATIONS))}"
            )
    if any(not 0.0 < f <= 1.0 for f in suite.probes.perturbation_fractions):
        raise ConfigError(f"{where}: probes.perturbation_fractions must lie in (0, 1]")
    if suite.dataset.reader not in readers:
        raise ConfigError(
            f"{where}: dataset.reader {suite.dataset.reader!r} is not a registered reader "
            f"({', '.join(readers.names())})"
        )
    if suite.extractor_augment and suite.extractor_augment not in readers:
        raise ConfigError(
            f"{where}: extractor_augment {suite.extractor_augment!r} is not a registered reader"
        )
    if not suite.seeds:
        raise ConfigError(f"{where}: seeds must name at least one seed")
    for anchor in suite.anchors:
        if not anchor.citation:
            raise ConfigError(f"{where}: anchor {anchor.name!r} has no citation")
    return suite


def variant_trainer_config(suite: SuiteConfig, variant: str) -> TrainerConfig:
    """``suite.trainer`` with the variant's overrides applied."""
    from kgreason.core.config import build_config, config_to_dict

    merged = {**config_to_dict(suite.trainer), **suite.variant_trainer.get(variant, {})}
    return build_config(TrainerConfig, merged, _prefix=f"variant_trainer.{variant}.")
