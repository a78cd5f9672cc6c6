"""Run an experiment: read the data, build task and model, train with dev selection, test once, record all.

A run folder holds ``config.yaml`` (the resolved config), ``run.json`` (seed, package versions, code revision,
data checksums, machine, times), ``metrics.json`` (best dev metrics, test metrics, throughput), ``best/`` (the
dev-selected model, ``save_pretrained`` format), ``checkpoints/last/`` (resumable state) and ``tensorboard/``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kgreason.core.atomic import atomic_write_text
from kgreason.core.config import build_config, config_to_dict, read_yaml_mapping
from kgreason.core.digest import source_fingerprint
from kgreason.core.errors import ConfigError
from kgreason.core.registry import did_you_mean
from kgreason.runs.config import ExperimentConfig
from kgreason.runs.provenance import (
    file_checksums,
    git_revision,
    machine_info,
    package_versions,
    stale_inputs,
)

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What one seed of an experiment produced."""

    run_dir: Path
    seed: int
    dev: dict[str, float]
    test: dict[str, float] | None
    train_seconds: float
    train_samples_per_s: float
    best_step: int


@dataclass
class ExperimentSummary:
    """Mean ± sample std over the seeds of an experiment."""

    name: str
    seeds: list[int]
    dev: dict[str, tuple[float, float]]
    test: dict[str, tuple[float, float]]
    train_seconds: tuple[float, float]
    runs: list[RunResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def fmt(stats: dict[str, tuple[float, float]]) -> dict[str, dict[str, float]]:
            return {k: {"mean": m, "std": s} for k, (m, s) in stats.items()}

        return {
            "name": self.name,
            "seeds": self.seeds,
            "dev": fmt(self.dev),
            "test": fmt(self.test),
            "train_seconds": {"mean": self.train_seconds[0], "std": self.train_seconds[1]},
            "runs": [
                {
                    "run_dir": str(r.run_dir),
                    "seed": r.seed,
                    "dev": r.dev,
                    "test": r.test,
                    "train_seconds": r.train_seconds,
                    "train_samples_per_s": r.train_samples_per_s,
                    "best_step": r.best_step,
                }
                for r in self.runs
            ],
        }


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(name: str, runs: Sequence[RunResult]) -> ExperimentSummary:
    """Aggregate runs of several seeds (metrics present in every run)."""
    dev_keys = set.intersection(*(set(r.dev) for r in runs)) if runs else set()
    tests = [r.test for r in runs if r.test is not None]
    test_keys = set.intersection(*(set(t) for t in tests)) if tests and len(tests) == len(runs) else set()
    return ExperimentSummary(
        name=name,
        seeds=[r.seed for r in runs],
        dev={k: _mean_std([r.dev[k] for r in runs]) for k in sorted(dev_keys)},
        test={k: _mean_std([t[k] for t in tests]) for k in sorted(test_keys)},
        train_seconds=_mean_std([r.train_seconds for r in runs]),
        runs=list(runs),
    )


def run_dir_for(config: ExperimentConfig, seed: int) -> Path:
    """The run folder of ``config`` for ``seed`` (``output_dir`` with ``{name}`` and ``{seed}`` filled in)."""
    try:
        return Path(config.output_dir.format(name=config.name, seed=seed))
    except (KeyError, IndexError, ValueError, AttributeError) as err:
        raise ConfigError(
            f"output_dir {config.output_dir!r}: only {{name}} and {{seed}} can be filled in"
        ) from err


def check_experiment(config: ExperimentConfig) -> None:
    """Refuse what can be refused before reading data or building a model (the schema checked the values).

    Raises:
        ConfigError: an unregistered task or dataset reader, an ``output_dir`` that cannot be filled in, a
            rule-constraint loss without rules.
    """
    from kgreason.data.readers import readers
    from kgreason.tasks.registry import tasks

    for key, registry, name in (("task", tasks, config.task), ("data.dataset", readers, config.data.dataset)):
        if name not in registry:
            names = registry.names()
            raise ConfigError(
                f"{key}: unknown {registry.kind} {name!r}.{did_you_mean(name, names)} "
                f"Expected one of {', '.join(names)}"
            )
    run_dir_for(config, config.trainer.seed)
    if config.model.constraint_weight > 0 and not config.knowledge.rules:
        raise ConfigError("model.constraint_weight > 0 needs a rule file: set knowledge.rules (e.g. kinship)")


@dataclass
class PreparedExperiment:
    """Everything built from a config before training."""

    task: Any
    tokenizer: Any
    model: Any
    collator: Any
    train: Any
    dev: Any
    test: Any
    data_files: list[Path]
    featurizer: Any = None
    max_length: int = 128

    def encode(self, examples: list, *, desc: str = "encode") -> Any:
        """Encode more examples the way the splits were (e.g. a probe's edited copies)."""
        return encode_examples(
            examples,
            task=self.task,
            tokenizer=self.tokenizer,
            featurizer=self.featurizer,
            max_length=self.max_length,
            desc=desc,
        )


def encode_examples(
    examples: list, *, task: Any, tokenizer: Any, featurizer: Any, max_length: int, desc: str = "encode"
) -> Any:
    """Knowledge attached (when the variant reads any) and the task's encoding -> an ``EncodedDataset``."""
    if featurizer is not None:
        examples = featurizer.augment(examples)
    dataset = task.encode_all(examples, tokenizer=tokenizer, max_length=max_length, desc=desc)
    return featurizer.attach(dataset) if featurizer is not None else dataset


def story_relations(splits: Any) -> list[str] | None:
    """The relation vocabulary of a dataset whose examples bring their own facts (``None``: no facts).

    A reader may fix it in ``info["relations"]`` (so unseen relations in edited test copies still have ids);
    otherwise it is the sorted set of relations in all splits.
    """
    examples = [*splits.train, *splits.dev, *splits.test]
    if not any(example.facts for example in examples):
        return None
    fixed = splits.info.get("relations")
    if fixed:
        return list(fixed)
    return sorted({fact[1] for example in examples for fact in example.facts or ()})


def prepare(config: ExperimentConfig, *, model: Any = None) -> PreparedExperiment:
    """Read data, build the task, load the encoder and model, retrieve knowledge, and encode every split.

    ``model``: an already built model (e.g. ``KGReasonModel.from_pretrained``) instead of a new one. A dataset
    whose examples carry their own facts (a story graph, as in CLUTRR) needs no knowledge base: the graph
    variants read each example's facts.
    """
    from kgreason.core.batch import Collator
    from kgreason.data.readers import read_dataset
    from kgreason.data.splits import subsample
    from kgreason.models.fused import KGReasonModel
    from kgreason.tasks.registry import build_task

    splits = read_dataset(config.data.dataset, data_dir=config.data.data_dir, **config.data.options)
    task = build_task(config.task, labels=splits.labels)
    model_config = dataclasses.replace(config.model, head=task.head, num_labels=max(task.num_labels, 1))
    featurizer, kb = None, None
    relations = story_relations(splits) if not config.knowledge.kb.source else None
    if model_config.variant != "text" and relations is not None:
        from kgreason.models.knowledge import KnowledgeFeaturizer

        if model_config.node_features != "learned":
            raise ConfigError(
                f"dataset {config.data.dataset!r} brings per-example story graphs without KB entities; set "
                f"model.node_features: learned (got {model_config.node_features!r})"
            )
        featurizer = KnowledgeFeaturizer(retriever=None, variant=model_config.variant, relations=relations)
        model_config = dataclasses.replace(model_config, num_entities=0, num_relations=len(relations))
    elif model_config.variant != "text":
        featurizer, kb = _knowledge(config)
        model_config = dataclasses.replace(
            model_config, num_entities=kb.num_entities, num_relations=kb.num_relations
        )
    if model is None:
        entity_features = None
        if kb is not None:
            from kgreason.models.knowledge import build_entity_features

            entity_features = build_entity_features(model_config, kb=kb)
        model = KGReasonModel(model_config, entity_features=entity_features)
    tokenizer = model.tokenizer
    if tokenizer is None:  # the graph variant has no encoder; the task still tokenises (lengths, batching)
        from transformers import AutoTokenizer

        from kgreason.encoders.resolve import resolve_model_path

        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(model_config.encoder))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    prepared = PreparedExperiment(
        task=task,
        tokenizer=tokenizer,
        model=model,
        collator=Collator(pad_token_id=pad_id),
        train=None,
        dev=None,
        test=None,
        data_files=list(getattr(splits, "files", [])),
        featurizer=featurizer,
        max_length=model_config.max_length,
    )
    prepared.train = prepared.encode(subsample(splits.train, config.data.max_train), desc="encode train")
    prepared.dev = prepared.encode(subsample(splits.dev, config.data.max_eval), desc="encode dev")
    prepared.test = prepared.encode(subsample(splits.test, config.data.max_eval), desc="encode test")
    if model_config.constraint_weight > 0:
        if not config.knowledge.rules:
            raise ConfigError(
                "model.constraint_weight > 0 needs a rule file: set knowledge.rules (e.g. kinship)"
            )
        prepared.train = attach_label_masks(prepared.train, task=task, config=config.knowledge)
        prepared.dev = attach_label_masks(prepared.dev, task=task, config=config.knowledge)
    return prepared


