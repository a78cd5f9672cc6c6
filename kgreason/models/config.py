"""The configuration that builds a kgreason model (saved as ``config.json`` by ``save_pretrained``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kgreason.core.config import setting

#: Model variants; they share one code path and differ only in what the head reads.
VARIANTS = ("text", "graph", "fused", "fused_facts")
HEADS = ("sequence", "token", "choice", "relation")
#: What the [CLS] slot of the token states carries (see ``ModelConfig.text_pooling``).
TEXT_POOLINGS = ("cls", "mean")


@dataclass
class GNNConfig:
    """The relation-aware GNN over an example's subgraph.

    ``type``: a registered GNN layer (:data:`kgreason.models.gnn.gnn_layers`): ``rgcn`` / ``kgreason.RGCN.v1``
    (``torch_geometric.nn.RGCNConv``), ``gatv2`` / ``kgreason.GATv2.v1`` (``GATv2Conv`` with learned edge-type
    embeddings as edge features), or a plug-in's name. ``num_bases``: basis decomposition of RGCN weights
    (``None``: none).
    """

    type: str = "rgcn"
    layers: int = setting(2, ge=1)
    hidden: int = setting(200, ge=1)
    heads: int = setting(2, ge=1)
    dropout: float = setting(0.2, ge=0, le=1)
    num_bases: int | None = setting(None, ge=1)


@dataclass
class ModelConfig:
    """What to build.

    Attributes:
        encoder: text encoder: ``embedded`` (the packaged all-MiniLM-L6-v2), a local folder, or a hub id.
        variant: ``text`` (encoder only), ``graph`` (GNN only), ``fused`` (encoder [CLS] as a context node in the
            GNN), ``fused_facts`` (fused, with retrieved facts appended to the text).
        head: ``sequence``, ``token``, ``choice`` or ``relation`` (set from the task).
        num_labels: classes (sequence / relation), tags (token); 1 for multiple choice.
        dropout: dropout before the head.
        gnn: the GNN (see :class:`GNNConfig`).
        node_features: ``kge`` (pretrained KG embeddings from ``kge_path``), ``names`` (frozen encodings of entity
            names), ``kge+names``, or ``learned`` (a trainable embedding per entity).
        kge_path: folder written by ``kgreason kge train`` (embeddings saved with the KB's entity keys).
        freeze_kge: keep KG embeddings fixed during fine-tuning.
        num_entities: entities of the knowledge base (set from the KB).
        num_relations: relations of the knowledge base (set from the KB); the GNN uses ``2R + 2`` edge types: the
            KB relations, their inverses, context→seed and seed→context.
        max_length: token limit of the encoder inputs.
        constraint_weight: weight of the soft rule-constraint loss added to cross-entropy (0: off); it needs
            examples encoded with ``label_masks`` (``knowledge.rules`` of the experiment config).
        constraint_tnorm: ``product`` or ``lukasiewicz`` (see :func:`kgreason.rules.soft_constraint_loss`).
        node_status: embed each graph node's known outcome (``graph.node_status``: unknown / negative / positive,
            e.g. a neighbour company that already defaulted).
        num_features: width of per-example tabular features (``batch.features``); their logits are added to the
            head's (0: none).
        feature_monotone: one sign per tabular feature: ``+1`` (the last label's logit may not fall as the
            feature grows), ``-1`` (may not rise), ``0`` (free). Signed features enter only through a linear term
            with sign-constrained weights, so the constraint holds by construction.
        freeze_encoder: keep the pretrained encoder's weights fixed (no gradients, dropout off): 3x cheaper
            training on CPU, at the cost of not adapting the text representation.
        text_pooling: what the [CLS] slot of the token states carries for the head and the context node: ``cls``
            (the encoder's [CLS] state) or ``mean`` (the mean of the real tokens' states, the representation
            sentence-embedding models such as all-MiniLM-L6-v2 are trained for; best with a frozen encoder).
        seed_readout: the head also reads the mean final state of each graph's seed nodes (for node-level tasks
            such as scoring one company of a graph, whose ego subgraph is seeded at the company).
        graph_rule_weight: weight of the graph rule loss: removing the edges a batch marks in
            ``graph.rule_edge_mask`` may not raise the last label's margin (a company that guarantees a defaulted
            company cannot score lower than it would without that guarantee); 0: off.
    """

    encoder: str = setting("embedded", path=True, names=("embedded",))
    variant: str = setting("text", choices=VARIANTS)
    head: str = setting("sequence", choices=HEADS)
    num_labels: int = setting(2, ge=1)
    dropout: float = setting(0.1, ge=0, le=1)
    gnn: GNNConfig = field(default_factory=GNNConfig)
    node_features: str = "kge"
    kge_path: str | None = setting(None, path=True, must_exist=True)
    freeze_kge: bool = True
    num_entities: int = setting(0, ge=0)
    num_relations: int = setting(0, ge=0)
    max_length: int = setting(128, ge=2)
    constraint_weight: float = setting(0.0, ge=0)
    constraint_tnorm: str = "product"
    node_status: bool = False
    num_features: int = setting(0, ge=0)
    feature_monotone: list[int] = field(default_factory=list)
    graph_rule_weight: float = setting(0.0, ge=0)
    seed_readout: bool = False
    freeze_encoder: bool = False
    text_pooling: str = setting("cls", choices=TEXT_POOLINGS)
