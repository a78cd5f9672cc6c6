"""The error finance loaders raise for bad company data: file, line (when known) and what was expected."""

from __future__ import annotations

from kgreason.core.errors import LocatedError


class FinanceDataError(LocatedError):
    """A company-graph input (CSV, RDF, SMEsD pickle) that breaks the finance schema or the ontology."""
