"""Benchmark suites: data-defined tasks x variants x probes, run into one report (table, JSON, Markdown, plot)."""
