"""Evaluation: metrics (AUPR, thresholds, collapse), per-cell tables, leakage."""
