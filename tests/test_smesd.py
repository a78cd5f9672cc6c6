"""SMEsD reader on the real pickles (counts from SOURCES.md section 6c) and the restricted unpickler."""

from __future__ import annotations

import os
import pickle
import time

import numpy as np
import pytest

from kgreason.finance.errors import FinanceDataError
from kgreason.finance.graph import COMPANY, INDUSTRY, NODE_KINDS, PERSON, REGION
from kgreason.finance.ontology import load_ontology
from kgreason.finance.smesd import CAUSES, EDGE_TYPES, read_smesd, safe_unpickle


@pytest.fixture(scope="module")
def smesd(shared_data):
    folder = shared_data / "smesd"
    if not (folder / "train_data.pkl").is_file():
        pytest.skip("SMEsD not in the data folder")
    start = time.perf_counter()
    graph = read_smesd(folder)
    graph.metadata["test_load_seconds"] = time.perf_counter() - start
    return graph


# ------------------------------------------------------------------------------------------ safe unpickle
class _Boom:
    def __reduce__(self):
        return (os.system, ("touch should-not-exist",))


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        (pickle.dumps(os.system, protocol=0), "system"),  # GLOBAL opcode
        (pickle.dumps(os.system, protocol=4), "system"),  # STACK_GLOBAL
        (pickle.dumps(_Boom(), protocol=2), "system"),  # REDUCE on a global
        (pickle.dumps(np.arange(3)), "numpy"),  # even "harmless" library objects
    ],
)
def test_safe_unpickle_refuses_globals(tmp_path, monkeypatch, payload, name):
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pickle.UnpicklingError, match=f"refusing to load global .*{name}"):
        safe_unpickle(path)
    assert not (tmp_path / "should-not-exist").exists()


def test_safe_unpickle_reads_plain_values(tmp_path):
    value = [
        {3: [[0, 1, 2, 40, 0]]},
        [[1.5, 1.0, 20]],
        {"industry": {"x": [3]}},
        [1, 0],
        "text",
        (1, 2),
        None,
    ]
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(value, protocol=4))
    assert safe_unpickle(path) == value


def test_read_smesd_refuses_a_poisoned_split(shared_data, tmp_path):
    source = shared_data / "smesd"
    if not (source / "train_data.pkl").is_file():
        pytest.skip("SMEsD not in the data folder")
    for name in ("split_data_idx.pkl", "validate_data.pkl", "test_data.pkl"):
        (tmp_path / name).symlink_to(source / name)
    (tmp_path / "train_data.pkl").write_bytes(pickle.dumps(os.system))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        read_smesd(tmp_path)
    (tmp_path / "train_data.pkl").unlink()
    with pytest.raises(FinanceDataError, match=r"train_data.pkl: file not found"):
        read_smesd(tmp_path)


# ----------------------------------------------------------------------------------------------- counts
def test_per_file_counts_match_sources(smesd):
    files = smesd.metadata["files"]
    assert files["train"] == {
        "companies": 2816,
        "bankrupt": 1621,
        "survived": 1195,
        "with_lawsuits": 1191,
        "edges": 18576,
    }
    assert (files["dev"]["companies"], files["dev"]["bankrupt"], files["dev"]["survived"]) == (721, 354, 367)
    assert (files["test"]["companies"], files["test"]["bankrupt"], files["test"]["survived"]) == (
        491,
        318,
        173,
    )
    assert (files["dev"]["edges"], files["test"]["edges"]) == (4554, 3556)


def test_companies_splits_and_overlap(smesd):
    assert smesd.num_companies == 3976
    assert smesd.company_ids()[:2] == ["c0", "c1"] and smesd.company_ids()[-1] == "c3975"
    overlap = smesd.metadata["overlap"]
    assert (
        overlap["extra_appearances"] == 52
        and overlap["companies"] == 51
        and overlap["conflicting_records"] == 0
    )
    # earliest split wins: train keeps all 2,816; dev and test lose what an earlier file already holds
    assert smesd.metadata["split_counts"] == {"train": 2816, "dev": 686, "test": 474}
    assert (
        len(smesd.rows("train")) == 2816 and len(smesd.rows("dev")) + len(smesd.rows("test")) == 3976 - 2816
    )
    train = smesd.rows("train")
    assert int((smesd.labels[train] == 1).sum()) == 1621 and int((smesd.labels[train] == 0).sum()) == 1195
    assert set(np.unique(smesd.labels).tolist()) == {0, 1}
    split_lists = safe_unpickle(smesd.metadata["path"] + "/split_data_idx.pkl")
    assert [len(x) for x in split_lists] == [2816, 721, 491]
    dev_only = set(split_lists[1]) - set(split_lists[0])
    assert {int(smesd.company_ids()[r][1:]) for r in smesd.rows("dev")} == dev_only


