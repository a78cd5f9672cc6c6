"""kgreason.Tabular.v1: a user's own JSONL / CSV / TSV files, columns named by options, one-line errors."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kgreason.core.errors import ConfigError, KGReasonError, RegistryError
from kgreason.data.errors import DatasetFormatError, DatasetNotFoundError
from kgreason.data.readers import read_dataset, readers
from kgreason.data.tabular import KNOWLEDGE_QUERY, read_tabular

ROWS = {
    "train": [("Shares rose sharply.", "Is it good?", "positive", "a1", ["ACME"]),
              ("Profits fell.", "", "negative", "a2", []),
              ("Sales were flat, as expected.", "Is it good?", "neutral", "a3", ["ACME", "Globex"])],
    "dev": [("The outlook improved.", "Is it good?", "positive", "b1", ["Globex"])],
    "test": [("Losses widened.", "", "negative", "c1", [])],
}  # fmt: skip
OPTIONS = {
    "text_column": "sentence",
    "text_pair_column": "question",
    "label_column": "sentiment",
    "id_column": "id",
    "entities_column": "companies",
}


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def _write_delimited(path: Path, header: list[str], rows: list[list[str]], *, delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _split_files(folder: Path, fmt: str) -> dict[str, str]:
    files = {}
    for split, rows in ROWS.items():
        path = folder / f"{split}.{fmt}"
        if fmt == "jsonl":
            _write_jsonl(
                path,
                [
                    {
                        "id": i,
                        "sentence": t,
                        "question": q or None,
                        "sentiment": lab,
                        "companies": e,
                        "extra": 1,
                    }
                    for t, q, lab, i, e in rows
                ],
            )
        else:
            header = ["id", "sentence", "question", "sentiment", "companies"]
            cells = [[i, t, q, lab, "|".join(e)] for t, q, lab, i, e in rows]
            _write_delimited(path, header, cells, delimiter="\t" if fmt == "tsv" else ",")
        files[split] = str(path)
    return files


# --- happy paths -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "tsv"])
def test_each_format_reads_the_named_columns(tmp_path: Path, fmt: str):
    splits = read_tabular(**_split_files(tmp_path, fmt), **OPTIONS)
    assert splits.name == "kgreason.Tabular.v1"
    assert splits.sizes == {"train": 3, "dev": 1, "test": 1}
    assert splits.labels == ["negative", "neutral", "positive"]  # sorted labels of the train file
    first, second, third = splits.train
    assert (first.text, first.text_pair, first.label, first.uid) == (
        "Shares rose sharply.",
        "Is it good?",
        "positive",
        "a1",
    )
    assert first.metadata == {
        "line": 2 if fmt != "jsonl" else 1,
        "entities": ["ACME"],
        KNOWLEDGE_QUERY: "ACME",
    }
    assert second.text_pair is None and "entities" not in second.metadata  # empty second text / mentions
    assert third.metadata["entities"] == ["ACME", "Globex"]
    assert third.metadata[KNOWLEDGE_QUERY] == "ACME; Globex"
    assert splits.dev[0].uid == "b1" and splits.test[0].label == "negative"
    assert [p.name for p in splits.files] == [f"{s}.{fmt}" for s in ("train", "dev", "test")]
    assert splits.info["label_counts"] == {"negative": 2, "neutral": 1, "positive": 2}
    assert splits.options["text_column"] == "sentence"


def test_defaults_uids_bom_blank_lines_crlf_and_format_option(tmp_path: Path):
    train = tmp_path / "train.data"
    train.write_bytes(b'\xef\xbb\xbftext,label\r\n"a, quoted\r\ntext",yes\r\n\r\nplain, no \r\n')
    dev = tmp_path / "dev.data"
    dev.write_bytes(b"text,label\nshort,no\n")
    splits = read_tabular(train=str(train), dev=str(dev), test=str(dev), format="csv")
    assert [(e.text, e.label, e.uid) for e in splits.train] == [
        ("a, quoted\r\ntext", "yes", "train.data:2"),
        ("plain", "no", "train.data:5"),  # labels are stripped, texts kept as written
    ]
    assert splits.labels == ["no", "yes"]
    with pytest.raises(
        ConfigError, match=r"train\.data: cannot tell the format from '\.data'; name it with format"
    ):
        read_tabular(train=str(train), dev=str(dev), test=str(dev))


def test_json_integer_labels_and_a_fixed_label_order(tmp_path: Path):
    path = _write_jsonl(tmp_path / "t.jsonl", [{"text": "x", "label": 1}, {"text": "y", "label": 0}])
    splits = read_tabular(train=str(path), dev=str(path), test=str(path), labels=["1", "0", "2"])
    assert splits.labels == ["1", "0", "2"] and [e.label for e in splits.train] == ["1", "0"]


def test_one_file_is_split_stratified_seeded_and_by_text(tmp_path: Path):
    rows = [{"text": f"sentence {i % 45}", "label": "ab"[i % 2]} for i in range(90)]  # 45 texts, twice each
    path = _write_jsonl(tmp_path / "all.jsonl", rows)

    def uids(seed: int) -> list[list[str]]:
        splits = read_tabular(file=str(path), split_seed=seed)
        return [[str(e.uid) for e in splits.split(s)] for s in ("train", "dev", "test")]

    splits = read_tabular(file=str(path))
    assert sum(splits.sizes.values()) == 90 and splits.labels == ["a", "b"]
    texts = [{e.text for e in splits.split(s)} for s in ("train", "dev", "test")]
    assert not texts[0] & texts[1] and not texts[0] & texts[2] and not texts[1] & texts[2]
    assert uids(3) == uids(3) != uids(4)
    assert splits.options["split_seed"] == 42 and splits.files == [path]


def test_relative_paths_are_looked_up_in_the_data_folder(tmp_path: Path):
    (tmp_path / "mine").mkdir()
    files = {s: Path(p).relative_to(tmp_path) for s, p in _split_files(tmp_path / "mine", "csv").items()}
    splits = read_tabular(data_dir=tmp_path, **{s: str(p) for s, p in files.items()}, **OPTIONS)
    assert splits.files[0] == tmp_path / "mine" / "train.csv"


def test_read_by_versioned_name_and_by_alias(tmp_path: Path):
    assert readers.get("kgreason.Tabular.v1") is readers.get("tabular")
    assert {"kgreason.Tabular.v1", "tabular"} <= set(readers.names())
    files = _split_files(tmp_path, "jsonl")
    by_name = read_dataset("kgreason.Tabular.v1", **files, **OPTIONS)
    by_alias = read_dataset("tabular", **files, **OPTIONS)
    assert by_name.train == by_alias.train and by_name.labels == by_alias.labels
    with pytest.raises(ConfigError, match=r"has no option 'text_colum'\. Did you mean 'text_column'"):
        read_dataset("kgreason.Tabular.v1", **files, text_colum="sentence")
    with pytest.raises(RegistryError, match=r"unknown dataset reader 'kgreason\.Tabular\.v2'\. Did you mean"):
        read_dataset("kgreason.Tabular.v2", **files)


@pytest.mark.parametrize(
    ("versioned", "short"),
    [
        ("kgreason.CoNLL2003.v1", "conll2003"),
        ("kgreason.FinancialPhraseBank.v1", "financial_phrasebank"),
        ("kgreason.CLUTRR.v1", "clutrr"),
        ("kgreason.Kinship.v1", "kinship"),
        ("kgreason.StoryRelations.v1", "story_relations"),
    ],
)
def test_built_in_readers_answer_to_versioned_and_short_names(versioned: str, short: str):
    assert readers.get(versioned) is readers.get(short)
    assert {versioned, short} <= set(readers.names())


# --- errors ----------------------------------------------------------------------------------------------------

GOOD_JSONL = '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n'
GOOD_CSV = "text,label\na,x\nb,y\n"


@pytest.mark.parametrize(
    ("name", "content", "options", "message"),
    [
        ("train.jsonl", GOOD_JSONL + "[1, 2]\n", {}, r"train\.jsonl, line 3: not a JSON object \(list\)"),
        ("train.jsonl", GOOD_JSONL + '{"text": \n', {}, r"train\.jsonl, line 3: not valid JSON \(Expecting value\)"),
        ("train.jsonl", "[" * 100_000 + "\n", {}, r"line 1: not valid JSON"),
        ("dev.jsonl", GOOD_JSONL * 2 + '{"text": "c"}\n', {}, r"dev\.jsonl, line 5: missing column 'label'"),
        ("dev.jsonl", '{"text": "c", "lable": "x"}\n', {}, r"line 1: missing column 'label'\. Did you mean 'lable'"),
        ("dev.csv", GOOD_CSV + "c,x\nd\n", {}, r"dev\.csv, line 5: 1 fields where the header has 2"),
        ("dev.csv", "text,lbl\na,x\n", {}, r"dev\.csv, line 1: missing column 'label'\. Did you mean 'lbl'\? Columns"),
        ("dev.csv", "text,label,text\na,x,b\n", {}, r"line 1: column 'text' appears twice in the header"),
        ("dev.csv", GOOD_CSV + '"open quote,x\n', {}, r"dev\.csv, line 4: not valid CSV \(unexpected end of data\)"),
        ("dev.csv", GOOD_CSV + '"a"b,x\n', {}, r"dev\.csv, line 4: not valid CSV \(',' expected after"),
        ("dev.jsonl", '{"text": "x", "label": "y"}\n{"text": "z", "label": "w"}\n', {}, r"dev\.jsonl, line 2: label 'w' does not occur in the train file \(expected one of x, y\)"),
        ("dev.jsonl", '{"text": "x", "label": "z"}\n', {"labels": ["x", "y"]}, r"dev\.jsonl, line 1: label 'z' does not occur in the labels option"),
        ("dev.jsonl", '{"text": "  ", "label": "x"}\n', {}, r"line 1: empty or non-text value in column 'text'"),
        ("dev.jsonl", '{"text": "a", "label": [1]}\n', {}, r"line 1: empty or non-scalar label in column 'label'"),
        ("dev.jsonl", '{"text": "a", "label": true}\n', {}, r"non-scalar label"),
        ("dev.jsonl", '{"text": "a", "label": "x", "pair": 3}\n', {"text_pair_column": "pair"}, r"non-text value in column 'pair'"),
        ("dev.jsonl", '{"text": "a", "label": "x", "e": [1]}\n', {"entities_column": "e"}, r"entity mentions in column 'e' are \[1\]"),
        ("dev.jsonl", '{"text": "a", "label": "x", "id": 7}\n{"text": "b", "label": "x", "id": "7"}\n', {"id_column": "id"}, r"dev\.jsonl, line 2: id '7' is used twice \(first at dev\.jsonl, line 1\)"),
        ("test.csv", "", {}, r"test\.csv: empty file: no examples"),
        ("test.csv", "text,label\n\n", {}, r"test\.csv: empty file: no examples"),
        ("test.jsonl", "\n \n", {}, r"test\.jsonl: empty file: no examples"),
        ("test.jsonl", GOOD_JSONL + '{"text": "' + "x" * 200 + '"}\n', {"max_line_bytes": 100}, r"test\.jsonl, line 3: line longer than 100 bytes"),
        ("test.csv", GOOD_CSV + '"' + "x\n" * 60 + '",x\n', {"max_line_bytes": 100}, r"test\.csv, line \d+: not valid CSV \(field larger than field limit"),
        ("test.jsonl", GOOD_JSONL * 3, {"max_lines": 5}, r"test\.jsonl, line 6: more than 5 lines"),
        ("test.csv", "text,label\nK\xf6ln,x\n", {}, r"test\.csv, line 2, column 2: byte 0xf6 is not UTF-8"),
    ],
)  # fmt: skip
def test_bad_files_are_one_line_errors_naming_file_and_line(
    tmp_path: Path, name: str, content: str, options: dict, message: str
):
    files = {}
    for split in ("train", "dev", "test"):
        fmt = name.rsplit(".", 1)[1]
        files[split] = tmp_path / f"{split}.{fmt}"
        if fmt == "jsonl":
            extra = {options[k]: None for k in ("text_pair_column", "entities_column") if k in options}
            good = [{"text": t, "label": y, **extra} for t, y in (("a", "x"), ("b", "y"))]
            _write_jsonl(files[split], [{**r, "id": f"{split}{i}"} for i, r in enumerate(good)])
        else:
            files[split].write_text(GOOD_CSV, encoding="utf-8")
    path = tmp_path / name
    path.write_bytes(content.encode("latin-1") if "\xf6" in content else content.encode("utf-8"))
    with pytest.raises(DatasetFormatError, match=message) as caught:
        read_tabular(**{s: str(p) for s, p in files.items()}, **options)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400


def test_option_errors(tmp_path: Path):
    path = _write_jsonl(tmp_path / "t.jsonl", [{"text": "x", "label": "y"}])
    one = str(path)
    cases = [
        ({"file": one, "train": one}, r"give either file or train, dev and test, not both"),
        ({"train": one, "dev": one}, r"needs the options train, dev and test .*; got train, dev"),
        ({"file": one, "fractions": [0.8, 0.3, 0.1]}, r"fractions must be three positive numbers"),
        ({"file": one, "split_seed": "x"}, r"split_seed must be an integer, got 'x'"),
        ({"file": one, "labels": "xy"}, r"labels must be a non-empty list of distinct labels"),
        ({"file": one, "labels": ["x", "x"]}, r"labels must be a non-empty list of distinct labels"),
        (
            {"file": one, "format": "jsn"},
            r"format must be one of jsonl, csv, tsv, got 'jsn'\. Did you mean 'json",
        ),
        ({"file": one, "max_lines": 0}, r"max_lines must be a positive integer"),
        ({"file": one, "text_column": "label"}, r"the column options name a column twice"),
        ({"file": one, "id_column": ""}, r"id_column must be a column name"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigError, match=message):
            read_tabular(**options)
    with pytest.raises(DatasetNotFoundError, match=r"dataset option train: .*nope\.jsonl"):
        read_tabular(train=str(tmp_path / "nope.jsonl"), dev=one, test=one)
    with pytest.raises(DatasetNotFoundError, match=r"dataset option file: .*: not a file"):
        read_tabular(file=str(tmp_path))
    with pytest.raises(DatasetFormatError, match=r"t\.jsonl: cannot split 1 examples: too few items"):
        read_tabular(file=one)


def test_the_knowledge_query_key_is_the_one_retrieval_reads():
    from kgreason.models.knowledge import QUERY_KEY

    assert KNOWLEDGE_QUERY == QUERY_KEY


# --- properties --------------------------------------------------------------------------------------------------

QUICK = settings(
    max_examples=120, deadline=timedelta(seconds=2.0), suppress_health_check=[HealthCheck.too_slow]
)
texts = st.text(min_size=1, max_size=40).filter(lambda t: t.strip())
labels = (
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=8)
    .map(str.strip)
    .filter(bool)
)
rows = st.lists(st.tuples(texts, st.one_of(st.none(), texts), labels), min_size=1, max_size=8)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "tsv"])
@QUICK
@given(rows=rows)
def test_round_trip_of_what_csv_and_json_writers_write(tmp_path_factory, fmt: str, rows: list[tuple]):
    folder = tmp_path_factory.mktemp("round")
    path = folder / f"data.{fmt}"
    if fmt == "jsonl":
        _write_jsonl(path, [{"t": text, "q": pair, "y": label} for text, pair, label in rows])
    else:
        cells = [[text, pair or "", label] for text, pair, label in rows]
        _write_delimited(path, ["t", "q", "y"], cells, delimiter="\t" if fmt == "tsv" else ",")
    splits = read_tabular(
        train=str(path),
        dev=str(path),
        test=str(path),
        text_column="t",
        text_pair_column="q",
        label_column="y",
    )
    assert [(e.text, e.text_pair, e.label) for e in splits.train] == [
        (text, pair if pair and pair.strip() else None, label) for text, pair, label in rows
    ]
    assert splits.labels == sorted({label for _, _, label in rows}) and splits.test == splits.train


PIECES = [b"{", b"}", b"[", b'"text"', b'"label"', b":", b",", b'"a"', b"1", b"\n", b"\r", b'"', b"\t",
          b"text,label", b"text\tlabel", b"\xff", b"\xef\xbb\xbf", b" ", b"null", b"\\", b"x" * 50]  # fmt: skip
hostile = st.one_of(st.binary(max_size=400), st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join))


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "tsv"])
@QUICK
@given(data=hostile)
@example(data=b'text,label\n"a\n')
@example(data=b'{"text": "a", "label": "b"}\n' * 3)
def test_arbitrary_bytes_raise_only_kgreason_errors_and_fast(tmp_path_factory, fmt: str, data: bytes):
    path = tmp_path_factory.mktemp("hostile") / f"data.{fmt}"
    path.write_bytes(data)
    start = time.perf_counter()
    with contextlib.suppress(KGReasonError):
        read_tabular(train=str(path), dev=str(path), test=str(path), max_line_bytes=64, max_lines=40)
    assert time.perf_counter() - start < 2.0


def test_csv_field_size_limit_is_restored(tmp_path: Path):
    before = csv.field_size_limit()
    path = _write_delimited(tmp_path / "a.csv", ["text", "label"], [["x", "y"]])
    read_tabular(train=str(path), dev=str(path), test=str(path), max_line_bytes=77)
    with contextlib.suppress(DatasetFormatError):
        read_tabular(train=str(path), dev=str(path), test=str(tmp_path / "a.csv"), max_line_bytes=3)
    assert csv.field_size_limit() == before
    assert list(csv.reader(io.StringIO("a,b\n")))  # the module still works


# --- through a config: the task's encoded examples ---------------------------------------------------------------


def test_a_config_naming_the_reader_builds_encoded_examples(tmp_path: Path, tiny_encoder: Path):
    from kgreason.core.config import load_config
    from kgreason.runs.config import ExperimentConfig
    from kgreason.runs.experiment import prepare

    files = _split_files(tmp_path, "csv")
    config_path = tmp_path / "mine.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "name": "tabular",
                "task": "kgreason.SequenceClassification.v1",
                "data": {"dataset": "kgreason.Tabular.v1", "options": {**files, **OPTIONS}},
                "model": {"encoder": str(tiny_encoder), "variant": "text", "max_length": 32},
            }
        ),
        encoding="utf-8",
    )
    config = load_config(ExperimentConfig, config_path, ["data.options.label_column=sentiment"])
    prepared = prepare(config)
    assert prepared.task.labels == ["negative", "neutral", "positive"]
    assert [item.labels for item in prepared.train.encoded] == [2, 0, 1]
    assert len(prepared.dev.encoded) == len(prepared.test.encoded) == 1
    first = prepared.train.encoded[0]
    assert (
        first.token_type_ids is not None and 1 in first.token_type_ids
    )  # the second text is encoded as a pair
    assert prepared.data_files == [Path(files[s]) for s in ("train", "dev", "test")]
