"""Vectorised semi-naive forward chaining to the least fixpoint.

Constants are interned to int ids; each predicate's facts are a sorted, duplicate-free ``(n, arity)`` int64
array. A rule body is evaluated by successive sort-merge joins on shared variables (``np.searchsorted`` over
encoded keys, no Python loop per fact); each iteration joins every rule with at least one body atom bound to
the facts new in the previous iteration (semi-naive), until no rule derives a new fact. Denials are evaluated
once on the fixpoint. Constants may be any hashable: use ``(world, name)`` tuples to chain thousands of
independent stories in one call.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from kgreason.core.errors import KGReasonError
from kgreason.rules.language import Atom, Rule, RuleSet, Variable

FactAtom = tuple[str, tuple[Hashable, ...]]

_MAX_ITERATIONS = 10_000


class RuleEvaluationError(KGReasonError, ValueError):
    """Facts given to the rule engine do not fit the rule set (unknown predicate, wrong arity)."""


@dataclass(frozen=True)
class Violation:
    """A denial that fires, with the binding of its variables (variable name -> constant)."""

    denial: Rule
    binding: dict[str, Hashable]

    def __str__(self) -> str:
        bound = ", ".join(f"{k}={v!r}" for k, v in self.binding.items())
        where = f" (line {self.denial.line})" if self.denial.line else ""
        return f"{self.denial}{where} with {bound}"


@dataclass(frozen=True)
class Firing:
    """All bindings of one denial at the fixpoint, as ids: ``rows`` is ``(m, len(variables))``."""

    denial: Rule
    variables: tuple[str, ...]
    rows: np.ndarray  # (m, v) int64 constant ids


# ------------------------------------------------------------------------------------------ array helpers


def _keys(rows: np.ndarray, base: int) -> np.ndarray:
    """One sortable key per row: int64 when ``base ** arity`` fits, else a void (bytes) view."""
    m, arity = rows.shape
    if arity == 0:
        return np.zeros(m, dtype=np.int64)  # (m,)
    if arity == 1:
        return rows[:, 0].copy()  # (m,)
    if float(base) ** arity < 2.0**62:
        key = rows[:, 0].copy()
        for j in range(1, arity):
            key *= base
            key += rows[:, j]
        return key  # (m,)
    big = np.ascontiguousarray(rows.astype(">i8"))  # big-endian so byte order sorts like the numbers
    return big.view(np.dtype((np.void, 8 * arity)))[:, 0]  # (m,)


def _unique_rows(rows: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by key without duplicates, and their keys."""
    if rows.shape[0] == 0:
        return rows, _keys(rows, base)
    keys = _keys(rows, base)
    uniq, first = np.unique(keys, return_index=True)
    return rows[first], uniq


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Boolean mask: which ``keys`` are in the sorted array ``sorted_keys``."""
    if sorted_keys.shape[0] == 0 or keys.shape[0] == 0:
        return np.zeros(keys.shape[0], dtype=bool)
    pos = np.searchsorted(sorted_keys, keys)
    pos = np.minimum(pos, sorted_keys.shape[0] - 1)
    return sorted_keys[pos] == keys  # (m,)


def _join_indices(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) with ``left[i] == right[j]`` (sort-merge join on 1-d keys; sorts the smaller side)."""
    if left.shape[0] < right.shape[0]:
        j, i = _join_indices(right, left)
        return i, j
    size = int(max(left.max(initial=0), right.max(initial=0))) + 1 if left.dtype.kind == "i" else -1
    if 0 < size <= max(1 << 20, 4 * (left.shape[0] + right.shape[0])):
        # small key range: counting sort, then direct lookups instead of binary search
        per_key = np.bincount(right, minlength=size)  # (size,)
        first = np.cumsum(per_key) - per_key  # (size,)
        order = np.argsort(right, kind="stable")
        lo = first[left]  # (mL,)
        counts = per_key[left]  # (mL,)
    else:
        order = np.argsort(right, kind="stable")
        sorted_right = right[order]
        lo = np.searchsorted(sorted_right, left, side="left")  # (mL,)
        counts = np.searchsorted(sorted_right, left, side="right") - lo  # (mL,)
    total = int(counts.sum())
    left_idx = np.repeat(np.arange(left.shape[0]), counts)  # (total,)
    starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)  # (total,)
    right_idx = order[starts + np.arange(total)]  # (total,)
    return left_idx, right_idx


