"""Rule language, vectorised forward chaining, materialisation, the CLI, and the kinship rules on CLUTRR."""

from __future__ import annotations

import ast
import csv
import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kgreason.cli.rules import rules_app
from kgreason.rules import (
    KINSHIP_LABELS,
    RuleEvaluationError,
    RuleSet,
    RuleSyntaxError,
    Variable,
    answer,
    answers,
    facts_from_triples,
    forward_chain,
    kinship_rules,
    load_rules,
    materialize,
    parse_rules,
)

FAMILY = """\
% a small family theory
type person.   # the only type
pred mother(person, person), father(person, person), parent(person, person).
pred grandmother(person, person), sibling(person, person), male(person), female(person).
parent(X, Y) :- mother(X, Y).
parent(X, Y) :- father(X, Y).
grandmother(X, Z) :- parent(X, Y), mother(Y, Z).
sibling(X, Z) :- parent(X, Y), parent(Z, Y), X != Z.
female(Y) :- mother(X, Y).
false :- male(X), female(X).
exclusive mother, father.
mother(ann, bea).
"""


def write(tmp_path: Path, text: str, name: str = "family.rules") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- language


def test_parse_family(tmp_path):
    rules = load_rules(write(tmp_path, FAMILY))
    assert rules.predicates["mother"] == ("person", "person")
    assert rules.types == ("person",)
    assert rules.summary() == {
        "types": 1,
        "predicates": 7,
        "rules": 5,
        "facts": 1,
        "denials": 2,
        "exclusive_groups": 1,
    }
    gm = next(r for r in rules.rules if r.head and r.head.predicate == "grandmother")
    assert gm.line == 7 and gm.source == "family.rules"
    assert [a.predicate for a in gm.body] == ["parent", "mother"]
    assert gm.body[0].args == (Variable("X"), Variable("Y"))
    sib = next(r for r in rules.rules if r.head and r.head.predicate == "sibling")
    assert sib.inequalities == ((Variable("X"), Variable("Z")),)
    excl = rules.denials[-1]
    assert excl.head is None and [a.predicate for a in excl.body] == ["mother", "father"]
    assert str(gm) == "grandmother(X, Z) :- parent(X, Y), mother(Y, Z)."


def test_relation_names_map_underscore_and_hyphen():
    assert RuleSet.predicate_for("daughter-in-law") == "daughter_in_law"
    assert RuleSet.relation_name("son_in_law") == "son-in-law"


def test_quoted_constants_and_colon_dash_denial():
    rules = parse_rules(
        'type t. pred p(t, t), q(t).\np("New York", x1).\nq(X) :- p(X, _).\n:- q(X), p(X, "a b").\n'
    )
    assert rules.rules[0].head.args == ("New York", "x1")
    assert len(rules.denials) == 1
    closure = forward_chain(rules)
    assert closure.holds("q", ("New York",))


