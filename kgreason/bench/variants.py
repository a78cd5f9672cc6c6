"""The registry of reasoning-suite variants: how each is trained, what its predictor reads, which rows it gets.

A variant is a :class:`ReasoningVariant`: ``train(runner, seed=, soft=)`` returns ``(predictor, train seconds)``
(a :class:`~kgreason.bench.predictors.Predictor`), ``reads`` names what the predictor reads (the probes'
:data:`~kgreason.probes.registry.CAPABILITIES`: a probe that needs the graph runs only on variants that read
it), and ``constrainable`` says whether it also gets a rule-constrained row and may train with the rule loss
(``soft_constraints``). Each built-in answers to its short name (what suites and reports carry) and to a
versioned one (``kgreason.FusedVariant.v1``). Installed packages add variants through the entry-point group
``kgreason.reasoning_variants``; one registered at run time is one suite line away (``variants: [text, mine]``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kgreason.core.registry import Registry

if TYPE_CHECKING:
    from kgreason.bench.predictors import Predictor
    from kgreason.bench.reasoning import ReasoningSuiteRunner


@dataclass(frozen=True, kw_only=True)
class ReasoningVariant:
    """One way of answering a suite's questions.

    Args:
        train: ``(runner, *, seed, soft) -> (predictor, train seconds)``; the runner gives the suite, the
            labels, the rules and the training stories, and trains kgreason models
            (``runner.train_model(runner.experiment_config(...), name=...)``).
        reads: what the predictor reads (``"graph"``, ``"text_encoder"``), matched against each probe's needs.
        constrainable: a model whose logits rule-constrained inference can mask (gets a ``+ rules`` row) and
            that can train with the soft rule loss.
        inputs: what the predictor is given at test time: ``text``, ``text+gold_pairs``, ``gold_graph`` or
            ``stated_graph`` (the gold graph with each relation as the text states it).
        rules: which rules it composes with: ``hand-written``, ``learned`` or ``none``.
    """

    train: Callable[..., tuple[Predictor, float]]
    reads: frozenset[str] = frozenset()
    constrainable: bool = False
    description: str = ""
    inputs: str = "text"
    rules: str = "none"


def _chaining(predictor: str) -> Callable[..., tuple[Predictor, float]]:
    """Forward chaining of the suite's rules by ``predictor`` (a class of :mod:`kgreason.bench.predictors`)."""

    def train(runner: ReasoningSuiteRunner, *, seed: int, soft: bool) -> tuple[Predictor, float]:
        from kgreason.bench import predictors

        chain = getattr(predictors, predictor)(rules=runner.rules, labels=runner.labels)
        return chain.fit(runner.train_stories), 0.0

    return train


def _composer(runner: ReasoningSuiteRunner, *, seed: int, soft: bool) -> tuple[Predictor, float]:
    import torch

    from kgreason.bench.predictors import ComposerPredictor
    from kgreason.models.composer import ComposerConfig, RelationComposer
    from kgreason.training.composer import ComposerTrainingConfig, train_composer

    spec = runner.suite.composer
    train = list(runner.train_stories)
    if spec.augment:
        from kgreason.data.readers import read_dataset

        train += read_dataset(spec.augment, data_dir=runner.data_dir, **spec.augment_options).train
    torch.manual_seed(seed)
    composer = RelationComposer(
        config=ComposerConfig(
            relations=runner.relations,
            labels=runner.labels,
            extra_states=spec.extra_states,
            direction=spec.direction,
        )
    )
    settings = {f.name: getattr(spec, f.name) for f in dataclasses.fields(ComposerTrainingConfig)}
    result = train_composer(
        composer,
        train,
        runner.dev_stories,
        config=ComposerTrainingConfig(**settings | {"seed": seed}),
        progress=False,
    )
    return ComposerPredictor(composer=result.composer), result.seconds


def _late_fusion(runner: ReasoningSuiteRunner, *, seed: int, soft: bool) -> tuple[Predictor, float]:
    from kgreason.bench.predictors import LateFusionPredictor

    text, text_seconds = _model("text")(runner, seed=seed, soft=False)  # the text variant's own run, reused
    graph, graph_seconds = _composer(runner, seed=seed, soft=False)
    fused = LateFusionPredictor(graph=graph, text=text).fit(runner.dev_stories)
    return fused, text_seconds + graph_seconds


def _model(model_variant: str) -> Callable[..., tuple[Predictor, float]]:
    def train(runner: ReasoningSuiteRunner, *, seed: int, soft: bool) -> tuple[Predictor, float]:
        spec = runner.suite.dataset
        config = runner.experiment_config(
            model_variant,
            seed,
            model_variant=model_variant,
            dataset=spec.reader,
            options=dict(spec.options),
            task="sequence_classification",
            max_train=spec.max_train,
            soft=soft,
        )
        return runner.train_model(config, name=model_variant)

    return train


