"""RDF loading and writing: every format, both parsers, labels, round trips and bad input."""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import rdflib
from rdflib.compare import isomorphic

from kgreason.core.errors import KBFormatError
from kgreason.kb.loaders import rdf as rdf_mod
from kgreason.kb.loaders.rdf import load_rdf, quote_literal, rdflib_term_key, read_rdf, write_rdf
from kgreason.kb.sources import open_kb
from kgreason.kb.store import TripleStore, TripleStoreBuilder

RDFS_LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
SKOS_ALT = "<http://www.w3.org/2004/02/skos/core#altLabel>"

# 20 named entities (8 people, 6 cities, 6 countries), labels in two languages, aliases, literal values,
# a blank node (an address), a self-loop and a duplicate statement.
PEOPLE_TTL = """\
@prefix ex: <http://example.org/kg/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .

ex:alice rdfs:label "Alicia"@es, "Alice Smith"@en ; skos:altLabel "Ali" ;
    ex:bornIn ex:paris ; ex:knows ex:bob, ex:carol ; ex:age "34"^^xsd:integer ;
    ex:address [ ex:city ex:paris ; ex:street "1 Rue de Rivoli" ] .
ex:bob rdfs:label "Bob Jones" ; ex:bornIn ex:london ; ex:knows ex:carol ; ex:age "41"^^xsd:integer .
ex:carol skos:prefLabel "Carol King"@en ; rdfs:label "C. King" ; ex:livesIn ex:berlin .
ex:dave rdfs:label "Dave" ; ex:knows ex:dave ; ex:livesIn ex:madrid .
ex:erin rdfs:label "Erin" ; skos:altLabel "Erin O'Brien", "E." ; ex:livesIn ex:rome ; ex:knows ex:frank .
ex:frank rdfs:label "Frank" ; ex:livesIn ex:lisbon ; ex:nickname "Frankie \\"the Tank\\"" .
ex:grace ex:livesIn ex:paris ; ex:knows ex:heidi .
ex:heidi rdfs:label "Heidi"@de ; ex:livesIn ex:berlin .
ex:paris rdfs:label "Paris"@en ; skos:prefLabel "Paris"@fr ; ex:locatedIn ex:france .
ex:london rdfs:label "London" ; skos:altLabel "Londres"@fr ; ex:locatedIn ex:uk .
ex:berlin rdfs:label "Berlin" ; ex:locatedIn ex:germany .
ex:madrid rdfs:label "Madrid" ; ex:locatedIn ex:spain .
ex:rome rdfs:label "Rome"@en, "Roma"@it ; ex:locatedIn ex:italy .
ex:lisbon rdfs:label "Lisbon" ; ex:locatedIn ex:portugal ; ex:population "545923"^^xsd:integer .
ex:france rdfs:label "France" ; ex:capital ex:paris .
ex:uk rdfs:label "United Kingdom" ; skos:altLabel "UK" ; ex:capital ex:london .
ex:germany rdfs:label "Germany" ; ex:capital ex:berlin .
ex:spain rdfs:label "Spain" ; ex:capital ex:madrid .
ex:italy rdfs:label "Italy" ; ex:capital ex:rome .
ex:portugal rdfs:label "Portugal" ; ex:capital ex:lisbon .
ex:bob ex:knows ex:carol .
"""
EX = "http://example.org/kg/"


def ex(local: str) -> str:
    return f"<{EX}{local}>"


@pytest.fixture
def people_ttl(tmp_path: Path) -> Path:
    path = tmp_path / "people.ttl"
    path.write_text(PEOPLE_TTL, encoding="utf-8")
    return path


def key_triples(store: TripleStore) -> set[tuple[str, str, str]]:
    """The graph triples of a store by keys."""
    ents, rels = store.entity_keys, store.relation_keys
    return {(ents[h], rels[r], ents[t]) for h, r, t in store.triple_array().tolist()}


