"""Dataset readers: CoNLL-2003 and Financial PhraseBank on the real files, tiny malformed fixtures, the registry."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from kgreason.core.errors import ConfigError, RegistryError
from kgreason.data.conll import iob1_to_iob2, read_conll
from kgreason.data.errors import DatasetFormatError, DatasetNotFoundError
from kgreason.data.phrasebank import PHRASEBANK_LABELS, read_phrasebank_file
from kgreason.data.readers import read_dataset, readers
from kgreason.data.splits import stratified_split

CONLL_TAGS = ["B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER", "O"]


@pytest.fixture(scope="module")
def conll(shared_data: Path):
    return read_dataset("conll2003", data_dir=shared_data)


# --- registry -------------------------------------------------------------------------------------------------


def test_registry_and_option_errors(tmp_path: Path):
    assert {"conll2003", "financial_phrasebank"} <= set(readers.names())
    with pytest.raises(RegistryError, match="Did you mean 'conll2003'"):
        read_dataset("conll2030")
    with pytest.raises(ConfigError, match="has no option 'agreemnt'. Did you mean 'agreement'"):
        read_dataset("financial_phrasebank", agreemnt=50)
    with pytest.raises(ConfigError, match="agreement must be one of 50, 66, 75 or 'all', got 90"):
        read_dataset("financial_phrasebank", agreement=90)
    with pytest.raises(
        DatasetNotFoundError,
        match=r"'conll2003' with train.txt, valid.txt, test.txt not found in .*KGREASON_DATA",
    ):
        read_dataset("conll2003", data_dir=tmp_path)


# --- CoNLL-2003 -----------------------------------------------------------------------------------------------


def test_conll2003_counts_match_the_shared_task_paper(conll):
    # Tjong Kim Sang & De Meulder 2003, Tables 1-2 (and SOURCES.md)
    expected = {
        "train": (946, 14041, 203621, {"LOC": 7140, "MISC": 3438, "ORG": 6321, "PER": 6600}),
        "dev": (216, 3250, 51362, {"LOC": 1837, "MISC": 922, "ORG": 1341, "PER": 1842}),
        "test": (231, 3453, 46435, {"LOC": 1668, "MISC": 702, "ORG": 1661, "PER": 1617}),
    }
    for split, (documents, sentences, tokens, entities) in expected.items():
        info = conll.info["splits"][split]
        assert (info["documents"], info["sentences"], info["tokens"], info["entities"]) == (
            documents,
            sentences,
            tokens,
            entities,
        )
        assert len(conll.split(split)) == sentences
        assert sum(len(e.tokens) for e in conll.split(split)) == tokens
    assert conll.sizes == {"train": 14041, "dev": 3250, "test": 3453}
    assert conll.labels == CONLL_TAGS
    assert conll.info["tag_scheme"] == "IOB2"  # the NeuroNER copy is already IOB2: nothing converted
    assert [p.name for p in conll.files] == ["train.txt", "valid.txt", "test.txt"]
    tags = conll.label_counts("test")
    assert tags["O"] == 38554 - 231 and tags["B-PER"] == 1617  # O tokens less the -DOCSTART- lines


def test_conll2003_examples(conll):
    first = conll.train[0]
    assert first.tokens == ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]
    assert first.label == ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"]
    assert first.text == " ".join(first.tokens) and first.uid == "train:0"
    assert (
        first.metadata["line"] == 3 and first.metadata["document"] == 0 and first.metadata["pos"][0] == "NNP"
    )
    second = conll.train[1]
    assert (second.tokens, second.label) == (["Peter", "Blackburn"], ["B-PER", "I-PER"])
    assert conll.test[-1].uid == "test:3452" and conll.dev[5].uid == "dev:5"
    for example in conll.train[:2000]:
        assert len(example.tokens) == len(example.label) and iob1_to_iob2(example.label) == example.label


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


IOB1 = "-DOCSTART- -X- -X- O\n\nPeter NNP B-NP I-PER\nBlackburn NNP I-NP I-PER\nin IN B-PP O\nBonn NNP B-NP I-LOC\n\n"


def test_conll_iob1_is_converted_or_rejected(tmp_path: Path):
    path = _write(tmp_path / "iob1.txt", IOB1 + "Ajax NNP B-NP I-ORG\nPSV NNP I-NP B-ORG\n")
    read = read_conll(path, split="train")
    assert [e.label for e in read.examples] == [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "B-ORG"]]
    assert (read.retagged, read.sentences, read.documents, read.tokens) == (3, 2, 1, 6)
    with pytest.raises(
        DatasetFormatError, match=r"iob1\.txt, line 3: tag 'I-PER' starts an entity .* \(expected B-PER"
    ):
        read_conll(path, split="train", scheme="iob2")
    with pytest.raises(ValueError, match="scheme must be one of"):
        read_conll(path, split="train", scheme="bio")
    assert iob1_to_iob2(["I-PER", "I-LOC", "O", "I-LOC", "B-LOC"]) == [
        "B-PER",
        "B-LOC",
        "O",
        "B-LOC",
        "B-LOC",
    ]


def test_conll_malformed_lines_name_file_and_line(tmp_path: Path):
    bad = _write(tmp_path / "cols.txt", IOB1 + "Oops NNP B-NP\n")
    with pytest.raises(
        DatasetFormatError,
        match=r"cols\.txt, line 8: 3 columns where line 1 has 4 \(expected 4 space-separated",
    ):
        read_conll(bad, split="train")
    bad = _write(tmp_path / "tag.txt", "EU NNP B-NP B-ORG\nrejects VBZ B-VP X-ORG\n")
    with pytest.raises(
        DatasetFormatError, match=r"tag\.txt, line 2: NER tag 'X-ORG' .* \(expected O, B-TYPE or I-TYPE\)"
    ):
        read_conll(bad, split="train")
    bad = tmp_path / "latin.txt"
    bad.write_bytes(b"EU NNP B-NP B-ORG\n\nK\xf6ln NNP B-NP B-LOC\n")
    with pytest.raises(DatasetFormatError, match=r"latin\.txt, line 3: byte 0xf6 is not UTF-8"):
        read_conll(bad, split="train")


def test_conll2003_reader_on_a_tiny_folder(tmp_path: Path):
    folder = tmp_path / "conll2003"
    _write(folder / "train.txt", IOB1)
    _write(folder / "valid.txt", "Bonn NNP B-NP B-LOC\n\n")
    _write(folder / "test.txt", "\nSpain NNP B-NP B-LOC\nwins VBZ B-VP O\n")
    splits = read_dataset("conll2003", data_dir=tmp_path)
    assert splits.labels == ["B-LOC", "B-PER", "I-PER", "O"]
    assert splits.info["tag_scheme"] == "IOB1, converted to IOB2 (2 tags changed)"
    assert splits.sizes == {"train": 1, "dev": 1, "test": 1} and splits.test[0].metadata["document"] is None
    assert (
        read_dataset("conll2003", data_dir=folder).sizes == splits.sizes
    )  # the dataset folder itself works too
    _write(folder / "test.txt", "Spain NNP B-NP B-LOC\nwins VBZ B-VP B-MISC\n")
    with pytest.raises(
        DatasetFormatError, match=r"test\.txt, line 2: tag 'B-MISC' does not occur in the train file"
    ):
        read_dataset("conll2003", data_dir=tmp_path)


# --- Financial PhraseBank -------------------------------------------------------------------------------------

# SOURCES.md: sentences and (neutral, positive, negative) per agreement subset
PHRASEBANK_COUNTS = {
    50: (4846, 2879, 1363, 604),
    66: (4217, 2535, 1168, 514),
    75: (3453, 2146, 887, 420),
    "all": (2264, 1391, 570, 303),
}


@pytest.mark.parametrize("agreement", [50, 66, 75, "all"])
def test_phrasebank_counts_split_and_stratification(shared_data: Path, agreement):
    total, neutral, positive, negative = PHRASEBANK_COUNTS[agreement]
    splits = read_dataset("financial_phrasebank", data_dir=shared_data, agreement=agreement, split_seed=42)
    assert splits.labels == ["negative", "neutral", "positive"] == list(PHRASEBANK_LABELS)
    assert splits.info["lines"] == splits.info["sentences"] == total
    assert splits.info["label_counts"] == {"negative": negative, "neutral": neutral, "positive": positive}
    sizes = splits.sizes
    assert sum(sizes.values()) == total
    for split, fraction in (("train", 0.8), ("dev", 0.1), ("test", 0.1)):
        assert abs(sizes[split] - fraction * total) <= 3
        for label, count in splits.label_counts(split).items():  # stratified: each class in proportion
            assert abs(count - fraction * splits.info["label_counts"][label]) <= 2
    texts = {split: {e.text for e in splits.split(split)} for split in ("train", "dev", "test")}
    assert (
        not texts["train"] & texts["dev"]
        and not texts["train"] & texts["test"]
        and not texts["dev"] & texts["test"]
    )
    uids = [e.uid for split in ("train", "dev", "test") for e in splits.split(split)]
    assert len(set(uids)) == total
    assert splits.files[0].name.startswith("Sentences_") and splits.options["split_seed"] == 42


def test_phrasebank_is_deterministic_and_seeded(shared_data: Path):
    def uids(**options):
        splits = read_dataset("financial_phrasebank", data_dir=shared_data, agreement="all", **options)
        return [[e.uid for e in splits.split(s)] for s in ("train", "dev", "test")]

    assert uids(split_seed=7) == uids(split_seed=7)
    assert uids(split_seed=7) != uids(split_seed=8)


def test_phrasebank_duplicates_and_latin1(shared_data: Path):
    splits = read_dataset("financial_phrasebank", data_dir=shared_data, agreement=50)
    assert splits.info["duplicates"] == {"sentences": 8, "extra_copies": 8, "conflicting_labels": 2}
    copies = Counter(e.text for s in ("train", "dev", "test") for e in splits.split(s))
    repeated = {text for text, n in copies.items() if n > 1}
    assert len(repeated) == 8
    for text in repeated:  # both copies in the same split
        assert sum(any(e.text == text for e in splits.split(s)) for s in ("train", "dev", "test")) == 1
    dropped = read_dataset("financial_phrasebank", data_dir=shared_data, agreement=50, drop_duplicates=True)
    assert dropped.info["sentences"] == 4838 and sum(dropped.sizes.values()) == 4838
    assert any("\xf1" in e.text or "\xe4" in e.text for e in splits.train + splits.dev + splits.test)
    first = read_phrasebank_file(shared_data / "financial_phrasebank" / "Sentences_50Agree.txt")[0]
    assert first.label == "neutral" and first.text.startswith("According to Gran , the company has no plans")
    assert first.uid == "Sentences_50Agree.txt:1"


def test_phrasebank_bad_lines(tmp_path: Path):
    folder = tmp_path / "financial_phrasebank"
    folder.mkdir()
    path = folder / "Sentences_AllAgree.txt"
    path.write_bytes(b"Caf\xe9 sales rose .@positive\n\nProfit fell .@negative\nNo label here\n")
    with pytest.raises(
        DatasetFormatError, match=r"Sentences_AllAgree\.txt, line 4: .* \(expected sentence@label with label"
    ):
        read_dataset("financial_phrasebank", data_dir=tmp_path, agreement="all")
    path.write_bytes(b"Caf\xe9 sales rose .@positive\nProfit fell .@bearish\n")
    with pytest.raises(DatasetFormatError, match=r"line 2: .* does not end in a sentiment label"):
        read_phrasebank_file(path)
    path.write_bytes(b"Caf\xe9 sales rose .@positive\n @neutral\n")
    with pytest.raises(DatasetFormatError, match=r"line 2: empty sentence"):
        read_phrasebank_file(path)
    path.write_bytes(b"Caf\xe9 sales rose .@positive\n")
    assert read_phrasebank_file(path)[0].text == "Café sales rose ."


# --- stratified split -----------------------------------------------------------------------------------------


def test_stratified_split_keeps_groups_together():
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    groups = [i // 2 for i in range(100)]  # pairs of items share a group
    split = stratified_split(labels, seed=3, groups=groups)
    assert sorted(split.train + split.dev + split.test) == list(range(100))
    assert (len(split.train), len(split.dev), len(split.test)) == (80, 10, 10)
    for part in (split.train, split.dev, split.test):
        assert all(i ^ 1 in part for i in part)  # the other item of the pair is in the same split
    assert Counter(labels[i] for i in split.train) == {"a": 40, "b": 24, "c": 16}
    assert stratified_split(labels, seed=3, groups=groups) == split
    with pytest.raises(ValueError, match="three positive numbers that sum to 1"):
        stratified_split(labels, fractions=(0.8, 0.3, 0.1))
    with pytest.raises(
        ValueError,
        match="the smallest class has 9 group.s.; dev and test fractions 0.1, 0.1 need at least 10",
    ):
        stratified_split(["a"] * 50 + ["b"] * 9)
