"""Train a risk model with the shared trainer, calibrate it on dev, test it once, and write the run folder.

Run folder (``RiskConfig.output_dir``)::

    config.yaml        the resolved RiskConfig
    best/              the dev-selected model (``KGReasonModel.save_pretrained``)
    featurizer.json    feature scaler, featurizer settings and whose outcomes the inputs may show
    calibrator.json    the calibrator fitted on dev scores (JSON, no pickle)
    metrics.json       dev and test metrics (raw and calibrated), threshold, PSI, model version
    scores.csv         dev and test scores of every company (for plots and audits)
    checkpoints/last/  the resumable checkpoint; tensorboard/ the logs
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgreason.core.errors import ConfigError
from kgreason.finance.checks import (
    default_split,
    labels_source,
    leakage_warnings,
    missing_splits,
    split_counts,
)
from kgreason.finance.config import CALIBRATIONS, RISK_VARIANTS, GraphSourceConfig, RiskConfig
from kgreason.finance.dataset import RISK_LABELS, CompanyFeaturizer, RiskTask
from kgreason.finance.errors import FinanceDataError
from kgreason.finance.graph import CompanyGraph
from kgreason.finance.sources import read_company_graph

logger = logging.getLogger(__name__)

_GRAPHS: dict[str, CompanyGraph] = {}


def load_company_graph(config: GraphSourceConfig) -> CompanyGraph:
    """The company graph a config names (kept in memory per source, so seeds and variants share one).

    ``data.source`` is a registered company-graph source (:data:`kgreason.finance.sources.company_graph_sources`).

    Labelled companies without any split get the seeded stratified default split (logged at INFO).
    """
    key = json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)
    if key in _GRAPHS:
        return _GRAPHS[key]
    graph = read_company_graph(config)
    graph.validate()
    graph, note = default_split(graph, seed=config.split_seed, fractions=config.split_fractions)
    if note:
        logger.info("%s", note)
    if len(_GRAPHS) >= 4:
        _GRAPHS.pop(next(iter(_GRAPHS)))
    _GRAPHS[key] = graph
    return graph


def model_config_for(config: RiskConfig, featurizer: CompanyFeaturizer) -> Any:
    """The shared ModelConfig of a risk run, sized from the graph."""
    m = config.model
    if m.variant not in RISK_VARIANTS:
        raise ConfigError(f"model.variant must be one of {', '.join(RISK_VARIANTS)}, got {m.variant!r}")
    g = featurizer.graph
    return dataclasses.replace(
        m,
        head="sequence",
        num_labels=len(RISK_LABELS),
        node_features="attributes",
        node_status=True,
        seed_readout=True,
        num_entities=g.num_nodes,
        num_relations=len(g.relations),
        num_features=len(g.feature_names) if config.use_features else 0,
        feature_monotone=featurizer.signs if config.use_features else [],
    )


@dataclass
class RiskPrepared:
    """A built model, its inputs and everything needed to train and score it."""

    graph: CompanyGraph
    featurizer: CompanyFeaturizer
    task: RiskTask
    model: Any
    tokenizer: Any
    collator: Any
    max_length: int

    def encode(self, rows: Any, **kwargs: Any) -> Any:
        """Encoded examples of company rows (see :meth:`CompanyFeaturizer.encode`)."""
        return self.featurizer.encode(
            rows,
            task=self.task,
            tokenizer=self.tokenizer,
            max_length=self.max_length,
            graphs=self.model.reasoner is not None,
            **kwargs,
        )


def prepare_risk_model(
    config: RiskConfig, *, graph: CompanyGraph | None = None, model: Any = None
) -> RiskPrepared:
    """Graph -> featurizer -> model (new, or ``model`` as given) and its tokenizer and collator."""
    import torch

    from kgreason.core.batch import Collator
    from kgreason.models.fused import KGReasonModel
    from kgreason.models.knowledge import EntityFeatures

    graph = graph if graph is not None else load_company_graph(config.data)
    featurizer = CompanyFeaturizer.build(graph, config=config.featurizer)
    if model is None:
        attributes = torch.from_numpy(featurizer.node_attributes())  # (N, d)
        model = KGReasonModel(
            model_config_for(config, featurizer), entity_features=EntityFeatures(attributes=attributes)
        )
    tokenizer = model.tokenizer
    if tokenizer is None:  # graph variant: the task still tokenises (lengths, batching)
        from transformers import AutoTokenizer

        from kgreason.encoders.resolve import resolve_model_path

        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(config.model.encoder))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return RiskPrepared(
        graph=graph,
        featurizer=featurizer,
        task=RiskTask(),
        model=model,
        tokenizer=tokenizer,
        collator=Collator(pad_token_id=pad),
        max_length=model.config.max_length,
    )


@dataclass
class RiskRunResult:
    """What one seed of a risk run produced."""

    run_dir: Path
    seed: int
    model_version: str
    dev: dict[str, float]
    test: dict[str, float]
    test_raw: dict[str, float]
    threshold: float
    calibration: str
    score_psi: float
    train_seconds: float


def weights_version(name: str, weights: Path) -> str:
    """``<name>-<first 12 hex of the weights' sha256>``."""
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"{name}-{digest.hexdigest()[:12]}"


