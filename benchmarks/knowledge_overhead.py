"""Knowledge overhead: inference latency of the fused model vs the text-only model, batch 32, same encoder.

Every setting runs the embedded all-MiniLM-L6-v2 (real weights, eval mode, ``torch.inference_mode``) with a
CoNLL-2003 token-classification head, on batches of 32 real CoNLL-2003 test sentences (news: countries, people,
clubs; a seeded shuffle of the test split), and is timed end to end per batch:

* ``text``: tokenise (``task.encode_all``) + collate (``Collator``) + forward;
* ``fused``: the same, plus linking the sentences' entities in FB15k-237 and taking the 2-hop subgraph around them
  (``KnowledgeRetriever`` through ``KnowledgeFeaturizer.attach``, a fresh featurizer per batch so nothing is
  cached across batches), batching the graphs, and the GNN side (context node, relevance, GNN, attention
  pooling). Settings: GNN ``rgcn`` and ``gatv2`` (hidden 200, 2 layers: the defaults) × subgraph cap
  ``max_nodes`` ∈ {64, 200}. Node features are ``learned`` (an embedding lookup per node; ``kge`` vectors cost
  the same lookup plus one ``(N, d) × (d, 200)`` projection, so the GNN cost measured here is the same);
* ``per-example`` (peer): the QA-GNN-style loop, one sentence at a time: retrieve, tokenise, collate and forward
  at batch size 1, 32 times, with the fused model (rgcn, cap 200 by default).

``fused_facts`` is not measured: it needs a fact index over FB15k-237's 272k train facts, whose encoding takes
hours on 2 CPU cores.

The machine is shared (load 3–6 on 2 cores), so settings are interleaved: each round takes the next 32 sentences
and runs every setting on them in a rotated order; the first ``--warmup`` rounds are dropped. Reported: p50 wall
time and p50 CPU time (``time.process_time``) per batch, and the ratio of medians to ``text`` at the same
precision (CPU-time ratios are steadier than wall-clock under load). Torch runs ``--threads`` intra-op threads
(default 1: with 2 OpenMP threads on the loaded machine one descheduled thread stalls the other, and the GNN's
sparse ops swung between 0.9 s and 11 s per batch). Stage times (tokenise, retrieve, collate, encoder, graph
side) come from forward hooks. Usage::

    python benchmarks/knowledge_overhead.py                 # writes benchmarks/results/knowledge_overhead.{json,md}
    python benchmarks/knowledge_overhead.py --rounds 2 --warmup 1 --precisions fp32 --no-write
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reporting import write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BATCH = 32
HOPS = 2
MAX_LENGTH = 128
GOAL_RATIO = 1.3
STAGES = ("tokenise", "retrieve", "collate", "encoder", "graph")


@dataclass(frozen=True)
class Setting:
    """One pipeline to time."""

    name: str
    variant: str  # text | fused
    gnn: str | None = None
    max_nodes: int | None = None
    per_example: bool = False


@dataclass
class Sample:
    """One timed batch of one setting."""

    wall_s: float
    cpu_s: float
    stages: dict[str, float]
    nodes: int
    edges: int


@dataclass
class Row:
    """The summary of one setting at one precision."""

    setting: str
    precision: str
    batches: int
    p50_wall_ms: float
    p90_wall_ms: float
    p50_cpu_ms: float
    wall_ratio: float | None
    cpu_ratio: float | None
    paired_wall_ratio: float | None
    stages_p50_ms: dict[str, float]
    nodes_per_batch: float
    edges_per_batch: float
    meets_goal: bool | None
    ratios_to_fused_batched: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- pipelines
class Clock:
    """Accumulates seconds per stage; forward hooks time the encoder and the graph side."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._open: dict[str, float] = {}

    def reset(self) -> None:
        self.totals = dict.fromkeys(STAGES, 0.0)

    def add(self, stage: str, seconds: float) -> None:
        self.totals[stage] += seconds

    def hook(self, module, stage: str) -> None:
        def pre(_module, _args, _kwargs) -> None:
            self._open[stage] = time.perf_counter()

        def post(_module, _args, _kwargs, _output) -> None:
            self.add(stage, time.perf_counter() - self._open.pop(stage))

        module.register_forward_pre_hook(pre, with_kwargs=True)
        module.register_forward_hook(post, with_kwargs=True)


