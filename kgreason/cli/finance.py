"""``kgreason finance``: train risk models, score companies, explain scores, ask what-ifs, serve over REST."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kgreason.core.config import parse_seeds
from kgreason.core.errors import KGReasonError, exit_with_error
from kgreason.core.paths import use_data_dir

if TYPE_CHECKING:
    from kgreason.finance.graph import CompanyGraph

finance_app = typer.Typer(
    help="Financial risk on company graphs: train, score, explain, what-if, serve, check a graph.",
    no_args_is_help=True,
)

RunOption = Annotated[
    Path, typer.Option("--model", "-m", help="Run folder written by `kgreason finance train` (one seed).")
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Public data folder (smesd/, financial_phrasebank/); default $KGREASON_DATA."
    ),
]


def _set_data_dir(data_dir: Path | None) -> None:
    use_data_dir(data_dir)


class _EchoLog(logging.Handler):
    """Log records as ``note: ...`` (INFO) / ``warning: ...`` (WARNING and up) lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "note" if record.levelno < logging.WARNING else "warning"
        typer.echo(f"{prefix}: {record.getMessage()}", err=True)


@contextlib.contextmanager
def _echo_training_log() -> Iterator[None]:
    """Show the training module's notes (a default split) and warnings (label leakage) on stderr."""
    logger = logging.getLogger("kgreason.finance.training")
    handler, level, propagate = _EchoLog(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


@finance_app.command("train")
def train(
    config: Annotated[
        Path | None,
        typer.Argument(
            help="Risk config (YAML: data, featurizer, model, trainer); omitted: the built-in default "
            "(generator graph, fused model)."
        ),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Dotted override, repeatable: --set model.variant=graph --set trainer.epochs=1"
        ),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="Comma-separated seeds (default: the config's seeds).")
    ] = None,
    no_resume: Annotated[
        bool, typer.Option("--no-resume", help="Start over even if a checkpoint exists.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Train a risk model per seed (dev-selected, calibrated on dev, tested once) and print its metrics."""
    from kgreason.core.config import load_config
    from kgreason.finance.config import RiskConfig, check_risk_seeds
    from kgreason.finance.training import train_risk_model

    _set_data_dir(data_dir)
    try:
        cfg = load_config(RiskConfig, config, list(overrides or []))
        seed_list = parse_seeds(seeds) or cfg.seeds
        check_risk_seeds(seed_list, "--seeds")
        for seed in seed_list:
            with _echo_training_log():
                result = train_risk_model(cfg, seed=seed, resume=not no_resume)
            t = result.test
            typer.echo(
                f"seed {seed}: dev auc={result.dev['auc']:.4f} | test auc={t['auc']:.4f} ks={t['ks']:.4f} "
                f"gini={t['gini']:.4f} brier={t['brier']:.4f} ece={t['ece']:.4f} f1={t['f1']:.4f} "
                f"| calibration={result.calibration} score PSI={result.score_psi:.3f} "
                f"| {result.model_version} -> {result.run_dir}"
            )
    except (KGReasonError, ValueError, KeyError) as err:
        exit_with_error(err)


def _read_ids(path: Path) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Company ids of a companies.csv (column ``company_id``) and numeric feature values given beside them."""
    from kgreason.core.errors import LocatedError

    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as err:
        raise KGReasonError(f"{path}: cannot read ({err.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "company_id" not in reader.fieldnames:
            raise LocatedError(
                f"missing column 'company_id' (columns: {reader.fieldnames})", path=path, line=1
            )
        ids, values, seen = [], {}, {}
        for row in reader:
            line = reader.line_num
            cid = (row.get("company_id") or "").strip()
            if not cid:
                raise LocatedError("empty company_id", path=path, line=line)
            if cid in seen:
                raise LocatedError(
                    f"duplicate company_id {cid!r} (first on line {seen[cid]})", path=path, line=line
                )
            seen[cid] = line
            ids.append(cid)
            extra = {}
            for key, raw in row.items():
                if key in ("company_id", "name") or raw is None or not raw.strip():
                    continue
                try:
                    extra[key] = float(raw)
                except ValueError:
                    raise LocatedError(
                        f"column {key!r}: {raw!r} is not a number", path=path, line=line
                    ) from None
            values[cid] = extra
    if not ids:
        raise KGReasonError(f"{path}: no companies to score")
    return ids, values


@finance_app.command("score")
def score(
    model: RunOption,
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            help="companies.csv with a company_id column; other numeric columns named like "
            "the model's features replace the graph's values for that company (unknown columns are an error).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write scores.csv (atomically).")],
    top_reasons: Annotated[
        int, typer.Option("--top-reasons", help="Reasons per company (0: none, faster).")
    ] = 3,
    data_dir: DataDirOption = None,
) -> None:
    """Score companies: raw score, calibrated probability, top reasons and model version per row."""
    import numpy as np

    from kgreason.core.atomic import atomic_text_output
    from kgreason.finance.scoring import FeatureOverrideError, RiskScorer

    _set_data_dir(data_dir)
    try:
        scorer = RiskScorer.load(model)
        ids, values = _read_ids(input)
        try:
            results = scorer.score(ids, top_reasons=top_reasons, overrides=values)
        except FeatureOverrideError as err:
            raise KGReasonError(f"{input}: {err}") from None
    except (KGReasonError, ValueError, KeyError) as err:
        exit_with_error(err)
    with atomic_text_output(out) as handle:
        writer = csv.writer(handle)
        header = ["company_id", "score", "probability", "model_version"]
        header += [f"reason_{i + 1}" for i in range(top_reasons)]
        writer.writerow(header)
        for item in results:
            reasons = [f"{r.code}: {r.text} ({r.contribution:+.3f})" for r in item.reasons]
            reasons += [""] * (top_reasons - len(reasons))
            writer.writerow(
                [
                    item.company_id,
                    f"{item.score:.6f}",
                    f"{item.probability:.6f}",
                    item.model_version,
                    *reasons,
                ]
            )
    probs = np.asarray([r.probability for r in results])
    typer.echo(f"scored {len(results)} companies (mean probability {probs.mean():.3f}) -> {out}")


@finance_app.command("explain")
def explain(
    model: RunOption,
    company: Annotated[str, typer.Argument(help="Company id.")],
    top: Annotated[int, typer.Option("--top", help="Reasons per kind.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Explain one company's score: features, neighbours, relations and facts ranked by contribution."""
    from kgreason.finance.scoring import RiskScorer

    _set_data_dir(data_dir)
    try:
        result = RiskScorer.load(model).explain(company, top=top)
    except (KGReasonError, ValueError, KeyError) as err:
        exit_with_error(err)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    typer.echo(f"{result.company_id}: default probability {result.probability:.3f} ({result.model_version})")
    for kind, reasons in (
        ("features", result.features),
        ("neighbours", result.neighbours),
        ("relations", result.relations),
        ("facts", result.facts),
    ):
        if reasons:
            typer.echo(f"  {kind}:")
            for r in reasons:
                typer.echo(f"    {r.contribution:+.3f}  {r.code}  {r.text}")


@finance_app.command("whatif")
def whatif(
    model: RunOption,
    company: Annotated[str, typer.Argument(help="Company id.")],
    kind: Annotated[
        str,
        typer.Option(
            "--scenario", help="neighbour_defaults | neighbour_survives | remove_edge | set_feature"
        ),
    ],
    target: Annotated[
        str, typer.Option("--target", help="Neighbour id, or the feature name for set_feature.")
    ],
    relation: Annotated[
        str | None, typer.Option("--relation", help="Relation of the edge to remove.")
    ] = None,
    value: Annotated[float | None, typer.Option("--value", help="New feature value (set_feature).")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Re-score a company under an intervention, e.g. "if its guarantor defaulted"."""
    from kgreason.finance.records import Scenario
    from kgreason.finance.scoring import RiskScorer

    _set_data_dir(data_dir)
    try:
        result = RiskScorer.load(model).what_if(
            company, Scenario(kind=kind, target=target, relation=relation, value=value)
        )
    except (KGReasonError, ValueError, KeyError) as err:
        exit_with_error(err)
    typer.echo(json.dumps(result.to_dict(), indent=2))


@finance_app.command("serve")
def serve(
    model: RunOption,
    audit_log: Annotated[
        Path,
        typer.Option("--audit-log", help="Append-only JSONL audit log (created if absent, never rewritten)."),
    ] = Path("audit.jsonl"),
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most company ids per /score request.")] = 256,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", help="Largest request body (413 above).")
    ] = 1_000_000,
    top_reasons: Annotated[int, typer.Option("--top-reasons", help="Default reasons per score.")] = 3,
    data_dir: DataDirOption = None,
) -> None:
    """Serve /score, /explain/{id}, /whatif and /health (OpenAPI at /docs) with uvicorn."""
    from kgreason.finance.scoring import RiskScorer
    from kgreason.finance.service import serve as run_service

    _set_data_dir(data_dir)
    try:
        scorer = RiskScorer.load(model)
        run_service(
            scorer,
            host=host,
            port=port,
            audit_log=audit_log,
            max_batch=max_batch,
            max_body_bytes=max_body_bytes,
            top_reasons=top_reasons,
        )
    except (KGReasonError, ValueError) as err:
        exit_with_error(err)


@finance_app.command("check")
def check(
    path: Annotated[
        Path,
        typer.Argument(
            help="A CSV folder (companies.csv, edges.csv, labels.csv[, texts.csv]), an RDF file using the "
            "finance ontology, or 'example' (the shipped five-company example graph)."
        ),
    ],
    data_dir: DataDirOption = None,
) -> None:
    """Load and validate a company graph against the finance ontology; print its summary.

    Labelled companies without any split get the seeded stratified split ``train`` would make (a note on
    stderr says so); feature columns that copy the label get a leakage warning on stderr.
    """
    from kgreason.core.resources import find_packaged
    from kgreason.finance.checks import (
        default_split,
        labels_source,
        leakage_warnings,
        missing_splits,
        split_counts,
    )

    _set_data_dir(data_dir)
    path = find_packaged(path, folder=("finance",), suffix=".ttl")
    try:
        graph = _load_graph(path).validate()
        graph, note = default_split(graph)
        warnings = leakage_warnings(graph)
        empty = missing_splits(graph)
        if empty and (graph.labels >= 0).any():
            warnings.append(
                f"{labels_source(graph)}: no labelled {' / '.join(empty)} companies (labelled per split: "
                f"{split_counts(graph)}); `kgreason finance train` needs train, dev and test: give every "
                "labelled company a split, or none for the seeded default split"
            )
    except (KGReasonError, ValueError) as err:
        exit_with_error(err)
    if note:
        typer.echo(f"note: {note}", err=True)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(json.dumps(graph.summary(), indent=2))


#: What a CSV source is (a folder, never one file).
CSV_FOLDER = "a folder with companies.csv (and labels.csv)"


def _load_graph(path: Path) -> CompanyGraph:
    """The company graph of a CSV folder or an RDF file; anything else is a :class:`FinanceDataError`."""
    from kgreason.finance.errors import FinanceDataError
    from kgreason.finance.sources import company_graph_sources
    from kgreason.kb.sources import RDF_EXTENSIONS

    rdf = ", ".join(sorted(RDF_EXTENSIONS)) + " (optionally .gz)"
    if path.is_dir():
        return company_graph_sources.get("kgreason.finance.CSV.v1")(path=str(path))
    if not path.exists():
        raise FinanceDataError(
            "not found", path=path, expected=f"{CSV_FOLDER}, or an RDF file using the finance ontology"
        )
    suffixes = [s.lower() for s in path.suffixes]
    suffix = (suffixes[:-1] if suffixes[-1:] == [".gz"] else suffixes)[-1:] or [""]
    if suffix[0] in (".csv", ".tsv"):
        raise FinanceDataError(
            f"a single CSV file, but a CSV source is {CSV_FOLDER}",
            path=path,
            expected=f"the folder: kgreason finance check {shlex.quote(str(path.parent))}",
        )
    if suffix[0] not in RDF_EXTENSIONS:
        raise FinanceDataError(
            f"cannot tell the format from the extension {suffix[0] or '(none)'!r}",
            path=path,
            expected=f"{CSV_FOLDER}, or an RDF file ending in {rdf}",
        )
    return company_graph_sources.get("kgreason.finance.RDF.v1")(path=str(path))


def command_line() -> str:
    return "kgreason " + " ".join(shlex.quote(a) for a in sys.argv[1:])
