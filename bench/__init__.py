"""Benchmarks that print figures (never assert timings). Run as `python -m bench.<name>`."""
