"""One encoded example, a padded mini-batch of them, and the collator that builds it with dynamic padding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torch import Tensor
    from torch_geometric.data import Batch as GraphBatch
    from torch_geometric.data import Data


#: Label id of positions that carry no label (sub-word continuations, padding, special tokens).
IGNORE_INDEX = -100


@dataclass
class EncodedExample:
    """One example as model input.

    Attributes:
        input_ids: token ids, ``[T]``; for multiple choice one list per choice, ``[C][T_c]``.
        token_type_ids: segment ids shaped like ``input_ids`` (``None`` when the tokenizer has none).
        labels: a label id (sequence / relation), one id per token with :data:`IGNORE_INDEX` where no label
            applies (token classification), or the right choice index (multiple choice); ``None`` unlabelled.
        marker_positions: token positions of the head and tail entity markers (relation classification).
        word_ids: word index of each token, ``None`` for special tokens (token classification).
        graph: the example's subgraph (``edge_index``, ``edge_type``, ``n_id``, ``seed_mask``) for graph variants.
        label_masks: ``(entailed, forbidden)``, one flag per label: what the rules entail / contradict for this
            example (the soft rule-constraint loss reads them); ``None`` without rules.
        features: tabular features of the example (``ModelConfig.num_features`` of them), or ``None``.
        index: position of the example in its dataset (predictions are returned in this order).
        truncated: whether the text was cut to the model's length limit.
    """

    input_ids: list[int] | list[list[int]]
    token_type_ids: list[int] | list[list[int]] | None = None
    labels: int | list[int] | None = None
    marker_positions: tuple[int, int] | None = None
    word_ids: list[int | None] | None = None
    graph: Data | None = None
    label_masks: tuple[list[bool], list[bool]] | None = None
    features: list[float] | None = None
    index: int = 0
    truncated: bool = False

    @property
    def length(self) -> int:
        """Longest token sequence of the example (what padding and length bucketing look at)."""
        ids = self.input_ids
        if ids and isinstance(ids[0], list):
            return max(len(choice) for choice in ids)
        return len(ids)


@dataclass
class Batch:
    """Model input for ``B`` examples, padded to the longest sequence in the batch (not to ``max_length``).

    Attributes:
        input_ids: ``(B, T)``, or ``(B, C, T)`` for multiple choice.
        attention_mask: like ``input_ids``; 1 on real tokens.
        token_type_ids: like ``input_ids``, or ``None``.
        labels: ``(B,)`` class / choice ids, ``(B, T)`` token label ids (``-100`` where ignored), or ``None``.
        marker_positions: ``(B, 2)`` head / tail marker token positions (relation classification), or ``None``.
        graph: the examples' subgraphs as one PyG ``Batch`` (``batch`` maps nodes to examples), or ``None``.
        index: ``(B,)`` dataset positions of the examples.
        word_ids: ``(B, T)`` word index of each token, ``-1`` on special tokens and padding (token
            classification), or ``None``.
        label_masks: ``(B, 2, L)`` booleans: labels the rules entail (``[:, 0]``) and contradict (``[:, 1]``) for
            each example, or ``None``.
        features: ``(B, F)`` float tabular features, or ``None``.
    """

    input_ids: Tensor
    attention_mask: Tensor
    token_type_ids: Tensor | None = None
    labels: Tensor | None = None
    marker_positions: Tensor | None = None
    graph: GraphBatch | None = None
    index: Tensor | None = None
    word_ids: Tensor | None = None
    label_masks: Tensor | None = None
    features: Tensor | None = None

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Batch:
        """A copy with every tensor (and the graph) on ``device``."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and hasattr(value, "to"):
                value = value.to(device, non_blocking=non_blocking)
            moved[f.name] = value
        return replace(self, **moved)

    @property
    def num_tokens(self) -> int:
        """Real (unpadded) tokens in the batch."""
        return int(self.attention_mask.sum())


