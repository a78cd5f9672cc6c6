"""Subgraph benchmark: kgreason's ``kb.subgraph`` against PyG ``k_hop_subgraph`` and networkx ``ego_graph``.

Each example is a 2-hop neighbourhood (edges followed in both directions) around 3 seed entities, on

* FB15k-237 (train split, ``kg/FB15k-237`` in the data folder): seeds found by **linking real entity names** —
  the text "How are A, B and C related?" for three random labelled entities with degree >= 1 goes through
  ``kb.link`` and the linked entities are the seeds;
* a generated KB with 1M edges (200k entities, 100 relations, power-law head degree, uniform tails; no labels):
  seeds are 3 random entities with degree >= 1.

Methods, all in one run on the same seeds:

* kgreason ``kb.subgraph(seeds, hops=2, max_nodes=None)`` (no cap) and ``max_nodes=200`` (capped);
* ``torch_geometric.utils.k_hop_subgraph`` over an undirected ``edge_index`` (both directions of every edge),
  ``relabel_nodes=True``, plus the gather of edge types;
* networkx ``ego_graph(G, seed, radius=2, undirected=True)`` per seed on the ``MultiDiGraph``, then the
  subgraph induced on the union (the peer as a user would call it: ``ego_graph`` copies the graph to
  undirected on every call); and ``ego_graph`` on an undirected ``MultiGraph`` built once (a tuned use).

The uncapped kgreason result, PyG and networkx must find the same node sets (checked on every timed example).
Ratios are peer p50 / kgreason p50 (uncapped; same output). Usage::

    python benchmarks/subgraph.py                     # writes benchmarks/results/subgraph.{json,md}
    python benchmarks/subgraph.py --examples 50 --nx-examples 3
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from reporting import write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOAL_P50_MS = 1.0
HOPS = 2
SEEDS_PER_EXAMPLE = 3


@dataclass
class Timing:
    """Per-example latency of one method on one KB."""

    method: str
    examples: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    mean_nodes: float
    mean_edges: float
    note: str = ""
    kgreason_p50_ms_same_examples: float = 0.0
    ratio_p50: float = 1.0


def measure(
    method: str, fn: Callable[[np.ndarray], tuple[int, int]], examples: list[np.ndarray], note: str = ""
) -> tuple[Timing, np.ndarray]:
    """Time ``fn(seeds) -> (nodes, edges)`` once per example after one warm-up call; also the (n,) times."""
    fn(examples[0])
    times, nodes, edges = [], [], []
    for seeds in examples:
        start = time.perf_counter()
        n, e = fn(seeds)
        times.append(time.perf_counter() - start)
        nodes.append(n)
        edges.append(e)
    ms = np.asarray(times) * 1e3  # (n,)
    timing = Timing(
        method=method,
        examples=len(examples),
        p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)),
        mean_ms=float(ms.mean()),
        mean_nodes=float(np.mean(nodes)),
        mean_edges=float(np.mean(edges)),
        note=note,
    )
    return timing, ms


# ---------------------------------------------------------------------------------------------- KBs
def generated_kb(*, num_edges: int, num_entities: int, num_relations: int, seed: int):
    """A KB of ``num_edges`` distinct edges: power-law (Zipf-like rank) heads, uniform tails and relations."""
    from kgreason.kb.store import TripleStore, drop_duplicate_rows

    rng = np.random.default_rng(seed)
    rows = np.empty((0, 3), dtype=np.int64)
    while rows.shape[0] < num_edges:
        m = int((num_edges - rows.shape[0]) * 1.05) + 1000
        ranks = np.minimum((rng.pareto(1.2, m) * num_entities / 50).astype(np.int64), num_entities - 1)
        heads = rng.permutation(num_entities)[ranks]  # (m,) hubs are random ids, not 0..k
        batch = np.stack(
            [heads, rng.integers(0, num_relations, m), rng.integers(0, num_entities, m)], axis=1
        )  # (m, 3)
        rows, _ = drop_duplicate_rows(np.concatenate([rows, batch]), num_entities, num_relations)
    rows = rows[:num_edges]
    return TripleStore(
        name=f"generated-{num_edges // 1_000_000}M",
        entity_keys=[f"e{i}" for i in range(num_entities)],
        relation_keys=[f"r{i}" for i in range(num_relations)],
        split_triples={"train": rows},
        source="benchmarks/subgraph.py generator",
    )


def linked_examples(kb, n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Seeds found by linking "How are A, B and C related?" for random labelled entities with degree >= 1."""
    from kgreason.retrieval.subgraph import seeds_from_mentions

    degree = kb.adjacency.degree
    pool = np.asarray([i for i in np.flatnonzero(degree > 0).tolist() if kb.has_label(i)])
    examples, exact, link_ms = [], 0, []
    while len(examples) < n:
        chosen = rng.choice(pool, SEEDS_PER_EXAMPLE, replace=False)
        a, b, c = (kb.entity_label(int(i)) for i in chosen)
        text = f"How are {a}, {b} and {c} related?"
        start = time.perf_counter()
        mentions = kb.link(text)
        link_ms.append((time.perf_counter() - start) * 1e3)
        seeds = np.asarray(list(seeds_from_mentions(mentions)), dtype=np.int64)
        if seeds.size == 0:
            continue
        exact += set(seeds.tolist()) == set(chosen.tolist())
        examples.append(seeds)
    info = {
        "how": "linked real entity names with kb.link ('How are A, B and C related?')",
        "examples_linking_exactly_the_3_chosen_entities": exact,
        "mean_seeds": float(np.mean([s.size for s in examples])),
        "link_p50_ms": float(np.percentile(link_ms, 50)),
    }
    return examples, info


