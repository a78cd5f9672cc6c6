"""Entity linking by alias lookup: an Aho-Corasick automaton over normalised labels and aliases.

Normalisation (applied alike to aliases and to text) works token by token, so every match can be mapped back to
a span of the original text:

* a token is a run of letters or digits (``[^\\W_]+``); everything else (punctuation, ``_``, spaces) separates;
* tokens are case-folded and stripped of accents (``Hélène`` → ``helene``);
* regular English plurals fold onto their singular (:func:`fold_token`): ``cities`` → ``city``,
  ``churches`` → ``church``, ``cats`` → ``cat``. Where the rules cannot recover the singular (``houses`` →
  ``hous``, ``movies`` → ``movy``), an alias is also indexed under the fold of its plural (:func:`plural_key`),
  and that key matches only a token that was folded as a plural, so ``Louis`` never matches ``Louise`` while
  ``houses`` matches ``house``. A folded token is a matching key, not a word.

Matches are whole tokens only. Of overlapping matches the longest (in tokens) wins, then the leftmost.

Skipped aliases (the rule): an alias is not indexed when, after normalisation, it has no token, has fewer than
``min_alias_chars`` letters and digits, or consists of stop words only (:data:`STOP_WORDS`: "the", "of", "it",
...). A stop-word alias written in capitals (``US``, ``IT``) is kept but then matches its exact case only.

Candidates of an ambiguous alias are ranked by how they matched: a preferred label beats an alias and a match in
the exact case beats a case-folded one (weights 2 × 1.5), and within a tier by the entity's degree in the graph
(a prior in [1, 1.25] that cannot overturn a tier). Scores are normalised to sum to 1 per mention.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from kgreason.core.records import EntityCandidate, Mention

if TYPE_CHECKING:
    from kgreason.kb.base import KnowledgeBase

_TOKEN = re.compile(r"[^\W_]+")

#: English function words; an alias made only of these is not indexed (unless written in capitals).
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now
    of off on once only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until up us very was we
    were what when where which while who whom why will with would you your yours yourself yourselves""".split()  # noqa: SIM905
)

#: Tokens ending in ``s`` that are not plurals of a different word (``news`` is not ``new``).
PLURAL_EXCEPTIONS = frozenset(
    {"news", "series", "species", "always", "perhaps", "whereas", "goods", "means", "lens", "physics"}
)

#: Weights of how an alias matched (see the module docstring).
LABEL_WEIGHT = 2.0
EXACT_CASE_WEIGHT = 1.5
#: Largest factor the degree prior may give (1 for degree 0, this for the best-connected entity).
MAX_PRIOR = 1.25


def plain_token(token: str) -> str:
    """A token case-folded and stripped of accents (``Hélène`` → ``helene``)."""
    word = token.casefold()
    if not word.isascii():
        word = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
    return word


@lru_cache(maxsize=200_000)
def fold_token(token: str) -> str:
    """:func:`plain_token`, then a regular English plural folded onto its singular.

    Tokens of three characters or fewer, tokens with digits and :data:`PLURAL_EXCEPTIONS` are only case-folded.

    >>> [fold_token(w) for w in ("Cities", "Boxes", "churches", "dishes", "buses", "cats", "Banks", "houses")]
    ['city', 'box', 'church', 'dish', 'bus', 'cat', 'bank', 'hous']
    >>> [fold_token(w) for w in ("glass", "virus", "Paris", "news", "gas", "1990s", "Hélène")]
    ['glass', 'virus', 'paris', 'news', 'gas', '1990s', 'helene']
    """
    word = plain_token(token)
    if len(word) <= 3 or not word.isalpha() or word in PLURAL_EXCEPTIONS:
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"  # cities -> city
    if word.endswith(("ses", "xes", "zes", "ches", "shes")):
        return word[:-2]  # boxes -> box, churches -> church
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]  # cats -> cat
    return word


