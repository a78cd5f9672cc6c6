"""``kgreason kge``: train KG embeddings on a KB and evaluate them with filtered link prediction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kgreason.cli.options import config_option, json_option
from kgreason.core.errors import KGReasonError, exit_with_error
from kgreason.core.paths import use_data_dir

if TYPE_CHECKING:
    from kgreason.kb.base import KnowledgeBase
    from kgreason.kge.train import KGEConfig, KGETrainResult

kge_app = typer.Typer(
    help="Knowledge-graph embeddings (TransE, DistMult, ComplEx, RotatE): train, and evaluate with filtered "
    "MRR and Hits@1/3/10 over head and tail prediction.",
    no_args_is_help=True,
)

KBOption = Annotated[
    str, typer.Option("--kb", help="Knowledge base with train/valid/test splits (folder, file or store).")
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", "-f", help="How to read the KB (as in 'kgreason kb info'); detected when omitted."
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Public benchmark data folder; relative KB paths are also looked up there. "
        "Defaults to $KGREASON_DATA, else ../shared/data when it exists.",
    ),
]
DeviceOption = Annotated[
    str | None, typer.Option("--device", help="cpu, cuda, cuda:1 or auto (default: GPU when visible).")
]
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        "--threads", help="torch CPU threads (default: torch's choice; 1 is fastest on a busy machine)."
    ),
]


def _setup(data_dir: Path | None, threads: int | None) -> None:
    use_data_dir(data_dir)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _open(path: str, fmt: str | None):
    from kgreason.kb.sources import open_kb

    return open_kb(path, format=fmt)


# Options of `kgreason kge train` (help texts are part of the CLI: keep them as they are).
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="transe, distmult, complex or rotate (default: complex, the ComplEx-N3 CPU recipe).",
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Run folder for the embeddings (default: runs/kge/<kb>-<model>)."),
]
ConfigOption = config_option("YAML of KGEConfig fields (see configs/kge/); options override it.")
DimOption = Annotated[
    int | None, typer.Option("--dim", help="Embedding width (complex models: complex numbers).")
]
EpochsOption = Annotated[int | None, typer.Option("--epochs", help="Passes over the training triples.")]
BatchSizeOption = Annotated[int | None, typer.Option("--batch-size", help="Positive triples per step.")]
LrOption = Annotated[float | None, typer.Option("--lr", help="Adam learning rate.")]
NegativesOption = Annotated[
    int | None,
    typer.Option("--negatives", help="Sampled negatives per positive; 0 scores all entities (1-vs-all CE)."),
]
SharedNegativesOption = Annotated[
    bool | None,
    typer.Option(
        "--shared-negatives/--no-shared-negatives",
        help="Draw the negatives once per batch and score every positive against them (one GEMM).",
    ),
]
KvsAllOption = Annotated[
    bool | None,
    typer.Option(
        "--kvsall/--no-kvsall",
        help="With --negatives 0: one softmax per distinct (entity, relation) query over all its known "
        "answers (KvsAll, PyKEEN's LCWA) instead of one per triple.",
    ),
]
LossOption = Annotated[
    str | None, typer.Option("--loss", help="nssa (logistic with margin), margin (ranking) or ce.")
]
MarginOption = Annotated[float | None, typer.Option("--margin", help="Margin γ of the nssa / margin loss.")]
AdversarialTemperatureOption = Annotated[
    float | None,
    typer.Option(
        "--adversarial-temperature",
        help="Self-adversarial negative weighting temperature α (Sun et al. 2019); 0 = uniform weights.",
    ),
]
ReciprocalOption = Annotated[
    bool | None,
    typer.Option(
        "--reciprocal/--no-reciprocal",
        help="Learn an inverse relation per relation; head prediction becomes tail prediction.",
    ),
]
N3Option = Annotated[
    float | None, typer.Option("--n3", help="Weight of the N3 regulariser (distmult, complex); 0 = off.")
]
EvalEveryOption = Annotated[
    int | None, typer.Option("--eval-every", help="Validate every N epochs (0: only at the end).")
]
PatienceOption = Annotated[
    int | None,
    typer.Option("--patience", help="Stop after N validations without a better valid MRR (0: never)."),
]
SparseOption = Annotated[
    bool | None,
    typer.Option("--sparse/--dense", help="Sparse embedding gradients with SparseAdam (large KBs)."),
]
TimeBudgetOption = Annotated[
    float | None,
    typer.Option(
        "--time-budget",
        help="Minutes of training; then validate and keep the best parameters (0: no limit; counted across "
        "resumes).",
    ),
]
ValidSampleOption = Annotated[
    int | None,
    typer.Option(
        "--valid-sample",
        help="Validations during training rank this many valid triples (0: all); the kept model is reported "
        "on all of them.",
    ),
]
TrainThreadsOption = Annotated[
    str,
    typer.Option(
        "--threads",
        help="torch CPU threads, or 'auto': time a few training batches under 1, 2, 4, ... threads and keep "
        "the fastest.",
    ),
]
OptimizerOption = Annotated[
    str | None, typer.Option("--optimizer", help="adam, or adagrad (kbc's optimiser for ComplEx-N3).")
]
SeedOption = Annotated[int | None, typer.Option("--seed", help="Seed of initialisation and sampling.")]
NoTestOption = Annotated[
    bool, typer.Option("--no-test", help="Skip the test evaluation (valid metrics only).")
]
TrainJsonOption = json_option("Print the metrics as JSON.")


@kge_app.command("train")
def train(
    kb_path: KBOption,
    model: ModelOption = None,
    out: OutOption = None,
    config: ConfigOption = None,
    dim: DimOption = None,
    epochs: EpochsOption = None,
    batch_size: BatchSizeOption = None,
    lr: LrOption = None,
    negatives: NegativesOption = None,
    shared_negatives: SharedNegativesOption = None,
    kvsall: KvsAllOption = None,
    loss: LossOption = None,
    margin: MarginOption = None,
    adversarial_temperature: AdversarialTemperatureOption = None,
    reciprocal: ReciprocalOption = None,
    n3: N3Option = None,
    eval_every: EvalEveryOption = None,
    patience: PatienceOption = None,
    time_budget: TimeBudgetOption = None,
    valid_sample: ValidSampleOption = None,
    sparse: SparseOption = None,
    optimizer: OptimizerOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    threads: TrainThreadsOption = "auto",
    fmt: FormatOption = None,
    no_test: NoTestOption = False,
    as_json: TrainJsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Train KG embeddings on the KB's train split (valid for model selection, test once at the end) and save
    them with the KB's entity and relation keys.

    Without options: ComplEx-N3 (the recipe default-complex of knowledge/kge/recipes.yaml), validated every
    epoch, stopped early on valid MRR or after 10 minutes; the run folder keeps a checkpoint until the
    embeddings are saved, and the same command resumes from it."""
    from kgreason.kge.embeddings import CHECKPOINT_FILE
    from kgreason.kge.train import train_kge

    use_data_dir(data_dir)
    options = {
        "dim": dim,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "negatives": negatives,
        "shared_negatives": shared_negatives,
        "kvsall": kvsall,
        "loss": loss,
        "margin": margin,
        "adversarial_temperature": adversarial_temperature,
        "reciprocal": reciprocal,
        "n3": n3,
        "eval_every": eval_every,
        "patience": patience,
        "time_budget": time_budget,
        "valid_sample": valid_sample,
        "sparse": sparse,
        "optimizer": optimizer,
        "seed": seed,
        "device": device,
    }
    try:
        thread_count = _thread_count(threads)
        cfg = _train_config(model, config, options)
        kb = _open(kb_path, fmt)
        run_dir = out or Path("runs") / "kge" / f"{_slug(kb.name)}-{cfg.model}"
        _check_run_dir(run_dir)
        result = train_kge(
            kb,
            config=cfg,
            evaluate_test=not no_test,
            checkpoint=run_dir / CHECKPOINT_FILE,
            threads=thread_count,
        )
        written = _save_run(result, kb=kb, out=run_dir)
    except (KGReasonError, FileNotFoundError, FileExistsError, KeyError, ValueError) as err:
        exit_with_error(err)
    _report_run(result, kb_name=kb.name, written=written, as_json=as_json)


