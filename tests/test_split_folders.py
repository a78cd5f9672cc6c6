"""Benchmark split folders: shared ids across splits, KG-BERT text, detection, and every real KG in shared/data."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from kgreason.core.errors import KBFormatError
from kgreason.kb.loaders.splits import find_split_files, load_split_folder, read_kgbert_text
from kgreason.kb.sources import detect_source, open_kb
from kgreason.kb.store import TripleStore


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "toy"
    _write(root / "train.txt", "a\tparent_of\tb\nb\tparent_of\tc\na\tparent_of\tb\n")
    _write(root / "dev.tsv", "c\tparent_of\td\n")
    (root / "test.txt.gz").write_bytes(gzip.compress(b"a\tgrandparent_of\tc\n"))
    _write(root / "text_kgbert" / "entity2text.txt", "a\tAda\nb\tBeatrix\nz\tZed (in no split)\nd\tDora")
    _write(root / "text_kgbert" / "relation2text.txt", "parent_of\tparent of\nsibling_of\tsibling of\n")
    return root


def test_splits_share_ids_and_names_from_text_files(folder):
    kb = load_split_folder(folder)
    assert kb.name == "toy"
    assert kb.splits == ("train", "valid", "test")
    assert {s: kb.triples(s).shape[0] for s in kb.splits} == {"train": 2, "valid": 1, "test": 1}
    assert kb.duplicates_dropped() == {"train": 1}
    assert kb.entity_keys == ["a", "b", "c", "d"]  # 'z' is named but in no split: not an entity
    assert kb.relation_keys == ["parent_of", "grandparent_of"]  # 'sibling_of' likewise
    assert kb.triples("test").tolist() == [[0, 1, 2]]  # same ids as in train
    assert kb.entity_label(kb.entity_id("d")) == "Dora"
    assert not kb.has_label(kb.entity_id("c"))
    assert kb.relation_label(0) == "parent of"
    assert kb.relation_label(1) == "grandparent of"  # fallback from the key


def test_wordnet_style_text_is_lemma_plus_gloss(tmp_path):
    root = tmp_path / "wn"
    _write(root / "train.txt", "01\t_hypernym\t02\n")
    _write(
        root / "entity2text.txt",  # beside the split files, as in the KG-BERT repository
        "01\tdog, a domesticated carnivore\n02\tcanine, a mammal with teeth, claws\n03\tcat, a feline\n",
    )
    kb = load_split_folder(root)
    assert [kb.entity_label(i) for i in range(2)] == ["dog", "canine"]
    texts = read_kgbert_text(root)
    assert texts.glossed
    assert texts.entity_descriptions["02"] == "a mammal with teeth, claws"
    assert texts.entity_texts["01"] == "dog, a domesticated carnivore"


def test_commas_in_names_are_kept_when_the_file_is_not_glossed(tmp_path):
    root = tmp_path / "fb"
    _write(root / "train.txt", "/m/1\tr\t/m/2\n")
    _write(
        root / "text_kgbert" / "entity2text.txt",
        "/m/1\tWashington, D.C.\n/m/2\tUnited States\n/m/3\tFrance\n",
    )
    kb = load_split_folder(root)
    assert kb.entity_label(0) == "Washington, D.C."
    assert not read_kgbert_text(root / "text_kgbert").glossed


def test_file_variants_and_preference(tmp_path):
    root = tmp_path / "v"
    _write(root / "train.txt", "a\tr\tb\n")
    (root / "train.txt.gz").write_bytes(gzip.compress(b"x\tr\ty\n"))  # e.g. left by `gunzip -k`
    _write(root / "validation.csv", '"c, d",r,e\n')
    files = find_split_files(root)
    assert files == {"train": root / "train.txt", "valid": root / "validation.csv"}
    kb = load_split_folder(root)
    assert kb.splits == ("train", "valid")
    assert kb.entity_keys == ["a", "b", "c, d", "e"]


def test_errors_name_the_file_and_line(tmp_path, folder):
    with pytest.raises(KBFormatError, match="no train split file"):
        load_split_folder(tmp_path)
    with pytest.raises(KBFormatError, match="not a folder"):
        load_split_folder(tmp_path / "missing")
    _write(folder / "dev.tsv", "c\tparent_of\td\nc\tparent_of\n")
    with pytest.raises(KBFormatError, match=r"dev\.tsv, line 2: found 2 columns"):
        load_split_folder(folder)
    _write(folder / "dev.tsv", "c\tparent_of\td\n")
    _write(folder / "text_kgbert" / "relation2text.txt", "parent_of\tparent of\nbroken line\n")
    with pytest.raises(KBFormatError, match=r"relation2text\.txt, line 2: no tab"):
        load_split_folder(folder)


def test_open_kb_detects_split_folders(folder):
    assert detect_source(folder) == "kgreason.SplitFolder.v1"
    kb = open_kb(folder, progress=False)
    assert kb.splits == ("train", "valid", "test")


def test_store_round_trip_keeps_labels(folder, tmp_path):
    kb = load_split_folder(folder)
    back = TripleStore.load(kb.save(tmp_path / "store"))
    assert back.splits == kb.splits
    assert back.entity_label(back.entity_id("a")) == "Ada"
    assert back.relation_label(0) == "parent of"
    assert back.triples().tolist() == kb.triples().tolist()


# --------------------------------------------------------------------------- real KGs (counts from SOURCES.md)
SMALL_KGS = {
    # name: (train, valid, test, entities, relations, labelled entities)
    "kinship": (8_544, 1_068, 1_074, 104, 25, 0),
    "nations": (1_592, 199, 201, 14, 55, 0),
    "umls": (5_216, 652, 661, 135, 46, 135),
}


def _counts(kb) -> tuple[int, ...]:
    return tuple(kb.triples(s).shape[0] for s in ("train", "valid", "test"))


@pytest.mark.parametrize("name", sorted(SMALL_KGS))
def test_real_small_kgs(shared_data, name):
    train, valid, test, entities, relations, labelled = SMALL_KGS[name]
    kb = open_kb(shared_data / "kg" / name, progress=False)
    assert kb.name == name
    assert kb.splits == ("train", "valid", "test")
    assert _counts(kb) == (train, valid, test)
    assert (kb.num_entities, kb.num_relations) == (entities, relations)
    assert kb.duplicates_dropped() == {}
    assert sum(kb.has_label(i) for i in range(kb.num_entities)) == labelled


def test_real_umls_text(shared_data):
    kb = open_kb("kg/umls", progress=False)  # relative to the data folder
    assert kb.entity_label(kb.entity_id("idea_or_concept")) == "idea or concept"
    assert kb.relation_label(kb.relation_id("derivative_of")) == "derivative of"
    texts = read_kgbert_text(shared_data / "kg" / "umls" / "text_kgbert")
    assert not texts.glossed
    assert texts.entity_descriptions["idea_or_concept"].startswith("In philosophy, ideas are")
    assert len(texts.entity_descriptions) == 135


def test_real_wn18rr(shared_data):
    kb = load_split_folder(shared_data / "kg" / "WN18RR", progress=False)
    assert _counts(kb) == (86_835, 3_034, 3_134)
    assert (kb.num_entities, kb.num_relations) == (40_943, 11)
    assert kb.duplicates_dropped() == {}
    assert kb.summary().self_loops == 9  # 7 in train, 2 in valid: kept
    assert all(kb.has_label(i) for i in range(kb.num_entities))
    # entity2text line: "02174461<TAB>clangour, make a loud resonant noise; ..."
    assert kb.entity_label(kb.entity_id("02174461")) == "clangour"
    assert kb.entity_label(kb.entity_id("02338145")) == "ondatra zibethica"
    assert kb.relation_label(kb.relation_id("_hypernym")) == "hypernym"
    texts = read_kgbert_text(shared_data / "kg" / "WN18RR" / "text_kgbert")
    assert texts.glossed
    assert texts.entity_descriptions["02174461"].startswith("make a loud resonant noise")


def test_real_fb15k237(shared_data):
    kb = load_split_folder(shared_data / "kg" / "FB15k-237", progress=False)
    assert _counts(kb) == (272_115, 17_535, 20_466)
    assert (kb.num_entities, kb.num_relations) == (
        14_541,
        237,
    )  # entity2text names 14,951: 410 are not entities
    assert kb.duplicates_dropped() == {}
    assert all(kb.has_label(i) for i in range(kb.num_entities))
    assert kb.entity_label(kb.entity_id("/m/02mjmr")) == "Barack Obama"
    assert kb.entity_label(kb.entity_id("/m/09c7w0")) == "United States of America"
    assert kb.relation_label(kb.relation_id("/music/artist/origin")) == "music artist origin"
    texts = read_kgbert_text(shared_data / "kg" / "FB15k-237" / "text_kgbert")
    assert len(texts.entity_labels) == 14_951 and not texts.glossed
    assert not any(k.endswith("\r") for k in kb.entity_keys + kb.relation_keys)  # CRLF files


def test_wn18rr_glosses_become_descriptions_and_survive_save(shared_data, tmp_path):

    kb = open_kb(shared_data / "kg" / "WN18RR")
    entity = kb.entity_id("02174461")
    assert kb.entity_label(entity) == "clangour"
    description = kb.entity_description(entity)
    assert description and "clangour" not in description.split(",")[0]
    loaded = TripleStore.load(kb.save(tmp_path / "wn"))
    assert loaded.entity_description(entity) == description
