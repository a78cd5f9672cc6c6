"""The reasoning suite's report: one table (variant x depth accuracy, gaps, violations, probe effects, time),
written as Markdown and JSON, and a plot of accuracy against depth per variant (with the published anchors)."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from kgreason.bench.reasoning import ReasoningReport, VariantRun, mean_std
from kgreason.core.atomic import atomic_path, atomic_write_text


def finite_mean_std(values: list[float | None]) -> tuple[float, float]:
    """Mean and sample std of the finite values (std 0 for one value); ``(nan, nan)`` when none are."""
    present = [v for v in values if v is not None and math.isfinite(v)]
    if not present:
        return (float("nan"), float("nan"))
    return statistics.fmean(present), statistics.stdev(present) if len(present) > 1 else 0.0


def format_mean_std(pair: tuple[float, float], digits: int = 3) -> str:
    """``mean ± std`` to ``digits`` decimals; ``–`` when the mean is not finite."""
    mean, std = pair
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def write_text_reports(
    output_dir: str | Path, stem: str, *, markdown: str, payload: Any, default: Any = str
) -> tuple[Path, Path]:
    """``<output_dir>/<stem>.md`` and ``.json`` (``payload``, indented), each written atomically."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = atomic_write_text(out / f"{stem}.md", markdown)
    js = atomic_write_text(out / f"{stem}.json", json.dumps(payload, indent=2, default=default) + "\n")
    return md, js


def _groups(report: ReasoningReport) -> dict[str, list[VariantRun]]:
    groups: dict[str, list[VariantRun]] = defaultdict(list)
    for run in report.runs:
        groups[run.label].append(run)
    return dict(groups)


def _probe_value(run: VariantRun, probe: str) -> float | None:
    found = run.probes.get(probe)
    if not found:
        return None
    if probe == "perturbation":
        drops = [
            e.get("estimate") for e in found.get("effects", {}).values() if e.get("estimate") is not None
        ]
        return sum(drops) / len(drops) if drops else None
    return found.get("estimate")


def aggregate(report: ReasoningReport) -> list[dict[str, Any]]:
    """One row per variant label: mean ± std over seeds of every column."""
    rows = []
    for label, runs in _groups(report).items():
        row: dict[str, Any] = {"variant": label, "seeds": [r.seed for r in runs]}
        row.update(_given(runs[0]))
        row["depth_accuracy"] = {
            depth: mean_std([r.depth_accuracy.get(depth) for r in runs]) for depth in report.depths
        }
        for key in (
            "accuracy",
            "iid_accuracy",
            "ood_accuracy",
            "train_accuracy",
            "violation_rate",
            "train_seconds",
        ):
            row[key] = mean_std([getattr(r, key) for r in runs])
        row["generalisation_gap"] = mean_std([r.generalisation_gap for r in runs])
        for probe in ("ablation", "counterfactual", "perturbation", "rename"):
            row[probe] = mean_std([_probe_value(r, probe) for r in runs])
            intervals = [_probe_interval(r, probe) for r in runs]
            if any(intervals):
                row[f"{probe}_ci"] = [ci for ci in intervals if ci]
        quality = [r.extra["reader_quality"] for r in runs if r.extra.get("reader_quality")]
        if quality:
            row["reader_quality"] = {
                depth: {key: mean_std([q.get(depth, {}).get(key) for q in quality]) for key in READER_METRICS}
                for depth in quality[0]
            }
        stage = [r.extra.get("predict_seconds") for r in runs]
        row["predict_seconds"] = mean_std(stage)
        fusion = [r.extra["fusion"] for r in runs if r.extra.get("fusion")]
        if fusion:
            row["fusion"] = fusion  # per seed: the weight chosen on dev and the dev accuracies behind it
        for key in ("faithful_accuracy", "contradicted_accuracy", "noise_accuracy"):
            split = [r.extra[key] for r in runs if r.extra.get(key)]
            if split:
                row[key] = {depth: mean_std([a.get(depth) for a in split]) for depth in split[0]}
        rows.append(row)
    return rows


#: Reader-quality metrics, in table order (:func:`kgreason.bench.reading.reader_quality`).
READER_METRICS = ("relation_accuracy", "pair_recall", "pair_precision", "gender_accuracy", "story_exact")


