"""The story reader: one encoder pass per story reads every candidate pair's relation family and every person's
gender (document-level relation extraction in the style of ATLOP, Zhou et al. AAAI 2021, with a multi-instance
log-sum-exp over mention pairs).

A mention's vector is the mean of its sub-word states; a directed mention pair ``(i, j)`` scores the 9 families
of ``j``'s person to ``i``'s from ``[m_i; m_j; m_i * m_j; c_ij]`` (``c_ij`` the mean state of the tokens between the
two mentions). A person pair ``(a, b)`` scores family ``f`` as ``s(a -> b)[f] + s(b -> a)[inverse f]``, each side a
log-sum-exp over the mention pairs within the sentence window: reading a pair in either direction gives the same
answer, by construction (inverse consistency). A person's gender is read from the log-sum-exp of its mentions.
The reader never sees gold facts or genders (:mod:`kgreason.data.story_graph`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from kgreason.core.example import Example
from kgreason.data.story_graph import StoryLayout, story_layout, story_targets
from kgreason.models.model_folder import SavedEncoderModel
from kgreason.rules.kinship import FAMILIES, INVERSE_INDEX

FORMAT = "kgreason-story-reader"
FORMAT_VERSION = 1
CONFIG_NAME = "reader.json"


@dataclass(kw_only=True)
class StoryReaderConfig:
    """The reader's shape: which encoder, how long a story may be, the sentence window of candidate pairs."""

    encoder: str = "embedded"
    max_length: int = 512
    window: int = 1
    context: str = "sentence"
    max_instances: int = 3
    dropout: float = 0.1
    families: list[str] = field(default_factory=lambda: list(FAMILIES))


@dataclass
class ReaderFeatures:
    """One story, tokenised by segment: each segment's token ids, its mentions' token ranges, and per candidate
    pair the mention pairs (instances) that may state its relation."""

    layout: StoryLayout
    segments: list[list[int]]  # token ids per segment
    mentions: list[tuple[int, int, int, int]]  # (segment, start token, end token, person)
    instances: list[list[tuple[int, int]]]  # per candidate pair (a, b): (mention of a, mention of b)
    marked: list[tuple[int, int, int, int]] = field(default_factory=list)  # (segment, pair, token of a, of b)
    families: list[int] | None = None
    genders: list[int] | None = None


@dataclass
class ReaderOutput:
    """Per story: ``(P, F)`` family log-probabilities of its candidate pairs, ``(N, 2)`` gender log-probabilities."""

    families: list[torch.Tensor]
    genders: list[torch.Tensor]
    loss: torch.Tensor | None = None


@dataclass
class StoryReading:
    """One story as read: its layout, ``(P, F)`` family and ``(N, 2)`` gender log-probabilities."""

    layout: StoryLayout
    families: Any
    genders: Any


