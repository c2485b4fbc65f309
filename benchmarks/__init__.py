"""Benchmarks: `python benchmarks/run.py`."""
