"""The finance suites (validated without training) and their report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kgreason.core.errors import ConfigError
from kgreason.finance.bench import (
    BASELINE_VARIANTS,
    MODEL_VARIANTS,
    FinanceReport,
    FinanceSuite,
    VariantResult,
    aggregate,
    finance_suites,
    load_finance_suite,
    markdown_table,
    risk_config,
    write_report,
)


@pytest.mark.parametrize("name", finance_suites())
def test_every_shipped_suite_builds_every_variant(name, tmp_path):
    suite = load_finance_suite(name)
    assert len(suite.seeds) >= 3  # reported numbers are mean ± std over >= 3 seeds
    for variant in suite.variants:
        if variant in BASELINE_VARIANTS:
            continue
        config = risk_config(suite, variant, run_root=tmp_path)
        assert config.model.variant in ("text", "graph", "fused")
        assert str(tmp_path) in config.output_dir
    text = risk_config(suite, "text", run_root=tmp_path)
    assert text.use_features is False and text.model.variant == "text"
    no_rules = risk_config(suite, "fused-no-rules", run_root=tmp_path)
    assert no_rules.model.graph_rule_weight == 0 and no_rules.featurizer.monotone is False


def test_shipped_suites_are_found_and_bad_ones_refused(tmp_path):
    assert {"generator", "smesd"} <= set(finance_suites())
    with pytest.raises(ConfigError, match="generatr"):
        load_finance_suite("generatr")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nvariants: [fused, quantum]\n")
    with pytest.raises(ConfigError, match="quantum"):
        load_finance_suite(str(bad))
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: x\nvariant: [fused]\n")
    with pytest.raises(ConfigError, match="variants"):
        load_finance_suite(str(typo))
    assert set(MODEL_VARIANTS) >= {"graph", "text", "fused", "fused-no-rules", "fused-no-graph"}


def _result(variant: str, seed: int, auc: float) -> VariantResult:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 50)
    probs = np.clip(labels * auc + rng.normal(0.3, 0.2, 50), 0, 1)
    test = {"auc": auc, "ks": 0.4, "gini": 2 * auc - 1, "f1": 0.5, "brier": 0.15, "ece": 0.03}
    return VariantResult(
        variant=variant,
        seed=seed,
        dev={"auc": auc - 0.01},
        test=test,
        score_psi=0.05 if variant != "gbm" else None,
        seconds=10.0,
        test_probabilities=probs.tolist(),
        test_labels=labels.tolist(),
    )


def test_report_aggregates_seeds_and_writes_table_json_and_plots(tmp_path):
    suite = FinanceSuite(
        name="unit", variants=["gbm", "fused"], seeds=[1, 2, 3], anchors=[{"model": "X", "auc": 0.9}]
    )
    results = [_result(v, s, auc) for s in (1, 2, 3) for v, auc in (("gbm", 0.70 + s / 100), ("fused", 0.80))]
    report = FinanceReport(
        suite=suite,
        results=results,
        graph={"companies": 50},
        feature_psi={"leverage": 0.12},
        recovery={"summary": "recovered", "true_effect": 0.3},
        seconds=60.0,
    )
    rows = {row["variant"]: row for row in aggregate(report)}
    assert rows["gbm"]["auc"][0] == pytest.approx(0.72) and rows["gbm"]["auc"][1] == pytest.approx(0.01)
    assert rows["fused"]["auc"] == (pytest.approx(0.8), 0.0)
    table = markdown_table(report)
    assert "| gbm | 0.720 ± 0.010" in table and "| fused | 0.800 ± 0.000" in table
    files = write_report(report, tmp_path, command="kgreason bench finance --suite unit")
    names = {f.name for f in files}
    assert names == {
        "finance-unit.md",
        "finance-unit.json",
        "finance-unit-roc.png",
        "finance-unit-reliability.png",
    }
    payload = json.loads((tmp_path / "finance-unit.json").read_text())
    assert payload["command"].startswith("kgreason bench finance") and len(payload["results"]) == 6
    md = (tmp_path / "finance-unit.md").read_text()
    assert "recovered" in md and "leverage" in md and "| X |" in md


TINY = Path(__file__).resolve().parents[1] / "configs" / "finance" / "tiny.yaml"


@pytest.mark.parametrize("name", ["generator.yaml", "smesd.yaml", "tiny.yaml"])
def test_shipped_finance_configs_are_valid(name):
    from kgreason.core.config import load_config
    from kgreason.finance.config import RiskConfig

    path = TINY.parent / name
    config = load_config(RiskConfig, path)
    assert config.data.source in ("generator", "smesd") and config.seeds
    with pytest.raises(ConfigError, match="modle"):
        load_config(RiskConfig, path, ["modle.variant=graph"])


def test_cli_trains_the_tiny_config(tmp_path):
    from typer.testing import CliRunner

    from kgreason.cli import app

    out = tmp_path / "run"
    done = CliRunner().invoke(
        app,
        [
            "finance",
            "train",
            str(TINY),
            "--set",
            f"output_dir={out}/{{name}}/seed{{seed}}",
            "--set",
            "trainer.epochs=1",
            "--set",
            "trainer.progress=false",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "test auc=" in done.output and (out / "finance-tiny" / "seed13" / "metrics.json").is_file()
    bad = CliRunner().invoke(app, ["finance", "train", str(TINY), "--set", "calibration=magic"])
    assert bad.exit_code == 2 and "calibration" in bad.output
