"""Benchmarks (run each script from the repository root, e.g. `python bench/bench_local.py`)."""
