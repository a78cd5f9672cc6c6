"""The finance suite: every risk-model variant and baseline on one company graph, seeds × variants, one table.

Variants (same splits, same seeds):

* baselines: ``logistic`` and ``gbm`` on the tabular features, ``logistic+graph`` and ``gbm+graph`` adding
  known-default counts and degrees of neighbours per relation (the cheap graph baseline a risk team would build
  first);
* the shared fused model (:mod:`kgreason.finance.training`): ``graph`` (GNN over the ego subgraph + features;
  also the "drop text" ablation), ``text`` (the encoder on the company's text only), ``fused`` (text + graph +
  features + rules), ``fused-no-rules`` (no guarantor rule, no monotone term), ``fused-no-graph`` (text +
  features: the "drop graph" ablation), ``fused-finetuned`` (``fused`` with the encoder fine-tuned instead of
  frozen; about 4x the training time on CPU).

Test metrics are reported once per seed with the F1 threshold chosen on dev; mean ± std over seeds. On the
generator, the suite also checks the causal probes against the truth: the fused model's what-if effect of a
guaranteed company defaulting on its guarantor vs the structural model's interventional effect.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgreason.core.errors import ConfigError

#: Model variants as dotted overrides of the suite's base RiskConfig.
MODEL_VARIANTS: dict[str, list[str]] = {
    "graph": ["model.variant=graph"],
    "text": ["model.variant=text", "use_features=false"],
    "fused": [],
    "fused-no-rules": ["model.graph_rule_weight=0", "featurizer.monotone=false"],
    "fused-no-graph": ["model.variant=text"],
    "fused-finetuned": ["model.freeze_encoder=false"],
}
BASELINE_VARIANTS = ("logistic", "gbm", "logistic+graph", "gbm+graph")
METRICS = ("auc", "ks", "gini", "f1", "brier", "ece")


@dataclass
class FinanceSuite:
    """A finance benchmark, as data (``benchmarks/suites/finance-*.yaml``).

    Attributes:
        name: suite name (results go to ``benchmarks/results/finance-<name>.{md,json}`` and plots).
        description: what it measures.
        base: the RiskConfig every model variant starts from (data source, featurizer, model, trainer).
        variants: which of :data:`BASELINE_VARIANTS` and :data:`MODEL_VARIANTS` to run, in table order.
        seeds: seeds (≥ 3 for reported numbers).
        anchors: published numbers to print beside ours (``{model, source, auc, f1, ...}``).
        recovery: estimate the contagion effect and compare with the generator's truth (generator only).
        recovery_pairs: guarantor–debtor pairs of test companies the recovery averages over (at most).
        recovery_samples: Monte Carlo samples of the truth per pair.
    """

    name: str = "finance"
    description: str = ""
    base: dict[str, Any] = field(default_factory=dict)
    variants: list[str] = field(default_factory=lambda: [*BASELINE_VARIANTS, *MODEL_VARIANTS])
    seeds: list[int] = field(default_factory=lambda: [13, 14, 15])
    anchors: list[dict[str, Any]] = field(default_factory=list)
    recovery: bool = False
    recovery_pairs: int = 200
    recovery_samples: int = 2000


def finance_suites() -> list[str]:
    """Names of the finance suites that ship in ``benchmarks/suites/finance``."""
    from kgreason.bench.suite import suites_dir
    from kgreason.core.resources import packaged_names

    return packaged_names(suites_dir() / "finance", ".yaml")


def load_finance_suite(name_or_path: str, *, overrides: list[str] | None = None) -> FinanceSuite:
    """A suite from ``benchmarks/suites/finance/<name>.yaml`` or a path, with dotted overrides."""
    from kgreason.bench.suite import suites_dir
    from kgreason.core.config import load_config
    from kgreason.core.registry import did_you_mean

    path = Path(name_or_path)
    if not path.is_file():
        path = suites_dir() / "finance" / f"{name_or_path}.yaml"
        if not path.is_file():
            names = finance_suites()
            raise ConfigError(
                f"no finance suite {name_or_path!r}.{did_you_mean(name_or_path, names)} Suites: {', '.join(names)}"
            )
    suite = load_config(FinanceSuite, path, overrides or [])
    unknown = [v for v in suite.variants if v not in MODEL_VARIANTS and v not in BASELINE_VARIANTS]
    if unknown:
        raise ConfigError(
            f"{path}: unknown variants {unknown}; known: {', '.join([*BASELINE_VARIANTS, *MODEL_VARIANTS])}"
        )
    if len(suite.seeds) < 1:
        raise ConfigError(f"{path}: seeds must not be empty")
    return suite


@dataclass
class VariantResult:
    """One variant on one seed."""

    variant: str
    seed: int
    dev: dict[str, float]
    test: dict[str, float]
    score_psi: float | None
    seconds: float
    run_dir: str | None = None
    test_probabilities: list[float] = field(default_factory=list, repr=False)
    test_labels: list[int] = field(default_factory=list, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class FinanceReport:
    suite: FinanceSuite
    results: list[VariantResult]
    graph: dict[str, Any]
    feature_psi: dict[str, float]
    recovery: dict[str, Any] | None
    seconds: float


def risk_config(suite: FinanceSuite, variant: str, *, run_root: Path) -> Any:
    """The RiskConfig of one model variant."""
    from kgreason.core.config import apply_overrides, build_config
    from kgreason.finance.config import RiskConfig

    data = dict(suite.base)
    data["name"] = f"{suite.name}-{variant}"
    data["output_dir"] = str(run_root / suite.name / variant / "seed{seed}")
    return build_config(RiskConfig, apply_overrides(data, MODEL_VARIANTS[variant]))


class FinanceSuiteRunner:
    """Runs a :class:`FinanceSuite` (finished model runs are read back; delete ``run_root`` to retrain)."""

    def __init__(self, *, suite: FinanceSuite, run_root: str | Path = "runs/bench-finance") -> None:
        self.suite = suite
        self.run_root = Path(run_root)

    def run(self, *, seeds: list[int] | None = None) -> FinanceReport:
        from tqdm.auto import tqdm

        from kgreason.finance.baselines import evaluate_baseline
        from kgreason.finance.metrics import feature_psi
        from kgreason.finance.training import load_company_graph, train_risk_model

        start = time.perf_counter()
        suite = self.suite
        seeds = seeds or suite.seeds
        base = risk_config(suite, "fused", run_root=self.run_root)
        graph = load_company_graph(base.data)
        results: list[VariantResult] = []
        jobs = [(seed, variant) for seed in seeds for variant in suite.variants]
        for seed, variant in tqdm(jobs, desc=f"finance-{suite.name}", dynamic_ncols=True):
            if variant in BASELINE_VARIANTS:
                found = evaluate_baseline(graph, kind=variant, seed=seed)
                results.append(
                    VariantResult(
                        variant=variant,
                        seed=seed,
                        dev=found.dev.to_dict(),
                        test=found.test.to_dict(),
                        score_psi=None,
                        seconds=found.seconds,
                        test_probabilities=found.p_test.tolist(),
                        test_labels=graph.labels[found.test_rows].astype(int).tolist(),
                    )
                )
                continue
            config = risk_config(suite, variant, run_root=self.run_root)
            run = train_risk_model(config, seed=seed, graph=graph)
            probabilities, labels = _test_scores(run.run_dir / "scores.csv")
            results.append(
                VariantResult(
                    variant=variant,
                    seed=seed,
                    dev=run.dev,
                    test=run.test,
                    score_psi=run.score_psi,
                    seconds=run.train_seconds,
                    run_dir=str(run.run_dir),
                    test_probabilities=probabilities,
                    test_labels=labels,
                    extra={"calibration": run.calibration, "model_version": run.model_version},
                )
            )
        train, test = graph.rows("train"), graph.rows("test")
        drift = feature_psi(graph.features[train], graph.features[test], graph.feature_names)
        recovery = None
        if suite.recovery and "fused" in suite.variants:
            from kgreason.finance.recovery import contagion_recovery

            runs = [Path(r.run_dir) for r in results if r.variant == "fused" and r.run_dir]
            recovery = contagion_recovery(
                suite=suite, graph_config=base.data, run_dirs=runs, pairs=suite.recovery_pairs
            )
        return FinanceReport(
            suite=suite,
            results=results,
            graph=graph.summary(),
            feature_psi=drift,
            recovery=recovery,
            seconds=time.perf_counter() - start,
        )


def _test_scores(path: Path) -> tuple[list[float], list[int]]:
    import csv

    probabilities, labels = [], []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["split"] == "test":
                probabilities.append(float(row["probability"]))
                labels.append(int(row["label"]))
    return probabilities, labels


# ------------------------------------------------------------------------------------------------ report
def aggregate(report: FinanceReport) -> list[dict[str, Any]]:
    """One row per variant: mean ± std over seeds of the test metrics, dev AUC, score PSI and time."""
    from kgreason.bench.report import finite_mean_std as _mean_std

    rows = []
    for variant in report.suite.variants:
        runs = [r for r in report.results if r.variant == variant]
        if not runs:
            continue
        row: dict[str, Any] = {"variant": variant, "seeds": [r.seed for r in runs]}
        for metric in METRICS:
            row[metric] = _mean_std([r.test.get(metric) for r in runs])
        row["dev_auc"] = _mean_std([r.dev.get("auc") for r in runs])
        row["score_psi"] = _mean_std([r.score_psi for r in runs if r.score_psi is not None])
        row["seconds"] = _mean_std([r.seconds for r in runs])
        rows.append(row)
    return rows


def markdown_table(report: FinanceReport) -> str:
    from kgreason.bench.report import format_mean_std as _fmt

    lines = [
        "| variant | test AUC | KS | Gini | F1 | Brier | ECE | dev AUC | score PSI | train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in aggregate(report):
        psi = _fmt(row["score_psi"]) if np.isfinite(row["score_psi"][0]) else "–"
        lines.append(
            f"| {row['variant']} | {_fmt(row['auc'])} | {_fmt(row['ks'])} | {_fmt(row['gini'])} | {_fmt(row['f1'])} "
            f"| {_fmt(row['brier'])} | {_fmt(row['ece'])} | {_fmt(row['dev_auc'])} | {psi} "
            f"| {row['seconds'][0]:.0f} |"
        )
    return "\n".join(lines)


def report_markdown(report: FinanceReport, *, command: str) -> str:
    suite = report.suite
    parts = [
        f"# Finance suite: {suite.name}",
        "",
        suite.description.strip(),
        "",
        f"Command: `{command}`  ",
        f"Seeds: {', '.join(str(s) for s in sorted({r.seed for r in report.results}))}; this invocation took "
        f"{report.seconds / 60:.1f} min on this machine (model runs finished earlier are read back; `train s` is "
        "each run's own training time).",
        "",
        markdown_table(report),
        "",
        "Test metrics use calibrated probabilities (calibrator fitted on dev) and the F1 threshold chosen on dev. "
        "`graph` is also the drop-text ablation of `fused`; `fused-no-graph` drops the graph; `fused-no-rules` "
        "drops the guarantor rule and the monotone term.",
    ]
    if suite.anchors:
        parts += ["", "## Published anchors", "", "| model | source | numbers |", "|---|---|---|"]
        for anchor in suite.anchors:
            numbers = ", ".join(f"{k}={v}" for k, v in anchor.items() if k not in ("model", "source", "note"))
            note = f" ({anchor['note']})" if anchor.get("note") else ""
            parts.append(f"| {anchor.get('model', '?')} | {anchor.get('source', '')}{note} | {numbers} |")
    drift = sorted(report.feature_psi.items(), key=lambda kv: -kv[1])[:8]
    if drift:
        parts += ["", "## Stability (PSI, train period vs test period)", "", "| feature | PSI |", "|---|---|"]
        parts += [f"| {name} | {value:.3f} |" for name, value in drift]
    if report.recovery:
        rec = report.recovery
        parts += ["", "## Causal check on the generator", "", rec.get("summary", ""), ""]
        parts += ["```json", json.dumps({k: v for k, v in rec.items() if k != "summary"}, indent=2), "```"]
    parts += ["", "Graph: `" + json.dumps(report.graph) + "`", ""]
    return "\n".join(parts)


def write_report(report: FinanceReport, output_dir: str | Path, *, command: str) -> list[Path]:
    """``finance-<suite>.md``, ``.json``, ``-roc.png`` and ``-reliability.png`` (first seed), written atomically."""
    from kgreason.bench.report import write_text_reports
    from kgreason.finance.plots import reliability_diagram, roc_plot

    out = Path(output_dir)
    stem = f"finance-{report.suite.name}"
    payload = {
        "suite": dataclasses.asdict(report.suite),
        "command": command,
        "table": aggregate(report),
        "results": [
            {k: v for k, v in dataclasses.asdict(r).items() if k not in ("test_probabilities", "test_labels")}
            for r in report.results
        ],
        "graph": report.graph,
        "feature_psi": report.feature_psi,
        "recovery": report.recovery,
        "seconds": report.seconds,
    }
    md, js = write_text_reports(
        out, stem, markdown=report_markdown(report, command=command), payload=payload, default=float
    )
    first = min(r.seed for r in report.results)
    curves = {
        r.variant: (np.asarray(r.test_labels), np.asarray(r.test_probabilities))
        for r in report.results
        if r.seed == first and r.test_labels
    }
    files = [md, js]
    if curves:
        files.append(
            roc_plot(curves, out / f"{stem}-roc.png", title=f"ROC, test ({report.suite.name}, seed {first})")
        )
        files.append(
            reliability_diagram(
                curves, out / f"{stem}-reliability.png", title=f"Reliability, test ({report.suite.name})"
            )
        )
    return files