class StoryReader(SavedEncoderModel, nn.Module):
    """Encoder + mention-pair family head + gender head (see the module docstring)."""

    folder_format = FORMAT
    folder_version = FORMAT_VERSION
    config_file = CONFIG_NAME
    config_section = "reader"
    config_class = StoryReaderConfig
    what = "story reader"

    def __init__(self, *, config: StoryReaderConfig, encoder: nn.Module, tokenizer: Any) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.tokenizer = tokenizer
        width = encoder.config.hidden_size
        self.pair_head = nn.Sequential(
            nn.Linear(4 * width, width),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(width, len(FAMILIES)),
        )
        self.gender_head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(width, 2))
        self.register_buffer("inverse", torch.tensor(INVERSE_INDEX), persistent=False)

    # ------------------------------------------------------------------------------------------ features
    def _segments(self, layout: StoryLayout, text_length: int) -> list[tuple[int, int]]:
        """Character ranges the encoder reads: the whole story, or each sentence (``context: sentence``)."""
        if self.config.context == "story" or not layout.sentences:
            return [(0, text_length)]
        return list(layout.sentences)

    def featurize(self, example: Example, *, targets: bool = False) -> ReaderFeatures:
        """Tokenise one story by segment and find each candidate pair's instances.

        A pair's instances are its mention pairs inside one segment; a pair with none (its people are never
        named in one sentence) takes them from the joint segments of the layout's ``joins``.
        """
        layout = story_layout(example, window=self.config.window)
        if self.config.context == "marked":
            return self._featurize_marked(example, layout, targets=targets)
        text = example.text
        segments = self._segments(layout, len(text))
        features = ReaderFeatures(
            layout=layout, segments=[], mentions=[], instances=[[] for _ in layout.pairs]
        )
        placed: dict[tuple[int, int], int] = {}  # (segment, layout mention) -> feature mention

        def add_segment(lo: int, hi: int) -> int:
            encoded = self.tokenizer(
                text[lo:hi], truncation=True, max_length=self.config.max_length, return_offsets_mapping=True
            )
            g = len(features.segments)
            features.segments.append(list(encoded["input_ids"]))
            offsets = encoded["offset_mapping"]
            for n, m in enumerate(layout.mentions):
                if m.start >= lo and m.end <= hi:
                    inside = [
                        t for t, (s, e) in enumerate(offsets) if e > s and s < m.end - lo and e > m.start - lo
                    ]
                    if inside:
                        placed[(g, n)] = len(features.mentions)
                        features.mentions.append((g, inside[0], inside[-1] + 1, m.person))
            return g

        for lo, hi in segments:
            add_segment(lo, hi)
        by_segment: dict[int, dict[int, list[int]]] = {}
        for (g, _), k in placed.items():
            by_segment.setdefault(g, {}).setdefault(features.mentions[k][3], []).append(k)
        index = {pair: n for n, pair in enumerate(layout.pairs)}
        for people in by_segment.values():
            for (a, b), n in index.items():
                features.instances[n] += [(i, j) for i in people.get(a, []) for j in people.get(b, [])]
        if len(segments) > 1:
            for first, last in layout.joins:
                g = add_segment(layout.sentences[first][0], layout.sentences[last][1])
                inside = [(k, features.mentions[k][3]) for (seg, _), k in placed.items() if seg == g]
                for (a, b), n in index.items():
                    if not features.instances[n]:
                        features.instances[n] = [
                            (i, j) for i, p in inside if p == a for j, q in inside if q == b
                        ]
        if targets:
            gold = story_targets(example, layout)
            features.families, features.genders = gold.families, gold.genders
        return features

    def _featurize_marked(self, example: Example, layout: StoryLayout, *, targets: bool) -> ReaderFeatures:
        """``context: marked``: one input per (candidate pair, sentence naming both), the pair's mentions marked
        ``@ a @`` and ``# b #`` (typed entity markers, Zhou and Chen 2022); a pair never named in one sentence
        is read from a join of the layout."""
        text = example.text
        features = ReaderFeatures(
            layout=layout, segments=[], mentions=[], instances=[[] for _ in layout.pairs]
        )
        where: dict[int, set[int]] = {}
        for m in layout.mentions:
            where.setdefault(m.person, set()).add(m.sentence)
        for n, (a, b) in enumerate(layout.pairs):
            spans = [layout.sentences[s] for s in sorted(where.get(a, set()) & where.get(b, set()))]
            if not spans:
                spans = [
                    (layout.sentences[x][0], layout.sentences[y][1])
                    for x, y in layout.joins
                    if where.get(a, set()) & {x, y} and where.get(b, set()) & {x, y}
                ]
            for lo, hi in spans[: self.config.max_instances]:
                marked = self._mark(text, lo, hi, layout, a, b)
                if marked is None:
                    continue
                ids, token_a, token_b = marked
                features.marked.append((len(features.segments), n, token_a, token_b))
                features.segments.append(ids)
        if targets:
            gold = story_targets(example, layout)
            features.families, features.genders = gold.families, gold.genders
        return features

    def _mark(
        self, text: str, lo: int, hi: int, layout: StoryLayout, a: int, b: int
    ) -> tuple[list[int], int, int] | None:
        """Token ids of ``text[lo:hi]`` with ``a``'s mentions marked ``@ .. @`` and ``b``'s ``# .. #``, and the
        token positions of the first marker of each (``None`` when truncation cuts one off)."""
        pieces, at, first = [], lo, {}
        for m in layout.mentions:
            if m.person not in (a, b) or m.start < lo or m.end > hi:
                continue
            mark = "@" if m.person == a else "#"
            pieces.append(text[at : m.start])
            first.setdefault(mark, sum(map(len, pieces)))
            pieces.append(f"{mark} {text[m.start : m.end]} {mark}")
            at = m.end
        pieces.append(text[at:hi])
        if len(first) < 2:
            return None
        encoded = self.tokenizer(
            "".join(pieces), truncation=True, max_length=self.config.max_length, return_offsets_mapping=True
        )
        tokens = {}
        for t, (s, e) in enumerate(encoded["offset_mapping"]):
            for mark, char in first.items():
                if e > s and s == char:
                    tokens.setdefault(mark, t)
        if len(tokens) < 2:
            return None
        return list(encoded["input_ids"]), tokens["@"], tokens["#"]

    # ------------------------------------------------------------------------------------------- forward
    def forward(self, batch: Sequence[ReaderFeatures]) -> ReaderOutput:
        device = self.pair_head[0].weight.device
        flat = [ids for f in batch for ids in f.segments]
        width = max((len(ids) for ids in flat), default=1)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((max(len(flat), 1), width), pad, dtype=torch.long)
        mask = torch.zeros((max(len(flat), 1), width), dtype=torch.long)
        for row, segment in enumerate(flat):
            ids[row, : len(segment)] = torch.tensor(segment)
            mask[row, : len(segment)] = 1
        hidden = self.encoder(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        hidden = hidden.float()  # (S, T, H): every segment of the batch
        families, genders, losses = [], [], []
        offset = 0
        for f in batch:
            fam, gen = self._story(hidden[offset : offset + len(f.segments)], f)  # (P, F), (N, 2)
            offset += len(f.segments)
            families.append(fam)
            genders.append(gen)
            if f.families is not None and f.genders is not None:
                losses.append(self._loss(fam, gen, f))
        loss = torch.stack(losses).mean() if losses else None
        return ReaderOutput(families=families, genders=genders, loss=loss)

    def _story_marked(self, hidden: torch.Tensor, f: ReaderFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        people, pairs = len(f.layout.people), len(f.layout.pairs)
        scores = hidden.new_zeros((pairs, len(FAMILIES)))  # pairs without an instance: uniform
        genders = hidden.new_zeros((people, 2))
        if not f.marked:
            return scores.log_softmax(-1), genders.log_softmax(-1)
        seg = torch.tensor([g for g, *_ in f.marked], device=hidden.device)
        owner = torch.tensor([n for _, n, _, _ in f.marked], device=hidden.device)
        va = hidden[seg, torch.tensor([x for *_, x, _ in f.marked], device=hidden.device)]  # (Q, H)
        vb = hidden[seg, torch.tensor([y for *_, y in f.marked], device=hidden.device)]  # (Q, H)
        both = (
            self.pair_head(torch.cat([va, vb, va * vb, hidden[seg, 0]], -1)).float().log_softmax(-1)
        )  # (Q, F)
        related = both.new_full(scores.shape, float("-inf")).scatter_reduce(
            0, owner[:, None].expand_as(both), both, reduce="amax"
        )
        unrelated = both.new_full((pairs,), float("inf")).scatter_reduce(0, owner, both[:, 0], reduce="amin")
        seen = torch.zeros(pairs, dtype=torch.bool, device=hidden.device)
        seen[owner] = True
        scores = torch.where(seen[:, None], torch.cat([unrelated[:, None], related[:, 1:]], -1), scores)
        index = torch.tensor(f.layout.pairs, device=hidden.device)[owner]  # (Q, 2) people
        person = torch.cat([index[:, 0], index[:, 1]])  # (2Q,)
        votes = self.gender_head(torch.cat([va, vb])).float().log_softmax(-1)  # (2Q, 2)
        total = genders.index_add(0, person, votes)
        counts = torch.zeros(people, device=hidden.device).index_add(
            0, person, torch.ones_like(person, dtype=torch.float)
        )
        genders = total / counts.clamp_min(1.0)[:, None]  # mean log-probability over a person's instances
        return scores.log_softmax(-1), genders.log_softmax(-1)  # (P, F), (N, 2)

    def _story(self, hidden: torch.Tensor, f: ReaderFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.context == "marked":
            return self._story_marked(hidden, f)
        people = len(f.layout.people)
        if not f.mentions:
            return hidden.new_zeros((len(f.layout.pairs), len(FAMILIES))), hidden.new_zeros((people, 2))
        mentions = torch.stack([hidden[g, s:e].mean(0) for g, s, e, _ in f.mentions])  # (M, H)
        person = torch.tensor([p for *_, p in f.mentions], device=hidden.device)
        pooled = hidden.new_full((people, hidden.size(-1)), float("-inf"))
        pooled = pooled.scatter_reduce(0, person[:, None].expand_as(mentions), mentions, reduce="amax")
        pooled = torch.nan_to_num(pooled, neginf=0.0)  # (N, H): unmentioned people -> 0
        genders = self.gender_head(pooled).float().log_softmax(-1)  # (N, 2)
        flat = [(p, i, j) for p, pairs in enumerate(f.instances) for i, j in pairs]
        scores = hidden.new_zeros((len(f.layout.pairs), len(FAMILIES)))  # pairs without an instance: uniform
        if flat:
            owner = torch.tensor([p for p, _, _ in flat], device=hidden.device)
            i = torch.tensor([x for _, x, _ in flat], device=hidden.device)
            j = torch.tensor([y for _, _, y in flat], device=hidden.device)
            context = torch.stack(
                [
                    self._between(hidden[f.mentions[a][0]], f.mentions[a][1:3], f.mentions[b][1:3])
                    for _, a, b in flat
                ]
            )  # (Q, H)
            ahead = self.pair_head(
                torch.cat([mentions[i], mentions[j], mentions[i] * mentions[j], context], -1)
            )
            backward = self.pair_head(
                torch.cat([mentions[j], mentions[i], mentions[i] * mentions[j], context], -1)
            )
            both = (
                (ahead + backward[:, self.inverse]).float().log_softmax(-1)
            )  # (Q, F): b to a, read both ways
            # multi-instance: a pair is related as an instance says most strongly; "none" only if all say so
            related = both.new_full(scores.shape, float("-inf")).scatter_reduce(
                0, owner[:, None].expand_as(both), both, reduce="amax"
            )
            unrelated = both.new_full((len(f.layout.pairs),), float("inf")).scatter_reduce(
                0, owner, both[:, 0], reduce="amin"
            )
            seen = torch.zeros(len(f.layout.pairs), dtype=torch.bool, device=hidden.device)
            seen[owner] = True
            pooled_scores = torch.cat([unrelated[:, None], related[:, 1:]], -1)  # (P, F)
            scores = torch.where(seen[:, None], pooled_scores, scores)
        return scores.log_softmax(-1), genders  # (P, F), (N, 2)

    @staticmethod
    def _between(hidden: torch.Tensor, a: tuple[int, int], b: tuple[int, int]) -> torch.Tensor:
        lo, hi = min(a[1], b[1]), max(a[0], b[0])
        return hidden[lo:hi].mean(0) if hi > lo else hidden.new_zeros(hidden.size(-1))  # (H,)

    @staticmethod
    def _loss(families: torch.Tensor, genders: torch.Tensor, f: ReaderFeatures) -> torch.Tensor:
        device = families.device
        terms = []
        fam = torch.tensor(f.families, device=device)
        if families.numel() and (fam >= 0).any():
            terms.append(nn.functional.nll_loss(families, fam, ignore_index=-100))
        gen = torch.tensor(f.genders, device=device)
        if genders.numel() and (gen >= 0).any():
            terms.append(nn.functional.nll_loss(genders, gen, ignore_index=-100))
        return torch.stack(terms).sum() if terms else families.sum() * 0.0

    @torch.no_grad()
    def read(
        self, examples: Sequence[Example], *, batch_size: int = 32, dtype: torch.dtype | None = None
    ) -> list[StoryReading]:
        """Read each story: its layout with ``(P, F)`` family and ``(N, 2)`` gender log-probabilities (numpy).

        ``dtype``: an autocast dtype (``torch.bfloat16``) or ``None`` for fp32.
        """
        was_training = self.training
        self.eval()
        device = self.pair_head[0].weight.device
        features = [self.featurize(example) for example in examples]
        order = sorted(range(len(features)), key=lambda n: sum(map(len, features[n].segments)))
        out: list[StoryReading | None] = [None] * len(features)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                result = self([features[n] for n in chunk])
            for n, fam, gen in zip(chunk, result.families, result.genders, strict=True):
                out[n] = StoryReading(
                    layout=features[n].layout,
                    families=fam.float().cpu().numpy(),
                    genders=gen.float().cpu().numpy(),
                )
        self.train(was_training)
        return [reading for reading in out if reading is not None]

    # ---------------------------------------------------------------------------------------- save / load
    @classmethod
    def from_folder_parts(
        cls, *, config: StoryReaderConfig, encoder_config: Any, tokenizer: Any
    ) -> StoryReader:
        from kgreason.encoders.resolve import encoder_from_config

        return cls(config=config, encoder=encoder_from_config(encoder_config), tokenizer=tokenizer)


def build_story_reader(config: StoryReaderConfig) -> StoryReader:
    """A reader over ``config.encoder`` (``embedded``, a folder or a hub id) with freshly initialised heads."""
    from kgreason.models.encoder import load_encoder_for_training

    parts = load_encoder_for_training(config.encoder)
    return StoryReader(config=config, encoder=parts.model, tokenizer=parts.tokenizer)
