"""KGReasonModel: a pretrained text encoder fused with a relation-aware GNN over each example's subgraph.

The design follows QA-GNN (Yasunaga et al., NAACL 2021): the text becomes one extra **context node** of the
example's knowledge subgraph, every KB node is scored for its **relevance** to the text, and a GNN reasons
jointly over the context node and the KB nodes::

    input_ids ──► encoder (AutoModel) ──► token states (B,T,D) ──────────────────────────┐
                                   └──► [CLS] (B,D) ─► Linear ─► context node c_b ─┐     │
                                                  (graph variant: a learned vector)│     │
    batch.graph (PyG Batch)                                                         ▼     │
      n_id ──► entity features (KGE / names / learned) ─► Linear ─┐       joint graph per example:
      seed_mask ──► node type (context / seed / other) ───────────┤  KB edges r, inverse edges r+R,
                                                                   ▼  c→seed 2R, seed→c 2R+1
                   relevance ρ_i = σ(Bilinear(c_b, h_i))  ──►  h_i + Linear(ρ_i)   (fused variants)
                                                                   ▼
                     RelationalGNN: RGCN / GATv2 × layers, residual + LayerNorm + dropout
                                                                   ▼
          attention pooling over the example's KB nodes, query = context state: α_i = softmax_b(q·k_i)
                                                                   ▼
               graph vector g_b = context state ⊕ Σ α_i v_i  ──────────────────────────►  head ◄─┘
                                      sequence: [CLS] ⊕ g · relation: markers ⊕ g · token: token ⊕ g
                                      choice: per-choice [CLS] ⊕ g  ──►  MLP  ──►  logits, CE loss

The four variants share this code path and differ only in which side exists: ``text`` (encoder + head on
token states, graphs ignored), ``graph`` (no encoder call; a learned context vector), ``fused`` and
``fused_facts`` (identical models; ``fused_facts`` data carries retrieved fact sentences in its text, see
:class:`~kgreason.models.knowledge.KnowledgeFeaturizer`). An example with an empty subgraph has only its
context node, and its pooled graph is zero.

For multiple choice the ``(B, C, T)`` inputs run as ``B·C`` texts; each choice's [CLS] is the context node of
its own copy of the example's graph, so graph reasoning is conditioned on the choice. ``node_relevance`` and
``graph_attention`` are then ``(N, C)`` (one column per choice) instead of ``(N,)``.

The parts live in their own modules and are re-exported here: :class:`~kgreason.models.reasoner.GraphReasoner`
(the graph side), :class:`~kgreason.models.entity_encoder.EntityEncoder` (node features) and
:class:`~kgreason.models.tabular.TabularTerm` (tabular features).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from kgreason.core.batch import IGNORE_INDEX
from kgreason.core.output import ModelOutput
from kgreason.models.config import HEADS, VARIANTS, ModelConfig
from kgreason.models.entity_encoder import EntityEncoder as EntityEncoder
from kgreason.models.heads import Head
from kgreason.models.knowledge import EntityFeatures
from kgreason.models.reasoner import CONTEXT as CONTEXT
from kgreason.models.reasoner import OTHER as OTHER
from kgreason.models.reasoner import SEED as SEED
from kgreason.models.reasoner import GraphReasoner as GraphReasoner
from kgreason.models.reasoner import ReasonerOutput as ReasonerOutput
from kgreason.models.reasoner import _graph_any
from kgreason.models.reasoner import num_edge_types as num_edge_types
from kgreason.models.tabular import TabularTerm as TabularTerm

if TYPE_CHECKING:
    from torch_geometric.data import Batch as GraphBatch

    from kgreason.core.batch import Batch

#: Most texts whose frozen-encoder states are kept (``freeze_encoder``): ~30 MB of float32 at width 384.
CLS_CACHE_SIZE = 20_000


def last_label_margin(logits: Tensor) -> Tensor:
    """(B,) the last label's logit minus the largest other logit (for two labels: the log-odds of label 1)."""
    if logits.shape[-1] == 1:
        return logits[:, 0]
    return logits[:, -1] - logits[:, :-1].max(-1).values


