"""epcli: enhancer-promoter interaction prediction from DNA sequence for unseen cell lines."""

__version__ = "0.1.0"