def _pad(rows: Sequence[Sequence[int]], width: int, value: int) -> Tensor:
    out = torch.full((len(rows), width), value, dtype=torch.long)  # (R, T)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    return out


class Collator:
    """Encoded examples -> :class:`Batch`, padding to the batch's longest sequence.

    Args:
        pad_token_id: the tokenizer's padding id.
        pad_to_multiple_of: round the padded length up (8 helps tensor cores on GPU); ``None`` to not round.
    """

    def __init__(self, *, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def _width(self, longest: int) -> int:
        m = self.pad_to_multiple_of
        return longest if not m else -(-longest // m) * m

    def __call__(self, items: Sequence[EncodedExample]) -> Batch:
        if not items:
            raise ValueError("cannot collate an empty batch")
        choice = isinstance(items[0].input_ids[0], list) if items[0].input_ids else False
        width = self._width(max(item.length for item in items))
        if choice:
            num_choices = max(len(item.input_ids) for item in items)
            rows = [ids for item in items for ids in _choices(item.input_ids, num_choices)]
            input_ids = _pad(rows, width, self.pad_token_id).view(len(items), num_choices, width)  # (B, C, T)
            lengths = [len(ids) for item in items for ids in _choices(item.input_ids, num_choices)]
            attention = _lengths_mask(lengths, width).view(len(items), num_choices, width)  # (B, C, T)
            types = None
            if items[0].token_type_ids is not None:
                type_rows = [ids for item in items for ids in _choices(item.token_type_ids, num_choices)]
                types = _pad(type_rows, width, 0).view(len(items), num_choices, width)  # (B, C, T)
        else:
            input_ids = _pad([item.input_ids for item in items], width, self.pad_token_id)  # (B, T)
            attention = _lengths_mask([len(item.input_ids) for item in items], width)  # (B, T)
            types = None
            if items[0].token_type_ids is not None:
                types = _pad([item.token_type_ids for item in items], width, 0)  # (B, T)
        labels = None
        if items[0].labels is not None:
            if isinstance(items[0].labels, list):
                labels = _pad([item.labels for item in items], width, IGNORE_INDEX)  # (B, T)
            else:
                labels = torch.tensor([item.labels for item in items], dtype=torch.long)  # (B,)
        markers = None
        if items[0].marker_positions is not None:
            markers = torch.tensor([item.marker_positions for item in items], dtype=torch.long)  # (B, 2)
        graph = None
        if items[0].graph is not None:
            from torch_geometric.data import Batch as GraphBatch

            graph = GraphBatch.from_data_list([item.graph for item in items])
        index = torch.tensor([item.index for item in items], dtype=torch.long)  # (B,)
        word_ids = None
        if items[0].word_ids is not None and not choice:
            word_rows = [[-1 if w is None else w for w in item.word_ids] for item in items]
            word_ids = _pad(word_rows, width, -1)  # (B, T)
        label_masks = None
        if items[0].label_masks is not None:
            label_masks = torch.tensor(
                [list(item.label_masks) for item in items], dtype=torch.bool
            )  # (B, 2, L)
        features = None
        if items[0].features is not None:
            features = torch.tensor([item.features for item in items], dtype=torch.float32)  # (B, F)
        return Batch(
            label_masks=label_masks,
            features=features,
            input_ids=input_ids,
            attention_mask=attention,
            token_type_ids=types,
            labels=labels,
            marker_positions=markers,
            graph=graph,
            index=index,
            word_ids=word_ids,
        )


def _choices(rows: list, num_choices: int) -> list:
    """Pad a ragged number of choices with empty rows (fully masked)."""
    return list(rows) + [[] for _ in range(num_choices - len(rows))]


def _lengths_mask(lengths: Sequence[int], width: int) -> Tensor:
    lengths_t = torch.as_tensor(lengths, dtype=torch.long)  # (R,)
    return (torch.arange(width)[None, :] < lengths_t[:, None]).long()  # (R, T)
