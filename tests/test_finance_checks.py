"""`kgreason finance check` / `train` on user data: CSV sources, the default split, label leakage, SMEsD folder."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kgreason.cli import app
from kgreason.finance.checks import default_split, leakage_warnings
from kgreason.finance.config import GraphSourceConfig, RiskConfig
from kgreason.finance.csv_loader import load_company_csv
from kgreason.finance.errors import FinanceDataError
from kgreason.finance.graph import DEFAULT, SPLITS

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "finance"


def _write_csv(
    folder: Path,
    *,
    n: int = 60,
    defaults: int = 15,
    columns: dict[str, list[str]] | None = None,
    splits: list[str] | None = None,
) -> Path:
    """A CSV source: ``n`` companies, the first ``defaults`` defaulted, random leverage, optional columns."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    columns = {"leverage": [f"{v:.3f}" for v in rng.normal(size=n)], **(columns or {})}
    rows = [",".join(["company_id", *columns])]
    rows += [",".join([f"c{i:03d}", *(values[i] for values in columns.values())]) for i in range(n)]
    (folder / "companies.csv").write_text("\n".join(rows) + "\n")
    labels = ["company_id,defaulted" + (",split" if splits else "")]
    labels += [f"c{i:03d},{int(i < defaults)}" + (f",{splits[i]}" if splits else "") for i in range(n)]
    (folder / "labels.csv").write_text("\n".join(labels) + "\n")
    return folder


def _check(path: Path):
    result = CliRunner().invoke(app, ["finance", "check", str(path)])
    assert "Traceback" not in result.output
    return result


# ---------------------------------------------------------------------------------------- CSV sources
def test_check_of_a_single_csv_file_says_a_csv_source_is_a_folder(tmp_path):
    folder = _write_csv(tmp_path / "data")
    result = _check(folder / "companies.csv")
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "format=" not in line  # the command has no such option
    assert line.startswith(f"error: {folder / 'companies.csv'}: ")
    assert "a CSV source is a folder with companies.csv (and labels.csv)" in line
    assert f"kgreason finance check {folder}" in line


def test_check_of_an_unknown_extension_names_what_is_accepted(tmp_path):
    path = tmp_path / "graph.json"
    path.write_text("{}")
    result = _check(path)
    assert result.exit_code == 2 and "format=" not in result.output
    assert "cannot tell the format from the extension '.json'" in result.output
    assert "a folder with companies.csv" in result.output and ".ttl" in result.output
    missing = _check(tmp_path / "nowhere")
    assert missing.exit_code == 2 and f"{tmp_path / 'nowhere'}: not found" in missing.output


# -------------------------------------------------------------------------------------- default split
def test_check_without_a_split_column_makes_the_seeded_stratified_split(tmp_path):
    folder = _write_csv(tmp_path / "data", n=60, defaults=15)
    result = _check(folder)
    assert result.exit_code == 0, result.output
    assert (
        "note: " in result.stderr
        and f"{folder / 'labels.csv'}: no labelled company has a split" in result.stderr
    )
    assert "train 42 / dev 9 / test 9; stratified by outcome; seed 13" in result.stderr
    assert '"train"' in result.stdout and '"unassigned"' not in result.stdout


def test_default_split_is_stratified_seeded_and_only_when_no_split_is_given(tmp_path):
    graph = load_company_csv(_write_csv(tmp_path / "data", n=60, defaults=15))
    split, note = default_split(graph, seed=13)
    assert note is not None and split.metadata["split"]["method"] == "stratified"
    for name, size in (("train", 42), ("dev", 9), ("test", 9)):
        rows = split.labelled_rows(name)
        assert len(rows) == size
        # stratified: each split keeps the default rate (15 of 60) to within one company
        assert abs(int((split.labels[rows] == DEFAULT).sum()) - size * 15 / 60) <= 1
    assert sum(len(split.labelled_rows(s)) for s in SPLITS) == 60
    again, _ = default_split(graph, seed=13)
    other, _ = default_split(graph, seed=14)
    assert list(again.splits) == list(split.splits) and list(other.splits) != list(split.splits)
    assert default_split(split, seed=99) == (split, None)  # a graph with splits is left alone
    assert list(graph.splits) == [""] * 60  # the input graph is not changed
    with pytest.raises(FinanceDataError, match="only 2 labelled companies"):
        default_split(load_company_csv(_write_csv(tmp_path / "two", n=2, defaults=1)))


def test_training_graph_of_a_csv_without_splits_can_fit_the_scaler(tmp_path):
    """The defect: `check` passed, `train` died with "no training companies to fit the feature scaler on"."""
    from kgreason.finance.dataset import CompanyFeaturizer
    from kgreason.finance.training import load_company_graph

    folder = _write_csv(tmp_path / "data", n=40, defaults=10)
    config = GraphSourceConfig(source="csv", path=str(folder), split_seed=5)
    graph = load_company_graph(config)
    assert graph.metadata["split"]["seed"] == 5
    assert [len(graph.labelled_rows(s)) for s in SPLITS] == [28, 6, 6]
    featurizer = CompanyFeaturizer.build(graph)
    assert featurizer.known.sum() == 28  # the training outcomes, and only those, may be inputs


