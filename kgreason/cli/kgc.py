"""``kgreason kgc``: text link prediction (a SimKGC-style bi-encoder over entity names and descriptions).

``train`` fine-tunes on a KB's ``train`` split (``valid`` selects the epoch), then ranks ``test`` over every
entity; ``--inductive WN18RR_v1`` trains on GraIL's training graph and ranks the test triples of its inference
graph (unseen entities). ``eval`` ranks a saved run on any KB. Both write metrics JSON and a predictions file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kgreason.cli.options import config_option, json_option, no_resume_option, set_option
from kgreason.core.errors import KGReasonError, exit_with_error
from kgreason.core.paths import use_data_dir

if TYPE_CHECKING:
    from kgreason.kb.base import KnowledgeBase
    from kgreason.kge.evaluate import LinkPredictionMetrics
    from kgreason.models.text_link import TextLinkScorer

kgc_app = typer.Typer(
    help="Text link prediction: a bi-encoder over entity names and descriptions (SimKGC-style), ranked over "
    "all entities with the filtered evaluator of 'kgreason kge eval'; transductive or inductive (GraIL).",
    no_args_is_help=True,
)

KBOption = Annotated[
    str | None,
    typer.Option(
        "--kb", help="KB with train/valid/test splits (folder, file or store; text from text_kgbert/)."
    ),
]
InductiveOption = Annotated[
    str | None,
    typer.Option(
        "--inductive",
        help="GraIL split under <data>/kg/inductive, e.g. WN18RR_v1 or fb237_v3: train on it, rank the test "
        "triples of its _ind graph (unseen entities).",
    ),
]
OutOption = Annotated[
    Path, typer.Option("--out", "-o", help="Run folder (best/, last/, metrics, predictions).")
]
ConfigOption = config_option(
    "YAML of KGCConfig sections: model, trainer, prior, negatives (see configs/kgc/)."
)
SetOption = set_option("Dotted override, repeatable: --set trainer.epochs=2 --set prior.hops=1")
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Public benchmark data folder (holding kg/); defaults to $KGREASON_DATA, else ../shared/data.",
    ),
]
ThreadsOption = Annotated[
    int | None, typer.Option("--threads", help="torch CPU threads (default: torch's choice).")
]
NoResumeOption = no_resume_option("Start over instead of resuming from the run folder's last checkpoint.")
JsonOption = json_option("Print the metrics as JSON.")
TopOption = Annotated[int, typer.Option("--top", help="Candidates per query in the predictions file.")]


def _setup(data_dir: Path | None, threads: int | None) -> None:
    use_data_dir(data_dir)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _graphs(kb_path: str | None, inductive: str | None) -> tuple[KnowledgeBase, KnowledgeBase, str]:
    """(training KB, KB ranked at test time, what the ranking's known facts are)."""
    from kgreason.core.paths import data_dir
    from kgreason.kb.sources import open_kb

    if (kb_path is None) == (inductive is None):
        raise KGReasonError("give exactly one of --kb PATH or --inductive NAME (e.g. --inductive WN18RR_v1)")
    if kb_path is not None:
        kb = open_kb(kb_path)
        return kb, kb, "train"
    from kgreason.kge.inductive import load_inductive

    dataset, _, version = inductive.partition("_v")
    if not version.isdigit():
        raise KGReasonError(f"--inductive: expected NAME_vN such as WN18RR_v1, got {inductive!r}")
    root = data_dir()
    if root is None:
        raise KGReasonError("--inductive needs the public data folder: pass --data-dir or set KGREASON_DATA")
    split = load_inductive(root, dataset, int(version))
    return split.train, split.inference, "train"


def _write_outputs(
    out: Path,
    *,
    scorer: TextLinkScorer,
    kb: KnowledgeBase,
    metrics: LinkPredictionMetrics,
    top: int,
    extra: dict[str, Any],
) -> list[Path]:
    """metrics.json and predictions.tsv (each test query: gold, its rank, the top candidates), atomically; the
    scorer that ranked them (its entity matrix and query vectors are reused)."""
    from kgreason.core.atomic import atomic_write_text

    triples = kb.triples("test")
    lines = ["head\trelation\ttail\tpredict\trank\ttop"]
    for predict, anchor_col in (("tail", 0), ("head", 2)):
        ranks = metrics.ranks[predict]
        for start in range(0, len(triples), 256):
            batch = triples[start : start + 256]
            _, ids = scorer.top_k(batch[:, anchor_col], batch[:, 1], predict=predict, k=top)
            for row, rank, cands in zip(
                batch.tolist(), ranks[start : start + 256].tolist(), ids.tolist(), strict=True
            ):
                keys = ",".join(kb.entity_key(int(c)) for c in cands if c >= 0)
                h, r, t = (kb.entity_key(row[0]), kb.relation_key(row[1]), kb.entity_key(row[2]))
                lines.append(f"{h}\t{r}\t{t}\t{predict}\t{rank:g}\t{keys}")
    written = [out / "metrics.json", out / "predictions.tsv"]
    atomic_write_text(written[0], json.dumps({**extra, **metrics.to_dict()}, indent=2) + "\n")
    atomic_write_text(written[1], "\n".join(lines) + "\n")
    return written


def _echo(metrics: LinkPredictionMetrics, *, header: str, as_json: bool, extra: dict[str, Any]) -> None:
    if as_json:
        typer.echo(json.dumps({**extra, **metrics.to_dict()}, indent=2))
    else:
        typer.echo(header)
        typer.echo(metrics.to_text())


@kgc_app.command("train")
def train(
    out: OutOption,
    kb_path: KBOption = None,
    inductive: InductiveOption = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    top: TopOption = 10,
    threads: ThreadsOption = None,
    no_resume: NoResumeOption = False,
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Fine-tune the bi-encoder (dev MRR picks the epoch, checkpoints resume), then rank the test triples."""
    from kgreason.core.config import config_to_dict, load_config
    from kgreason.models.text_link import build_text_link_predictor
    from kgreason.training.text_link import KGCConfig, evaluate_text_link, text_link_scorer, train_text_link

    _setup(data_dir, threads)
    try:
        cfg = load_config(KGCConfig, config, list(overrides or []))
        train_kb, test_kb, known = _graphs(kb_path, inductive)
        model = build_text_link_predictor(cfg.model)
    except (KGReasonError, FileNotFoundError, ValueError) as err:
        exit_with_error(err)
    result = train_text_link(model, train_kb, config=cfg.trainer, run_dir=out, resume=not no_resume)
    scorer = text_link_scorer(result.model, test_kb, known=known, prior=cfg.prior, progress=True)
    metrics = evaluate_text_link(result.model, test_kb, scorer=scorer, negatives=cfg.negatives, progress=True)
    extra = {
        "kb": test_kb.name,
        "trained_on": train_kb.name,
        "config": config_to_dict(cfg),
        "best_epoch": result.best_epoch,
        "best_dev_mrr": result.best_dev_mrr,
        "train_seconds": result.seconds,
        "queries_per_second": result.examples_per_second,
        "history": result.history,
    }
    _write_outputs(out, scorer=scorer, kb=test_kb, metrics=metrics, top=top, extra=extra)
    _echo(
        metrics,
        header=f"{train_kb.name} -> {test_kb.name}: kept epoch {result.best_epoch}",
        as_json=as_json,
        extra=extra,
    )


@kgc_app.command("eval")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="Folder written by 'kgreason kgc train' (or its best/).")],
    kb_path: KBOption = None,
    inductive: InductiveOption = None,
    hops: Annotated[
        int, typer.Option("--hops", help="Neighbourhood prior: hops around the query's head.")
    ] = 0,
    weight: Annotated[
        float, typer.Option("--weight", help="Neighbourhood prior: score added within --hops.")
    ] = 0.0,
    negatives: Annotated[
        int, typer.Option("--negatives", help="Also Hits@k against N sampled negatives (GraIL: 49); 0: off.")
    ] = 49,
    names_only: Annotated[
        bool,
        typer.Option("--names-only", help="Entity texts without descriptions (the description ablation)."),
    ] = False,
    top: TopOption = 10,
    threads: ThreadsOption = None,
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Rank a KB's test triples with a saved run (filtered, both directions, realistic ranks)."""
    from kgreason.models.text_link import TextLinkPredictor
    from kgreason.training.text_link import PriorConfig, evaluate_text_link

    _setup(data_dir, threads)
    try:
        folder = run_dir / "best" if (run_dir / "best").is_dir() else run_dir
        model = TextLinkPredictor.from_pretrained(folder)
        _, kb, known = _graphs(kb_path, inductive)
        metrics = evaluate_text_link(
            model,
            kb,
            known=known,
            prior=PriorConfig(hops=hops, weight=weight),
            negatives=negatives,
            descriptions=False if names_only else None,
            progress=True,
        )
    except (KGReasonError, FileNotFoundError, ValueError) as err:
        exit_with_error(err)
    extra = {"kb": kb.name, "run": str(run_dir), "prior": {"hops": hops, "weight": weight}}
    _echo(metrics, header=f"{folder} on {kb.name} [test]", as_json=as_json, extra=extra)
