"""Helpers shared by the tests (and the benchmarks): study files, specs and tiny models."""