def attach_label_masks(dataset: Any, *, task: Any, config: Any) -> Any:
    """A copy of ``dataset`` whose examples carry what the rules entail / contradict among the task's labels."""
    from kgreason.rules import LabelConstraints, example_worlds, resolve_rules
    from kgreason.tasks.base import EncodedDataset

    if not len(dataset):
        return dataset
    constraints = LabelConstraints(rules=resolve_rules(config.rules), labels=task.labels)
    masks = constraints.masks(example_worlds(dataset.examples, facts=config.rule_facts))
    encoded = [
        dataclasses.replace(item, label_masks=(entailed.tolist(), forbidden.tolist()))
        for item, entailed, forbidden in zip(dataset.encoded, masks.entailed, masks.forbidden, strict=True)
    ]
    return EncodedDataset(examples=dataset.examples, encoded=encoded, truncated=dataset.truncated)


def _knowledge(config: ExperimentConfig):
    from kgreason.kb.sources import open_kb
    from kgreason.models.knowledge import KnowledgeFeaturizer
    from kgreason.retrieval.retriever import KnowledgeRetriever

    if not config.knowledge.kb.source:
        raise ConfigError(
            f"model.variant {config.model.variant!r} needs a knowledge base: set knowledge.kb.source (or use a "
            "dataset whose examples carry their own facts)"
        )
    kb = open_kb(config.knowledge.kb.source, format=config.knowledge.kb.format)
    r = config.knowledge.retrieval
    retriever = KnowledgeRetriever(
        kb=kb,
        hops=r.hops,
        max_nodes=r.max_nodes,
        top_k=r.top_k,
        facts=config.model.variant == "fused_facts",
        min_link_score=r.min_link_score,
        index_type=r.index_type,
    )
    return KnowledgeFeaturizer(retriever=retriever, variant=config.model.variant, max_facts=r.top_k), kb