def without_blank(triples: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    return {t for t in triples if not any(k.startswith("_:") for k in t)}


def labels_by_key(store: TripleStore) -> dict[str, tuple[str, frozenset[str]]]:
    return {
        store.entity_keys[i]: (
            store.entity_label(i) if store.has_label(i) else "",
            frozenset(store.entity_aliases(i)),
        )
        for i in range(store.num_entities)
        if store.has_label(i) or store.entity_aliases(i)
    }


def annotations_by_key(store: TripleStore) -> set[tuple[str, str, str]]:
    return {(store.entity_keys[e], p, lit) for e, p, lit in store.annotations}


def as_rdflib_graph(path: Path, fmt: str) -> rdflib.Graph:
    if fmt in ("nquads", "trig"):
        dataset = rdflib.Dataset()
        dataset.parse(path, format=fmt)
        graph = rdflib.Graph()
        for s, p, o, _ in dataset.quads():
            graph.add((s, p, o))
        return graph
    graph = rdflib.Graph()
    graph.parse(path, format=fmt)
    return graph


def original_graph() -> rdflib.Graph:
    return rdflib.Graph().parse(data=PEOPLE_TTL, format="turtle")


# ----------------------------------------------------------------------------------------------- loading
def test_turtle_fixture_loads_with_labels_aliases_literals_and_blank_node(people_ttl: Path) -> None:
    result = read_rdf(people_ttl)
    store, report = result.store, result.report
    assert report.parser == "pyoxigraph" and report.format == "turtle"
    assert store.key_kind == "ntriples" and store.name == "people"
    alice = store.entity_id(ex("alice"))
    assert store.entity_label(alice) == "Alice Smith"  # English before Spanish, though Spanish came first
    assert set(store.entity_aliases(alice)) == {"Alicia", "Ali"}
    carol = store.entity_id(ex("carol"))
    assert store.entity_label(carol) == "Carol King"  # skos:prefLabel before rdfs:label
    assert store.entity_aliases(carol) == ("C. King",)
    assert store.entity_label(store.entity_id(ex("heidi"))) == "Heidi"  # the only label, though German
    assert not store.has_label(store.entity_id(ex("grace")))
    # Label statements are annotations, not graph triples; other literals are tail entities.
    assert RDFS_LABEL not in store.relation_keys and SKOS_ALT not in store.relation_keys
    triples = key_triples(store)
    assert (ex("alice"), ex("age"), '"34"^^<http://www.w3.org/2001/XMLSchema#integer>') in triples
    assert (ex("frank"), ex("nickname"), '"Frankie \\"the Tank\\""') in triples
    assert (ex("alice"), ex("address"), "_:b0") in triples
    assert ("_:b0", ex("city"), ex("paris")) in triples and report.blank_nodes == 1
    assert len(store.annotations) == report.label_statements == 28
    # The duplicate "bob knows carol" is dropped and counted; the self-loop is kept.
    assert store.duplicates_dropped() == {"all": 1} and report.duplicates_dropped == 1
    summary = store.summary()
    assert summary.self_loops == 1
    assert summary.entities_without_labels == store.num_entities - 19
    assert report.statements == report.triples + 28 + 1
    assert len(triples) == report.triples == 33


@pytest.mark.parametrize(
    "fmt, suffix",
    [
        ("nt", ".nt"),
        ("nquads", ".nq"),
        ("xml", ".rdf"),
        ("json-ld", ".jsonld"),
        ("n3", ".n3"),
        ("trig", ".trig"),
        ("turtle", ".ttl"),
    ],
)
def test_every_format_gives_the_same_graph(tmp_path: Path, people_ttl: Path, fmt: str, suffix: str) -> None:
    reference = load_rdf(people_ttl)
    converted = tmp_path / f"people{suffix}"
    original = original_graph()
    if fmt in ("nquads", "trig"):
        dataset = rdflib.Dataset()
        dataset.parse(data=PEOPLE_TTL, format="turtle")  # into the default graph
        converted.write_bytes(dataset.serialize(format=fmt, encoding="utf-8"))
    else:
        converted.write_bytes(original.serialize(format=fmt, encoding="utf-8"))
    store = load_rdf(converted)
    assert without_blank(key_triples(store)) == without_blank(key_triples(reference))
    assert len(key_triples(store)) == len(key_triples(reference))
    assert labels_by_key(store) == labels_by_key(reference)
    assert annotations_by_key(store) == annotations_by_key(reference)
    out = write_rdf(store, tmp_path / "back.nt")
    assert isomorphic(as_rdflib_graph(out, "nt"), original)


def test_both_parsers_give_identical_keys_and_ids(tmp_path: Path, people_ttl: Path) -> None:
    original = original_graph()
    nt = tmp_path / "people.nt"
    nt.write_bytes(original.serialize(format="nt", encoding="utf-8"))
    nq = tmp_path / "people.nq"
    dataset = rdflib.Dataset()
    graph = dataset.graph(rdflib.URIRef("http://example.org/graph/1"))
    graph.parse(data=PEOPLE_TTL, format="turtle")
    nq.write_bytes(dataset.serialize(format="nquads", encoding="utf-8"))
    for path in (nt, nq):  # line formats: the same statement order, so the very same ids
        fast, slow = read_rdf(path, parser="pyoxigraph"), read_rdf(path, parser="rdflib")
        assert fast.report.parser == "pyoxigraph" and slow.report.parser == "rdflib"
        a, b = fast.store, slow.store
        assert a.entity_keys == b.entity_keys and a.relation_keys == b.relation_keys
        assert np.array_equal(a.triple_array(), b.triple_array())
        assert a.annotations == b.annotations
        assert a.entity_labels == b.entity_labels and a.entity_aliases_map == b.entity_aliases_map
        assert fast.report.named_graphs == slow.report.named_graphs == (1 if path == nq else 0)
    fast, slow = load_rdf(people_ttl, parser="pyoxigraph"), load_rdf(people_ttl, parser="rdflib")
    assert set(fast.entity_keys) == set(slow.entity_keys)
    assert key_triples(fast) == key_triples(slow)
    assert labels_by_key(fast) == labels_by_key(slow)


def test_literal_keys_are_canonical_and_identical_across_parsers(tmp_path: Path) -> None:
    path = tmp_path / "literals.nt"
    path.write_text(
        "\n".join(
            [
                '<http://a/s> <http://a/p> "tab\\there \\"quoted\\" back\\\\slash\\nnewline\\u0001\\u007F\\u00e9" .',
                '<http://a/s> <http://a/p> "Hello"@EN-gb .',
                '<http://a/s> <http://a/p> "plain"^^<http://www.w3.org/2001/XMLSchema#string> .',
                '<http://a/s> <http://a/p> "01"^^<http://www.w3.org/2001/XMLSchema#integer> .',
                '<http://a/s> <http://a/p> "1"^^<http://www.w3.org/2001/XMLSchema#boolean> .',
                '<http://a/s> <http://a/p> "\U0001f600 \\U0001F600" .',
                "_:x <http://a/p> _:y .",
                "_:y <http://a/p> <http://a/s> .",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    expected = [
        "<http://a/s>",
        '"tab\\there \\"quoted\\" back\\\\slash\\nnewline\\u0001\\u007Fé"',
        '"Hello"@en-gb',
        '"plain"',
        '"01"^^<http://www.w3.org/2001/XMLSchema#integer>',
        '"1"^^<http://www.w3.org/2001/XMLSchema#boolean>',
        '"\U0001f600 \U0001f600"',
        "_:b0",
        "_:b1",
    ]
    for parser in ("pyoxigraph", "rdflib"):
        assert load_rdf(path, parser=parser).entity_keys == expected
    assert quote_literal('a"b\\c\n\x00') == '"a\\"b\\\\c\\n\\u0000"'
    assert rdflib_term_key(rdflib.Literal("x", lang="DE")) == '"x"@de'


def test_named_graphs_are_merged_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "graphs.trig"
    path.write_text(
        "@prefix ex: <http://example.org/> .\n"
        "ex:a ex:p ex:b .\n"
        "ex:g1 { ex:a ex:p ex:c . ex:a ex:p ex:b . }\n"
        "ex:g2 { ex:c ex:p ex:d . }\n",
        encoding="utf-8",
    )
    result = read_rdf(path)
    assert result.report.parser == "rdflib" and result.report.named_graphs == 2
    assert result.report.triples == 3 and result.report.duplicates_dropped == 1
    nq = tmp_path / "graphs.nq"
    nq.write_text(
        "<http://e/a> <http://e/p> <http://e/b> <http://e/g1> .\n"
        "<http://e/a> <http://e/p> <http://e/b> <http://e/g2> .\n"
        "<http://e/b> <http://e/p> <http://e/c> .\n",
        encoding="utf-8",
    )
    fast = read_rdf(nq)
    assert fast.report.named_graphs == 2 and fast.report.triples == 2 and fast.report.duplicates_dropped == 1


def test_gzip_and_explicit_format(tmp_path: Path, people_ttl: Path) -> None:
    packed = tmp_path / "people.ttl.gz"
    packed.write_bytes(gzip.compress(people_ttl.read_bytes()))
    odd_name = tmp_path / "people.data"
    odd_name.write_bytes(people_ttl.read_bytes())
    reference = key_triples(load_rdf(people_ttl))
    assert key_triples(load_rdf(packed)) == reference
    assert key_triples(load_rdf(packed, parser="rdflib")) == reference
    assert key_triples(load_rdf(odd_name, format="ttl")) == reference
    with pytest.raises(KBFormatError, match="people.data.*extension"):
        load_rdf(odd_name)


def test_open_kb_dispatches_rdf_files(people_ttl: Path) -> None:
    kb = open_kb(people_ttl)
    assert isinstance(kb, TripleStore) and kb.key_kind == "ntriples"
    assert open_kb(people_ttl, format="turtle").num_entities == kb.num_entities


def test_progress_bar_for_large_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    path = tmp_path / "small.nt"
    path.write_text("<http://a/x> <http://a/p> <http://a/y> .\n", encoding="utf-8")
    monkeypatch.setattr(rdf_mod, "PROGRESS_MIN_BYTES", 0)
    load_rdf(path)
    assert "reading small.nt" in capsys.readouterr().err
    load_rdf(path, progress=False)
    assert "reading" not in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", ["nt", "turtle", "xml", "json-ld", "nquads", "trig", "n3"])
def test_round_trip_rdf_store_rdf_is_isomorphic(tmp_path: Path, people_ttl: Path, fmt: str) -> None:
    store = load_rdf(people_ttl)
    reopened = TripleStore.load(store.save(tmp_path / "store"))
    assert reopened.annotations == store.annotations
    out = write_rdf(reopened, tmp_path / f"out.{fmt}", format=fmt)
    graph = as_rdflib_graph(out, fmt)
    assert len(graph) == len(original_graph()) == 33 + 28  # every statement, labels too
    assert isomorphic(graph, original_graph())
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    again = load_rdf(out, format=fmt)  # blank nodes may be numbered in another order
    assert without_blank(key_triples(again)) == without_blank(key_triples(store))
    assert len(key_triples(again)) == len(key_triples(store))
    assert labels_by_key(again) == labels_by_key(store)


def test_write_plain_keys_mints_iris_and_labels(tmp_path: Path) -> None:
    builder = TripleStoreBuilder(name="plain")
    builder.add("/m/0abc", "/people/person/nationality", "/m/09c7w0", split="train")
    builder.add("/m/09c7w0", "/location/contains", "New York City", split="test")
    builder.add_label("/m/0abc", "Ada Lovelace", preferred=True)
    builder.add_label("/m/0abc", "Countess of Lovelace", preferred=False)
    builder.add_label("/m/09c7w0", 'The "States"', preferred=True)
    store = builder.build()
    out = write_rdf(store, tmp_path / "plain.nt.gz")
    graph = rdflib.Graph().parse(data=gzip.decompress(out.read_bytes()).decode(), format="nt")
    ada = rdflib.URIRef("urn:kgreason:entity/%2Fm%2F0abc")
    usa = rdflib.URIRef("urn:kgreason:entity/%2Fm%2F09c7w0")
    nyc = rdflib.URIRef("urn:kgreason:entity/New%20York%20City")
    nationality = rdflib.URIRef("urn:kgreason:relation/%2Fpeople%2Fperson%2Fnationality")
    assert (ada, nationality, usa) in graph
    assert (usa, rdflib.URIRef("urn:kgreason:relation/%2Flocation%2Fcontains"), nyc) in graph
    assert (ada, rdflib.RDFS.label, rdflib.Literal("Ada Lovelace")) in graph
    assert (ada, rdflib.SKOS.altLabel, rdflib.Literal("Countess of Lovelace")) in graph
    assert (usa, rdflib.RDFS.label, rdflib.Literal('The "States"')) in graph
    assert len(graph) == 5
    train_only = rdflib.Graph().parse(
        write_rdf(store, tmp_path / "train.ttl", split="train"), format="turtle"
    )
    assert len(train_only) == 4 and (usa, None, nyc) not in train_only
    back = load_rdf(out)
    assert back.entity_label(back.entity_id(f"<{ada}>")) == "Ada Lovelace"
    assert back.entity_aliases(back.entity_id(f"<{ada}>")) == ("Countess of Lovelace",)
    custom = write_rdf(store, tmp_path / "custom.nt", base_iri="http://kb.example/")
    assert "<http://kb.example/entity/%2Fm%2F0abc>" in custom.read_text(encoding="utf-8")


def test_write_is_atomic_and_refuses_literal_subjects(tmp_path: Path) -> None:
    builder = TripleStoreBuilder(name="bad", key_kind="ntriples")
    builder.add('"a literal"', "<http://a/p>", "<http://a/o>")
    store = builder.build()
    target = tmp_path / "kept.nt"
    target.write_text("old content\n", encoding="utf-8")
    with pytest.raises(ValueError, match="literal"):
        write_rdf(store, target)
    assert target.read_text(encoding="utf-8") == "old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.nt"]


# ----------------------------------------------------------------------------------------------- bad input
BOTH = pytest.mark.parametrize("parser", ["pyoxigraph", "rdflib"])


@BOTH
def test_malformed_ntriples_names_file_and_line(tmp_path: Path, parser: str) -> None:
    path = tmp_path / "broken.nt"
    path.write_text(
        "<http://a/x> <http://a/p> <http://a/y> .\n# a comment\n<http://a/x> <http://a/p> oops .\n",
        encoding="utf-8",
    )
    with pytest.raises(KBFormatError) as info:
        load_rdf(path, parser=parser)
    err = info.value
    assert "broken.nt" in str(err) and "line 3" in str(err) and err.line == 3
    assert err.expected


@BOTH
def test_malformed_nquads_names_file_and_line(tmp_path: Path, parser: str) -> None:
    path = tmp_path / "broken.nq"
    path.write_text(
        "<http://a/x> <http://a/p> <http://a/y> <http://g> .\n"
        "<http://a/x> <http://a/p> <http://a/y> <http://g> <http://extra> .\n",
        encoding="utf-8",
    )
    with pytest.raises(KBFormatError, match=r"broken\.nq, line 2"):
        load_rdf(path, parser=parser)


@BOTH
def test_undeclared_prefix_in_turtle(tmp_path: Path, parser: str) -> None:
    path = tmp_path / "prefix.ttl"
    path.write_text(
        "@prefix ex: <http://example.org/> .\n\nex:a ex:p ex:b .\nex:a foaf:knows ex:c .\n", "utf-8"
    )
    with pytest.raises(KBFormatError) as info:
        load_rdf(path, parser=parser)
    message = str(info.value)
    assert "prefix.ttl" in message and "line 4" in message
    assert "prefix 'foaf:' is not declared" in message


@BOTH
def test_turtle_syntax_error_has_line_and_column(tmp_path: Path, parser: str) -> None:
    path = tmp_path / "syntax.ttl"
    path.write_text('@prefix ex: <http://example.org/> .\nex:a ex:p ex:b .\nex:a ex:p "open .\n', "utf-8")
    with pytest.raises(KBFormatError) as info:
        load_rdf(path, parser=parser)
    assert "syntax.ttl, line 3, column" in str(info.value)


@BOTH
@pytest.mark.parametrize("suffix", [".nt", ".ttl"])
def test_non_utf8_bytes_name_the_line(tmp_path: Path, parser: str, suffix: str) -> None:
    path = tmp_path / f"latin1{suffix}"
    path.write_bytes(
        b'<http://a/x> <http://a/p> "fine" .\n<http://a/x> <http://a/p> "caf\xe9" .\n<http://a/x> <http://a/p> "x" .\n'
    )
    with pytest.raises(KBFormatError) as info:
        load_rdf(path, parser=parser)
    assert f"latin1{suffix}, line 2" in str(info.value) and "UTF-8" in str(info.value)


@pytest.mark.parametrize("suffix", [".nt", ".ttl", ".rdf", ".jsonld", ".nq", ".n3", ".trig"])
def test_empty_file_has_no_triples(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_text("" if suffix != ".jsonld" else "[]", encoding="utf-8")
    with pytest.raises(KBFormatError, match=rf"empty\{suffix}: no triples"):
        load_rdf(path)


def test_prefixes_only_turtle_has_no_triples(tmp_path: Path) -> None:
    path = tmp_path / "only_prefixes.ttl"
    path.write_text("# nothing here\n@prefix ex: <http://example.org/> .\n", encoding="utf-8")
    with pytest.raises(KBFormatError, match="only_prefixes.ttl: no triples"):
        load_rdf(path)


def test_malformed_rdfxml_and_jsonld_name_the_line(tmp_path: Path) -> None:
    xml = tmp_path / "broken.rdf"
    xml.write_text(
        '<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '<rdf:Description rdf:about="http://a/x">\n<foo></bar>\n</rdf:RDF>\n',
        encoding="utf-8",
    )
    with pytest.raises(KBFormatError, match=r"broken\.rdf, line 4, column"):
        load_rdf(xml)
    jsonld = tmp_path / "broken.jsonld"
    jsonld.write_text(
        '{\n  "@id": "http://a/x",\n  "http://a/p": {"@id": "http://a/y"},\n}\n', encoding="utf-8"
    )
    with pytest.raises(KBFormatError, match=r"broken\.jsonld, line 4, column 1"):
        load_rdf(jsonld)


def test_an_unfinished_last_statement_is_named(tmp_path: Path) -> None:
    path = tmp_path / "end.ttl"
    path.write_text("<http://a/x> <http://a/p> <http://a/y> .\n<http://a/x>")
    with pytest.raises(KBFormatError, match=r"end\.ttl, line 2: the file ends inside a statement"):
        load_rdf(path, parser="rdflib")  # rdflib's parser raises IndexError there
    with pytest.raises(KBFormatError, match=r"end\.ttl, line 2, column \d+: "):
        load_rdf(path, parser="pyoxigraph")


def test_corrupt_gzip_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.nt.gz"
    path.write_bytes(gzip.compress(b"<http://a/x> <http://a/p> <http://a/y> .\n" * 100)[:-30] + b"garbage")
    with pytest.raises(KBFormatError, match="corrupt.nt.gz"):
        load_rdf(path)


def test_missing_file_and_bad_arguments(tmp_path: Path, people_ttl: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_rdf(tmp_path / "absent.ttl")
    with pytest.raises(ValueError, match="parser"):
        load_rdf(people_ttl, parser="jena")
    with pytest.raises(ValueError, match="pyoxigraph"):
        load_rdf(people_ttl, format="n3", parser="pyoxigraph")


# ----------------------------------------------------------------------------------------------- real data
def test_real_umls_through_ntriples_and_back(tmp_path: Path, shared_data: Path) -> None:
    from kgreason.kb.loaders.tsv import load_tsv

    source = shared_data / "kg" / "umls" / "train.txt"
    tsv = load_tsv(source, progress=False)
    out = write_rdf(tsv, tmp_path / "umls.nt", base_iri="http://kgreason.org/")
    assert sum(1 for _ in out.open(encoding="utf-8")) == 5216
    fast, slow = load_rdf(out), load_rdf(out, parser="rdflib")
    assert fast.num_entities == tsv.num_entities and fast.num_relations == tsv.num_relations
    assert fast.triple_array().shape == (5216, 3) and np.array_equal(fast.triple_array(), tsv.triple_array())
    assert fast.entity_keys == slow.entity_keys and np.array_equal(fast.triple_array(), slow.triple_array())
    assert fast.entity_keys[0] == f"<http://kgreason.org/entity/{tsv.entity_keys[0]}>"


def test_n3_formulas_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.n3"
    path.write_text(
        "@prefix ex: <http://example.org/> .\nex:a ex:p ex:b .\n{ ?x ex:p ?y } => { ?y ex:q ?x } .\n", "utf-8"
    )
    with pytest.raises(KBFormatError, match=r"rules\.n3: .*(formula|not an RDF term)"):
        load_rdf(path)


def test_rdflib_is_the_fallback_without_pyoxigraph(
    tmp_path: Path, people_ttl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = read_rdf(people_ttl)
    monkeypatch.setitem(sys.modules, "pyoxigraph", None)  # import pyoxigraph -> ImportError
    fallback = read_rdf(people_ttl)
    assert fallback.report.parser == "rdflib"
    assert key_triples(fallback.store) == key_triples(reference.store)


def test_written_files_get_the_usual_permissions(tmp_path: Path, people_ttl: Path) -> None:
    mask = os.umask(0o022)
    try:
        out = write_rdf(load_rdf(people_ttl), tmp_path / "perm.nt")
    finally:
        os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o644
