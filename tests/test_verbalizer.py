"""Verbalizer: template choice, template validation, YAML template files, real KBs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kgreason.core.errors import KBFormatError
from kgreason.kb.sources import open_kb
from kgreason.kb.store import TripleStore, TripleStoreBuilder
from kgreason.kb.verbalizer import Verbalizer

REPO = Path(__file__).resolve().parents[1]
FAMILY = REPO / "knowledge" / "examples" / "family.ttl"
KINSHIP_TEMPLATES = REPO / "knowledge" / "templates" / "kinship.yaml"


def family_store(*, templates: dict[str, str] | None = None) -> TripleStore:
    builder = TripleStoreBuilder(name="family", key_kind="ntriples")
    iri = "<http://example.org/family#{}>".format
    builder.add(iri("claire"), iri("hasMother"), iri("ada"))
    builder.add(iri("claire"), "<http://other.org/vocab#hasMother>", iri("ada"))
    builder.add(iri("claire"), iri("livesIn"), iri("paris"))
    builder.add(iri("ada"), "knows", iri("claire"))
    builder.add_label(iri("ada"), "Ada Moreau", preferred=True)
    builder.add_label(iri("claire"), "Claire Moreau", preferred=True)
    builder.add_label(iri("paris"), "Paris", preferred=True)
    for key, template in (templates or {}).items():
        builder.relation_templates[builder.relation(key)] = template
    return builder.build()


# Ids: claire 0, ada 1, paris 2; relations: family#hasMother 0, vocab#hasMother 1, family#livesIn 2, knows 3.


def test_default_template_uses_labels_and_relation_label():
    kb = family_store()
    assert Verbalizer.from_kb(kb).verbalize([[1, 3, 0]]) == ["Ada Moreau knows Claire Moreau."]
    assert kb.verbalize(torch.tensor([[1, 3, 2]])) == ["Ada Moreau knows Paris."]


def test_kb_templates_given_templates_and_local_names():
    kb = family_store(templates={"knows": "{head} has met {tail}."})
    given = {
        "livesIn": "{head} lives in the city of {tail}.",  # local name, unique
        "http://other.org/vocab#hasMother": "{tail} is the mother of {head}.",  # IRI without brackets
        "hasMother": "{head} never {tail}: the local name is shared by two relations",
        "noSuchRelation": "{head} ? {tail}",
    }
    verbalizer = Verbalizer.from_kb(kb, templates=given)
    rows = np.array([[0, 2, 2], [0, 1, 1], [1, 3, 0]])  # (3, 3)
    assert verbalizer.verbalize(rows) == [
        "Claire Moreau lives in the city of Paris.",
        "Ada Moreau is the mother of Claire Moreau.",
        "Ada Moreau has met Claire Moreau.",
    ]
    assert verbalizer.template(0) == "{head} {relation} {tail}."
    assert verbalizer.unmatched == ("hasMother", "noSuchRelation")
    override = Verbalizer.from_kb(kb, templates={"knows": "{head} and {tail} ({relation}) are friends."})
    assert override.verbalize([(1, 3, 0)]) == ["Ada Moreau and Claire Moreau (knows) are friends."]
    exact = Verbalizer.from_kb(kb, templates={"<http://example.org/family#hasMother>": "{tail} bore {head}."})
    assert exact.verbalize([(0, 0, 1)]) == ["Ada Moreau bore Claire Moreau."]


def test_accepts_tensor_array_lists_and_nothing():
    kb = family_store()
    verbalizer = Verbalizer.from_kb(kb)
    expected = ["Ada Moreau knows Claire Moreau."]
    assert verbalizer.verbalize(torch.tensor([[1, 3, 0]])) == expected
    assert verbalizer.verbalize(np.array([1, 3, 0], dtype=np.int32)) == expected
    assert verbalizer.verbalize([(1, 3, 0)]) == expected
    assert verbalizer.verbalize([]) == []
    assert verbalizer.verbalize(torch.zeros((0, 3), dtype=torch.int64)) == []


def test_out_of_range_ids_are_refused():
    verbalizer = Verbalizer.from_kb(family_store())
    with pytest.raises(IndexError, match=r"entities must lie in \[0, 3\)"):
        verbalizer.verbalize([[0, 0, 3]])
    with pytest.raises(IndexError, match="relations"):
        verbalizer.verbalize([[0, 4, 1]])
    with pytest.raises(IndexError):
        verbalizer.verbalize([[-1, 0, 1]])


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{head} knows someone.", r"has no \{tail\}"),
        ("knows", r"has no \{head\} and \{tail\}"),
        ("{head} {rel} {tail}", r"unknown field\(s\) \{rel\}"),
        ("{head} {tail", "not a valid format string"),
        (3, "must be a string"),
    ],
)
def test_bad_templates_are_refused(template, message):
    kb = family_store()
    with pytest.raises(ValueError, match=message):
        Verbalizer.from_kb(kb, templates={"knows": template})


def test_bad_template_stored_in_the_kb_is_refused():
    kb = family_store(templates={"knows": "{head} knows"})
    with pytest.raises(ValueError, match=r"relation knows: the template .* has no \{tail\}"):
        Verbalizer.from_kb(kb)


def test_load_templates_flat_and_nested(tmp_path):
    flat = tmp_path / "flat.yaml"
    flat.write_text('knows: "{head} knows {tail}."\nlivesIn: "{head} lives in {tail}."\n', encoding="utf-8")
    assert Verbalizer.load_templates(flat) == {
        "knows": "{head} knows {tail}.",
        "livesIn": "{head} lives in {tail}.",
    }
    nested = tmp_path / "nested.yaml"
    nested.write_text(
        'description: test\ntemplates:\n  knows: "{head} knows {tail}."\n  "1": "{tail} <- {head}"\n',
        encoding="utf-8",
    )
    assert Verbalizer.load_templates(nested) == {"knows": "{head} knows {tail}.", "1": "{tail} <- {head}"}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('knows: "{head} knows {tail}."\nlivesIn: "{head} lives"\n', 2, r"relation 'livesIn': .*no \{tail\}"),
        ('a: "{head} {tail}"\nb: [1, 2]\n', 2, "each entry must be 'relation: template'"),
        ('a: "{head} {tail}"\na: "{tail} {head}"\n', 2, "given twice"),
        ('a: "{head} {tail}\nb: x\n', None, "not valid YAML"),
        ("- a\n- b\n", 1, "the top level is not a mapping"),
        ("", None, "the file is empty"),
    ],
)
def test_load_templates_errors_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "templates.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KBFormatError, match=message) as caught:
        Verbalizer.load_templates(path)
    assert caught.value.path == str(path)
    if line is not None:
        assert caught.value.line == line
        assert f"line {line}" in str(caught.value)


def test_shipped_kinship_templates_on_the_family_example():
    templates = Verbalizer.load_templates(KINSHIP_TEMPLATES)
    assert templates["grandson"] == "{tail} is the grandson of {head}."
    kb = open_kb(FAMILY)
    verbalizer = Verbalizer.from_kb(kb, templates=templates)
    # Every family.ttl relation has a template; the rest of the file is CLUTRR's vocabulary.
    assert (
        not set(templates)
        - set(verbalizer.unmatched)
        - {
            "hasMother",
            "hasFather",
            "hasSpouse",
            "livesIn",
            "worksAs",
            "gender",
            "locatedIn",
            "type",
        }
    )
    claire, ada = (
        kb.entity_id("<http://kgreason.org/example/family#claire>"),
        kb.entity_id("<http://kgreason.org/example/family#ada>"),
    )
    mother = kb.relation_id("<http://kgreason.org/example/family#hasMother>")
    assert verbalizer.verbalize([[claire, mother, ada]]) == ["Ada Moreau is the mother of Claire Moreau."]
    sentences = verbalizer.verbalize(kb.triples())
    assert len(sentences) == kb.triples().shape[0]
    assert "Ada Moreau lives in Lyon." in sentences


def test_umls_uses_kgbert_relation_names(shared_data):
    kb = open_kb(shared_data / "kg" / "umls", progress=False)
    sentences = kb.verbalize(kb.triples("test"))
    assert len(sentences) == kb.triples("test").shape[0] == 661
    h, r, t = kb.triples("test")[0].tolist()
    assert sentences[0] == f"{kb.entity_label(h)} {kb.relation_label(r)} {kb.entity_label(t)}."


def test_fb15k237_verbalizes_every_triple(shared_data):
    kb = open_kb(shared_data / "kg" / "FB15k-237", progress=False)
    sentences = kb.verbalize(kb.triples())
    assert len(sentences) == 310116
    assert all(sentences[:1000])
    jeremy = kb.entity_id("/m/016ywr")
    rows = kb.triples("train")
    first = rows[rows[:, 0] == jeremy][:1]
    assert kb.verbalize(first)[0].startswith("Jeremy Irons ")


def test_standard_rdf_vocabulary_reads_naturally():
    from kgreason.kb.store import TripleStoreBuilder

    builder = TripleStoreBuilder(name="std", key_kind="ntriples")
    builder.add("<http://e/rex>", "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", "<http://e/Dog>")
    builder.add("<http://e/Dog>", "<http://www.w3.org/2000/01/rdf-schema#subClassOf>", "<http://e/Animal>")
    kb = builder.build()
    assert kb.verbalize(kb.triples()) == ["rex is a dog.", "dog is a kind of animal."]
