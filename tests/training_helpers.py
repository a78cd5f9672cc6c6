"""A tiny model and task for trainer tests: a random 2-layer BERT + linear head on separable synthetic text."""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from kgreason.core.batch import Batch, Collator, EncodedExample
from kgreason.core.example import Example
from kgreason.core.output import ModelOutput
from kgreason.tasks.base import EncodedDataset, Task, TaskMetrics

#: Each class draws its words from its own vocabulary, so a bag of words separates them.
WORDS = {
    "pos": ["apple", "river", "garden", "music", "summer", "bright", "friend", "happy"],
    "neg": ["stone", "winter", "broken", "storm", "empty", "dark", "angry", "lost"],
}


@lru_cache(maxsize=1)
def tokenizer() -> Any:
    """The embedded encoder's tokenizer (on disk; no network)."""
    from transformers import AutoTokenizer

    from kgreason.encoders.resolve import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path())


class TinyClassifier(nn.Module):
    """A random tiny BERT (``encoder``) + linear head over [CLS] that obeys the trainer's model contract.

    ``nan_at_forward``: the training forward pass (0-based count) whose loss is made NaN.
    """

    def __init__(
        self, *, num_labels: int = 2, dropout: float = 0.1, nan_at_forward: int | None = None
    ) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        config = BertConfig(
            vocab_size=tokenizer().vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            max_position_embeddings=64,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
        )
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.norm = nn.LayerNorm(32)
        self.head = nn.Linear(32, num_labels)
        self.nan_at_forward = nan_at_forward
        self.train_forwards = 0
        self.seen: list[dict[str, Any]] = []  # per training forward: example indices, autocast state

    def forward(self, batch: Batch) -> ModelOutput:
        hidden = self.encoder(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            token_type_ids=batch.token_type_ids,
        ).last_hidden_state  # (B, T, H)
        pooled = self.norm(hidden[:, 0])  # (B, H)
        logits = self.head(pooled)  # (B, L)
        loss = None
        if batch.labels is not None:
            loss = nn.functional.cross_entropy(logits.float(), batch.labels)
            if self.training:
                device_type = batch.input_ids.device.type
                self.seen.append(
                    {
                        "index": batch.index.tolist(),
                        "autocast": torch.is_autocast_enabled(device_type),
                        "dtype": logits.dtype,  # a linear layer: bf16 under autocast
                    }
                )
                if self.train_forwards == self.nan_at_forward:
                    loss = loss * float("nan")
                self.train_forwards += 1
        return ModelOutput(logits=logits, loss=loss, pooled=pooled)


class ToyTask(Task):
    """Sequence classification with accuracy, enough of the task contract for the trainer."""

    name = "toy_sequence"
    head = "sequence"
    primary_metric = "accuracy"

    def encode(self, example: Example, *, tokenizer: Any, max_length: int, index: int = 0) -> EncodedExample:
        enc = tokenizer(example.text, truncation=True, max_length=max_length)
        return EncodedExample(
            input_ids=enc["input_ids"],
            token_type_ids=enc.get("token_type_ids"),
            labels=None if example.label is None else self.label_id(example.label),
            index=index,
            truncated=len(enc["input_ids"]) >= max_length,
        )

    def decode(self, logits: torch.Tensor, batch: Batch) -> list[Any]:
        return [self.labels[i] for i in logits.argmax(-1).tolist()]

    def metrics(self, predictions: Sequence[Any], examples: Sequence[Example]) -> TaskMetrics:
        right = sum(p == e.label for p, e in zip(predictions, examples, strict=True))
        return TaskMetrics(values={"accuracy": right / max(1, len(examples))}, primary="accuracy")


def make_examples(n: int, *, seed: int, min_words: int = 2, max_words: int = 24) -> list[Example]:
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        words = [rng.choice(WORDS[label]) for _ in range(rng.randint(min_words, max_words))]
        examples.append(Example(text=" ".join(words), label=label))
    return examples


def make_data(
    *, n_train: int = 160, n_dev: int = 48, seed: int = 0
) -> tuple[ToyTask, EncodedDataset, EncodedDataset]:
    task = ToyTask(labels=["neg", "pos"])
    tok = tokenizer()
    train = task.encode_all(make_examples(n_train, seed=seed), tokenizer=tok, max_length=48)
    dev = task.encode_all(make_examples(n_dev, seed=seed + 1000), tokenizer=tok, max_length=48)
    return task, train, dev


def collator() -> Collator:
    return Collator(pad_token_id=tokenizer().pad_token_id)


def make_model(*, seed: int = 0, **kwargs: Any) -> TinyClassifier:
    torch.manual_seed(seed)
    return TinyClassifier(**kwargs)
