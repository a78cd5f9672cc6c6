"""TSV/CSV triple files: parsing rules, errors with file and line, names files, writing, and FB15k-237 train."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from kgreason.core.errors import KBFormatError
from kgreason.kb.loaders import tsv
from kgreason.kb.loaders.tsv import load_tsv, write_tsv
from kgreason.kb.sources import open_kb
from kgreason.kb.store import TripleStoreBuilder


def _write(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _key_triples(kb, split=None) -> list[tuple[str, str, str]]:
    return [
        (kb.entity_key(h), kb.relation_key(r), kb.entity_key(t)) for h, r, t in kb.triples(split).tolist()
    ]


def test_plain_tsv_keeps_order_drops_duplicates_keeps_self_loops(tmp_path):
    path = _write(
        tmp_path / "family.tsv",
        "ada\tmother_of\tclaire\nclaire\tmother_of\tgabriel\nada\tmother_of\tclaire\nada\tknows\tada\n",
    )
    kb = load_tsv(path)
    assert kb.name == "family"
    assert kb.splits == ("all",)
    assert kb.entity_keys == ["ada", "claire", "gabriel"]
    assert kb.relation_keys == ["mother_of", "knows"]
    assert _key_triples(kb) == [
        ("ada", "mother_of", "claire"),
        ("claire", "mother_of", "gabriel"),
        ("ada", "knows", "ada"),
    ]
    assert kb.duplicates_dropped() == {"all": 1}
    assert kb.summary().self_loops == 1


@pytest.mark.parametrize(
    "header_row", ["head\trelation\ttail", "Subject\tPredicate\tObject", "h\tr\tt", "SOURCE\trel\tTARGET"]
)
def test_header_is_detected(tmp_path, header_row):
    kb = load_tsv(_write(tmp_path / "kg.tsv", f"{header_row}\na\tr\tb\n"))
    assert _key_triples(kb) == [("a", "r", "b")]


def test_header_forced_on_and_off(tmp_path):
    path = _write(tmp_path / "kg.tsv", "head\trelation\ttail\na\tr\tb\n")
    kept = load_tsv(path, header=False)
    assert _key_triples(kept) == [("head", "relation", "tail"), ("a", "r", "b")]
    # header=True skips the first data row even when it does not look like a header (and may be malformed).
    odd = _write(tmp_path / "odd.tsv", "# exported 2024\nfrom\tkind\tto\tweight\na\tr\tb\n")
    assert _key_triples(load_tsv(odd, header=True)) == [("a", "r", "b")]
    with pytest.raises(KBFormatError, match="line 2"):
        load_tsv(odd)


def test_comments_blank_lines_crlf_bom_and_stray_spaces(tmp_path):
    path = tmp_path / "messy.txt"
    path.write_bytes(
        b"\xef\xbb\xbf# a comment\r\n\r\n   \r\na\tr\tb\r\n  c \t r\t d  \r\n#x\ty\tz\r\ne\tr\tf"  # no final newline
    )
    kb = load_tsv(path)
    assert _key_triples(kb) == [("a", "r", "b"), ("c", "r", "d"), ("e", "r", "f")]
    assert all(not k.endswith("\r") for k in kb.entity_keys)


def test_wrong_column_count_names_file_and_line(tmp_path):
    path = _write(tmp_path / "bad.tsv", "# header comment\na\tr\tb\n\nc\tr\n")
    with pytest.raises(KBFormatError) as info:
        load_tsv(path)
    err = info.value
    assert err.line == 4
    assert err.path == str(path)
    assert err.expected == "3 columns (head, relation, tail)"
    assert f"{path}, line 4: found 2 columns separated by tab" in str(err)


def test_space_separated_file_gets_a_delimiter_hint_and_loads_with_delimiter(tmp_path):
    path = _write(tmp_path / "spaces.txt", "a r b\nc r d\n")
    with pytest.raises(KBFormatError, match=r"line 1: found 1 column .*pass delimiter="):
        load_tsv(path)
    assert _key_triples(load_tsv(path, delimiter=" ")) == [("a", "r", "b"), ("c", "r", "d")]


def test_empty_field_is_an_error(tmp_path):
    with pytest.raises(KBFormatError, match=r"line 2: empty relation") as info:
        load_tsv(_write(tmp_path / "e.tsv", "a\tr\tb\nc\t\td\n"))
    assert info.value.expected == "3 non-empty columns (head, relation, tail)"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "head\trelation\ttail\n"])
def test_no_triples_is_an_error(tmp_path, text):
    with pytest.raises(KBFormatError, match="no triples"):
        load_tsv(_write(tmp_path / "empty.tsv", text))


def test_latin1_file_needs_encoding(tmp_path):
    path = _write(
        tmp_path / "cities.tsv", "Paris\tsister_city\tRome\nZürich\tin\tSchweiz\n", encoding="latin-1"
    )
    with pytest.raises(KBFormatError) as info:
        load_tsv(path)
    assert info.value.line == 2 and info.value.column == 2
    assert "encoding='latin-1'" in str(info.value)
    kb = load_tsv(path, encoding="latin-1")
    assert kb.entity_id("Zürich") == 2


def test_block_boundaries_keep_line_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(tsv, "_BLOCK_BYTES", 16)  # lines straddle many blocks
    lines = [f"entity{i}\trel{i % 3}\tentity{i + 1}" for i in range(200)]
    path = _write(tmp_path / "long.tsv", "\n".join(lines) + "\n")
    kb = load_tsv(path)
    assert kb.num_entities == 201 and kb.triples().shape == (200, 3)
    assert _key_triples(kb)[150] == ("entity150", "rel0", "entity151")
    lines[137] = "entity137\trel1"
    _write(path, "\n".join(lines) + "\n")
    with pytest.raises(KBFormatError, match="line 138: found 2 columns"):
        load_tsv(path)


def test_gzip_and_bad_gzip(tmp_path):
    path = tmp_path / "kg.tsv.gz"
    path.write_bytes(gzip.compress(b"a\tr\tb\nb\tr\tc\n"))
    kb = load_tsv(path)
    assert kb.name == "kg" and kb.triples().shape == (2, 3)
    (tmp_path / "broken.tsv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(KBFormatError, match="gzip"):
        load_tsv(tmp_path / "broken.tsv.gz")


def test_quoted_csv(tmp_path):
    path = _write(
        tmp_path / "kg.csv",
        "subject,predicate,object\n"
        '"Paris, France",capital_of,France\n'
        "# a comment line\n"
        '"#hashtag",tagged_in,"a ""quoted"" post"\n'
        '"multi\nline",r,b\n'
        "c, r ,d\n",
    )
    kb = load_tsv(path)
    assert _key_triples(kb) == [
        ("Paris, France", "capital_of", "France"),
        ("#hashtag", "tagged_in", 'a "quoted" post'),
        ("multi\nline", "r", "b"),
        ("c", "r", "d"),
    ]


def test_csv_errors_count_physical_lines(tmp_path):
    path = _write(tmp_path / "bad.csv", 'a,r,b\n"two\nlines",r,c\nx,y\n')
    with pytest.raises(KBFormatError, match=r"bad\.csv, line 4: found 2 columns separated by comma"):
        load_tsv(path)
    path = _write(tmp_path / "quote.csv", 'a,r,b\n"open,r,c\n')
    with pytest.raises(KBFormatError, match=r"line 2: bad CSV"):
        load_tsv(path)


def test_names_file_gives_labels_and_aliases_without_adding_entities(tmp_path):
    triples = _write(tmp_path / "kg.tsv", "Q90\tcapital_of\tQ142\n")
    names = _write(
        tmp_path / "names.tsv",
        "# key, name, aliases\nQ90\tParis\tCity of Light\tParee\nQ142\tFrance\nQ64\tBerlin\n",
    )
    kb = load_tsv(triples, names=names)
    assert kb.num_entities == 2  # Q64 is named but in no triple
    paris = kb.entity_id("Q90")
    assert kb.entity_label(paris) == "Paris"
    assert kb.entity_aliases(paris) == ("City of Light", "Paree")
    assert kb.has_label(kb.entity_id("Q142"))
    _write(names, "Q90\tParis\nQ142\n")
    with pytest.raises(KBFormatError, match=r"names\.tsv, line 2: found 1 column") as info:
        load_tsv(triples, names=names)
    assert info.value.expected == "key<TAB>name[<TAB>alias...]"


def test_open_kb_detects_tsv_and_csv(tmp_path):
    _write(tmp_path / "kg.csv", "a,r,b\n")
    _write(tmp_path / "kg.tsv", "a\tr\tb\n")
    _write(tmp_path / "names.txt", "a\tAlpha\n")
    assert _key_triples(open_kb(tmp_path / "kg.csv")) == [("a", "r", "b")]
    kb = open_kb(tmp_path / "kg.tsv", names=tmp_path / "names.txt")
    assert kb.entity_label(0) == "Alpha"


@pytest.fixture
def tricky():
    builder = TripleStoreBuilder(name="tricky")
    builder.add_many([("Paris, France", "capital_of", "France"), ("#tag", "r", 'say "hi"')], split="train")
    builder.add("France", "r", "France", split="test")
    return builder.build()


@pytest.mark.parametrize("filename", ["out.csv", "out.csv.gz"])
def test_write_csv_round_trip(tmp_path, tricky, filename):
    path = write_tsv(tricky, tmp_path / filename, header=True)
    back = load_tsv(path)
    assert _key_triples(back) == _key_triples(tricky)
    assert [p.name for p in tmp_path.iterdir()] == [filename]  # no temporary file left behind


def test_write_tsv_round_trip_split_and_gzip_is_reproducible(tmp_path):
    builder = TripleStoreBuilder(name="kg")
    builder.add_many([("a", "r", "b"), ("b", "s", "c")], split="train")
    builder.add("c", "r", "a", split="test")
    kb = builder.build()
    first = write_tsv(kb, tmp_path / "one.tsv.gz", split="train")
    second = write_tsv(kb, tmp_path / "two.tsv.gz", split="train")
    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes()) == b"a\tr\tb\nb\ts\tc\n"
    assert _key_triples(load_tsv(first)) == _key_triples(kb, "train")
    assert _key_triples(load_tsv(write_tsv(kb, tmp_path / "all.tsv", header=True))) == _key_triples(kb)


def test_write_tsv_refuses_keys_it_cannot_hold_and_keeps_the_old_file(tmp_path, tricky):
    target = _write(tmp_path / "out.tsv", "old\tcontent\there\n")
    with pytest.raises(ValueError, match="delimiter or a line break|starts with '#'"):
        write_tsv(tricky, target)
    assert target.read_text() == "old\tcontent\there\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tsv"]


def test_real_fb15k237_train_gz(shared_data):
    path = shared_data / "kg" / "FB15k-237" / "train.txt.gz"
    kb = load_tsv(path, split="train", progress=False)
    assert kb.splits == ("train",)
    assert kb.triples("train").shape == (272_115, 3)  # SOURCES.md line count; the file has no duplicates
    assert kb.duplicates_dropped() == {}
    assert kb.num_entities == 14_505  # entities of the train split alone
    assert kb.num_relations == 237
    assert not any(k.endswith("\r") for k in kb.entity_keys)  # the file has CRLF line ends
    assert _key_triples(kb, "train")[0] == ("/m/027rn", "/location/country/form_of_government", "/m/06cx9")