def random_examples(kb, n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], dict[str, Any]]:
    pool = np.flatnonzero(kb.adjacency.degree > 0)
    examples = [np.sort(rng.choice(pool, SEEDS_PER_EXAMPLE, replace=False)) for _ in range(n)]
    return examples, {"how": "3 random entities with degree >= 1 (the generated KB has no names to link)"}


# ---------------------------------------------------------------------------------------------- methods
def run_kb(
    kb, examples: list[np.ndarray], seeds_info: dict[str, Any], adjacency_s: float, args: argparse.Namespace
) -> dict:
    import networkx as nx
    import torch
    from torch_geometric.utils import k_hop_subgraph

    triples = kb.graph_triples().numpy()  # (E, 3)
    n_ent = kb.num_entities
    print(f"[{kb.name}] {n_ent:,} entities, {triples.shape[0]:,} edges, {len(examples)} examples", flush=True)

    def kgreason(cap: int | None) -> Callable[[np.ndarray], tuple[int, int]]:
        def call(seeds: np.ndarray) -> tuple[int, int]:
            data = kb.subgraph(seeds, hops=HOPS, max_nodes=cap)
            return int(data.num_nodes), int(data.edge_index.shape[1])

        return call

    base, base_ms = measure("kgreason kb.subgraph (no cap)", kgreason(None), examples)
    base.kgreason_p50_ms_same_examples = base.p50_ms
    timings = [base]

    def add(measured: tuple[Timing, np.ndarray]) -> None:
        timing = measured[0]
        timing.kgreason_p50_ms_same_examples = float(np.percentile(base_ms[: timing.examples], 50))
        timing.ratio_p50 = timing.p50_ms / timing.kgreason_p50_ms_same_examples
        timings.append(timing)

    add(measure("kgreason kb.subgraph (max_nodes=200)", kgreason(200), examples))

    edge_index = torch.from_numpy(np.ascontiguousarray(triples[:, [0, 2]].T))  # (2, E)
    undirected = torch.cat([edge_index, edge_index.flip(0)], dim=1)  # (2, 2E)
    undirected_type = torch.cat([torch.from_numpy(triples[:, 1])] * 2)  # (2E,)

    def pyg(seeds: np.ndarray) -> tuple[int, int]:
        subset, sub_edges, _, mask = k_hop_subgraph(
            torch.from_numpy(seeds), HOPS, undirected, relabel_nodes=True, num_nodes=n_ent
        )
        _ = undirected_type[mask]  # (e,) edge types
        return int(subset.numel()), int(sub_edges.shape[1]) // 2

    pyg_examples = examples[: args.pyg_examples]
    add(
        measure(
            "PyG k_hop_subgraph (undirected edge_index)",
            pyg,
            pyg_examples,
            note="edges: undirected copies / 2",
        )
    )

    started = time.perf_counter()
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(range(n_ent))
    graph.add_edges_from((h, t, r) for h, r, t in triples.tolist())
    nx_build_s = time.perf_counter() - started
    started = time.perf_counter()
    undirected_nx = graph.to_undirected()
    nx_undirected_s = time.perf_counter() - started

    def networkx_call(source, undirected_flag: bool) -> Callable[[np.ndarray], tuple[int, int]]:
        def call(seeds: np.ndarray) -> tuple[int, int]:
            nodes: set[int] = set()
            for s in seeds.tolist():
                nodes.update(nx.ego_graph(source, s, radius=HOPS, undirected=undirected_flag).nodes)
            sub = graph.subgraph(nodes).copy()
            return sub.number_of_nodes(), sub.number_of_edges()

        return call

    add(
        measure(
            "networkx ego_graph(undirected=True) ×3 + induced subgraph",
            networkx_call(graph, True),
            examples[: args.nx_examples],
            note="ego_graph copies the graph to undirected on every call",
        )
    )
    add(
        measure(
            "networkx ego_graph on a prebuilt MultiGraph ×3 + induced subgraph",
            networkx_call(undirected_nx, False),
            examples[: args.nx_prebuilt_examples],
            note=f"undirected copy built once ({nx_undirected_s:.1f} s, not timed)",
        )
    )

    # Same answer: uncapped kgreason = PyG = networkx node sets (on the examples networkx ran).
    checked = 0
    for seeds in examples[: max(args.nx_prebuilt_examples, 1)]:
        ours = set(kb.subgraph(seeds, hops=HOPS, max_nodes=None).n_id.tolist())
        subset = k_hop_subgraph(torch.from_numpy(seeds), HOPS, undirected, num_nodes=n_ent)[0]
        theirs: set[int] = set()
        for s in seeds.tolist():
            theirs.update(nx.ego_graph(undirected_nx, s, radius=HOPS).nodes)
        if not (ours == set(subset.tolist()) == theirs):
            raise AssertionError(f"node sets differ for seeds {seeds.tolist()}")
        checked += 1

    return {
        "kb": kb.name,
        "num_entities": n_ent,
        "num_edges": int(triples.shape[0]),
        "seeds": seeds_info,
        "adjacency_build_s": adjacency_s,
        "networkx_build_s": nx_build_s,
        "same_node_sets_checked": checked,
        "timings": [asdict(t) for t in timings],
    }


