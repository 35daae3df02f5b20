"""Benchmarks, run by hand as `python -m bench.NAME`; each prints one JSON object last."""
