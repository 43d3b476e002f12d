"""Inference: device choice, the encode-once engine, the Predictor."""