def train_risk_model(
    config: RiskConfig, *, seed: int, graph: CompanyGraph | None = None, resume: bool = True
) -> RiskRunResult:
    """Train, select on dev AUC, calibrate on dev, test once; write the run folder (see the module docs).

    A finished run folder (``metrics.json`` present with the same config) is read back, not retrained.
    """
    import yaml

    from kgreason.core.atomic import atomic_write_text
    from kgreason.core.config import config_to_dict
    from kgreason.finance.calibration import Calibrator, select_calibrator
    from kgreason.finance.metrics import best_f1_threshold, psi, risk_metrics
    from kgreason.training.seed import seed_everything
    from kgreason.training.trainer import Trainer

    if config.calibration not in CALIBRATIONS:
        raise ConfigError(f"calibration must be one of {', '.join(CALIBRATIONS)}, got {config.calibration!r}")
    run_dir = Path(config.output_dir.format(name=config.name, seed=seed))
    resolved = config_to_dict(dataclasses.replace(config, seeds=[seed]))
    done = _finished(run_dir, resolved, seed)
    if done is not None:
        return done
    seed_everything(seed)
    g = load_company_graph(config.data) if graph is None else graph
    g, note = default_split(g, seed=config.data.split_seed, fractions=config.data.split_fractions)
    if note:
        logger.info("%s", note)
    for warning in leakage_warnings(g):
        logger.warning("%s", warning)
    empty = missing_splits(g)
    if empty:
        raise FinanceDataError(
            f"no labelled {' / '.join(empty)} companies (labelled per split: {split_counts(g)})",
            path=labels_source(g),
            expected="labelled train, dev and test companies: a 'split' column with train / dev / test, or "
            "no split at all for the seeded default split",
        )
    rows = {split: g.labelled_rows(split) for split in ("train", "dev", "test")}
    prepared = prepare_risk_model(config, graph=g)
    data = {split: prepared.encode(found) for split, found in rows.items()}
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    trainer_config = dataclasses.replace(config.trainer, seed=seed, metric=config.trainer.metric or "auc")
    trainer = Trainer(
        model=prepared.model,
        task=prepared.task,
        config=trainer_config,
        train=data["train"],
        dev=data["dev"],
        collator=prepared.collator,
        output_dir=run_dir,
    )
    start = time.perf_counter()
    trainer.train(resume=resume)
    seconds = time.perf_counter() - start
    p = {
        split: np.asarray(trainer.predict(data[split]), dtype=np.float64)
        for split in ("train", "dev", "test")
    }
    y = {split: g.labels[found].astype(np.int64) for split, found in rows.items()}
    if config.calibration == "auto":
        calibrator = select_calibrator(p["dev"], y["dev"], seed=seed).calibrator
    else:
        calibrator = Calibrator(method=config.calibration).fit(p["dev"], y["dev"])
    cal = {split: calibrator.transform(values) for split, values in p.items()}
    threshold = float(best_f1_threshold(y["dev"], cal["dev"]))
    dev = risk_metrics(y["dev"], cal["dev"], threshold=threshold).to_dict()
    test = risk_metrics(y["test"], cal["test"], threshold=threshold).to_dict()
    test_raw = risk_metrics(y["test"], p["test"], threshold=0.5).to_dict()
    score_psi = float(psi(p["train"], p["test"]))
    version = weights_version(config.name, run_dir / "best" / "model.safetensors")
    calibrator.save(run_dir / "calibrator.json")
    prepared.featurizer.save(run_dir / "featurizer.json")
    lines = ["company_id,split,label,score,probability"]
    for split in ("dev", "test"):
        for row, raw, prob in zip(rows[split].tolist(), p[split].tolist(), cal[split].tolist(), strict=True):
            lines.append(
                f"{g.nodes[int(g.companies[row])]},{split},{int(g.labels[row])},{raw:.6f},{prob:.6f}"
            )
    atomic_write_text(run_dir / "scores.csv", "\n".join(lines) + "\n")
    result = RiskRunResult(
        run_dir=run_dir,
        seed=seed,
        model_version=version,
        dev=dev,
        test=test,
        test_raw=test_raw,
        threshold=threshold,
        calibration=calibrator.method,
        score_psi=score_psi,
        train_seconds=seconds,
    )
    payload = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(result).items()}
    payload["graph"] = g.summary()
    atomic_write_text(run_dir / "metrics.json", json.dumps(payload, indent=2) + "\n")
    return result


def _finished(run_dir: Path, resolved: dict[str, Any], seed: int) -> RiskRunResult | None:
    import yaml

    metrics, saved = run_dir / "metrics.json", run_dir / "config.yaml"
    if not (metrics.is_file() and saved.is_file()):
        return None
    if yaml.safe_load(saved.read_text(encoding="utf-8")) != resolved:
        raise ConfigError(
            f"{run_dir} holds a finished run of another config; remove it or change name / output_dir"
        )
    data = json.loads(metrics.read_text(encoding="utf-8"))
    data.pop("graph", None)
    data["run_dir"] = Path(data["run_dir"])
    return RiskRunResult(**data)
