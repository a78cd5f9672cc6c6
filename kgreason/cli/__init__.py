"""The ``kgreason`` command line: knowledge bases (info, convert, validate), linking and retrieval."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from kgreason.cli.bench import bench_app
from kgreason.cli.finance import finance_app
from kgreason.cli.kgc import kgc_app
from kgreason.cli.kge import kge_app
from kgreason.cli.options import (
    DataDirOption,
    DebugOption,
    FormatOption,
    JsonOption,
    config_option,
    no_resume_option,
    seeds_option,
    set_option,
)
from kgreason.cli.rules import rules_app
from kgreason.core.config import parse_seeds
from kgreason.core.errors import KGReasonError, exit_with_error
from kgreason.core.paths import use_data_dir

DEBUG_ENV = "KGREASON_DEBUG"


class _OneLineErrors(TyperGroup):
    """The root command group: an error from any command prints one line and exits non-zero, no traceback.

    Bad input (a :class:`KGReasonError`, a file that cannot be read) exits 2, anything else 1;
    ``kgreason --debug ...`` (or ``$KGREASON_DEBUG=1``) re-raises so the traceback shows.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as err:
            if ctx.meta.get("kgreason.debug") or os.environ.get(DEBUG_ENV) == "1":
                raise
            exit_with_error(err, bad_input=False)