class Pipeline:
    """Sentences -> logits for one setting (tokenise, [retrieve], collate, forward)."""

    def __init__(
        self, *, setting: Setting, model, task, tokenizer, collator, retriever, clock: Clock
    ) -> None:
        self.setting = setting
        self.model = model
        self.task = task
        self.tokenizer = tokenizer
        self.collator = collator
        self.retriever = retriever
        self.clock = clock

    def _batch(self, examples):
        from kgreason.models.knowledge import KnowledgeFeaturizer

        start = time.perf_counter()
        data = self.task.encode_all(examples, tokenizer=self.tokenizer, max_length=MAX_LENGTH)
        self.clock.add("tokenise", time.perf_counter() - start)
        if self.retriever is not None:
            start = time.perf_counter()
            data = KnowledgeFeaturizer(retriever=self.retriever, variant="fused", progress=False).attach(data)
            self.clock.add("retrieve", time.perf_counter() - start)
        start = time.perf_counter()
        batch = self.collator(data.encoded)
        self.clock.add("collate", time.perf_counter() - start)
        return batch

    def run(self, examples, *, precision: str) -> Sample:
        """Time the whole pipeline on ``examples`` (one batch, or one example at a time for the peer)."""
        import torch

        groups = [[e] for e in examples] if self.setting.per_example else [examples]
        self.clock.reset()
        nodes = edges = 0
        wall, cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            for group in groups:
                batch = self._batch(group)
                self.model(batch)
                if batch.graph is not None:
                    nodes += int(batch.graph.num_nodes)
                    edges += int(batch.graph.edge_index.shape[1])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return Sample(wall_s=wall, cpu_s=cpu, stages=dict(self.clock.totals), nodes=nodes, edges=edges)


def link_stats(retriever, kb, batches) -> dict[str, Any]:
    """Linking and subgraph statistics of the timed sentences (one subgraph per sentence)."""
    from kgreason.models.knowledge import compact_graph

    sentences = [e for batch in batches for e in batch]
    found = retriever.subgraphs.retrieve_batch([e.text for e in sentences])
    seeds = [len(r.seeds) for r in found]
    nodes = [int(compact_graph(r.subgraph).num_nodes) for r in found]
    edges = [int(r.subgraph.edge_index.shape[1]) for r in found]
    linked = [i for i, s in enumerate(seeds) if s]
    examples = [
        {"text": sentences[i].text, "seeds": [kb.entity_label(e) for e in found[i].seeds], "nodes": nodes[i]}
        for i in linked[:4]
    ]
    return {
        "sentences": len(sentences),
        "linked": len(linked),
        "linked_share": len(linked) / len(sentences),
        "mean_seeds": statistics.fmean(seeds),
        "mean_nodes": statistics.fmean(nodes),
        "mean_edges": statistics.fmean(edges),
        "mean_nodes_linked": statistics.fmean(nodes[i] for i in linked) if linked else 0.0,
        "examples": examples,
    }


