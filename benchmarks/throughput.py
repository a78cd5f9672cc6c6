"""Training throughput: kgreason's Trainer vs the Hugging Face ``Trainer`` on the same model, data and precision.

Same for every system: the embedded all-MiniLM-L6-v2 with a 3-way classification head, the first ``--examples``
training sentences of Financial PhraseBank (50Agree, kgreason's stratified split), ``max_length`` 128, batch 32,
one epoch, AdamW (lr 5e-5, linear warm-up 10 %, weight decay 0.01), bf16 autocast on CPU (``--precision``), no
evaluation and no checkpoints during the timed epoch. Systems:

* ``kgreason``: ``KGReasonModel`` (text variant) + ``kgreason.training.Trainer`` (dynamic padding + length
  bucketing);
* ``hf-dynamic``: ``AutoModelForSequenceClassification`` + HF ``Trainer`` with ``DataCollatorWithPadding`` (its
  default collator: dynamic padding, random batches);
* ``hf-grouped``: the same with ``train_sampling_strategy="group_by_length"`` (``LengthGroupedSampler``);
* ``hf-max-length``: the same with every sentence padded to ``max_length`` (``run_glue.py``'s default
  ``pad_to_max_length=True``).

Each run is a fresh child process; systems alternate and each is run ``--repeats`` times; the median samples/s
(examples / wall time of the ``train()`` call) is reported with the ratio kgreason / peer. Usage::

    python benchmarks/throughput.py                   # writes benchmarks/results/throughput.{json,md}
    python benchmarks/throughput.py --examples 256 --repeats 1 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reporting import write_results

HERE = Path(__file__).resolve().parent
SYSTEMS = ("kgreason", "hf-dynamic", "hf-grouped", "hf-max-length")
PEERS = ("hf-dynamic", "hf-grouped", "hf-max-length")
BATCH, MAX_LENGTH, LR = 32, 128, 5e-5


def _examples(n: int):
    from kgreason.data.readers import read_dataset

    splits = read_dataset("financial_phrasebank", agreement=50)
    return splits.train[:n], splits.labels


def run_kgreason(n: int, precision: str) -> dict[str, Any]:
    from kgreason.core.batch import Collator
    from kgreason.models.config import ModelConfig
    from kgreason.models.fused import KGReasonModel
    from kgreason.tasks.registry import build_task
    from kgreason.training.config import TrainerConfig
    from kgreason.training.seed import seed_everything
    from kgreason.training.trainer import Trainer

    seed_everything(13)
    examples, labels = _examples(n)
    task = build_task("sequence_classification", labels=labels)
    model = KGReasonModel(ModelConfig(encoder="embedded", variant="text", num_labels=len(labels)))
    data = task.encode_all(examples, tokenizer=model.tokenizer, max_length=MAX_LENGTH)
    config = TrainerConfig(
        epochs=1,
        batch_size=BATCH,
        learning_rate=LR,
        head_learning_rate=None,
        precision=precision,
        tensorboard=False,
        progress=False,
        seed=13,
        log_every=10_000,
    )
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            model=model,
            task=task,
            config=config,
            train=data,
            collator=Collator(pad_token_id=model.tokenizer.pad_token_id),
            output_dir=out,
        )
        start = time.perf_counter()
        result = trainer.train(resume=False)
        wall = time.perf_counter() - start
    tokens = sum(len(e.input_ids) for e in data.encoded)
    return {"wall_s": wall, "samples_per_s": n / wall, "steps_s": result.train_seconds, "tokens": tokens}


def run_hf(n: int, precision: str, mode: str) -> dict[str, Any]:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )
    from transformers.utils import logging as hf_logging

    from kgreason.encoders.resolve import resolve_model_path

    hf_logging.set_verbosity_error()
    torch.manual_seed(13)
    examples, labels = _examples(n)
    path = resolve_model_path("embedded")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))
    label_ids = {name: i for i, name in enumerate(labels)}
    padding = "max_length" if mode == "hf-max-length" else False
    enc = tokenizer([e.text for e in examples], truncation=True, max_length=MAX_LENGTH, padding=padding)
    rows = [
        {
            "input_ids": enc["input_ids"][i],
            "attention_mask": enc["attention_mask"][i],
            "labels": label_ids[e.label],
        }
        | ({"token_type_ids": enc["token_type_ids"][i]} if "token_type_ids" in enc else {})
        for i, e in enumerate(examples)
    ]
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=BATCH,
            num_train_epochs=1,
            learning_rate=LR,
            warmup_steps=0.1,  # a float below 1 is a ratio of the total steps
            weight_decay=0.01,
            lr_scheduler_type="linear",
            max_grad_norm=1.0,
            bf16=precision == "bf16",
            use_cpu=True,
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,
            train_sampling_strategy="group_by_length" if mode == "hf-grouped" else "random",
            seed=13,
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=rows, data_collator=DataCollatorWithPadding(tokenizer)
        )
        start = time.perf_counter()
        metrics = trainer.train().metrics
        wall = time.perf_counter() - start
    tokens = sum(sum(r["attention_mask"]) for r in rows)
    return {
        "wall_s": wall,
        "samples_per_s": n / wall,
        "hf_runtime_s": metrics.get("train_runtime"),
        "tokens": tokens,
    }


def _child(system: str, n: int, precision: str, threads: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", system, "--examples", str(n), "--precision", precision]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else None
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{system} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=1024, help="training sentences (one epoch)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per system (median reported)")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run (0: torch's default)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--worker", choices=SYSTEMS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "kgreason":
            out = run_kgreason(args.examples, args.precision)
        else:
            out = run_hf(args.examples, args.precision, args.worker)
        print(json.dumps(out))
        return

    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in args.systems}
    for repeat in range(args.repeats):
        order = args.systems if repeat % 2 == 0 else list(reversed(args.systems))
        for system in order:
            out = _child(system, args.examples, args.precision, args.threads)
            runs[system].append(out)
            print(
                f"{system:<14} run {repeat + 1}: {out['samples_per_s']:.1f} samples/s ({out['wall_s']:.1f} s)"
            )
    median = {s: statistics.median(r["samples_per_s"] for r in runs[s]) for s in args.systems}
    rows = []
    for system in args.systems:
        ratio = median["kgreason"] / median[system] if "kgreason" in median else None
        rows.append(
            {
                "system": system,
                "samples_per_s": round(median[system], 2),
                "kgreason_speedup": round(ratio, 3) if ratio else None,
                "runs": runs[system],
            }
        )
    for row in rows:
        print(
            f"{row['system']:<14} {row['samples_per_s']:>8.1f} samples/s   kgreason x{row['kgreason_speedup']}"
        )
    if args.no_write:
        return
    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/throughput.py", *sys.argv[1:]])
    report = {
        "benchmark": "training throughput",
        "command": command,
        "settings": {
            "model": "all-MiniLM-L6-v2 (embedded) + 3-way head",
            "data": f"Financial PhraseBank 50Agree, first {args.examples} train sentences",
            "batch_size": BATCH,
            "max_length": MAX_LENGTH,
            "precision": args.precision,
            "repeats": args.repeats,
            "torch_threads": args.threads or "default",
        },
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "rows": rows,
        "goal": "kgreason >= 1.2x HF Trainer samples/s",
    }
    lines = [
        "# Training throughput: kgreason Trainer vs Hugging Face Trainer",
        "",
        f"Command: `{command}`",
        "",
        f"Embedded all-MiniLM-L6-v2 + 3-way head, {args.examples} PhraseBank 50Agree sentences, one epoch, batch "
        f"{BATCH}, max_length {MAX_LENGTH}, {args.precision} autocast on CPU ({os.cpu_count()} cores, torch threads: {args.threads or 'default'}). Samples/s = "
        f"examples / wall time of `train()`, median of {args.repeats} fresh processes per system, systems "
        "alternating.",
        "",
        "| system | samples/s | kgreason speed-up |",
        "| --- | ---: | ---: |",
    ]
    for row in rows:
        lines.append(f"| {row['system']} | {row['samples_per_s']:.1f} | {row['kgreason_speedup']:.2f}× |")
    lines += ["", "Goal: ≥ 1.2× the Hugging Face Trainer (its default dynamic-padding collator).", ""]
    write_results(HERE / "results" / "throughput", report, "\n".join(lines))


if __name__ == "__main__":
    main()