# ---------------------------------------------------------------------------------------------- report
def versions() -> dict[str, str]:
    import networkx
    import torch
    import torch_geometric

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "networkx": networkx.__version__,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Subgraph benchmark",
        "",
        f"Command: `{report['command']}`",
        "",
        f"{report['machine']}; 1-minute load average {report['load_average_1_5_15_min']['start'][0]:.2f} at the "
        f"start, {report['load_average_1_5_15_min']['end'][0]:.2f} at the end (a shared machine). 2-hop subgraphs (both edge directions) around {SEEDS_PER_EXAMPLE} seeds per example; "
        "latency per example. Ratio = method p50 / kgreason p50 without cap (same nodes and edges) on the same "
        "examples (peers run on the first N examples). "
        f"Goal: kgreason p50 ≤ {GOAL_P50_MS:g} ms on the generated 1M-edge KB.",
        "",
    ]
    for kb in report["kbs"]:
        lines += [
            f"## {kb['kb']} ({kb['num_entities']:,} entities, {kb['num_edges']:,} edges)",
            "",
            f"Seeds: {kb['seeds']['how']}."
            + (
                f" {kb['seeds']['examples_linking_exactly_the_3_chosen_entities']} of "
                f"{kb['timings'][0]['examples']} examples linked exactly the 3 chosen entities (mean "
                f"{kb['seeds']['mean_seeds']:.2f} seeds); kb.link p50 {kb['seeds']['link_p50_ms']:.3f} ms."
                if "link_p50_ms" in kb["seeds"]
                else ""
            ),
            f"Node sets of kgreason (no cap), PyG and networkx compared on {kb['same_node_sets_checked']} "
            f"examples: identical. CSR build {kb['adjacency_build_s']:.2f} s; networkx graph build "
            f"{kb['networkx_build_s']:.1f} s.",
            "",
            "| method | examples | p50 ms | p99 ms | mean nodes | mean edges | kgreason p50 ms, same examples "
            "| p50 ratio | note |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for i, t in enumerate(kb["timings"]):
            ratio = "1.00 (base)" if i == 0 else f"{t['ratio_p50']:.2f}×"
            lines.append(
                f"| {t['method']} | {t['examples']} | {t['p50_ms']:.3f} | {t['p99_ms']:.3f} | "
                f"{t['mean_nodes']:,.0f} | {t['mean_edges']:,.0f} | {t['kgreason_p50_ms_same_examples']:.3f} | "
                f"{ratio} | {t['note']} |"
            )
        lines.append("")
    lines += [f"Goal met (p50 ≤ {GOAL_P50_MS:g} ms on {report['kbs'][-1]['kb']}): {report['goal']}", ""]
    lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()), ""]
    return "\n".join(lines)


