"""Text + path GNN on GraIL's inductive splits: the encoder reads the entities, NBFNet reads the paths.

Per split and seed: the path GNN (:mod:`kgreason.models.path_link`) trains on the training graph (its facts are
the graph it reads; its valid triples pick the epoch), within a time budget; the text bi-encoder is a fine-tuned
``kgreason kgc`` run (``--text-runs``, one folder per seed) or the pretrained MiniLM as it is. The fusion
weights and the neighbourhood prior are chosen on the training graph's valid triples; the test triples of the
inference graph (entities never seen in training; its own facts as the graph) are ranked once per row:
filtered MRR over all of its entities and GraIL's Hits@10 against 49 sampled negatives (as its expectation).
Probes: paired bootstrap 95 % intervals of the MRR change when the text or the paths are removed.

Usage::

    python benchmarks/kgc_path.py --splits fb237_v1 --seeds 13,14,15 --minutes 20 --run-dir runs/kgc-path \\
        --text-runs 'runs/kgc-bench/{split}/seed{seed}/best'
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from kgc import ANCHORS
from reporting import link_probe, link_summary, write_results

from kgreason.core.paths import data_dir
from kgreason.kge.evaluate import rank_split
from kgreason.kge.inductive import load_inductive
from kgreason.models.path_link import PathGraph, PathLinkConfig, PathLinkPredictor, PathLinkScorer
from kgreason.models.text_link import (
    LinkTexts,
    TextLinkConfig,
    TextLinkPredictor,
    TextLinkScorer,
    build_text_link_predictor,
)
from kgreason.training.link_fusion import choose_fusion
from kgreason.training.path_link import PathLinkTrainingConfig, train_path_link

HERE = Path(__file__).resolve().parent


def _rank(scorer, kb):
    return rank_split(scorer, kb, negatives=49, batch_size=64)


def _parts(kb, text_model, path_model) -> dict[str, Any]:
    graph = PathGraph.from_triples(
        kb.triples("train"), num_entities=kb.num_entities, num_relations=kb.num_relations
    )
    texts = LinkTexts.from_kb(kb, descriptions=text_model.config.descriptions)
    # no prior inside the parts: the fused scorer applies it to the sum
    return {"text": TextLinkScorer(text_model, texts), "path": PathLinkScorer(path_model, graph)}


def run_split(name: str, args: argparse.Namespace) -> dict[str, Any]:
    dataset, _, version = name.partition("_v")
    split = load_inductive(args.root, dataset, int(version))
    train_kb, inference = split.train, split.inference
    known = inference.triple_array("train")
    runs = []
    for seed in args.seeds:
        torch.manual_seed(seed)
        model = PathLinkPredictor(config=PathLinkConfig(), num_relations=train_kb.num_relations)
        config = PathLinkTrainingConfig(
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed, time_budget=args.minutes
        )
        trained = train_path_link(model, train_kb, config=config, run_dir=args.run_dir / name / f"seed{seed}")
        if args.text_runs:
            text_model = TextLinkPredictor.from_pretrained(args.text_runs.format(split=name, seed=seed))
            text_source = "fine-tuned kgc run"
        else:
            text_model, text_source = build_text_link_predictor(TextLinkConfig()), "MiniLM zero-shot"
        dev_parts = _parts(train_kb, text_model, trained.model)
        choice = choose_fusion(dev_parts, train_kb, seed=seed)
        path_choice = choose_fusion({"path": dev_parts["path"]}, train_kb, weights=[{"path": 1.0}], seed=seed)
        text_choice = choose_fusion({"text": dev_parts["text"]}, train_kb, weights=[{"text": 1.0}], seed=seed)
        parts = _parts(inference, text_model, trained.model)
        n = inference.num_entities
        fused = _rank(choice.scorer(parts, known=known, num_entities=n), inference)
        path_only = _rank(path_choice.scorer({"path": parts["path"]}, known=known, num_entities=n), inference)
        text_only = _rank(text_choice.scorer({"text": parts["text"]}, known=known, num_entities=n), inference)
        path_raw = _rank(parts["path"], inference)
        row = {
            "seed": seed,
            "text": text_source,
            "path_training": {
                "epochs_run": len(trained.history),
                "best_epoch": trained.best_epoch,
                "best_dev_mrr": trained.best_dev_mrr,
                "seconds": trained.seconds,
                "history": trained.history,
            },
            "choice": {
                "weights": choice.weights,
                "hops": choice.hops,
                "prior_weight": choice.prior_weight,
                "dev_mrr": choice.dev_mrr,
            },
            "text+path+prior": link_summary(fused),
            "path": link_summary(path_raw),
            "path+prior": {**link_summary(path_only), "prior": [path_choice.hops, path_choice.prior_weight]},
            "text+prior": {**link_summary(text_only), "prior": [text_choice.hops, text_choice.prior_weight]},
            "probes": {
                "text_removed": link_probe(fused, path_only),
                "path_removed": link_probe(fused, text_only),
            },
        }
        runs.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "path_training"}), flush=True)
    return {
        "split": name,
        "train_graph": {"entities": train_kb.num_entities, "triples": len(train_kb.triples("train"))},
        "inference_graph": {
            "entities": inference.num_entities,
            "facts": len(known),
            "test": len(inference.triples("test")),
        },
        "runs": runs,
    }


def _ms(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Text + path GNN on GraIL's inductive splits",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Machine: {report['machine']}. Path GNN: NBFNet-style, 6 layers of width 32, DistMult messages, "
        "boundary condition at the query head, 1-vs-all cross-entropy, Adam; trained within the time budget "
        "below on the training graph. Test triples of the inference graph (unseen entities) ranked once per "
        "row: filtered MRR over all its entities, both directions, realistic ranks; H@10 (50) = GraIL's "
        "protocol as its expectation. '+ prior' rows: the neighbourhood prior and the anchor rule chosen on the "
        "training graph's valid triples. Mean ± std over seeds.",
        "",
        "| split | variant | MRR | H@1 | H@10 | H@10 (50) | path training min |",
        "|---|---|---|---|---|---|---|",
    ]
    for split in report["splits"]:
        runs = split["runs"]
        minutes = _ms([r["path_training"]["seconds"] / 60 for r in runs])
        for key, label in (
            ("text+prior", f"text ({runs[0]['text']}) + prior"),
            ("path", "path GNN"),
            ("path+prior", "path GNN + prior"),
            ("text+path+prior", "**text + path GNN + prior (fused)**"),
        ):
            cells = " | ".join(
                _ms([r[key][m] for r in runs]) for m in ("mrr", "hits_at_1", "hits_at_10", "hits_at_10_50")
            )
            lines.append(f"| {split['split']} | {label} | {cells} | {minutes if 'path' in key else '-'} |")
        for system, anchor in ANCHORS.items():
            mrr = anchor.get("mrr", {}).get(split["split"])
            hits = anchor.get("hits_at_10_50", {}).get(split["split"])
            if mrr is None and hits is None:
                continue
            fmt = lambda v: f"{v:.3f}" if v is not None else "–"  # noqa: E731
            lines.append(
                f"| {split['split']} | {system} (published) | {fmt(mrr)} | – | – | {fmt(hits)} | – |"
            )
    lines += [
        "",
        "## Per seed: fusion choice and probes (paired bootstrap 95 % CI of the test MRR change)",
        "",
    ]
    lines.append(
        "| split | seed | path epochs (kept) | weights text / path | prior | text removed | path removed |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for split in report["splits"]:
        for r in split["runs"]:
            c, p = r["choice"], r["probes"]
            cis = " | ".join(
                f"{v['mrr_change']:+.3f} [{v['low']:+.3f}, {v['high']:+.3f}]" for v in p.values()
            )
            lines.append(
                f"| {split['split']} | {r['seed']} | {r['path_training']['epochs_run']} "
                f"({r['path_training']['best_epoch']}) | {c['weights']['text']:.1f} / {c['weights']['path']:.1f} | "
                f"{c['hops']} hop(s), +{c['prior_weight']} sd | {cis} |"
            )
    lines += ["", "Anchors: " + "; ".join(f"{k}: {v['citation']}" for k, v in ANCHORS.items())]
    if report.get("notes"):
        lines += ["", "## Notes", "", *[f"- {n}" for n in report["notes"]]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", default="fb237_v1", help="Comma-separated GraIL splits (fb237_v1, ...).")
    parser.add_argument("--seeds", default="13,14,15", help="Comma-separated seeds.")
    parser.add_argument("--epochs", type=int, default=10, help="Most epochs of path GNN training.")
    parser.add_argument("--minutes", type=float, default=20.0, help="Path GNN training budget per seed.")
    parser.add_argument("--batch-size", type=int, default=32, help="Training triples per step.")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate.")
    parser.add_argument(
        "--text-runs", default="", help="Fine-tuned kgc run per split and seed ('{split}', '{seed}')."
    )
    parser.add_argument("--run-dir", type=Path, default=Path("runs/kgc-path"), help="Path GNN run folders.")
    parser.add_argument(
        "--name", default="kgc-inductive-path", help="Results stem under benchmarks/results/."
    )
    parser.add_argument("--note", action="append", default=[], help="A note for the report (repeatable).")
    parser.add_argument("--data-dir", type=Path, default=None, help="Public data folder (holding kg/).")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice).")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.root = data_dir(args.data_dir)
    if args.root is None:
        sys.exit("error: no data folder: pass --data-dir or set KGREASON_DATA")
    started = time.perf_counter()
    splits = [run_split(name.strip(), args) for name in args.splits.split(",") if name.strip()]
    command = "python benchmarks/kgc_path.py " + shlex.join(sys.argv[1:])
    for path in {
        str(args.run_dir),
        str(Path(args.text_runs).parent.parent.parent) if args.text_runs else "",
    } - {""}:
        command = command.replace(path, "RUNS")
    report = {
        "command": command,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, python {platform.python_version()}",
        "wall_seconds": time.perf_counter() - started,
        "splits": splits,
        "notes": args.note,
    }
    json_path, md_path = write_results(HERE / "results" / args.name, report, markdown(report))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
