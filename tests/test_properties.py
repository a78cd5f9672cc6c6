"""Property-based tests: the rule parser and config overrides raise only kgreason's own errors, and fast."""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kgreason.core.config import RetrieveConfig, apply_overrides, build_config, load_config, parse_override
from kgreason.core.errors import KGReasonError
from kgreason.rules.language import RuleSet, RuleSyntaxError, parse_rules
from kgreason.runs.config import ExperimentConfig

#: Each example must finish within this bound: generous (a shared, loaded machine must not make the tests
#: flaky), but far below what a parser that backtracks exponentially or hangs would take.
BOUND_S = 2.0
#: Each property runs this many examples (a few seconds per test in all).
QUICK = settings(
    max_examples=150,
    deadline=timedelta(seconds=BOUND_S),
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module", autouse=True)
def _warm_imports():
    """Import once what a first check imports (torch for device names), so the time bounds measure the checks."""
    load_config(RetrieveConfig, None, ["encoder.device=cpu"])


# ------------------------------------------------------------------------------------------------- rules

#: Pieces of the rule language, so that generated text often gets deep into the parser and the checks.
RULE_PIECES = [
    "type",
    "pred",
    "exclusive",
    "false",
    "person",
    "p",
    "q",
    "r",
    "X",
    "Y",
    "_",
    "a",
    "b",
    "1",
    '"s t"',
    "'u'",
    "(",
    ")",
    ",",
    ".",
    ":-",
    "!=",
    " ",
    "\n",
    "% c\n",
    "\ufeff",
]
rule_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(RULE_PIECES), max_size=40).map(" ".join),
    st.lists(st.sampled_from(RULE_PIECES), max_size=40).map("".join),
)


@QUICK
@given(rule_text)
@example("type p.\npred m(p, p).\nm(X, Y) :- m(X, Y), X != X.\n")
@example("type p. pred m(p). exclusive m.")
@example("type p. type p.")
@example(":- X != Y.")
@example("false.")
@example("type")
@example("\ufeff")
def test_the_rule_parser_raises_only_rule_syntax_errors(text):
    start = time.perf_counter()
    try:
        rules = parse_rules(text, path="gen.rules")
    except RuleSyntaxError as err:
        assert str(err).startswith("gen.rules")
        assert err.line is None or err.line >= 1
    else:
        assert isinstance(rules, RuleSet)
        for rule in (*rules.rules, *rules.denials):
            str(rule)  # every parsed rule prints
    assert time.perf_counter() - start < BOUND_S


@st.composite
def well_formed_rules(draw) -> str:
    """A small valid theory: declarations, then rules over declared predicates."""
    preds = draw(st.lists(st.sampled_from(["p", "q", "r", "s"]), min_size=2, max_size=4, unique=True))
    lines = ["type t.", "pred " + ", ".join(f"{p}(t, t)" for p in preds) + "."]
    for _ in range(draw(st.integers(0, 5))):
        head, *body = draw(st.lists(st.sampled_from(preds), min_size=2, max_size=3))
        atoms = [f"{b}(X{i}, X{i + 1})" for i, b in enumerate(body)]
        lines.append(f"{head}(X0, X{len(body)}) :- {', '.join(atoms)}.")
    lines.append(f"exclusive {', '.join(preds[:2])}.")
    return "\n".join(lines) + "\n"


@QUICK
@given(well_formed_rules())
def test_well_formed_rules_parse_and_print_back(text):
    rules = parse_rules(text)
    again = parse_rules(
        "type t.\npred "
        + ", ".join(f"{p}(t, t)" for p in rules.predicates)
        + ".\n"
        + "\n".join(str(r) for r in rules.rules)
    )
    assert [str(r) for r in again.rules] == [str(r) for r in rules.rules]


# ------------------------------------------------------------------------------------------------ config

