"""The reasoning suite: train every variant on the same splits, score accuracy by depth, gaps, rule violations
and the causal probes, and report one table (plus JSON, Markdown and a plot of accuracy against depth).

For each seed and variant::

    read the suite's stories ──► train (kgreason's trainer, dev-selected; runs/<suite>/<variant>/seed<s>)
        ──► predictor ──► test once: accuracy by depth, IID vs unseen depths, violation rate (± constraints)
        ──► probes on a depth-stratified test sample: ablation, counterfactual edit, KG perturbation, renaming,
            representation (linear probes per layer + amnesic projection)

Seeds are aggregated as mean ± std.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgreason.bench.suite import ReaderSpec, SuiteConfig, variant_trainer_config
from kgreason.bench.variants import reasoning_variants
from kgreason.core.example import Example

logger = logging.getLogger(__name__)


@dataclass
class VariantRun:
    """One variant (optionally rule-constrained) for one seed."""

    variant: str
    constrained: bool
    seed: int
    depth_accuracy: dict[int, float]
    accuracy: float
    iid_accuracy: float | None
    ood_accuracy: float | None
    train_accuracy: float | None
    violation_rate: float
    train_seconds: float
    num_test: int
    probes: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    soft: bool = False

    @property
    def label(self) -> str:
        """``variant``, ``+ soft rules`` when trained with the rule loss, ``+ rules`` with constrained inference."""
        return (
            self.variant + (" + soft rules" if self.soft else "") + (" + rules" if self.constrained else "")
        )

    @property
    def generalisation_gap(self) -> float | None:
        if self.iid_accuracy is None or self.ood_accuracy is None:
            return None
        return self.iid_accuracy - self.ood_accuracy


@dataclass
class ReasoningReport:
    """Everything a suite run measured, per seed, plus where it was written."""

    suite: SuiteConfig
    runs: list[VariantRun]
    seconds: float
    depths: list[int]
    files: list[Path] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def stratified_sample(examples: Sequence[Example], *, size: int, seed: int) -> list[Example]:
    """Up to ``size`` examples, spread evenly over depths (deterministic for a seed)."""
    by_depth: dict[Any, list[Example]] = defaultdict(list)
    for example in examples:
        by_depth[example.metadata.get("depth")].append(example)
    rng = random.Random(seed)
    per_depth = max(1, size // max(1, len(by_depth)))
    chosen = []
    for depth in sorted(by_depth, key=lambda d: (d is None, d)):
        group = list(by_depth[depth])
        rng.shuffle(group)
        chosen.extend(group[:per_depth])
    return chosen[:size] if size else chosen


def cap_per_depth(examples: Sequence[Example], cap: int) -> list[Example]:
    """The first ``cap`` examples of each depth (0: all), order kept."""
    if cap <= 0:
        return list(examples)
    seen: dict[Any, int] = defaultdict(int)
    kept = []
    for example in examples:
        depth = example.metadata.get("depth")
        if seen[depth] < cap:
            seen[depth] += 1
            kept.append(example)
    return kept


def accuracy_by_depth(predictions: Sequence[str], examples: Sequence[Example]) -> dict[int, float]:
    return accuracy_by(predictions, examples, key=lambda e: int(e.metadata["depth"]))


def accuracy_by(predictions: Sequence[str], examples: Sequence[Example], *, key) -> dict[Any, float]:
    """Accuracy per group of ``key(example)`` (groups sorted)."""
    hits: dict[Any, list[bool]] = defaultdict(list)
    for prediction, example in zip(predictions, examples, strict=True):
        hits[key(example)].append(prediction == example.label)
    return {group: sum(h) / len(h) for group, h in sorted(hits.items())}


def _mean_over(depth_accuracy: dict[int, float], depths: Sequence[int]) -> float | None:
    values = [depth_accuracy[d] for d in depths if d in depth_accuracy]
    return sum(values) / len(values) if values else None


class ReasoningSuiteRunner:
    """Runs one suite; ``run_root`` holds the training runs (checkpoints, resume), ``output_dir`` the report."""

    def __init__(
        self,
        *,
        suite: SuiteConfig,
        output_dir: str | Path,
        run_root: str | Path,
        data_dir: str | Path | None = None,
        resume: bool = True,
    ) -> None:
        self.suite = suite
        self.output_dir = Path(output_dir)
        self.run_root = Path(run_root) / suite.name
        self.data_dir = data_dir
        self.resume = resume
        self._readers: dict[int, tuple[Any, float]] = {}  # seed -> (story reader, train seconds)
        self._learned: Any = None  # rules learned from the training stories
        self._contradicted: tuple[Any, list[bool]] = (None, [])  # (stories, text contradicts a fact)

    # ------------------------------------------------------------------------------------------- data
    def read(self):
        from kgreason.data.readers import read_dataset
        from kgreason.data.splits import subsample

        spec = self.suite.dataset
        splits = read_dataset(spec.reader, data_dir=self.data_dir, **spec.options)
        train = subsample(splits.train, spec.max_train)  # the same subset the training runs use
        return dataclasses.replace(
            splits, train=train, test=cap_per_depth(splits.test, spec.max_test_per_depth)
        )

    def experiment_config(
        self,
        variant: str,
        seed: int,
        *,
        model_variant: str,
        dataset: str,
        options: dict,
        task: str,
        max_train: int,
        soft: bool = False,
    ):
        """The training run of ``variant`` (folder ``<variant>[-soft]/seed<s>``): a ``model_variant`` model."""
        from kgreason.models.config import ModelConfig
        from kgreason.runs.config import DataConfig, ExperimentConfig, KnowledgeConfig

        trainer = dataclasses.replace(variant_trainer_config(self.suite, variant), seed=seed)
        folder = f"{variant}-soft" if soft else variant
        return ExperimentConfig(
            name=f"{self.suite.name}-{folder}",
            task=task,
            output_dir=str(self.run_root / folder / "seed{seed}"),
            evaluate_test=False,
            data=DataConfig(
                dataset=dataset,
                options=options,
                data_dir=str(self.data_dir) if self.data_dir else None,
                max_train=max_train,
                max_eval=0,
            ),
            model=ModelConfig(
                encoder=self.suite.encoder,
                variant=model_variant,
                gnn=self.suite.gnn,
                node_features="learned",
                max_length=self.suite.max_length,
                constraint_weight=self.suite.constraint_weight if soft else 0.0,
                constraint_tnorm=self.suite.constraint_tnorm,
            ),
            knowledge=KnowledgeConfig(rules="kinship" if soft else None),
            trainer=trainer,
        )

    # ------------------------------------------------------------------------------------------- variants
    def extractor_options(self) -> dict[str, Any]:
        """Options of the ``story_relations`` reader the neuro-symbolic extractor trains on."""
        options: dict[str, Any] = {
            "source": self.suite.dataset.reader,
            "source_options": dict(self.suite.dataset.options),
        }
        if self.suite.extractor_augment:
            options["augment"] = self.suite.extractor_augment
            options["augment_options"] = dict(self.suite.extractor_augment_options)
        return options

    def train_variant(self, variant: str, seed: int, *, soft: bool = False):
        """Train (or reuse) one registered variant (``soft``: with the rule-constraint loss); returns
        (predictor, seconds)."""
        return reasoning_variants.get(variant).train(self, seed=seed, soft=soft)

    def story_reader(self, seed: int):
        """Train (or reuse, from ``<run_root>/reader/seed<s>``) the story reader of ``seed``; returns (reader,
        train seconds). One reader serves every reader variant of the seed."""
        import json

        from kgreason.core.atomic import atomic_write_text
        from kgreason.models.story_reader import StoryReader, StoryReaderConfig, build_story_reader
        from kgreason.training.story_reader import ReaderTrainingConfig, train_story_reader

        cache = self._readers
        if seed in cache:
            return cache[seed]
        folder = self.run_root / "reader" / f"seed{seed}"
        record = folder / "training.json"
        spec = self.suite.reader
        settings = {
            **{k: v for k, v in dataclasses.asdict(spec).items() if k != "seed"},  # the folder names the seed
            "encoder": self.suite.encoder,
            "train": len(self.train_stories),
        }
        if (
            self.resume
            and record.is_file()
            and (folder / "best").is_dir()
            and _same_settings(json.loads(record.read_text(encoding="utf-8")).get("settings"), settings)
        ):
            reader = StoryReader.from_pretrained(folder / "best")
            cache[seed] = reader, float(json.loads(record.read_text(encoding="utf-8"))["seconds"])
            return cache[seed]
        train = list(self.train_stories)
        if spec.augment:
            from kgreason.data.readers import read_dataset

            extra = read_dataset(spec.augment, data_dir=self.data_dir, **spec.augment_options)
            train += extra.train
        reader = build_story_reader(StoryReaderConfig(encoder=self.suite.encoder, context=spec.context))
        result = train_story_reader(
            reader,
            train,
            self.dev_stories[: spec.dev_stories],
            config=ReaderTrainingConfig(
                **{f.name: getattr(spec, f.name) for f in dataclasses.fields(ReaderTrainingConfig)}
                | {"seed": seed}
            ),
            transform=None
            if spec.rename == "none"
            else functools.partial(_renamed, genders=spec.rename == "gender"),
        )
        result.reader.save_pretrained(folder / "best")
        atomic_write_text(
            record,
            json.dumps(
                {
                    "seconds": result.seconds,
                    "history": result.history,
                    "stories": len(train),
                    "settings": settings,
                }
            )
            + "\n",
        )
        cache[seed] = result.reader, result.seconds
        return cache[seed]

    def learned_rules(self):
        """Composition rules learned from the training stories' (facts, query, answer) (:mod:`kgreason.rules.learn`)."""
        if self._learned is None:
            from kgreason.rules.language import parse_rules
            from kgreason.rules.learn import learn_composition_rules

            learned = learn_composition_rules(self.train_stories, vocabulary=[*self.relations, *self.labels])
            self._learned = parse_rules(learned.to_text(header="learned from the suite's training stories"))
        return self._learned

    def train_model(self, config, *, name: str):
        """Train (or reuse) the run of ``config`` (:meth:`experiment_config`); returns (a predictor named
        ``name`` on its best model, train seconds)."""
        from kgreason.bench.predictors import ModelPredictor
        from kgreason.models.fused import KGReasonModel
        from kgreason.runs.experiment import prepare, run_experiment

        result = run_experiment(config, seed=config.trainer.seed, resume=self.resume)
        model = KGReasonModel.from_pretrained(Path(result.run_dir) / "best")
        # the predictor encodes the examples it is given; the splits prepare() encodes are not needed again
        prepared = prepare(
            dataclasses.replace(config, data=dataclasses.replace(config.data, max_train=1, max_eval=1)),
            model=model,
        )
        predictor = ModelPredictor(
            name=name,
            model=model,
            prepared=prepared,
            batch_size=config.trainer.eval_batch_size,
            precision=config.trainer.precision,
        )
        return predictor, float(result.train_seconds)

    # ------------------------------------------------------------------------------------------- scoring
    def score(
        self,
        predictor,
        *,
        variant: str,
        constrained: bool,
        seed: int,
        train_seconds: float,
        splits,
        soft: bool = False,
    ):
        test = splits.test
        started = time.perf_counter()
        logits = predictor.logits(test)  # (N, L)
        predict_seconds = time.perf_counter() - started
        extraction = getattr(predictor, "last", None)  # what the neuro-symbolic extractor read (test stories)
        derivations = dict(getattr(predictor, "last_counts", None) or {})
        index = logits.argmax(-1)  # (N,)
        predictions = [self.labels[i] for i in index.tolist()]
        from kgreason.rules import example_worlds, violation_rate

        forbidden = self.constraints.masks(example_worlds(test)).forbidden  # (N, L)

        depth_accuracy = accuracy_by_depth(predictions, test)
        train_depths = list(self.suite.train_depths)
        unseen = [d for d in depth_accuracy if d not in train_depths]
        train_sample = stratified_sample(splits.train, size=min(300, len(splits.train)), seed=seed)
        train_predictions = predictor(train_sample) if train_sample else []
        train_accuracy = (
            sum(p == e.label for p, e in zip(train_predictions, train_sample, strict=True))
            / len(train_sample)
            if train_sample
            else None
        )
        run = VariantRun(
            variant=variant,
            constrained=constrained,
            seed=seed,
            depth_accuracy=depth_accuracy,
            accuracy=sum(p == e.label for p, e in zip(predictions, test, strict=True)) / max(1, len(test)),
            iid_accuracy=_mean_over(depth_accuracy, train_depths),
            ood_accuracy=_mean_over(depth_accuracy, unseen),
            train_accuracy=train_accuracy,
            violation_rate=float(violation_rate(index, forbidden)),
            train_seconds=train_seconds,
            num_test=len(test),
            soft=soft,
        )
        run.extra["predict_seconds"] = predict_seconds
        if getattr(predictor, "fitted", None):  # what a fusion chose on dev (weight, dev accuracies)
            run.extra["fusion"] = dict(predictor.fitted)
        if hasattr(extraction, "unread"):
            run.extra["facts_unread"] = extraction.unread
            run.extra["facts_total"] = extraction.total
        if hasattr(extraction, "quality"):
            run.extra["reader_quality"] = {str(k): v for k, v in extraction.quality.items()}
        if derivations:
            run.extra["derivations"] = derivations  # unique / ambiguous / none on the test stories
        noises = {e.metadata.get("noise") for e in test}
        if len(noises) > 1 and None not in noises:  # CLUTRR's robustness sets: clean / supporting / ...
            run.extra["noise_accuracy"] = accuracy_by(predictions, test, key=lambda e: e.metadata["noise"])
        contradicted = self.text_contradicted(test)
        if any(contradicted):
            # accuracy on the stories whose text states every fact as the gold graph does, and on the rest
            for key, keep in (("faithful", False), ("contradicted", True)):
                pairs = [(p, e) for p, e, c in zip(predictions, test, contradicted, strict=True) if c == keep]
                run.extra[f"{key}_accuracy"] = {
                    str(k): v
                    for k, v in accuracy_by_depth([p for p, _ in pairs], [e for _, e in pairs]).items()
                }
        return run

    def text_contradicted(self, stories: Sequence[Example]) -> list[bool]:
        """Per story, whether its text states some fact as the inverse of the gold relation
        (:func:`~kgreason.data.clutrr.stated_facts`); cached per list of stories."""
        from kgreason.data.clutrr import stated_facts

        if self._contradicted[0] is not stories:
            self._contradicted = (stories, [bool(stated_facts(e).contradicted) for e in stories])
        return self._contradicted[1]

    def probe(self, predictor, run: VariantRun, *, sample: list[Example], seed: int) -> None:
        """Run the suite's probes that apply to the variant (what it reads covers what they need)."""
        from kgreason.probes.registry import ProbeContext, ordered_probes, probes

        spec = self.suite.probes
        started = time.perf_counter()
        context = ProbeContext(
            predictor=predictor,
            sample=sample,
            reference=predictor(sample),  # predictions on the unedited sample, shared by every probe
            seed=seed,
            labels=self.labels,
            rules=self.rules,
            relations=self.relations,
            options={**dataclasses.asdict(spec), "max_length": self.suite.max_length},
            reads=reasoning_variants.get(run.variant).reads,
        )
        for name in ordered_probes(spec.run):
            probe = probes.get(name)
            if probe.applies(context.reads):
                run.probes[name] = probe.run(context)
        run.extra["probe_seconds"] = time.perf_counter() - started

    # ------------------------------------------------------------------------------------------- run
    def run(self, *, seeds: Sequence[int] | None = None) -> ReasoningReport:
        from kgreason.rules import LabelConstraints, kinship_rules

        started = time.perf_counter()
        splits = self.read()
        self.labels = list(splits.labels)
        self.train_stories = splits.train
        self.dev_stories = splits.dev
        self.relations = list(
            splits.info.get("relations") or sorted({f[1] for e in splits.train for f in e.facts or ()})
        )
        self.rules = kinship_rules()
        self.constraints = LabelConstraints(rules=self.rules, labels=self.labels)
        runs: list[VariantRun] = []
        seeds = list(seeds or self.suite.seeds)
        for seed in seeds:
            sample = stratified_sample(splits.test, size=self.suite.probes.examples, seed=seed)
            todo = [(v, False) for v in self.suite.variants]
            todo += [(v, True) for v in self.suite.soft_constraints]
            for variant, soft in todo:
                logger.info(
                    "suite %s: seed %d, variant %s%s", self.suite.name, seed, variant, " (soft)" * soft
                )
                predictor, seconds = self.train_variant(variant, seed, soft=soft)
                run = self.score(
                    predictor,
                    variant=variant,
                    constrained=False,
                    seed=seed,
                    train_seconds=seconds,
                    splits=splits,
                    soft=soft,
                )
                self.probe(predictor, run, sample=sample, seed=seed)
                runs.append(run)
                if self.suite.constraints and reasoning_variants.get(variant).constrainable:
                    from kgreason.bench.predictors import ConstrainedPredictor

                    constrained = ConstrainedPredictor(base=predictor, constraints=self.constraints)
                    runs.append(
                        self.score(
                            constrained,
                            variant=variant,
                            constrained=True,
                            seed=seed,
                            train_seconds=seconds,
                            splits=splits,
                            soft=soft,
                        )
                    )
        depths = sorted({int(e.metadata["depth"]) for e in splits.test})
        info = {
            "dataset": splits.name,
            "options": splits.options,
            "sizes": {"train": len(splits.train), "dev": len(splits.dev), "test": len(splits.test)},
            "seeds": seeds,
        }
        contradicted = self.text_contradicted(splits.test)
        if any(contradicted):
            # per depth: (test stories whose text states some fact inversely, test stories)
            info["contradicted_stories"] = {
                d: [
                    sum(
                        c for e, c in zip(splits.test, contradicted, strict=True) if e.metadata["depth"] == d
                    ),
                    sum(e.metadata["depth"] == d for e in splits.test),
                ]
                for d in depths
            }
        return ReasoningReport(
            suite=self.suite, runs=runs, seconds=time.perf_counter() - started, depths=depths, info=info
        )


