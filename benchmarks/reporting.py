"""Writing a benchmark's results: ``<stem>.json`` and ``<stem>.md``, each atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kgreason.core.atomic import atomic_write_text


def write_results(stem: Path, report: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write ``report`` as ``stem.json`` and ``markdown`` as ``stem.md``; return both paths."""
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    atomic_write_text(json_path, json.dumps(report, indent=2) + "\n")
    atomic_write_text(md_path, markdown)
    return json_path, md_path
