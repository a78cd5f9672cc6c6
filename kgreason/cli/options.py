"""The options several ``kgreason`` commands share, as typer ``Annotated`` types: one place for each option's flags.

An option whose help reads the same everywhere is a ready alias (``DataDirOption``, ``JsonOption``); one whose
help names what a command reads is a factory that takes that help (``set_option("Dotted override ...")``), so
each command keeps its own text while the flags, the type and the default handling live here::

    from kgreason.cli.options import DataDirOption, set_option

    SuiteSetOption = set_option("Dotted override of the suite, repeatable: --set trainer.epochs=1")

    def run(overrides: SuiteSetOption = None, data_dir: DataDirOption = None) -> None: ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

DATA_DIR_HELP = (
    "Public benchmark data folder; relative KB paths are also looked up there. "
    "Defaults to $KGREASON_DATA, else ../shared/data when it exists."
)
FINANCE_DATA_DIR_HELP = "Public data folder (smesd/, financial_phrasebank/); default $KGREASON_DATA."
FORMAT_HELP = (
    "How to read the KB: an rdflib format (turtle, nt, nquads, xml, json-ld, n3, trig), 'tsv', 'csv', "
    "'splits' (train/valid/test folder), 'store', or a registered plug-in name. Detected from the path "
    "when omitted."
)
JSON_HELP = "Print machine-readable JSON instead of a table."
SUITE_SEEDS_HELP = "Comma-separated seeds (default: the suite's seeds)."


def data_dir_option(help: str = DATA_DIR_HELP) -> Any:
    """``--data-dir PATH`` (default ``None``): the public data folder, handed to :func:`core.paths.use_data_dir`."""
    return Annotated[Path | None, typer.Option("--data-dir", help=help)]


def format_option(help: str = FORMAT_HELP) -> Any:
    """``--format/-f NAME`` (default ``None``: detected from the path): how to read a KB."""
    return Annotated[str | None, typer.Option("--format", "-f", help=help)]


def json_option(help: str = JSON_HELP) -> Any:
    """``--json`` flag (default ``False``): print JSON instead of text."""
    return Annotated[bool, typer.Option("--json", help=help)]


def config_option(help: str) -> Any:
    """``--config/-c PATH`` (default ``None``): a YAML config."""
    return Annotated[Path | None, typer.Option("--config", "-c", help=help)]


def set_option(help: str) -> Any:
    """``--set KEY=VALUE``, repeatable (default ``None``): dotted config overrides."""
    return Annotated[list[str] | None, typer.Option("--set", help=help)]


def seeds_option(help: str) -> Any:
    """``--seeds 1,2,3`` (default ``None``): comma-separated seeds, read by :func:`core.config.parse_seeds`."""
    return Annotated[str | None, typer.Option("--seeds", help=help)]


def no_resume_option(help: str) -> Any:
    """``--no-resume`` flag (default ``False``): start over instead of resuming from what a run folder holds."""
    return Annotated[bool, typer.Option("--no-resume", help=help)]


def report_dir_option(help: str) -> Any:
    """``--out/--output-dir/-o PATH`` (a default is required): where a suite's report files are written."""
    return Annotated[Path, typer.Option("--out", "--output-dir", "-o", help=help)]


def run_dir_option(help: str) -> Any:
    """``--run-dir PATH`` (a default is required): where a suite's training runs go."""
    return Annotated[Path, typer.Option("--run-dir", help=help)]


DataDirOption = data_dir_option()
FinanceDataDirOption = data_dir_option(FINANCE_DATA_DIR_HELP)
FormatOption = format_option()
JsonOption = json_option()
SuiteSeedsOption = seeds_option(SUITE_SEEDS_HELP)
DebugOption = Annotated[
    bool, typer.Option("--debug", help="On an error, show the full traceback instead of one line.")
]
