"""The company-graph generator and the interventional truth of its structural default model."""

from __future__ import annotations

import json
import re

import networkx as nx
import numpy as np
import pytest

from kgreason.core.errors import ConfigError
from kgreason.data.errors import DatasetNotFoundError
from kgreason.finance.causal import (
    CausalParams,
    _ball,
    _in_csr,
    default_probabilities,
    interventional_default_probability,
    simulate_defaults,
    true_contagion_effect,
)
from kgreason.finance.generator import (
    FEATURE_NAMES,
    RELATIONS,
    GeneratorConfig,
    generate_company_graph,
    load_text_pool,
    read_company_generator,
)
from kgreason.finance.graph import COMPANY, INDUSTRY, PERSON, REGION

SMALL = {"num_companies": 1200, "num_groups": 280, "truth_samples": 0}


@pytest.fixture(scope="module")
def builtin(tmp_path_factory):
    """A 1,200-company graph whose texts come from the built-in pool (the data folder is empty)."""
    empty = tmp_path_factory.mktemp("no-data")
    return generate_company_graph(GeneratorConfig(**SMALL, data_dir=str(empty)))


@pytest.fixture(scope="module")
def default(shared_data):
    """The default 3,000-company graph (PhraseBank texts, true effects in the metadata)."""
    return generate_company_graph(GeneratorConfig(data_dir=str(shared_data)))


def test_config_is_validated():
    for bad in (
        {"num_companies": 1},
        {"num_groups": 0},
        {"num_industries": 99},
        {"train_last_year": 2020, "dev_last_year": 2019},
        {"text_pool": "tweets"},
        {"sentences_min": 3, "sentences_max": 2},
        {"phrasebank_agreement": "90"},
    ):
        with pytest.raises(ConfigError):
            GeneratorConfig(**bad)
    with pytest.raises(ConfigError, match="guarantee"):
        CausalParams(guarantee=1.5)
    with pytest.raises(ConfigError, match="coefficients"):
        CausalParams(coefficients={"leverage": 1.0})
    with pytest.raises(TypeError):
        GeneratorConfig(3000)  # keyword-only


def test_deterministic_for_a_seed(builtin, tmp_path):
    config = GeneratorConfig(**SMALL, data_dir=str(tmp_path))
    again = generate_company_graph(config).graph
    first = builtin.graph
    assert again.nodes == first.nodes
    np.testing.assert_array_equal(again.edges, first.edges)
    np.testing.assert_array_equal(again.edge_weight, first.edge_weight)
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.labels, first.labels)
    assert again.texts == first.texts and again.lawsuits == first.lawsuits
    other = generate_company_graph(GeneratorConfig(**{**SMALL, "seed": 1}, data_dir=str(tmp_path))).graph
    assert not np.array_equal(other.labels, first.labels)


def test_schema_nodes_and_relations(builtin):
    graph = builtin.graph.validate()
    assert graph.relations == list(RELATIONS)
    assert graph.feature_names == list(FEATURE_NAMES)
    assert graph.monotone == {"lawsuits_lost_defendant": 1, "leverage": 1}
    patterns = {COMPANY: r"C\d{5}", PERSON: r"P\d{5}", INDUSTRY: r"IND:[a-z_]+", REGION: r"REG:[a-z_]+"}
    for key, kind in zip(graph.nodes, graph.kinds.tolist(), strict=True):
        assert re.fullmatch(patterns[kind], key), key
    assert (graph.kinds == INDUSTRY).sum() == 10 and (graph.kinds == REGION).sum() == 8
    ends = {
        "owns": ({PERSON, COMPANY}, {COMPANY}),
        "guarantees": ({COMPANY}, {COMPANY}),
        "supplies": ({COMPANY}, {COMPANY}),
        "legalRepresentativeOf": ({PERSON}, {COMPANY}),
        "executiveOf": ({PERSON}, {COMPANY}),
        "inIndustry": ({COMPANY}, {INDUSTRY}),
        "inRegion": ({COMPANY}, {REGION}),
    }
    for relation, (heads, tails) in ends.items():
        pairs = graph.edges_of(relation)
        assert len(pairs), relation
        assert set(graph.kinds[pairs[:, 0]].tolist()) <= heads, relation
        assert set(graph.kinds[pairs[:, 1]].tolist()) <= tails, relation
        assert not np.any(pairs[:, 0] == pairs[:, 1]), relation
    for relation, end in (("legalRepresentativeOf", 1), ("inIndustry", 0), ("inRegion", 0)):
        per_company = np.bincount(graph.edges_of(relation)[:, end], minlength=graph.num_companies)
        assert np.all(per_company[: graph.num_companies] == 1), relation  # exactly one per company
    assert set(np.unique(graph.labels).tolist()) == {0, 1}
    # in the generated graph company row r is node r, so do() keys are both
    np.testing.assert_array_equal(graph.companies, np.arange(graph.num_companies))
    # lawsuit counts are the lawsuits' own counts
    row = next(r for r, suits in enumerate(graph.lawsuits) if len(suits) >= 2)
    assert graph.features[row, FEATURE_NAMES.index("lawsuits")] == len(graph.lawsuits[row])


