"""Reasoning variants as predictors: ``examples -> logits (N, L)`` and ``examples -> label names``.

Every probe calls a predictor once per list of (possibly edited) examples, so each predictor encodes and scores a
whole list in batches. The variants:

* :class:`ModelPredictor` — a trained :class:`~kgreason.models.fused.KGReasonModel` (text, graph or fused);
* :class:`RulePredictor` — forward chaining of the rule file over the story's own facts (the symbolic baseline);
* :class:`NeuroSymbolicPredictor` — a trained relation extractor reads each story fact from the text, the rules
  compose the extracted facts;
* :class:`ConstrainedPredictor` — any of these, with rule-constrained inference: the argmax over labels the rules
  do not contradict;
* :class:`LateFusionPredictor` — a graph reasoner and a text model fused as a product of experts, the text's
  weight chosen on dev.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from kgreason.core.example import Example


class Predictor:
    """Base class: ``logits`` is what a variant computes; calling returns the argmax label names."""

    name: str = "predictor"
    labels: list[str]

    def logits(self, examples: Sequence[Example]) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, examples: Sequence[Example]) -> list[str]:
        examples = list(examples)
        if not examples:
            return []
        logits = self.logits(examples)  # (N, L)
        return [self.labels[i] for i in logits.argmax(-1).tolist()]


class ModelPredictor(Predictor):
    """A trained model; examples are encoded the way its training data were (story graphs attached)."""

    def __init__(
        self, *, name: str, model: Any, prepared: Any, batch_size: int = 64, precision: str = "fp32"
    ) -> None:
        self.name = name
        self.model = model
        self.prepared = prepared
        self.labels = list(prepared.task.labels)
        self.batch_size = batch_size
        self.precision = precision

    def logits(self, examples: Sequence[Example]) -> torch.Tensor:
        from kgreason.training.inference import predict_logits

        dataset = self.prepared.encode(list(examples), desc=f"encode ({self.name})")
        return predict_logits(
            self.model,
            dataset,
            collator=self.prepared.collator,
            batch_size=self.batch_size,
            precision=self.precision,
        )  # (N, L)


class RulePredictor(Predictor):
    """Forward chaining over each story's own facts and its people's genders.

    The answer is the label the rules derive for the query. Where they derive several (CLUTRR's composition
    table is ambiguous for a few chains, e.g. a wife's son's grandmother is one's mother or mother-in-law), the
    candidate seen most often as the answer to such stories in training (:meth:`fit`) goes first; nothing
    derived gives uniform logits.
    """

    name = "rules"

    def __init__(
        self, *, rules: Any, labels: Sequence[str], families: Mapping[str, str] | None = None
    ) -> None:
        from kgreason.rules.kinship import RELATION_FAMILY

        self.rules = rules
        self.labels = list(labels)
        #: relation -> its gender-neutral family, for the back-off of :meth:`keys` (default: kinship's)
        self.families = (
            dict(families) if families is not None else {r: f for r, (f, _) in RELATION_FAMILY.items()}
        )
        self.preferred: dict[tuple, str] = {}
        self.last_counts: dict[str, int] = {}

    def derived(self, examples: Sequence[Example], facts: Sequence[Sequence[tuple]] | None = None):
        """(N, L) booleans: the labels the rules derive for each story (its own facts, or ``facts``)."""
        from kgreason.rules import derived_labels

        facts = [example.facts or [] for example in examples] if facts is None else facts
        return derived_labels(
            self.rules,
            facts=[list(f) for f in facts],
            genders=[example.metadata.get("genders") or {} for example in examples],
            queries=[tuple(example.metadata["query"][:2]) for example in examples],
            labels=self.labels,
        )

    def fit(self, examples: Sequence[Example]) -> RulePredictor:
        """Learn which candidate answers ambiguous derivations, from training stories (their gold facts)."""
        from collections import Counter

        derived = self.derived(examples)  # (N, L)
        counts: dict[tuple, Counter] = {}
        for row, keys, example in zip(derived, self.keys(examples), examples, strict=True):
            if row.sum() > 1:
                candidates = frozenset(self.labels[i] for i in row.nonzero()[0])
                for key in keys:
                    counts.setdefault((key, candidates), Counter())[example.label] += 1
        self.preferred = {key: counter.most_common(1)[0][0] for key, counter in counts.items()}
        return self

    def keys(
        self, examples: Sequence[Example], facts: Sequence[Sequence[tuple]] | None = None
    ) -> list[list[tuple]]:
        """Per story, the contexts an ambiguous derivation is resolved by, most specific first: the relations
        along the story's path (when its facts form one), the path's relation families (gender-neutral:
        a wife's son's grandmother backs off to spouse, child, grandparent; ``families``), and the candidates
        alone."""
        from kgreason.rules.learn import story_path

        out = []
        for n, example in enumerate(examples):
            story = (example.facts or []) if facts is None else facts[n]
            path = story_path(story, tuple(example.metadata["query"][:2]))
            keys: list[tuple] = [()]
            if path:
                families = tuple(self.families.get(r, r) for r in path)
                keys = [("path", *path), ("families", *families), ()]
            out.append(keys)
        return out

    def scores(self, derived, keys: Sequence[Sequence[tuple]] | None = None) -> torch.Tensor:
        """(N, L) logits from derived-label flags: candidates 0 (the preferred one 1), others -1e4.

        ``keys``: per story, the contexts of :meth:`keys` (default: the candidates alone)."""
        flags = torch.as_tensor(derived, dtype=torch.bool)  # (N, L)
        logits = torch.where(flags, 0.0, -1e4)  # (N, L)
        logits[~flags.any(-1)] = 0.0  # nothing derived: uniform
        index = {label: i for i, label in enumerate(self.labels)}
        for row in (flags.sum(-1) > 1).nonzero().flatten().tolist():
            candidates = frozenset(self.labels[i] for i in flags[row].nonzero().flatten().tolist())
            for key in keys[row] if keys is not None else [()]:
                if (key, candidates) in self.preferred:
                    logits[row, index[self.preferred[(key, candidates)]]] = 1.0
                    break
        self.last_counts = {
            "unique": int((flags.sum(-1) == 1).sum()),
            "ambiguous": int((flags.sum(-1) > 1).sum()),
            "none": int((~flags.any(-1)).sum()),
        }
        return logits

    def logits(self, examples: Sequence[Example]) -> torch.Tensor:
        return self.scores(self.derived(examples), self.keys(examples))  # (N, L)


class ComposerPredictor(Predictor):
    """The relation composer (:mod:`kgreason.models.composer`) over each story's own graph."""

    name = "composer"

    def __init__(self, *, composer: Any, batch_size: int = 512) -> None:
        self.composer = composer
        self.labels = list(composer.config.labels)
        self.batch_size = batch_size

    def logits(self, examples: Sequence[Example]) -> torch.Tensor:
        examples = list(examples)
        with torch.no_grad():
            parts = [
                self.composer(self.composer.encode(examples[lo : lo + self.batch_size])).logits
                for lo in range(0, len(examples), self.batch_size)
            ]
        return torch.cat(parts) if parts else torch.zeros(0, len(self.labels))  # (N, L)


class LateFusionPredictor(Predictor):
    """``log p_graph + weight * log p_text`` over the graph reasoner's labels (a product of experts).

    ``fit(dev)`` picks ``weight`` from ``weights``: a weight above 0 only where dev shows it helps beyond chance
    (the paired bootstrap interval of its accuracy gain over the graph reasoner alone lies above 0), then the
    most accurate such weight (ties: the smaller). So the text moves answers only where dev says it knows
    something the graph does not; ``weight = 0`` is the graph reasoner alone. ``fitted`` records the choice.
    Text labels are matched to the graph's by name (a label the text model lacks gets its floor
    log-probability).
    """

    def __init__(
        self,
        *,
        graph: Predictor,
        text: Predictor,
        name: str = "fused_composer",
        weights: Sequence[float] = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0),
        confidence: float = 0.95,
    ) -> None:
        self.graph, self.text, self.name = graph, text, name
        self.labels = list(graph.labels)
        self.weights = tuple(weights)
        self.confidence = confidence
        self.weight = 0.0
        self.fitted: dict[str, Any] = {}
        self._order = [text.labels.index(label) if label in text.labels else -1 for label in self.labels]

    def _parts(self, examples: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor]:
        graph = torch.log_softmax(self.graph.logits(examples).float(), dim=-1)  # (N, L)
        text = torch.log_softmax(self.text.logits(examples).float(), dim=-1)  # (N, L_text)
        floor = text.min(dim=-1, keepdim=True).values  # (N, 1)
        index = torch.tensor([max(i, 0) for i in self._order], dtype=torch.long)  # (L,)
        aligned = torch.where(
            torch.tensor(self._order)[None, :] >= 0, text[:, index], floor
        )  # (N, L) the text's log-probabilities in the graph's label order
        return graph, aligned

    def fit(self, dev: Sequence[Example]) -> LateFusionPredictor:
        from kgreason.probes.effects import bootstrap_ci

        dev = [e for e in dev if e.label in self.labels]
        if not dev:
            return self
        graph, text = self._parts(dev)
        gold = torch.tensor([self.labels.index(e.label) for e in dev])  # (D,)
        right = {
            w: ((graph + w * text).argmax(-1) == gold).double().numpy() for w in self.weights
        }  # weight -> (D,) correct
        alone = right.get(0.0, (graph.argmax(-1) == gold).double().numpy())  # (D,)
        gains = {w: bootstrap_ci(r, minus=alone, confidence=self.confidence) for w, r in right.items() if w}
        helps = [w for w, ci in gains.items() if ci.low > 0]
        if helps:
            best = max(float(right[w].mean()) for w in helps)
            self.weight = min(w for w in helps if float(right[w].mean()) == best)
        self.fitted = {
            "weight": self.weight,
            "dev_accuracy": {str(w): float(r.mean()) for w, r in right.items()},
            "dev_gain_low": {str(w): float(ci.low) for w, ci in gains.items()},
        }
        return self

    def logits(self, examples: Sequence[Example]) -> torch.Tensor:
        graph, text = self._parts(examples)
        return graph + self.weight * text  # (N, L)


