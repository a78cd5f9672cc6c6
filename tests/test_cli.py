"""The command line end to end on the shipped example KB (real rdflib parse, real encoder for facts)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import refused
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


@pytest.fixture
def no_kb_loading(monkeypatch):
    """Opening the KB fails the test: bad options must be refused before anything is loaded."""

    def _open(*args, **kwargs):
        pytest.fail("the knowledge base was opened before the options were validated")

    monkeypatch.setattr("kgreason.cli._open", _open)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--hops", "-1"], ["--hops (retrieval.hops)", "integer >= 0", "-1"]),
        (["--max-nodes", "0"], ["--max-nodes (retrieval.max_nodes)", "integer >= 1", "got 0"]),
        (["--top-k", "0"], ["--top-k (retrieval.top_k)", "integer >= 1", "got 0"]),
        (["--set", "encoder.batch_size=0"], ["encoder.batch_size", "integer >= 1", "got 0"]),
        (["--set", "encoder.max_length=-1"], ["encoder.max_length", "integer >= 2", "got -1"]),
        (
            ["--set", "retrieval.index_type=bogus"],
            ["retrieval.index_type", "one of auto, flat, hnsw, ivf", "'bogus'"],
        ),
        (["--set", "encoder.device=gpu0"], ["encoder.device", "auto, cpu, cuda", "'gpu0'"]),
    ],
)
def test_retrieve_refuses_bad_options_before_loading(no_kb_loading, args, needles):
    line = refused("retrieve", "Where does Ada Moreau live?", "--kb", FAMILY, *args)
    for needle in needles:
        assert needle in line, line


def test_retrieve_refuses_cuda_without_a_gpu(no_kb_loading, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = refused("retrieve", "Ada", "--kb", FAMILY, "--set", "encoder.device=cuda")
    assert "encoder.device" in line and "no CUDA device" in line and "auto or cpu" in line


def test_retrieve_config_values_are_checked_like_overrides(no_kb_loading, tmp_path):
    config = tmp_path / "retrieve.yaml"
    config.write_text(f"kb:\n  source: {FAMILY}\nretrieval:\n  top_k: -3\n", encoding="utf-8")
    line = refused("retrieve", "Ada", "--config", str(config))
    assert "retrieval.top_k" in line and "integer >= 1" in line


def test_retrieve_shipped_config_works_from_outside_the_repo(tmp_path, monkeypatch):
    """``kb.source`` of configs/retrieve.yaml resolves against the config's folder, not the working folder."""
    monkeypatch.chdir(tmp_path)
    out = json.loads(
        run(
            "retrieve",
            "Who is Gabriel Laurent's grandmother?",
            "--config",
            str(REPO / "configs" / "retrieve.yaml"),
            "--no-facts",
            "--json",
        )
    )
    assert out["subgraph"]["num_nodes"] > 3


def test_retrieve_missing_kb_of_a_config_names_where_it_looked(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("KGREASON_DATA", str(data))
    folder = tmp_path / "configs"
    folder.mkdir()
    config = folder / "retrieve.yaml"
    config.write_text("kb:\n  source: kg/missing.ttl\n", encoding="utf-8")
    line = refused("retrieve", "Ada", "--config", str(config), "--no-facts")
    assert "kb.source" in line and "retrieve.yaml" in line
    assert str(folder / "kg" / "missing.ttl") in line and str(data / "kg" / "missing.ttl") in line


@pytest.mark.parametrize("kind", ["missing", "folder", "latin-1"])
def test_retrieve_unreadable_config_is_one_line(tmp_path, kind):
    config = tmp_path / "retrieve.yaml"
    if kind == "folder":
        config.mkdir()
    elif kind == "latin-1":
        config.write_bytes("kb:\n  source: caf\xe9.ttl\n".encode("latin-1"))
    line = refused("retrieve", "Ada", "--config", str(config))
    assert str(config) in line and "expected" in line


def test_retrieve_missing_kb_option_names_the_option_and_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KGREASON_DATA", str(tmp_path / "data"))
    line = refused("retrieve", "Ada", "--kb", "missing.ttl", "--no-facts")
    assert "--kb (kb.source) 'missing.ttl': no such file or folder" in line
    assert str(tmp_path / "missing.ttl") in line and str(tmp_path / "data" / "missing.ttl") in line


@pytest.mark.parametrize("command", [["bench", "reasoning"], ["bench", "finance"], ["finance", "train"]])
@pytest.mark.parametrize("seeds", [",", "x", "3,3", "-1"])
def test_every_seeds_option_is_checked_before_anything_runs(command: list[str], seeds: str) -> None:
    result = CliRunner().invoke(app, [*command, "--seeds", seeds])
    assert result.exit_code == 2
    assert "--seeds" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(monkeypatch) -> None:
    """The root group's error boundary: a bug exits 1 with one line; ``--debug`` re-raises it."""

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("kgreason.cli._open", broken)
    result = runner.invoke(app, ["kb", "info", FAMILY])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        "error: internal error (ZeroDivisionError: division by zero); re-run with --debug for the traceback"
    ]
    debug = runner.invoke(app, ["--debug", "kb", "info", FAMILY])
    assert isinstance(debug.exception, ZeroDivisionError)


def test_an_unreadable_file_is_one_line_naming_it() -> None:
    from kgreason.core.errors import describe_error

    assert describe_error(IsADirectoryError(21, "Is a directory", "some_dir")) == (
        2,
        "some_dir: Is a directory",
    )
    assert describe_error(FileNotFoundError("no such RDF file: x.ttl")) == (2, "no such RDF file: x.ttl")
    code, line = describe_error(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"))
    assert code == 2 and line.startswith("not UTF-8 text (invalid start byte at byte 0)")


def test_a_parser_message_with_a_line_break_stays_one_line(tmp_path: Path) -> None:
    """Found by fuzzing: pyoxigraph quotes the offending character, here a line break inside an IRI."""
    from kgreason.core.errors import LocatedError, one_line

    assert one_line("bad IRI code point '\n'\x00") == "bad IRI code point '\\n'\\x00"
    assert "\n" not in str(LocatedError("a\nb", path="f.ttl", line=3, expected="x\ny"))
    bad = tmp_path / "broken.nt"
    bad.write_text(
        "<http://example.org/a\nb> <http://example.org/r> <http://example.org/c> .\n", encoding="utf-8"
    )
    line = refused("kb", "info", str(bad))
    assert "broken.nt" in line


@pytest.mark.parametrize(
    ("command", "target"),
    [
        (["bench", "reasoning"], "kgreason.bench.reasoning.ReasoningSuiteRunner.run"),
        (["bench", "finance"], "kgreason.finance.bench.FinanceSuiteRunner.run"),
    ],
)
def test_a_numerical_failure_inside_a_suite_is_an_internal_error_not_bad_input(
    monkeypatch, command: list[str], target: str
) -> None:
    """numpy's LinAlgError is a ValueError: a suite that fails inside must not be reported as bad input (exit 2)
    and must show its traceback under --debug (found on data_db9b8f04: "error: SVD did not converge", exit 2)."""

    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(target, broken)
    result = runner.invoke(app, command)
    assert result.exit_code == 1
    assert "internal error (LinAlgError: SVD did not converge)" in result.output
    debug = runner.invoke(app, ["--debug", *command])
    assert isinstance(debug.exception, np.linalg.LinAlgError)