def _given(run: VariantRun) -> dict[str, str]:
    """What a row's predictor was given at test time and which rules it composed with."""
    from kgreason.bench.variants import reasoning_variants

    variant = reasoning_variants.get(run.variant) if run.variant in reasoning_variants else None
    inputs = variant.inputs if variant else "?"
    rules = variant.rules if variant else "?"
    if run.constrained:
        rules = "hand-written" if rules == "none" else rules
    return {"inputs": inputs, "rules": rules}


def _probe_interval(run: VariantRun, probe: str) -> list[float] | None:
    """``[estimate, ci_low, ci_high]`` of a probe's effect on one run (``None``: not run or no interval)."""
    found = run.probes.get(probe)
    if not found or found.get("estimate") is None or probe == "perturbation":
        return None
    return [found["estimate"], found.get("ci_low"), found.get("ci_high")]


def _pct(value: tuple[float, float] | None, *, std: bool = False, signed: bool = False) -> str:
    if value is None:
        return "–"
    mean, spread = value
    text = f"{100 * mean:+.1f}" if signed else f"{100 * mean:.1f}"
    return f"{text} ± {100 * spread:.1f}" if std and spread else text


def markdown_table(report: ReasoningReport) -> str:
    """The suite table: accuracy (%) per test depth (IID depths marked *), gaps and probe effects."""
    train = set(report.suite.train_depths)
    depth_heads = [f"k={d}{'*' if d in train else ''}" for d in report.depths]
    heads = [
        "variant",
        "inputs",
        "rules",
        *depth_heads,
        "all",
        "IID−OOD gap",
        "train−test gap",
        "violations %",
        "ablation drop",
        "counterfactual ✓",
        "perturbation drop",
        "rename inv.",
        "train s",
        "predict s",
    ]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    many = len(report.info.get("seeds", [])) > 1
    for row in aggregate(report):
        train_gap = None
        if row["train_accuracy"] and row["accuracy"]:
            train_gap = (row["train_accuracy"][0] - row["accuracy"][0], 0.0)
        seconds = row["train_seconds"]
        cells = [
            row["variant"],
            row["inputs"],
            row["rules"],
            *[_pct(row["depth_accuracy"][d], std=many) for d in report.depths],
            _pct(row["accuracy"], std=many),
            _pct(row["generalisation_gap"], signed=True),
            _pct(train_gap, signed=True),
            _pct(row["violation_rate"]),
            _pct(row["ablation"]),
            _pct(row["counterfactual"]),
            _pct(row["perturbation"]),
            _pct(row["rename"]),
            f"{seconds[0]:.0f}" if seconds else "–",
            f"{row['predict_seconds'][0]:.0f}" if row.get("predict_seconds") else "–",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reader_table(report: ReasoningReport) -> str:
    """Reader quality by depth (%), one block of rows per reader variant (empty when none ran)."""
    lines = []
    for row in aggregate(report):
        quality = row.get("reader_quality")
        if not quality or row["variant"].endswith("+ rules"):
            continue
        if not lines:
            lines = ["| variant | metric | " + " | ".join(f"k={d}" for d in quality) + " |"]
            lines.append("|" + "---|" * (len(quality) + 2))
        for metric in READER_METRICS:
            cells = [_pct(quality[d].get(metric)) for d in quality]
            lines.append(f"| {row['variant']} | {metric.replace('_', ' ')} | " + " | ".join(cells) + " |")
        break  # the reader variants share one reader per seed
    return "\n".join(lines)


def faithful_table(report: ReasoningReport) -> str:
    """Accuracy by depth (%) on the test stories whose text states every fact as the gold graph does, and on
    the rest (stories whose text states some fact inversely; :func:`~kgreason.data.clutrr.stated_facts`)."""
    rows = [row for row in aggregate(report) if row.get("faithful_accuracy")]
    if not rows:
        return ""
    depths = list(rows[0]["faithful_accuracy"])
    lines = [
        "| variant | inputs | stories | " + " | ".join(f"k={d}" for d in depths) + " |",
        "|" + "---|" * (len(depths) + 3),
    ]
    for row in rows:
        for key, name in (
            ("faithful_accuracy", "text agrees"),
            ("contradicted_accuracy", "text contradicts"),
        ):
            values = row.get(key) or {}
            cells = [_pct(values.get(d), std=True) if d in values else "–" for d in depths]
            lines.append(f"| {row['variant']} | {row['inputs']} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def noise_table(report: ReasoningReport) -> str:
    """Accuracy (%) per kind of noise in the test stories (CLUTRR's robustness sets) and its mean over kinds."""
    rows = [row for row in aggregate(report) if row.get("noise_accuracy")]
    if not rows:
        return ""
    kinds = list(rows[0]["noise_accuracy"])
    lines = [
        "| variant | inputs | " + " | ".join(kinds) + " | mean over kinds |",
        "|" + "---|" * (len(kinds) + 3),
    ]
    for row in rows:
        values = row["noise_accuracy"]
        means = [values[k][0] for k in kinds if values.get(k)]
        cells = [_pct(values.get(k), std=True) for k in kinds]
        mean = _pct((sum(means) / len(means), 0.0)) if len(means) == len(kinds) else "–"
        lines.append(f"| {row['variant']} | {row['inputs']} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines)


def probe_table(report: ReasoningReport) -> str:
    """Knowledge-ablation drop and counterfactual consistency per seed with their 95 % bootstrap intervals."""
    lines = []
    for row in aggregate(report):
        cells = []
        for probe in ("ablation", "counterfactual"):
            shown = [
                f"{100 * e:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
                for e, lo, hi in row.get(f"{probe}_ci", [])
                if lo is not None and hi is not None and lo == lo and hi == hi
            ]
            cells.append("; ".join(shown) or "–")
        if cells == ["–", "–"]:
            continue
        if not lines:
            lines = ["| variant | ablation drop [95 % CI] per seed | counterfactual ✓ [95 % CI] per seed |"]
            lines.append("|---|---|---|")
        lines.append(f"| {row['variant']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def anchors_table(report: ReasoningReport) -> str:
    if not report.suite.anchors:
        return ""
    lines = ["| anchor | setting | accuracy by depth (%) | source |", "|---|---|---|---|"]
    for anchor in report.suite.anchors:
        values = "; ".join(
            part
            for part in (", ".join(f"k={k}: {v:g}" for k, v in anchor.accuracy.items()), anchor.note.strip())
            if part
        )
        lines.append(f"| {anchor.name} | {anchor.setting} | {values} | {anchor.citation} |")
    return "\n".join(lines)


def report_markdown(report: ReasoningReport, *, command: str) -> str:
    suite = report.suite
    info = report.info
    parts = [
        f"# Reasoning suite `{suite.name}`",
        "",
        suite.description.strip(),
        "",
        f"Command: `{command}`",
        "",
        f"Data: `{info.get('dataset')}` {json.dumps(info.get('options', {}), sort_keys=True)}; sizes "
        f"{info.get('sizes')}; seeds {info.get('seeds')}; train depths {suite.train_depths} (marked *); "
        f"wall time {report.seconds / 60:.1f} min.",
        "",
        markdown_table(report),
        "",
        "Columns: accuracy (%) on the test stories of each depth (mean ± std over seeds); IID−OOD gap = mean "
        "accuracy on the training depths minus unseen depths; violations = share of predictions the rules "
        "contradict (gender typing of the answer); ablation drop = accuracy lost when the facts on the reasoning "
        "path are removed (from text and graph); counterfactual ✓ = share of predictions that follow a one-fact "
        "edit to the rule-given new answer; perturbation drop = accuracy lost with the whole story graph perturbed "
        "(mean over relation swap / rewiring / deletion; graph-reading variants only); rename inv. = share of "
        "predictions unchanged when every person is renamed. `+ rules` = rule-constrained inference. "
        "inputs = what a row is given at test time (`text`: story text and its marked names only; "
        "`text+gold_pairs`: and the gold related pairs and genders; `gold_graph`: the gold story graph; "
        "`stated_graph`: the gold pairs and genders, each relation as the text states it); rules = "
        "the rules it composes with (`hand-written`, `learned` by `kgreason rules learn` from the training "
        "stories, `none`); train s = training time, predict s = time to answer the test stories.",
    ]
    probes_ci = probe_table(report)
    if probes_ci:
        parts += ["", "Probe effects with bootstrap intervals (one entry per seed):", "", probes_ci]
    fusion = [
        (row["variant"], [f["weight"] for f in row["fusion"]])
        for row in aggregate(report)
        if row.get("fusion")
    ]
    if fusion:
        parts += [
            "",
            "Late fusion: the text's weight chosen on dev, per seed (0 = the graph reasoner alone; a weight above 0 "
            "is taken only where its dev accuracy gain's 95 % bootstrap interval lies above 0): "
            + "; ".join(f"{name} {', '.join(f'{w:g}' for w in weights)}" for name, weights in fusion)
            + ".",
        ]
    reading = reader_table(report)
    if reading:
        parts += [
            "",
            "Story reader on its own (test stories, mean over seeds): relation accuracy = gold facts whose "
            "relation the decoded graph states (either direction); pair recall / precision = related pairs "
            "found vs gold; gender accuracy per person; story exact = every fact and gender right (the reader "
            "variants share one reader per seed).",
            "",
            reading,
        ]
    noise = noise_table(report)
    if noise:
        parts += [
            "",
            "Accuracy (%) by the kind of noise in the test stories (mean ± std over seeds):",
            "",
            noise,
        ]
    faithful = faithful_table(report)
    if faithful:
        counts = {int(d): c for d, c in (report.info.get("contradicted_stories") or {}).items()}
        shares = ", ".join(f"k={d}: {counts[d][0]} of {counts[d][1]}" for d in report.depths if d in counts)
        parts += [
            "",
            "Where the text contradicts the gold graph: some test stories state a fact inversely (crowd "
            'paraphrases filled in with the names swapped, e.g. "[Mark] took his son [Elliott]" for the gold '
            "fact *Mark is Elliott's son*; facebookresearch/clutrr#15, #18). A reader that reads such a sentence "
            "right answers the story wrong; `text_stated` (the rules over every fact as its sentence states it) "
            "is the ceiling of a reader faithful to the text. Accuracy (%) on the stories whose text agrees "
            f"with the graph and on the rest (stories with a contradicted fact: {shares}):",
            "",
            faithful,
        ]
    anchors = anchors_table(report)
    if anchors:
        parts += ["", "Published anchors:", "", anchors]
    if suite.goal:
        parts += ["", f"Goal: {suite.goal.strip()}"]
    return "\n".join(parts) + "\n"


def report_json(report: ReasoningReport, *, command: str) -> dict[str, Any]:
    from kgreason.core.config import config_to_dict

    return {
        "suite": config_to_dict(report.suite),
        "command": command,
        "info": report.info,
        "seconds": report.seconds,
        "depths": report.depths,
        "rows": aggregate(report),
        "runs": [
            {
                "variant": run.variant,
                "constrained": run.constrained,
                "soft_constraints": run.soft,
                "seed": run.seed,
                "depth_accuracy": run.depth_accuracy,
                "accuracy": run.accuracy,
                "iid_accuracy": run.iid_accuracy,
                "ood_accuracy": run.ood_accuracy,
                "train_accuracy": run.train_accuracy,
                "violation_rate": run.violation_rate,
                "train_seconds": run.train_seconds,
                "num_test": run.num_test,
                "probes": run.probes,
                "extra": run.extra,
            }
            for run in report.runs
        ],
    }


def plot_accuracy(report: ReasoningReport, path: Path) -> Path:
    """Accuracy against test depth, one line per variant (error bars: std over seeds); anchors dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for row in aggregate(report):
        points = [(d, v) for d, v in row["depth_accuracy"].items() if v is not None]
        if not points:
            continue
        ax.errorbar(
            [d for d, _ in points],
            [100 * v[0] for _, v in points],
            yerr=[100 * v[1] for _, v in points],
            marker="o",
            markersize=4,
            capsize=3,
            linestyle="--" if row["variant"].endswith("+ rules") else "-",
            label=row["variant"],
        )
    for anchor in report.suite.anchors:
        points = sorted((int(k), v) for k, v in anchor.accuracy.items())
        if points:
            ax.plot([k for k, _ in points], [v for _, v in points], ":", color="grey", label=anchor.name)
    train = report.suite.train_depths
    if train:
        ax.axvspan(min(train) - 0.5, max(train) + 0.5, color="0.92", zorder=0, label="train depths")
    ax.set_xlabel("reasoning depth k (edges on the path)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 102)
    ax.set_title(f"{report.suite.name}: accuracy by depth")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def write_report(report: ReasoningReport, output_dir: str | Path, *, command: str) -> list[Path]:
    """``<output_dir>/reasoning-<suite>.{md,json,png}``, each written atomically."""
    name = f"reasoning-{report.suite.name}"
    md, js = write_text_reports(
        output_dir,
        name,
        markdown=report_markdown(report, command=command),
        payload=report_json(report, command=command),
    )
    png = plot_accuracy(report, Path(output_dir) / f"{name}.png")
    report.files = [md, js, png]
    return report.files