class StatedPredictor(RulePredictor):
    """The rules over each story's facts as its text states them (:func:`~kgreason.data.clutrr.stated_facts`):
    the gold pairs and genders, each relation as its sentence says. What a reader faithful to the text can
    score at best: where the text contradicts the gold graph, reading it right loses the answer."""

    name = "text_stated"

    def logits(self, examples: Sequence[Example]) -> torch.Tensor:
        from kgreason.data.clutrr import stated_facts

        facts = [stated_facts(example).facts for example in examples]
        return self.scores(self.derived(examples, facts), self.keys(examples, facts))  # (N, L)


@dataclass
class Extraction:
    """What the extractor read from a list of stories."""

    facts: list[list[tuple[str, str, str]]]
    unread: int
    total: int


class NeuroSymbolicPredictor(RulePredictor):
    """The extractor predicts the relation of every story fact from its sentence; the rules compose them.

    The people each fact connects come from the story graph (which pairs are related); the relation between
    them is read from the text. A fact whose sentence names neither person cannot be read and is left out.
    """

    name = "neuro_symbolic"

    def __init__(self, *, extractor: ModelPredictor, rules: Any, labels: Sequence[str]) -> None:
        super().__init__(rules=rules, labels=labels)
        self.extractor = extractor
        self.last: Extraction | None = None

    def extract(self, examples: Sequence[Example]) -> Extraction:
        from kgreason.data.story_relations import fact_examples

        slots: list[tuple[int, int]] = []
        items: list[Example] = []
        for i, example in enumerate(examples):
            for n, item in enumerate(fact_examples(example, label_facts=False)):
                if item is not None:
                    slots.append((i, n))
                    items.append(item)
        relations = self.extractor(items) if items else []
        read: list[dict[int, str]] = [{} for _ in examples]
        for (i, n), relation in zip(slots, relations, strict=True):
            read[i][n] = relation
        facts = []
        for example, found in zip(examples, read, strict=True):
            story = example.facts or []
            facts.append([(story[n][0], found[n], story[n][2]) for n in sorted(found)])
        total = sum(len(example.facts or []) for example in examples)
        return Extraction(facts=facts, unread=total - len(items), total=total)

    def logits(self, examples: Sequence[Example]) -> torch.Tensor:
        examples = list(examples)
        self.last = self.extract(examples)
        facts = self.last.facts
        return self.scores(self.derived(examples, facts), self.keys(examples, facts))  # (N, L)


class ConstrainedPredictor(Predictor):
    """``base`` with rule-constrained inference (never a label the rules contradict, given the genders)."""

    def __init__(self, *, base: Predictor, constraints: Any) -> None:
        self.base = base
        self.name = f"{base.name}+rules"
        self.labels = base.labels
        self.constraints = constraints

    def logits(self, examples: Sequence[Example]) -> torch.Tensor:
        logits = self.base.logits(examples)  # (N, L)
        from kgreason.rules import example_worlds

        # type-level worlds (genders): with the story's facts, chaining alone would answer a clean story
        forbidden = self.constraints.masks(example_worlds(examples)).forbidden  # (N, L)
        return logits.masked_fill(forbidden, -1e9)  # (N, L)