def _is_main_process() -> bool:
    """Rank 0 under ``torchrun`` (or a single process): the one that writes the run's records."""
    return int(os.environ.get("RANK", "0")) == 0


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    if _is_main_process():
        atomic_write_text(path, json.dumps(payload, indent=2, default=str) + "\n")


def run_experiment(
    config: ExperimentConfig,
    *,
    seed: int | None = None,
    output_dir: str | Path | None = None,
    resume: bool = True,
) -> RunResult:
    """Train one seed of ``config`` (resuming an interrupted run in the same folder), then test once."""
    from kgreason.training.trainer import Trainer

    seed = config.trainer.seed if seed is None else seed
    config = dataclasses.replace(config, trainer=dataclasses.replace(config.trainer, seed=seed))
    check_experiment(config)
    run_dir = Path(output_dir) if output_dir is not None else run_dir_for(config, seed)
    if resume:
        finished = _finished_run(run_dir, config, seed)
        if finished is not None:
            logger.info("%s: already finished; reusing its metrics (pass resume=False to retrain)", run_dir)
            return finished
    run_dir.mkdir(parents=True, exist_ok=True)
    if _is_main_process():
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(config), sort_keys=False))
    started = time.time()
    from kgreason.training.seed import seed_everything

    seed_everything(seed)
    prepared = prepare(config)
    record = {
        "name": config.name,
        "seed": seed,
        "started": started,
        "status": "running",
        "packages": package_versions(),
        "git": git_revision(),
        "fingerprint": {"code": source_fingerprint()},
        "machine": machine_info(),
        "data": {
            "dataset": config.data.dataset,
            "options": config.data.options,
            "sizes": {"train": len(prepared.train), "dev": len(prepared.dev), "test": len(prepared.test)},
            "truncated": {
                "train": prepared.train.truncated,
                "dev": prepared.dev.truncated,
                "test": prepared.test.truncated,
            },
            "checksums": file_checksums(prepared.data_files),
        },
    }
    _write_json(run_dir / "run.json", record)
    trainer = Trainer(
        model=prepared.model,
        task=prepared.task,
        config=config.trainer,
        train=prepared.train,
        dev=prepared.dev,
        collator=prepared.collator,
        output_dir=run_dir,
    )
    result = trainer.train(resume=resume)
    dev_metrics = dict(result.best_metrics) if result.best_metrics else {}
    test_metrics = test_details = None
    if config.evaluate_test and len(prepared.test):
        best = _load_best(run_dir, fallback=prepared.model)
        trainer.model = best
        evaluated = trainer.evaluate(prepared.test, desc="test")
        test_metrics = dict(evaluated.metrics.values)
        test_details = _json_safe(evaluated.metrics.extra)
        _write_predictions(run_dir / PREDICTIONS_NAME, prepared.test.examples, evaluated.predictions)
    metrics = {
        "dev": dev_metrics,
        "test": test_metrics,
        "test_details": test_details,
        "best_step": result.best_step,
        "train_seconds": result.train_seconds,
        "train_samples_per_s": result.train_samples_per_s,
        "stopped_early": result.stopped_early,
    }
    _write_json(run_dir / "metrics.json", metrics)
    record.update(status="finished", finished=time.time())
    _write_json(run_dir / "run.json", record)
    return RunResult(
        run_dir=run_dir,
        seed=seed,
        dev=dev_metrics,
        test=test_metrics,
        train_seconds=result.train_seconds,
        train_samples_per_s=result.train_samples_per_s,
        best_step=result.best_step,
    )