app = typer.Typer(
    cls=_OneLineErrors,
    help="kgreason: knowledge-augmented reasoning with pretrained encoders, knowledge graphs and rules.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
kb_app = typer.Typer(help="Load, inspect, convert and validate knowledge bases.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(kge_app, name="kge")
app.add_typer(kgc_app, name="kgc")
app.add_typer(bench_app, name="bench")
app.add_typer(rules_app, name="rules")
app.add_typer(finance_app, name="finance")

ConfigOption = config_option("YAML config (sections kb, encoder, retrieval).")
RetrieveSetOption = set_option("Dotted config override, repeatable: --set retrieval.hops=1")
TrainSetOption = set_option(
    "Dotted config override, repeatable: --set trainer.epochs=1 --set model.variant=fused"
)
TrainSeedsOption = seeds_option(
    "Comma-separated seeds, one run each (default: trainer.seed); several seeds also write "
    "summary.json / summary.md with mean ± std beside the run folders."
)
NoResumeOption = no_resume_option("Start over even if the run folder holds a checkpoint.")


@app.callback()
def _root(
    ctx: typer.Context,
    debug: DebugOption = False,
) -> None:
    """kgreason: knowledge-augmented reasoning with pretrained encoders, knowledge graphs and rules."""
    ctx.meta["kgreason.debug"] = debug


def _open(path: str, fmt: str | None, **kwargs: Any):
    from kgreason.kb.sources import open_kb

    return open_kb(path, format=fmt, **kwargs)


@kb_app.command("info")
def kb_info(
    path: Annotated[
        str, typer.Argument(help="KB file or folder (RDF, TSV/CSV, split folder, kgreason store).")
    ],
    fmt: FormatOption = None,
    names: Annotated[
        Path | None,
        typer.Option("--names", help="TSV/CSV only: file of 'key<TAB>name[<TAB>alias...]' lines."),
    ] = None,
    as_json: JsonOption = False,
    top: Annotated[int, typer.Option("--top", help="How many relations the histogram lists.")] = 10,
    data_dir: DataDirOption = None,
) -> None:
    """Load a knowledge base and print a summary: sizes, triples per split, relations, degrees, load cost."""
    import psutil

    use_data_dir(data_dir)
    process = psutil.Process()
    before = process.memory_info().rss
    start = time.perf_counter()
    try:
        kwargs = {"names": names} if names is not None else {}
        kb = _open(path, fmt, **kwargs)
        seconds = time.perf_counter() - start
        summary = kb.summary(load_seconds=seconds, memory_bytes=max(process.memory_info().rss - before, 0))
    except (KGReasonError, FileNotFoundError, KeyError) as err:
        exit_with_error(err)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        typer.echo(summary.to_text(top_relations=top))


@kb_app.command("convert")
def kb_convert(
    source: Annotated[str, typer.Argument(help="KB to read (any format 'kb info' reads).")],
    target: Annotated[
        Path,
        typer.Argument(
            help="Where to write. A path without an RDF/TSV extension is a kgreason store folder "
            "(memory-mappable arrays + manifest.json); .nt/.ttl/.nq/.rdf/.jsonld/.n3/.trig write RDF, "
            ".tsv/.csv write triples."
        ),
    ],
    fmt: FormatOption = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", help="Output format instead of guessing from TARGET: store, tsv, csv or an rdflib format."
        ),
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", help="RDF/TSV output only: write one split (default: all).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Store output only: replace TARGET even when it is not a kgreason store (a file, a link, a "
            "folder with other files). Without it only an empty folder or a store is replaced.",
        ),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Convert a knowledge base to the kgreason store format, RDF or TSV (written atomically)."""
    from kgreason.kb.sources import RDF_EXTENSIONS, TABLE_EXTENSIONS
    from kgreason.kb.store import TripleStore

    use_data_dir(data_dir)
    try:
        kb = _open(source, fmt)
        suffix = target.suffix.lower()
        kind = to or ("rdf" if suffix in RDF_EXTENSIONS else "tsv" if suffix in TABLE_EXTENSIONS else "store")
        if kind == "store":
            written = TripleStore.from_kb(kb).save(target, force=force)
        elif kind in ("tsv", "csv"):
            from kgreason.kb.loaders.tsv import write_tsv

            written = write_tsv(kb, target, split=split)
        else:
            from kgreason.kb.loaders.rdf import write_rdf

            written = write_rdf(kb, target, format=None if kind == "rdf" else kind, split=split)
    except (KGReasonError, FileNotFoundError, KeyError, ValueError) as err:
        exit_with_error(err)
    typer.echo(f"wrote {written} ({kb.num_entities:,} entities, {kb.triples().shape[0]:,} triples)")


@kb_app.command("validate")
def kb_validate(
    path: Annotated[str, typer.Argument(help="KB file or folder, or any source a plug-in reads.")],
    fmt: FormatOption = None,
    sample: Annotated[
        int, typer.Option("--sample", help="How many entities the sampled checks look at.")
    ] = 50,
    data_dir: DataDirOption = None,
) -> None:
    """Run the knowledge-base conformance checks (the same ones KnowledgeBaseTestCase runs); exit 1 on failure."""
    from kgreason.kb.conformance import check_knowledge_base

    use_data_dir(data_dir)
    try:
        kb = _open(path, fmt)
        report = check_knowledge_base(kb, sample=sample)
    except (KGReasonError, FileNotFoundError, KeyError) as err:
        exit_with_error(err)
    typer.echo(report.to_text())
    if not report.ok:
        raise typer.Exit(code=1)


def _mention_rows(mentions) -> list[dict[str, Any]]:
    return [
        {
            "span": [m.start, m.end],
            "text": m.surface,
            "candidates": [
                {"entity": c.entity, "key": c.key, "label": c.label, "score": round(c.score, 4)}
                for c in m.candidates
            ],
        }
        for m in mentions
    ]


@app.command("link")
def link(
    text: Annotated[str, typer.Argument(help="Text to link to entities.")],
    kb_path: Annotated[
        str, typer.Option("--kb", help="Knowledge base whose labels and aliases are matched.")
    ],
    fmt: FormatOption = None,
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Show the entities a text links to: span, entity, score (ambiguous mentions list every candidate)."""
    use_data_dir(data_dir)
    try:
        kb = _open(kb_path, fmt)
        mentions = kb.link(text)
    except (KGReasonError, FileNotFoundError, KeyError) as err:
        exit_with_error(err)
    rows = _mention_rows(mentions)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        typer.echo("no entities found")
        return
    typer.echo(f"{'span':<10} {'text':<24} {'entity':<32} score")
    for row in rows:
        for i, cand in enumerate(row["candidates"]):
            span = f"{row['span'][0]}-{row['span'][1]}" if i == 0 else ""
            surface = row["text"] if i == 0 else ""
            typer.echo(f"{span:<10} {surface:<24} {cand['label'][:32]:<32} {cand['score']:.3f}")


@app.command("retrieve")
def retrieve(
    text: Annotated[str, typer.Argument(help="Text whose knowledge to retrieve.")],
    kb_path: Annotated[
        str | None, typer.Option("--kb", help="Knowledge base (overrides kb.source of the config).")
    ] = None,
    fmt: FormatOption = None,
    config: ConfigOption = None,
    overrides: RetrieveSetOption = None,
    hops: Annotated[int | None, typer.Option("--hops", help="Subgraph radius (retrieval.hops).")] = None,
    max_nodes: Annotated[
        int | None, typer.Option("--max-nodes", help="Cap on subgraph nodes (retrieval.max_nodes).")
    ] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="How many facts to return (retrieval.top_k).")
    ] = None,
    no_facts: Annotated[
        bool, typer.Option("--no-facts", help="Skip fact retrieval (no encoder, no index).")
    ] = False,
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Retrieve knowledge for a text: the k-hop subgraph around linked entities and the top-k facts (faiss)."""
    from kgreason.core.config import RetrieveConfig, load_config

    use_data_dir(data_dir)
    sets = list(overrides or [])
    options = {}
    for key, option, value in (
        ("kb.source", "--kb", kb_path),
        ("kb.format", "--format", fmt),
        ("retrieval.hops", "--hops", hops),
        ("retrieval.max_nodes", "--max-nodes", max_nodes),
        ("retrieval.top_k", "--top-k", top_k),
    ):
        if value is not None:
            sets.append(f"{key}={json.dumps(value)}")
            options[key] = option
    if no_facts:
        sets.append("retrieval.facts=false")
    try:
        cfg = _with_option_names(load_config, options, RetrieveConfig, config, sets)
        if not cfg.kb.source:
            raise KGReasonError("no knowledge base given: pass --kb PATH or set kb.source in the config")
        kb = _open(cfg.kb.source, cfg.kb.format)
        context = _build_retriever(kb, cfg).retrieve(text)
    except (KGReasonError, FileNotFoundError, KeyError) as err:
        exit_with_error(err)
    _print_context(kb, context, as_json=as_json)


def _with_option_names(load, options: dict[str, str], *args: Any) -> Any:
    """``load(*args)``; a :class:`ConfigError` about a key that a command-line option set names the option too."""
    from kgreason.core.errors import ConfigError

    try:
        return load(*args)
    except ConfigError as err:
        text = str(err)
        for key, option in options.items():
            if text.startswith((f"{key}:", f"{key} ")):
                raise ConfigError(f"{option} ({key}){text[len(key) :]}") from None
        raise


def _build_retriever(kb, cfg):
    from kgreason.retrieval.retriever import KnowledgeRetriever

    encoder = None
    if cfg.retrieval.facts:
        from kgreason.encoders.sentence import SentenceEncoder

        encoder = SentenceEncoder(
            model=cfg.encoder.model,
            device=cfg.encoder.device,
            batch_size=cfg.encoder.batch_size,
            max_length=cfg.encoder.max_length,
        )
    return KnowledgeRetriever(
        kb=kb,
        hops=cfg.retrieval.hops,
        max_nodes=cfg.retrieval.max_nodes,
        top_k=cfg.retrieval.top_k,
        facts=cfg.retrieval.facts,
        encoder=encoder,
        min_link_score=cfg.retrieval.min_link_score,
        index_type=cfg.retrieval.index_type,
    )


def _print_context(kb, context, *, as_json: bool) -> None:
    graph = context.subgraph
    edges = graph.edge_index.t().tolist()
    edge_types = graph.edge_type.tolist()
    n_id = graph.n_id.tolist()
    if as_json:
        payload = {
            "text": context.text,
            "mentions": _mention_rows(context.mentions),
            "subgraph": {
                "num_nodes": graph.num_nodes,
                "n_id": n_id,
                "edge_index": graph.edge_index.tolist(),
                "edge_type": edge_types,
            },
            "facts": [
                {"triple": list(f.triple), "text": f.text, "score": round(f.score, 4)} for f in context.facts
            ],
        }
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    typer.echo(f"text: {context.text}")
    typer.echo(
        "linked: " + (", ".join(f"{m.surface!r} -> {m.best.label}" for m in context.mentions) or "nothing")
    )
    typer.echo(f"subgraph: {graph}")
    typer.echo(f"  n_id (global entity ids): {n_id[:20]}{' ...' if len(n_id) > 20 else ''}")
    hop = graph.hop.tolist()
    nearest_first = sorted(zip(edges, edge_types, strict=True), key=lambda e: min(hop[e[0][0]], hop[e[0][1]]))
    for (h, t), r in nearest_first[:15]:
        typer.echo(f"  {kb.entity_label(n_id[h])} --{kb.relation_label(r)}--> {kb.entity_label(n_id[t])}")
    if len(edges) > 15:
        typer.echo(f"  ... {len(edges) - 15} more edges")
    if context.facts:
        typer.echo(f"top {len(context.facts)} facts:")
        for rank, fact in enumerate(context.facts, 1):
            typer.echo(f"  {rank:>2}. {fact.score:.3f}  {fact.text}")


@app.command("train")
def train(
    config: Annotated[
        Path, typer.Argument(help="Experiment config (YAML; sections task, data, knowledge, model, trainer).")
    ],
    overrides: TrainSetOption = None,
    seeds: TrainSeedsOption = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir", "-o", help="Run folder (one seed only); default: output_dir of the config."
        ),
    ] = None,
    no_resume: NoResumeOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Train a model (dev-selected, test evaluated once) and write a documented run folder per seed."""
    from kgreason.core.config import load_config
    from kgreason.runs.config import ExperimentConfig
    from kgreason.runs.experiment import run_experiment, summarize
    from kgreason.runs.report import write_summary

    use_data_dir(data_dir)
    try:
        requested = parse_seeds(seeds)
        cfg = load_config(ExperimentConfig, config, list(overrides or []))
        seed_list = requested or [cfg.trainer.seed]
        if output_dir is not None and len(seed_list) > 1:
            raise KGReasonError(
                "--output-dir takes one seed; with several seeds set output_dir in the config"
            )
        results = []
        for seed in seed_list:
            result = run_experiment(cfg, seed=seed, output_dir=output_dir, resume=not no_resume)
            results.append(result)
            typer.echo(
                f"seed {seed}: dev {_fmt_metrics(result.dev)} | test {_fmt_metrics(result.test)} -> {result.run_dir}"
            )
    except KGReasonError as err:
        exit_with_error(err)
    if len(results) > 1:
        summary = summarize(cfg.name, results)
        paths = write_summary(summary, results[0].run_dir.parent)
        typer.echo(f"summary ({len(results)} seeds): " + ", ".join(str(p) for p in paths))


def _fmt_metrics(metrics: dict[str, float] | None) -> str:
    if not metrics:
        return "-"
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, int | float))


@app.command("evaluate")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `kgreason train`.")],
    split: Annotated[str, typer.Option("--split", help="Which split to evaluate: dev or test.")] = "test",
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Evaluate a trained run's best model on a split; writes eval_<split>.json into the run folder."""
    from kgreason.runs.experiment import evaluate_run

    use_data_dir(data_dir)
    try:
        metrics = evaluate_run(run_dir, split=split)
    except KGReasonError as err:
        exit_with_error(err)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
    else:
        for key, value in metrics.items():
            typer.echo(f"{key:<20} {value:.4f}" if isinstance(value, int | float) else f"{key:<20} {value}")


def main() -> None:
    """Entry point of the ``kgreason`` script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