# ---------------------------------------------------------------------------------------------- summary
def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(samples: dict[tuple[str, str], list[Sample]], settings: list[Setting]) -> list[Row]:
    rows: list[Row] = []
    for (name, precision), runs in samples.items():
        base = samples.get(("text", precision))
        wall = [s.wall_s for s in runs]
        cpu = [s.cpu_s for s in runs]
        p50_wall, p50_cpu = statistics.median(wall), statistics.median(cpu)
        wall_ratio = cpu_ratio = paired = None
        if base is not None and name != "text":
            wall_ratio = p50_wall / statistics.median(s.wall_s for s in base)
            cpu_ratio = p50_cpu / statistics.median(s.cpu_s for s in base)
            paired = statistics.median(a.wall_s / b.wall_s for a, b in zip(runs, base, strict=True))
        row = Row(
            setting=name,
            precision=precision,
            batches=len(runs),
            p50_wall_ms=p50_wall * 1e3,
            p90_wall_ms=_p(wall, 0.9) * 1e3,
            p50_cpu_ms=p50_cpu * 1e3,
            wall_ratio=wall_ratio,
            cpu_ratio=cpu_ratio,
            paired_wall_ratio=paired,
            stages_p50_ms={k: statistics.median(s.stages[k] for s in runs) * 1e3 for k in STAGES},
            nodes_per_batch=statistics.fmean(s.nodes for s in runs),
            edges_per_batch=statistics.fmean(s.edges for s in runs),
            meets_goal=None if wall_ratio is None else (wall_ratio <= GOAL_RATIO and cpu_ratio <= GOAL_RATIO),
        )
        setting = next(s for s in settings if s.name == name)
        if setting.per_example:
            batched = samples.get((f"fused {setting.gnn} cap {setting.max_nodes}", precision))
            if batched is not None:
                row.ratios_to_fused_batched = {
                    "wall": p50_wall / statistics.median(s.wall_s for s in batched),
                    "cpu": p50_cpu / statistics.median(s.cpu_s for s in batched),
                }
        rows.append(row)
    return rows


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def markdown(report: dict[str, Any]) -> str:
    load = report["load_average_1_5_15_min"]
    lines = [
        "# Knowledge overhead: fused vs text-only inference latency",
        "",
        f"Command: `{report['command']}`",
        "",
        f"{report['machine']}; torch {report['versions']['torch']} with {report['torch_threads']} intra-op "
        f"thread(s); load average {load['start'][0]:.2f} at the start, {load['end'][0]:.2f} at the end (the "
        "machine is shared: absolute times are noisy, ratios and CPU times less so). "
        f"{report['rounds']} timed rounds after {report['warmup']} warm-up round(s); each round is a new batch of "
        f"{BATCH} sentences, every setting runs on it, in a rotated order. Goal: fused / text ≤ {GOAL_RATIO}× "
        "(retrieval, subgraph and GNN included).",
        "",
        report["pipeline"],
        "",
        "Sentences and subgraphs (one subgraph per sentence, 2 hops around its linked entities):",
        "",
    ]
    for cap, stats in report["linking"].items():
        lines.append(
            f"* cap {cap}: {stats['linked']} of {stats['sentences']} sentences ({stats['linked_share']:.0%}) link "
            f"at least one FB15k-237 entity ({stats['mean_seeds']:.2f} seeds per sentence); mean subgraph "
            f"{stats['mean_nodes']:.0f} nodes and {stats['mean_edges']:.0f} edges per sentence "
            f"({stats['mean_nodes_linked']:.0f} nodes per linked sentence)"
        )
    first = report["linking"][next(iter(report["linking"]))]["examples"]
    if first:
        lines.append(
            "* e.g. " + "; ".join(f"“{e['text'][:70]}” → {', '.join(e['seeds'][:4])}" for e in first[:2])
        )
    lines += [
        "",
        "| setting | precision | p50 ms | p90 ms | p50 CPU ms | ratio (wall) | ratio (CPU) | paired ratio | "
        "goal met | tokenise | retrieve | collate | encoder | graph side | nodes / batch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        st = r["stages_p50_ms"]
        goal = "—" if r["meets_goal"] is None else ("yes" if r["meets_goal"] else "no")
        lines.append(
            f"| {r['setting']} | {r['precision']} | {r['p50_wall_ms']:.0f} | {r['p90_wall_ms']:.0f} | "
            f"{r['p50_cpu_ms']:.0f} | {_ratio(r['wall_ratio'])} | {_ratio(r['cpu_ratio'])} | "
            f"{_ratio(r['paired_wall_ratio'])} | {goal} | {st['tokenise']:.0f} | {st['retrieve']:.0f} | "
            f"{st['collate']:.0f} | {st['encoder']:.0f} | {st['graph']:.0f} | {r['nodes_per_batch']:.0f} |"
        )
    lines += [
        "",
        "Ratios are the p50 of the setting over the p50 of `text` at the same precision (wall: `perf_counter`; "
        "CPU: `process_time`); the paired ratio is the median over rounds of setting / text on the same batch. "
        "Stage columns are p50 ms (encoder and graph side from forward hooks; the head is the remainder).",
        "",
    ]
    for r in report["rows"]:
        if r["ratios_to_fused_batched"]:
            b = r["ratios_to_fused_batched"]
            lines.append(
                f"The per-example loop ({r['setting']}, {r['precision']}) takes {b['wall']:.2f}× the wall time "
                f"and {b['cpu']:.2f}× the CPU time of kgreason's batched fused model with the same GNN and cap."
            )
    lines += ["", "Summary: " + report["summary"], ""]
    lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()), ""]
    return "\n".join(lines)


