"""The rule language: typed, negation-free Horn clauses with denials, parsed by a small recursive descent.

Syntax (Prolog-like)::

    % a comment            # also a comment
    type person.
    pred mother(person, person).   pred male(person).
    grandmother(X, Z) :- mother(X, Y), mother(Y, Z).
    sister(X, Z) :- sibling(X, Z), female(Z), X != Z.   % "!=" is the only built-in
    false :- brother(X, Y), female(Y).                  % a denial; ":- body." is the same
    exclusive aunt, brother, daughter.                  % pairwise denials p(X, Y), q(X, Y)
    mother(ann, bea).                                   % a ground fact

Variables start with an upper-case letter or ``_``; constants are lower-case identifiers, numbers or quoted
strings. Relation names may contain ``-``; predicates write it as ``_`` (:meth:`RuleSet.predicate_for`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from kgreason.core.errors import LocatedError


class RuleSyntaxError(LocatedError):
    """A rule file could not be parsed or checked.

    The message reads ``file:line:column: expected ..., got ...``; the parts are also attributes.
    """

    def render(self) -> str:
        where = Path(self.path).name if self.path else "<rules>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.detail}"


@dataclass(frozen=True)
class Variable:
    """A logic variable (``X``, ``_Y``)."""

    name: str

    def __str__(self) -> str:
        return self.name


Term = Variable | str


def _term_text(term: Term) -> str:
    if isinstance(term, Variable):
        return term.name
    if term and (term[0].islower() or term[0].isdigit()) and all(c.isalnum() or c == "_" for c in term):
        return term
    escaped = term.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@dataclass(frozen=True)
class Atom:
    """``predicate(args...)``; each argument is a :class:`Variable` or a constant string."""

    predicate: str
    args: tuple[Term, ...]

    @property
    def variables(self) -> tuple[Variable, ...]:
        return tuple(a for a in self.args if isinstance(a, Variable))

    def __str__(self) -> str:
        return f"{self.predicate}({', '.join(_term_text(a) for a in self.args)})"


@dataclass(frozen=True)
class Rule:
    """``head :- body, inequalities.``; ``head is None`` for a denial, ``body == ()`` for a ground fact."""

    head: Atom | None
    body: tuple[Atom, ...]
    inequalities: tuple[tuple[Term, Term], ...] = ()
    line: int | None = None
    source: str | None = None

    @property
    def is_denial(self) -> bool:
        return self.head is None

    @property
    def is_fact(self) -> bool:
        return self.head is not None and not self.body

    def __str__(self) -> str:
        parts = [str(a) for a in self.body] + [
            f"{_term_text(a)} != {_term_text(b)}" for a, b in self.inequalities
        ]
        head = "false" if self.head is None else str(self.head)
        return f"{head} :- {', '.join(parts)}." if parts else f"{head}."


@dataclass(frozen=True)
class RuleSet:
    """A parsed, checked rule file.

    ``rules`` are the definite rules and ground facts, ``denials`` the integrity constraints (including those that
    ``exclusive`` groups expand to), ``predicates`` maps each declared predicate to its argument types.
    """

    rules: tuple[Rule, ...]
    denials: tuple[Rule, ...]
    predicates: dict[str, tuple[str, ...]]
    types: tuple[str, ...] = ()
    exclusive: tuple[tuple[str, ...], ...] = ()
    path: Path | None = None

    @staticmethod
    def predicate_for(relation: str) -> str:
        """The predicate that names a relation: ``"daughter-in-law"`` -> ``"daughter_in_law"``."""
        return relation.replace("-", "_")

    @staticmethod
    def relation_name(predicate: str) -> str:
        """The relation a predicate names: ``"daughter_in_law"`` -> ``"daughter-in-law"``."""
        return predicate.replace("_", "-")

    def arity(self, predicate: str) -> int:
        return len(self.predicates[predicate])

    @property
    def binary_predicates(self) -> tuple[str, ...]:
        return tuple(p for p, types in self.predicates.items() if len(types) == 2)

    def summary(self) -> dict[str, int]:
        """Counts of what the file holds."""
        return {
            "types": len(self.types),
            "predicates": len(self.predicates),
            "rules": sum(not r.is_fact for r in self.rules),
            "facts": sum(r.is_fact for r in self.rules),
            "denials": len(self.denials),
            "exclusive_groups": len(self.exclusive),
        }


# ----------------------------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Token:
    kind: str  # "var" | "name" | "string" | "number" | "punct" | "eof"
    text: str
    line: int
    column: int

    def shown(self) -> str:
        return "end of file" if self.kind == "eof" else repr(self.text)


_PUNCT = (":-", "!=", "(", ")", ",", ".")


def _tokenize(text: str, path: str | Path | None) -> list[_Token]:
    tokens: list[_Token] = []
    i, line, col = 0, 1, 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            i, line, col = i + 1, line + 1, 1
            continue
        if c in " \t\r\f":
            i, col = i + 1, col + 1
            continue
        if c in "%#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        start_col = col
        if c.isalpha() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            kind = "var" if (word[0].isupper() or word[0] == "_") else "name"
            tokens.append(_Token(kind, word, line, start_col))
            col += j - i
            i = j
            continue
        if c.isdigit():
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(_Token("number", text[i:j], line, start_col))
            col += j - i
            i = j
            continue
        if c in "\"'":
            j, chars = i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\n":
                    break
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                chars.append(text[j])
                j += 1
            if j >= n or text[j] != c:
                raise RuleSyntaxError(
                    f"expected closing {c} of the quoted constant",
                    path=path,
                    line=line,
                    column=start_col,
                    expected=f"closing {c}",
                )
            tokens.append(_Token("string", "".join(chars), line, start_col))
            col += j + 1 - i
            i = j + 1
            continue
        for p in _PUNCT:
            if text.startswith(p, i):
                tokens.append(_Token("punct", p, line, start_col))
                i, col = i + len(p), col + len(p)
                break
        else:
            raise RuleSyntaxError(
                f"expected a name, a variable, a constant or one of ( ) , . :- !=, got {c!r}",
                path=path,
                line=line,
                column=start_col,
                expected="a token",
            )
    tokens.append(_Token("eof", "", line, col))
    return tokens


# ----------------------------------------------------------------------------------------------- parser


@dataclass
class _Clause:
    head: Atom | None
    body: list[Atom]
    inequalities: list[tuple[Term, Term]]
    line: int
    positions: dict[int, _Token] = field(default_factory=dict)  # id(atom) -> token of its predicate
    inequality_tokens: list[tuple[_Token, _Token]] = field(default_factory=list)  # the two terms of each '!='


class _Parser:
    def __init__(self, text: str, path: str | Path | None) -> None:
        self.path = path
        self.tokens = _tokenize(text, path)
        self.pos = 0
        self.anonymous = 0
        self.types: list[str] = []
        self.type_tokens: dict[str, _Token] = {}
        self.predicates: dict[str, tuple[str, ...]] = {}
        self.pred_tokens: dict[str, list[_Token]] = {}
        self.clauses: list[_Clause] = []
        self.exclusive: list[tuple[list[str], _Token, list[_Token]]] = []

    # -- helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.pos]

    def error(self, expected: str, token: _Token | None = None) -> RuleSyntaxError:
        token = token or self.tok
        return self.problem(token, f"expected {expected}, got {token.shown()}", expected=expected)

    def problem(self, token: _Token, message: str, *, expected: str) -> RuleSyntaxError:
        """An error located at ``token`` (file, line, column) with its own message."""
        return RuleSyntaxError(
            message, path=self.path, line=token.line, column=token.column, expected=expected
        )

    def advance(self) -> _Token:
        token = self.tok
        self.pos += 1
        return token

    def accept(self, text: str) -> bool:
        if self.tok.kind == "punct" and self.tok.text == text:
            self.pos += 1
            return True
        return False

    def expect(self, text: str, expected: str | None = None) -> _Token:
        if self.tok.kind == "punct" and self.tok.text == text:
            return self.advance()
        raise self.error(expected or f"'{text}'")

    def name(self, what: str) -> _Token:
        if self.tok.kind != "name":
            raise self.error(what)
        return self.advance()

    # -- statements
    def parse(self) -> None:
        while self.tok.kind != "eof":
            tok = self.tok
            nxt = self.tokens[self.pos + 1]
            is_keyword_statement = tok.kind == "name" and not (
                nxt.kind == "punct" and nxt.text in ("(", ".", ":-")
            )
            if is_keyword_statement and tok.text == "type":
                self.advance()
                self.type_decl()
            elif is_keyword_statement and tok.text == "pred":
                self.advance()
                self.pred_decl()
            elif is_keyword_statement and tok.text == "exclusive":
                self.advance()
                self.exclusive_decl()
            else:
                self.clause()

    def type_decl(self) -> None:
        while True:
            tok = self.name("a type name")
            first = self.type_tokens.get(tok.text)
            if first is not None:
                raise self.problem(
                    tok,
                    f"type {tok.text!r} is declared again (first at line {first.line}); expected each type "
                    "declared once",
                    expected="a new type name",
                )
            self.types.append(tok.text)
            self.type_tokens[tok.text] = tok
            if self.accept("."):
                return
            self.expect(",", "',' or '.' after a type name")

    def pred_decl(self) -> None:
        while True:
            name = self.name("a predicate name")
            types: list[str] = []
            type_tokens: list[_Token] = []
            if self.accept("(") and not self.accept(")"):
                while True:
                    t = self.name("a type name")
                    types.append(t.text)
                    type_tokens.append(t)
                    if self.accept(")"):
                        break
                    self.expect(",", "')' or ',' after a type")
            for t in type_tokens:
                if t.text not in self.type_tokens:
                    raise self.problem(
                        t,
                        f"unknown type {t.text!r} in the declaration of {name.text!r}; "
                        f"expected a declared type (declared: {', '.join(self.types) or 'none'})",
                        expected="a declared type",
                    )
            old = self.predicates.get(name.text)
            if old is not None and old != tuple(types):
                raise self.problem(
                    name,
                    f"predicate {name.text!r} declared again with types ({', '.join(types)}); "
                    f"expected ({', '.join(old)}) as declared before",
                    expected=f"({', '.join(old)})",
                )
            self.predicates[name.text] = tuple(types)
            if self.accept("."):
                return
            self.expect(",", "',' or '.' after a predicate declaration")

    def exclusive_decl(self) -> None:
        first = self.tokens[self.pos - 1]
        names: list[str] = []
        toks: list[_Token] = []
        while True:
            tok = self.name("a predicate name")
            names.append(tok.text)
            toks.append(tok)
            if self.accept("."):
                break
            self.expect(",", "',' or '.' after a predicate name")
        self.exclusive.append((names, first, toks))

    def term(self) -> Term:
        tok = self.tok
        if tok.kind == "var":
            self.advance()
            if tok.text == "_":  # anonymous: a fresh variable each time
                self.anonymous += 1
                return Variable(f"_{self.anonymous}")
            return Variable(tok.text)
        if tok.kind in ("name", "string", "number"):
            self.advance()
            return tok.text
        raise self.error("a variable or a constant")

    def atom(self) -> tuple[Atom, _Token]:
        name = self.name("a predicate name")
        args: list[Term] = []
        if self.accept("(") and not self.accept(")"):
            while True:
                args.append(self.term())
                if self.accept(")"):
                    break
                self.expect(",", "')' or ',' after argument")
        return Atom(name.text, tuple(args)), name

    def clause(self) -> None:
        start = self.tok
        head: Atom | None = None
        positions: dict[int, _Token] = {}
        if start.kind == "punct" and start.text == ":-":
            pass
        elif start.kind == "name" and start.text == "false" and self.tokens[self.pos + 1].text in (":-", "."):
            self.advance()
        else:
            head, tok = self.atom()
            positions[id(head)] = tok
        body: list[Atom] = []
        inequalities: list[tuple[Term, Term]] = []
        inequality_tokens: list[tuple[_Token, _Token]] = []
        if self.accept(":-"):
            while True:
                if self.tok.kind == "name" and self.tokens[self.pos + 1].text != "!=":
                    a, tok = self.atom()
                    positions[id(a)] = tok
                    body.append(a)
                else:
                    left_tok = self.tok
                    left = self.term()
                    self.expect("!=", "'!=' after a term in a rule body (the only built-in)")
                    right_tok = self.tok
                    inequalities.append((left, self.term()))
                    inequality_tokens.append((left_tok, right_tok))
                if self.accept("."):
                    break
                self.expect(",", "',' or '.' after a body literal")
        else:
            self.expect(".", "':-' or '.' after the head" if head is not None else "':-' after 'false'")
        if head is None and not body:
            raise self.problem(
                start,
                "a denial needs at least one body atom; expected 'false :- atom, ... .'",
                expected="a body atom",
            )
        self.clauses.append(_Clause(head, body, inequalities, start.line, positions, inequality_tokens))

    # -- checks
    def check(self) -> RuleSet:
        source = None if self.path is None else Path(self.path).name
        rules: list[Rule] = []
        denials: list[Rule] = []
        for c in self.clauses:
            self.check_clause(c)
            rule = Rule(c.head, tuple(c.body), tuple(c.inequalities), c.line, source)
            (denials if c.head is None else rules).append(rule)
        groups: list[tuple[str, ...]] = []
        for names, first, toks in self.exclusive:
            arities = set()
            for tok in toks:
                self.check_declared(tok)
                arities.add(self.predicates[tok.text])
            if len(arities) > 1:
                raise self.problem(
                    first,
                    "expected predicates with the same argument types in an exclusive group, got "
                    + "; ".join(f"{n}({', '.join(self.predicates[n])})" for n in dict.fromkeys(names)),
                    expected="predicates of one signature",
                )
            unique = tuple(dict.fromkeys(names))
            if len(unique) < 2:
                raise self.problem(
                    first,
                    f"an exclusive group needs at least two different predicates, got only {unique[0]!r}; "
                    "expected 'exclusive p, q, ... .'",
                    expected="two or more predicates",
                )
            groups.append(unique)
            arity = len(self.predicates[unique[0]])
            args = tuple(Variable(f"X{i}") for i in range(arity))
            for p, q in itertools.combinations(unique, 2):
                denials.append(Rule(None, (Atom(p, args), Atom(q, args)), (), first.line, source))
        return RuleSet(
            rules=tuple(rules),
            denials=tuple(denials),
            predicates=dict(self.predicates),
            types=tuple(self.types),
            exclusive=tuple(groups),
            path=None if self.path is None else Path(self.path),
        )

    def check_declared(self, tok: _Token) -> None:
        if tok.text not in self.predicates:
            raise self.problem(
                tok,
                f"undeclared predicate {tok.text!r}; expected a 'pred {tok.text}(...).' declaration before use",
                expected="a declared predicate",
            )

    def check_clause(self, c: _Clause) -> None:
        var_types: dict[Variable, tuple[str, str]] = {}  # var -> (type, where)
        atoms = ([c.head] if c.head is not None else []) + c.body
        for atom in atoms:
            tok = c.positions[id(atom)]
            self.check_declared(tok)
            types = self.predicates[atom.predicate]
            if len(types) != len(atom.args):
                raise self.problem(
                    tok,
                    f"arity mismatch: {atom} has {len(atom.args)} argument(s); expected {len(types)} "
                    f"as declared: {atom.predicate}({', '.join(types)})",
                    expected=f"{len(types)} argument(s)",
                )
            for i, (arg, typ) in enumerate(zip(atom.args, types, strict=True)):
                if not isinstance(arg, Variable):
                    continue
                seen = var_types.get(arg)
                if seen is None:
                    var_types[arg] = (typ, f"argument {i + 1} of {atom.predicate}")
                elif seen[0] != typ:
                    raise self.problem(
                        tok,
                        f"type mismatch: variable {arg.name} is {typ} as argument {i + 1} of {atom.predicate} "
                        f"but {seen[0]} as {seen[1]}; expected one type per variable",
                        expected=seen[0],
                    )
        body_vars = {v for a in c.body for v in a.variables}
        if c.head is not None:
            tok = c.positions[id(c.head)]
            if not c.body:
                if c.head.variables:
                    raise self.problem(
                        tok,
                        f"a fact must be ground; expected constants in {c.head}, got variable "
                        f"{c.head.variables[0].name}",
                        expected="a ground fact",
                    )
            else:
                for v in c.head.variables:
                    if v not in body_vars:
                        raise self.problem(
                            tok,
                            f"head variable {v.name} of {c.head} does not occur in the body; expected every "
                            "head variable in a body atom (range restriction)",
                            expected=f"{v.name} in a body atom",
                        )
        for (left, right), toks in zip(c.inequalities, c.inequality_tokens, strict=True):
            for term, tok in zip((left, right), toks, strict=True):
                if isinstance(term, Variable) and term not in body_vars:
                    raise self.problem(
                        tok,
                        f"variable {term.name} of '!=' does not occur in a body atom; expected it bound by one",
                        expected=f"{term.name} in a body atom",
                    )
            if left == right:
                shown = _term_text(left)
                raise self.problem(
                    toks[0],
                    f"{shown} != {shown} can never hold, so the rule never fires; expected two different terms",
                    expected="two different terms",
                )


def parse_rules(text: str, *, path: str | Path | None = None) -> RuleSet:
    """Parse and check rule text (``path`` only names the source in errors); a leading BOM is skipped."""
    parser = _Parser(text.removeprefix("\ufeff"), path)
    parser.parse()
    return parser.check()


def load_rules(path: str | Path) -> RuleSet:
    """Read, parse and check a rule file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RuleSyntaxError("rule file not found; expected an existing .rules file", path=path) from None
    except IsADirectoryError:
        raise RuleSyntaxError("is a folder; expected a .rules file", path=path) from None
    except UnicodeDecodeError as err:
        raise RuleSyntaxError(
            f"not UTF-8 text ({err.reason} at byte {err.start}); expected a UTF-8 encoded .rules file",
            path=path,
        ) from None
    except OSError as err:
        raise RuleSyntaxError(
            f"cannot be read ({err.strerror or err}); expected a readable .rules file", path=path
        ) from None
    return parse_rules(text, path=path)