def build_adjacency(kb) -> float:
    """Build the KB's CSR index (outside the timings); seconds taken."""
    started = time.perf_counter()
    kb.adjacency  # noqa: B018
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="public data folder (default ../shared/data)"
    )
    parser.add_argument(
        "--examples", type=int, default=200, help="examples per KB for kgreason (default 200)"
    )
    parser.add_argument("--pyg-examples", type=int, default=50, help="examples for PyG (default 50)")
    parser.add_argument(
        "--nx-examples",
        type=int,
        default=3,
        help="examples for networkx ego_graph(undirected=True) (default 3)",
    )
    parser.add_argument(
        "--nx-prebuilt-examples", type=int, default=20, help="examples for networkx on a prebuilt MultiGraph"
    )
    parser.add_argument("--edges", type=int, default=1_000_000, help="edges of the generated KB")
    parser.add_argument("--entities", type=int, default=200_000, help="entities of the generated KB")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for subgraph.{json,md}")
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()

    sys.path.insert(0, str(ROOT))
    from kgreason.core.paths import data_dir
    from kgreason.kb.sources import open_kb

    data = data_dir(args.data_dir)
    if data is None or not (data / "kg" / "FB15k-237").is_dir():
        parser.error("FB15k-237 not found: pass --data-dir (the folder holding kg/FB15k-237)")
    rng = np.random.default_rng(args.seed)
    reports = []
    fb = open_kb(data / "kg" / "FB15k-237")
    adjacency_s = build_adjacency(fb)
    examples, info = linked_examples(fb, args.examples, rng)
    reports.append(run_kb(fb, examples, info, adjacency_s, args))
    del fb
    gen = generated_kb(num_edges=args.edges, num_entities=args.entities, num_relations=100, seed=args.seed)
    adjacency_s = build_adjacency(gen)
    examples, info = random_examples(gen, args.examples, rng)
    reports.append(run_kb(gen, examples, info, adjacency_s, args))

    big = reports[-1]["timings"]
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    report = {
        "benchmark": "subgraph",
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_1_5_15_min": {"start": list(load_at_start), "end": list(os.getloadavg())},
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{platform.system()}",
        "versions": versions(),
        "goal_p50_ms": GOAL_P50_MS,
        "goal": {
            "no cap": big[0]["p50_ms"] <= GOAL_P50_MS,
            "max_nodes=200": big[1]["p50_ms"] <= GOAL_P50_MS,
        },
        "kbs": reports,
    }
    write_results(args.out / "subgraph", report, markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