# ------------------------------------------------------------------------------------------ compiled rules


@dataclass(frozen=True)
class _AtomPlan:
    predicate: str
    const_cols: tuple[tuple[int, int], ...]  # (column, constant id)
    same_cols: tuple[tuple[int, int], ...]  # (column, earlier column with the same variable)
    var_cols: tuple[tuple[int, str], ...]  # (column, variable name): first occurrence of each variable


@dataclass(frozen=True)
class _Inequality:
    left: str | int  # variable name or constant id
    right: str | int


@dataclass(frozen=True)
class _RulePlan:
    rule: Rule
    atoms: tuple[_AtomPlan, ...]
    orders: tuple[tuple[int, ...], ...]  # orders[i]: join order that starts with body atom i
    inequalities: tuple[_Inequality, ...]
    head: tuple[str | int, ...]  # variable names or constant ids


class _Interner:
    """Constant -> id (ids in first-seen order; ``constants`` lists them)."""

    def __init__(self) -> None:
        self.index: dict[Hashable, int] = {}

    def __call__(self, value: Hashable) -> int:
        index = self.index
        return index.setdefault(value, len(index))

    @property
    def constants(self) -> list[Hashable]:
        return list(self.index)


def _plan_atom(atom: Atom, intern: _Interner) -> _AtomPlan:
    consts, same, first = [], [], {}
    for col, arg in enumerate(atom.args):
        if isinstance(arg, Variable):
            if arg.name in first:
                same.append((col, first[arg.name]))
            else:
                first[arg.name] = col
        else:
            consts.append((col, intern(arg)))
    return _AtomPlan(atom.predicate, tuple(consts), tuple(same), tuple((c, v) for v, c in first.items()))


def _join_order(atoms: Sequence[Atom], start: int) -> tuple[int, ...]:
    order = [start]
    bound = {v.name for v in atoms[start].variables}
    rest = [i for i in range(len(atoms)) if i != start]
    while rest:
        best = max(rest, key=lambda i: (len(bound & {v.name for v in atoms[i].variables}), -i))
        order.append(best)
        rest.remove(best)
        bound |= {v.name for v in atoms[best].variables}
    return tuple(order)


def _plan_rule(rule: Rule, intern: _Interner) -> _RulePlan:
    atoms = tuple(_plan_atom(a, intern) for a in rule.body)
    orders = tuple(_join_order(rule.body, i) for i in range(len(rule.body)))

    def term(t):
        return t.name if isinstance(t, Variable) else intern(t)

    ineqs = tuple(_Inequality(term(a), term(b)) for a, b in rule.inequalities)
    head = () if rule.head is None else tuple(term(a) for a in rule.head.args)
    return _RulePlan(rule, atoms, orders, ineqs, head)


# ------------------------------------------------------------------------------------------ evaluation


class _Bindings:
    """A table of variable bindings: ``rows[:, k]`` holds the id bound to ``variables[k]``."""

    __slots__ = ("rows", "variables")

    def __init__(self, variables: list[str], rows: np.ndarray) -> None:
        self.variables = variables
        self.rows = rows  # (m, v)

    def col(self, name: str) -> np.ndarray:
        return self.rows[:, self.variables.index(name)]


def _scan(plan: _AtomPlan, facts: np.ndarray) -> _Bindings:
    keep = None
    for col, cid in plan.const_cols:
        m = facts[:, col] == cid
        keep = m if keep is None else keep & m
    for col, other in plan.same_cols:
        m = facts[:, col] == facts[:, other]
        keep = m if keep is None else keep & m
    if keep is not None:
        facts = facts[keep]
    cols = [c for c, _ in plan.var_cols]
    return _Bindings([v for _, v in plan.var_cols], facts[:, cols])


def _join(left: _Bindings, right: _Bindings, base: int) -> _Bindings:
    shared = [v for v in right.variables if v in left.variables]
    new = [k for k, v in enumerate(right.variables) if v not in left.variables]
    if not shared:
        ml, mr = left.rows.shape[0], right.rows.shape[0]
        li = np.repeat(np.arange(ml), mr)  # (ml * mr,)
        ri = np.tile(np.arange(mr), ml)  # (ml * mr,)
    else:
        lk = _keys(left.rows[:, [left.variables.index(v) for v in shared]], base)
        rk = _keys(right.rows[:, [right.variables.index(v) for v in shared]], base)
        li, ri = _join_indices(lk, rk)
    rows = np.concatenate([left.rows[li], right.rows[ri][:, new]], axis=1)  # (m, vL + vNew)
    return _Bindings(left.variables + [right.variables[k] for k in new], rows)