def _neuro_symbolic(runner: ReasoningSuiteRunner, *, seed: int, soft: bool) -> tuple[Predictor, float]:
    from kgreason.bench.predictors import NeuroSymbolicPredictor

    config = runner.experiment_config(
        "neuro_symbolic",
        seed,
        model_variant="text",
        dataset="story_relations",
        options=runner.extractor_options(),
        task="relation_classification",
        max_train=0,
    )
    extractor, seconds = runner.train_model(config, name="neuro_symbolic")
    predictor = NeuroSymbolicPredictor(extractor=extractor, rules=runner.rules, labels=runner.labels)
    return predictor.fit(runner.train_stories), seconds


def _reader(rules: str) -> Callable[..., tuple[Predictor, float]]:
    def train(runner: ReasoningSuiteRunner, *, seed: int, soft: bool) -> tuple[Predictor, float]:
        from kgreason.bench.reading import ReaderPredictor

        reader, seconds = runner.story_reader(seed)
        ruleset = runner.rules if rules == "hand-written" else runner.learned_rules()
        name = "reader" if rules == "hand-written" else "reader_learned"
        predictor = ReaderPredictor(reader=reader, rules=ruleset, labels=runner.labels, name=name)
        return predictor.fit(runner.train_stories), seconds

    return train


#: Registered variants (built-ins plus the ``kgreason.reasoning_variants`` entry points).
reasoning_variants: Registry[ReasoningVariant] = Registry(
    kind="reasoning variant", entry_point_group="kgreason.reasoning_variants"
)

#: The built-ins: (short name, versioned name, variant), in a suite's default order.
BUILT_IN_VARIANTS: tuple[tuple[str, str, ReasoningVariant], ...] = (
    (
        "rules",
        "kgreason.RulesVariant.v1",
        ReasoningVariant(
            train=_chaining("RulePredictor"),
            reads=frozenset({"graph"}),
            inputs="gold_graph",
            rules="hand-written",
            description="forward chaining of the rules over each story's own facts",
        ),
    ),
    (
        "text_stated",
        "kgreason.TextStatedVariant.v1",
        ReasoningVariant(
            train=_chaining("StatedPredictor"),
            reads=frozenset({"graph"}),
            inputs="stated_graph",
            rules="hand-written",
            description="forward chaining of the rules over the facts as the story text states them (gold pairs "
            "and genders): the ceiling of a reader faithful to the text",
        ),
    ),
    (
        "text",
        "kgreason.TextVariant.v1",
        ReasoningVariant(
            train=_model("text"),
            reads=frozenset({"text_encoder"}),
            constrainable=True,
            description="the fine-tuned encoder on the story text",
        ),
    ),
    (
        "graph",
        "kgreason.GraphVariant.v1",
        ReasoningVariant(
            train=_model("graph"),
            reads=frozenset({"graph"}),
            inputs="gold_graph",
            constrainable=True,
            description="the GNN over the story graph",
        ),
    ),
    (
        "composer",
        "kgreason.ComposerVariant.v1",
        ReasoningVariant(
            train=_composer,
            reads=frozenset({"graph"}),
            inputs="gold_graph",
            rules="learned",
            description="the relation composer: differentiable composition tables learned from the training "
            "answers, run Bellman-Ford style from the query's head over the story graph",
        ),
    ),
    (
        "fused",
        "kgreason.FusedVariant.v1",
        ReasoningVariant(
            train=_model("fused"),
            reads=frozenset({"graph"}),
            inputs="text+gold_graph",
            constrainable=True,
            description="encoder and GNN fused",
        ),
    ),
    (
        "fused_composer",
        "kgreason.FusedComposerVariant.v1",
        ReasoningVariant(
            train=_late_fusion,
            reads=frozenset({"graph"}),
            inputs="text+gold_graph",
            rules="learned",
            description="the fine-tuned encoder (variant text) and the relation composer (variant composer) "
            "fused as a product of experts, the text's weight chosen on dev",
        ),
    ),
    (
        "neuro_symbolic",
        "kgreason.NeuroSymbolicVariant.v1",
        ReasoningVariant(
            train=_neuro_symbolic,
            inputs="text+gold_pairs",
            rules="hand-written",
            description="a trained relation extractor reads the facts from the text, the rules compose them",
        ),
    ),
    (
        "reader",
        "kgreason.ReaderVariant.v1",
        ReasoningVariant(
            train=_reader("hand-written"),
            rules="hand-written",
            description="the story reader reads people, pairs, relations and genders from the text alone; "
            "decoded jointly, composed by the hand-written rules",
        ),
    ),
    (
        "reader_learned",
        "kgreason.ReaderLearnedVariant.v1",
        ReasoningVariant(
            train=_reader("learned"),
            rules="learned",
            description="the story reader, composed by rules learned from the training stories "
            "(`kgreason rules learn`)",
        ),
    ),
)
for _short, _versioned, _variant in BUILT_IN_VARIANTS:
    reasoning_variants.register(_short, _variant, aliases=(_versioned,))
del _short, _versioned, _variant

#: The built-in variants' short names (a suite's default ``variants``).
VARIANT_NAMES = tuple(short for short, _, _ in BUILT_IN_VARIANTS)


def constrainable_variants() -> list[str]:
    """Registered variants that get a rule-constrained row and may train with the rule loss."""
    return [name for name in reasoning_variants.names() if reasoning_variants.get(name).constrainable]
