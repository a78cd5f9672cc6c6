"""CLUTRR (Sinha et al., EMNLP 2019): kinship stories whose query relation follows by composing the story's edges.

One *set* (``data_089907f8`` ...) is a folder with one ``*_train.csv.gz`` (the training tasks, e.g. ``1.2,1.3``)
and one ``<task>_test.csv`` per test task. Each row is one story; the reader turns it into an
:class:`~kgreason.core.example.Example` that follows the kinship conventions:

* ``text``: the story with CLUTRR's ``[brackets]`` removed; ``text_pair``: ``"How is {tail} related to {head}?"``;
  ``label``: the target (``tail`` is ``head``'s ``label``).
* ``facts``: one ``(head, relation, tail)`` per story edge (``(i, j)`` with type ``r``: ``j`` is ``i``'s ``r``).
  Only the first ``k`` edges (the reasoning path) carry a type in the data; the noise edges of tasks 2-4 do not,
  so their relation is read from the sentence that names both people (a relation word whose gender fits, or the
  inverse of one that fits the other person). Noise edges whose relation cannot be read that way are left out
  of ``facts`` and listed in ``metadata["untyped_edges"]``. On path edges, where the type is known, the same
  reading agrees with the data's type for the large majority of edges (``info["edge_reading"]``).
* ``metadata["path"]``: all facts for clean stories; for noisy ones, the facts that are leaves of
  ``proof_state`` (the proof's premises). On the shipped noisy tasks these are exactly the first ``k`` story
  edges (checked on every noisy test file of data_7c5b0e70).
* ``metadata["sentences"]``: the story split into sentences. CLUTRR joins sentences with a space and some lack a
  final full stop, so the story is split at sentence punctuation and then refined with ``clean_story`` (the same
  clean sentences in another order): a chunk of one that is a prefix or suffix of a chunk of the other is split
  off. ``metadata["fact_sentences"]``: per fact, the first sentence naming both people, else ``None``.
* ``metadata["people"]``: the bracketed names of the story text, in order of first mention (what a story reader
  is given besides the text; the gold ``genders`` and ``facts`` are not).
* ``metadata["noise"]``: from the task prefix, 1 clean, 2 supporting, 3 irrelevant, 4 disconnected.

The data are CC BY-NC 4.0 and never ship with kgreason; point ``data_dir`` at a copy.
"""

from __future__ import annotations

import ast
import csv
import gzip
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgreason.core.example import Example
from kgreason.data.errors import DatasetFormatError
from kgreason.data.splits import DatasetSplits
from kgreason.rules.kinship import (
    FAMILY_INVERSE,
    GENDERED_RELATION,
    KINSHIP_GENDER,
    RELATION_FAMILY,
    RELATION_WORDS,
)
from kgreason.rules.kinship import KINSHIP_LABELS as CLUTRR_LABELS
from kgreason.rules.kinship import STORY_RELATIONS as CLUTRR_EDGE_TYPES

