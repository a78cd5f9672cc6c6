"""The CLUTRR reader: real counts and conventions on the shared data, and errors on malformed files."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from kgreason.data.clutrr import (
    CLUTRR_EDGE_TYPES,
    CLUTRR_LABELS,
    read_clutrr,
    read_clutrr_file,
    read_relation,
    split_story,
)
from kgreason.data.errors import DatasetFormatError, DatasetNotFoundError

HEADER = ["", "id", "story", "query", "text_query", "target", "text_target", "clean_story", "proof_state",
          "f_comb", "task_name", "story_edges", "edge_types", "query_edge", "genders", "syn_story",
          "node_mapping", "task_split"]  # fmt: skip
ROW = {
    "": "0",
    "id": "abc",
    "story": "[Dorothy]'s brother [Michael] and her went to get ice cream. [Michael] is the proud father of "
    "the lovely [Donald]",
    "query": "('Donald', 'Dorothy')",
    "target": "aunt",
    "clean_story": "[Michael] is the proud father of the lovely [Donald] [Dorothy]'s brother [Michael] and her "
    "went to get ice cream.",
    "proof_state": "[{('Donald', 'aunt', 'Dorothy'): [('Donald', 'father', 'Michael'), "
    "('Michael', 'sister', 'Dorothy')]}]",
    "task_name": "task_1.2",
    "story_edges": "[(0, 1), (1, 2)]",
    "edge_types": "['father', 'sister']",
    "query_edge": "(0, 2)",
    "genders": "Donald:male,Michael:male,Dorothy:female",
}


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow([row.get(column, "") for column in HEADER])
    return path


@pytest.fixture(scope="module")
def clutrr(shared_data):
    return read_clutrr(data_dir=shared_data)


def test_label_sets():
    assert list(CLUTRR_LABELS) == sorted(CLUTRR_LABELS) and len(CLUTRR_LABELS) == 18
    assert len(CLUTRR_EDGE_TYPES) == 14
    assert set(CLUTRR_EDGE_TYPES) == set(CLUTRR_LABELS) - {
        "son-in-law", "daughter-in-law", "father-in-law", "mother-in-law", "niece", "nephew"
    } | {"husband", "wife"}  # fmt: skip


def test_real_counts(clutrr):
    files = clutrr.info["files"]
    assert files["1.2,1.3_train.csv.gz"]["rows"] == 10094
    assert files["1.2,1.3_train.csv.gz"]["depths"] == {2: 5096, 3: 4998}
    expected = {"1.2": 38, "1.3": 105, "1.4": 190, "1.5": 174, "1.6": 107, "1.7": 144, "1.8": 150, "1.9": 119,
                "1.10": 119}  # fmt: skip
    assert {
        name.removesuffix("_test.csv"): f["rows"] for name, f in files.items() if "test" in name
    } == expected
    assert len(clutrr.train) + len(clutrr.dev) == 10094
    assert len(clutrr.test) == sum(expected.values())
    assert clutrr.labels == list(CLUTRR_LABELS)
    assert set(clutrr.label_counts("train").values()) > {0} or min(clutrr.label_counts("train").values()) > 0
    assert min(clutrr.label_counts("train").values()) > 0  # every train set has all 18 labels


def test_dev_is_stratified_by_depth(clutrr):
    dev = Counter(e.metadata["depth"] for e in clutrr.dev)
    assert abs(len(clutrr.dev) - 1009.4) <= 1
    assert abs(dev[2] / len(clutrr.dev) - 5096 / 10094) < 0.01
    assert not {e.uid for e in clutrr.dev} & {e.uid for e in clutrr.train}


def test_conventions_on_real_rows(clutrr):
    first = next(
        e for e in clutrr.train + clutrr.dev if e.uid.endswith(":f4161421-bf6e-4165-9133-07f1dcc4c87e")
    )
    assert first.uid == "clutrr/data_089907f8/1.2,1.3_train:f4161421-bf6e-4165-9133-07f1dcc4c87e"
    assert first.label == "aunt" and first.text_pair == "How is Dorothy related to Donald?"
    assert first.facts == [("Donald", "father", "Michael"), ("Michael", "sister", "Dorothy")]
    assert first.metadata["sentences"] == [
        "Dorothy's brother Michael and her went to get ice cream.",
        "Michael is the proud father of the lovely Donald",
    ]
    assert first.metadata["fact_sentences"] == [1, 0]
    assert first.metadata["genders"] == {"Donald": "male", "Michael": "male", "Dorothy": "female"}
    for e in clutrr.test:
        meta = e.metadata
        assert e.text == " ".join(meta["sentences"]) and "[" not in e.text
        assert meta["noise"] == "clean" and meta["path"] == list(range(meta["depth"]))
        assert len(e.facts) == meta["depth"] == int(meta["source"].split("/")[-1].split("_")[0].split(".")[1])
        assert e.text_pair == f"How is {meta['query'][1]} related to {meta['query'][0]}?"
        for (h, _, t), s in zip(e.facts, meta["fact_sentences"], strict=True):
            assert s is None or (h in meta["sentences"][s] and t in meta["sentences"][s])
    deep = [e for e in clutrr.test if e.metadata["depth"] == 10]
    none = sum(s is None for e in clutrr.test for s in e.metadata["fact_sentences"])
    assert none / sum(len(e.facts) for e in clutrr.test) < 0.05
    assert len(deep) == 119 and len({e.uid for e in clutrr.test}) == len(clutrr.test)


def test_noisy_tasks(shared_data):
    rows = read_clutrr_file(shared_data / "clutrr" / "data_7c5b0e70" / "2.3_test.csv")
    assert len(rows) == 101
    for row in rows:
        meta = row.example.metadata
        assert meta["noise"] == "supporting" and meta["depth"] == 3
        assert meta["path"] == [0, 1, 2]  # the proof's leaves are the first k (typed) story edges
        assert len(row.example.facts) + len(meta["untyped_edges"]) >= 4  # noise edges beyond the path
    typed = sum(len(r.example.facts) - 3 for r in rows)
    assert typed > 0.8 * sum(len(r.example.facts) - 3 + r.untyped for r in rows)


def test_max_train_and_seed(shared_data):
    a = read_clutrr(data_dir=shared_data, max_train=50, split_seed=1)
    b = read_clutrr(data_dir=shared_data, max_train=50, split_seed=1)
    assert len(a.train) == 50 and [e.uid for e in a.train] == [e.uid for e in b.train]


def test_split_story_uses_clean_story():
    story = "[A] met his son [B]. [C] is the proud father of the lovely [D] [E] and her sister [F] left."
    clean = "[E] and her sister [F] left. [C] is the proud father of the lovely [D] [A] met his son [B]."
    assert split_story(story, clean, clean=True) == [
        "[A] met his son [B].",
        "[C] is the proud father of the lovely [D]",
        "[E] and her sister [F] left.",
    ]
    assert split_story("[A] fished with his brother. His name is [B].") == [
        "[A] fished with his brother. His name is [B]."
    ]


def test_read_relation():
    g = {"Ann": "female", "Bob": "male", "Cid": "male"}
    assert read_relation("[Ann] went to the park with her son [Bob].", "Ann", "Bob", genders=g) == "son"
    assert read_relation("[Ann] went to the park with her son [Bob].", "Bob", "Ann", genders=g) == "mother"
    assert read_relation("[Bob] is the proud father of the lovely [Cid]", "Cid", "Bob", genders=g) == "father"
    assert read_relation("[Bob] is the proud father of the lovely [Cid]", "Bob", "Cid", genders=g) == "son"
    assert read_relation("[Bob] and [Cid] went fishing.", "Bob", "Cid", genders=g) is None


def test_tiny_file_and_errors(tmp_path):
    good = write_csv(tmp_path / "1.2_test.csv", [ROW])
    (row,) = read_clutrr_file(good)
    assert (
        row.example.label == "aunt" and row.example.metadata["source"] == f"clutrr/{tmp_path.name}/1.2_test"
    )
    cases = {
        "target": ("cousin", "unknown target"),
        "genders": ("Donald:male,Michael", "genders"),
        "story_edges": ("[(0, 1), (1, 7)]", "outside"),
        "edge_types": ("['father', 'cousin']", "unknown edge type"),
        "query": ("('Donald', 'Michael')", "does not match"),
        "proof_state": ("[{(", "not a Python literal"),
        "task_name": ("task_9.2", "task_name"),
    }
    for column, (value, message) in cases.items():
        path = write_csv(tmp_path / f"bad_{column}.csv", [ROW, {**ROW, column: value}])
        with pytest.raises(DatasetFormatError, match=message) as err:
            read_clutrr_file(path)
        assert err.value.line == 3 and err.value.path == str(path)


def test_missing_set(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="clutrr/data_nope"):
        read_clutrr(data_dir=tmp_path, set="data_nope")


# the data's own example (data_089907f8, 1.3_test): the first sentence states the inverse of the gold fact
SWAPPED = {
    **ROW,
    "id": "swapped",
    "story": "[Mark] took his son [Elliott] out for pizza. [Marian] and her son [Mark] went to visit [Marian]'s "
    "mother [Molly] in the hospital.",
    "clean_story": "[Mark] took his son [Elliott] out for pizza. [Marian] and her son [Mark] went to visit "
    "[Marian]'s mother [Molly] in the hospital.",
    "query": "('Elliott', 'Molly')",
    "target": "mother",
    "proof_state": "[{('Elliott', 'mother', 'Molly'): [('Elliott', 'son', 'Mark'), ('Mark', 'grandmother', "
    "'Molly')]}, {('Mark', 'grandmother', 'Molly'): [('Mark', 'mother', 'Marian'), ('Marian', 'mother', "
    "'Molly')]}]",
    "task_name": "task_1.3",
    "story_edges": "[(0, 1), (1, 2), (2, 3)]",
    "edge_types": "['son', 'mother', 'mother']",
    "query_edge": "(0, 3)",
    "genders": "Elliott:male,Mark:male,Marian:female,Molly:female",
}


def test_stated_facts_find_the_swapped_paraphrase(tmp_path):
    from kgreason.data.clutrr import stated_facts

    agree, swapped = (r.example for r in read_clutrr_file(write_csv(tmp_path / "t.csv", [ROW, SWAPPED])))
    assert stated_facts(agree).contradicted == [] and stated_facts(agree).facts == agree.facts
    stated = stated_facts(swapped)
    assert stated.contradicted == [0]
    # the text says Elliott is Mark's son: Mark is Elliott's father
    assert stated.facts == [("Elliott", "father", "Mark"), *swapped.facts[1:]]


def test_stated_facts_on_the_real_test_set(clutrr):
    from kgreason.data.clutrr import stated_facts

    by_depth = Counter(e.metadata["depth"] for e in clutrr.test if stated_facts(e).contradicted)
    # counted once by hand-checked templates ("X went to dinner with her daughter X", 48 facts; ...)
    assert sum(len(stated_facts(e).contradicted) for e in clutrr.test) == 207
    assert by_depth[2] == 0 and by_depth[10] == 33
    assert sum(bool(stated_facts(e).contradicted) for e in clutrr.train[:2000]) < 100
