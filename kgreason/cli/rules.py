"""``kgreason rules``: check a rule file, and materialise what it derives from a TSV of triples."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from kgreason.cli.options import json_option
from kgreason.core.errors import KBFormatError, KGReasonError, exit_with_error
from kgreason.core.resources import find_packaged

rules_app = typer.Typer(
    help="Rule files (typed Horn clauses with denials): check them, and derive new triples from a KB.",
    no_args_is_help=True,
)
TextOrJsonOption = json_option("Print JSON instead of text.")


def read_triples(path: str | Path) -> list[tuple[str, str, str]]:
    """``head<TAB>relation<TAB>tail`` lines (blank lines and ``#`` comments skipped); bad lines raise with file/line."""
    path = Path(path)
    triples = []
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for n, line in enumerate(handle, start=1):
                line = line.rstrip("\r\n")
                if not line.strip() or line.startswith("#"):
                    continue
                parts = line.split("\t")
                if len(parts) != 3 or not all(p.strip() for p in parts):
                    raise KBFormatError(
                        f"got {len(parts)} tab-separated field(s): {line[:80]!r}",
                        path=path,
                        line=n,
                        expected="head<TAB>relation<TAB>tail",
                    )
                triples.append((parts[0], parts[1], parts[2]))
    except UnicodeDecodeError as err:
        raise KBFormatError(f"not UTF-8 text: {err}", path=path, expected="UTF-8 text") from None
    except FileNotFoundError:
        raise KBFormatError("no such file", path=path, expected="an existing TSV file of triples") from None
    except IsADirectoryError:
        raise KBFormatError("is a folder", path=path, expected="a TSV file of triples") from None
    except OSError as err:
        raise KBFormatError(
            f"cannot be read ({err.strerror or err})", path=path, expected="a readable TSV file of triples"
        ) from None
    return triples


@rules_app.command("check")
def check(
    file: Annotated[
        Path, typer.Argument(help="Rule file to parse and check, or a shipped rule set by name (kinship).")
    ],
    as_json: TextOrJsonOption = False,
) -> None:
    """Parse and check a rule file; print what it declares (exit code 2 with file:line:column on an error)."""
    from kgreason.rules.language import load_rules

    try:
        rules = load_rules(find_packaged(file, folder=("rules",), suffix=".rules"))
    except KGReasonError as err:
        exit_with_error(err)
    summary = rules.summary()
    if as_json:
        out = dict(
            summary, path=str(file), predicates_declared={p: list(t) for p, t in rules.predicates.items()}
        )
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"{file}: OK")
    for key, value in summary.items():
        typer.echo(f"  {key:<17} {value}")
    typer.echo("  declared: " + ", ".join(f"{p}/{len(t)}" for p, t in rules.predicates.items()))


@rules_app.command("derive")
def derive(
    file: Annotated[Path, typer.Argument(help="Rule file, or a shipped rule set by name (kinship).")],
    triples: Annotated[
        Path, typer.Option("--triples", help="Input triples: head<TAB>relation<TAB>tail lines.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the derived triples (TSV, atomically).")],
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail on a relation the rules do not declare (default: skip it).")
    ] = False,
) -> None:
    """Materialise the triples the rules derive from a KB (only the new ones) and report denials that fire."""
    from kgreason.core.atomic import atomic_text_output
    from kgreason.rules.chaining import materialize
    from kgreason.rules.language import load_rules

    try:
        rules = load_rules(find_packaged(file, folder=("rules",), suffix=".rules"))
        given = read_triples(triples)
        start = time.perf_counter()
        result = materialize(rules, given, strict=strict)
        seconds = time.perf_counter() - start
        with atomic_text_output(out) as handle:
            for h, r, t in result.triples:
                handle.write(f"{h}\t{r}\t{t}\n")
    except (KGReasonError, FileNotFoundError) as err:
        exit_with_error(err)
    typer.echo(f"{len(given)} triples in, {len(result.triples)} derived in {seconds:.3f}s -> {out}")
    for v in result.violations[:20]:
        typer.secho(f"violation: {v}", fg=typer.colors.YELLOW, err=True)
    if len(result.violations) > 20:
        typer.secho(f"... {len(result.violations) - 20} more violations", fg=typer.colors.YELLOW, err=True)


