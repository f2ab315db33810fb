"""Benchmarks: load generation with wrk against the serving stack, and the report they produce."""