def _thread_count(value: str) -> int | str:
    """``--threads``: ``auto`` or a count >= 1."""
    text = value.strip().lower()
    if text == "auto":
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise KGReasonError(f"--threads: expected 'auto' or a whole number >= 1, got {value!r}")


def _check_run_dir(path: Path) -> None:
    """Refuse, before training, a run folder that :func:`kgreason.kge.embeddings.save_kge` would not replace."""
    from kgreason.kge.embeddings import written_by_kge

    if path.exists() and not path.is_dir():
        raise FileExistsError(f"--out {path}: exists and is not a folder")
    if path.is_dir() and not written_by_kge(path):
        raise FileExistsError(
            f"--out {path}: a non-empty folder kgreason did not write; choose another --out"
        )


def _train_config(model: str | None, config: Path | None, options: dict[str, Any]) -> KGEConfig:
    """The per-model defaults, then the ``--config`` file's fields, then the options that were given."""
    from kgreason.kge.train import default_config

    data = _read_config_file(config) if config is not None else {}
    name = model or data.get("model") or "complex"
    fields = {k: v for k, v in data.items() if k != "model"}
    fields.update({k: v for k, v in options.items() if v is not None})
    return default_config(name, **fields)


def _read_config_file(path: Path) -> dict[str, Any]:
    """The KGEConfig fields of a ``--config`` YAML (unknown keys and wrong types rejected with suggestions)."""
    import yaml

    from kgreason.core.config import build_config
    from kgreason.kge.train import KGEConfig

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise KGReasonError(f"{path}: expected a mapping of KGEConfig fields")
    build_config(KGEConfig, data)
    return data


