"""Benchmarks de Inventario: `python -m bench` (ver docs/benchmarks.md)."""