def pluralise(word: str) -> str:
    """The regular English plural of a lower-case word (``house`` → ``houses``, ``city`` → ``cities``)."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def plural_key(alias: str, *, norm: NormalisedText | None = None) -> str | None:
    """The key of ``alias`` with its last word in the plural, when that differs from its own key.

    >>> plural_key("White House"), plural_key("movie"), plural_key("city"), plural_key("cat")
    ('white hous', 'movy', None, None)
    """
    norm = normalise(alias) if norm is None else norm
    if not norm.tokens or norm.plural[-1]:
        return None
    last = plain_token(alias[norm.starts[-1] : norm.ends[-1]])
    if not last.isalpha():
        return None
    folded = fold_token(pluralise(last))
    if folded == norm.tokens[-1]:
        return None
    return " ".join((*norm.tokens[:-1], folded))


@dataclass(frozen=True)
class NormalisedText:
    """Text as folded tokens, with each token's span in the original text.

    Shapes:
        starts: (k,) character offset of each token in the original text
        ends: (k,) end offset (exclusive) of each token
    """

    tokens: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    plural: tuple[bool, ...]  # whether each token was folded from a plural

    @property
    def key(self) -> str:
        """The tokens joined by single spaces and padded with one space each side (the automaton's alphabet)."""
        return f" {' '.join(self.tokens)} "


def normalise(text: str) -> NormalisedText:
    """Tokenise and fold ``text`` (see the module docstring), keeping every token's original span."""
    tokens, starts, ends, plural = [], [], [], []
    for match in _TOKEN.finditer(text):
        token = match.group()
        folded = fold_token(token)
        tokens.append(folded)
        starts.append(match.start())
        ends.append(match.end())
        plural.append(folded != plain_token(token))
    return NormalisedText(tokens=tuple(tokens), starts=tuple(starts), ends=tuple(ends), plural=tuple(plural))


def alias_key(alias: str) -> str:
    """The automaton key of an alias: folded tokens joined by single spaces ("" when it has no token)."""
    return " ".join(normalise(alias).tokens)


def fold_stop_words(words: Iterable[str]) -> frozenset[str]:
    """Stop words folded as text is (``yours`` -> ``your``), ready for :func:`alias_skip_reason`."""
    return frozenset(fold_token(w) for w in words)


def alias_skip_reason(
    alias: str,
    *,
    min_alias_chars: int = 2,
    stop_words: frozenset[str] | None = None,
    tokens: tuple[str, ...] | None = None,
) -> str | None:
    """Why ``alias`` is not indexed, or ``None`` when it is (the rule is in the module docstring).

    ``stop_words`` must be folded (:func:`fold_stop_words`); default: :data:`STOP_WORDS`. ``tokens`` saves
    normalising ``alias`` again.
    """
    if tokens is None:
        tokens = normalise(alias).tokens
    if not tokens:
        return "no letters or digits"
    if sum(map(len, tokens)) < min_alias_chars:
        return f"fewer than {min_alias_chars} letters or digits"
    stops = _default_stop_words() if stop_words is None else stop_words
    if all(t in stops for t in tokens) and not _is_capitalised(alias):
        return "stop words only"
    return None


@lru_cache(maxsize=1)
def _default_stop_words() -> frozenset[str]:
    return fold_stop_words(STOP_WORDS)


def _is_capitalised(alias: str) -> bool:
    letters = [c for c in alias if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def _collapse(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class _Entry:
    """One way an index key reaches an entity."""

    entity: int
    alias: str  # the alias as written, whitespace collapsed
    is_label: bool
    case_sensitive: bool  # a stop-word alias in capitals: only its exact case matches
    plural_only: bool = False  # reached through plural_key: the last text token must be a folded plural


@dataclass(frozen=True)
class LinkerStats:
    """What went into an alias index."""

    entities: int
    aliases: int
    keys: int
    skipped: int
    seconds: float


class EntityLinker:
    """Finds mentions of a KB's entities in text by their labels and aliases.

    Build it with :meth:`from_kb`; see the module docstring for normalisation, skipped aliases and scoring.
    """

    def __init__(
        self,
        *,
        kb: KnowledgeBase,
        automaton: object | None,
        keys: list[str],
        entries: list[tuple[_Entry, ...]],
        prior: np.ndarray,
        stats: LinkerStats,
    ) -> None:
        self.kb = kb
        self._automaton = automaton
        self._key_tokens = [key.count(" ") + 1 for key in keys]
        self._entries = entries
        self._prior = prior  # (N,) degree prior in [1, MAX_PRIOR]
        self.stats = stats

    @classmethod
    def from_kb(
        cls,
        kb: KnowledgeBase,
        *,
        min_alias_chars: int = 2,
        stop_words: Iterable[str] | None = None,
        progress: bool | None = None,
    ) -> EntityLinker:
        """Index every entity's label (its own, else the readable fallback of its key) and aliases.

        Args:
            kb: the knowledge base.
            min_alias_chars: aliases with fewer letters and digits than this are skipped.
            stop_words: words an alias may not consist of only (default :data:`STOP_WORDS`); folded as text is.
            progress: show a progress bar; by default only for KBs of 100,000 entities or more.
        """
        import ahocorasick
        from tqdm.auto import tqdm

        started = time.perf_counter()
        stops = fold_stop_words(STOP_WORDS if stop_words is None else stop_words)
        n = kb.num_entities
        show = n >= 100_000 if progress is None else progress
        by_key: dict[str, list[_Entry]] = {}
        aliases = skipped = 0
        for entity in tqdm(range(n), desc=f"indexing aliases of {kb.name}", disable=not show, unit="entity"):
            names = [(kb.entity_label(entity), True)]
            names.extend((alias, False) for alias in kb.entity_aliases(entity))
            seen: set[str] = set()
            for name, is_label in names:
                aliases += 1
                norm = normalise(name)
                tokens = norm.tokens
                key = " ".join(tokens)
                if key in seen:
                    continue
                seen.add(key)
                reason = alias_skip_reason(
                    name, min_alias_chars=min_alias_chars, stop_words=stops, tokens=tokens
                )
                if reason is not None:
                    skipped += 1
                    continue
                case_sensitive = all(t in stops for t in tokens)
                entry = _Entry(
                    entity=entity, alias=_collapse(name), is_label=is_label, case_sensitive=case_sensitive
                )
                by_key.setdefault(key, []).append(entry)
                if not case_sensitive and (plural := plural_key(name, norm=norm)) is not None:
                    by_key.setdefault(plural, []).append(replace(entry, plural_only=True))
        automaton = None
        keys = list(by_key)
        entries = [tuple(by_key[key]) for key in keys]
        if keys:
            automaton = ahocorasick.Automaton()
            for index, key in enumerate(keys):
                automaton.add_word(f" {key} ", index)
            automaton.make_automaton()
        degree = np.asarray(kb.adjacency.degree, dtype=np.float64) if n else np.zeros(0)  # (N,)
        top = math.log1p(float(degree.max())) if degree.size else 0.0
        scaled = np.log1p(degree) / top if top > 0 else np.zeros_like(degree)  # (N,) in [0, 1]
        prior = 1.0 + (MAX_PRIOR - 1.0) * scaled  # (N,)
        stats = LinkerStats(
            entities=n,
            aliases=aliases,
            keys=len(keys),
            skipped=skipped,
            seconds=time.perf_counter() - started,
        )
        return cls(kb=kb, automaton=automaton, keys=keys, entries=entries, prior=prior, stats=stats)

    def __len__(self) -> int:
        """Number of distinct normalised aliases in the index."""
        return len(self._entries)

    def link(self, text: str) -> list[Mention]:
        """Mentions in ``text`` in reading order, each with its candidates best first (scores sum to 1)."""
        if self._automaton is None:
            return []
        norm = normalise(text)
        if not norm.tokens:
            return []
        # Offset in the padded key of the space that follows each token -> that token's index.
        token_before: dict[int, int] = {}
        offset = 0
        for i, token in enumerate(norm.tokens):
            offset += len(token) + 1
            token_before[offset] = i
        found: list[tuple[int, int, dict[int, float]]] = []  # (first token, last token, raw scores)
        for end, index in self._automaton.iter(norm.key):
            last = token_before[end]
            first = last - self._key_tokens[index] + 1
            surface = text[norm.starts[first] : norm.ends[last]]
            raw = self._raw_scores(self._entries[index], surface, plural=norm.plural[last])
            if raw:
                found.append((first, last, raw))
        # Longest match first (ties: leftmost); a match overlapping a kept one is dropped.
        found.sort(key=lambda m: (m[0] - m[1], m[0]))
        taken = np.zeros(len(norm.tokens), dtype=bool)  # (k,)
        kept: list[Mention] = []
        for first, last, raw in found:
            if taken[first : last + 1].any():
                continue
            taken[first : last + 1] = True
            start, stop = norm.starts[first], norm.ends[last]
            kept.append(
                Mention(start=start, end=stop, surface=text[start:stop], candidates=self._candidates(raw))
            )
        kept.sort(key=lambda m: m.start)
        return kept

    def link_batch(self, texts: Iterable[str]) -> list[list[Mention]]:
        """:meth:`link` for several texts."""
        return [self.link(text) for text in texts]

    def _raw_scores(self, entries: tuple[_Entry, ...], surface: str, *, plural: bool) -> dict[int, float]:
        """Unnormalised score of each entity an alias reaches from ``surface`` (match weight × prior).

        ``plural``: whether the last token of ``surface`` was folded from a plural.
        """
        written = _collapse(surface)
        raw: dict[int, float] = {}
        for entry in entries:
            if entry.plural_only and not plural:
                continue
            exact = written == entry.alias
            if entry.case_sensitive and not exact:
                continue
            weight = (LABEL_WEIGHT if entry.is_label else 1.0) * (EXACT_CASE_WEIGHT if exact else 1.0)
            score = weight * float(self._prior[entry.entity])
            if score > raw.get(entry.entity, 0.0):
                raw[entry.entity] = score
        return raw

    def _candidates(self, raw: dict[int, float]) -> tuple[EntityCandidate, ...]:
        total = sum(raw.values())
        ranked = sorted(raw.items(), key=lambda item: (-item[1], item[0]))
        kb = self.kb
        return tuple(
            EntityCandidate(entity=e, key=kb.entity_key(e), label=kb.entity_label(e), score=s / total)
            for e, s in ranked
        )
