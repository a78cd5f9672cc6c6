"""Compressed sparse row adjacency over a triple array, and k-hop subgraph extraction on it.

Both edge directions are indexed, so a breadth-first search reaches an entity's heads and tails alike. The
search is vectorised per hop with numpy (no Python loop over nodes), and a scratch array of the size of the
entity set is reused between calls, so one call costs what its neighbourhood costs, not what the KB costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SubgraphArrays:
    """A k-hop subgraph in numpy form (see :meth:`Adjacency.k_hop`).

    Shapes:
        nodes: (n,) global entity ids; seeds first, then hop 1, hop 2, ...
        hop: (n,) hop distance of each node from the nearest seed
        edge_index: (2, e) local indices into ``nodes`` (head row, tail row)
        edge_type: (e,) relation ids
        edge_ids: (e,) row of each edge in the triple array the adjacency was built from
    """

    nodes: np.ndarray
    hop: np.ndarray
    edge_index: np.ndarray
    edge_type: np.ndarray
    edge_ids: np.ndarray


class Adjacency:
    """Both-direction CSR index of an ``(E, 3)`` array of ``(head, relation, tail)`` ids.

    Args:
        triples: (E, 3) integer array.
        num_entities: number of entities (rows of the CSR).
    """

    def __init__(self, *, triples: np.ndarray, num_entities: int) -> None:
        triples = np.asarray(triples)
        self.num_entities = int(num_entities)
        self.num_edges = int(triples.shape[0])
        heads = triples[:, 0].astype(np.int64, copy=False)
        tails = triples[:, 2].astype(np.int64, copy=False)
        self.heads = heads
        self.relations = triples[:, 1].astype(np.int64, copy=False)
        self.tails = tails
        # Undirected view: every edge appears once from its head and once from its tail.
        src = np.concatenate([heads, tails])  # (2E,)
        edge = np.concatenate([np.arange(self.num_edges), np.arange(self.num_edges)])  # (2E,)
        nbr = np.concatenate([tails, heads])  # (2E,)
        order = np.argsort(src, kind="stable")
        self.neighbors = nbr[order]  # (2E,)
        self.edge_of = edge[order]  # (2E,)
        counts = np.bincount(src, minlength=self.num_entities)  # (N,)
        self.indptr = np.zeros(self.num_entities + 1, dtype=np.int64)
        np.cumsum(counts, out=self.indptr[1:])
        # Out-edges only (head -> edge ids), used to collect the edges induced on a node set.
        out_order = np.argsort(heads, kind="stable")
        self.out_edges = out_order  # (E,)
        out_counts = np.bincount(heads, minlength=self.num_entities)
        self.out_indptr = np.zeros(self.num_entities + 1, dtype=np.int64)
        np.cumsum(out_counts, out=self.out_indptr[1:])
        self._local = np.full(self.num_entities, -1, dtype=np.int64)  # scratch: global id -> local index

    @property
    def degree(self) -> np.ndarray:
        """(N,) total degree (in + out) of every entity."""
        return np.diff(self.indptr)

    @staticmethod
    def _gather(indptr: np.ndarray, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Concatenate ``values[indptr[r]:indptr[r + 1]]`` for every ``r`` in ``rows`` without a Python loop."""
        starts = indptr[rows]
        lengths = indptr[rows + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return values[:0]
        # positions = starts repeated, plus 0..len-1 within each run
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        return values[offsets + np.arange(total)]

    def k_hop(
        self, seeds: np.ndarray | list[int], *, hops: int = 2, max_nodes: int | None = None
    ) -> SubgraphArrays:
        """Nodes within ``hops`` of ``seeds`` (edges in either direction) and the edges induced on them.

        When a hop would pass ``max_nodes``, the nodes of that hop that touch the current set most often are
        kept (ties by smaller id), so the cap keeps the best-connected part of the neighbourhood.
        """
        seeds_arr = np.unique(np.asarray(seeds, dtype=np.int64))
        if seeds_arr.size and (seeds_arr[0] < 0 or seeds_arr[-1] >= self.num_entities):
            raise IndexError(f"seed ids must lie in [0, {self.num_entities}); got {seeds_arr.tolist()}")
        if max_nodes is not None and seeds_arr.size > max_nodes:
            seeds_arr = seeds_arr[:max_nodes]
        local = self._local
        nodes = [seeds_arr]
        hop_of = [np.zeros(seeds_arr.size, dtype=np.int64)]
        local[seeds_arr] = np.arange(seeds_arr.size)
        size = seeds_arr.size
        frontier = seeds_arr
        try:
            for depth in range(1, hops + 1):
                if frontier.size == 0 or (max_nodes is not None and size >= max_nodes):
                    break
                reached = self._gather(self.indptr, self.neighbors, frontier)  # (m,)
                reached = reached[local[reached] < 0]
                if reached.size == 0:
                    break
                fresh, counts = np.unique(reached, return_counts=True)
                room = None if max_nodes is None else max_nodes - size
                if room is not None and fresh.size > room:
                    keep = np.lexsort((fresh, -counts))[:room]
                    fresh = np.sort(fresh[keep])
                local[fresh] = np.arange(size, size + fresh.size)
                size += fresh.size
                nodes.append(fresh)
                hop_of.append(np.full(fresh.size, depth, dtype=np.int64))
                frontier = fresh
            all_nodes = np.concatenate(nodes)  # (n,)
            edge_ids = self._gather(self.out_indptr, self.out_edges, all_nodes)  # out-edges of the node set
            edge_ids = edge_ids[local[self.tails[edge_ids]] >= 0]
            edge_ids.sort()
            edge_index = np.stack([local[self.heads[edge_ids]], local[self.tails[edge_ids]]])  # (2, e)
            edge_type = self.relations[edge_ids]  # (e,)
        finally:
            for chunk in nodes:
                local[chunk] = -1
        return SubgraphArrays(
            nodes=all_nodes,
            hop=np.concatenate(hop_of),
            edge_index=edge_index,
            edge_type=edge_type,
            edge_ids=edge_ids,
        )
