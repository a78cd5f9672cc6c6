"""Cost of verifying a kgreason store on load: ``TripleStore.load(verify=True)`` (sha256 of every file, the
default since issue 11) against ``verify=False`` (sizes only), on a generated store, warm page cache.

Usage::

    python benchmarks/store_verify.py                         # 5M triples; writes benchmarks/results/store_verify.{json,md}
    python benchmarks/store_verify.py --triples 200000 --out /tmp/sv
"""

from __future__ import annotations

import argparse
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from reporting import write_results

from kgreason.kb.store import TripleStore

ROOT = Path(__file__).resolve().parents[1]


def build(folder: Path, *, triples: int, entities: int, relations: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    rows = np.stack(
        [
            rng.integers(0, entities, triples),
            rng.integers(0, relations, triples),
            rng.integers(0, entities, triples),
        ],
        axis=1,
    ).astype(np.int64)  # (n, 3)
    store = TripleStore(
        name="generated",
        entity_keys=[f"e{i}" for i in range(entities)],
        relation_keys=[f"r{i}" for i in range(relations)],
        split_triples={"train": rows},
    )
    return store.save(folder / "kb")


def time_load(path: Path, *, verify: bool) -> float:
    start = time.perf_counter()
    store = TripleStore.load(path, verify=verify)
    int(store.triple_array("train")[-1, 0])  # touch the array
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triples", type=int, default=5_000_000, help="Triples in the generated store.")
    parser.add_argument("--entities", type=int, default=500_000, help="Entities in the generated store.")
    parser.add_argument("--repeats", type=int, default=7, help="Timed loads per setting (alternating).")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="Results folder.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = build(Path(tmp), triples=args.triples, entities=args.entities, relations=100, seed=0)
        size = sum(p.stat().st_size for p in path.iterdir())
        time_load(path, verify=True)  # warm the page cache
        times: dict[str, list[float]] = {"verify=False": [], "verify=True": []}
        for _ in range(args.repeats):
            for verify in (False, True):
                times[f"verify={verify}"].append(time_load(path, verify=verify))
    p50 = {k: statistics.median(v) for k, v in times.items()}
    ratio = p50["verify=True"] / p50["verify=False"]
    command = shlex.join(["python", "benchmarks/store_verify.py", *sys.argv[1:]])
    report = {
        "command": command,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "store": {"triples": args.triples, "entities": args.entities, "relations": 100, "bytes": size},
        "seconds": times,
        "p50": p50,
        "ratio_verify_over_sizes_only": ratio,
    }
    markdown = (
        "# Verifying a store on load\n\n"
        f"Command: `{command}`\n\n"
        f"Generated store: {args.triples:,} triples, {args.entities:,} entities, 100 relations, "
        f"{size / 2**20:.0f} MiB; warm page cache; p50 of {args.repeats} loads each, alternating.\n\n"
        "| load | p50 s |\n|---|---|\n"
        f"| `TripleStore.load(verify=False)` (sizes only) | {p50['verify=False']:.3f} |\n"
        f"| `TripleStore.load(verify=True)` (sha256 of every file, the default) | {p50['verify=True']:.3f} |\n\n"
        f"Verifying costs {ratio:.2f}× the load without it "
        f"(+{p50['verify=True'] - p50['verify=False']:.3f} s).\n"
    )
    for written in write_results(args.out / "store_verify", report, markdown):
        print(written)
    print(markdown)


if __name__ == "__main__":
    main()