def _apply_inequalities(b: _Bindings, ineqs: Sequence[_Inequality], done: set[int]) -> _Bindings:
    keep = None
    for k, q in enumerate(ineqs):
        if k in done:
            continue
        sides = []
        for side in (q.left, q.right):
            if isinstance(side, str):
                if side not in b.variables:
                    break
                sides.append(b.col(side))
            else:
                sides.append(side)
        else:
            done.add(k)
            m = np.asarray(sides[0] != sides[1])
            if m.ndim == 0:
                m = np.full(b.rows.shape[0], bool(m))
            keep = m if keep is None else keep & m
    if keep is None:
        return b
    return _Bindings(b.variables, b.rows[keep])


def _evaluate_body(
    plan: _RulePlan, order: Sequence[int], sources: Sequence[np.ndarray], base: int
) -> _Bindings | None:
    """Bindings of the body, joining atoms in ``order``; ``sources[i]`` are the facts for body atom i."""
    done: set[int] = set()
    bindings: _Bindings | None = None
    for i in order:
        facts = sources[i]
        if facts.shape[0] == 0:
            return None
        scanned = _scan(plan.atoms[i], facts)
        bindings = scanned if bindings is None else _join(bindings, scanned, base)
        bindings = _apply_inequalities(bindings, plan.inequalities, done)
        if bindings.rows.shape[0] == 0:
            return None
    return bindings


def _project(plan: _RulePlan, b: _Bindings) -> np.ndarray:
    m = b.rows.shape[0]
    cols = [b.col(t) if isinstance(t, str) else np.full(m, t, dtype=np.int64) for t in plan.head]
    if not cols:
        return np.zeros((min(m, 1), 0), dtype=np.int64)
    return np.stack(cols, axis=1)  # (m, arity)


class _Relation:
    """Facts of one predicate: sorted unique rows and their keys."""

    __slots__ = ("keys", "rows")

    def __init__(self, rows: np.ndarray, keys: np.ndarray) -> None:
        self.rows = rows  # (n, arity)
        self.keys = keys  # (n,)


def _empty(arity: int) -> np.ndarray:
    return np.zeros((0, arity), dtype=np.int64)


# ------------------------------------------------------------------------------------------ closure


