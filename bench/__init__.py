"""Benchmarks, run by hand as `python -m bench.NAME`; the last line each prints is one JSON object."""
