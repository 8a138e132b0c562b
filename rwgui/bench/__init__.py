"""Benchmarks: print tables of ratios measured in one run; never part of the test pass/fail."""
