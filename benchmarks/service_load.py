"""Service load: requests/s and latency of ``POST /score`` on the kgreason scoring service under concurrent load.

The service (``kgreason.finance.service``, uvicorn, audit log with fsync on) runs in a child process on a free
loopback port; this process waits for ``/health``, then keeps ``--concurrency`` requests in flight (closed loop)
for ``--warmup`` + ``--duration`` seconds, each a batch of ``--batch`` distinct random company ids. Reported:
requests/s and companies/s over the timed window, p50/p90/p99/max latency, errors (any non-200 or transport
error: must be 0), the server's RSS at start and end (psutil, worker processes included), and a check that the
audit log holds exactly one intact record per company scored.

Scorers: by default a deterministic fake (probabilities from a hash, fixed reasons, no model work), so the numbers
are the service's own overhead (HTTP, validation, lock, audit fsync, JSON); ``--model RUN_DIR`` serves a trained
run through ``kgreason.finance.scoring.load_scorer(RUN_DIR)`` (or ``RiskScorer.load``).

Load generator: httpx's ``AsyncClient`` in one asyncio loop rather than locust: it times every request exactly
(locust's percentiles are rounded to whole milliseconds, about the size of this service's p50), it checks every
response body, and it adds no extra processes to a 2-core machine (locust headless needs a runner beside the
server). Usage::

    python benchmarks/service_load.py                  # writes benchmarks/results/service-load.{json,md}
    python benchmarks/service_load.py --duration 5 --no-write
    python benchmarks/service_load.py --model runs/finance-gnn --batch 32
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STEM = HERE / "results" / "service-load"
MODEL_ENV = "KGREASON_BENCH_MODEL"


# ------------------------------------------------------------------------------------------------ scorers
class FakeScorer:
    """A deterministic stand-in for a trained model: the service's overhead is what gets measured."""

    model_version = "fake-deterministic-1"

    def __init__(self, *, companies: int = 5000) -> None:
        self._ids = [f"C{i:05d}" for i in range(companies)]
        self._known = set(self._ids)

    def company_ids(self) -> list[str]:
        return list(self._ids)

    @staticmethod
    def _raw(company_id: str) -> float:
        return int.from_bytes(hashlib.sha256(company_id.encode()).digest()[:8], "big") / 2**64

    def _reasons(self, company_id: str, top: int) -> list[Any]:
        from kgreason.finance.records import Reason

        reasons = [
            Reason("F:lawsuits_lost", "feature", "Lost 3 lawsuits in 24 months", 0.08),
            Reason("N:guarantees:C00042", "neighbour", "Guarantees C00042, which defaulted", 0.05),
            Reason("R:guarantees", "relation", "Guarantee links", 0.03),
            Reason("T:0", "fact", f"{company_id} missed a bond coupon payment", 0.02),
        ]
        return reasons[:top]

    def _check(self, ids: list[str]) -> None:
        unknown = [i for i in ids if i not in self._known]
        if unknown:
            raise KeyError(f"unknown company id(s): {', '.join(unknown)}")

    def score(self, company_ids: list[str], *, top_reasons: int = 3) -> list[Any]:
        from kgreason.finance.records import CompanyScore

        self._check(company_ids)
        out = []
        for c in company_ids:
            raw = self._raw(c)
            out.append(
                CompanyScore(c, raw, 0.05 + 0.9 * raw, self._reasons(c, top_reasons), self.model_version)
            )
        return out

    def explain(self, company_id: str, *, top: int = 10) -> Any:
        from kgreason.finance.records import Explanation

        self._check([company_id])
        reasons = self._reasons(company_id, 4)
        return Explanation(
            company_id, 0.05 + 0.9 * self._raw(company_id), self.model_version, *([r] for r in reasons)
        )

    def what_if(self, company_id: str, scenario: Any) -> Any:
        from kgreason.finance.records import WhatIf

        self._check([company_id])
        before = 0.05 + 0.9 * self._raw(company_id)
        return WhatIf(company_id, scenario, before, min(1.0, before + 0.1), self.model_version)