def test_nodes_relations_and_edges(smesd):
    kinds = np.bincount(smesd.kinds, minlength=4)
    assert kinds[COMPANY] == 3976 and kinds[PERSON] == 2402 == smesd.metadata["persons"]
    assert kinds[REGION] == 173
    assert smesd.relations[:20] == list(EDGE_TYPES) and len(smesd.metadata["edge_types"]) == 20
    assert smesd.relations[20:] == ["inIndustry", "inRegion", "hasQualification"]
    counts = smesd.summary()["relations"]
    assert all(counts[name] > 0 for name in EDGE_TYPES)
    assert sum(counts[name] for name in EDGE_TYPES) == smesd.metadata["distinct_edges"] == 25952
    for forward, backward in (("supervise", "supervised"), ("invest_CC", "invested_CC"), ("loan", "loaned")):
        assert {tuple(p) for p in smesd.edges_of(forward).tolist()} == {
            (t, h) for h, t in smesd.edges_of(backward).tolist()
        }
    person = smesd.edges_of("invest_CP")
    assert np.all(smesd.kinds[person[:, 0]] == PERSON) and np.all(smesd.kinds[person[:, 1]] == COMPANY)
    assert smesd.nodes[int(person[0, 0])].startswith("p")
    onto = load_ontology()
    for r, name in enumerate(smesd.relations):  # every edge fits the ontology
        rows = smesd.edges[smesd.edges[:, 1] == r]
        pairs = {(int(smesd.kinds[h]), int(smesd.kinds[t])) for h, _, t in rows.tolist()}
        for h, t in pairs:
            assert onto.check_edge(name, NODE_KINDS[h], NODE_KINDS[t]) is None
    # every company has one region; all but the two of industry '-' one industry
    assert np.bincount(smesd.edges_of("inRegion")[:, 0], minlength=3976).tolist() == [1] * 3976
    per_industry = np.bincount(smesd.edges_of("inIndustry")[:, 0], minlength=3976)
    assert (
        set(per_industry.tolist()) == {0, 1}
        and int((per_industry == 0).sum()) == smesd.metadata["industry_missing"] == 2
    )
    assert "industry:电力、热力生产和供应业" in smesd.node_index()  # fragments joined back
    groups = smesd.edges_of("hasQualification")
    assert np.all(smesd.kinds[groups[:, 1]] == INDUSTRY)
    assert all(smesd.nodes[int(g)].startswith("qualify:p") for g in groups[:5, 1])
    assert smesd.edge_weight.dtype == np.float32 and smesd.edge_weight.shape == (smesd.edges.shape[0],)


def test_features_and_lawsuits(smesd):
    rows = smesd.company_rows()
    names = smesd.feature_names
    assert names[:7] == [
        "registered_capital",
        "paid_in_capital",
        "months_since_setup",
        "lawsuits",
        "lawsuits_defendant",
        "lawsuits_lost",
        "lawsuits_lost_defendant",
    ]
    assert len(names) == 7 + len(CAUSES) == 18
    # the first train company (index 188) has attributes [1080, 1080, 175]
    assert smesd.features[rows["c188"], :3].tolist() == [1080.0, 1080.0, 175.0]
    # company 499: 17 lawsuits, the first a loan-contract case lost as defendant 54 months before
    suits = smesd.lawsuits[rows["c499"]]
    assert len(suits) == 17
    first = suits[0]
    assert (first.role, first.cause, first.court, first.outcome, first.months_before) == (
        "defendant",
        "loan contract",
        "grassroots",
        "lost",
        54,
    )
    row = smesd.features[rows["c499"]]
    assert row[names.index("lawsuits")] == 17 and row[names.index("cause_loan")] == 17
    assert row[names.index("lawsuits_lost_defendant")] == 15  # two results are 'defendant won'
    raw = [safe_unpickle(f"{smesd.metadata['path']}/{f}_data.pkl")[0] for f in ("train", "validate", "test")]
    with_suits = {f"c{idx}" for part in raw for idx, records in part.items() if records}
    assert {key for key, row in rows.items() if smesd.lawsuits[row]} == with_suits
    assert sum(len(s) for s in smesd.lawsuits) == sum(
        len(raw_records)
        for raw_records in {idx: records for part in reversed(raw) for idx, records in part.items()}.values()
    )
    assert np.all(smesd.features[:, 3:] >= 0) and not np.isnan(smesd.features).any()
    assert smesd.monotone == {"lawsuits_defendant": 1, "lawsuits_lost_defendant": 1}
    assert smesd.texts == [[]] * 3976 and not smesd.periods.any()


def test_metadata_and_speed(smesd):
    meta = smesd.metadata
    assert "Wei" in meta["citation"] and "10.1016/j.ins.2023.120081" in meta["citation"]
    assert "earliest" in meta["overlap"]["policy"]
    assert meta["edge_type_relations"]["invested_CC"] == {"relation": "owns", "inverse": False}
    assert meta["test_load_seconds"] < 10  # about 0.5 s on 2 cores


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (pickle.dumps(os.system), "refusing to load global"),
        (pickle.dumps({"a": [1, 2, 3]})[:-4], "not a readable pickle"),
        (b"not a pickle at all", "not a readable pickle"),
    ],
)
def test_safe_unpickle_errors_are_ours_and_name_the_file(tmp_path, payload, detail):
    """The CLI prints one line for KGReasonError; a refused or damaged pickle must be one, naming the file."""
    from kgreason.core.errors import KGReasonError

    path = tmp_path / "train_data.pkl"
    path.write_bytes(payload)
    with pytest.raises(KGReasonError, match=rf"train_data\.pkl: .*{detail}") as caught:
        safe_unpickle(path)
    assert isinstance(caught.value, pickle.UnpicklingError)  # still what callers caught before
