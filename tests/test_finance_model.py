"""The risk model: featurizer, monotone and guarantor rules, training, scoring, explanations, what-ifs, CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from kgreason.finance.calibration import Calibrator
from kgreason.finance.dataset import (
    STATUS_DEFAULTED,
    STATUS_UNKNOWN,
    CompanyFeaturizer,
    FeatureScaler,
    FeaturizerConfig,
)
from kgreason.finance.graph import DEFAULT
from kgreason.finance.metrics import auc
from kgreason.models.fused import TabularTerm

SMALL = {"num_companies": 240, "num_groups": 60}


@pytest.fixture(scope="module")
def small_graph():
    from kgreason.finance.generator import read_company_generator

    return read_company_generator(**SMALL)


# ----------------------------------------------------------------------------------------------- features
def test_scaler_is_increasing_and_fills_missing():
    x = np.array([[1.0, 1e6], [2.0, np.nan], [3.0, 1e3], [4.0, 5e4]], dtype=np.float32)
    scaler = FeatureScaler.fit(x, names=["a", "capital"])
    assert scaler.log == [False, True]  # the heavy-tailed column is log-scaled
    z = scaler.transform(x)
    assert z[1, 1] == 0.0  # missing -> the training mean
    assert np.all(np.diff(z[:, 0]) > 0)
    grid = scaler.transform(np.array([[0.0, v] for v in (10.0, 1e3, 1e5, 1e7)]))
    assert np.all(np.diff(grid[:, 1]) > 0)  # both steps are increasing: monotone effects keep their sign
    again = FeatureScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_allclose(again.transform(x), z)
    with pytest.raises(ValueError, match="columns"):
        scaler.transform(np.zeros((2, 3)))


def test_tabular_term_is_monotone_by_construction():
    torch.manual_seed(0)
    term = TabularTerm(num_features=3, monotone=[1, 0, -1], num_labels=2, dropout=0.0).eval()
    with torch.no_grad():
        term.monotone_weight.normal_()
        base = torch.randn(64, 3)
        for column, sign in ((0, 1), (2, -1)):
            up = base.clone()
            up[:, column] += torch.rand(64) * 3
            margin = lambda t: term(t)[:, 1] - term(t)[:, 0]  # noqa: E731
            assert torch.all(sign * (margin(up) - margin(base)) >= -1e-6)
    assert term.monotone_coefficients().shape == (2,)
    with pytest.raises(ValueError, match="signs"):
        TabularTerm(num_features=2, monotone=[1], num_labels=2, dropout=0.0)
    with pytest.raises(ValueError, match="-1, 0 or"):
        TabularTerm(num_features=1, monotone=[2], num_labels=2, dropout=0.0)


def test_featurizer_hides_own_outcome_and_marks_guarantor_rule(small_graph):
    g = small_graph
    featurizer = CompanyFeaturizer.build(g)
    status = featurizer.node_status()
    train = g.rows("train")
    assert np.all(status[g.companies[g.rows("test")]] == STATUS_UNKNOWN)  # test outcomes are never inputs
    known = g.companies[train[g.labels[train] == DEFAULT]]
    assert np.all(status[known] == STATUS_DEFAULTED)
    guarantees = g.relation_id("guarantees")
    checked = 0
    for row in train.tolist():
        graph = featurizer.ego_graph(row)
        seed = int(graph.seed_mask.nonzero()[0])
        assert int(graph.node_status[seed]) == STATUS_UNKNOWN  # its own label is hidden
        ei = graph.edge_index
        expected = (
            (graph.edge_type == guarantees) & (ei[0] == seed) & (graph.node_status[ei[1]] == STATUS_DEFAULTED)
        )
        assert torch.equal(graph.rule_edge_mask, expected)
        checked += int(expected.any())
    assert checked > 0  # some training companies guarantee a known default
    text = featurizer.company_text(int(train[0])).text
    assert "It " in text or "it." in text
    off = CompanyFeaturizer.build(g, config=FeaturizerConfig(monotone=False))
    assert off.signs == [0] * len(g.feature_names)
    assert featurizer.node_attributes().shape[1] == len(g.feature_names) - len(g.monotone) + 5


# ---------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def risk_run(tmp_path_factory, tiny_encoder):
    from kgreason.core.config import build_config
    from kgreason.finance.config import RiskConfig
    from kgreason.finance.training import train_risk_model

    root = tmp_path_factory.mktemp("risk")
    config = build_config(
        RiskConfig,
        {
            "name": "tiny",
            "output_dir": str(root / "{name}" / "seed{seed}"),
            "data": {"source": "generator", "options": SMALL},
            "featurizer": {"max_nodes": 24},
            "model": {
                "variant": "fused",
                "encoder": str(tiny_encoder),
                "max_length": 64,
                "graph_rule_weight": 1.0,
                "gnn": {"hidden": 16, "layers": 1},
            },
            "trainer": {"epochs": 1, "batch_size": 16, "progress": False, "tensorboard": False},
        },
    )
    return train_risk_model(config, seed=3)


def test_training_writes_a_complete_run(risk_run):
    run = risk_run.run_dir
    for name in ("config.yaml", "metrics.json", "featurizer.json", "calibrator.json", "scores.csv", "best"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    # One epoch on 240 generated companies already ranks defaults: measured test AUC 0.68-0.69 calibrated and
    # 0.74 raw (random encoders of several sessions; a constant scorer has 0.5).
    assert metrics["test"]["auc"] > 0.6 and metrics["test_raw"]["auc"] > 0.65
    assert metrics["model_version"].startswith("tiny-")
    assert metrics["calibration"] in ("platt", "isotonic")
    with (run / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["split"] for r in rows} == {"dev", "test"}
    # the probability column is the calibrator applied to the raw score (both rounded to 6 decimals) ...
    calibrator = Calibrator.load(run / "calibrator.json")
    raw = np.array([float(r["score"]) for r in rows])
    np.testing.assert_allclose(calibrator.transform(raw), [float(r["probability"]) for r in rows], atol=2e-3)
    # ... and metrics.json's test AUC is the AUC of those test rows
    test = [r for r in rows if r["split"] == "test"]
    found = auc(np.array([int(r["label"]) for r in test]), np.array([float(r["probability"]) for r in test]))
    assert found == pytest.approx(metrics["test"]["auc"], abs=1e-3)


def test_finished_run_is_read_back_and_another_config_refused(risk_run):
    import dataclasses

    import yaml

    from kgreason.core.config import build_config
    from kgreason.core.errors import ConfigError
    from kgreason.finance.config import RiskConfig
    from kgreason.finance.training import train_risk_model

    data = yaml.safe_load((risk_run.run_dir / "config.yaml").read_text())
    config = build_config(RiskConfig, data)
    again = train_risk_model(config, seed=3)
    assert again.model_version == risk_run.model_version and again.test == risk_run.test
    other = dataclasses.replace(
        config, calibration="platt" if risk_run.calibration != "platt" else "isotonic"
    )
    with pytest.raises(ConfigError, match="another config"):
        train_risk_model(other, seed=3)


def test_scorer_scores_explains_and_answers_what_ifs(risk_run):
    from kgreason.finance.records import Scenario, Scorer
    from kgreason.finance.scoring import RiskScorer

    scorer = RiskScorer.load(risk_run.run_dir)
    assert isinstance(scorer, Scorer)
    g = scorer.prepared.graph
    ids = scorer.company_ids()[:3]
    scores = scorer.score(ids, top_reasons=2)
    assert [s.company_id for s in scores] == ids
    for s in scores:  # at most 2 reasons, each raising the risk, largest first
        contributions = [r.contribution for r in s.reasons]
        assert len(contributions) <= 2 and all(c > 0 for c in contributions)
        assert contributions == sorted(contributions, reverse=True)
    # the probability is the run's calibrator applied to the raw score
    for s in scores:
        assert s.probability == pytest.approx(
            float(scorer.calibrator.transform(np.array([s.score]))[0]), abs=1e-9
        )
    # the loaded model reproduces the raw scores training wrote (measured within 1.2e-3: batching differs)
    with (risk_run.run_dir / "scores.csv").open() as handle:
        written = {r["company_id"]: float(r["score"]) for r in csv.DictReader(handle)}
    again = scorer.score(list(written), top_reasons=0)
    np.testing.assert_allclose([s.score for s in again], list(written.values()), atol=5e-3)
    assert all(s.model_version == risk_run.model_version for s in scores)
    with pytest.raises(KeyError, match="nope"):
        scorer.score(["nope"])
    explanation = scorer.explain(ids[0], top=5)
    assert explanation.features and all(r.code.startswith("F:") for r in explanation.features)
    assert all(r.code.startswith("T:") for r in explanation.facts)
    # a guarantor and the company it guarantees
    h, t = g.edges_of("guarantees")[0]
    guarantor, debtor = g.nodes[int(h)], g.nodes[int(t)]
    what = scorer.what_if(guarantor, Scenario(kind="neighbour_defaults", target=debtor))
    assert what.before == pytest.approx(scorer.score([guarantor], top_reasons=0)[0].probability, abs=1e-6)
    edges = g.edges.copy()
    removed = scorer.what_if(guarantor, Scenario(kind="remove_edge", target=debtor, relation="guarantees"))
    assert removed.before == what.before  # every what-if starts from the company's current score
    # a what-if leaves the scorer as it was: same graph, same score afterwards
    assert np.array_equal(scorer.prepared.graph.edges, edges)
    assert scorer.score([guarantor], top_reasons=0)[0].probability == pytest.approx(what.before, abs=1e-9)
    monotone = next(iter(g.monotone))
    low = scorer.what_if(guarantor, Scenario(kind="set_feature", target=monotone, value=0))
    high = scorer.what_if(guarantor, Scenario(kind="set_feature", target=monotone, value=50))
    assert high.after >= low.after - 1e-6  # monotone rule holds end to end
    for bad in (
        Scenario(kind="explode", target=debtor),
        Scenario(kind="set_feature", target="no_such_feature", value=1.0),
        Scenario(kind="remove_edge", target=debtor, relation="supplies"),
        Scenario(kind="neighbour_defaults", target=guarantor),
    ):
        with pytest.raises(ValueError):
            scorer.what_if(guarantor, bad)


def test_service_over_the_real_scorer(risk_run, tmp_path):
    from fastapi.testclient import TestClient

    from kgreason.finance.audit import verify
    from kgreason.finance.scoring import RiskScorer
    from kgreason.finance.service import create_app

    scorer = RiskScorer.load(risk_run.run_dir)
    log = tmp_path / "audit.jsonl"
    client = TestClient(create_app(scorer, audit_log=log, audit_fsync=False))
    ids = scorer.company_ids()[:2]
    reply = client.post("/score", json={"company_ids": ids, "top_reasons": 1})
    assert reply.status_code == 200, reply.text
    assert [s["company_id"] for s in reply.json()["scores"]] == ids
    assert client.post("/score", json={"company_ids": ["ghost"]}).status_code == 404
    assert client.get(f"/explain/{ids[0]}").status_code == 200
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert verify(log).records == len(records)
    assert [r["status"] for r in records].count(200) == 3  # two scores and one explanation
    assert any(r["status"] == 404 for r in records)  # the refused request is audited too
    assert {r["model_version"] for r in records if r["status"] == 200} == {risk_run.model_version}


def test_cli_score_writes_scores_and_rejects_bad_input(risk_run, tmp_path):
    from typer.testing import CliRunner

    from kgreason.cli import app
    from kgreason.finance.scoring import RiskScorer

    companies = tmp_path / "companies.csv"
    companies.write_text("company_id\nC00000\nC00001\n")
    out = tmp_path / "scores.csv"
    runner = CliRunner()
    done = runner.invoke(
        app,
        ["finance", "score", "--model", str(risk_run.run_dir), "--input", str(companies), "--out", str(out)],
    )
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(out.open()))
    assert [r["company_id"] for r in rows] == ["C00000", "C00001"] and "reason_3" in rows[0]
    assert all(r["model_version"] == risk_run.model_version for r in rows)
    expected = RiskScorer.load(risk_run.run_dir).score(["C00000", "C00001"], top_reasons=0)
    assert [float(r["probability"]) for r in rows] == pytest.approx(
        [s.probability for s in expected], abs=1e-6
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("company_id\nC00000\nC00000\n")
    failed = runner.invoke(
        app, ["finance", "score", "--model", str(risk_run.run_dir), "--input", str(bad), "--out", str(out)]
    )
    assert failed.exit_code == 2 and "bad.csv" in failed.output and "line 3" in failed.output
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("company_id\nX1\n")
    failed = runner.invoke(
        app,
        ["finance", "score", "--model", str(risk_run.run_dir), "--input", str(unknown), "--out", str(out)],
    )
    assert failed.exit_code == 2 and "X1" in failed.output
    assert len(list(csv.DictReader(out.open()))) == 2  # failed runs leave the earlier output untouched
    extra = tmp_path / "extra.csv"
    extra.write_text("company_id,no_such_feature\nC00000,1\n")
    failed = runner.invoke(
        app, ["finance", "score", "--model", str(risk_run.run_dir), "--input", str(extra), "--out", str(out)]
    )
    assert failed.exit_code == 2 and "no_such_feature" in failed.output


def test_cli_and_scorer_share_one_scoring_call_with_overrides(risk_run, tmp_path):
    """`finance score` with feature columns gives what `RiskScorer.score(overrides=...)` gives, for that call only."""
    from typer.testing import CliRunner

    from kgreason.cli import app
    from kgreason.finance.scoring import FeatureOverrideError, RiskScorer

    scorer = RiskScorer.load(risk_run.run_dir)
    graph = scorer.prepared.graph
    feature = graph.feature_names[1]
    ids = ["C00000", "C00001"]
    overrides = {"C00000": {feature: 25.0}, "C00001": {}}
    before = scorer.score(ids, top_reasons=2)
    changed = scorer.score(ids, top_reasons=2, overrides=overrides)
    assert changed[0].probability != pytest.approx(before[0].probability, abs=1e-9)
    assert changed[1].probability == pytest.approx(before[1].probability, abs=1e-12)
    assert scorer.prepared.graph is graph  # the overrides were for that call only
    again = scorer.score(ids, top_reasons=2)
    assert [s.to_dict() for s in again] == [s.to_dict() for s in before]
    companies = tmp_path / "companies.csv"
    companies.write_text(f"company_id,{feature}\nC00000,25\nC00001,\n")
    out = tmp_path / "scores.csv"
    done = CliRunner().invoke(
        app,
        [
            "finance",
            "score",
            "-m",
            str(risk_run.run_dir),
            "-i",
            str(companies),
            "-o",
            str(out),
            "--top-reasons",
            "2",
        ],
    )
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(out.open()))
    assert [float(r["probability"]) for r in rows] == [float(f"{s.probability:.6f}") for s in changed]
    shown = [[f"{r.code}: {r.text} ({r.contribution:+.3f})" for r in s.reasons] for s in changed]
    assert [[r["reason_1"], r["reason_2"]] for r in rows] == [([*s, "", ""])[:2] for s in shown]
    with pytest.raises(FeatureOverrideError, match=r"columns \['nope'\] are not features of the model"):
        scorer.score(ids, overrides={"C00000": {"nope": 1.0}})
    with pytest.raises(FeatureOverrideError, match="companies that are not scored: \\['C00002'\\]"):
        scorer.score(ids, overrides={"C00002": {feature: 1.0}})
    assert scorer.prepared.graph is graph
    from fastapi.testclient import TestClient

    from kgreason.finance.service import create_app

    client = TestClient(create_app(scorer, audit_log=tmp_path / "audit.jsonl", audit_fsync=False))
    body = {"company_ids": ids, "top_reasons": 2, "features": overrides}
    served = client.post("/score", json=body)
    assert served.status_code == 200, served.text
    assert [s["probability"] for s in served.json()["scores"]] == [s.probability for s in changed]
    refused = client.post("/score", json={"company_ids": ids, "features": {"C00000": {"nope": 1.0}}})
    assert refused.status_code == 422 and "nope" in refused.json()["detail"]
    assert scorer.prepared.graph is graph


def _truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _edit_json(path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


DAMAGED_RUNS = {
    "truncated weights": (
        lambda run: _truncate(run / "best" / "model.safetensors"),
        "best/model.safetensors: truncated",
    ),
    "weights of 3 bytes": (
        lambda run: (run / "best" / "model.safetensors").write_bytes(b"abc"),
        "best/model.safetensors: not a safetensors file",
    ),
    "featurizer []": (
        lambda run: (run / "featurizer.json").write_text("[]"),
        "featurizer.json: a JSON array, not an object",
    ),
    "truncated featurizer": (
        lambda run: _truncate(run / "featurizer.json"),
        "featurizer.json, line 1, column",
    ),
    "featurizer of other features": (
        lambda run: _edit_json(run / "featurizer.json", lambda d: d["scaler"]["names"].reverse()),
        "featurizer.json: fitted on features",
    ),
    "featurizer std of 0": (
        lambda run: _edit_json(run / "featurizer.json", lambda d: d["scaler"]["std"].__setitem__(0, 0)),
        "featurizer.json: 'scaler.std' is not",
    ),
    "featurizer known rows": (
        lambda run: _edit_json(run / "featurizer.json", lambda d: d.__setitem__("known_rows", [-1])),
        "featurizer.json: 'known_rows' is not a list of company rows",
    ),
    "calibrator []": (
        lambda run: (run / "calibrator.json").write_text("[]"),
        "calibrator.json: a JSON array, not a calibrator",
    ),
    "metrics []": (lambda run: (run / "metrics.json").write_text("[]"), "metrics.json: a JSON array"),
    "metrics without a version": (
        lambda run: _edit_json(run / "metrics.json", lambda d: d.pop("model_version")),
        "metrics.json: 'model_version' is None",
    ),
    "config not YAML": (
        lambda run: (run / "config.yaml").write_text("name: [unclosed\n"),
        "config.yaml, line 2: not valid YAML",
    ),
    "config []": (lambda run: (run / "config.yaml").write_text("[]\n"), "config.yaml: a YAML list"),
}


@pytest.mark.parametrize("damage", list(DAMAGED_RUNS))
def test_cli_names_the_damaged_file_of_a_run_folder(risk_run, tmp_path, damage):
    import shutil

    from typer.testing import CliRunner

    from kgreason.cli import app

    run = tmp_path / "run"
    shutil.copytree(risk_run.run_dir, run, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    change, message = DAMAGED_RUNS[damage]
    change(run)
    companies = tmp_path / "companies.csv"
    companies.write_text("company_id\nC00000\n")
    runner = CliRunner()
    for args in (
        ["score", "--model", str(run), "--input", str(companies), "--out", str(tmp_path / "o.csv")],
        ["explain", "--model", str(run), "C00000"],
    ):
        result = runner.invoke(app, ["finance", *args])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        (line,) = result.output.strip().splitlines()
        assert line.startswith(f"error: {run}/") and message in line, line
    assert not (tmp_path / "o.csv").exists()


def test_frozen_encoder_caches_cls_states_exactly(tiny_encoder):
    from kgreason.core.batch import Collator
    from kgreason.models.config import ModelConfig
    from kgreason.models.fused import KGReasonModel

    torch.manual_seed(0)
    frozen = KGReasonModel(ModelConfig(encoder=str(tiny_encoder), freeze_encoder=True)).train()
    assert not any(p.requires_grad for p in frozen.encoder.parameters())
    assert not frozen.encoder.training  # dropout stays off in a frozen encoder
    tok = frozen.tokenizer
    from kgreason.core.batch import EncodedExample

    items = [
        EncodedExample(input_ids=tok(text)["input_ids"], labels=i % 2, index=i)
        for i, text in enumerate(["Sales fell.", "Profit rose sharply this year.", "Sales fell."])
    ]
    batch = Collator(pad_token_id=tok.pad_token_id)(items)
    frozen.eval()  # (the head's dropout would differ between calls)
    first = frozen(batch)
    assert len(frozen._cls_cache) == 2  # two distinct texts
    again = frozen(batch)
    torch.testing.assert_close(first.logits, again.logits)
    direct = frozen.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state[
        :, 0
    ]
    cached = frozen._encode(batch.input_ids, batch.attention_mask, None)[:, 0]
    torch.testing.assert_close(cached, direct)
    import kgreason.models.fused as fused_module

    small = pytest.MonkeyPatch()
    small.setattr(fused_module, "CLS_CACHE_SIZE", 1)
    try:
        bounded = frozen._encode(batch.input_ids, batch.attention_mask, None)[:, 0]
    finally:
        small.undo()
    torch.testing.assert_close(bounded, direct)  # a batch larger than the cache is still answered exactly
    assert len(frozen._cls_cache) == 1
    frozen.train()
    frozen(batch).loss.backward()  # the head still trains
    assert frozen.head.mlp[1].weight.grad is not None


def test_contagion_recovery_compares_with_the_generators_truth(risk_run):
    import yaml

    from kgreason.core.config import build_config
    from kgreason.finance.bench import FinanceSuite
    from kgreason.finance.config import RiskConfig
    from kgreason.finance.recovery import contagion_recovery

    config = build_config(RiskConfig, yaml.safe_load((risk_run.run_dir / "config.yaml").read_text()))
    found = contagion_recovery(
        suite=FinanceSuite(recovery_samples=200),
        graph_config=config.data,
        run_dirs=[risk_run.run_dir],
        pairs=8,
    )
    assert found["pairs"] == 8
    # The generator's truth (its structural model, simulated with fixed seeds; stderr 0.003): guaranteeing a
    # company that defaults raises the guarantor's default probability by about 0.32 (do(1) - do(0)) and by
    # about 0.26 against the guarantor's natural rate.
    assert found["true_effect_do"] == pytest.approx(0.316, abs=0.02)
    assert found["true_effect_matched"] == pytest.approx(0.255, abs=0.02)
    # One epoch of a tiny model has not learnt that contagion: its what-if effect is near zero (measured
    # [0, 0] after isotonic calibration, 2e-4 with Platt), so the CI lies far below the truth and the verdict,
    # which must agree with the CI, is "not recovered".
    low, high = found["estimated_ci95"]
    assert high < found["true_effect_matched"] / 2
    assert found["truth_in_ci"] is (low <= found["true_effect_matched"] <= high) is False
    assert "not recovered" in found["summary"] and "generator's truth" in found["summary"]
    with pytest.raises(ValueError, match="generator"):
        contagion_recovery(
            suite=FinanceSuite(),
            graph_config=type(config.data)(source="smesd"),
            run_dirs=[risk_run.run_dir],
        )


@pytest.mark.parametrize("offsets", ["null", "[]", "[1]", '"x"', "[0, 1.5]"])
def test_a_safetensors_header_with_odd_offsets_names_the_file(tmp_path, offsets):
    """Found in review: a header whose data_offsets is not a pair escaped as a TypeError / IndexError."""
    import json
    import struct

    from kgreason.finance.errors import FinanceDataError
    from kgreason.finance.runfiles import check_safetensors

    header = f'{{"w": {{"dtype": "F32", "shape": [1], "data_offsets": {offsets}}}}}'.encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    json.loads(header)  # the header itself is valid JSON
    with pytest.raises(FinanceDataError, match="model.safetensors: not a safetensors header"):
        check_safetensors(path)
