"""Fact retrieval benchmark: faiss Flat vs HNSW vs IVF (kgreason's FactIndex), latency and recall@10 vs exact.

Vectors:

* **100k real**: 100,000 train facts sampled from FB15k-237 + WN18RR (``kg/`` in the data folder), verbalised by
  ``kb.verbalize`` and encoded with the embedded all-MiniLM-L6-v2 (``SentenceEncoder``). Cached under
  ``benchmarks/.work/`` (git-ignored) keyed by the sha256 of the texts and the encoder identity.
* **1M = 100k real + 900k synthetic**: encoding 1M facts on 2 CPU cores takes hours, so 900k vectors are
  **synthetic**, each a real vector plus isotropic Gaussian noise, renormalised; the noise is calibrated so that
  a synthetic vector's cosine to its parent equals the median cosine of a real fact to its nearest real
  neighbour (the local density of the real set).

Queries: questions about real entities, "What is the <relation> of <head>?" from the test splits of both KBs,
encoded with the same encoder. Exact top-10 comes from ``IndexFlatIP``; recall@10 is the share of it an index
finds. Latency is one query per ``search`` call (what a retriever does per example), index search only;
the encoder's own per-query latency is reported beside it. Usage::

    python benchmarks/facts.py                     # writes benchmarks/results/facts.{json,md}
    python benchmarks/facts.py --big 0             # 100k only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from reporting import write_results

from kgreason.core.atomic import atomic_output, atomic_text_output

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOAL_MS = 0.5
GOAL_RECALL = 0.95
K = 10


@dataclass
class Row:
    """One index configuration on one vector set."""

    vectors: str
    index: str
    params: str
    build_s: float
    p50_ms: float
    p99_ms: float
    recall_at_10: float
    meets_goal: bool


# ---------------------------------------------------------------------------------------------- data
def load_facts(
    data: Path, *, n: int, n_queries: int, seed: int
) -> tuple[list[str], list[str], dict[str, Any]]:
    """``n`` sampled verbalised train facts and ``n_queries`` entity questions from the test splits."""
    from kgreason.kb.sources import open_kb

    rng = np.random.default_rng(seed)
    texts: list[str] = []
    questions: list[str] = []
    info: dict[str, Any] = {}
    kbs = [open_kb(data / "kg" / name) for name in ("FB15k-237", "WN18RR")]
    total = sum(int(kb.graph_triples().shape[0]) for kb in kbs)
    for i, kb in enumerate(kbs):
        train = kb.graph_triples().numpy()  # (E, 3)
        take = round(n * train.shape[0] / total) if i < len(kbs) - 1 else n - len(texts)
        rows = train[np.sort(rng.choice(train.shape[0], size=take, replace=False))]  # (take, 3)
        texts.extend(kb.verbalize(rows))
        test = kb.triples("test").numpy()  # (T, 3)
        want = n_queries // len(kbs) if i < len(kbs) - 1 else n_queries - len(questions)
        picked = test[rng.choice(test.shape[0], size=want, replace=False)]
        questions.extend(
            f"What is the {kb.relation_label(int(r))} of {kb.entity_label(int(h))}?"
            for h, r, _ in picked.tolist()
        )
        info[kb.name] = {"train_facts": int(train.shape[0]), "sampled": int(take), "queries": int(want)}
    return texts, questions, info


def encode_cached(encoder, texts: list[str], work: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Vectors of ``texts``, from the cache in ``work`` when the texts and encoder match."""
    digest = hashlib.sha256(encoder.identity.encode())
    digest.update("\n".join(texts).encode())
    path = work / f"fact_vectors_{digest.hexdigest()[:16]}.npy"
    if path.is_file():
        vectors = np.load(path, allow_pickle=False)
        meta = json.loads(path.with_suffix(".json").read_text())
        return vectors, {**meta, "cached": True}
    started = time.perf_counter()
    vectors = encoder.encode(texts, progress=True)  # (n, d)
    seconds = time.perf_counter() - started
    meta = {"texts": len(texts), "encode_s": seconds, "sentences_per_s": len(texts) / seconds}
    with atomic_output(path) as handle:
        np.save(handle, vectors)
    with atomic_text_output(path.with_suffix(".json")) as handle:
        json.dump(meta, handle)
    return vectors, {**meta, "cached": False}