@pytest.mark.parametrize(
    ("text", "line", "column", "needle"),
    [
        # unclosed argument list: the error points at ':-'
        (
            "type p.\npred m(p, p).\nm(X, Z :- m(X, Y).\n",
            3,
            8,
            "expected ')' or ',' after argument, got ':-'",
        ),
        ("type p.\npred m(p, p).\nm(X, Y) :- m(X, Y)\n", 4, 1, "expected ',' or '.' after a body literal"),
        ("type p.\npred m(p, p).\nm(X, Y) :- n(X, Y).\n", 3, 12, "undeclared predicate 'n'"),
        ("type p.\npred m(p, p).\nm(X, Y) :- m(X).\n", 3, 12, "arity mismatch"),
        ("type p.\npred m(p, q).\n", 2, 11, "unknown type 'q'"),
        ("type p, c.\npred m(p, p), k(c).\nm(X, Y) :- m(X, Y), k(Y).\n", 3, 21, "type mismatch: variable Y"),
        ("type p.\npred m(p, p).\nm(X, Z) :- m(X, Y).\n", 3, 1, "head variable Z"),
        ("type p.\npred m(p, p).\nm(X, y) :- m(X, Y), X = Y.\n", 3, 23, "got '='"),
        ("type p.\npred m(p, p).\nm(a, B).\n", 3, 1, "a fact must be ground"),
        ("type p.\npred m(p, p).\nm(a, @).\n", 3, 6, "got '@'"),
        ('type p.\npred m(p, p).\nm(a, "b).\n', 3, 6, 'expected closing "'),
        ("type p.\npred m(p, p), k(p).\nexclusive m, k.\n", 3, 1, "same argument types"),
        # rules that cannot mean anything
        ("type p.\npred m(p, p).\nm(X, Y) :- m(X, Y), X != X.\n", 3, 21, "X != X can never hold"),
        ("type p.\npred m(p, p).\nm(X, Y) :- m(X, Y), a != a.\n", 3, 21, "a != a can never hold"),
        ("type p.\npred m(p, p).\nexclusive m.\n", 3, 1, "at least two different predicates"),
        ("type p.\npred m(p, p).\nexclusive m, m.\n", 3, 1, "at least two different predicates"),
        ("type p.\ntype q, p.\n", 2, 9, "type 'p' is declared again (first at line 1)"),
        ("type p, p.\n", 1, 9, "type 'p' is declared again (first at line 1)"),
        ("type p.\npred m(p, p).\nm(X, Y) :- m(X, Y), X != Z.\n", 3, 26, "variable Z of '!='"),
    ],
)
def test_syntax_errors_name_file_line_column(tmp_path, text, line, column, needle):
    path = write(tmp_path, text, "bad.rules")
    with pytest.raises(RuleSyntaxError) as info:
        load_rules(path)
    err = info.value
    assert needle in str(err)
    assert (err.line, err.column) == (line, column)
    assert str(err).startswith(f"bad.rules:{line}:{column}: ")
    assert err.path == str(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(RuleSyntaxError, match="not found"):
        load_rules(tmp_path / "nope.rules")


def test_a_bom_at_the_start_is_accepted(tmp_path):
    path = tmp_path / "bom.rules"
    path.write_bytes(("\ufeff" + FAMILY).encode("utf-8"))
    assert load_rules(path).summary() == load_rules(write(tmp_path, FAMILY)).summary()
    assert parse_rules("\ufeff" + FAMILY).types == ("person",)
    with pytest.raises(RuleSyntaxError, match=r"got '\\ufeff'"):  # only at the start
        parse_rules("type p.\n\ufeff")


def test_check_of_a_folder_or_an_unreadable_file_is_one_line(tmp_path):
    from kgreason.cli import app

    folder = tmp_path / "some_dir.rules"
    folder.mkdir()
    latin = tmp_path / "latin.rules"
    latin.write_bytes("% caf\xe9\ntype p.\n".encode("latin-1"))
    for path, needle in ((folder, "is a folder"), (latin, "UTF-8"), (tmp_path / "nope.rules", "not found")):
        res = CliRunner().invoke(app, ["rules", "check", str(path)])
        assert res.exit_code == 2, (res.output, res.exception)
        assert "Traceback" not in res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), res.output
        assert path.name in lines[0] and needle in lines[0] and "expected" in lines[0], lines[0]
    rules = write(tmp_path, FAMILY)
    res = CliRunner().invoke(app, ["rules", "derive", str(rules), "--triples", str(folder), "--out", "x"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.output.startswith("error: ") and str(folder) in res.output and "is a folder" in res.output


# ---------------------------------------------------------------------------------------------- chaining


def test_forward_chain_family(tmp_path):
    rules = load_rules(write(tmp_path, FAMILY))
    closure = forward_chain(
        rules,
        facts=[("mother", ("cid", "ann")), ("father", ("dan", "ann")), ("male", ("dan",))],
    )
    assert closure.holds("grandmother", ("cid", "bea"))  # via the fact mother(ann, bea) in the file
    assert closure.holds("grandmother", ("dan", "bea"))
    assert not closure.holds("grandmother", ("ann", "bea"))
    assert closure.facts("sibling") == {("cid", "dan"), ("dan", "cid")}  # X != Z removes self-siblings
    assert closure.facts("female") == {("ann",), ("bea",)}
    assert closure.relations_between("cid", "ann") == {"mother", "parent"}
    assert closure.num_derived == 9  # parent x3, grandmother x2, sibling x2, female x2
    assert closure.violations == []
    assert closure.iterations >= 2


def test_denials_report_binding(tmp_path):
    rules = load_rules(write(tmp_path, FAMILY))
    closure = forward_chain(rules, facts=[("male", ("bea",)), ("father", ("ann", "bea"))])
    fired = {(str(v.denial.body[0]), tuple(sorted(v.binding.items()))) for v in closure.violations}
    assert ("male(X)", (("X", "bea"),)) in fired  # female(bea) from mother(ann, bea) + male(bea)
    assert ("mother(X0, X1)", (("X0", "ann"), ("X1", "bea"))) in fired  # exclusive mother, father
    assert len(closure.violations) == 2


def test_recursive_transitive_closure_matches_networkx():
    import networkx as nx

    rules = parse_rules(
        "type n. pred edge(n, n), path(n, n).\npath(X, Y) :- edge(X, Y).\npath(X, Z) :- path(X, Y), edge(Y, Z).\n"
    )
    graph = nx.gnp_random_graph(60, 0.04, seed=3, directed=True)
    closure = forward_chain(rules, facts=[("edge", e) for e in graph.edges])
    expected = {(u, v) for u in graph for v in nx.descendants(graph, u)}
    expected |= {
        (u, u) for u in graph if any(u in nx.descendants(graph, s) | {s} for s in graph.successors(u))
    }
    assert closure.facts("path") == expected
    assert closure.iterations > 3  # semi-naive really iterated


def test_independent_worlds_do_not_interact():
    rules = kinship_rules()
    story = [("a", "son", "b"), ("b", "son", "c")]
    atoms = facts_from_triples(story, world=0) + facts_from_triples([("a", "son", "b")], world=1)
    closure = forward_chain(rules, facts=atoms)
    assert closure.holds("grandson", ((0, "a"), (0, "c")))
    assert not closure.holds("grandson", ((1, "a"), (1, "c")))
    assert closure.relations_between((1, "b"), (1, "a")) == {"parent"}  # b's gender unknown in world 1


def test_bad_facts_are_rejected():
    rules = kinship_rules()
    with pytest.raises(RuleEvaluationError, match="unknown predicate 'cousin'"):
        forward_chain(rules, facts=[("cousin", ("a", "b"))])
    with pytest.raises(RuleEvaluationError, match="expected a tuple of 2"):
        forward_chain(rules, facts=[("son", ("a",))])
    with pytest.raises(RuleEvaluationError, match="expected 'male' or 'female'"):
        facts_from_triples([], genders={"a": "m"})


def test_materialize_and_cli(tmp_path):
    rules_path = write(tmp_path, FAMILY)
    rules = load_rules(rules_path)
    kb = [("cid", "mother", "ann"), ("cid", "knows", "eve")]
    result = materialize(rules, kb)
    assert ("cid", "grandmother", "bea") in result.triples
    assert ("cid", "mother", "ann") not in result.triples  # only new triples
    assert all(r != "knows" for _, r, _ in result.triples)
    with pytest.raises(RuleEvaluationError, match="'knows' is not a binary predicate"):
        materialize(rules, kb, strict=True)

    tsv = tmp_path / "kb.tsv"
    tsv.write_text("# a comment\ncid\tmother\tann\n\ncid\tknows\teve\n", encoding="utf-8")
    out = tmp_path / "out" / "derived.tsv"
    runner = CliRunner()
    res = runner.invoke(rules_app, ["derive", str(rules_path), "--triples", str(tsv), "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines == [f"{h}\t{r}\t{t}" for h, r, t in result.triples]

    res = runner.invoke(rules_app, ["check", str(rules_path), "--json"])
    assert res.exit_code == 0 and '"denials": 2' in res.output

    bad = write(tmp_path, "type p.\npred m(p, p).\nm(X, Z :- m(X, Y).\n", "bad.rules")
    res = runner.invoke(rules_app, ["check", str(bad)])
    assert res.exit_code == 2 and "bad.rules:3:8" in res.output

    tsv.write_text("cid\tmother\tann\ncid mother ann\n", encoding="utf-8")
    res = runner.invoke(rules_app, ["derive", str(rules_path), "--triples", str(tsv), "--out", str(out)])
    assert res.exit_code == 2 and "line 2" in res.output
    assert out.read_text(encoding="utf-8").splitlines() == lines  # the old output is untouched


# ---------------------------------------------------------------------------------------------- kinship


def test_kinship_rules_parse_with_expected_shape():
    rules = kinship_rules()
    for label in (*KINSHIP_LABELS, "husband", "wife"):
        assert rules.predicates[rules.predicate_for(label)] == ("person", "person")
    assert len(rules.exclusive) == 1 and len(rules.exclusive[0]) == 20
    assert len(rules.denials) >= 190 + 20  # pairwise exclusive + gender typing


@pytest.mark.parametrize(
    ("story", "genders", "query", "expected"),
    [
        ([("a", "mother", "b"), ("b", "mother", "c")], {}, ("a", "c"), "grandmother"),
        ([("a", "son", "b"), ("b", "wife", "c")], {"a": "male"}, ("a", "c"), "daughter-in-law"),
        ([("a", "wife", "b"), ("b", "father", "c")], {}, ("a", "c"), "father-in-law"),
        ([("a", "father", "b"), ("b", "daughter", "c")], {"c": "female"}, ("a", "c"), "sister"),
        ([("a", "sister", "b"), ("b", "son", "c")], {}, ("a", "c"), "nephew"),
        ([("a", "daughter", "b"), ("b", "uncle", "c")], {}, ("a", "c"), "brother"),
        ([("a", "son", "b")], {"a": "female"}, ("b", "a"), "mother"),  # inverse needs a's gender
        ([("a", "son", "b")], {}, ("b", "a"), None),  # ... without it: parent, no label
        ([("a", "grandson", "b"), ("b", "sister", "c")], {}, ("a", "c"), "granddaughter"),
    ],
)
def test_kinship_compositions(story, genders, query, expected):
    assert answer(kinship_rules(), facts=story, genders=genders, query=query) == expected


def _read_csv(path: Path, limit: int | None = None, step: int = 1):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        yield from itertools.islice(itertools.islice(csv.DictReader(handle), 0, None, step), limit)


def _genders(row) -> dict[str, str]:
    return dict(item.split(":") for item in row["genders"].split(","))


def _story(row):
    genders = _genders(row)
    names = list(genders)
    edges = ast.literal_eval(row["story_edges"])
    types = ast.literal_eval(row["edge_types"])
    head, tail = ast.literal_eval(row["query_edge"])
    facts = [(names[i], r, names[j]) for (i, j), r in zip(edges, types, strict=True)]
    return facts, genders, (names[head], names[tail]), row["target"]


def _proof_steps(path: Path, limit: int | None, step: int):
    for row in _read_csv(path, limit, step):
        genders = _genders(row)
        for step in ast.literal_eval(row["proof_state"]):
            for (a, rel, c), body in step.items():
                people = {body[0][0], body[0][2], body[1][2]}
                yield (a, rel, c), body, {p: genders[p] for p in people}


def _check_proof_steps(path: Path, limit: int | None = None, step: int = 1) -> int:
    rules = kinship_rules()
    steps = list(_proof_steps(path, limit, step))
    atoms = []
    for w, (_, body, genders) in enumerate(steps):
        atoms += facts_from_triples(body, genders=genders, world=w)
    closure = forward_chain(rules, facts=atoms)
    missing = [
        (head, body)
        for w, (head, body, _) in enumerate(steps)
        if not closure.holds(head[1], ((w, head[0]), (w, head[2])))
    ]
    assert missing == [], missing[:5]
    return len(steps)


def test_clutrr_proof_steps_slice(shared_data):
    """Every 25th row (about 400 stories of k = 2 and 3): each proof step follows from its two body facts."""
    n = _check_proof_steps(shared_data / "clutrr" / "data_089907f8" / "1.2,1.3_train.csv.gz", step=25)
    assert n > 500


@pytest.mark.slow
@pytest.mark.parametrize(
    "path", ["data_089907f8/1.2,1.3_train.csv.gz", "data_db9b8f04/1.2,1.3,1.4_train.csv.gz"]
)
def test_clutrr_proof_steps_full(shared_data, path):
    assert _check_proof_steps(shared_data / "clutrr" / path, limit=None) > 15_000


@pytest.mark.parametrize(
    ("dataset", "unique_correct", "total"), [("data_089907f8", 1124, 1146), ("data_db9b8f04", 1013, 1048)]
)
def test_clutrr_rule_answers(shared_data, dataset, unique_correct, total):
    """Rules answer every test story (k = 2..10) right, except where CLUTRR's own composition table is ambiguous:
    there the target is still derived, next to one other label, and the exclusivity denial fires for the pair."""
    stories = []
    for k in range(2, 11):
        stories += [_story(row) for row in _read_csv(shared_data / "clutrr" / dataset / f"1.{k}_test.csv")]
    assert len(stories) == total
    rules = kinship_rules()
    got = answers(
        rules, facts=[s[0] for s in stories], genders=[s[1] for s in stories], queries=[s[2] for s in stories]
    )
    assert sum(g == s[3] for g, s in zip(got, stories, strict=True)) == unique_correct
    assert all(g in (None, s[3]) for g, s in zip(got, stories, strict=True))  # never a wrong unique answer
    ambiguous = [s for g, s in zip(got, stories, strict=True) if g is None]
    atoms = []
    for w, (facts, genders, _, _) in enumerate(ambiguous):
        atoms += facts_from_triples(facts, genders=genders, world=w)
    closure = forward_chain(rules, facts=atoms)
    labels = set(KINSHIP_LABELS)
    for w, (_, _, (h, t), target) in enumerate(ambiguous):
        derived = closure.relations_between((w, h), (w, t)) & labels
        assert target in derived and len(derived) == 2
    fired_pairs = {
        (v.binding["X0"], v.binding["X1"]) for v in closure.violations if set(v.binding) == {"X0", "X1"}
    }
    assert {((w, s[2][0]), (w, s[2][1])) for w, s in enumerate(ambiguous)} <= fired_pairs


def test_many_stories_in_one_call_is_fast(shared_data):
    """5,000 stories in one vectorised call; a loose bound that a per-fact Python loop would not meet."""
    import time

    base = [
        _story(r)
        for k in (2, 5, 10)
        for r in _read_csv(shared_data / "clutrr" / "data_089907f8" / f"1.{k}_test.csv")
    ]
    stories = list(itertools.islice(itertools.cycle(base), 5000))
    atoms = []
    for w, (facts, genders, _, _) in enumerate(stories):
        atoms += facts_from_triples(facts, genders=genders, world=w)
    start = time.perf_counter()
    closure = forward_chain(kinship_rules(), facts=atoms)
    seconds = time.perf_counter() - start
    assert closure.num_derived > 100_000
    assert seconds < 10.0
    heads = closure.ids((w, s[2][0]) for w, s in enumerate(stories))
    assert (heads >= 0).all() and isinstance(heads, np.ndarray)