def _same_settings(recorded: dict[str, Any] | None, settings: dict[str, Any]) -> bool:
    """Whether a finished reader's recorded settings are ``settings``; a setting the record lacks (written
    before it existed) counts as its default, and the record's ``seed`` (the folder's) is ignored."""
    if not isinstance(recorded, dict):
        return False
    defaults = dataclasses.asdict(ReaderSpec())
    recorded = {k: v for k, v in recorded.items() if k != "seed"}
    return set(recorded) <= set(settings) and all(
        recorded.get(key, defaults.get(key, object())) == value for key, value in settings.items()
    )


def _renamed(example: Example, rng, *, genders: bool = False) -> Example:
    """``example`` with its people consistently renamed, for training the story reader: names of the same gender
    (``genders``), or names drawn regardless of gender, so that a person's gender is read from the text (pronouns,
    relation words) rather than from the name."""
    from kgreason.data.names import FEMALE_NAMES, MALE_NAMES
    from kgreason.probes.interventions import rename_entities

    pool = None if genders else {"male": (*MALE_NAMES, *FEMALE_NAMES), "female": (*MALE_NAMES, *FEMALE_NAMES)}
    return rename_entities(example, rng=rng, names_by_gender=pool)


def mean_std(values: Sequence[float | None]) -> tuple[float, float] | None:
    """Mean and sample std of the values that exist (std 0 for one value); ``None`` when none do."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None
    return statistics.fmean(present), (statistics.stdev(present) if len(present) > 1 else 0.0)
