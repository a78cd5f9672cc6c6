"""Text + KG embeddings on transductive WN18RR / FB15k-237: does the encoder help the KG and the KG the encoder?

Per KB: the embedded MiniLM bi-encoder as it is (zero-shot: what the sentence encoder already knows, no
training) ranks every entity; ComplEx-N3 from ``kgreason kge train`` with its defaults (one run folder per seed,
from ``benchmarks/kge_defaults.py``) ranks them too; the fused scorer (``kgreason.models.link_fusion``: per-query
standardised scores, weighted, plus the neighbourhood prior) has its weights and prior chosen on 500 valid
triples. The test triples are ranked once per variant (filtered, both directions, realistic ranks). Probes:
paired bootstrap 95 % intervals of the test MRR change when one kind of knowledge is removed from the fused
model (the text, the KG embeddings, the neighbourhood prior, the descriptions).

Usage::

    python benchmarks/kgc_fusion.py --kb kg/WN18RR --kge-runs 'runs/kge-defaults/WN18RR-kgreason-kge-train-defaults-{seed}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from reporting import link_probe, link_summary, write_results

from kgreason.kb.sources import open_kb
from kgreason.kge.embeddings import load_kge
from kgreason.kge.evaluate import rank_split
from kgreason.models.text_link import LinkTexts, TextLinkConfig, TextLinkScorer, build_text_link_predictor
from kgreason.training.link_fusion import choose_fusion

HERE = Path(__file__).resolve().parent

#: Published filtered test MRR (both directions) beside which the rows are read.
ANCHORS: dict[str, list[tuple[str, float, str]]] = {
    "WN18RR": [
        ("RotatE", 0.477, "Sun et al. 2019, repository README"),
        ("ComplEx-N3", 0.49, "Lacroix et al. 2018, kbc README (rank 2000)"),
        ("NBFNet", 0.551, "Zhu et al. 2021, Table 2"),
        ("SimKGC (bert-base, GPU)", 0.666, "Wang et al. 2022, Table 2"),
    ],
    "FB15k-237": [
        ("SimKGC (bert-base, GPU)", 0.336, "Wang et al. 2022, Table 2"),
        ("ComplEx-N3", 0.37, "Lacroix et al. 2018, kbc README"),
        ("NBFNet", 0.415, "Zhu et al. 2021, Table 2"),
    ],
}


def _test(scorer, kb):
    return rank_split(scorer, kb, progress=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    kb = open_kb(args.kb)
    started = time.perf_counter()
    model = build_text_link_predictor(TextLinkConfig())
    text = TextLinkScorer(model, LinkTexts.from_kb(kb, descriptions=True), progress=True)
    encode_seconds = time.perf_counter() - started
    described = sum(bool(kb.entity_description(e)) for e in range(kb.num_entities))
    names = TextLinkScorer(model, LinkTexts.from_kb(kb, descriptions=False)) if described else None
    known = kb.triple_array("train")
    out: dict[str, Any] = {
        "kb": kb.name,
        "entities": kb.num_entities,
        "test_triples": len(kb.triples("test")),
        "described_entities": described,
        "entity_encoding_seconds": encode_seconds,
    }
    began = time.perf_counter()
    text_alone = _test(text, kb)
    out["text"] = {**link_summary(text_alone), "seconds": time.perf_counter() - began + encode_seconds}
    text_prior = choose_fusion({"text": text}, kb, weights=[{"text": 1.0}])
    text_with_prior = _test(text_prior.scorer({"text": text}, known=known, num_entities=kb.num_entities), kb)
    out["text+prior"] = {**link_summary(text_with_prior), "prior": [text_prior.hops, text_prior.prior_weight]}
    print(json.dumps({k: out[k] for k in ("text", "text+prior")}), flush=True)
    runs = []
    for seed in args.seeds:
        folder = Path(args.kge_runs.format(seed=seed))
        emb = load_kge(folder)
        kge_metrics = json.loads((folder / "config.json").read_text()).get("metrics", {})
        kge = emb.scorer_for(kb)
        parts = {"text": text, "kge": kge}
        began = time.perf_counter()
        choice = choose_fusion(parts, kb, seed=seed)
        choose_seconds = time.perf_counter() - began
        fused = _test(choice.scorer(parts, known=known, num_entities=kb.num_entities), kb)
        kge_alone = _test(kge, kb)
        kge_prior = choose_fusion({"kge": kge}, kb, weights=[{"kge": 1.0}], seed=seed)
        kge_with_prior = _test(kge_prior.scorer({"kge": kge}, known=known, num_entities=kb.num_entities), kb)
        unprimed = dataclasses.replace(choice, hops=0, prior_weight=0.0)  # the anchor rule stays
        no_prior = _test(unprimed.scorer(parts, known=known, num_entities=kb.num_entities), kb)
        row: dict[str, Any] = {
            "seed": seed,
            "kge_run": str(folder),
            "kge_train_seconds": kge_metrics.get("train_seconds"),
            "choice": {
                "weights": choice.weights,
                "hops": choice.hops,
                "prior_weight": choice.prior_weight,
                "dev_mrr": choice.dev_mrr,
                "seconds": choose_seconds,
            },
            "text+kge+prior": link_summary(fused),
            "kge": link_summary(kge_alone),
            "kge+prior": {**link_summary(kge_with_prior), "prior": [kge_prior.hops, kge_prior.prior_weight]},
            "text+kge": link_summary(no_prior),
            "probes": {
                "text_removed": link_probe(fused, kge_with_prior),
                "kge_removed": link_probe(fused, text_with_prior),
                "prior_removed": link_probe(fused, no_prior),
            },
        }
        if names is not None:
            names_parts = {"text": names, "kge": kge}
            names_only = _test(choice.scorer(names_parts, known=known, num_entities=kb.num_entities), kb)
            row["names+kge+prior"] = link_summary(names_only)
            row["probes"]["descriptions_removed"] = link_probe(fused, names_only)
        runs.append(row)
        print(
            json.dumps({k: row[k] for k in ("seed", "choice", "text+kge+prior", "kge", "kge+prior")}),
            flush=True,
        )
    out["runs"] = runs
    return out


def _ms(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def markdown(report: dict[str, Any]) -> str:
    r = report["result"]
    runs = r["runs"]
    lines = [
        f"# Text + KG embeddings on {r['kb']} (transductive)",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Machine: {report['machine']}. {r['entities']:,} entities ({r['described_entities']:,} with a "
        f"description), {r['test_triples']:,} test triples ranked in both directions over every entity "
        "(filtered, realistic ranks), once per row. Text: the embedded MiniLM bi-encoder as it is (no "
        "fine-tuning). KGE: `kgreason kge train` defaults (ComplEx-N3, 10-minute budget), one run per seed. "
        "Fusion weights and prior chosen on 500 valid triples per seed; mean ± std over "
        f"{len(runs)} seeds (the text rows have no seed). Every '+ prior' row includes the anchor rule (the "
        "query's own entity is ruled out unless its relation links an entity to itself in training), chosen "
        "on dev with the neighbourhood weight (0 hops = the anchor rule alone).",
        "",
        "| variant | MRR | Hits@1 | Hits@10 | CPU time |",
        "|---|---|---|---|---|",
        f"| text (zero-shot MiniLM) | {r['text']['mrr']:.3f} | {r['text']['hits_at_1']:.3f} | "
        f"{r['text']['hits_at_10']:.3f} | {r['text']['seconds'] / 60:.1f} min (encode + rank) |",
        f"| text + prior | {r['text+prior']['mrr']:.3f} | {r['text+prior']['hits_at_1']:.3f} | "
        f"{r['text+prior']['hits_at_10']:.3f} | + dev grid |",
    ]
    train_min = [x["kge_train_seconds"] / 60 for x in runs if x.get("kge_train_seconds")]
    train = f"{statistics.fmean(train_min):.1f} min training" if train_min else "-"
    for key, label, time_text in (
        ("kge", "KGE (ComplEx-N3 defaults)", train),
        ("kge+prior", "KGE + prior", train),
        ("text+kge", "text + KGE (no prior)", "KGE + text"),
        ("text+kge+prior", "**text + KGE + prior (fused)**", "KGE + text + dev grid"),
        ("names+kge+prior", "names only + KGE + prior", ""),
    ):
        if key not in runs[0]:
            continue
        cells = " | ".join(_ms([x[key][m] for x in runs]) for m in ("mrr", "hits_at_1", "hits_at_10"))
        lines.append(f"| {label} | {cells} | {time_text} |")
    lines += [
        "",
        "## Probes (paired bootstrap 95 % CI of the test MRR change, fused minus one kind of knowledge)",
        "",
    ]
    lines.append("| seed | weights (text / kge) | prior | dev MRR | " + " | ".join(runs[0]["probes"]) + " |")
    lines.append("|---|---|---|---|" + "---|" * len(runs[0]["probes"]))
    for x in runs:
        c = x["choice"]
        probes = " | ".join(
            f"{p['mrr_change']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}]" for p in x["probes"].values()
        )
        lines.append(
            f"| {x['seed']} | {c['weights'].get('text', 0):.1f} / {c['weights'].get('kge', 0):.1f} | "
            f"{c['hops']} hop(s), +{c['prior_weight']} sd | {c['dev_mrr']:.3f} | {probes} |"
        )
    lines += ["", "## Anchors (published, filtered test MRR)", ""]
    lines += [f"- {name}: {mrr:.3f} ({where})" for name, mrr, where in ANCHORS.get(r["kb"], [])]
    if report.get("notes"):
        lines += ["", "## Notes", "", *[f"- {n}" for n in report["notes"]]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kb", default="kg/WN18RR", help="KB path (relative: the data folder).")
    parser.add_argument("--kge-runs", required=True, help="KGE run folder per seed, with '{seed}' in it.")
    parser.add_argument("--seeds", default="0,1,2", help="Comma-separated seeds (one KGE run each).")
    parser.add_argument("--name", default=None, help="Results stem (default: kgc-fusion-<kb>).")
    parser.add_argument("--note", action="append", default=[], help="A note for the report (repeatable).")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core).")
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    torch.set_num_threads(args.threads or len(__import__("os").sched_getaffinity(0)))
    result = run(args)
    stem = HERE / "results" / (args.name or f"kgc-fusion-{result['kb'].lower()}")
    runs_root = str(Path(args.kge_runs).parent)
    report = {
        "command": "python benchmarks/kgc_fusion.py " + shlex.join(sys.argv[1:]).replace(runs_root, "RUNS"),
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, torch threads "
        f"{torch.get_num_threads()}",
        "anchors": ANCHORS.get(result["kb"], []),
        "result": result,
        "notes": args.note,
    }
    json_path, md_path = write_results(stem, report, markdown(report))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
