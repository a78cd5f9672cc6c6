"""``kgreason train`` / ``kgreason evaluate``: a documented run folder from a config, on real PhraseBank data.

The encoder is a tiny random BERT saved as a local folder (so the local-folder path of model resolution is used
and the test stays fast); the tokenizer is the embedded model's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kgreason.cli import app
from kgreason.config import load_config
from kgreason.errors import ConfigError
from kgreason.runs.config import ExperimentConfig
from kgreason.runs.experiment import RunResult, summarize
from kgreason.runs.provenance import file_checksums, package_versions, sha256_file
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
