"""Shared check of the command line's answer to bad input."""

from __future__ import annotations

from typer.testing import CliRunner

from kgreason.cli import app


def refused(*args: str) -> str:
    """Run a command that must refuse its input: exit 2, one ``error: ...`` line, no traceback."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]
