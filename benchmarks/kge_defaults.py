"""``kgreason kge train`` as a new user runs it: defaults only, on a KG its recipes were not tuned on.

Each seed runs the installed command line in a child process exactly as a user would type it (``kgreason kge
train --kb kg/FB15k-237 --seed S --out DIR --json``, plus any ``--extra`` options for a variant row) and reads its
JSON: test metrics (filtered, both directions, realistic ranks), training seconds, epochs run and kept, the
torch thread count the command picked, and the wall time of the whole command (loading, thread probe,
training, validation, test). Reported beside the KG's published tuned anchors (from knowledge/kge/recipes.yaml)
as a share of each anchor's MRR.

Usage::

    python benchmarks/kge_defaults.py --kb kg/FB15k-237 --seeds 0,1,2 --run-dir runs/kge-defaults
    python benchmarks/kge_defaults.py --kb kg/FB15k-237 --seeds 0 --label "RotatE default" --extra "--model rotate"
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from reporting import write_results

from kgreason.kge.recipes import load_recipes

HERE = Path(__file__).resolve().parent
METRICS = ("mrr", "hits_at_1", "hits_at_10")


def run_seed(kb: str, seed: int, out: Path, extra: list[str]) -> dict[str, Any]:
    """One ``kgreason kge train`` in a child process; its JSON report plus the command's wall time."""
    command = [
        "kgreason",
        "kge",
        "train",
        "--kb",
        kb,
        "--seed",
        str(seed),
        "--out",
        str(out),
        "--json",
        *extra,
    ]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"seed {seed}: {shlex.join(command)} failed:\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    test = report["test"]["both"]
    return {
        "seed": seed,
        "command": shlex.join(command),
        **{m: test[m] for m in METRICS},
        "train_seconds": report["train_seconds"],
        "wall_seconds": wall,
        "epochs_run": report["epochs_run"],
        "best_epoch": report["best_epoch"],
        "threads": report.get("threads", {}),
        "history": report.get("history", []),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def stat(key: str) -> dict[str, float]:
        values = [float(r[key]) for r in rows]
        return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}

    return {key: stat(key) for key in (*METRICS, "train_seconds", "wall_seconds", "epochs_run")}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# `kgreason kge train` defaults on {report['kb']}",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Machine: {report['machine']}. Each seed: one `kgreason kge train` child process with the options "
        "below and nothing else; test split, filtered, both directions, realistic ranks. Wall = the whole "
        "command (load, thread probe, training, validations, test).",
        "",
        "| variant | options | seeds | MRR | Hits@1 | Hits@10 | train min | wall min | epochs | threads | "
        + " | ".join(f"% of {a['short']}" for a in report["anchors"])
        + " |",
        "|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(report["anchors"]),
    ]
    for variant in report["variants"]:
        s = variant["summary"]

        def ms(key: str, scale: float = 1.0, digits: int = 3, s: dict[str, Any] = s) -> str:
            return f"{s[key]['mean'] / scale:.{digits}f} ± {s[key]['std'] / scale:.{digits}f}"

        threads = sorted({str(r["threads"].get("threads", "?")) for r in variant["rows"]})
        shares = " | ".join(f"{100 * s['mrr']['mean'] / a['mrr']:.1f} %" for a in report["anchors"])
        lines.append(
            f"| {variant['label']} | `{variant['options'] or '(defaults)'}` | {len(variant['rows'])} | "
            f"{ms('mrr')} | {ms('hits_at_1')} | {ms('hits_at_10')} | {ms('train_seconds', 60, 1)} | "
            f"{ms('wall_seconds', 60, 1)} | {ms('epochs_run', 1, 1)} | {', '.join(threads)} | {shares} |"
        )
    lines += ["", "## Anchors", ""]
    for a in report["anchors"]:
        lines.append(f"- {a['name']}: MRR {a['mrr']:.3f} — {a['citation']}")
    lines += ["", "## Per seed", ""]
    for variant in report["variants"]:
        for r in variant["rows"]:
            steps = [h for h in r["history"] if not h.get("all_valid")]
            curve = ", ".join(
                f"{h['epoch']}: {h['valid_mrr']:.3f}"
                + (f" ({h['seconds'] / 60:.1f} min)" if "seconds" in h else "")
                for h in steps
            )
            probe = ", ".join(
                f"{n}: {1000 * t:.0f} ms" for n, t in r["threads"].get("probe_seconds", {}).items()
            )
            lines.append(
                f"- {variant['label']}, seed {r['seed']}: test MRR {r['mrr']:.4f} in {r['train_seconds'] / 60:.1f} "
                f"min of training ({r['epochs_run']} epochs, kept {r['best_epoch']}, valid MRR on all valid "
                f"triples {r['history'][-1]['valid_mrr']:.3f}); valid MRR (5,000 valid triples) by epoch {curve}; "
                f"thread probe (one batch) {probe or '-'}"
            )
    if report.get("notes"):
        lines += ["", "## Notes", "", *[f"- {n}" for n in report["notes"]]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kb", default="kg/FB15k-237", help="KB path (relative paths: the data folder).")
    parser.add_argument("--seeds", default="0,1,2", help="Comma-separated seeds.")
    parser.add_argument("--label", default="kgreason kge train defaults", help="Variant label of this run.")
    parser.add_argument("--extra", default="", help="Extra options for every run (a variant row).")
    parser.add_argument(
        "--run-dir", type=Path, default=Path("runs/kge-defaults"), help="Run folders go here."
    )
    parser.add_argument("--name", default="kge-defaults", help="Results file stem under benchmarks/results/.")
    parser.add_argument("--note", action="append", default=[], help="A note for the report (repeatable).")
    args = parser.parse_args()
    extra = shlex.split(args.extra)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    kb_name = Path(args.kb).name
    anchors = [a for a in load_recipes().anchors.values() if a.dataset == kb_name]
    stem = HERE / "results" / args.name
    previous = (
        json.loads(stem.with_suffix(".json").read_text()) if stem.with_suffix(".json").is_file() else None
    )
    variants = (previous or {}).get("variants", [])
    if seeds:  # a rerun of a variant replaces its row; --seeds '' keeps every row
        variants = [v for v in variants if v["label"] != args.label]
    rows = []
    for seed in seeds:
        slug = "".join(c if c.isalnum() else "-" for c in args.label)
        rows.append(run_seed(args.kb, seed, args.run_dir / f"{kb_name}-{slug}-{seed}", extra))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "history"}), flush=True)
    if rows:  # --seeds '' adds notes to an existing report without a new variant
        variants.append(
            {"label": args.label, "options": args.extra, "rows": rows, "summary": summarise(rows)}
        )
    command = "python benchmarks/kge_defaults.py " + shlex.join(sys.argv[1:]).replace(
        str(args.run_dir), "RUNS"
    )
    report = {
        "kb": kb_name,
        "command": command if rows or previous is None else previous["command"],
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, "
        f"Python {platform.python_version()}",
        "anchors": [
            {
                "name": a.name,
                "mrr": a.mrr,
                "short": a.short,
                "citation": a.citation.paper + " — " + (a.citation.where or ""),
            }
            for a in anchors
        ],
        "variants": variants,
        "notes": sorted(set((previous or {}).get("notes", []) + args.note)),
    }
    json_path, md_path = write_results(stem, report, markdown(report))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
