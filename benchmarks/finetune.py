"""Fine-tuning benchmarks: CoNLL-2003 NER and Financial PhraseBank (50Agree, AllAgree), 3 seeds each.

Runs ``kgreason train`` for each experiment (a finished seed is reused, so an interrupted benchmark continues) and
collects the multi-seed summaries into ``benchmarks/results/finetune.{json,md}`` with the published anchors beside
them. Usage::

    python benchmarks/finetune.py                     # train what is missing, then write the results
    python benchmarks/finetune.py --report-only       # only collect runs/*/summary.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

from reporting import write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEEDS = "13,14,15"

#: name -> (config, overrides, primary metrics, anchor text)
EXPERIMENTS = {
    "conll2003-ner": (
        "configs/conll2003.yaml",
        [],
        ["f1", "precision", "recall"],
        "BERT-base (cased) fine-tuning 92.4 (Devlin et al. 2019); the seed article quotes 92.7",
    ),
    "phrasebank-50agree": (
        "configs/phrasebank.yaml",
        [],
        ["accuracy", "macro_f1"],
        "FinBERT accuracy 0.86 / F1 0.84 on all data (Araci 2019)",
    ),
    "phrasebank-allagree": (
        "configs/phrasebank.yaml",
        ["data.options.agreement=all", "name=phrasebank-allagree"],
        ["accuracy", "macro_f1"],
        "FinBERT accuracy 0.97 / F1 0.95 on AllAgree (Araci 2019)",
    ),
}


def train(name: str) -> None:
    config, overrides, _, _ = EXPERIMENTS[name]
    cmd = ["kgreason", "train", config, "--seeds", SEEDS, "--set", "trainer.progress=false"]
    for item in overrides:
        cmd += ["--set", item]
    print("+", shlex.join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--report-only", action="store_true", help="do not train; collect existing summaries")
    parser.add_argument("--only", nargs="+", choices=list(EXPERIMENTS), default=list(EXPERIMENTS))
    args = parser.parse_args()
    if not args.report_only:
        for name in args.only:
            train(name)
    rows, lines = [], []
    for name in args.only:
        path = ROOT / "runs" / name / "summary.json"
        if not path.is_file():
            print(f"{name}: no summary yet ({path})")
            continue
        summary = json.loads(path.read_text())
        config, overrides, metrics, anchor = EXPERIMENTS[name]
        first = Path(summary["runs"][0]["run_dir"])
        resolved = (
            (ROOT / first / "config.yaml").read_text() if (ROOT / first / "config.yaml").is_file() else ""
        )
        record = json.loads((ROOT / first / "run.json").read_text())
        rate = [r["train_samples_per_s"] for r in summary["runs"]]
        rows.append(
            {
                "experiment": name,
                "command": shlex.join(
                    [
                        "kgreason",
                        "train",
                        config,
                        "--seeds",
                        SEEDS,
                        *[a for o in overrides for a in ("--set", o)],
                    ]
                ),
                "test": {m: summary["test"][m] for m in metrics if m in summary["test"]},
                "dev": {m: summary["dev"][m] for m in metrics if m in summary["dev"]},
                "train_seconds": summary["train_seconds"],
                "train_samples_per_s": rate,
                "data": record["data"],
                "packages": record["packages"],
                "anchor": anchor,
                "config": resolved,
            }
        )
        cells = " · ".join(
            f"{m} {summary['test'][m]['mean']:.4f} ± {summary['test'][m]['std']:.4f}" for m in metrics
        )
        dev = " · ".join(f"{m} {summary['dev'][m]['mean']:.4f}" for m in metrics[:1])
        t = summary["train_seconds"]
        lines.append(f"| {name} | {cells} | {dev} | {t['mean']:.0f} ± {t['std']:.0f} s | {anchor} |")
    command = "python " + shlex.join(["benchmarks/finetune.py", *sys.argv[1:]])
    md = [
        "# Fine-tuning: CoNLL-2003 NER and Financial PhraseBank",
        "",
        f"Command: `{command}` (each row's own command is in finetune.json).",
        "",
        f"Embedded all-MiniLM-L6-v2 (6-layer uncased BERT, the encoder that ships offline), text variant, bf16 "
        f"autocast on CPU ({os.cpu_count()} cores, {platform.machine()}), seeds {SEEDS}; mean ± sample std. The "
        "checkpoint is selected on dev; test is evaluated once per seed. Training time per seed is wall time of the "
        "training steps on a shared machine (other jobs ran beside some seeds, hence the spread; a seed that was "
        "interrupted and resumed from its checkpoint counts only the time after resuming).",
        "",
        "| experiment | test (mean ± std) | dev | training time / seed | published anchor |",
        "| --- | --- | --- | --- | --- |",
        *lines,
        "",
    ]
    report = {"benchmark": "fine-tuning", "command": command, "rows": rows}
    write_results(HERE / "results" / "finetune", report, "\n".join(md))


if __name__ == "__main__":
    main()
