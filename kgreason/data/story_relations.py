"""Story facts as relation-classification examples: what the neuro-symbolic extractor learns to read.

Each fact (head, relation, tail) of a reasoning story becomes one example: the sentence that states it (the
story's ``metadata["fact_sentences"]``; the whole story when no single sentence names both people), with the
first mention of the head and of the tail as entity spans, labelled with the relation. The reader
``story_relations`` wraps any story reader (``source``) so the extractor trains through the usual pipeline.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kgreason.core.example import Example
from kgreason.data.splits import DatasetSplits


def mention_span(text: str, name: str) -> tuple[int, int] | None:
    """Character span of the first whole-word mention of ``name`` in ``text`` (``None``: not mentioned)."""
    match = re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text)
    return (match.start(), match.end()) if match else None


def fact_examples(example: Example, *, label_facts: bool = True) -> list[Example | None]:
    """One relation example per fact of ``example`` (``None`` where the text never names both people).

    ``label_facts``: give each example its fact's relation as label (training); off for inference on
    stories whose facts are only (head, ?, tail) pairs.
    """
    sentences = example.metadata.get("sentences") or []
    where = example.metadata.get("fact_sentences") or []
    out: list[Example | None] = []
    for n, (head, relation, tail) in enumerate(example.facts or []):
        index = where[n] if n < len(where) else None
        candidates = [sentences[index]] if index is not None and index < len(sentences) else []
        candidates.append(example.text)
        built = None
        for text in candidates:
            head_span, tail_span = mention_span(text, head), mention_span(text, tail)
            if head_span and tail_span and head_span != tail_span:
                built = Example(
                    text=text,
                    spans=[head_span, tail_span],
                    label=relation if label_facts else None,
                    uid=f"{example.uid}#fact{n}",
                    metadata={"story": example.uid, "fact": n},
                )
                break
        out.append(built)
    return out


def read_story_relations(
    *,
    data_dir: str | Path | None = None,
    source: str = "kinship",
    source_options: dict[str, Any] | None = None,
    augment: str | None = None,
    augment_options: dict[str, Any] | None = None,
) -> DatasetSplits:
    """The facts of ``source``'s stories as relation examples (labels: the story edge relations).

    ``augment``: another story reader (e.g. ``kinship``, the built-in generator) whose training facts are added
    to the training examples, for more ways of stating each relation than the source's own templates.
    """
    from kgreason.data.readers import read_dataset

    stories = read_dataset(source, data_dir=data_dir, **(source_options or {}))

    def convert(examples: list[Example]) -> list[Example]:
        return [item for example in examples for item in fact_examples(example) if item is not None]

    train, dev, test = convert(stories.train), convert(stories.dev), convert(stories.test)
    if augment:
        extra = read_dataset(augment, data_dir=data_dir, **(augment_options or {}))
        train = train + convert(extra.train)
    relations = stories.info.get("relations") or sorted({e.label for e in [*train, *dev, *test]})
    return DatasetSplits(
        name="story_relations",
        train=train,
        dev=dev,
        test=test,
        labels=list(relations),
        files=list(stories.files),
        options={
            "source": source,
            "source_options": dict(source_options or {}),
            "augment": augment,
            "augment_options": dict(augment_options or {}),
        },
        info={"source": stories.name, "sizes": {"train": len(train), "dev": len(dev), "test": len(test)}},
    )
