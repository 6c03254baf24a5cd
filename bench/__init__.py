"""Benchmarks of the receive path and the notice pipeline; `python bench/run.py` runs them all."""
