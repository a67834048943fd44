"""The parts of bench/bench_local.py (run that script; these modules are not entry points)."""
