"""The command line end to end on the shipped example KB (real rdflib parse, real encoder for facts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgreason.cli import app

REPO = Path(__file__).resolve().parents[1]
FAMILY = str(REPO / "knowledge" / "examples" / "family.ttl")
runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_has_help():
    top = run("--help")
    for command in ("kb", "link", "retrieve"):
        assert command in top
    for sub in (["kb", "info"], ["kb", "convert"], ["kb", "validate"], ["link"], ["retrieve"]):
        text = run(*sub, "--help")
        assert "--format" in text or "--kb" in text


def test_kb_info_text_and_json():
    text = run("kb", "info", FAMILY)
    assert "entities" in text and "load time" in text and "has mother" in text
    data = json.loads(run("kb", "info", FAMILY, "--json"))
    assert (
        data["num_relations"] == 8
    )  # type, gender, livesIn, worksAs, hasMother, hasFather, hasSpouse, locatedIn
    assert data["triples_per_split"]["all"] == data["num_triples"]


def test_convert_to_store_and_back(tmp_path):
    store = tmp_path / "family_store"
    assert "wrote" in run("kb", "convert", FAMILY, str(store))
    assert (store / "manifest.json").is_file()
    nt = tmp_path / "family.nt"
    run("kb", "convert", str(store), str(nt))
    import rdflib
    from rdflib.compare import isomorphic

    assert isomorphic(rdflib.Graph().parse(FAMILY), rdflib.Graph().parse(nt, format="nt"))
    tsv = tmp_path / "family.tsv"
    run("kb", "convert", str(store), str(tsv))
    assert (
        len(tsv.read_text().splitlines())
        == json.loads(run("kb", "info", str(store), "--json"))["num_triples"]
    )


def test_validate_passes_on_example():
    assert "FAIL" not in run("kb", "validate", FAMILY)


def test_link_finds_people_and_nothing():
    rows = json.loads(run("link", "Gabe visited Grandma Ada in Lyon.", "--kb", FAMILY, "--json"))
    labels = [row["candidates"][0]["label"] for row in rows]
    assert labels == ["Gabriel Laurent", "Ada Moreau", "Lyon"]
    assert json.loads(run("link", "nothing to see here", "--kb", FAMILY, "--json")) == []


def test_retrieve_subgraph_only_with_overrides():
    out = json.loads(
        run(
            "retrieve",
            "Who is Gabriel Laurent's grandmother?",
            "--kb",
            FAMILY,
            "--no-facts",
            "--hops",
            "2",
            "--json",
        )
    )
    assert out["facts"] == []
    assert out["subgraph"]["num_nodes"] > 3
    assert len(out["subgraph"]["edge_type"]) == len(out["subgraph"]["edge_index"][0])


def test_bad_input_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix ex: <http://e/> .\nex:a ex:b ex:c .\nex:a ex:b .\n")
    result = runner.invoke(app, ["kb", "info", str(bad)])
    assert result.exit_code == 2
    assert "bad.ttl" in result.output and "line 3" in result.output
    result = runner.invoke(app, ["retrieve", "x", "--kb", FAMILY, "--set", "retrieval.hop=1"])
    assert result.exit_code == 2 and "Did you mean 'retrieval.hops'" in result.output


@pytest.mark.parametrize("top_k", [3])
def test_retrieve_with_facts_uses_real_encoder(tmp_path, monkeypatch, top_k):
    monkeypatch.setenv("KGREASON_CACHE", str(tmp_path / "cache"))
    out = json.loads(
        run("retrieve", "Where does Ada Moreau live?", "--kb", FAMILY, "--top-k", str(top_k), "--json")
    )
    assert len(out["facts"]) == top_k
    assert any("Ada Moreau" in f["text"] and "Lyon" in f["text"] for f in out["facts"])
