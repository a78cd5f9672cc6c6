"""``kgreason train`` / ``kgreason evaluate``: a documented run folder from a config, on real PhraseBank data.

The encoder is a tiny random BERT saved as a local folder (so the local-folder path of model resolution is used
and the test stays fast); the tokenizer is the embedded model's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli_helpers import refused
from typer.testing import CliRunner

from kgreason.cli import app
from kgreason.core.config import load_config
from kgreason.core.digest import sha256_file, source_fingerprint
from kgreason.core.errors import ConfigError
from kgreason.runs.config import ExperimentConfig
from kgreason.runs.experiment import RunResult, summarize
from kgreason.runs.provenance import file_checksums, package_versions, stale_inputs
from kgreason.runs.report import summary_markdown

runner = CliRunner()


def _config(tmp_path: Path, encoder: Path) -> Path:
    data = {
        "name": "tiny-phrasebank",
        "task": "sequence_classification",
        "output_dir": str(tmp_path / "runs" / "{name}" / "seed{seed}"),
        "data": {
            "dataset": "financial_phrasebank",
            "options": {"agreement": "all"},
            "max_train": 48,
            "max_eval": 24,
        },
        "model": {"encoder": str(encoder), "variant": "text", "max_length": 64},
        "trainer": {"epochs": 1, "batch_size": 16, "progress": False, "learning_rate": 1e-3},
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_train_then_evaluate_writes_a_documented_run(tmp_path, tiny_encoder, shared_data):
    config = _config(tmp_path, tiny_encoder)
    out = runner.invoke(
        app, ["train", str(config), "--set", "trainer.seed=7", "--data-dir", str(shared_data)]
    )
    assert out.exit_code == 0, out.output
    run = tmp_path / "runs" / "tiny-phrasebank" / "seed7"
    for name in ("config.yaml", "run.json", "metrics.json", "best/config.json", "best/model.safetensors"):
        assert (run / name).is_file(), name
    record = json.loads((run / "run.json").read_text())
    assert record["seed"] == 7 and record["status"] == "finished"
    assert record["packages"]["torch"] and record["packages"]["transformers"]
    assert record["data"]["sizes"] == {"train": 48, "dev": 24, "test": 24}
    sums = record["data"]["checksums"]
    assert any(p.endswith("Sentences_AllAgree.txt") for p in sums)
    for path, digest in sums.items():
        assert sha256_file(path) == digest
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0 and "macro_f1" in metrics["dev"]
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["trainer"]["seed"] == 7 and resolved["model"]["encoder"] == str(tiny_encoder)

    out = runner.invoke(app, ["evaluate", str(run), "--split", "dev", "--json"])
    assert out.exit_code == 0, out.output
    again = json.loads(out.output)
    assert again["accuracy"] == pytest.approx(metrics["dev"]["accuracy"])
    assert (run / "eval_dev.json").is_file()


def test_unknown_key_is_rejected_with_a_suggestion(tmp_path, tiny_encoder):
    config = _config(tmp_path, tiny_encoder)
    out = runner.invoke(app, ["train", str(config), "--set", "trainer.epoch=2"])
    assert out.exit_code == 2
    assert "trainer.epochs" in out.output
    with pytest.raises(ConfigError, match="model.variant"):
        load_config(ExperimentConfig, config, ["model.variantt=fused"])


def test_graph_variant_without_kb_is_a_clear_error(tmp_path, tiny_encoder, shared_data):
    config = _config(tmp_path, tiny_encoder)
    out = runner.invoke(
        app, ["train", str(config), "--set", "model.variant=fused", "--data-dir", str(shared_data)]
    )
    assert out.exit_code == 2
    assert "knowledge.kb.source" in out.output


def test_evaluate_rejects_a_folder_that_is_not_a_run(tmp_path):
    out = runner.invoke(app, ["evaluate", str(tmp_path)])
    assert out.exit_code == 2 and "config.yaml" in out.output


def test_summary_is_mean_and_sample_std(tmp_path):
    runs = [
        RunResult(
            run_dir=tmp_path,
            seed=s,
            dev={"accuracy": a},
            test={"accuracy": a - 0.1},
            train_seconds=10.0,
            train_samples_per_s=1.0,
            best_step=1,
        )
        for s, a in ((1, 0.8), (2, 0.9), (3, 1.0))
    ]
    summary = summarize("x", runs)
    mean, std = summary.test["accuracy"]
    assert mean == pytest.approx(0.8) and std == pytest.approx(0.1)
    assert "0.8000 ± 0.1000" in summary_markdown(summary)


def test_provenance_helpers(tmp_path):
    (tmp_path / "a.txt").write_text("abc")
    assert file_checksums([tmp_path / "a.txt", tmp_path])[str(tmp_path / "a.txt")] == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    versions = package_versions(["torch", "surely-not-installed-kgreason-x"])
    assert versions["torch"] and versions["surely-not-installed-kgreason-x"] is None


def test_a_finished_run_is_reused_and_a_changed_config_is_refused(tmp_path, tiny_encoder, shared_data):
    config = _config(tmp_path, tiny_encoder)
    args = ["train", str(config), "--data-dir", str(shared_data), "--set", "data.max_train=16"]
    assert runner.invoke(app, args).exit_code == 0
    metrics = tmp_path / "runs" / "tiny-phrasebank" / "seed13" / "metrics.json"
    stamp = metrics.stat().st_mtime_ns
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert metrics.stat().st_mtime_ns == stamp  # nothing retrained or rewritten
    changed = runner.invoke(app, [*args, "--set", "trainer.learning_rate=0.01"])
    assert changed.exit_code == 2 and "different config" in changed.output


def test_a_run_reports_per_class_scores_a_confusion_matrix_and_predictions(
    tmp_path, tiny_encoder, shared_data
):
    config = _config(tmp_path, tiny_encoder)
    args = ["train", str(config), "--data-dir", str(shared_data), "--set", "data.max_train=16"]
    assert runner.invoke(app, args).exit_code == 0
    run = tmp_path / "runs" / "tiny-phrasebank" / "seed13"
    metrics = json.loads((run / "metrics.json").read_text())
    details = metrics["test_details"]
    labels = details["labels"]
    assert sorted(details["per_class"]) == sorted(labels) and len(labels) == 3
    matrix = details["confusion_matrix"]
    assert len(matrix) == len(labels) and all(len(row) == len(labels) for row in matrix)
    rows = [json.loads(line) for line in (run / "predictions-test.jsonl").read_text().splitlines()]
    assert sum(map(sum, matrix)) == len(rows) == details["count"]
    assert {r["gold"] for r in rows} <= set(labels) and {r["predicted"] for r in rows} <= set(labels)
    correct = sum(r["gold"] == r["predicted"] for r in rows)
    assert correct == sum(matrix[i][i] for i in range(len(labels)))
    assert abs(correct / len(rows) - metrics["test"]["accuracy"]) < 1e-9


def test_a_finished_run_of_changed_code_or_data_is_trained_again(tmp_path, tiny_encoder, shared_data):
    """Reuse compares the code fingerprint and the data checksums in run.json, not only the config."""
    config = _config(tmp_path, tiny_encoder)
    args = ["train", str(config), "--data-dir", str(shared_data), "--set", "data.max_train=16"]
    assert runner.invoke(app, args).exit_code == 0
    run = tmp_path / "runs" / "tiny-phrasebank" / "seed13"
    record = json.loads((run / "run.json").read_text())
    assert record["fingerprint"]["code"] == source_fingerprint() and record["data"]["checksums"]
    metrics = run / "metrics.json"
    for changed in (
        {**record, "fingerprint": {"code": "0" * 64}},  # a reader or model changed since
        {
            **record,
            "data": {**record["data"], "checksums": dict.fromkeys(record["data"]["checksums"], "0" * 64)},
        },
        {k: v for k, v in record.items() if k != "fingerprint"},  # written before fingerprints
    ):
        (run / "run.json").write_text(json.dumps(changed))
        stamp = metrics.stat().st_mtime_ns
        assert runner.invoke(app, args).exit_code == 0
        assert metrics.stat().st_mtime_ns != stamp  # trained again, not reused
    assert stale_inputs(json.loads((run / "run.json").read_text()), code=source_fingerprint()) is None


@pytest.fixture
def no_loading(monkeypatch):
    """Reading data or building a model fails the test: bad input must be refused before that."""

    def prepare(*args, **kwargs):
        pytest.fail("data and model were loaded before the config was validated")

    monkeypatch.setattr("kgreason.runs.experiment.prepare", prepare)


@pytest.mark.parametrize("kind", ["missing", "folder", "latin-1"])
def test_train_unreadable_config_file(tmp_path, no_loading, kind):
    config = tmp_path / "exp.yaml"
    if kind == "folder":
        config.mkdir()
    elif kind == "latin-1":
        config.write_bytes("name: caf\xe9\n".encode("latin-1"))
    line = refused("train", str(config))
    expected = {"missing": "no such config file", "folder": "is a folder", "latin-1": "not UTF-8"}[kind]
    assert str(config) in line and expected in line and "expected" in line, line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--set", "model.max_length=0"], "model.max_length: expected an integer >= 2, got 0"),
        (["--set", "trainer.seed=-1"], "trainer.seed: expected an integer in [0, 2**63 - 1], got -1"),
        (["--set", f"trainer.seed={2**63 + 5}"], "trainer.seed: expected an integer in [0, 2**63 - 1]"),
        (["--set", "data.max_train=-5"], "data.max_train: expected an integer >= 0 (0: all), got -5"),
        (
            ["--set", "model.variant=bogus"],
            "model.variant: expected one of text, graph, fused, fused_facts, got 'bogus'",
        ),
        (["--seeds", ","], "--seeds expects comma-separated integers such as 13,14,15, got ','"),
        (["--seeds", "1,-2"], "--seeds: expected seeds in [0, 2**63 - 1], got -2"),
        (["--seeds", "3,3"], "--seeds: seed 3 is given twice"),
        (["--set", "task=bogus_task"], "bogus_task"),
    ],
)
def test_train_refuses_bad_values_before_loading(tmp_path, no_loading, args, needle):
    config = _config(tmp_path, Path("embedded"))
    line = refused("train", str(config), *args)
    assert needle in line, line


def test_train_missing_kb_names_both_places(tmp_path, no_loading, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    config = _config(tmp_path, Path("embedded"))
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    cfg["knowledge"] = {"kb": {"source": "kg/family.ttl"}}
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    line = refused("train", str(config), "--data-dir", str(data))
    assert "knowledge.kb.source" in line
    assert str(tmp_path / "kg" / "family.ttl") in line and str(data / "kg" / "family.ttl") in line


def test_train_from_outside_the_repo_resolves_paths_against_the_config(
    tmp_path, tiny_encoder, shared_data, monkeypatch
):
    """``kgreason train /abs/config.yaml`` from another folder: the config's relative paths still resolve."""
    folder = tmp_path / "project" / "configs"
    folder.mkdir(parents=True)
    (folder / "encoder").symlink_to(tiny_encoder, target_is_directory=True)
    config = _config(tmp_path, Path("encoder"))
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    cfg["data"].update(max_train=16, max_eval=8)
    (folder / "exp.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = runner.invoke(app, ["train", str(folder / "exp.yaml"), "--data-dir", str(shared_data)])
    assert out.exit_code == 0, out.output
    resolved = yaml.safe_load((tmp_path / "runs" / "tiny-phrasebank" / "seed13" / "config.yaml").read_text())
    assert resolved["model"]["encoder"] == str(folder / "encoder")


def test_damaged_run_folders_are_one_line_errors(tmp_path, tiny_encoder, shared_data):
    """Truncated weights in best/ (evaluate) or checkpoints/last/ (resume), a python tag in config.yaml."""
    config = _config(tmp_path, tiny_encoder)
    args = ["train", str(config), "--data-dir", str(shared_data), "--set", "data.max_train=16"]
    assert runner.invoke(app, args).exit_code == 0
    run = tmp_path / "runs" / "tiny-phrasebank" / "seed13"
    best, last = run / "best" / "model.safetensors", run / "checkpoints" / "last" / "model.safetensors"
    assert best.is_file() and last.is_file()

    best.write_bytes(best.read_bytes()[:1000])
    line = refused("evaluate", str(run), "--data-dir", str(shared_data))
    assert str(best) in line and "expected" in line, line

    last.write_bytes(last.read_bytes()[:100])
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "status": "running"}))  # interrupted: resume it
    line = refused(*args)
    assert str(last) in line and "--no-resume" in line, line

    (run / "run.json").write_text('{"status": "fini')  # cut short
    line = refused(*args)
    assert str(run / "run.json") in line and "expected" in line, line

    saved = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(
        saved.replace("name: tiny-phrasebank", "name: !!python/object/apply:os.system [echo]")
    )
    line = refused("evaluate", str(run))
    assert str(run / "config.yaml") in line and "python/object" in line and "expected" in line, line
