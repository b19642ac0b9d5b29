"""Benchmark scripts (not tests): `python -m bench.delivery`, `python -m bench.deadlines`."""
