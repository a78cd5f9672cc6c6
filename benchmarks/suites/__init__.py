"""Package-data marker: ``pyproject.toml`` ships this folder inside the wheel as ``kgreason.suites``."""