LEARNED_MARK = "learned by `kgreason rules learn`"


@rules_app.command("learn")
def learn(
    dataset: Annotated[
        str,
        typer.Argument(help="A registered dataset reader whose stories carry facts and a query (clutrr)."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the learned .rules file (atomically).")
    ],
    options: Annotated[
        list[str] | None,
        typer.Option("--set", help="Reader option, repeatable: --set set=data_089907f8 --set max_train=500"),
    ] = None,
    min_support: Annotated[
        int, typer.Option("--min-support", min=1, help="Stories an answer needs before it becomes a rule.")
    ] = 2,
    min_confidence: Annotated[
        float,
        typer.Option(
            "--min-confidence", min=0.0, max=1.0, help="Share of a pair's stories its answer needs."
        ),
    ] = 0.6,
    evaluate: Annotated[
        bool,
        typer.Option("--evaluate/--no-evaluate", help="Score the learned rules on the test split's facts."),
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing --out file that kgreason did not write.")
    ] = False,
    as_json: TextOrJsonOption = False,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Public data folder; default $KGREASON_DATA.")
    ] = None,
) -> None:
    """Learn composition rules from the training stories' (facts, query, answer) alone; write a .rules file."""
    import json

    from kgreason.core.atomic import atomic_text_output
    from kgreason.core.config import apply_overrides
    from kgreason.core.paths import use_data_dir
    from kgreason.data.readers import read_dataset
    from kgreason.rules.language import parse_rules
    from kgreason.rules.learn import learn_composition_rules

    use_data_dir(data_dir)
    try:
        if (
            out.exists()
            and not force
            and LEARNED_MARK not in out.read_text(encoding="utf-8", errors="replace")[:400]
        ):
            raise KGReasonError(f"{out}: exists and was not written by `kgreason rules learn` (use --force)")
        splits = read_dataset(dataset, **apply_overrides({}, list(options or [])))
        vocabulary = {
            r for part in (splits.train, splits.dev, splits.test) for e in part for _, r, _ in e.facts or ()
        }
        start = time.perf_counter()
        learned = learn_composition_rules(
            splits.train,
            min_support=min_support,
            min_confidence=min_confidence,
            vocabulary=vocabulary | set(splits.labels),
        )
        seconds = time.perf_counter() - start
        text = learned.to_text(
            header=f"{len(learned.table)} composition rules {LEARNED_MARK} from {learned.used} training stories of "
            f"{dataset} {' '.join(options or [])} (min support {min_support}, min confidence {min_confidence})."
        )
        rules = parse_rules(text, path=out)  # what is written must read back
        report = {
            "rules": len(learned.table),
            "stories_used": learned.used,
            "stories_skipped": learned.skipped,
        }
        report["rounds"], report["seconds"] = learned.rounds, round(seconds, 3)
        if evaluate and splits.test:
            report["test_accuracy_by_depth"] = _accuracy_by_depth(rules, splits)
        with atomic_text_output(out) as handle:
            handle.write(text)
    except (KGReasonError, ValueError) as err:
        exit_with_error(err)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"{report['rules']} rules from {learned.used} stories ({learned.skipped} skipped) -> {out}")
    for depth, accuracy in report.get("test_accuracy_by_depth", {}).items():
        typer.echo(f"  test k={depth}: {100 * accuracy:.1f} % (gold story facts)")


def _accuracy_by_depth(rules, splits) -> dict[str, float]:
    """Accuracy of the rules (ties broken by training answers) on the test stories' own facts, by depth."""
    from kgreason.bench.predictors import RulePredictor
    from kgreason.bench.reasoning import accuracy_by_depth

    predictor = RulePredictor(rules=rules, labels=splits.labels).fit(splits.train)
    return {str(k): v for k, v in accuracy_by_depth(predictor(splits.test), splits.test).items()}
