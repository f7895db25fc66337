"""Test support shared by the behave suite (``features/``), the fault suite (``chaos/``) and the benchmarks."""
