"""networkx graphs as knowledge bases, and back.

:func:`from_networkx` reads a ``MultiDiGraph``, ``DiGraph``, ``MultiGraph`` or ``Graph``:

* every node is an entity (isolated nodes too), keyed by ``str(node)``, in the graph's node order;
* node attribute ``label`` gives the entity label and ``aliases`` (a string or a list of strings) its aliases;
* an edge's relation is its ``relation`` attribute; without one, a multigraph edge key that is a ``str`` is
  the relation, and anything else (an integer key, a plain ``DiGraph`` edge) gets :data:`DEFAULT_RELATION`;
* an edge attribute ``label`` names the relation, and an edge attribute ``split`` puts the edge in that split
  (edges without one go to ``all``);
* an undirected graph's edge is stored once, in the direction networkx reports it.

:func:`to_networkx` writes a ``MultiDiGraph`` whose nodes are entity keys and whose edges are keyed by relation
key, so ``from_networkx(to_networkx(kb))`` gives back the same keys, labels and triples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kgreason.kb.store import TripleStore, TripleStoreBuilder

if TYPE_CHECKING:
    import networkx

    from kgreason.kb.base import KnowledgeBase

#: Relation of an edge with neither a relation attribute nor a string key.
DEFAULT_RELATION = "related_to"
SPLIT_ATTR = "split"


def _aliases(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def from_networkx(
    graph: networkx.Graph,
    *,
    relation_attr: str = "relation",
    label_attr: str = "label",
    aliases_attr: str = "aliases",
    name: str = "networkx",
) -> TripleStore:
    """Build a :class:`TripleStore` from a networkx graph (rules in the module docstring).

    Raises:
        ValueError: two different nodes have the same ``str()`` (e.g. ``1`` and ``"1"``), or a node's key is empty.
    """
    builder = TripleStoreBuilder(name=name, source=f"networkx.{type(graph).__name__}")
    keys: dict[Any, str] = {}
    for node, data in graph.nodes(data=True):
        key = str(node)
        if not key:
            raise ValueError(f"node {node!r} has an empty key")
        if key in builder.entity_ids:
            raise ValueError(
                f"nodes {node!r} and another node both have the key {key!r}; relabel the graph first"
            )
        keys[node] = key
        builder.entity(key)
        if (label := data.get(label_attr)) is not None:
            builder.add_label(key, str(label), preferred=True)
        for alias in _aliases(data.get(aliases_attr)):
            builder.add_label(key, alias, preferred=False)
    if graph.is_multigraph():
        edges = ((u, v, k, d) for u, v, k, d in graph.edges(keys=True, data=True))
    else:
        edges = ((u, v, None, d) for u, v, d in graph.edges(data=True))
    relation_labels: dict[str, str] = {}
    for u, v, k, data in edges:
        relation = data.get(relation_attr)
        if relation is None:
            relation = k if isinstance(k, str) else DEFAULT_RELATION
        relation = str(relation)
        builder.add(keys[u], relation, keys[v], split=str(data.get(SPLIT_ATTR, "all")))
        if (label := data.get(label_attr)) is not None:
            relation_labels.setdefault(relation, str(label))
    for relation, label in relation_labels.items():
        builder.relation_labels[builder.relation_ids[relation]] = label
    return builder.build()


def to_networkx(kb: KnowledgeBase, *, split: str | None = None) -> networkx.MultiDiGraph:
    """A ``MultiDiGraph`` of ``kb`` (one split, or all): nodes are entity keys, edges are keyed by relation key.

    Node attributes: ``label`` (only for entities with a label of their own) and ``aliases``. Edge attributes:
    ``relation`` (the key), ``label`` (the readable name) and, when ``split`` is ``None`` and the KB has several
    splits, ``split``. A triple repeated across splits becomes one edge (the later split wins).
    """
    import networkx as nx

    graph = nx.MultiDiGraph(name=kb.name)
    entity_keys = [kb.entity_key(i) for i in range(kb.num_entities)]
    for i, key in enumerate(entity_keys):
        attrs: dict[str, Any] = {}
        if kb.has_label(i):
            attrs["label"] = kb.entity_label(i)
        if aliases := kb.entity_aliases(i):
            attrs["aliases"] = list(aliases)
        graph.add_node(key, **attrs)
    relation_keys = [kb.relation_key(r) for r in range(kb.num_relations)]
    relation_labels = [kb.relation_label(r) for r in range(kb.num_relations)]
    splits = [split] if split is not None else list(kb.splits)
    tag = split is None and len(splits) > 1
    for name in splits:
        rows = kb.triples(None if name == "all" else name).tolist()  # (n, 3) as lists
        graph.add_edges_from(
            (
                entity_keys[h],
                entity_keys[t],
                relation_keys[r],
                {
                    "relation": relation_keys[r],
                    "label": relation_labels[r],
                    **({SPLIT_ATTR: name} if tag else {}),
                },
            )
            for h, r, t in rows
        )
    return graph
