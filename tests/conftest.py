"""Shared fixtures: the public data folder (``../shared/data`` or ``$KGREASON_DATA``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgreason.paths import data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public benchmark data folder; tests that need it are skipped where it is absent."""
    root = data_dir()
    if root is None or not root.is_dir():
        pytest.skip("public data folder not found (set KGREASON_DATA or place it at ../shared/data)")
    return root