def test_cli_trains_on_a_csv_without_splits_and_says_how_it_split(tmp_path):
    folder = _write_csv(tmp_path / "data", n=40, defaults=10)
    result = CliRunner().invoke(
        app,
        [
            "finance",
            "train",
            str(CONFIGS / "tiny.yaml"),
            *("--set", "data.source=csv", "--set", f"data.path={folder}"),
            *("--set", f"output_dir={tmp_path}/run", "--set", "trainer.epochs=1"),
            *("--set", "trainer.progress=false", "--set", "model.gnn.hidden=8"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "note: " in result.stderr and "no labelled company has a split" in result.stderr
    assert "seed 13: dev auc=" in result.stdout and (tmp_path / "run" / "metrics.json").is_file()


def test_partial_splits_fail_train_early_naming_the_file_and_warn_in_check(tmp_path, caplog):
    from kgreason.finance.training import train_risk_model

    folder = _write_csv(tmp_path / "data", n=20, defaults=5, splits=["train"] * 15 + ["test"] * 5)
    result = _check(folder)
    assert result.exit_code == 0
    assert f"warning: {folder / 'labels.csv'}: no labelled dev companies" in result.stderr
    config = RiskConfig(
        data=GraphSourceConfig(source="csv", path=str(folder)), output_dir=str(tmp_path / "run")
    )
    with pytest.raises(FinanceDataError, match=r"labels.csv: no labelled dev companies .*train 15, test 5"):
        train_risk_model(config, seed=1)
    assert not (tmp_path / "run").exists()  # refused before anything was written


# ----------------------------------------------------------------------------------------- leakage
LEAKS = {
    "flag": ("identical to the label", lambda y, rng: [str(v) for v in y]),
    "code": ("a copy of the label", lambda y, rng: [str(7 - 5 * v) for v in y]),
    "days_to_default": (
        "separates the 15 defaulted from the 45 survived companies of",
        lambda y, rng: [f"{v * 100 + r:.2f}" for v, r in zip(y, rng.uniform(0, 50, len(y)), strict=True)],
    ),
    "recovery_rate": (
        "is missing for exactly the survived companies",
        lambda y, rng: [f"{r:.2f}" if v else "" for v, r in zip(y, rng.uniform(size=len(y)), strict=True)],
    ),
}


@pytest.mark.parametrize("column", list(LEAKS))
def test_check_warns_about_a_feature_that_copies_the_label(tmp_path, column):
    message, make = LEAKS[column]
    y = [int(i < 15) for i in range(60)]
    folder = _write_csv(
        tmp_path / "data", n=60, defaults=15, columns={column: make(y, np.random.default_rng(1))}
    )
    result = _check(folder)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1  # the leaking column only, not leverage
    assert f"possible label leakage: feature {column!r}" in warnings[0] and message in warnings[0]


def test_no_leakage_warning_on_the_generators_features():
    from kgreason.finance.generator import read_company_generator

    graph = read_company_generator(num_companies=400, num_groups=80)
    assert leakage_warnings(graph) == []


def test_train_warns_about_leakage(tmp_path, caplog):
    from kgreason.finance.training import train_risk_model

    y = [int(i < 15) for i in range(60)]
    folder = _write_csv(
        tmp_path / "data", n=60, defaults=15, columns={"flag": [str(v) for v in y]}, splits=["train"] * 60
    )
    config = RiskConfig(
        data=GraphSourceConfig(source="csv", path=str(folder)), output_dir=str(tmp_path / "r")
    )
    with (
        caplog.at_level(logging.WARNING, logger="kgreason.finance.training"),
        pytest.raises(FinanceDataError, match="no labelled dev / test companies"),
    ):
        train_risk_model(config, seed=1)
    assert any("possible label leakage: feature 'flag'" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------- SMEsD folder
@pytest.mark.parametrize("make", [False, True])
def test_train_smesd_without_the_data_folder_says_how_to_set_it(tmp_path, monkeypatch, make):
    data = tmp_path / "no-data"
    if make:
        data.mkdir()  # a data folder without smesd/
    monkeypatch.setenv("KGREASON_DATA", str(data))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["finance", "train", str(CONFIGS / "smesd.yaml")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: {data / 'smesd'}: SMEsD data folder not found")
    assert "has no smesd/" in line if make else "does not exist" in line
    assert "--data-dir" in line and "$KGREASON_DATA" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--seeds", "4294967296"], "--seeds: expected seeds in [0, 2**32 - 1]"),
        (["--set", "seeds=[4294967296]"], "seeds: expected seeds in [0, 2**32 - 1]"),
        (["--set", "data.split_seed=-1"], "data.split_seed: expected an integer in [0, 2**32 - 1]"),
        (["--set", "data.split_fractions=[0.5,0.5]"], "data.split_fractions must be three positive shares"),
    ],
)
def test_risk_seeds_and_split_settings_are_checked_before_training(monkeypatch, args, needle):
    """Found in review: scikit-learn takes seeds in [0, 2**32 - 1]; a larger one failed after training."""
    from cli_helpers import refused

    def train(*_, **__):
        pytest.fail("a model was trained before the config was checked")

    monkeypatch.setattr("kgreason.finance.training.train_risk_model", train)
    config = Path(__file__).resolve().parents[1] / "configs" / "finance" / "tiny.yaml"
    assert needle in refused("finance", "train", str(config), *args)