def fake_scorer() -> FakeScorer:
    """Factory of the fake scorer (importable by worker processes)."""
    return FakeScorer(companies=int(os.environ.get("KGREASON_BENCH_COMPANIES", "5000")))


def model_scorer() -> Any:
    """Factory of the trained scorer in ``$KGREASON_BENCH_MODEL`` (importable by worker processes)."""
    run_dir = os.environ[MODEL_ENV]
    try:
        from kgreason.finance import scoring
    except ImportError as exc:
        raise SystemExit(f"--model needs kgreason.finance.scoring, which cannot be imported: {exc}") from exc
    loader = getattr(scoring, "load_scorer", None)
    if loader is None and hasattr(scoring, "RiskScorer"):
        loader = scoring.RiskScorer.load
    if loader is None:
        raise SystemExit("--model needs kgreason.finance.scoring.load_scorer(run_dir) (or RiskScorer.load)")
    return loader(run_dir)


# --------------------------------------------------------------------------------------------- the server
def run_child(args: argparse.Namespace) -> None:
    """The server process: build the scorer, write its company ids, serve until SIGINT/SIGTERM."""
    from kgreason.finance.service import serve

    factory = "service_load:model_scorer" if args.model else "service_load:fake_scorer"
    os.environ["KGREASON_BENCH_COMPANIES"] = str(args.companies)
    if args.model:
        os.environ[MODEL_ENV] = str(args.model)
    sys.path.insert(0, str(HERE))
    scorer = (model_scorer if args.model else fake_scorer)()
    Path(args.ids_out).write_text(json.dumps(scorer.company_ids()))
    serve(
        scorer if args.workers == 1 else factory,
        host="127.0.0.1",
        port=args.port,
        audit_log=args.audit_log,
        workers=args.workers,
        log_level="warning",  # no per-request access log lines
        max_batch=max(256, args.batch),
        audit_fsync=not args.no_fsync,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_rss(pid: int) -> int:
    """RSS of a process and its children (uvicorn workers), bytes."""
    import psutil

    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total


def wait_healthy(base: str, child: subprocess.Popen, log: Path, *, timeout_s: float) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(
                f"the service exited with {child.returncode} before /health answered:\n{log.read_text()}"
            )
        try:
            response = httpx.get(f"{base}/health", timeout=2)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the service did not answer /health within {timeout_s:.0f} s:\n{log.read_text()}")


# ----------------------------------------------------------------------------------------------- the load
@dataclass
class LoadResult:
    latencies_s: list[float]  # timed window only
    window_s: float
    requests_total: int  # warm-up included (all of them are audited)
    ok_total: int
    errors: int
    error_samples: list[str]


async def run_load(
    base: str,
    ids: list[str],
    *,
    concurrency: int,
    batch: int,
    warmup_s: float,
    duration_s: float,
    seed: int,
    top_reasons: int | None = None,
) -> LoadResult:
    import httpx

    rng = random.Random(seed)
    start = time.perf_counter()
    timed_from, stop_at = start + warmup_s, start + warmup_s + duration_s
    latencies: list[float] = []
    counts = {"total": 0, "ok": 0, "errors": 0}
    samples: list[str] = []

    async def user(http: httpx.AsyncClient) -> None:
        while True:
            sent = time.perf_counter()
            if sent >= stop_at:
                return
            chosen = rng.sample(ids, batch)
            counts["total"] += 1
            try:
                body: dict[str, Any] = {"company_ids": chosen}
                if top_reasons is not None:
                    body["top_reasons"] = top_reasons
                response = await http.post("/score", json=body)
                done = time.perf_counter()
                good = response.status_code == 200 and len(response.json()["scores"]) == batch
                reason = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                done, good, reason = time.perf_counter(), False, f"{type(exc).__name__}: {exc}"
            if good:
                counts["ok"] += 1
            else:
                counts["errors"] += 1
                if len(samples) < 5:
                    samples.append(reason)
            if sent >= timed_from and done <= stop_at:
                latencies.append(done - sent)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        await asyncio.gather(*(user(http) for _ in range(concurrency)))
    return LoadResult(latencies, duration_s, counts["total"], counts["ok"], counts["errors"], samples)


# --------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, help="a trained run folder (default: the deterministic fake scorer)"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="timed seconds of load (default 20)")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds of load first (default 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--batch", type=int, default=8, help="company ids per request (default 8)")
    parser.add_argument(
        "--companies", type=int, default=5000, help="companies of the fake scorer (default 5000)"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument(
        "--no-fsync", action="store_true", help="do not fsync the audit log after each request"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for /health")
    parser.add_argument("--no-write", action="store_true", help="print the results, write no files")
    parser.add_argument(
        "--top-reasons",
        type=int,
        default=None,
        help="reasons per score asked in each request (default: the service's)",
    )
    parser.add_argument(
        "--out", default=None, help="results stem under benchmarks/results (default: service-load)"
    )
    parser.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--audit-log", help=argparse.SUPPRESS)
    parser.add_argument("--ids-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_child:
        run_child(args)
        return 0
    if args.model is not None and not args.model.is_dir():
        parser.error(f"--model {args.model}: not a folder")
    if min(args.concurrency, args.batch, args.workers) < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--concurrency, --batch, --workers must be >= 1, --duration > 0, --warmup >= 0")

    import numpy as np

    from kgreason.finance.audit import verify

    command = "python benchmarks/service_load.py" + "".join(
        f" {shlex.quote(a)}" for a in (argv or sys.argv[1:])
    )
    with tempfile.TemporaryDirectory(prefix="kgreason-service-load-") as tmp:
        tmp_dir = Path(tmp)
        port = free_port()
        audit_log, ids_file, log = tmp_dir / "audit.jsonl", tmp_dir / "ids.json", tmp_dir / "server.log"
        child_cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-child",
            f"--port={port}",
            f"--audit-log={audit_log}",
            f"--ids-out={ids_file}",
            f"--companies={args.companies}",
            f"--workers={args.workers}",
            f"--batch={args.batch}",
            *(["--no-fsync"] if args.no_fsync else []),
            *([f"--model={args.model}"] if args.model else []),
        ]
        base = f"http://127.0.0.1:{port}"
        with open(log, "wb") as log_handle:
            started = time.perf_counter()
            child = subprocess.Popen(child_cmd, stdout=log_handle, stderr=subprocess.STDOUT)
            try:
                health = wait_healthy(base, child, log, timeout_s=args.startup_timeout)
                startup_s = time.perf_counter() - started
                ids = json.loads(ids_file.read_text())
                if len(ids) < args.batch:
                    raise SystemExit(f"--batch {args.batch} is more than the {len(ids)} companies served")
                rss_start = tree_rss(child.pid)
                print(
                    f"service up in {startup_s:.1f} s ({health['companies']} companies, {health['model_version']}); "
                    f"load: {args.concurrency} in flight x {args.batch} ids, {args.warmup:g}+{args.duration:g} s",
                    flush=True,
                )
                samples: list[tuple[float, int]] = []  # (seconds since load start, server RSS)
                stop = threading.Event()
                load_start = time.perf_counter()

                def sample_rss() -> None:
                    while not stop.wait(0.5):
                        with contextlib.suppress(Exception):  # the server may be exiting
                            samples.append((time.perf_counter() - load_start, tree_rss(child.pid)))

                sampler = threading.Thread(target=sample_rss, daemon=True)
                sampler.start()
                result = asyncio.run(
                    run_load(
                        base,
                        ids,
                        concurrency=args.concurrency,
                        batch=args.batch,
                        warmup_s=args.warmup,
                        duration_s=args.duration,
                        seed=args.seed,
                        top_reasons=args.top_reasons,
                    )
                )
                stop.set()
                sampler.join()
                rss_end = tree_rss(child.pid)
                timed = [rss for at, rss in samples if at >= args.warmup] or [rss_end]
                rss_timed_start, rss_peak = timed[0], max(timed)
            finally:
                child.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully (closes the audit log)
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
        check = verify(audit_log)
        server_log = log.read_text()

    lat_ms = np.asarray(result.latencies_s) * 1e3  # (requests in the timed window,)
    audited_ok = check.records == result.ok_total * args.batch  # every company of every 200 is one record
    report: dict[str, Any] = {
        "command": command,
        "scorer": f"model {args.model}" if args.model else f"fake deterministic ({args.companies} companies)",
        "model_version": health["model_version"],
        "settings": {
            "concurrency": args.concurrency,
            "batch": args.batch,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "workers": args.workers,
            "audit_fsync": not args.no_fsync,
            "load_generator": "httpx.AsyncClient, closed loop",
        },
        "startup_s": round(startup_s, 2),
        "requests_timed": int(lat_ms.size),
        "requests_per_s": round(lat_ms.size / result.window_s, 1),
        "companies_per_s": round(lat_ms.size * args.batch / result.window_s, 1),
        "latency_ms": {
            name: round(float(np.percentile(lat_ms, q)), 2) if lat_ms.size else None
            for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
        },
        "errors": result.errors,
        "error_samples": result.error_samples,
        "requests_total": result.requests_total,
        "server_rss_mib": {
            "start": round(rss_start / 2**20, 1),
            "after_warmup": round(rss_timed_start / 2**20, 1),
            "peak": round(rss_peak / 2**20, 1),
            "end": round(rss_end / 2**20, 1),
        },
        "audit": {"records": check.records, "expected": result.ok_total * args.batch, "intact": audited_ok},
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    lat = report["latency_ms"]
    markdown = "\n".join(
        [
            "# Service load: POST /score",
            "",
            f"Command: `{command}`",
            "",
            f"Scorer: {report['scorer']}, model version `{report['model_version']}`; uvicorn, {args.workers} "
            f"worker(s), audit log fsync {'on' if not args.no_fsync else 'off'}; load: {args.concurrency} requests "
            f"in flight (httpx async, closed loop), {args.batch} company ids each, {args.warmup:g} s warm-up + "
            f"{args.duration:g} s timed, client and server on the same {os.cpu_count()}-core machine.",
            "",
            "| requests/s | companies/s | p50 ms | p90 ms | p99 ms | max ms | errors | RSS idle MiB | RSS after "
            "warm-up | RSS peak | RSS end MiB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {report['requests_per_s']} | {report['companies_per_s']} | {lat['p50']} | {lat['p90']} | "
            f"{lat['p99']} | {lat['max']} | {report['errors']} | {report['server_rss_mib']['start']} | "
            f"{report['server_rss_mib']['after_warmup']} | {report['server_rss_mib']['peak']} | "
            f"{report['server_rss_mib']['end']} |",
            "",
            f"Requests timed: {report['requests_timed']} (all: {result.requests_total}); audit log: "
            f"{check.records} records for {result.ok_total} successful requests x {args.batch} companies "
            f"({'intact, one per company' if audited_ok else 'MISMATCH'}); service start-up {startup_s:.1f} s.",
            "",
        ]
    )
    print(markdown)
    if result.errors or not audited_ok:
        print(f"FAILED: {result.errors} errors {result.error_samples}; server log:\n{server_log[-4000:]}")
    if not args.no_write:
        sys.path.insert(0, str(HERE))
        from reporting import write_results

        stem = STEM if args.out is None else HERE / "results" / args.out
        for path in write_results(stem, report, markdown):
            print(f"wrote {path}")
    return 1 if result.errors or not audited_ok else 0


if __name__ == "__main__":
    sys.exit(main())
