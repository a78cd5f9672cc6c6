"""Errors that kgreason raises for bad input: each names where the problem is and what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\n``), so an error stays one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class KGReasonError(Exception):
    """Base class of every error kgreason raises on purpose."""


class LocatedError(KGReasonError, ValueError):
    """An error at a place in an input file; ``path``, ``line``, ``column`` and ``expected`` are attributes.

    The message names the file, the line (1-based, when known), the column (when known) and what was expected;
    subclasses change the layout by overriding :meth:`render`.
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
        super().__init__(self.render())

    def render(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where += f", line {self.line}"
            if self.column is not None:
                where += f", column {self.column}"
        text = f"{where}: {self.detail}"
        if self.expected:
            text += f" (expected {self.expected})"
        return one_line(text)


class KBFormatError(LocatedError):
    """A knowledge-base file could not be read (file, line, column, what was expected)."""


class ConfigError(KGReasonError, ValueError):
    """A configuration key or value is not valid."""


class RegistryError(KGReasonError, KeyError):
    """A registered name could not be resolved."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class ModelNotAvailableError(KGReasonError, OSError):
    """A text encoder could not be resolved from a folder, a packaged model or the hub."""


def describe_error(err: BaseException) -> tuple[int, str]:
    """One line for the user and an exit code: 2 for bad input (ours, files, decoding), 1 for anything else.

    The command line prints this line instead of a traceback (``kgreason --debug ...`` shows the traceback).
    """
    code, line = _describe(err)
    return code, one_line(line)


def _describe(err: BaseException) -> tuple[int, str]:
    if isinstance(err, KGReasonError):
        return 2, str(err)
    if isinstance(err, UnicodeDecodeError):
        return 2, f"not UTF-8 text ({err.reason} at byte {err.start}); expected UTF-8 encoded input"
    if isinstance(err, OSError):
        if err.filename is None:  # the message says what it is about; no made-up location
            return 2, str(err) or type(err).__name__
        return 2, f"{err.filename}: {err.strerror or err}"
    text = str(err) or type(err).__name__
    return 1, f"internal error ({type(err).__name__}: {text}); re-run with --debug for the traceback"


def exit_with_error(err: BaseException, *, bad_input: bool = True) -> NoReturn:
    """Print ``error: <one line>`` on stderr and leave the command: the one way every kgreason command fails.

    ``bad_input``: the caller caught ``err`` as bad input, so exit 2 with its message; otherwise the exit code
    and line come from :func:`describe_error` (1 and "internal error ..." for what is not bad input).
    """
    import typer

    code, line = describe_error(err)
    if bad_input and code != 2:
        code, line = 2, one_line(str(err) or type(err).__name__)
    typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=code) from None
