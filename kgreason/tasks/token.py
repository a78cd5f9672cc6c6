"""Token classification (NER): one tag per word, scored on entities with seqeval.

Words (``example.tokens``) are tokenised with ``is_split_into_words=True``; the tag goes on the first sub-token
of each word and :data:`~kgreason.tasks.base.IGNORE_INDEX` on the other sub-tokens and on special tokens.
Decoding reads the first sub-token of each word; words cut off by truncation are predicted ``"O"`` when the
predictions are aligned to the examples (:func:`align_to_words`), and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kgreason.core.batch import IGNORE_INDEX, EncodedExample
from kgreason.tasks.base import LabelError, Task, TaskMetrics
from kgreason.tasks.sequence import ExampleError, check_max_length, describe, gold_labels

if TYPE_CHECKING:
    from torch import Tensor

    from kgreason.core.batch import Batch
    from kgreason.core.example import Example

#: The tag of a word outside every entity, and of words cut off by truncation.
OUTSIDE = "O"


@dataclass
class AlignedPredictions:
    """Predicted tags with exactly one tag per word of each example.

    Attributes:
        tags: one tag list per example.
        words_cut: words that had no prediction (cut off by truncation) and were given ``"O"``.
        examples_cut: examples with at least one such word.
    """

    tags: list[list[str]]
    words_cut: int
    examples_cut: int


def align_to_words(predictions: Sequence[Sequence[str]], examples: Sequence[Example]) -> AlignedPredictions:
    """Pad each prediction with ``"O"`` to its example's number of words (the words truncation cut off)."""
    if len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    tags: list[list[str]] = []
    words_cut = examples_cut = 0
    for i, (predicted, example) in enumerate(zip(predictions, examples, strict=True)):
        words = len(example.tokens or ())
        if len(predicted) > words:
            raise ValueError(f"{describe(example, i)}: {len(predicted)} predicted tags for {words} words")
        missing = words - len(predicted)
        words_cut += missing
        examples_cut += missing > 0
        tags.append(list(predicted) + [OUTSIDE] * missing)
    return AlignedPredictions(tags=tags, words_cut=words_cut, examples_cut=examples_cut)


def _scores(gold: list[list[str]], predicted: list[list[str]], **mode: Any) -> dict[str, Any]:
    from seqeval.metrics import classification_report

    report = classification_report(gold, predicted, output_dict=True, zero_division=0, **mode)
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    per_type = {
        name: {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1-score"]),
            "support": int(row["support"]),
        }
        for name, row in report.items()
        if not name.endswith(" avg")
    }
    return {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "per_type": per_type,
    }


