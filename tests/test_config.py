"""Config schemas: YAML loading, dotted overrides, unknown keys with suggestions, type checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgreason.config import RetrieveConfig, apply_overrides, build_config, load_config
from kgreason.errors import ConfigError

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
