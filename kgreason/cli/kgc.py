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
    from kgreason.models.text_link import TextLinkPredictor, TextLinkScorer
    from kgreason.training.text_link import PriorConfig

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
    run_dir: Annotated[
        Path | None,
        typer.Argument(help="Folder written by 'kgreason kgc train' (or its best/); omit with --zero-shot."),
    ] = None,
    kb_path: KBOption = None,
    inductive: InductiveOption = None,
    zero_shot: Annotated[
        bool,
        typer.Option(
            "--zero-shot", help="Rank with the pretrained encoder as it is (no fine-tuning, no RUN_DIR)."
        ),
    ] = False,
    kge: Annotated[
        Path | None,
        typer.Option(
            "--kge",
            help="Embeddings from 'kgreason kge train' to fuse with the text score (standardised sum); the "
            "weights, and the prior unless --hops/--weight are given, are chosen on the valid split.",
        ),
    ] = None,
    hops: Annotated[
        int | None,
        typer.Option("--hops", help="Neighbourhood prior: hops around the query's head (default 0)."),
    ] = None,
    weight: Annotated[
        float | None,
        typer.Option("--weight", help="Neighbourhood prior: score added within --hops (default 0)."),
    ] = None,
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
    """Rank a KB's test triples with a saved run, the pretrained encoder (--zero-shot), or either fused with
    KG embeddings (--kge); filtered, both directions, realistic ranks."""
    from kgreason.models.text_link import TextLinkConfig, TextLinkPredictor, build_text_link_predictor
    from kgreason.training.text_link import PriorConfig, evaluate_text_link

    _setup(data_dir, threads)
    try:
        if (run_dir is None) == (not zero_shot):
            raise KGReasonError("give RUN_DIR (a 'kgreason kgc train' folder) or --zero-shot, not both")
        if kge is not None and inductive is not None:
            raise KGReasonError("--kge: KG embeddings cannot score an inductive graph's unseen entities")
        if run_dir is not None:
            folder = run_dir / "best" if (run_dir / "best").is_dir() else run_dir
            model, source = TextLinkPredictor.from_pretrained(folder), str(folder)
        else:
            model, source = build_text_link_predictor(TextLinkConfig()), "zero-shot"
        _, kb, known = _graphs(kb_path, inductive)
        prior = PriorConfig(hops=hops or 0, weight=weight or 0.0)
        extra: dict[str, Any] = {"kb": kb.name, "run": source}
        if kge is not None:
            fixed = None if hops is None and weight is None else prior
            metrics, extra["fusion"] = _fused_metrics(
                model, kb, kge=kge, known=known, prior=fixed, names_only=names_only, negatives=negatives
            )
        else:
            extra["prior"] = {"hops": prior.hops, "weight": prior.weight}
            metrics = evaluate_text_link(
                model,
                kb,
                known=known,
                prior=prior,
                negatives=negatives,
                descriptions=False if names_only else None,
                progress=True,
            )
    except (KGReasonError, FileNotFoundError, ValueError) as err:
        exit_with_error(err)
    _echo(metrics, header=f"{source} on {kb.name} [test]", as_json=as_json, extra=extra)


def _fused_metrics(
    model: TextLinkPredictor,
    kb: KnowledgeBase,
    *,
    kge: Path,
    known: str,
    prior: PriorConfig | None,
    names_only: bool,
    negatives: int,
) -> tuple[LinkPredictionMetrics, dict[str, Any]]:
    """Test metrics of text + KGE, the weights (and prior) chosen on the valid split; and the choice."""
    from kgreason.kge.embeddings import load_kge
    from kgreason.kge.evaluate import rank_split
    from kgreason.training.link_fusion import PRIOR_GRID, choose_fusion
    from kgreason.training.text_link import text_link_scorer

    if "valid" not in kb.splits:
        raise KGReasonError(f"--kge: KB {kb.name!r} has no valid split to choose the fusion weights on")
    text = text_link_scorer(model, kb, known=known, descriptions=False if names_only else None, progress=True)
    text.prior = None  # the fused scorer applies the prior to the sum
    parts = {"text": text, "kge": load_kge(kge).scorer_for(kb)}
    priors = [(prior.hops, prior.weight)] if prior is not None else list(PRIOR_GRID)
    choice = choose_fusion(parts, kb, known=known, priors=priors)
    fused = choice.scorer(parts, known=kb.triple_array(known), num_entities=kb.num_entities)
    metrics = rank_split(fused, kb, negatives=negatives, progress=True)
    info = {
        "kge": str(kge),
        "weights": choice.weights,
        "prior": {"hops": choice.hops, "weight": choice.prior_weight},
        "dev_mrr": choice.dev_mrr,
        "tried": len(choice.tried),
    }
    return metrics, info