class Closure:
    """The least fixpoint of a rule set over some facts.

    ``holds``/``facts``/``relations_between`` answer in constants; ``ids``/``rows`` give the id arrays for
    vectorised consumers.
    """

    def __init__(
        self,
        *,
        rules: RuleSet,
        constants: list[Hashable],
        index: dict[Hashable, int],
        relations: dict[str, _Relation],
        num_input: int,
        iterations: int,
        firings: list[Firing],
    ) -> None:
        self.rules = rules
        self.constants = constants
        self.index = index
        self._relations = relations
        self.num_input = num_input
        self.iterations = iterations
        self.firings = firings

    @property
    def num_facts(self) -> int:
        return sum(r.rows.shape[0] for r in self._relations.values())

    @property
    def num_derived(self) -> int:
        """Facts in the closure that rules derived (not given as input nor stated as facts in the rule file)."""
        return self.num_facts - self.num_input

    @cached_property
    def violations(self) -> list[Violation]:
        """Every denial that fires, with its binding."""
        out = []
        for f in self.firings:
            for row in f.rows.tolist():
                out.append(
                    Violation(f.denial, {v: self.constants[i] for v, i in zip(f.variables, row, strict=True)})
                )
        return out

    def _predicate(self, name: str) -> str:
        if name in self._relations:
            return name
        pred = self.rules.predicate_for(name)
        if pred not in self._relations:
            raise RuleEvaluationError(
                f"unknown predicate {name!r}; expected one of {sorted(self._relations)}"
            )
        return pred

    def rows(self, predicate: str) -> np.ndarray:
        """All facts of a predicate as constant ids, ``(n, arity)`` sorted."""
        return self._relations[self._predicate(predicate)].rows

    def ids(self, constants: Iterable[Hashable]) -> np.ndarray:
        """Ids of constants (-1 for a constant the closure has never seen)."""
        return np.fromiter((self.index.get(c, -1) for c in constants), dtype=np.int64)

    def facts(self, predicate: str) -> set[tuple[Hashable, ...]]:
        """All facts of a predicate (given or derived) as tuples of constants."""
        c = self.constants
        return {tuple(c[i] for i in row) for row in self.rows(predicate).tolist()}

    def holds(self, predicate: str, args: Sequence[Hashable]) -> bool:
        """Whether ``predicate(args)`` is in the closure (relation names with "-" are accepted)."""
        pred = self._predicate(predicate)
        rel = self._relations[pred]
        ids = self.ids(args)
        if ids.shape[0] != rel.rows.shape[1]:
            raise RuleEvaluationError(
                f"{pred} takes {rel.rows.shape[1]} argument(s); expected that many, got {ids.shape[0]}"
            )
        if (ids < 0).any():
            return False
        return bool(_member(_keys(ids[None, :], len(self.constants)), rel.keys)[0])

    def holds_many(self, predicate: str, args: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`holds` over id rows ``(m, arity)`` (ids from :meth:`ids`); returns ``(m,)`` bool."""
        rel = self._relations[self._predicate(predicate)]
        args = np.asarray(args, dtype=np.int64)
        ok = (args >= 0).all(axis=1)  # (m,)
        return ok & _member(_keys(np.where(args < 0, 0, args), len(self.constants)), rel.keys)

    def relations_between(self, x: Hashable, y: Hashable) -> set[str]:
        """Names of the binary relations that hold for ``(x, y)`` ("son-in-law", not "son_in_law")."""
        ix, iy = self.index.get(x), self.index.get(y)
        if ix is None or iy is None:
            return set()
        key = _keys(np.array([[ix, iy]], dtype=np.int64), len(self.constants))
        return {
            self.rules.relation_name(p)
            for p, rel in self._relations.items()
            if rel.rows.shape[1] == 2 and _member(key, rel.keys)[0]
        }


def _intern_facts(
    rules: RuleSet, facts: Iterable[FactAtom], intern: _Interner
) -> dict[str, list[tuple[int, ...]]]:
    grouped: dict[str, list[tuple[int, ...]]] = {p: [] for p in rules.predicates}
    index = intern.index
    for n, fact in enumerate(facts):
        try:
            name, args = fact
        except (TypeError, ValueError):
            raise RuleEvaluationError(f"fact #{n}: expected (predicate, args-tuple), got {fact!r}") from None
        pred = name if name in grouped else rules.predicate_for(name)
        bucket = grouped.get(pred)
        if bucket is None:
            raise RuleEvaluationError(
                f"fact #{n} {fact!r}: unknown predicate {name!r}; expected a predicate the rules declare"
            )
        if isinstance(args, (str, bytes)) or len(args) != len(rules.predicates[pred]):
            raise RuleEvaluationError(
                f"fact #{n} {fact!r}: expected a tuple of {len(rules.predicates[pred])} argument(s) for {pred}"
            )
        bucket.append(tuple([index.setdefault(a, len(index)) for a in args]))
    return grouped


def forward_chain(
    rules: RuleSet,
    *,
    facts: Iterable[FactAtom] = (),
    max_iterations: int = _MAX_ITERATIONS,
) -> Closure:
    """Derive everything the rules entail from ``facts`` (atoms ``(predicate, args)``) and check the denials.

    Predicates may be given by relation name ("son-in-law"). Raises :class:`RuleEvaluationError` for a fact
    whose predicate the rules do not declare or whose arity is wrong.
    """
    intern = _Interner()
    grouped = _intern_facts(rules, facts, intern)
    plans = [_plan_rule(r, intern) for r in rules.rules if not r.is_fact]
    for r in rules.rules:
        if r.is_fact:
            grouped[r.head.predicate].append(tuple(intern(a) for a in r.head.args))
    denial_plans = [_plan_rule(r, intern) for r in rules.denials]
    constants = intern.constants
    base = max(len(constants), 1)
    arity = {p: len(t) for p, t in rules.predicates.items()}

    full: dict[str, _Relation] = {}
    old: dict[str, np.ndarray] = {}
    delta: dict[str, np.ndarray] = {}
    num_input = 0
    for p, tuples in grouped.items():
        rows = np.array(tuples, dtype=np.int64).reshape(len(tuples), arity[p])  # (n, arity)
        rows, keys = _unique_rows(rows, base)
        full[p] = _Relation(rows, keys)
        old[p] = _empty(arity[p])
        delta[p] = rows
        num_input += rows.shape[0]

    iterations = 0
    while any(d.shape[0] for d in delta.values()):
        if iterations >= max_iterations:
            raise RuleEvaluationError(f"no fixpoint after {max_iterations} iterations; expected fewer")
        iterations += 1
        derived: dict[str, list[np.ndarray]] = {}
        for plan in plans:
            preds = [a.predicate for a in plan.atoms]
            for i, p in enumerate(preds):
                if delta[p].shape[0] == 0:
                    continue
                # semi-naive: atom i on the new facts, atoms before it on all, atoms after it on the old facts
                sources = [
                    full[q].rows if j < i else (delta[q] if j == i else old[q]) for j, q in enumerate(preds)
                ]
                b = _evaluate_body(plan, plan.orders[i], sources, base)
                if b is not None:
                    derived.setdefault(plan.rule.head.predicate, []).append(_project(plan, b))
        new_delta: dict[str, np.ndarray] = {}
        for p in full:
            old[p] = full[p].rows
            chunks = derived.get(p)
            if not chunks:
                new_delta[p] = _empty(arity[p])
                continue
            rows, keys = _unique_rows(np.concatenate(chunks, axis=0), base)
            fresh = ~_member(keys, full[p].keys)
            rows, keys = rows[fresh], keys[fresh]
            new_delta[p] = rows
            if rows.shape[0]:
                all_rows = np.concatenate([full[p].rows, rows], axis=0)
                all_keys = np.concatenate([full[p].keys, keys])
                order = np.argsort(all_keys, kind="stable")
                full[p] = _Relation(all_rows[order], all_keys[order])
        delta = new_delta

    firings = []
    for plan in denial_plans:
        sources = [full[a.predicate].rows for a in plan.atoms]
        b = _evaluate_body(plan, plan.orders[0], sources, base)
        if b is not None and b.rows.shape[0]:
            firings.append(Firing(plan.rule, tuple(b.variables), b.rows))
    return Closure(
        rules=rules,
        constants=constants,
        index=intern.index,
        relations=full,
        num_input=num_input,
        iterations=iterations,
        firings=firings,
    )


@dataclass(frozen=True)
class Materialization:
    """What :func:`materialize` derived: the new triples (sorted), and the denials that fire on the KB."""

    triples: list[tuple[Hashable, str, Hashable]]
    violations: list[Violation]
    iterations: int

    def __iter__(self):
        return iter(self.triples)

    def __len__(self) -> int:
        return len(self.triples)


def materialize(
    rules: RuleSet, kb_triples: Iterable[tuple[Hashable, str, Hashable]], *, strict: bool = False
) -> Materialization:
    """Knowledge-base completion: the ``(head, relation, tail)`` triples the rules derive that are not given.

    Triples whose relation the rules do not declare as a binary predicate are skipped (``strict=True`` raises
    instead). Derived unary facts (``male(x)``) are not triples and are left out. Sorted for reproducibility.
    """
    binary = set(rules.binary_predicates)
    spelled: dict[str, str] = {}  # predicate -> the relation name the input used for it
    given: set[tuple[str, str, str]] = set()
    atoms: list[FactAtom] = []
    for n, triple in enumerate(kb_triples):
        if len(triple) != 3:
            raise RuleEvaluationError(f"triple #{n}: expected (head, relation, tail), got {triple!r}")
        h, r, t = triple
        pred = r if r in binary else rules.predicate_for(r)
        if pred not in binary:
            if strict:
                raise RuleEvaluationError(
                    f"triple #{n} {triple!r}: relation {r!r} is not a binary predicate of the rules; expected "
                    f"one of {sorted(binary)}"
                )
            continue
        spelled.setdefault(pred, r)
        given.add((h, pred, t))
        atoms.append((pred, (h, t)))
    closure = forward_chain(rules, facts=atoms)
    out = []
    for pred in sorted(binary):
        for row in closure.rows(pred).tolist():
            h, t = closure.constants[row[0]], closure.constants[row[1]]
            if (h, pred, t) not in given:
                out.append((h, spelled.get(pred) or rules.relation_name(pred), t))
    out.sort(key=lambda x: (str(x[0]), x[1], str(x[2])))
    return Materialization(triples=out, violations=closure.violations, iterations=closure.iterations)
