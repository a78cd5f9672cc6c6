"""Loading and writing knowledge bases safely: no data loss, checked stores, no network, bounded work.

Every bad input must raise kgreason's own error naming the file (and line) and what was expected; through the
command line that is one ``error: ...`` line with exit 2 and no traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kgreason.cli import app
from kgreason.core.errors import KBFormatError, KGReasonError
from kgreason.kb import TripleStore, TripleStoreBuilder
from kgreason.kb.loaders.rdf import load_rdf, quote_literal
from kgreason.kb.loaders.tsv import load_tsv
from kgreason.kb.sources import open_kb

REPO = Path(__file__).resolve().parents[1]
FAMILY = str(REPO / "knowledge" / "examples" / "family.ttl")
runner = CliRunner()


# ---------------------------------------------------------------------------------------------- helpers
class _Expired(BaseException):
    """Raised by :func:`time_limit` (a BaseException, so no loader can swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail the block if it runs longer than ``seconds`` (SIGALRM, main thread)."""

    def expire(signum, frame):
        raise _Expired(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def cli_error(*args: str) -> str:
    """Run the CLI, require exit 2 with one ``error:`` line and no traceback; return that line."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def small_store() -> TripleStore:
    b = TripleStoreBuilder(name="small")
    b.add_many([("ada", "knows", "bob"), ("bob", "knows", "carl"), ("carl", "likes", "ada")])
    b.add_label("ada", "Ada", preferred=True)
    return b.build()


def rehash(folder: Path) -> None:
    """Make the manifest's checksums (and sizes) agree with the files again, after a deliberate edit."""
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for name in manifest["sha256"]:
        manifest["sha256"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        if "bytes" in manifest:
            manifest["bytes"][name] = (folder / name).stat().st_size
    manifest_path.write_text(json.dumps(manifest))


def dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ---------------------------------------------------------------------------------------------- 1. data loss
def test_convert_refuses_to_replace_a_folder_that_is_not_a_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me\n")
    line = cli_error("kb", "convert", FAMILY, "victim")
    assert "victim" in line and "not a kgreason store" in line and "--force" in line
    assert (victim / "precious.txt").read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim"]
    result = runner.invoke(app, ["kb", "convert", FAMILY, "victim", "--force"])
    assert result.exit_code == 0, result.output
    assert (victim / "manifest.json").is_file() and not (victim / "precious.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["victim"]


def test_a_store_with_foreign_files_is_not_replaced(tmp_path):
    store = small_store()
    target = store.save(tmp_path / "kb")
    (target / "notes.txt").write_text("mine\n")
    with pytest.raises(KGReasonError, match=r"kb: .*notes\.txt.*force"):
        store.save(target)
    assert (target / "notes.txt").is_file()
    # a damaged manifest is not ours either
    (target / "notes.txt").unlink()
    (target / "manifest.json").write_text("[]")
    with pytest.raises(KGReasonError, match="not a kgreason store"):
        store.save(target)
    assert (target / "manifest.json").read_text() == "[]"


def test_an_empty_folder_and_our_own_store_are_replaced(tmp_path):
    store = small_store()
    (tmp_path / "empty").mkdir()
    store.save(tmp_path / "empty")
    assert TripleStore.load(tmp_path / "empty").num_entities == 3
    store.save(tmp_path / "empty")  # replacing our own store is the normal case
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_a_file_target_is_refused_and_force_leaves_no_backup(tmp_path):
    target = tmp_path / "kb"
    target.write_text("a file\n")
    with pytest.raises(KGReasonError, match=r"kb: .*is a file.*force"):
        small_store().save(target)
    assert target.read_text() == "a file\n"
    small_store().save(target, force=True)
    assert (target / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kb"]


def test_a_symlink_target_is_refused_and_force_replaces_only_the_link(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "data.txt").write_text("x\n")
    (tmp_path / "link").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(KGReasonError, match=r"link: .*symbolic link"):
        small_store().save(tmp_path / "link")
    small_store().save(tmp_path / "link", force=True)
    assert (elsewhere / "data.txt").read_text() == "x\n"
    assert not (tmp_path / "link").is_symlink() and (tmp_path / "link" / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "link"]


def test_stale_temporaries_of_dead_writers_are_swept(tmp_path):
    dead, alive = dead_pid(), os.getppid()
    stale_dir = tmp_path / f".kb.{dead}.abcd1234.tmp"
    stale_dir.mkdir()
    (stale_dir / "entities.txt").write_text("a\n")
    stale_backup = tmp_path / f".kb.old-{dead}"
    small_store().save(stale_backup)
    running = tmp_path / f".kb.{alive}.efgh5678.tmp"  # a writer that may still be running: kept
    running.mkdir()
    foreign = tmp_path / f".kb.{dead}.ijkl9012.tmp"  # looks like ours but holds a file we never write: kept
    foreign.mkdir()
    (foreign / "thesis.pdf").write_text("x")
    small_store().save(tmp_path / "kb")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["kb", running.name, foreign.name])
    # file writers (TSV, RDF) sweep their dead temporaries too
    stale_file = tmp_path / f".out.tsv.{dead}.abcdefgh.tmp"
    stale_file.write_text("half a file")
    from kgreason.kb.loaders.tsv import write_tsv

    write_tsv(small_store(), tmp_path / "out.tsv")
    assert not stale_file.exists() and (tmp_path / "out.tsv").is_file()


def test_store_folders_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        target = small_store().save(tmp_path / "kb")
    finally:
        os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o755


# ---------------------------------------------------------------------------------------------- 2. checksums
def test_a_tampered_array_is_caught_by_default(tmp_path):
    target = small_store().save(tmp_path / "kb")
    npy = target / "triples.all.npy"
    data = bytearray(npy.read_bytes())
    data[-8] ^= 1  # same size, one id changed
    npy.write_bytes(bytes(data))
    with pytest.raises(KBFormatError, match=r"triples\.all\.npy: checksum mismatch"):
        TripleStore.load(target)
    for command in (["kb", "info"], ["kb", "validate"], ["kb", "convert"]):
        extra = [str(tmp_path / "out.tsv")] if command[1] == "convert" else []
        line = cli_error(*command, str(target), *extra)
        assert "triples.all.npy: checksum mismatch" in line
    assert not (tmp_path / "out.tsv").exists()
    TripleStore.load(target, verify=False)  # the opt-out skips the hashes


def test_sizes_are_checked_even_without_hashes(tmp_path):
    target = small_store().save(tmp_path / "kb")
    (target / "entities.txt").write_text("ada\nbob\ncarl\ndora\n")
    with pytest.raises(KBFormatError, match=r"entities\.txt: .*bytes.*manifest\.json"):
        TripleStore.load(target, verify=False)


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.txt", "sub/entities.txt", "..", ""])
def test_manifest_file_names_must_be_plain_names(tmp_path, bad):
    target = small_store().save(tmp_path / "kb")
    (tmp_path / "outside.txt").write_text("x\n")
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["sha256"][bad] = "0" * 64
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(KBFormatError, match=r"manifest\.json: .*plain file name"):
        TripleStore.load(target)
    manifest["sha256"].pop(bad)
    manifest["splits"]["all"]["file"] = bad
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(KBFormatError, match=r"manifest\.json: .*plain file name"):
        TripleStore.load(target, verify=False)


# ---------------------------------------------------------------------------------------------- 3. damaged stores
def _damage(target: Path, how: str) -> str:
    """Damage a saved store one way; return the file name the error must name."""
    manifest = target / "manifest.json"
    npy = target / "triples.all.npy"
    if how == "truncated npy":
        npy.write_bytes(npy.read_bytes()[:-20])
        rehash(target)
        return "triples.all.npy"
    if how == "manifest list":
        manifest.write_text("[]")
        return "manifest.json"
    if how == "manifest latin-1":
        manifest.write_bytes(b'{"name": "caf\xe9"}')
        return "manifest.json"
    if how == "manifest not json":
        manifest.write_text("{format: store}")
        return "manifest.json"
    if how == "manifest wrong types":
        data = json.loads(manifest.read_text())
        data["splits"] = {"all": {"file": "triples.all.npy", "count": "three"}}
        manifest.write_text(json.dumps(data))
        return "manifest.json"
    if how in ("names not json", "names not object", "names bad id", "names bad label"):
        line = {
            "names not json": "{oops",
            "names not object": "[1, 2]",
            "names bad id": '{"entity": 99, "label": "x"}',
            "names bad label": '{"entity": 0, "label": 7}',
        }[how]
        names = target / "names.jsonl"
        names.write_text(names.read_text() + line + "\n")
        rehash(target)
        return "names.jsonl, line 2"
    if how == "annotations bad":
        (target / "annotations.jsonl").write_text('[0, "<p>"]\n')
        data = json.loads(manifest.read_text())
        data["sha256"]["annotations.jsonl"] = ""
        if "bytes" in data:
            data["bytes"]["annotations.jsonl"] = 0
        manifest.write_text(json.dumps(data))
        rehash(target)
        return "annotations.jsonl, line 1"
    if how == "entity id out of range":
        rows = np.load(npy)
        rows[1, 2] = 99
        np.save(npy, rows)
        rehash(target)
        return "triples.all.npy"
    if how == "negative relation id":
        rows = np.load(npy)
        rows[0, 1] = -1
        np.save(npy, rows)
        rehash(target)
        return "triples.all.npy"
    if how == "float triples":
        np.save(npy, np.load(npy).astype(np.float64))
        rehash(target)
        return "triples.all.npy"
    if how == "object array":
        np.save(npy, np.array([[1, 2, 3]], dtype=object), allow_pickle=True)
        rehash(target)
        return "triples.all.npy"
    if how == "entities not utf-8":
        (target / "entities.txt").write_bytes(b"ada\nb\xf6b\ncarl\n")
        rehash(target)
        return "entities.txt"
    if how == "symlink out":
        outside = target.parent / "outside.npy"
        outside.write_bytes(npy.read_bytes())
        npy.unlink()
        npy.symlink_to(outside)
        return "triples.all.npy"
    if how == "fifo entities":
        (target / "entities.txt").unlink()
        os.mkfifo(target / "entities.txt")
        return "entities.txt"
    raise AssertionError(how)


DAMAGE = {
    "truncated npy": "NumPy",
    "manifest list": "JSON object",
    "manifest latin-1": "UTF-8",
    "manifest not json": "JSON",
    "manifest wrong types": "count",
    "names not json": "JSON",
    "names not object": "JSON object",
    "names bad id": "entity id 99",
    "names bad label": "label",
    "annotations bad": "entity id, predicate, literal",
    "entity id out of range": "entity id 99",
    "negative relation id": "relation id -1",
    "float triples": "int64",
    "object array": "int64",
    "entities not utf-8": "UTF-8",
    "symlink out": "outside the store folder",
    "fifo entities": "not a regular file",
}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_a_damaged_store_is_one_clear_error(tmp_path, how):
    target = small_store().save(tmp_path / "kb")
    where = _damage(target, how)
    with time_limit(10):
        with pytest.raises(KBFormatError) as caught:
            TripleStore.load(target, verify=False)
        message = str(caught.value)
        assert f"kb/{where}" in message and DAMAGE[how] in message, message
        assert caught.value.expected, message
        line = cli_error("kb", "info", str(target))
    assert f"kb/{where}" in line and DAMAGE[how] in line


# ---------------------------------------------------------------------------------------------- 4. no network
@pytest.fixture
def no_network(monkeypatch) -> list[str]:
    """Record (and refuse) every attempt to reach the network or open a URL."""
    calls: list[str] = []

    def refuse(name):
        def blocked(*args, **kwargs):
            calls.append(f"{name}{args!r}")
            raise OSError(f"test: network access through {name}")

        return blocked

    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(urllib.request, "urlopen", refuse("urlopen"))
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", refuse("OpenerDirector.open"))
    return calls


JSONLD_BODY = '"@id": "http://example.org/a", "http://example.org/p": {"@id": "http://example.org/b"}'


@pytest.mark.parametrize(
    "context",
    [
        '"http://schema.org/"',
        '["https://www.w3.org/ns/activitystreams", {"ex": "http://example.org/"}]',
        '{"@import": "http://example.org/context.jsonld"}',
        '"ctx.jsonld"',
    ],
)
def test_jsonld_remote_contexts_are_refused_without_fetching(tmp_path, no_network, context):
    (tmp_path / "ctx.jsonld").write_text('{"@context": {"ex": "http://example.org/"}}')
    path = tmp_path / "remote.jsonld"
    path.write_text("{" + f'"@context": {context}, ' + JSONLD_BODY + "}")
    with pytest.raises(KBFormatError, match=r"remote\.jsonld: .*@context.*another document"):
        load_rdf(path)
    line = cli_error("kb", "info", str(path))
    assert "remote.jsonld" in line and "@context" in line
    assert no_network == []


def test_nested_remote_context_is_refused(tmp_path, no_network):
    path = tmp_path / "nested.jsonld"
    path.write_text(
        json.dumps(
            {
                "@context": {
                    "ex": "http://example.org/",
                    "knows": {"@id": "ex:knows", "@context": "http://x/"},
                },
                "@id": "ex:a",
                "knows": {"@id": "ex:b", "@context": {"@vocab": "http://v/"}},
            }
        )
    )
    with pytest.raises(KBFormatError, match=r"nested\.jsonld: .*@context 'http://x/'"):
        load_rdf(path)
    assert no_network == []


def test_inline_jsonld_and_owl_imports_load_without_network(tmp_path, no_network):
    path = tmp_path / "inline.jsonld"
    path.write_text('{"@context": {"ex": "http://example.org/"}, ' + JSONLD_BODY + "}")
    assert load_rdf(path).triple_array().shape == (1, 3)
    owl = tmp_path / "onto.rdf"
    owl.write_text(
        '<?xml version="1.0"?>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:owl="http://www.w3.org/2002/07/owl#">\n'
        '  <owl:Ontology rdf:about="http://example.org/onto">\n'
        '    <owl:imports rdf:resource="http://example.org/other.owl"/>\n'
        "  </owl:Ontology>\n</rdf:RDF>\n"
    )
    assert load_rdf(owl).triple_array().shape == (2, 3)  # a type and the import: triples, never followed
    ttl = tmp_path / "onto.ttl"
    ttl.write_text(
        "@base <http://example.org/> .\n<onto> <http://www.w3.org/2002/07/owl#imports> <other> .\n"
    )
    assert load_rdf(ttl, parser="rdflib").triple_array().shape == (1, 3)
    assert no_network == []


def test_xml_external_entities_are_refused(tmp_path, no_network):
    path = tmp_path / "external.rdf"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n'
        '  <!ENTITY ext SYSTEM "http://example.org/secret.txt">\n]>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://example.org/">\n'
        '  <rdf:Description rdf:about="http://example.org/a"><ex:p>&ext;</ex:p></rdf:Description>\n'
        "</rdf:RDF>\n"
    )
    with time_limit(10), pytest.raises(KBFormatError, match=r"external\.rdf, line 3: .*entity 'ext'"):
        load_rdf(path)
    assert no_network == []


def test_ill_typed_literals_print_no_traceback(tmp_path, caplog, recwarn):
    """rdflib logs a traceback for every ill-typed literal; kgreason keeps the lexical form and stays quiet."""
    path = tmp_path / "typed.trig"
    path.write_text(
        '@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n<http://e/a> <http://e/p> "abc"^^xsd:integer, '
        '"maybe"^^xsd:boolean .\n'
    )
    result = runner.invoke(app, ["kb", "info", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "Failed to convert" not in result.output
    assert json.loads(result.output)["num_triples"] == 2
    assert [r.getMessage()[:40] for r in caplog.records if r.name.startswith("rdflib")] == []
    assert [str(w.message)[:40] for w in recwarn if issubclass(w.category, UserWarning)] == []


# ---------------------------------------------------------------------------------------------- 5. bounded work
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n  <!ENTITY lol "lol">\n'
    + "".join(
        f'  <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10)
    )
    + ']>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://example.org/">\n'
    '  <rdf:Description rdf:about="http://example.org/a"><ex:p>&lol9;</ex:p></rdf:Description>\n'
    "</rdf:RDF>\n"
)


def test_billion_laughs_is_refused_quickly(tmp_path):
    path = tmp_path / "lol.rdf"
    path.write_text(BILLION_LAUGHS)
    assert path.stat().st_size < 1200
    with time_limit(10):
        with pytest.raises(KBFormatError, match=r"lol\.rdf, line 4: .*entity 'lol1'.*other entities"):
            load_rdf(path)
        line = cli_error("kb", "info", str(path))
    assert "lol.rdf" in line and "entity" in line


def test_simple_xml_entities_still_work(tmp_path):
    """Ontology editors abbreviate namespaces with plain entities (``&owl;Thing``); those expand once, boundedly."""
    path = tmp_path / "abbrev.owl"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n  <!ENTITY ex "http://example.org/" >\n]>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="&ex;">\n'
        '  <rdf:Description rdf:about="&ex;a"><ex:p rdf:resource="&ex;b"/></rdf:Description>\n'
        "</rdf:RDF>\n"
    )
    kb = load_rdf(path)
    assert kb.entity_keys == ["<http://example.org/a>", "<http://example.org/b>"]


@pytest.mark.parametrize("name", ["kb.tsv", "kb.csv", "kb.nt", "kb.ttl", "kb.rdf", "kb.jsonld", "kb.txt.gz"])
def test_a_fifo_is_refused_not_read_forever(tmp_path, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    with time_limit(10):
        with pytest.raises(KBFormatError, match=rf"{name}: not a regular file \(a FIFO\)"):
            open_kb(fifo)
        line = cli_error("kb", "info", str(fifo))
    assert f"{name}: not a regular file" in line


def test_a_fifo_in_a_split_folder_is_refused(tmp_path):
    (tmp_path / "valid.txt").write_text("a\tr\tb\n")
    os.mkfifo(tmp_path / "train.txt")
    with time_limit(10):
        line = cli_error("kb", "info", str(tmp_path))
    assert "train.txt: not a regular file (a FIFO)" in line


def test_a_fifo_names_file_is_refused(tmp_path):
    tsv = tmp_path / "kb.tsv"
    tsv.write_text("a\tr\tb\n")
    os.mkfifo(tmp_path / "names.tsv")
    with time_limit(10), pytest.raises(KBFormatError, match=r"names\.tsv: not a regular file"):
        load_tsv(tsv, names=tmp_path / "names.tsv")


# ---------------------------------------------------------------------------------------------- 6. data folder
def test_missing_data_folder_says_how_to_set_one(tmp_path, monkeypatch):
    import kgreason.core.paths

    def no_default_folder(explicit=None):  # data_dir without the ../shared/data fallback
        chosen = explicit or os.environ.get("KGREASON_DATA")
        return Path(chosen) if chosen else None

    monkeypatch.setenv("KGREASON_DATA", "")  # restored afterwards, whatever --data-dir sets
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(kgreason.core.paths, "data_dir", no_default_folder)
    line = cli_error("kb", "info", "kg/umls")
    assert "kg/umls" in line and "no data folder" in line
    assert "--data-dir" in line and "$KGREASON_DATA" in line
    empty = tmp_path / "data"
    empty.mkdir()
    line = cli_error("kb", "info", "kg/umls", "--data-dir", str(empty))
    assert f"kg/umls: not found here nor in the data folder {empty}" in line
    line = cli_error("kb", "info", "kg/umls", "--data-dir", str(tmp_path / "absent"))
    assert f"the data folder {tmp_path / 'absent'} does not exist" in line
    line = cli_error("kb", "info", str(tmp_path / "absent.ttl"))
    assert f"{tmp_path / 'absent.ttl'}: no such file or folder" in line


# ---------------------------------------------------------------------------------------------- 8. properties
PROPERTY = settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
# Pieces of delimited text and RDF, so that random inputs often get deep into the parsers.
TSV_PIECES = st.sampled_from(
    ["a", "b", "r", "\t", ",", "\n", "\r\n", '"', "#", " ", "é", "\x00", "head", "\ufeff"]
)
RDF_PIECES = st.sampled_from(
    [
        "<http://e/a>", "<http://e/p>", "<a>", "_:b", "ex:a", "@prefix", "ex:", "@base", "PREFIX", "a",
        '"x"', '"""y"""', "@en", "^^", "<http://www.w3.org/2000/01/rdf-schema#label>", "[", "]", "(", ")",
        ";", ",", ".", " ", "\n", "#", "\\u00e9", "\\", "true", "12", "1.5e3", "{", "}", "=>", "GRAPH", "é",
    ]
)  # fmt: skip


# Well-formed N-Triples statements (labels, literals with any text, language tags, datatypes, blank nodes).
IRI_TERMS = st.sampled_from(
    [
        "<http://e/a>",
        "<http://e/b>",
        "<http://e/p>",
        "<http://e/caf\\u00e9>",
        "<http://www.w3.org/2000/01/rdf-schema#label>",
        "<http://www.w3.org/2004/02/skos/core#prefLabel>",
        "<http://www.w3.org/2004/02/skos/core#altLabel>",
    ]
)
BLANK_TERMS = st.sampled_from(["_:x", "_:y", "_:b0"])
LITERAL_TERMS = st.builds(
    lambda text, tail: quote_literal(text) + tail,
    st.text(max_size=8),
    st.sampled_from(
        [
            "",
            "@en",
            "@EN-gb",
            "@fr",
            "^^<http://www.w3.org/2001/XMLSchema#integer>",
            "^^<http://www.w3.org/2001/XMLSchema#string>",
            "^^<http://www.w3.org/2001/XMLSchema#boolean>",
        ]
    ),
)
STATEMENTS = st.lists(
    st.builds(
        lambda s, p, o: f"{s} {p} {o} .",
        IRI_TERMS | BLANK_TERMS,
        IRI_TERMS,
        IRI_TERMS | BLANK_TERMS | LITERAL_TERMS,
    ),
    min_size=1,
    max_size=8,
).map("\n".join)


@pytest.fixture(scope="module")
def warm_parsers(tmp_path_factory) -> None:
    """Import and register both parsers once, so that the first example does not pay for it (deadline)."""
    path = tmp_path_factory.mktemp("warm") / "warm.ttl"
    path.write_text("<http://e/a> <http://e/p> <http://e/b> .\n")
    load_rdf(path, parser="rdflib")
    load_rdf(path, parser="pyoxigraph")


def _load_bytes(data: bytes, suffix: str, **kwargs) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        try:
            kb = open_kb(path, progress=False, **kwargs)
        except KGReasonError:
            return
        assert kb.num_entities > 0 and kb.triples().shape[1] == 3


@PROPERTY
@given(
    data=st.one_of(st.binary(max_size=300), st.lists(TSV_PIECES, max_size=60).map("".join).map(str.encode)),
    suffix=st.sampled_from([".tsv", ".csv", ".txt"]),
)
def test_tsv_parser_raises_only_kgreason_errors(warm_parsers, data, suffix):
    _load_bytes(data, suffix)


@PROPERTY
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(str.encode),
        st.lists(RDF_PIECES, max_size=40).map(" ".join).map(str.encode),
        st.tuples(STATEMENTS, st.lists(RDF_PIECES, max_size=3).map(" ".join)).map(
            lambda d: " ".join(d).encode()
        ),
    ),
    suffix=st.sampled_from([".nt", ".ttl"]),
    parser=st.sampled_from(["pyoxigraph", "rdflib"]),
)
def test_ntriples_and_turtle_raise_only_kgreason_errors(warm_parsers, data, suffix, parser):
    _load_bytes(data, suffix, parser=parser)