#: Test predictions of a run, one JSON object per line: index, gold label, predicted label.
PREDICTIONS_NAME = "predictions-test.jsonl"


def _json_safe(value: Any) -> Any:
    """``value`` with tuples as lists and numpy scalars as Python numbers (what ``json`` writes faithfully)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def _write_predictions(path: Path, examples: Sequence[Any], predictions: Sequence[Any]) -> None:
    """One line per test example: where it is, what it should be and what the model said (per-class errors)."""
    if not _is_main_process():
        return
    rows = (
        json.dumps(
            _json_safe({"index": i, "uid": example.uid, "gold": example.label, "predicted": predicted})
        )
        for i, (example, predicted) in enumerate(zip(examples, predictions, strict=True))
    )
    atomic_write_text(path, "".join(f"{row}\n" for row in rows))


def _finished_run(run_dir: Path, config: ExperimentConfig, seed: int) -> RunResult | None:
    """The result of a finished run of the same config in ``run_dir``, else ``None``.

    Raises:
        ConfigError: the folder holds a run of a different config (it is never overwritten silently).
    """
    metrics_path, record_path, config_path = (
        run_dir / n for n in ("metrics.json", "run.json", "config.yaml")
    )
    if not (metrics_path.is_file() and record_path.is_file() and config_path.is_file()):
        return None
    record = _read_record(record_path, "the run record")
    if record.get("status") != "finished":
        return None
    saved = read_yaml_mapping(config_path, what="run config")
    if saved != yaml.safe_load(yaml.safe_dump(config_to_dict(config), sort_keys=False)):
        raise ConfigError(
            f"{run_dir} holds a finished run of a different config; pass --no-resume to replace it or choose "
            "another output folder"
        )
    stale = stale_inputs(record, code=source_fingerprint())
    if stale is not None:
        logger.warning("%s: not reusing the finished run because %s; training it again", run_dir, stale)
        return None
    metrics = _read_record(metrics_path, "the run's metrics")
    try:
        return RunResult(
            run_dir=run_dir,
            seed=seed,
            dev=metrics["dev"],
            test=metrics["test"],
            train_seconds=metrics["train_seconds"],
            train_samples_per_s=metrics["train_samples_per_s"],
            best_step=metrics["best_step"],
        )
    except KeyError as err:
        raise ConfigError(
            f"{metrics_path}: no {err.args[0]!r} (expected the metrics written by kgreason train; "
            "pass --no-resume to retrain)"
        ) from None


def _read_record(path: Path, what: str) -> dict[str, Any]:
    """A JSON object a run wrote (``run.json``, ``metrics.json``); a damaged one is a :class:`ConfigError`."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"{path}: unreadable ({err}); expected {what} as JSON (pass --no-resume to retrain)"
        ) from None
    if not isinstance(record, dict):
        raise ConfigError(f"{path}: expected {what} as a JSON object (pass --no-resume to retrain)")
    return record


