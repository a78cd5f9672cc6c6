"""Errors that kgreason raises for bad input: each names where the problem is and what was expected."""

from __future__ import annotations

from pathlib import Path


class KGReasonError(Exception):
    """Base class of every error kgreason raises on purpose."""


class KBFormatError(KGReasonError, ValueError):
    """A knowledge-base file could not be read.

    The message names the file, the line (1-based, when known), the column (when known) and what was expected.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        expected: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.column = column
        self.expected = expected
        self.detail = message
        where = self.path or "<input>"
        if line is not None:
            where += f", line {line}"
            if column is not None:
                where += f", column {column}"
        text = f"{where}: {message}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class ConfigError(KGReasonError, ValueError):
    """A configuration key or value is not valid."""


class RegistryError(KGReasonError, KeyError):
    """A registered name could not be resolved."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class ModelNotAvailableError(KGReasonError, OSError):
    """A text encoder could not be resolved from a folder, a packaged model or the hub."""