def test_ownership_has_no_cycles_and_one_corporate_parent(builtin):
    graph = builtin.graph
    owns = graph.edges_of("owns")
    assert nx.is_directed_acyclic_graph(nx.DiGraph(owns.tolist()))
    corporate = owns[graph.kinds[owns[:, 0]] == COMPANY]
    assert np.bincount(corporate[:, 1]).max() == 1  # trees: at most one parent company
    weights = graph.edge_weight[graph.edges[:, 1] == graph.relation_id("owns")]
    assert weights.min() > 0 and weights.max() <= 1


def test_splits_follow_years(builtin):
    graph = builtin.graph
    assert graph.periods.min() >= 2014 and graph.periods.max() <= 2021
    expected = np.where(graph.periods <= 2018, "train", np.where(graph.periods == 2019, "dev", "test"))
    np.testing.assert_array_equal(graph.splits.astype(str), expected)
    assert all(len(graph.rows(split)) > 50 for split in ("train", "dev", "test"))


def test_default_rate_metadata_and_drift(builtin):
    graph, world = builtin.graph, builtin.world
    rate = graph.labels.mean()
    assert 0.15 <= rate <= 0.30
    meta = json.loads(json.dumps(graph.metadata, allow_nan=False))  # JSON-serializable
    assert meta["causal_params"]["intercept"] == pytest.approx(world.params.intercept)
    assert meta["defaults_by_round"]["1"] > 0  # contagion happens
    np.testing.assert_array_equal(world.defaults.astype(np.int8), graph.labels)
    # the model's expected rate matches the calibration target
    assert default_probabilities(world, samples=400).mean() == pytest.approx(0.2, abs=0.02)
    # fundamentals drift: leverage's population stability index between train and test is clearly non-zero
    lev = graph.features[:, FEATURE_NAMES.index("leverage")].astype(float)
    train, test = lev[graph.rows("train")], lev[graph.rows("test")]
    cuts = np.quantile(train, np.linspace(0, 1, 11)[1:-1])
    e = np.bincount(np.searchsorted(cuts, train), minlength=10) / len(train)
    a = np.bincount(np.searchsorted(cuts, test), minlength=10) / len(test)
    assert np.sum((a - e) * np.log(a / e)) > 0.05


def test_builtin_pool_without_phrasebank(builtin, tmp_path):
    pool = load_text_pool(GeneratorConfig(data_dir=str(tmp_path)))
    assert builtin.graph.metadata["text_pool"]["text_pool"] == "builtin"
    known = {s for sentences in pool.sentences.values() for s in sentences}
    texts = [s for t in builtin.graph.texts for s in t]
    assert texts and set(texts) <= known
    assert max(len(t) for t in builtin.graph.texts) == 5 and min(len(t) for t in builtin.graph.texts) == 0
    with pytest.raises(DatasetNotFoundError):
        load_text_pool(GeneratorConfig(data_dir=str(tmp_path), text_pool="phrasebank"))


def test_shock_drives_text_sentiment(builtin, tmp_path):
    pool = load_text_pool(GeneratorConfig(data_dir=str(tmp_path)))
    label_of = {s: label for label, sentences in pool.sentences.items() for s in sentences}
    shock = builtin.world.shock

    def negative_share(rows):
        labels = [label_of[s] for r in rows for s in builtin.graph.texts[r]]
        return sum(label == "negative" for label in labels) / len(labels)

    assert negative_share(np.flatnonzero(shock > 1)) > negative_share(np.flatnonzero(shock < -1)) + 0.4


def test_texts_come_from_phrasebank(default, shared_data):
    meta = default.graph.metadata["text_pool"]
    assert meta["text_pool"] == "phrasebank"
    lines = (shared_data / "financial_phrasebank" / "Sentences_75Agree.txt").read_bytes().decode("latin-1")
    sentence = next(s for t in default.graph.texts for s in t)
    assert f"{sentence}@" in lines  # a real PhraseBank line
    assert default.graph.num_companies == 3000
    json.dumps(default.graph.metadata, allow_nan=False)
    truth = default.graph.metadata["true_effects"]["guarantees"]
    assert truth["average_effect"] > truth["average_closed_form"] * 0.95 > 0.2


def _direct_pair(world):
    """A guarantor i and the company j it guarantees, where j reaches i only through that guarantee."""
    order, ptr = _in_csr(world)
    for e in np.flatnonzero(world.exposure_channel == 0).tolist():
        i, j = int(world.exposure_target[e]), int(world.exposure_source[e])
        if j not in _ball(i, world.params.rounds, order, ptr, world.exposure_source, e):
            far = next(
                k
                for k in range(world.num_companies)
                if k not in _ball(i, world.params.rounds, order, ptr, world.exposure_source, -1)
            )
            return i, j, far
    raise AssertionError("no direct-only guarantee pair")