def _load_best(run_dir: Path, *, fallback: Any) -> Any:
    from kgreason.models.fused import KGReasonModel

    best = run_dir / "best"
    if not (best / "config.json").is_file():
        logger.warning("%s: no best checkpoint; testing the last model", run_dir)
        return fallback
    return KGReasonModel.from_pretrained(best)


def load_run_config(run_dir: str | Path) -> ExperimentConfig:
    """The resolved config a run folder was trained with."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a kgreason run folder (config.yaml is missing)")
    data = read_yaml_mapping(path, what="run config")
    try:
        return build_config(ExperimentConfig, data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err} (expected the config kgreason train wrote)") from None


def evaluate_run(run_dir: str | Path, *, split: str = "test") -> dict[str, float]:
    """Evaluate a run's best model on ``split`` (``dev`` or ``test``); writes ``eval_<split>.json``."""
    from kgreason.training.trainer import Trainer

    if split not in {"dev", "test"}:
        raise ConfigError(f"split must be 'dev' or 'test', got {split!r}")
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    from kgreason.models.fused import KGReasonModel

    model = KGReasonModel.from_pretrained(run_dir / "best")
    prepared = prepare(config, model=model)
    trainer = Trainer(
        model=model,
        task=prepared.task,
        config=dataclasses.replace(config.trainer, tensorboard=False),
        train=prepared.train,
        dev=prepared.dev,
        collator=prepared.collator,
        output_dir=run_dir,
    )
    dataset = prepared.test if split == "test" else prepared.dev
    metrics = dict(trainer.evaluate(dataset, desc=split).metrics.values)
    _write_json(run_dir / f"eval_{split}.json", {"split": split, "metrics": metrics, "time": time.time()})
    return metrics