@settings(PROPERTY, max_examples=100)
@given(document=STATEMENTS, suffix=st.sampled_from([".nt", ".ttl"]))
def test_both_rdf_parsers_read_any_statements_alike(warm_parsers, document, suffix):
    """For well-formed statements the two parsers give the very same store (the module's promise)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_text(document + "\n", encoding="utf-8")
        fast, slow = load_rdf(path, parser="pyoxigraph"), load_rdf(path, parser="rdflib")
    assert fast.entity_keys == slow.entity_keys and fast.relation_keys == slow.relation_keys
    assert np.array_equal(fast.triple_array(), slow.triple_array())
    assert fast.entity_labels == slow.entity_labels and fast.entity_aliases_map == slow.entity_aliases_map
    assert fast.annotations == slow.annotations


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**12) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@PROPERTY
@given(
    field=st.sampled_from(
        [
            "format",
            "format_version",
            "num_entities",
            "num_relations",
            "splits",
            "sha256",
            "bytes",
            "name",
            "key_kind",
        ]
    ),
    value=JSON_VALUES,
)
def test_store_manifest_fields_raise_only_kgreason_errors(field, value):
    with tempfile.TemporaryDirectory() as folder:
        target = small_store().save(Path(folder) / "kb")
        manifest = json.loads((target / "manifest.json").read_text())
        manifest[field] = value
        (target / "manifest.json").write_text(json.dumps(manifest))
        try:
            kb = TripleStore.load(target)
        except KGReasonError:
            return
        assert kb.triple_array().shape == (3, 3)


def test_odd_iris_print_no_rdflib_notes(tmp_path, caplog):
    """Found by fuzzing: rdflib logs a line per IRI with a space; the output stays kgreason's own lines."""
    path = tmp_path / "odd.rdf"
    path.write_text(
        '<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:ex="http://example.org/">\n  <rdf:Description rdf:about="http://example.org/a b">'
        '<ex:p rdf:resource="http://example.org/c"/></rdf:Description>\n</rdf:RDF>\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["kb", "info", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["num_triples"] == 1
    assert [r.getMessage()[:60] for r in caplog.records if r.name.startswith("rdflib")] == []


def test_a_store_with_its_own_fact_index_is_replaced_and_its_backups_swept(tmp_path):
    """The fact index that retrieval saves inside a store is the store's own: convert must not demand --force."""
    from kgreason.kb.store import FACT_INDEX_DIR, sweep_stale_store_temporaries
    from kgreason.retrieval import facts

    assert facts.STORE_SUBDIR == FACT_INDEX_DIR
    target = tmp_path / "kb"
    small_store().save(target)
    (target / FACT_INDEX_DIR / "abc123").mkdir(parents=True)
    (target / FACT_INDEX_DIR / "abc123" / "index.faiss").write_bytes(b"x")
    small_store().save(target)  # no --force needed
    assert TripleStore.load(target).num_entities == 3
    stale = tmp_path / ".kb.999999999.abcdefgh.old"  # a backup a killed save left, holding an indexed store
    small_store().save(stale / "kb")
    (stale / "kb" / FACT_INDEX_DIR).mkdir()
    os.replace(stale / "kb", tmp_path / "moved")
    os.rmdir(stale)
    os.replace(tmp_path / "moved", stale)
    assert sweep_stale_store_temporaries(target) == [stale]