class KGReasonModel(nn.Module):
    """The knowledge-fused model and its baselines (see the module docstring).

    Args:
        config: what to build (:class:`~kgreason.models.config.ModelConfig`).
        encoder: a Hugging Face encoder to use instead of loading ``config.encoder`` (ignored by the ``graph``
            variant).
        tokenizer: its tokenizer (kept for ``save_pretrained``; loaded with the encoder when not given).
        entity_features: KB entity vectors for ``kge`` / ``names`` node features
            (:func:`~kgreason.models.knowledge.build_entity_features`); a tensor ``(E, d)`` is taken as the kind
            ``config.node_features`` names (``kge`` or ``names``).

    Attributes:
        encoder: the Hugging Face encoder (``None`` for the ``graph`` variant).
        reasoner: the graph side (``None`` for the ``text`` variant).
        head: the task head.
    """

    def __init__(
        self,
        config: ModelConfig,
        *,
        encoder: nn.Module | None = None,
        tokenizer: Any = None,
        entity_features: EntityFeatures | Tensor | None = None,
    ) -> None:
        super().__init__()
        _validate(config)
        self.config = config
        self.tokenizer = tokenizer
        self.encoder_source: str | None = None
        text_dim = 0
        if config.variant != "graph":
            if encoder is None:
                from kgreason.models.encoder import load_encoder_for_training

                parts = load_encoder_for_training(config.encoder)
                encoder, self.encoder_source = parts.model, parts.source.name
                self.tokenizer = tokenizer if tokenizer is not None else parts.tokenizer
            text_dim = int(encoder.config.hidden_size)
            self.encoder = encoder
            if config.freeze_encoder:
                encoder.requires_grad_(False)
        else:
            self.encoder = None
        self.reasoner: GraphReasoner | None = None
        if config.variant != "text":
            if isinstance(entity_features, Tensor):
                if config.node_features not in ("kge", "names"):
                    raise ValueError(
                        f"node_features={config.node_features!r} takes an EntityFeatures(kge=..., names=...), "
                        "not one tensor"
                    )
                entity_features = EntityFeatures(**{config.node_features: entity_features})
            self.reasoner = GraphReasoner(config=config, text_dim=text_dim, entity_features=entity_features)
        graph_dim = self.reasoner.out_dim if self.reasoner is not None else 0
        self.head = Head(
            kind=config.head,
            num_labels=config.num_labels,
            text_dim=text_dim,
            graph_dim=graph_dim,
            dropout=config.dropout,
        )
        self.tabular = None
        if config.num_features > 0:
            self.tabular = TabularTerm(
                num_features=config.num_features,
                monotone=config.feature_monotone,
                num_labels=config.num_labels,
                dropout=config.dropout,
            )

    def train(self, mode: bool = True) -> KGReasonModel:
        """Set training mode; a frozen encoder stays in eval mode (no dropout)."""
        super().train(mode)
        if self.encoder is not None and self.config.freeze_encoder:
            self.encoder.eval()
        return self

    # ------------------------------------------------------------------------------------------- forward
    def forward(self, batch: Batch) -> ModelOutput:
        choice = self.config.head == "choice"
        input_ids, mask, types = batch.input_ids, batch.attention_mask, batch.token_type_ids
        num_examples = int(input_ids.shape[0])
        num_choices = int(input_ids.shape[1]) if choice else 1
        if choice:
            if input_ids.dim() != 3:
                raise ValueError(f"the choice head expects input_ids (B, C, T), got {tuple(input_ids.shape)}")
            input_ids = input_ids.flatten(0, 1)  # (B·C, T)
            mask = mask.flatten(0, 1)  # (B·C, T)
            types = types.flatten(0, 1) if types is not None else None  # (B·C, T)
        rows = int(input_ids.shape[0])  # B, or B·C
        tokens = None
        if self.encoder is not None:
            tokens = self._encode(input_ids, mask, types)  # (R, T, D), or (R, 1, D) from the frozen cache

        graph_vector = relevance = attention = None
        if self.reasoner is not None:
            graph = batch.graph
            if graph is None:
                raise ValueError(
                    f"variant {self.config.variant!r} needs batch.graph: attach subgraphs to the encoded "
                    "dataset with kgreason.models.knowledge.KnowledgeFeaturizer.attach"
                )
            if int(graph.num_graphs) != num_examples:
                raise ValueError(
                    f"batch.graph holds {int(graph.num_graphs)} graphs for {num_examples} examples"
                )
            if choice:
                graph, node_map = _repeat_graphs(graph, num_choices)
            cls = tokens[:, 0] if tokens is not None else None  # (R, D)
            reasoned = self.reasoner(graph, cls=cls, num_graphs=rows)
            graph_vector = reasoned.vector  # (R, 2H)
            relevance, attention = reasoned.node_relevance, reasoned.graph_attention
            if choice:
                relevance = relevance[node_map] if relevance is not None else None  # (N, C)
                attention = attention[node_map]  # (N, C)

        out = self.head(
            tokens=tokens,
            graph=graph_vector,
            marker_positions=batch.marker_positions,
            num_tokens=int(input_ids.shape[1]),
        )
        logits, pooled = out.logits, out.features  # (R, L) / (R, T, L), (R, D) / (R, T, D)
        if self.tabular is not None:
            if batch.features is None:
                raise ValueError(
                    f"the model was built with num_features={self.config.num_features}: batch.features is missing"
                )
            logits = logits + self.tabular(batch.features)  # (B, L)
        if choice:
            logits = logits.view(num_examples, num_choices)  # (B, C)
            empty = mask.view(num_examples, num_choices, -1).sum(-1) == 0  # (B, C) padded choices
            logits = logits.masked_fill(empty, torch.finfo(logits.dtype).min)
            pooled = pooled.view(num_examples, num_choices, -1)  # (B, C, D)
        loss = None
        if batch.labels is not None:
            flat = logits.float().reshape(-1, logits.shape[-1])  # (B, L) / (B·T, L)
            loss = nn.functional.cross_entropy(flat, batch.labels.reshape(-1), ignore_index=IGNORE_INDEX)
            if self.config.constraint_weight > 0 and batch.label_masks is not None:
                loss = loss + self.rule_loss(logits, batch.label_masks)
            if self.config.graph_rule_weight > 0 and self.reasoner is not None:
                loss = loss + self.graph_rule_loss(batch, logits=logits, tokens=tokens)
            if self.training and self.encoder is not None:
                from kgreason.models.peft import adalora_regularization

                penalty = adalora_regularization(self.encoder)  # None unless the encoder is AdaLoRA-wrapped
                if penalty is not None:
                    loss = loss + penalty
        return ModelOutput(
            logits=logits,
            loss=loss,
            node_relevance=relevance,
            graph_attention=attention,
            pooled=pooled,
        )

    def rule_loss(self, logits: Tensor, label_masks: Tensor) -> Tensor:
        """The weighted soft rule-constraint loss of ``logits`` (B, L) under ``label_masks`` (B, 2, L)."""
        from kgreason.rules import LabelMasks, soft_constraint_loss

        if logits.dim() != 2 or label_masks.shape != (logits.shape[0], 2, logits.shape[1]):
            raise ValueError(
                f"label_masks {tuple(label_masks.shape)} do not fit logits {tuple(logits.shape)}: expected (B, 2, L)"
            )
        probs = logits.float().softmax(-1)  # (B, L)
        masks = LabelMasks(entailed=label_masks[:, 0], forbidden=label_masks[:, 1])
        return soft_constraint_loss(
            probs, masks, tnorm=self.config.constraint_tnorm, weight=self.config.constraint_weight
        )

    def _encode(self, input_ids: Tensor, mask: Tensor, types: Tensor | None) -> Tensor:
        """Encoder token states. A frozen encoder under a sequence head reads only [CLS], so its [CLS] states are
        cached by token ids (deterministic: no gradients, dropout off) and returned as ``(R, 1, D)``."""
        kwargs = {"input_ids": input_ids, "attention_mask": mask}
        if types is not None:
            kwargs["token_type_ids"] = types
        if not (self.config.freeze_encoder and self.config.head == "sequence"):
            return self._pool(self.encoder(**kwargs).last_hidden_state, mask)  # (R, T, D)
        cache = self.__dict__.setdefault("_cls_cache", {})
        keys = [bytes(row[m.bool()].cpu().numpy()) for row, m in zip(input_ids, mask, strict=True)]
        missing = [i for i, key in enumerate(keys) if key not in cache]
        if missing:
            index = torch.tensor(missing, device=input_ids.device)
            with torch.no_grad():
                chosen = {k: v[index] for k, v in kwargs.items()}
                states = self.encoder(**chosen).last_hidden_state  # (M, T, D)
                states = self._pool(states, mask[index])[:, 0]  # (M, D)
            for i, state in zip(missing, states.float(), strict=True):
                cache[keys[i]] = state.clone()  # a copy: a view would keep the batch's (M, T, D) states alive
        found = torch.stack([cache[key] for key in keys]).to(input_ids.device)  # (R, D)
        while len(cache) > CLS_CACHE_SIZE:  # bounded (a long-running service): oldest texts go first
            cache.pop(next(iter(cache)))
        return found[:, None, :]  # (R, 1, D)

    def _pool(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """``tokens`` with the [CLS] slot holding the masked mean of the token states (``text_pooling: mean``)."""
        if self.config.text_pooling == "cls":
            return tokens
        weights = mask.to(tokens.dtype)[..., None]  # (R, T, 1)
        mean = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1)  # (R, D)
        return torch.cat([mean[:, None], tokens[:, 1:]], dim=1)  # (R, T, D)

    def margin_without_rule_edges(self, batch: Batch, *, tokens: Tensor | None = None) -> Tensor | None:
        """(B,) the last label's margin (its logit minus the best other) with ``graph.rule_edge_mask`` edges
        removed, or ``None`` when the batch marks none. ``tokens``: the encoder states, when already computed."""
        graph = batch.graph
        mask = getattr(graph, "rule_edge_mask", None) if graph is not None else None
        if self.reasoner is None or mask is None or not bool(mask.any()):
            return None
        from torch_geometric.data import Data

        keep = ~mask.bool()  # (E,)
        fields = {"edge_index": graph.edge_index[:, keep], "edge_type": graph.edge_type[keep]}
        for name in ("n_id", "batch", "seed_mask", "node_role", "node_status"):
            value = getattr(graph, name, None)
            if value is not None:
                fields[name] = value
        reduced = Data(**fields, num_nodes=int(graph.n_id.numel()))
        if tokens is None and self.encoder is not None:
            tokens = self._encode(batch.input_ids, batch.attention_mask, batch.token_type_ids)  # (B, T, D)
        cls = tokens[:, 0] if tokens is not None else None  # (B, D)
        vector = self.reasoner(reduced, cls=cls, num_graphs=len(batch)).vector  # (B, 2H)
        logits = self.head(
            tokens=tokens,
            graph=vector,
            marker_positions=batch.marker_positions,
            num_tokens=batch.input_ids.shape[1],
        ).logits  # (B, L)
        if self.tabular is not None and batch.features is not None:
            logits = logits + self.tabular(batch.features)
        return last_label_margin(logits)

    def graph_rule_loss(self, batch: Batch, *, logits: Tensor, tokens: Tensor | None) -> Tensor:
        """Weighted hinge ``relu(margin_without - margin)`` on examples whose graph marks rule edges."""
        alone = self.margin_without_rule_edges(batch, tokens=tokens)
        if alone is None:
            return logits.new_zeros(()).float()
        graph = batch.graph
        edge_graph = graph.batch[graph.edge_index[0]]  # (E,) graph of each edge
        marked = _graph_any(graph.rule_edge_mask.bool(), edge_graph, len(batch))  # (B,)
        gap = nn.functional.relu(alone.float() - last_label_margin(logits).float())  # (B,)
        return self.config.graph_rule_weight * (gap * marked).sum() / marked.sum().clamp(min=1)

    # ------------------------------------------------------------------------------------------- persistence
    def save_pretrained(self, directory: str | os.PathLike[str], *, task_config: dict | None = None) -> Path:
        """Write the model folder (see :mod:`kgreason.models.pretrained`)."""
        from kgreason.models.pretrained import save_pretrained

        return save_pretrained(self, directory, task_config=task_config)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> KGReasonModel:
        """Rebuild a model written by :meth:`save_pretrained` (no original checkpoint needed)."""
        from kgreason.models.pretrained import load_pretrained

        return load_pretrained(directory)


