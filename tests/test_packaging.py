"""The wheel carries every package and every shipped data file; code finds data through importlib.resources."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_source_package_is_listed() -> None:
    from setuptools import find_packages

    listed = set(_setuptools()["packages"])
    found = set(find_packages(where=str(ROOT), include=["kgreason", "kgreason.*"]))
    assert found - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == {"kgreason.knowledge", "kgreason.suites"}


@pytest.mark.parametrize(
    ("package", "folder"), [("kgreason.knowledge", "knowledge"), ("kgreason.suites", "benchmarks/suites")]
)
def test_every_data_file_matches_a_package_data_glob(package: str, folder: str) -> None:
    config = _setuptools()
    assert config["package-dir"][package] == folder
    globs = [g.removeprefix("**/") for g in config["package-data"][package]]
    files = [p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    unshipped = [
        str(p.relative_to(ROOT))
        for p in files
        if p.name != "__init__.py" and not any(fnmatch.fnmatch(p.name, g) for g in globs)
    ]
    assert files and unshipped == [], f"not shipped in the wheel: {unshipped}"


def test_package_data_resolves_through_importlib_resources() -> None:
    from kgreason.core.resources import find_packaged, knowledge_path, suites_path

    assert knowledge_path("rules", "kinship.rules").read_text(encoding="utf-8").strip()
    assert (suites_path() / "quick.yaml").is_file()
    assert find_packaged("kinship", folder=("rules",), suffix=".rules") == knowledge_path(
        "rules", "kinship.rules"
    )
    assert find_packaged("example", folder=("finance",), suffix=".ttl").name == "example.ttl"
    assert find_packaged("no-such-set", folder=("rules",), suffix=".rules") == Path("no-such-set")


def test_missing_package_data_is_one_clear_error() -> None:
    from kgreason.core.errors import KGReasonError
    from kgreason.core.resources import knowledge_path

    with pytest.raises(KGReasonError, match=r"rules/absent\.rules is missing from kgreason's package data"):
        knowledge_path("rules", "absent.rules")


def test_no_code_finds_data_relative_to_its_own_file() -> None:
    """``Path(__file__).parents[...]`` breaks in a wheel: shipped data is read through kgreason.core.resources."""
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in (ROOT / "kgreason").rglob("*.py")
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"__file__\)?\.resolve\(\)\.parents\[\d\]\s*/\s*\"(knowledge|benchmarks)\"", line)
    ]
    assert offenders == []


def test_suite_reports_default_to_runs_not_committed_results() -> None:
    import typer.main

    from kgreason.cli.bench import REPORTS_DIR, bench_app

    assert Path("runs") / "reports" == REPORTS_DIR
    group = typer.main.get_command(bench_app)
    for name in ("reasoning", "finance"):
        out = next(p for p in group.commands[name].params if p.name == "output_dir")
        assert Path(out.default) == REPORTS_DIR and "--out" in out.opts
