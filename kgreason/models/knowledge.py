"""Knowledge for the model: KB entity features, and the featurizer that attaches retrieved knowledge to examples.

* :func:`build_entity_features` turns a KB into node feature tables: pretrained KG embeddings read from a
  ``kgreason kge train`` folder (``embeddings.safetensors`` + ``entities.txt``, rows aligned to the KB by entity
  key), frozen sentence encodings of entity names, or both.
* :class:`KnowledgeFeaturizer` prepares data for a variant: :meth:`~KnowledgeFeaturizer.augment` appends
  retrieved fact sentences to the texts (``fused_facts``), :meth:`~KnowledgeFeaturizer.attach` sets each
  encoded example's ``graph`` to a compact subgraph: the KB subgraph around the entities linked in its text, or
  the example's own story graph (``Example.facts``) over a relation vocabulary.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from kgreason.models.config import VARIANTS

if TYPE_CHECKING:
    from torch import Tensor
    from torch_geometric.data import Data

    from kgreason.core.example import Example
    from kgreason.encoders.sentence import TextEncoder
    from kgreason.kb.base import KnowledgeBase
    from kgreason.models.config import ModelConfig
    from kgreason.retrieval.retriever import KnowledgeRetriever
    from kgreason.tasks.base import EncodedDataset

logger = logging.getLogger(__name__)

NODE_FEATURES = ("kge", "names", "kge+names", "learned", "attributes")
#: ``Example.metadata`` key holding the text retrieval ran on (kept when facts are appended to the text).
QUERY_KEY = "knowledge_query"
#: Separator between an existing ``text_pair`` and appended facts.
FACT_SEPARATOR = " "


#: ``node_role`` values of story-graph nodes.
QUERY_ROLES = ("other", "query_head", "query_tail")
#: ``node_status`` values of graph nodes whose outcome may be known (e.g. a company that already defaulted).
NODE_STATUS = ("unknown", "negative", "positive")


@dataclass
class EntityFeatures:
    """Node feature tables, one row per KB entity (``None``: not used).

    Shapes:
        kge: (E, d_kge) pretrained KG embeddings
        names: (E, d_names) frozen encodings of entity names
        attributes: (E, d_attr) fixed attribute vectors (e.g. a company's scaled tabular features)
    """

    kge: Tensor | None = None
    names: Tensor | None = None
    attributes: Tensor | None = None

    @property
    def shapes(self) -> dict[str, list[int]]:
        parts = (("kge", self.kge), ("names", self.names), ("attributes", self.attributes))
        return {k: list(v.shape) for k, v in parts if v is not None}


def read_kge_vectors(path: str | Path, *, kb: KnowledgeBase) -> Tensor:
    """Entity embeddings of a KGE folder as an ``(E, d)`` float tensor in the KB's entity order.

    The folder is read by :func:`kgreason.kge.embeddings.read_entity_table` and aligned by entity key with
    :func:`~kgreason.kge.embeddings.align_entity_rows`; KB entities the embeddings do not cover get zero rows
    (logged). Complex embeddings become ``[real, imag]`` rows.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: the files disagree, or no KB entity has an embedding.
    """
    from kgreason.kge.embeddings import ENTITIES_FILE, align_entity_rows, read_entity_table

    folder = Path(path)
    table, keys = read_entity_table(folder)  # (E', d)
    aligned = align_entity_rows(
        table, {key: i for i, key in enumerate(keys)}, kb, missing="zeros", where=folder
    )
    if aligned.missing == kb.num_entities:
        raise ValueError(
            f"{folder}: none of the {kb.num_entities} entity keys of {getattr(kb, 'name', 'the KB')} is in "
            f"{ENTITIES_FILE} (first KB key {kb.entity_key(0)!r}, first file key {keys[0] if keys else None!r}); "
            "expected embeddings trained on this KB"
        )
    if aligned.missing:
        logger.warning(
            "%s: %d of %d KB entities have no embedding and get zero rows",
            folder,
            aligned.missing,
            kb.num_entities,
        )
    return aligned.features.float()  # (E, d)


def build_entity_features(
    config: ModelConfig,
    *,
    kb: KnowledgeBase,
    text_encoder: TextEncoder | None = None,
    progress: bool | None = None,
) -> EntityFeatures | None:
    """The node feature tables ``config.node_features`` asks for (``None`` for ``learned``).

    Args:
        config: reads ``node_features`` and ``kge_path``.
        kb: the knowledge base (entity keys for KGE alignment, labels for name encodings).
        text_encoder: encodes entity names (default: the embedded sentence encoder).
        progress: progress bar while encoding names (default: for large KBs).
    """
    kind = config.node_features
    if kind not in NODE_FEATURES:
        raise ValueError(f"node_features must be one of {', '.join(NODE_FEATURES)}, got {kind!r}")
    if kind == "learned":
        return None
    if kind == "attributes":
        raise ValueError(
            "node_features='attributes' takes the attribute table from the caller: pass "
            "EntityFeatures(attributes=...) to the model (see kgreason.finance.dataset)"
        )
    features = EntityFeatures()
    if "kge" in kind:
        if not config.kge_path:
            raise ValueError(
                f"node_features={kind!r} needs kge_path (a folder written by `kgreason kge train`)"
            )
        features.kge = read_kge_vectors(config.kge_path, kb=kb)
    if "names" in kind:
        if text_encoder is None:
            from kgreason.encoders.sentence import SentenceEncoder

            text_encoder = SentenceEncoder()
        labels = [kb.entity_label(e) for e in range(kb.num_entities)]
        features.names = torch.from_numpy(text_encoder.encode(labels, progress=progress))  # (E, d)
    return features


class KnowledgeFeaturizer:
    """Attaches retrieved knowledge to examples for one model variant.

    Args:
        retriever: the KB retriever (``None`` when every example brings its own ``facts``).
        variant: ``text`` (nothing is attached), ``graph``, ``fused`` or ``fused_facts``.
        max_facts: fact sentences appended per example (``fused_facts``).
        relations: relation vocabulary of per-example story graphs (``Example.facts``); relation ids follow
            this order.
        batch_size: texts per retrieval call.
        progress: show a progress bar (default: when more than one batch is retrieved).
    """

    def __init__(
        self,
        *,
        retriever: KnowledgeRetriever | None,
        variant: str,
        max_facts: int = 5,
        relations: Sequence[str] | None = None,
        batch_size: int = 256,
        progress: bool | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        if max_facts < 0 or batch_size < 1:
            raise ValueError(f"max_facts must be >= 0 and batch_size >= 1, got {max_facts}, {batch_size}")
        if variant == "fused_facts" and (retriever is None or not retriever.use_facts):
            raise ValueError("variant 'fused_facts' needs a KnowledgeRetriever with facts=True")
        if variant != "text" and retriever is None and relations is None:
            raise ValueError(
                f"variant {variant!r} needs a retriever, or relations for per-example story graphs"
            )
        self.retriever = retriever
        self.variant = variant
        self.max_facts = max_facts
        self.relations = list(relations) if relations is not None else None
        self._relation_ids = {name: i for i, name in enumerate(self.relations or [])}
        if self.relations is not None and len(self._relation_ids) != len(self.relations):
            raise ValueError("relations: duplicate names in the relation vocabulary")
        self.batch_size = batch_size
        self.progress = progress
        self._graphs: dict[str, Data] = {}
        self._facts: dict[str, list[str]] = {}

    @property
    def num_relations(self) -> int:
        """Relation ids the attached graphs use (``ModelConfig.num_relations``)."""
        if self.retriever is not None:
            return int(self.retriever.kb.num_relations)
        return len(self.relations or [])

    # ------------------------------------------------------------------------------------------- facts in text
    def augment(self, examples: Sequence[Example]) -> list[Example]:
        """Examples with retrieved fact sentences appended (``fused_facts``; other variants: unchanged).

        Facts go into ``text_pair`` (after an existing pair); for multiple choice (``choices``) they are appended
        to ``text``; token-classification examples (``tokens``) are left unchanged, since their words are labelled
        one by one. The retrieval query is kept in ``metadata["knowledge_query"]``.
        """
        examples = list(examples)
        if self.variant != "fused_facts":
            return examples
        queries = [query_text(example) for example in examples]
        self._retrieve([q for q, ex in zip(queries, examples, strict=True) if ex.tokens is None], facts=True)
        out, skipped = [], 0
        for example, query in zip(examples, queries, strict=True):
            if example.tokens is not None:
                skipped += 1
                out.append(example)
                continue
            facts = " ".join(self._facts[query][: self.max_facts])
            metadata = {**example.metadata, QUERY_KEY: query}
            if not facts:
                out.append(dataclasses.replace(example, metadata=metadata))
            elif example.choices is not None:
                out.append(dataclasses.replace(example, text=f"{example.text} {facts}", metadata=metadata))
            else:
                pair = facts if not example.text_pair else f"{example.text_pair}{FACT_SEPARATOR}{facts}"
                out.append(dataclasses.replace(example, text_pair=pair, metadata=metadata))
        if skipped:
            logger.warning(
                "%d token-classification examples were left without facts (their words are labelled)", skipped
            )
        return out

    # ------------------------------------------------------------------------------------------- graphs
    def attach(self, dataset: EncodedDataset) -> EncodedDataset:
        """A copy of ``dataset`` whose encoded examples carry their subgraph in ``graph`` (``text``: unchanged).

        Each graph is a ``Data(edge_index, edge_type, n_id, seed_mask, num_nodes)``; ``n_id`` holds global KB ids,
        or -1 for the entities of a story graph.
        """
        from kgreason.tasks.base import EncodedDataset

        if self.variant == "text":
            return dataset
        graphs: list[Data | None] = [None] * len(dataset.examples)
        todo: list[str] = []
        for i, example in enumerate(dataset.examples):
            if example.facts is not None and self.relations is not None:
                graphs[i] = self.story_graph(example, where=f"example {example.uid or i}")
            elif self.retriever is None:
                raise ValueError(
                    f"example {example.uid or i} has no facts and the featurizer has no retriever; expected "
                    "Example.facts (a story graph) or a KnowledgeRetriever"
                )
            else:
                todo.append(query_text(example))
        self._retrieve(todo, facts=False)
        for i, example in enumerate(dataset.examples):
            if graphs[i] is None:
                graphs[i] = self._graphs[query_text(example)]
        encoded = [
            dataclasses.replace(item, graph=graph)
            for item, graph in zip(dataset.encoded, graphs, strict=True)
        ]
        return EncodedDataset(examples=dataset.examples, encoded=encoded, truncated=dataset.truncated)

    def story_graph(self, example: Example, *, where: str = "example") -> Data:
        """The example's own facts as a graph: nodes are its entities in order of appearance (``n_id`` -1).

        Seeds are the entities named in ``metadata["query"]`` (e.g. CLUTRR's two queried people) when given,
        else every entity; ``node_role`` (n,) marks the query's head (1) and tail (2), 0 elsewhere, so that a
        directed question ("how is Z related to X?") is told apart from its inverse.
        """
        from torch_geometric.data import Data

        if self.relations is None:
            raise ValueError("story graphs need the featurizer's relations (the relation vocabulary)")
        nodes: dict[str, int] = {}
        edges: list[tuple[int, int]] = []
        types: list[int] = []
        for n, fact in enumerate(example.facts or []):
            if len(fact) != 3:
                raise ValueError(f"{where}: fact {n} is {fact!r}; expected (head, relation, tail)")
            head, relation, tail = (str(part) for part in fact)
            if relation not in self._relation_ids:
                known = ", ".join(self.relations[:10]) + (", ..." if len(self.relations) > 10 else "")
                raise ValueError(
                    f"{where}: fact {n} has relation {relation!r}, not in the vocabulary ({known})"
                )
            for name in (head, tail):
                nodes.setdefault(name, len(nodes))
            edges.append((nodes[head], nodes[tail]))
            types.append(self._relation_ids[relation])
        query = [str(q) for q in example.metadata.get("query") or []]
        for name in query:  # a queried person the story never links still gets a node
            nodes.setdefault(name, len(nodes))
        names = list(nodes)
        if query:
            wanted = set(query)
            seed_mask = torch.tensor([name in wanted for name in names], dtype=torch.bool)  # (n,)
        else:
            seed_mask = torch.ones(len(names), dtype=torch.bool)  # (n,)
        role = torch.zeros(len(names), dtype=torch.long)  # (n,)
        for position, name in enumerate(query[:2]):
            role[nodes[name]] = position + 1
        edge_index = torch.tensor(edges, dtype=torch.long).view(-1, 2).t().contiguous()  # (2, e)
        return Data(
            edge_index=edge_index,
            edge_type=torch.tensor(types, dtype=torch.long),  # (e,)
            n_id=torch.full((len(names),), -1, dtype=torch.long),  # (n,)
            seed_mask=seed_mask,
            node_role=role,
            num_nodes=len(names),
        )

    def _retrieve(self, queries: Sequence[str], *, facts: bool) -> None:
        """Fill the caches for the queries not seen yet, in batches, with a progress bar."""
        from tqdm.auto import tqdm

        cache = self._facts if facts else self._graphs
        todo = list(dict.fromkeys(q for q in queries if q not in cache))
        if not todo:
            return
        assert self.retriever is not None
        show = len(todo) > self.batch_size if self.progress is None else self.progress
        with tqdm(total=len(todo), desc="retrieving knowledge", unit="text", disable=not show) as bar:
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                if facts:
                    for query, context in zip(chunk, self.retriever.retrieve_batch(chunk), strict=True):
                        self._facts[query] = [fact.text for fact in context.facts]
                        self._graphs[query] = compact_graph(context.subgraph)
                else:
                    found = self.retriever.subgraphs.retrieve_batch(chunk)
                    for query, result in zip(chunk, found, strict=True):
                        self._graphs[query] = compact_graph(result.subgraph)
                bar.update(len(chunk))


def query_text(example: Example) -> str:
    """The text retrieval runs on: a kept ``knowledge_query``, else ``text`` (+ ``text_pair``)."""
    kept = example.metadata.get(QUERY_KEY)
    if kept is not None:
        return str(kept)
    return example.text if not example.text_pair else f"{example.text} {example.text_pair}"


def compact_graph(subgraph: Data) -> Data:
    """Only what the model reads: ``edge_index``, ``edge_type``, ``n_id``, ``seed_mask``, ``num_nodes``."""
    from torch_geometric.data import Data

    n_id = subgraph.n_id.long()  # (n,)
    seed_mask = getattr(subgraph, "seed_mask", None)
    if seed_mask is None:
        seed_mask = torch.ones(n_id.numel(), dtype=torch.bool)
    return Data(
        edge_index=subgraph.edge_index.long().contiguous(),  # (2, e)
        edge_type=subgraph.edge_type.long(),  # (e,)
        n_id=n_id,
        seed_mask=seed_mask.bool(),  # (n,)
        num_nodes=int(n_id.numel()),
    )
