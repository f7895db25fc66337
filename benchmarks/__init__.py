"""Benchmarks: measured figures for the README, never run as timed tests."""