def synthetic_around(
    real: np.ndarray, *, total: int, seed: int, exact_index
) -> tuple[np.ndarray, dict[str, Any]]:
    """``real`` plus ``total - len(real)`` noisy copies of random real rows, calibrated to real NN cosines."""
    rng = np.random.default_rng(seed)
    probe = real[rng.choice(real.shape[0], size=min(2000, real.shape[0]), replace=False)]  # (p, d)
    nn = exact_index.search(probe, k=2).scores[:, 1]  # (p,) cosine to the nearest other real fact
    target = float(np.median(nn))
    sigma = float(np.sqrt(1.0 / target**2 - 1.0))
    n_new, dim = total - real.shape[0], real.shape[1]
    out = np.empty((total, dim), dtype=np.float32)  # (N, d)
    out[: real.shape[0]] = real
    achieved: list[float] = []
    for start in range(0, n_new, 100_000):
        m = min(100_000, n_new - start)
        parents = real[rng.integers(0, real.shape[0], m)]  # (m, d)
        noisy = parents + rng.standard_normal((m, dim), dtype=np.float32) * (sigma / np.sqrt(dim))  # (m, d)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        out[real.shape[0] + start : real.shape[0] + start + m] = noisy
        achieved.extend((noisy[:200] * parents[:200]).sum(axis=1).tolist())
    return out, {
        "median_real_nn_cosine": target,
        "noise_sigma": sigma,
        "median_cosine_to_parent": float(np.median(achieved)),
        "synthetic": n_new,
    }


