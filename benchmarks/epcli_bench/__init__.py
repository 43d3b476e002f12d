"""Benchmark data generators: the semi-synthetic set and BENGI/TargetFinder conversion."""