def test_interventional_truth_matches_closed_form(builtin):
    world = builtin.world
    i, j, far = _direct_pair(world)
    samples = 4000
    p1 = interventional_default_probability(world, i, do={j: 1}, samples=samples, seed=3)
    p0 = interventional_default_probability(world, i, do={j: 0}, samples=samples, seed=3)
    effect, closed = p1 - p0, (1 - p0) * world.params.guarantee
    se = np.sqrt(effect * (1 - effect) / samples)  # common random numbers: per-sample effect is 0 / 1
    assert effect > 0.1
    assert abs(effect - closed) < 4 * se + 0.005
    # a company that cannot reach i within the contagion rounds has no effect at all (same draws)
    q1 = interventional_default_probability(world, i, do={far: 1}, samples=samples, seed=3)
    q0 = interventional_default_probability(world, i, do={far: 0}, samples=samples, seed=3)
    assert q1 == q0
    # and on fresh draws only Monte Carlo noise is left
    q1 = interventional_default_probability(world, i, do={far: 1}, samples=samples, seed=4)
    assert abs(q1 - q0) < 4 * np.sqrt(q0 * (1 - q0) * 2 / samples) + 0.005
    with pytest.raises(ValueError, match="0 or 1"):
        interventional_default_probability(world, i, do={j: 2})
    with pytest.raises(IndexError):
        interventional_default_probability(world, i, do={10**6: 1})


def test_true_contagion_effect(builtin):
    world = builtin.world
    truth = true_contagion_effect(world, "guarantees", samples=800, seed=1)
    assert truth.num_pairs == len(builtin.graph.edges_of("guarantees"))
    direct = truth.direct_only
    assert direct.sum() > 50 and (~direct).sum() > 10
    # direct-only pairs: the effect is the closed form; other routes only add to it
    assert truth.effects[direct].mean() == pytest.approx(truth.closed_form[direct].mean(), abs=0.01)
    assert truth.effects[~direct].mean() > truth.closed_form[~direct].mean() - 0.01
    assert 0.2 < truth.average_effect < 0.35 and truth.stderr < 0.01
    assert set(truth.by_company()) == set(truth.exposed.tolist())
    json.dumps(truth.to_dict())
    # the stacked-neighbourhood simulation agrees with a whole-graph simulation of one pair (not direct-only)
    k = int(np.flatnonzero(~direct)[0])
    i, j = int(truth.exposed[k]), int(truth.sources[k])
    p1 = interventional_default_probability(world, i, do={j: 1}, samples=4000, seed=5)
    p0 = interventional_default_probability(world, i, do={j: 0}, samples=4000, seed=5)
    assert truth.p_default[k] == pytest.approx(p1, abs=4 * np.sqrt(p1 * (1 - p1) / 800) + 0.01)
    assert truth.p_survive[k] == pytest.approx(p0, abs=4 * np.sqrt(p0 * (1 - p0) / 800) + 0.01)
    supply = true_contagion_effect(world, "supplies", samples=300, max_pairs=100)
    assert supply.num_pairs == 100 and supply.channel == "customer"
    assert 0 < supply.average_effect < truth.average_effect
    with pytest.raises(ValueError, match="unknown relation"):
        true_contagion_effect(world, "inRegion")


def test_world_interventions_on_features_and_edges(builtin):
    world = builtin.world
    i, j, _ = _direct_pair(world)
    base = interventional_default_probability(world, i, samples=2000, seed=2)
    riskier = world.with_feature(i, "leverage", 1.5)
    assert interventional_default_probability(riskier, i, samples=2000, seed=2) > base
    assert riskier.logit[i] > world.logit[i] and np.array_equal(
        np.delete(riskier.logit, i), np.delete(world.logit, i)
    )
    cut = world.without_edges(
        world.exposure_edge[(world.exposure_target == i) & (world.exposure_source == j)]
    )
    assert interventional_default_probability(cut, i, do={j: 1}, samples=2000, seed=2) == pytest.approx(
        interventional_default_probability(cut, i, do={j: 0}, samples=2000, seed=2)
    )
    with pytest.raises(KeyError):
        world.with_feature(i, "lawsuits", 3)
    draws = simulate_defaults(world, samples=16, seed=0, do={j: 1})
    assert draws.shape == (16, world.num_companies) and draws[:, j].all()


def test_text_carries_signal_beyond_the_table(builtin):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    graph, world = builtin.graph, builtin.world
    x = graph.features.astype(float)
    train, test = graph.rows("train"), np.r_[graph.rows("dev"), graph.rows("test")]

    def auc(features):
        mean, std = features[train].mean(0), features[train].std(0) + 1e-9
        model = LogisticRegression(max_iter=500).fit((features[train] - mean) / std, graph.labels[train])
        return roc_auc_score(graph.labels[test], model.predict_proba((features[test] - mean) / std)[:, 1])

    tabular = auc(x)
    assert tabular > 0.62
    assert auc(np.c_[x, world.shock]) > tabular + 0.01


def test_read_company_generator(tmp_path):
    graph = read_company_generator(
        data_dir=tmp_path, num_companies=200, num_groups=50, truth_samples=50, seed=4
    )
    assert graph.num_companies == 200 and graph.name == "company-generator"
    assert graph.metadata["config"]["data_dir"] == str(tmp_path)
    assert set(graph.metadata["true_effects"]) == {"guarantees", "owns", "supplies"}
