"""Writing a multi-seed summary: ``summary.json`` and a Markdown table, atomically."""

from __future__ import annotations

import json
from pathlib import Path

from kgreason.core.atomic import atomic_write_text
from kgreason.runs.experiment import ExperimentSummary


def summary_markdown(summary: ExperimentSummary) -> str:
    """A Markdown table: one row per metric, dev and test as mean ± std over the seeds."""
    keys = sorted(set(summary.dev) | set(summary.test))
    lines = [
        f"# {summary.name}",
        "",
        f"Seeds: {', '.join(map(str, summary.seeds))} (mean ± sample std; dev selects the checkpoint, test is "
        "evaluated once per seed).",
        "",
        "| metric | dev | test |",
        "| --- | --- | --- |",
    ]
    for key in keys:
        cells = []
        for stats in (summary.dev, summary.test):
            cells.append(f"{stats[key][0]:.4f} ± {stats[key][1]:.4f}" if key in stats else "-")
        lines.append(f"| {key} | {cells[0]} | {cells[1]} |")
    mean, std = summary.train_seconds
    lines += ["", f"Training time per seed: {mean:.0f} ± {std:.0f} s.", ""]
    return "\n".join(lines)


def write_summary(summary: ExperimentSummary, folder: str | Path) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "summary.json", folder / "summary.md"
    atomic_write_text(json_path, json.dumps(summary.to_dict(), indent=2, default=str) + "\n")
    atomic_write_text(md_path, summary_markdown(summary))
    return json_path, md_path