def _save_run(result: KGETrainResult, *, kb: KnowledgeBase, out: Path) -> Path:
    """Save the trained embeddings keyed by the KB's entity and relation keys; returns the run folder."""
    from kgreason.kge.embeddings import save_kge

    cfg = result.config
    return save_kge(
        result.model.cpu(),
        path=out,
        entity_keys=[kb.entity_key(i) for i in range(kb.num_entities)],
        relation_keys=[kb.relation_key(i) for i in range(kb.num_relations)],
        config=cfg.to_dict(),
        metrics=result.metrics_dict(),
        kb_name=kb.name,
    )


def _report_run(result: KGETrainResult, *, kb_name: str, written: Path, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"run_dir": str(written), **result.metrics_dict()}, indent=2))
        return
    typer.echo(
        f"{result.config.model} on {kb_name}: {result.epochs_run} epochs in {result.train_seconds:.1f}s "
        f"(kept epoch {result.best_epoch}), final loss {result.losses[-1]:.4f}"
    )
    if result.threads.get("probe_seconds"):
        probe = ", ".join(f"{n}: {1000 * t:.0f} ms" for n, t in result.threads["probe_seconds"].items())
        typer.echo(f"torch threads: {result.threads['threads']} (one batch with {probe})")
    if result.valid is not None:
        typer.echo(f"valid: MRR {result.valid.mrr:.4f}, Hits@10 {result.valid.hits_at[10]:.4f}")
    if result.test is not None:
        typer.echo("test:\n" + result.test.to_text())
    typer.echo(f"saved to {written}")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "kb"


@kge_app.command("eval")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="Folder written by 'kgreason kge train'.")],
    kb_path: KBOption,
    split: Annotated[str, typer.Option("--split", help="Split to evaluate: test or valid.")] = "test",
    raw: Annotated[
        bool, typer.Option("--raw", help="Unfiltered ranking (default: filtered by every split's triples).")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Queries per scoring batch.")] = 256,
    device: DeviceOption = None,
    threads: ThreadsOption = None,
    fmt: FormatOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the metrics as JSON instead of a table.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Filtered link prediction of saved embeddings on a KB split: MRR, mean rank, Hits@1/3/10 for head, tail
    and both directions (realistic ranks). Entities and relations are matched to the KB by key."""
    from kgreason.core.device import resolve_device
    from kgreason.kge.embeddings import load_kge
    from kgreason.kge.evaluate import evaluate_link_prediction

    _setup(data_dir, threads)
    try:
        emb = load_kge(run_dir)
        kb = _open(kb_path, fmt)
        if split not in kb.splits:
            raise KGReasonError(f"KB {kb.name!r} has no split {split!r} (splits: {', '.join(kb.splits)})")
        target = resolve_device(device)
        model = emb.build_model().to(target)
        triples = emb.remap_triples(kb, kb.triples(split))  # (n, 3)
        known = None if raw else emb.remap_triples(kb, kb.triples())  # (m, 3)
        metrics = evaluate_link_prediction(
            model, triples=triples, filter_triples=known, batch_size=batch_size, device=target, progress=True
        )
    except (KGReasonError, FileNotFoundError, KeyError, ValueError) as err:
        exit_with_error(err)
    if as_json:
        typer.echo(json.dumps({"run_dir": str(run_dir), "split": split, **metrics.to_dict()}, indent=2))
    else:
        typer.echo(f"{emb.model} ({run_dir}) on {kb.name} [{split}]")
        typer.echo(metrics.to_text())