#: Task prefix (the digit before the dot of ``task_1.3``) -> noise kind.
CLUTRR_NOISE = {1: "clean", 2: "supporting", 3: "irrelevant", 4: "disconnected"}
CLUTRR_LICENSE = "CC BY-NC 4.0 (non-commercial)"
CLUTRR_CITATION = (
    "Koustuv Sinha, Shagun Sodhani, Jin Dong, Joelle Pineau, William L. Hamilton. CLUTRR: A Diagnostic "
    "Benchmark for Inductive Reasoning from Text. EMNLP-IJCNLP 2019."
)
REQUIRED_COLUMNS = (
    "id",
    "story",
    "query",
    "target",
    "clean_story",
    "proof_state",
    "task_name",
    "story_edges",
    "edge_types",
    "query_edge",
    "genders",
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_PRONOUNS = {"He", "She", "His", "Her", "They", "Their", "Him", "Them", "It"}
_TOKEN = re.compile(r"\[[^\[\]]*\]|[A-Za-z]+")


@dataclass
class ClutrrRow:
    """One parsed CLUTRR row, before it becomes an :class:`Example`."""

    example: Example
    depth: int
    untyped: int
    read_ok: int
    read_total: int


def split_story(story: str, clean_story: str = "", *, clean: bool = False) -> list[str]:
    """The sentences of a (bracketed) CLUTRR story, refined with ``clean_story`` where full stops are missing.

    ``clean=True`` says every sentence of ``story`` is in ``clean_story`` (task 1): a chunk is then also split
    before a ``[Name]`` whose preceding word is never followed by it in ``clean_story`` (the sentences come in
    another order there). A chunk that starts with a pronoun continues the previous one.
    """
    story_chunks = _chunks(story)
    clean_chunks = _chunks(clean_story)
    changed = True
    while changed:
        changed = False
        for ours, theirs in ((story_chunks, clean_chunks), (clean_chunks, story_chunks)):
            pieces = set(theirs)
            refined: list[str] = []
            for chunk in ours:
                split = _split_off(chunk, pieces)
                changed |= len(split) > 1
                refined.extend(split)
            ours[:] = refined
    if clean and clean_story:
        reference = " " + " ".join(clean_story.split()) + " "
        story_chunks = [part for chunk in story_chunks for part in _split_at_new_pairs(chunk, reference)]
    merged: list[str] = []
    for chunk in story_chunks:
        if merged and chunk.split(" ", 1)[0] in _PRONOUNS:
            merged[-1] = f"{merged[-1]} {chunk}"
        else:
            merged.append(chunk)
    return merged


def _split_at_new_pairs(chunk: str, reference: str) -> list[str]:
    words = chunk.split(" ")
    parts: list[str] = []
    start = 0
    for i in range(1, len(words)):
        if words[i].startswith("[") and f" {words[i - 1]} {words[i]} " not in reference:
            parts.append(" ".join(words[start:i]))
            start = i
    parts.append(" ".join(words[start:]))
    return parts


def _chunks(text: str) -> list[str]:
    return [" ".join(part.split()) for part in _SENTENCE_END.split(text.strip()) if part.strip()]


def _split_off(chunk: str, pieces: set[str]) -> list[str]:
    for piece in pieces:
        if len(piece) < len(chunk):
            if chunk.startswith(piece + " "):
                return [piece, chunk[len(piece) + 1 :]]
            if chunk.endswith(" " + piece):
                return [chunk[: -len(piece) - 1], piece]
    return [chunk]


def read_relation(sentence: str, head: str, tail: str, *, genders: dict[str, str]) -> str | None:
    """The relation ``r`` with "``tail`` is ``head``'s ``r``" that a (bracketed) sentence states, else ``None``.

    Relation words between the two names are tried first, then the whole sentence; a word fits when it describes
    ``tail`` (its gender is ``tail``'s) or describes ``head`` (then the inverse, gendered for ``tail``, is read).
    """
    tokens = _TOKEN.findall(sentence)
    positions = {name: [i for i, tok in enumerate(tokens) if tok == f"[{name}]"] for name in (head, tail)}
    if not positions[head] or not positions[tail]:
        return None
    pairs = sorted((abs(h - t), h, t) for h in positions[head] for t in positions[tail])
    _, h, t = pairs[0]
    lo, hi = min(h, t), max(h, t)
    names = {i for i, tok in enumerate(tokens) if tok.startswith("[")}
    for window in (range(lo + 1, hi), range(len(tokens))):
        found = set()
        for k in window:
            relation = RELATION_WORDS.get(tokens[k].lower())
            if relation is None:
                continue
            gender = KINSHIP_GENDER[relation]
            inverse = (
                GENDERED_RELATION[(RELATION_FAMILY[relation][1], genders.get(tail, ""))]
                if tail in genders
                else None
            )
            described = _described(tokens, k, names)
            if described == f"[{tail}]":
                found.add(relation)
            elif described == f"[{head}]":
                found.add(inverse)
            elif described is None:
                if gender == genders.get(tail):
                    found.add(relation)
                if gender == genders.get(head):
                    found.add(inverse)
        found.discard(None)
        if len(found) == 1:
            return found.pop()
        if found:
            return None
    return None


@dataclass(frozen=True)
class StatedFacts:
    """A story's facts as its sentences state them: ``facts`` (one per gold fact, in order) and the indices
    of the facts whose sentence states the inverse relation family (``contradicted``)."""

    facts: list[tuple[str, str, str]]
    contradicted: list[int]


def stated_facts(example: Example) -> StatedFacts:
    """The facts as the story's text states them, read by :func:`read_relation` from each fact's sentence.

    A fact whose sentence reads as the inverse family ("[Mark] took his son [Elliott]" for the gold fact
    "Mark is Elliott's son") is replaced by what the sentence says; every other fact (read as the data says,
    read otherwise, or not readable) is kept. CLUTRR's test sets hold crowd paraphrases whose names were filled
    in swapped (facebookresearch/clutrr#15, #18): this is the graph a reader faithful to the text would build,
    and rules over it bound what any reader of the text can score. Reads the gold genders (an oracle).
    """
    meta = example.metadata
    sentences = meta.get("sentences") or []
    where = meta.get("fact_sentences") or []
    genders = meta.get("genders") or {}
    names = sorted(set(genders) | set(meta.get("people") or []), key=len, reverse=True)
    facts, contradicted = [], []
    for n, (head, relation, tail) in enumerate(example.facts or []):
        fact = (head, relation, tail)
        index = where[n] if n < len(where) else None
        if index is not None and 0 <= index < len(sentences) and relation in RELATION_FAMILY:
            read = read_relation(_bracketed(sentences[index], names), head, tail, genders=genders)
            family = RELATION_FAMILY[relation][0]
            if read is not None and RELATION_FAMILY[read][0] == FAMILY_INVERSE.get(family) != family:
                fact = (head, read, tail)
                contradicted.append(n)
        facts.append(fact)
    return StatedFacts(facts=facts, contradicted=contradicted)


def _bracketed(sentence: str, names: list[str]) -> str:
    """``sentence`` with every whole-word occurrence of ``names`` (longest first) in CLUTRR's brackets."""
    if not names:
        return sentence
    pattern = re.compile(r"(?<![\w\[])(" + "|".join(re.escape(n) for n in names) + r")(?![\w\]])")
    return pattern.sub(r"[\1]", sentence)


def _described(tokens: list[str], k: int, names: set[int]) -> str | None:
    """The ``[Name]`` a relation word at ``k`` describes: the name right after it ("her son [Tom]"), or the
    name before it when "of" follows ("[Tom] is the son of ..."), else ``None``."""
    if k + 1 < len(tokens):
        if k + 1 in names:
            return tokens[k + 1]
        if tokens[k + 1].lower() in ("named", "called") and k + 2 in names:
            return tokens[k + 2]
        if tokens[k + 1].lower() == "of":
            before = [i for i in names if i < k]
            return tokens[max(before)] if before else None
    return None


def _literal(text: str, what: str, *, path: Path, line: int) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise DatasetFormatError(
            f"column {what!r} is not a Python literal: {text[:80]!r}", path=path, line=line, expected=what
        ) from None


def parse_row(row: dict[str, str], *, source: str, path: Path, line: int) -> ClutrrRow:
    """One CSV row as a :class:`ClutrrRow` (raises :class:`DatasetFormatError` naming file and line)."""

    def bad(message: str, expected: str) -> DatasetFormatError:
        return DatasetFormatError(message, path=path, line=line, expected=expected)

    people, genders = _read_genders(row["genders"], bad)
    edges, types, query, query_edge, proof = (
        _literal(row[column], column, path=path, line=line) for column in _LITERAL_COLUMNS
    )
    _check_edges(edges, types, people=people, row=row, bad=bad)
    _check_query(query, query_edge, people=people, row=row, bad=bad)
    target = row["target"].strip()
    if target not in CLUTRR_LABELS:
        raise bad(f"unknown target {target!r}", f"one of {', '.join(CLUTRR_LABELS)}")
    match = re.fullmatch(r"task_(\d+)\.(\d+)", row["task_name"].strip())
    if match is None or int(match.group(1)) not in CLUTRR_NOISE:
        raise bad(f"task_name {row['task_name']!r}", "task_<1-4>.<k>")
    if not isinstance(proof, list) or not all(isinstance(step, dict) for step in proof):
        raise bad("proof_state is not a list of dicts", "[{(h, r, t): [(h, r, t), ...]}, ...]")
    clean = match.group(1) == "1"
    bracketed = split_story(row["story"], row["clean_story"], clean=clean)
    sentences = [_BRACKETS.sub(r"\1", s) for s in bracketed]
    story = _story_facts(edges, types, people=people, genders=genders, bracketed=bracketed)
    head, tail = query
    depth = len(types)
    example = Example(
        text=" ".join(sentences),
        text_pair=f"How is {tail} related to {head}?",
        label=target,
        facts=story.facts,
        uid=f"{source}:{row['id']}",
        metadata={
            "query": [head, tail],
            "depth": depth,
            "genders": genders,
            "people": list(dict.fromkeys(_BRACKETS.findall(row["story"]))),
            "sentences": sentences,
            "fact_sentences": story.fact_sentences,
            "path": _path_positions(story.facts, proof, clean=clean),
            "noise": CLUTRR_NOISE[int(match.group(1))],
            "source": source,
            "task": row["task_name"].strip(),
            "untyped_edges": story.untyped,
        },
    )
    return ClutrrRow(
        example=example,
        depth=depth,
        untyped=len(story.untyped),
        read_ok=story.read_ok,
        read_total=story.read_total,
    )


#: The columns that hold Python literals, in the order they are read (a bad one is reported in this order).
_LITERAL_COLUMNS = ("story_edges", "edge_types", "query", "query_edge", "proof_state")
_Bad = Callable[[str, str], DatasetFormatError]


def _read_genders(text: str, bad: _Bad) -> tuple[list[str], dict[str, str]]:
    """The people in order and their genders, from ``"Name:male,Other:female,..."``."""
    people: list[str] = []
    genders: dict[str, str] = {}
    for item in text.split(","):
        name, colon, gender = item.strip().rpartition(":")
        if not colon or not name or gender not in ("male", "female") or name in genders:
            raise bad(f"bad genders entry {item!r}", "unique name:male|female pairs, comma-separated")
        people.append(name)
        genders[name] = gender
    return people, genders


def _check_edges(edges: Any, types: Any, *, people: list[str], row: dict[str, str], bad: _Bad) -> None:
    """``story_edges`` are (i, j) pairs into ``people``; ``edge_types`` name the first of them (at least one)."""
    if not (isinstance(edges, list) and all(_is_pair(e, int) for e in edges)):
        raise bad(f"story_edges {row['story_edges'][:80]!r}", "a list of (int, int) pairs")
    if not (isinstance(types, list) and 0 < len(types) <= len(edges)):
        raise bad(
            f"{len(types) if isinstance(types, list) else 'no'} edge_types for {len(edges)} story edges",
            "a non-empty list no longer than story_edges",
        )
    for relation in types:
        if relation not in CLUTRR_EDGE_TYPES:
            raise bad(f"unknown edge type {relation!r}", f"one of {', '.join(CLUTRR_EDGE_TYPES)}")
    if any(not 0 <= i < len(people) for e in edges for i in e):
        raise bad(f"story edge outside the {len(people)} people of genders", "node indices into genders")


def _check_query(query: Any, query_edge: Any, *, people: list[str], row: dict[str, str], bad: _Bad) -> None:
    """``query`` is ``(head, tail)`` and names the people at ``query_edge``'s indices."""
    if not _is_pair(query, str) or not _is_pair(query_edge, int):
        raise bad(f"query {row['query']!r} / query_edge {row['query_edge']!r}", "('head', 'tail') and (i, j)")
    if (
        any(not 0 <= i < len(people) for i in query_edge)
        or (people[query_edge[0]], people[query_edge[1]]) != query
    ):
        raise bad(
            f"query {query} does not match query_edge {query_edge} in genders", "consistent query columns"
        )


@dataclass
class _StoryFacts:
    """The typed story edges of one row, with where each is told and how its reading went."""

    facts: list[tuple[str, str, str]]
    fact_sentences: list[int | None]  # per fact, the first sentence naming both people
    untyped: list[list[str]]  # noise edges whose relation could not be read
    read_ok: int  # path edges whose sentence reads as their type
    read_total: int  # path edges


def _story_facts(
    edges: list[tuple[int, int]],
    types: list[str],
    *,
    people: list[str],
    genders: dict[str, str],
    bracketed: list[str],
) -> _StoryFacts:
    """One fact per story edge: typed by ``types`` where the data types it, else read from its sentence."""
    story = _StoryFacts(facts=[], fact_sentences=[], untyped=[], read_ok=0, read_total=0)
    for index, (i, j) in enumerate(edges):
        a, b = people[i], people[j]
        where = next((n for n, s in enumerate(bracketed) if f"[{a}]" in s and f"[{b}]" in s), None)
        read = None if where is None else read_relation(bracketed[where], a, b, genders=genders)
        if index < len(types):
            relation = types[index]
            story.read_total += 1
            story.read_ok += read == relation
        elif read is None:
            story.untyped.append([a, b])
            continue
        else:
            relation = read
        story.facts.append((a, relation, b))
        story.fact_sentences.append(where)
    return story


def _path_positions(facts: list[tuple[str, str, str]], proof: list[dict], *, clean: bool) -> list[int]:
    """Which facts are on the reasoning path: all of a clean story's, else the leaves of ``proof_state``."""
    if clean:  # every story edge is on the path (walks may repeat an edge)
        return list(range(len(facts)))
    conclusions = {key for step in proof for key in step}
    leaves = {fact for step in proof for body in step.values() for fact in body if fact not in conclusions}
    return [n for n, fact in enumerate(facts) if fact in leaves]


def _is_pair(value: Any, kind: type) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, kind) for v in value)


