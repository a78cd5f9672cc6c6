"""Errors of the dataset readers: a malformed data file, or a dataset that is not where it was looked for."""

from __future__ import annotations

from kgreason.core.errors import KBFormatError, KGReasonError


class DatasetFormatError(KBFormatError):
    """A dataset file could not be read; the message names the file, the line and what was expected."""


class DatasetNotFoundError(KGReasonError, FileNotFoundError):
    """A dataset's files are not in the data folder (the message says where it looked and how to point elsewhere)."""