# ---------------------------------------------------------------------------------------------- timing
def latency(index, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-query ms (one query per call, after a warm-up) and the (q, K) ids found."""
    index.search(queries[:1], k=K)
    times, ids = [], []
    for q in queries:
        start = time.perf_counter()
        hits = index.search(q[None, :], k=K)
        times.append(time.perf_counter() - start)
        ids.append(hits.ids[0])
    return np.asarray(times) * 1e3, np.stack(ids)


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of the exact top-K ids that ``found`` holds. Shapes: (q, K), (q, K)."""
    return float(
        np.mean([len(set(f.tolist()) & set(e.tolist())) / K for f, e in zip(found, exact, strict=True)])
    )


def run_set(
    label: str, vectors: np.ndarray, queries: np.ndarray, args: argparse.Namespace, exact_index=None
) -> tuple[list[Row], Any]:
    from kgreason.retrieval.facts import FactIndex, choose_index

    rows: list[Row] = []
    print(f"[{label}] {vectors.shape[0]:,} vectors", flush=True)

    def timed_build(params):
        started = time.perf_counter()
        index = FactIndex.build(vectors, params=params, progress=True)
        return index, time.perf_counter() - started

    def add(index, name: str, params: str, build_s: float, exact_ids: np.ndarray) -> None:
        ms, ids = latency(index, queries)
        r = recall(ids, exact_ids)
        p50 = float(np.percentile(ms, 50))
        rows.append(
            Row(
                vectors=label,
                index=name,
                params=params,
                build_s=build_s,
                p50_ms=p50,
                p99_ms=float(np.percentile(ms, 99)),
                recall_at_10=r,
                meets_goal=p50 <= GOAL_MS and r >= GOAL_RECALL,
            )
        )
        print(f"  {name:5} {params:32} p50 {p50:.3f} ms  recall@10 {r:.3f}", flush=True)

    if exact_index is None:
        exact_index, build_s = timed_build(choose_index(vectors.shape[0], index_type="flat"))
    else:
        build_s = 0.0
    exact_ids = exact_index.search(queries, k=K).ids  # (q, K) ground truth, batched
    add(exact_index, "flat", "IndexFlatIP (exact)", build_s, exact_ids)

    for config in args.hnsw:
        m, ef_construction = (int(x) for x in config.split(":"))
        params = choose_index(vectors.shape[0], index_type="hnsw", hnsw_m=m, ef_construction=ef_construction)
        hnsw, build_s = timed_build(params)
        for ef in args.ef_search:
            hnsw.set_search_params(ef_search=ef)
            add(hnsw, "hnsw", f"M={m} efC={ef_construction} efS={ef}", build_s, exact_ids)
        del hnsw

    params = choose_index(vectors.shape[0], index_type="ivf", ivf_nlist=args.ivf_nlist)
    ivf, build_s = timed_build(params)
    for nprobe in args.nprobe:
        ivf.set_search_params(nprobe=nprobe)
        add(ivf, "ivf", f"nlist={params.ivf_nlist} nprobe={nprobe}", build_s, exact_ids)
    del ivf
    return rows, exact_index


# ---------------------------------------------------------------------------------------------- report
def _load(report: dict[str, Any]) -> str:
    load = report["load_average_1_5_15_min"]
    return f"{load['start'][0]:.2f} at the start, {load['end'][0]:.2f} at the end"


def markdown(report: dict[str, Any]) -> str:
    enc = report["encoder"]
    lines = [
        "# Fact retrieval benchmark",
        "",
        f"Command: `{report['command']}`",
        "",
        f"{report['machine']}; faiss {report['versions']['faiss']} with {report['faiss_threads']} threads; "
        f"load average {_load(report)} (the machine is shared: absolute times are noisy). "
        f"{report['queries']} queries, one per search call; latency is the index search only. "
        f"Goal: p50 ≤ {GOAL_MS} ms at recall@10 ≥ {GOAL_RECALL} vs exact search.",
        "",
        "Vectors:",
        "",
    ]
    for name, text in report["vector_sets"].items():
        lines.append(f"* **{name}**: {text}")
    lines += [
        "",
        f"Encoder {enc['name']} ({enc['dim']} dims, {enc['device']}): "
        f"{enc['sentences_per_s']:,.0f} sentences/s at batch size {enc['batch_size']} "
        f"({enc['throughput_texts']:,} real fact sentences); one query encoded alone: p50 "
        f"{enc['query_p50_ms']:.1f} ms. "
        + (
            f"The 100k real vectors took {enc['bulk']['encode_s']:.0f} s "
            f"({enc['bulk']['sentences_per_s']:,.0f} sentences/s)"
            + (" (read from the cache of an earlier run)." if enc["bulk"]["cached"] else ".")
        ),
        "",
        "| vectors | index | parameters | build s | p50 ms | p99 ms | recall@10 | goal met |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['vectors']} | {r['index']} | {r['params']} | {r['build_s']:.1f} | {r['p50_ms']:.3f} | "
            f"{r['p99_ms']:.3f} | {r['recall_at_10']:.3f} | {'yes' if r['meets_goal'] else 'no'} |"
        )
    lines += [
        "",
        f"kgreason's defaults: {report['defaults']}",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    sys.path.insert(0, str(ROOT))
    from kgreason.retrieval import facts as facts_module

    default_hnsw = f"{facts_module.HNSW_M}:{facts_module.HNSW_EF_CONSTRUCTION}"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="public data folder (default ../shared/data)"
    )
    parser.add_argument("--facts", type=int, default=100_000, help="real facts to encode (default 100,000)")
    parser.add_argument("--big", type=int, default=1_000_000, help="size of the large set (0: skip)")
    parser.add_argument("--queries", type=int, default=200, help="entity questions (default 200)")
    parser.add_argument(
        "--hnsw",
        nargs="+",
        default=[default_hnsw, "32:80"],
        help=f"HNSW builds as M:efConstruction (default: kgreason's {default_hnsw}, and 32:80)",
    )
    parser.add_argument("--ef-search", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--ivf-nlist", type=int, default=None, help="IVF lists (default sqrt(n))")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=HERE / ".work", help="cache of encoded vectors")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for facts.{json,md}")
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()

    import faiss
    import torch

    from kgreason.core.paths import data_dir
    from kgreason.encoders.sentence import SentenceEncoder

    data = data_dir(args.data_dir)
    if data is None or not (data / "kg" / "FB15k-237").is_dir():
        parser.error("kg/FB15k-237 not found: pass --data-dir")
    texts, questions, sources = load_facts(data, n=args.facts, n_queries=args.queries, seed=args.seed)

    started = time.perf_counter()
    encoder = SentenceEncoder(device="cpu")
    load_s = time.perf_counter() - started
    sample = texts[:2000]
    encoder.encode(sample[:64])
    started = time.perf_counter()
    encoder.encode(sample, progress=False)
    throughput = len(sample) / (time.perf_counter() - started)
    one = []
    for q in questions[:50]:
        started = time.perf_counter()
        encoder.encode(q)
        one.append((time.perf_counter() - started) * 1e3)
    vectors, bulk = encode_cached(encoder, texts, args.work)
    queries = encoder.encode(questions, progress=False)  # (q, d)

    rows, exact = run_set(f"{len(texts) // 1000}k real", vectors, queries, args)
    per_kb = ", ".join(f"{name}: {info['sampled']:,}" for name, info in sources.items())
    vector_sets = {
        f"{len(texts) // 1000}k real": f"{len(texts):,} real FB15k-237 + WN18RR train facts ({per_kb}), "
        "verbalised and encoded.",
    }
    if args.big and args.big > len(texts):
        big, synth = synthetic_around(vectors, total=args.big, seed=args.seed, exact_index=exact)
        del exact
        label = (
            f"{args.big // 1_000_000}M = {len(texts) // 1000}k real + {synth['synthetic'] // 1000}k synthetic"
        )
        vector_sets[label] = (
            f"the {len(texts):,} real vectors plus {synth['synthetic']:,} SYNTHETIC vectors: a random real "
            f"vector + N(0, σ²/d) noise (σ = {synth['noise_sigma']:.3f}), renormalised, so each has cosine "
            f"{synth['median_cosine_to_parent']:.3f} (median) to its parent, matching "
            f"{synth['median_real_nn_cosine']:.3f}, the median cosine of a real fact to its nearest real neighbour."
        )
        big_rows, _ = run_set(label, big, queries, args)
        rows += big_rows
        del big

    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    report = {
        "benchmark": "facts",
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_1_5_15_min": {"start": list(load_at_start), "end": list(os.getloadavg())},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        "faiss_threads": faiss.omp_get_max_threads(),
        "versions": {
            "python": platform.python_version(),
            "faiss": faiss.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "goal": {"p50_ms": GOAL_MS, "recall_at_10": GOAL_RECALL},
        "sources": sources,
        "queries": len(questions),
        "query_examples": questions[:3],
        "vector_sets": vector_sets,
        "encoder": {
            "name": encoder.name,
            "identity": encoder.identity,
            "dim": encoder.dim,
            "device": str(encoder.device),
            "batch_size": encoder.batch_size,
            "load_s": load_s,
            "throughput_texts": len(sample),
            "sentences_per_s": throughput,
            "query_p50_ms": float(np.percentile(one, 50)),
            "bulk": bulk,
        },
        "defaults": (
            f"index_type='auto' -> flat below {facts_module.HNSW_THRESHOLD:,} facts, else HNSW "
            f"M={facts_module.HNSW_M} efConstruction={facts_module.HNSW_EF_CONSTRUCTION} "
            f"efSearch={facts_module.HNSW_EF_SEARCH}"
        ),
        "rows": [asdict(r) for r in rows],
    }
    write_results(args.out / "facts", report, markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