def summary_line(rows: list[Row]) -> str:
    met = [r for r in rows if r.meets_goal and not r.setting.startswith("per-example")]
    parts = []
    for precision in dict.fromkeys(r.precision for r in rows):
        fused = [r for r in rows if r.precision == precision and r.setting.startswith("fused")]
        if fused:
            parts.append(
                f"{precision}: fused / text from {min(r.wall_ratio for r in fused):.2f}× to "
                f"{max(r.wall_ratio for r in fused):.2f}× wall "
                f"({min(r.cpu_ratio for r in fused):.2f}×–{max(r.cpu_ratio for r in fused):.2f}× CPU)"
            )
    goal = (
        f"the ≤ {GOAL_RATIO}× goal is met (wall and CPU) by: "
        + ", ".join(f"{r.setting} {r.precision}" for r in met)
        if met
        else f"no fused setting meets the ≤ {GOAL_RATIO}× goal"
    )
    return "; ".join(parts) + "; " + goal + "."


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="public data folder (default ../shared/data)"
    )
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (batches per setting)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--gnn", nargs="+", default=["rgcn", "gatv2"], choices=["rgcn", "gatv2"])
    parser.add_argument("--max-nodes", type=int, nargs="+", default=[64, 200], help="subgraph caps")
    parser.add_argument("--peer-gnn", default="rgcn", help="GNN of the per-example loop")
    parser.add_argument("--peer-max-nodes", type=int, default=200, help="cap of the per-example loop")
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["fp32", "bf16"],
        choices=["fp32", "bf16"],
        help="bf16 = torch.autocast on CPU (the per-example loop runs in the first precision only)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for the results")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be >= 1 and --warmup >= 0")
    load_at_start = os.getloadavg()

    import torch
    import torch_geometric
    import transformers
    from tqdm.auto import tqdm

    from kgreason.core.batch import Collator
    from kgreason.core.paths import data_dir
    from kgreason.data.readers import read_dataset
    from kgreason.kb.sources import open_kb
    from kgreason.models.config import GNNConfig, ModelConfig
    from kgreason.models.encoder import load_encoder_for_training
    from kgreason.models.fused import KGReasonModel
    from kgreason.retrieval.retriever import KnowledgeRetriever
    from kgreason.tasks.registry import build_task

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = data_dir(args.data_dir)
    if data is None or not (data / "kg" / "FB15k-237").is_dir():
        parser.error("kg/FB15k-237 not found: pass --data-dir")

    started = time.perf_counter()
    splits = read_dataset("conll2003", data_dir=data)
    kb = open_kb(data / "kg" / "FB15k-237")
    pool = list(splits.test)
    random.Random(args.seed).shuffle(pool)
    needed = (args.warmup + args.rounds) * BATCH
    if len(pool) < needed:
        parser.error(f"{needed} sentences needed, the CoNLL-2003 test split has {len(pool)}")
    batches = [pool[i * BATCH : (i + 1) * BATCH] for i in range(args.warmup + args.rounds)]
    task = build_task("token_classification", labels=splits.labels)
    parts = load_encoder_for_training("embedded")
    encoder, tokenizer = parts.model, parts.tokenizer
    collator = Collator(pad_token_id=tokenizer.pad_token_id)
    clock = Clock()
    clock.hook(encoder, "encoder")  # one encoder instance, shared by every model
    retrievers = {
        cap: KnowledgeRetriever(kb=kb, hops=HOPS, max_nodes=cap, facts=False)
        for cap in dict.fromkeys([*args.max_nodes, args.peer_max_nodes])
    }
    kb.link("warm-up")  # builds the linker's automaton (one-time, not timed)
    kb.subgraph([0], hops=HOPS)  # builds the CSR adjacency (one-time, not timed)
    setup_s = time.perf_counter() - started

    def build(variant: str, gnn: str = "rgcn"):
        config = ModelConfig(
            encoder="embedded",
            variant=variant,
            head="token",
            num_labels=task.num_labels,
            node_features="learned",
            num_entities=kb.num_entities,
            num_relations=kb.num_relations,
            gnn=GNNConfig(type=gnn),
            max_length=MAX_LENGTH,
        )
        return KGReasonModel(config, encoder=encoder, tokenizer=tokenizer).eval()

    models = {"text": build("text")}
    settings = [Setting(name="text", variant="text")]
    for gnn in dict.fromkeys([*args.gnn, args.peer_gnn]):
        models[gnn] = build("fused", gnn)
        clock.hook(models[gnn].reasoner, "graph")
    for gnn in args.gnn:
        for cap in args.max_nodes:
            settings.append(Setting(name=f"fused {gnn} cap {cap}", variant="fused", gnn=gnn, max_nodes=cap))
    peer = Setting(
        name=f"per-example {args.peer_gnn} cap {args.peer_max_nodes}",
        variant="fused",
        gnn=args.peer_gnn,
        max_nodes=args.peer_max_nodes,
        per_example=True,
    )
    settings.append(peer)
    pipelines = {
        s.name: Pipeline(
            setting=s,
            model=models[s.gnn or "text"],
            task=task,
            tokenizer=tokenizer,
            collator=collator,
            retriever=retrievers[s.max_nodes] if s.variant == "fused" else None,
            clock=clock,
        )
        for s in settings
    }
    runs = [
        (s, p) for p in args.precisions for s in settings if not (s.per_example and p != args.precisions[0])
    ]

    samples: dict[tuple[str, str], list[Sample]] = {(s.name, p): [] for s, p in runs}
    with tqdm(total=len(batches) * len(runs), desc="timing", unit="batch") as bar:
        for r, batch in enumerate(batches):
            shift = r % len(runs)
            for setting, precision in runs[shift:] + runs[:shift]:
                sample = pipelines[setting.name].run(batch, precision=precision)
                if r >= args.warmup:
                    samples[(setting.name, precision)].append(sample)
                bar.update()
    rows = summarise(samples, settings)
    order = {(s.name, p): i for i, (s, p) in enumerate(runs)}
    rows.sort(key=lambda row: order[(row.setting, row.precision)])

    timed = batches[args.warmup :]
    linking = {str(cap): link_stats(retriever, kb, timed) for cap, retriever in retrievers.items()}
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    report = {
        "benchmark": "knowledge_overhead",
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_1_5_15_min": {"start": list(load_at_start), "end": list(os.getloadavg())},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "torch_geometric": torch_geometric.__version__,
        },
        "goal_ratio": GOAL_RATIO,
        "batch_size": BATCH,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "setup_s": setup_s,
        "pipeline": (
            f"Model: the embedded encoder ({parts.source.name}, real weights, eval mode, "
            "`torch.inference_mode`), one instance shared by every setting, CoNLL-2003 token head (9 tags), "
            f"max_length {MAX_LENGTH}. Fused: KB FB15k-237 ({kb.num_entities:,} entities, {kb.num_relations} "
            f"relations), {HOPS}-hop subgraphs, `learned` node features (the same lookup as KGE vectors, which "
            "add one projection), GNN hidden 200, 2 layers. Sentences: a seeded shuffle of the CoNLL-2003 test "
            f"split ({len(splits.test):,} sentences); each timed batch includes tokenising, retrieval "
            "(linking + subgraph, no cache across batches), collation and the forward. The per-example peer runs "
            "the same steps one sentence at a time (batch size 1), 32 times per batch. `fused_facts` is not "
            "measured (its FB15k-237 fact index needs hours of encoding on this machine)."
        ),
        "linking": linking,
        "settings": [asdict(s) for s in settings],
        "rows": [asdict(r) for r in rows],
    }
    report["summary"] = summary_line(rows)
    text = markdown(report)
    if not args.no_write:
        write_results(args.out / "knowledge_overhead", report, text)
    print(text)


if __name__ == "__main__":
    main()
