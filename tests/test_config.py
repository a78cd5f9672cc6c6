"""Config schemas: YAML loading, dotted overrides, unknown keys with suggestions, type checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kgreason.core.config import RetrieveConfig, apply_overrides, build_config, load_config
from kgreason.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_shipped_configs_are_valid():
    """Every shipped config builds against its schema, and the components it names are registered."""
    from kgreason.data.readers import readers
    from kgreason.kge.train import KGEConfig
    from kgreason.models.config import HEADS, VARIANTS
    from kgreason.runs.config import ExperimentConfig
    from kgreason.tasks.registry import tasks

    paths = sorted((REPO / "configs").rglob("*.yaml"))
    assert len(paths) >= 5
    for path in paths:
        if path.parent.name == "kge":
            assert load_config(KGEConfig, path).epochs >= 1, path
        elif path.parent.name == "kgc":
            from kgreason.training.text_link import KGCConfig

            assert load_config(KGCConfig, path).trainer.epochs >= 1, path
        elif path.parent.name == "finance":
            from kgreason.finance.config import RiskConfig

            assert load_config(RiskConfig, path).trainer.epochs >= 1, path
        elif path.name == "retrieve.yaml":
            assert load_config(RetrieveConfig, path).retrieval.hops >= 1, path
        else:
            cfg = load_config(ExperimentConfig, path)
            tasks.get(cfg.task)
            readers.get(cfg.data.dataset)
            assert cfg.model.variant in VARIANTS and cfg.model.head in HEADS, path


def test_overrides_are_typed_and_nested(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("retrieval:\n  hops: 3\n")
    cfg = load_config(
        RetrieveConfig, path, ["retrieval.hops=1", "retrieval.facts=false", "encoder.device=cpu"]
    )
    assert cfg.retrieval.hops == 1
    assert cfg.retrieval.facts is False
    assert cfg.encoder.device == "cpu"
    assert cfg.retrieval.min_link_score == 0.0  # defaults kept
    assert load_config(RetrieveConfig, None, ["retrieval.min_link_score=1"]).retrieval.min_link_score == 1.0


def test_unknown_key_is_rejected_with_suggestion():
    with pytest.raises(
        ConfigError, match=r"unknown config key 'retrieval.hop'.*Did you mean 'retrieval.hops'"
    ):
        load_config(RetrieveConfig, None, ["retrieval.hop=2"])
    with pytest.raises(ConfigError, match=r"'retreival'.*Did you mean 'retrieval'"):
        build_config(RetrieveConfig, {"retreival": {"hops": 1}})
    with pytest.raises(ConfigError, match=r"'hops'.*Did you mean 'retrieval.hops'"):
        build_config(RetrieveConfig, {"hops": 1})


def test_wrong_types_are_rejected():
    with pytest.raises(ConfigError, match="retrieval.hops: expected an integer"):
        load_config(RetrieveConfig, None, ["retrieval.hops=two"])
    with pytest.raises(ConfigError, match="retrieval.facts: expected true/false"):
        load_config(RetrieveConfig, None, ["retrieval.facts=maybe"])
    with pytest.raises(ConfigError, match="expected a section"):
        build_config(RetrieveConfig, {"retrieval": 3})


def test_bad_yaml_names_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("retrieval:\n  hops: [1,\n")
    with pytest.raises(ConfigError, match=r"bad.yaml, line \d+"):
        load_config(RetrieveConfig, path)
    with pytest.raises(ConfigError, match="must look like"):
        apply_overrides({}, ["noequals"])


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("retrieval.hops=-1", "retrieval.hops: expected an integer >= 0, got -1"),
        ("retrieval.max_nodes=0", "retrieval.max_nodes: expected an integer >= 1, got 0"),
        ("retrieval.top_k=0", "retrieval.top_k: expected an integer >= 1, got 0"),
        ("encoder.batch_size=0", "encoder.batch_size: expected an integer >= 1, got 0"),
        ("encoder.max_length=-1", "encoder.max_length: expected an integer >= 2, got -1"),
        (
            "retrieval.index_type=bogus",
            "retrieval.index_type: expected one of auto, flat, hnsw, ivf, got 'bogus'",
        ),
    ],
)
def test_values_are_range_checked_in_yaml_and_overrides(tmp_path, override, needle):
    key, value = override.split("=")
    section, name = key.split(".")
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_config(RetrieveConfig, None, [override])
    path = tmp_path / "c.yaml"
    path.write_text(f"{section}:\n  {name}: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_config(RetrieveConfig, path)


def test_experiment_values_are_range_checked():
    from kgreason.runs.config import ExperimentConfig

    for override, needle in [
        ("model.max_length=0", "model.max_length: expected an integer >= 2, got 0"),
        ("trainer.seed=-1", "trainer.seed: expected an integer in [0, 2**63 - 1], got -1"),
        (f"trainer.seed={2**63}", f"trainer.seed: expected an integer in [0, 2**63 - 1], got {2**63}"),
        ("data.max_train=-5", "data.max_train: expected an integer >= 0 (0: all), got -5"),
        ("data.max_eval=-1", "data.max_eval: expected an integer >= 0 (0: all), got -1"),
        (
            "model.variant=bogus",
            "model.variant: expected one of text, graph, fused, fused_facts, got 'bogus'",
        ),
        ("trainer.batch_size=0", "trainer.batch_size: expected an integer >= 1, got 0"),
        ("trainer.warmup_ratio=2", "trainer.warmup_ratio: expected a number in [0, 1], got 2.0"),
        ("trainer.precision=fp8", "trainer.precision: expected one of auto, fp32, bf16, fp16, got 'fp8'"),
        ("trainer.peft.method=qlora", "trainer.peft.method: expected one of none, lora, adalora, prefix"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(needle)):
            load_config(ExperimentConfig, None, [override])
    assert load_config(ExperimentConfig, None, [f"trainer.seed={2**63 - 1}"]).trainer.seed == 2**63 - 1


def test_a_wrong_value_suggests_the_closest_choice():
    with pytest.raises(ConfigError, match="Did you mean 'hnsw'"):
        load_config(RetrieveConfig, None, ["retrieval.index_type=hnws"])


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_device_without_a_gpu_is_refused(monkeypatch, device):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"encoder.device='cuda.*no CUDA device is visible.*auto or cpu"):
        load_config(RetrieveConfig, None, [f"encoder.device={device}"])
    assert load_config(RetrieveConfig, None, ["encoder.device=cpu"]).encoder.device == "cpu"
    assert load_config(RetrieveConfig, None, ["encoder.device=auto"]).encoder.device == "auto"


@pytest.mark.parametrize("kind", ["missing", "folder", "latin-1", "python-tag", "list"])
def test_unreadable_config_files_are_config_errors(tmp_path, kind):
    path = tmp_path / "c.yaml"
    expected = {
        "missing": "no such config file",
        "folder": "is a folder",
        "latin-1": "not UTF-8",
        "python-tag": "python/object",
        "list": "mapping at the top level",
    }[kind]
    if kind == "folder":
        path.mkdir()
    elif kind == "latin-1":
        path.write_bytes(b"kb:\n  source: caf\xe9\n")
    elif kind == "python-tag":
        path.write_text("kb: !!python/object:os.system {}\n", encoding="utf-8")
    elif kind == "list":
        path.write_text("- 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(RetrieveConfig, path)
    assert str(path) in str(info.value) and expected in str(info.value)
    assert "expected" in str(info.value)


def test_a_bom_at_the_start_of_a_config_is_accepted(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes("\ufeffretrieval:\n  hops: 1\n".encode())
    assert load_config(RetrieveConfig, path).retrieval.hops == 1


def test_relative_paths_resolve_against_the_config_folder_then_the_data_folder(tmp_path, monkeypatch):
    from kgreason.runs.config import ExperimentConfig

    folder, data, elsewhere = tmp_path / "configs", tmp_path / "data", tmp_path / "elsewhere"
    for d in (folder / "kb", data / "kg", elsewhere):
        d.mkdir(parents=True)
    (folder / "kb" / "mine.ttl").write_text("", encoding="utf-8")
    (folder / "my.rules").write_text("", encoding="utf-8")
    (data / "kg" / "shared.ttl").write_text("", encoding="utf-8")
    monkeypatch.setenv("KGREASON_DATA", str(data))
    monkeypatch.chdir(elsewhere)
    path = folder / "exp.yaml"
    path.write_text("knowledge:\n  kb:\n    source: kb/mine.ttl\n  rules: my.rules\n", encoding="utf-8")
    cfg = load_config(ExperimentConfig, path)
    assert cfg.knowledge.kb.source == str(folder / "kb" / "mine.ttl")
    assert cfg.knowledge.rules == str(folder / "my.rules")
    # a relative config path works too, and the data folder is the fallback
    path.write_text("knowledge:\n  kb:\n    source: kg/shared.ttl\n  rules: kinship\n", encoding="utf-8")
    cfg = load_config(ExperimentConfig, Path("..") / "configs" / "exp.yaml")
    assert Path(cfg.knowledge.kb.source).resolve() == (data / "kg" / "shared.ttl").resolve()
    assert cfg.knowledge.rules == "kinship"  # a name, not a path
    # an override is relative to the working folder, not to the config
    (elsewhere / "here.ttl").write_text("", encoding="utf-8")
    cfg = load_config(ExperimentConfig, path, ["knowledge.kb.source=here.ttl"])
    assert Path(cfg.knowledge.kb.source).resolve() == (elsewhere / "here.ttl").resolve()


def test_a_missing_relative_path_names_every_place_looked(tmp_path, monkeypatch):
    from kgreason.runs.config import ExperimentConfig

    folder, data = tmp_path / "configs", tmp_path / "data"
    folder.mkdir()
    data.mkdir()
    monkeypatch.setenv("KGREASON_DATA", str(data))
    monkeypatch.chdir(tmp_path)
    path = folder / "exp.yaml"
    path.write_text("knowledge:\n  kb:\n    source: kg/nope.ttl\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(ExperimentConfig, path)
    text = str(info.value)
    assert "knowledge.kb.source" in text and "kg/nope.ttl" in text
    assert str(folder / "kg" / "nope.ttl") in text and str(data / "kg" / "nope.ttl") in text
    # a KB read by a named plug-in need not be a file
    path.write_text(
        "knowledge:\n  kb:\n    source: kg/nope.ttl\n    format: acme.Products.v1\n", encoding="utf-8"
    )
    assert load_config(ExperimentConfig, path).knowledge.kb.source == "kg/nope.ttl"
    # a missing KB given by an override is refused too, naming the working and data folders
    with pytest.raises(ConfigError, match=re.escape(str(data / "other.ttl"))):
        load_config(ExperimentConfig, None, ["knowledge.kb.source=other.ttl"])
