"""``kgreason bench``: run benchmark suites and print their table."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from kgreason.cli.options import (
    FinanceDataDirOption,
    SuiteSeedsOption,
    data_dir_option,
    no_resume_option,
    report_dir_option,
    run_dir_option,
    set_option,
)
from kgreason.core.config import parse_seeds
from kgreason.core.errors import KGReasonError, exit_with_error
from kgreason.core.paths import use_data_dir

#: Reports of a suite run go under the working folder's runs/, never over committed files or into the package.
REPORTS_DIR = Path("runs") / "reports"

bench_app = typer.Typer(
    help="Run benchmark suites (data-defined: benchmarks/suites/*.yaml).", no_args_is_help=True
)

ReasoningSetOption = set_option(
    "Dotted override of the suite, repeatable: --set trainer.epochs=1 --set 'variants=[text,rules]'"
)
ReasoningReportOption = report_dir_option(
    "Where reasoning-<suite>.{md,json,png} are written (atomically). The committed results are "
    "refreshed only by naming them: --out benchmarks/results."
)
ReasoningRunDirOption = run_dir_option(
    "Where the training runs go (checkpoints; an interrupted suite resumes from them)."
)
ReasoningNoResumeOption = no_resume_option("Retrain every variant even if a finished run exists.")
ReasoningDataDirOption = data_dir_option(
    "Folder holding the public data (clutrr/ ...); default $KGREASON_DATA, else ../shared/data."
)
FinanceSetOption = set_option("Dotted override of the suite, repeatable: --set base.trainer.epochs=2")
FinanceReportOption = report_dir_option(
    "Where finance-<suite>.{md,json} and the plots are written. The committed results are "
    "refreshed only by naming them: --out benchmarks/results."
)
FinanceRunDirOption = run_dir_option("Where the model runs go (finished runs are read back, not retrained).")


def _publish(
    report: Any, output_dir: Path, *, write_report: Callable, markdown_table: Callable
) -> list[Path]:
    """Write a suite's report files (stamped with the command line that made them) and print its table."""
    command = "kgreason " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    files = write_report(report, output_dir, command=command)
    typer.echo(markdown_table(report))
    return files


@bench_app.command("reasoning")
def reasoning(
    suite: Annotated[
        str,
        typer.Option(
            "--suite",
            "-s",
            help="Suite name in benchmarks/suites (quick: the built-in kinship generator, ~6 min on 2 CPU cores; "
            "clutrr-089907f8, clutrr-db9b8f04, clutrr-robust: the public CLUTRR sets) or a path to a suite YAML.",
        ),
    ] = "quick",
    overrides: ReasoningSetOption = None,
    seeds: SuiteSeedsOption = None,
    output_dir: ReasoningReportOption = REPORTS_DIR,
    run_dir: ReasoningRunDirOption = Path("runs/bench"),
    no_resume: ReasoningNoResumeOption = False,
    data_dir: ReasoningDataDirOption = None,
) -> None:
    """Train every variant of a reasoning suite, run the probes, print one table and write the report."""
    from kgreason.bench.reasoning import ReasoningSuiteRunner
    from kgreason.bench.report import markdown_table, write_report
    from kgreason.bench.suite import load_suite

    use_data_dir(data_dir)
    try:
        config = load_suite(suite, overrides=list(overrides or []))
        seed_list = parse_seeds(seeds)
        runner = ReasoningSuiteRunner(
            suite=config, output_dir=output_dir, run_root=run_dir, data_dir=data_dir, resume=not no_resume
        )
    except (KGReasonError, ValueError) as err:
        exit_with_error(err)
    try:
        report = runner.run(seeds=seed_list)
    except KGReasonError as err:  # bad data or settings found while running; anything else is a bug (exit 1)
        exit_with_error(err)
    files = _publish(report, output_dir, write_report=write_report, markdown_table=markdown_table)
    typer.echo(
        f"\n{report.suite.name}: {report.seconds / 60:.1f} min; wrote " + ", ".join(str(f) for f in files)
    )


@bench_app.command("finance")
def finance(
    suite: Annotated[
        str,
        typer.Option(
            "--suite",
            "-s",
            help="Finance suite in benchmarks/suites (generator: the built-in company-graph generator, with the "
            "causal check against its true contagion effect; smesd: the SMEsD release) or a path to a suite YAML.",
        ),
    ] = "generator",
    overrides: FinanceSetOption = None,
    seeds: SuiteSeedsOption = None,
    output_dir: FinanceReportOption = REPORTS_DIR,
    run_dir: FinanceRunDirOption = Path("runs/bench-finance"),
    data_dir: FinanceDataDirOption = None,
) -> None:
    """Train every risk-model variant and baseline of a finance suite on the same splits; print one table."""
    from kgreason.finance.bench import FinanceSuiteRunner, load_finance_suite, markdown_table, write_report

    use_data_dir(data_dir)
    try:
        config = load_finance_suite(suite, overrides=list(overrides or []))
        seed_list = parse_seeds(seeds)
    except (KGReasonError, ValueError) as err:
        exit_with_error(err)
    try:
        report = FinanceSuiteRunner(suite=config, run_root=run_dir).run(seeds=seed_list)
    except KGReasonError as err:  # bad data or settings found while running; anything else is a bug (exit 1)
        exit_with_error(err)
    files = _publish(report, output_dir, write_report=write_report, markdown_table=markdown_table)
    if report.recovery:
        typer.echo("\n" + report.recovery.get("summary", ""))
    typer.echo(f"\n{config.name}: {report.seconds / 60:.1f} min; wrote " + ", ".join(str(f) for f in files))


@bench_app.command("list")
def list_suites() -> None:
    """List the suites that ship in benchmarks/suites, with their descriptions."""
    from kgreason.bench.suite import available_suites, load_suite
    from kgreason.finance.bench import finance_suites, load_finance_suite

    for kind, names, load in (
        ("reasoning", available_suites(), load_suite),
        ("finance", finance_suites(), load_finance_suite),
    ):
        for name in names:
            description = load(name).description.strip()
            typer.echo(f"{kind} --suite {name}: {description.splitlines()[0] if description else ''}")