KEYS = [
    "kb.source",
    "kb.format",
    "encoder.model",
    "encoder.batch_size",
    "encoder.max_length",
    "encoder.device",
    "retrieval.hops",
    "retrieval.max_nodes",
    "retrieval.min_link_score",
    "retrieval.top_k",
    "retrieval.facts",
    "retrieval.index_type",
    "retrieval",
    "kb",
    "retrieval.hops.x",
    "",
    ".",
]
VALUES = [
    "1",
    "-1",
    "0",
    "2.5",
    "1e400",
    "nan",
    ".inf",
    "true",
    "null",
    "~",
    "[1, 2]",
    "{a: 1}",
    "cpu",
    "cuda:0",
    "auto",
    "flat",
    "2020-13-45",
    "2001-12-14t21:59:43.10-05:00",
    "!!python/object:os.system {}",
    "!!binary aGk=",
    "!!set {a, b}",
    "&a [*a]",
    "[" * 200,
    "'unclosed",
    "99999999999999999999999",
    "\x00",
    "~nosuchuser-kgreason/kb.ttl",
    "~/kb.ttl",
]
override = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(KEYS) | st.text(max_size=12),
        st.sampled_from(VALUES) | st.text(max_size=20),
    ),
)


def _only_our_errors(fn, *args):
    start = time.perf_counter()
    with contextlib.suppress(KGReasonError):
        fn(*args)
    assert time.perf_counter() - start < BOUND_S


@QUICK
@given(st.lists(override, max_size=4))
@example(["retrieval.hops=2020-13-45"])
@example(["encoder.device=\x00"])
@example(["kb.source=\x00"])
@example(["kb.source=~nosuchuser-kgreason/x.ttl"])
@example(["retrieval.hops=" + "[" * 200])
def test_overrides_raise_only_config_errors(items):
    if items:
        _only_our_errors(parse_override, items[0])
    _only_our_errors(load_config, RetrieveConfig, None, items)


@QUICK
@given(st.lists(override, max_size=4))
def test_experiment_overrides_raise_only_config_errors(items):
    _only_our_errors(load_config, ExperimentConfig, None, items)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
sections = st.dictionaries(
    st.sampled_from(["name", "task", "data", "knowledge", "model", "trainer", "output_dir", "x"]),
    json_like
    | st.dictionaries(
        st.sampled_from(
            ["dataset", "max_train", "kb", "seed", "variant", "max_length", "peft", "gnn", "rules"]
        ),
        json_like,
        max_size=3,
    ),
    max_size=4,
)


@QUICK
@given(sections)
def test_any_nested_data_builds_or_raises_a_config_error(data):
    _only_our_errors(build_config, ExperimentConfig, data)


@QUICK
@given(st.text(max_size=200))
@example("a: !!python/object/apply:os.system [echo]")
@example("a: 2020-13-45")
@example("- [")
def test_any_yaml_text_loads_or_raises_a_config_error(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "prop.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _only_our_errors(load_config, RetrieveConfig, path)


def test_overrides_of_every_key_round_trip():
    cfg = load_config(RetrieveConfig, None, ["retrieval.hops=0", "retrieval.top_k=1", "encoder.model=x"])
    assert (cfg.retrieval.hops, cfg.retrieval.top_k, cfg.encoder.model) == (0, 1, "x")
    assert apply_overrides({"a": 1}, ["a.b=2"]) == {"a": {"b": 2}}
    with pytest.raises(KGReasonError):
        build_config(RetrieveConfig, {"retrieval": {"hops": True}})


story_words = st.lists(
    st.sampled_from(
        ["Ann", "Bob", "his", "her", "son", "mother", "sister", "of", "the", "is", "and", ",", "["]
    ),
    max_size=12,
).map(" ".join)


@settings(max_examples=80, deadline=None)
@given(st.one_of(st.text(max_size=120), story_words), st.sampled_from(["son", "mother", "sister", "husband"]))
@example("Bob and his son Ann went out", "son")
def test_stated_facts_any_sentence(sentence, relation):
    """Whatever the sentence says, one stated fact per gold fact, and a replaced one is the inverse family."""
    from kgreason.core.example import Example
    from kgreason.data.clutrr import stated_facts
    from kgreason.rules.kinship import FAMILY_INVERSE, RELATION_FAMILY

    example = Example(
        text=sentence,
        label="son",
        facts=[("Ann", relation, "Bob")],
        metadata={
            "sentences": [sentence],
            "fact_sentences": [0],
            "genders": {"Ann": "female", "Bob": "male"},
        },
    )
    stated = stated_facts(example)
    assert len(stated.facts) == 1
    head, read, tail = stated.facts[0]
    assert (head, tail) == ("Ann", "Bob")
    if stated.contradicted:
        assert RELATION_FAMILY[read][0] == FAMILY_INVERSE[RELATION_FAMILY[relation][0]]
    else:
        assert read == relation