def _validate(config: ModelConfig) -> None:
    if config.text_pooling not in ("cls", "mean"):
        raise ValueError(f"text_pooling must be 'cls' or 'mean', got {config.text_pooling!r}")
    if config.variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {config.variant!r}")
    if config.head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}, got {config.head!r}")
    if config.head == "choice" and config.num_labels != 1:
        raise ValueError(
            f"the choice head scores each choice once: num_labels must be 1, got {config.num_labels}"
        )
    if config.num_entities < 0 or config.num_relations < 0:
        raise ValueError("num_entities and num_relations must be >= 0")


def _repeat_graphs(graph: GraphBatch, times: int) -> tuple[GraphBatch, Tensor]:
    """Each graph repeated ``times`` times in place (graph b -> rows b·C .. b·C + C-1), and where every original
    node went: ``(N, C)`` indices into the repeated nodes."""
    from torch_geometric.data import Batch as GraphBatch

    graphs = graph.to_data_list()
    repeated = GraphBatch.from_data_list([g for g in graphs for _ in range(times)])
    ptr = graph.ptr  # (B + 1,)
    new_ptr = repeated.ptr  # (B·C + 1,)
    n = int(ptr[-1])
    batch = graph.batch  # (N,)
    local = torch.arange(n, device=ptr.device) - ptr[batch]  # (N,)
    rows = batch[:, None] * times + torch.arange(times, device=ptr.device)[None, :]  # (N, C)
    return repeated, new_ptr[rows] + local[:, None]  # (N, C)
