"""Training: configuration, splits, episodes, validation, the loop, the model card."""
