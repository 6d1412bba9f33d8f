"""Benchmarks of pyistiod (run as ``python -m benchmarks.NAME``)."""
