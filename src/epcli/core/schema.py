"""Every table's columns in one place: BEDPE in/out, the evaluation table, HDF5 names."""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------------------- BEDPE
#: The six coordinate columns of BEDPE (bedtools order, 0-based half-open).
BEDPE_COORDS: tuple[str, ...] = ("chrom1", "start1", "end1", "chrom2", "start2", "end2")
#: The four optional standard columns that follow them.
BEDPE_OPTIONAL: tuple[str, ...] = ("name", "score", "strand1", "strand2")
#: All ten standard BEDPE columns.
BEDPE_STANDARD: tuple[str, ...] = BEDPE_COORDS + BEDPE_OPTIONAL
#: Integer coordinate columns.
BEDPE_INT_COLS: tuple[str, ...] = ("start1", "end1", "start2", "end2")
#: Extra columns with a meaning to epcli.
COL_CELL = "cell"
COL_LABEL = "label"
#: Distance between the anchor midpoints (bp), written by ``epcli candidates``.
COL_DISTANCE = "distance"
#: Column counts accepted without a header line.
BEDPE_HEADERLESS_NCOLS: tuple[int, ...] = (6, 10)
#: Placeholder for missing values in text columns (BEDPE convention).
MISSING = "."

#: Columns of ``epcli candidates``' output: the ten standard columns, then the distance.
CANDIDATES_COLUMNS: tuple[str, ...] = BEDPE_STANDARD + (COL_DISTANCE,)
#: Separator of the enhancer and promoter names in a candidate pair's ``name``.
PAIR_NAME_SEP = "|"

#: Columns that ``epcli predict`` appends after the input's columns.
PREDICT_EXTRA: tuple[str, ...] = ("logit", "u_i", "r_e")
#: Appended when the prototype carries a decision threshold.
COL_CALL = "call"

# ------------------------------------------------------------------- evaluation table
#: Exact column order of ``epcli evaluate``'s table.
EVAL_COLUMNS: tuple[str, ...] = (
    "cell",
    "n",
    "n_pos",
    "prevalence",
    "aupr",
    "aupr_lo",
    "aupr_hi",
    "auroc",
    "best_f1_threshold",
    "precision",
    "recall",
    "f1",
    "threshold_at_recall",
    "precision_at_recall",
    "distance_aupr",
)
#: Name of the all-cells row.
EVAL_ALL = "ALL"

# ------------------------------------------------------------------------------ HDF5
H5_FORMAT = "epcli-pairs"
H5_FORMAT_VERSION = 1
H5_ENH = "enhancers"  # group: seq (n, Le) uint8, chrom, start, end (window), anchor_start/end
H5_PRO = "promoters"  # group: same for promoters
H5_PAIRS = "pairs"  # group: per-pair arrays
#: Per-pair numeric datasets in the ``pairs`` group.
H5_PAIR_NUMERIC: dict[str, str] = {
    "enh_idx": "int32",
    "pro_idx": "int32",
    "distance": "int64",
    "cell_idx": "int16",
    "label": "int8",
    "start1": "int64",
    "end1": "int64",
    "start2": "int64",
    "end2": "int64",
    "line": "int64",
}
#: Per-pair string datasets in the ``pairs`` group (original coordinates and names).
H5_PAIR_TEXT: tuple[str, ...] = ("chrom1", "chrom2", "name", "score", "strand1", "strand2")


# ---------------------------------------------------------------- model kinds (the one table)
@dataclass(frozen=True)
class ModelKind:
    """What a model kind is: a torch model or a scikit-learn baseline, and what it uses."""

    torch: bool
    prototypes: bool
    motifs: bool
    sequence: bool
    description: str


#: Every model kind epcli trains and loads, in the order the CLI lists them.
MODEL_KINDS: dict[str, ModelKind] = {
    "prism": ModelKind(True, True, True, True, "motif-grounded U_I - R_E over T (default)"),
    "prism-scratch": ModelKind(True, True, False, True, "the same over a from-scratch encoder"),
    "crossattn": ModelKind(True, False, False, True, "plain cross-attention baseline"),
    "motif-lr": ModelKind(False, False, True, True, "sparse JASPAR logistic regression"),
    "kmer": ModelKind(False, False, False, True, "k-mer count logistic regression"),
    "distance": ModelKind(False, False, False, False, "distance-only logistic regression"),
}
ALL_KINDS = tuple(MODEL_KINDS)
TORCH_KINDS = tuple(k for k, v in MODEL_KINDS.items() if v.torch)
SKLEARN_KINDS = tuple(k for k, v in MODEL_KINDS.items() if not v.torch)
PROTOTYPE_KINDS = tuple(k for k, v in MODEL_KINDS.items() if v.prototypes)
MOTIF_KINDS = tuple(k for k, v in MODEL_KINDS.items() if v.motifs and v.torch)

#: Site model sets (log-odds levels and consensus models) of the motif model
#: (``model.motif_sites``; their definitions: :data:`epcli.model.motif_sites.SITE_SETS`), the
#: first the default, and the set of saved models whose config names none (trained before
#: the choice existed).
MOTIF_SITE_SETS = ("consensus+cores", "levels+cores", "rates+cores", "consensus+core", "consensus")
LEGACY_MOTIF_SITES = "consensus"
#: ``model.motif_sites`` of a new model by default: training fits the warm start's penalty
#: path with each set of :data:`AUTO_SITE_CHOICES` and keeps the one whose held-out block
#: AUPR is best (the first unless another beats it by a margin); a saved model names the set
#: it was trained with, and a model built without training gets the first.
AUTO_MOTIF_SITES = "auto"
AUTO_SITE_CHOICES = ("consensus+cores", "levels+cores")


def saved_model_config(d: dict) -> dict:
    """A saved model config (``config.json``'s ``model``) as it was trained: a motif model
    saved before ``motif_sites`` existed (no such key, but motif IDs) counted the whole
    consensus only."""
    if d.get("motif_ids") and "motif_sites" not in d:
        return {**d, "motif_sites": LEGACY_MOTIF_SITES}
    return d