def read_clutrr_file(path: str | Path, *, source: str | None = None) -> list[ClutrrRow]:
    """All rows of one CLUTRR CSV (``.csv`` or ``.csv.gz``), in file order."""
    path = Path(path)
    if source is None:
        source = f"clutrr/{path.parent.name}/{path.name.removesuffix('.gz').removesuffix('.csv')}"
    return list(_iter_rows(path, source=source))


def _iter_rows(path: Path, *, source: str) -> Iterator[ClutrrRow]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or any(column not in header for column in REQUIRED_COLUMNS):
            missing = [c for c in REQUIRED_COLUMNS if header is None or c not in header]
            raise DatasetFormatError(
                f"header lacks {', '.join(missing)}", path=path, line=1, expected="CLUTRR's CSV header"
            )
        line = reader.line_num
        for record in reader:
            start = line + 1
            line = reader.line_num
            if len(record) != len(header):
                raise DatasetFormatError(
                    f"{len(record)} fields", path=path, line=start, expected=f"{len(header)} fields"
                )
            yield parse_row(dict(zip(header, record, strict=True)), source=source, path=path, line=start)


def read_clutrr(
    *,
    data_dir: str | Path | None = None,
    set: str = "data_089907f8",
    dev_fraction: float = 0.1,
    split_seed: int = 42,
    max_train: int = 0,
) -> DatasetSplits:
    """One CLUTRR set: train + dev from its ``*_train.csv.gz`` (dev a seeded depth-stratified fraction of the
    train rows), test = every ``*_test.csv`` of the set (ordered by task). ``max_train > 0`` keeps a seeded
    random ``max_train`` of the train rows (after dev is taken).

    Raises:
        DatasetNotFoundError: the set's folder is not in the data folder.
        DatasetFormatError: a malformed row (names the file and the line).
    """
    from sklearn.model_selection import train_test_split

    from kgreason.data.readers import locate_dataset

    if not 0 < dev_fraction < 1:
        raise ValueError(f"dev_fraction must be in (0, 1), got {dev_fraction}")
    folder = _locate_set(set, data_dir=data_dir, locate=locate_dataset)
    train_files = sorted(folder.glob("*_train.csv.gz")) or sorted(folder.glob("*_train.csv"))
    test_files = sorted(folder.glob("*_test.csv"), key=_task_key)
    if len(train_files) != 1 or not test_files:
        from kgreason.data.errors import DatasetNotFoundError

        raise DatasetNotFoundError(
            f"{folder}: expected one *_train.csv.gz and *_test.csv files, found "
            f"{[p.name for p in train_files]} and {[p.name for p in test_files]}"
        )
    info: dict[str, Any] = {
        "license": CLUTRR_LICENSE,
        "citation": CLUTRR_CITATION,
        "files": {},
        "relations": list(CLUTRR_EDGE_TYPES),  # the story-graph relation vocabulary, fixed
    }
    stats = Counter()

    def load(path: Path) -> list[Example]:
        name = path.name.removesuffix(".gz").removesuffix(".csv")
        rows = read_clutrr_file(path, source=f"clutrr/{folder.name}/{name}")
        fact_sentences = [s for r in rows for s in r.example.metadata["fact_sentences"]]
        info["files"][path.name] = {
            "rows": len(rows),
            "depths": dict(sorted(Counter(r.depth for r in rows).items())),
            "noise": dict(Counter(r.example.metadata["noise"] for r in rows)),
            "facts": len(fact_sentences),
            "facts_without_sentence": sum(s is None for s in fact_sentences),
            "untyped_noise_edges": sum(r.untyped for r in rows),
        }
        stats["read_ok"] += sum(r.read_ok for r in rows)
        stats["read_total"] += sum(r.read_total for r in rows)
        return [r.example for r in rows]

    pool = load(train_files[0])
    test = [example for path in test_files for example in load(path)]
    positions = list(range(len(pool)))
    depths = [example.metadata["depth"] for example in pool]
    train_pos, dev_pos = train_test_split(
        positions, test_size=dev_fraction, stratify=depths, random_state=split_seed
    )
    train_pos, dev_pos = sorted(train_pos), sorted(dev_pos)
    if max_train and max_train < len(train_pos):
        train_pos = sorted(random.Random(split_seed).sample(train_pos, max_train))
    info["edge_reading"] = {
        "path_edges": stats["read_total"],
        "read_as_their_type": stats["read_ok"],
        "note": "reading a path edge's relation from its sentence, compared with the data's edge type",
    }
    info["test_by_depth"] = dict(sorted(Counter(e.metadata["depth"] for e in test).items()))
    return DatasetSplits(
        name="clutrr",
        train=[pool[i] for i in train_pos],
        dev=[pool[i] for i in dev_pos],
        test=test,
        labels=list(CLUTRR_LABELS),
        files=[*train_files, *test_files],
        options={"set": set, "dev_fraction": dev_fraction, "split_seed": split_seed, "max_train": max_train},
        info=info,
    )


def _task_key(path: Path) -> tuple[int, ...]:
    task = path.name.split("_")[0]
    return tuple(int(part) for part in re.findall(r"\d+", task))


def _locate_set(name: str, *, data_dir: str | Path | None, locate: Any) -> Path:
    """The set's folder: ``data_dir/clutrr/<set>``, or ``data_dir`` itself when it is the set's folder."""
    return locate(f"clutrr/{name}", data_dir=data_dir, required=["config.json"])