class TokenClassificationTask(Task):
    """``tokens`` -> one tag per word (``label``); entity-level precision / recall / F1 (seqeval).

    ``values`` hold the conlleval-compatible scores (seqeval's default mode) and the token accuracy; ``extra``
    holds strict IOB2 scores (an entity counts only with a well-formed ``B-``/``I-`` sequence), per-type scores
    and the number of words cut off by truncation.
    """

    name = "token_classification"
    head = "token"
    primary_metric = "f1"

    def __init__(self, *, labels: Sequence[str]) -> None:
        super().__init__(labels=labels)
        if not self.labels:
            raise LabelError(f"{self.name} needs a tag set (e.g. O, B-PER, I-PER, ...), got none")

    def _words(self, example: Example, index: int) -> list[str]:
        words = example.tokens
        if not words:
            state = "missing" if words is None else "empty"
            raise ExampleError(f"{describe(example, index)}: tokens are {state}; expected a list of words")
        for j, word in enumerate(words):
            if not isinstance(word, str) or not word.strip():
                raise ExampleError(
                    f"{describe(example, index)}: word {j} is {word!r}; expected non-blank text"
                )
        return list(words)

    def _tag_ids(self, example: Example, index: int, words: int) -> list[int] | None:
        if example.label is None:
            return None
        tags = example.label
        if isinstance(tags, str) or not isinstance(tags, Sequence) or len(tags) != words:
            count = (
                len(tags) if isinstance(tags, Sequence) and not isinstance(tags, str) else type(tags).__name__
            )
            raise ExampleError(f"{describe(example, index)}: label has {count} tags for {words} words")
        where = describe(example, index)
        return [self.label_id(tag, where=f"{where}, word {j}") for j, tag in enumerate(tags)]

    @staticmethod
    def _tokenize(tokenizer: Any, words: list[str], max_length: int) -> tuple[Any, bool]:
        encoding = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length + 1)
        if len(encoding["input_ids"]) <= max_length:
            return encoding, False
        return tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length), True

    def encode(self, example: Example, *, tokenizer: Any, max_length: int, index: int = 0) -> EncodedExample:
        words = self._words(example, index)
        tag_ids = self._tag_ids(example, index, len(words))
        check_max_length(tokenizer, max_length, pair=False)
        encoding, truncated = self._tokenize(tokenizer, words, max_length)
        word_ids = encoding.word_ids()
        seen = {w for w in word_ids if w is not None}
        end = max(seen, default=-1) + 1 if truncated else len(words)
        silent = [j for j in range(end) if j not in seen]
        if silent:  # words the tokenizer drops entirely (e.g. a zero-width space): keep them as [UNK]
            words = [tokenizer.unk_token if j in silent else word for j, word in enumerate(words)]
            encoding, truncated = self._tokenize(tokenizer, words, max_length)
            word_ids = encoding.word_ids()
        labels = None
        if tag_ids is not None:
            labels = []
            previous = None
            for word in word_ids:
                labels.append(IGNORE_INDEX if word is None or word == previous else tag_ids[word])
                previous = word
        return EncodedExample(
            input_ids=list(encoding["input_ids"]),
            token_type_ids=list(encoding["token_type_ids"]) if "token_type_ids" in encoding else None,
            labels=labels,
            word_ids=list(word_ids),
            index=index,
            truncated=truncated,
        )

    def decode(self, logits: Tensor, batch: Batch) -> list[list[str]]:
        """One tag per word present in each input, from ``(B, T, L)`` logits.

        The first sub-token of each word is found from ``batch.word_ids`` (``(B, T)``, ``-1`` where none) when
        the batch has them, else from ``batch.labels`` (first sub-tokens are the positions that carry a label).
        Words cut off by truncation have no tag here; :func:`align_to_words` gives them ``"O"``.
        """
        if logits.dim() != 3 or logits.shape[-1] != self.num_labels:
            raise ValueError(f"expected logits of shape (B, T, {self.num_labels}), got {tuple(logits.shape)}")
        best = logits.argmax(dim=-1)  # (B, T)
        word_ids = getattr(batch, "word_ids", None)
        if word_ids is not None:
            shifted = word_ids.new_full(word_ids.shape, -1)  # (B, T)
            shifted[:, 1:] = word_ids[:, :-1]
            first = (word_ids >= 0) & (word_ids != shifted)  # (B, T)
        elif batch.labels is not None:
            first = batch.labels != IGNORE_INDEX  # (B, T)
        else:
            raise ValueError(
                "token classification decoding needs batch.word_ids or batch.labels to find each word's first "
                "sub-token; this batch has neither"
            )
        if first.shape != best.shape:
            raise ValueError(
                f"logits cover {tuple(best.shape)} tokens but the batch has {tuple(first.shape)}"
            )
        return [[self.labels[i] for i in row[mask].tolist()] for row, mask in zip(best, first, strict=True)]

    def metrics(self, predictions: Sequence[Sequence[str]], examples: Sequence[Example]) -> TaskMetrics:
        from seqeval.scheme import IOB2

        gold = [list(tags) for tags in gold_labels(examples, predictions)]
        aligned = align_to_words(predictions, examples)
        for i, (g, p) in enumerate(zip(gold, aligned.tags, strict=True)):
            if len(g) != len(p):
                raise ExampleError(f"{describe(examples[i], i)}: {len(g)} gold tags for {len(p)} words")
        tokens = sum(len(g) for g in gold)
        correct = sum(
            a == b for g, p in zip(gold, aligned.tags, strict=True) for a, b in zip(g, p, strict=True)
        )
        default = _scores(gold, aligned.tags)
        strict = _scores(gold, aligned.tags, mode="strict", scheme=IOB2)
        values = {
            "precision": default["precision"],
            "recall": default["recall"],
            "f1": default["f1"],
            "token_accuracy": correct / tokens if tokens else 0.0,
        }
        extra = {
            "per_type": default["per_type"],
            "strict_iob2": {key: strict[key] for key in ("precision", "recall", "f1", "per_type")},
            "words_cut": aligned.words_cut,
            "examples_cut": aligned.examples_cut,
            "count": len(gold),
        }
        return TaskMetrics(values=values, primary=self.primary_metric, extra=extra)
