"""Semi-synthetic enhancer-promoter pairs with a known rule, on real genome sequence.

No public data set pairs real EPI labels with sequence that fits in a repository, so this
module makes labels from a hidden rule applied to real sequence windows, and keeps the true
probability of every pair. The oracle AUPR (ranking pairs by their true probability) is the
ceiling that a model can reach on such a set; the distance-only AUPR is the floor.

The rule, for an enhancer window E, a promoter window P at distance d in cell c::

    logit = a * compat(E, P) + b * activity_c(E) + g * composition(E, P)
            + h * s_c * z(GC_E) - c * log10(d) + bias_c
    label ~ Bernoulli(sigmoid(logit))

- ``compat(E, P) = sum_(i, j) W[i, j] * m_E(i) * m_P(j)``, a fixed sparse interaction matrix
  between transcription-factor (TF) motifs in the enhancer and in the promoter; the same in
  every cell (the "sequence rules" a model has to learn), scaled to unit SD over the pairs.
- ``activity_c(E) = sum_(TF active in c) w_TF * m_E(TF)``: each cell line has a set of active
  TFs (a binary vector); their motifs in the enhancer raise the probability. Scaled to unit SD.
  Unseen cells get TF sets that differ from every training cell's.
- ``composition(E, P) = z(GC_E) + z(GC_P)``, scaled to unit SD: GC-rich windows interact
  more, as GC-rich, gene-dense A-compartment chromatin does. Off by default (g = 0); the
  bundled example set turns it on so that a model trained for a minute on a CPU has a
  sequence signal it can learn from a few hundred windows (none of the models tried learns the
  motif terms from so little sequence; see docs/synthetic.md).
- ``h * s_c * z(GC_E)``: a cell-specific enhancer-GC term whose sign alternates over the
  cells (off by default, h = 0), for testing adaptation with a signal that is learnable.
- ``m_X(TF)`` is ``log1p(count)`` of matches of the TF's consensus (IUPAC, both strands, up to
  a few mismatches) in the window the model sees, standardised over the anchors.
- ``bias_c`` is solved by bisection so that the cell's mean probability equals the target
  prevalence.

Pairs are split by genome region: the non-N part of the region is cut into contiguous blocks,
some of them test blocks; every anchor window lies inside one block and both anchors of a pair
lie in the same block, so no test sequence is ever part of a training pair.
"""

from __future__ import annotations

import bisect
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from epcli.core import schema
from epcli.core.errors import EpcliError, UsageError
from epcli.io.files import open_text_output
from epcli.io.genome import DEFAULT_ENHANCER_WINDOW, DEFAULT_PROMOTER_WINDOW, Genome, window_bounds
from epcli.motifs import Motif as MotifMatrix

from .pwm_sites import logodds_from_counts, pwm_hits, threshold_for_rate

#: Extra column: genome region of the pair, ``"train"`` or ``"test"``.
COL_SPLIT = "split"
#: Extra column: the true interaction probability under the hidden rule.
COL_TRUE_PROB = "true_prob"
#: Columns of a generated table, in order (BEDPE standard, then extras).
SYNTH_COLUMNS: tuple[str, ...] = schema.BEDPE_STANDARD + (
    schema.COL_CELL,
    schema.COL_LABEL,
    COL_SPLIT,
    COL_TRUE_PROB,
)
SPLIT_TRAIN = "train"
SPLIT_TEST = "test"

_CODE_N = 4


# --------------------------------------------------------------------------- motifs
@dataclass(frozen=True)
class Motif:
    """A TF binding motif as an IUPAC consensus.

    Attributes
    ----------
    name : str
        Short TF (family) name.
    consensus : str
        IUPAC consensus, 5' to 3'.
    max_mismatch : int
        Matches with up to this many mismatching positions count as hits (chosen so that a
        3 kb window of human sequence holds roughly 0.15-6 hits on average).
    source : str
        Where the consensus comes from.
    pwm : tuple of tuple of float, shape (k, 4), or None
        When given, a site is a position whose log-odds score (rows: positions; columns: A,
        C, G, T) reaches ``min_score`` on either strand, and ``consensus`` and
        ``max_mismatch`` are only descriptive (:mod:`epcli_bench.pwm_sites`).
    min_score : float
        The score threshold of a PWM site.
    """

    name: str
    consensus: str
    max_mismatch: int
    source: str
    pwm: tuple[tuple[float, ...], ...] | None = None
    min_score: float = 0.0


#: The motif set scanned in every window. Consensus sequences as given by JASPAR
#: (https://jaspar.elixir.no) for the named matrix, or by the cited paper.
MOTIFS: tuple[Motif, ...] = (
    Motif("CTCF", "CCGCGNGGNGGCAG", 2, "Kim et al. 2007 Cell 128:1231 core; cf. JASPAR MA0139"),
    Motif("AP1", "TGASTCA", 0, "JASPAR MA0099 (FOS::JUN), TPA response element"),
    Motif("CREB", "TGACGTCA", 1, "JASPAR MA0018 (CREB1), cAMP response element"),
    Motif("SP1", "GGGGCGGGG", 1, "JASPAR MA0079 (SP1), GC box"),
    Motif("NRF1", "GCGCATGCGC", 2, "JASPAR MA0506 (NRF1)"),
    Motif("ETS", "CCGGAAGT", 1, "JASPAR MA0062 (GABPA) / MA0028 (ELK1)"),
    Motif("EBOX", "CACGTG", 0, "JASPAR MA0059 (MAX::MYC) / MA0093 (USF1), E-box"),
    Motif("GATA", "WGATAR", 0, "JASPAR MA0035 (GATA1)"),
    Motif("NFY", "CCAAT", 0, "JASPAR MA0060 (NFYA), CCAAT box"),
    Motif("YY1", "AAGATGGCGGC", 2, "JASPAR MA0095 (YY1)"),
    Motif("CEBP", "TTGCGCAA", 1, "JASPAR MA0102 (CEBPA)"),
    Motif("RUNX", "TGTGGTT", 0, "JASPAR MA0002 (RUNX1)"),
    Motif("FOXA", "TGTTTAC", 0, "JASPAR MA0148 (FOXA1), forkhead core"),
    Motif("TEAD", "CATTCC", 0, "JASPAR MA0090 (TEAD1)"),
    Motif("NFKB", "GGGRNTTTCC", 1, "JASPAR MA0107 (RELA), kappa-B site"),
    Motif("IRF", "GAAANNGAAA", 0, "JASPAR MA0050 (IRF1), ISRE core"),
)

#: TFs whose activity differs between cell lines (lineage and signal-dependent factors).
CELL_TFS: tuple[str, ...] = ("AP1", "GATA", "CEBP", "RUNX", "FOXA", "TEAD", "NFKB", "IRF")

#: The cell-invariant interaction matrix W as (enhancer TF, promoter TF, weight). Invented
#: for the benchmark; CTCF-CTCF and YY1-YY1 echo CTCF-anchored loops and YY1 dimers bridging
#: enhancers and promoters (Weintraub et al. 2017 Cell 171:1573), the rest are arbitrary.
INTERACTIONS: tuple[tuple[str, str, float], ...] = (
    ("CTCF", "CTCF", 1.0),
    ("YY1", "YY1", 1.0),
    ("AP1", "NFY", 0.7),
    ("ETS", "ETS", 0.7),
    ("CREB", "SP1", 0.7),
    ("EBOX", "EBOX", 0.5),
    ("TEAD", "SP1", 0.5),
    ("GATA", "NRF1", -0.7),
)


@dataclass(frozen=True)
class Rule:
    """The motif part of a hidden rule: motifs scanned, the E x P interaction matrix W as
    (enhancer TF, promoter TF, weight), and the TFs whose activity differs between cells."""

    motifs: tuple[Motif, ...]
    interactions: tuple[tuple[str, str, float], ...]
    cell_tfs: tuple[str, ...]


#: The rule the project was developed on.
DEFAULT_RULE = Rule(MOTIFS, INTERACTIONS, CELL_TFS)


#: IUPAC code -> bases it stands for.
IUPAC: dict[str, str] = {
    "A": "A",
    "C": "C",
    "G": "G",
    "T": "T",
    "R": "AG",
    "Y": "CT",
    "S": "CG",
    "W": "AT",
    "K": "GT",
    "M": "AC",
    "B": "CGT",
    "D": "AGT",
    "H": "ACT",
    "V": "ACG",
    "N": "ACGT",
}
_COMPLEMENT = str.maketrans("ACGTRYSWKMBDHVN", "TGCAYRSWMKVHDBN")


def reverse_complement_iupac(consensus: str) -> str:
    """Reverse complement of an IUPAC consensus (``R`` <-> ``Y``, ``K`` <-> ``M``, ...)."""
    return consensus.upper().translate(_COMPLEMENT)[::-1]


def iupac_matrix(consensus: str) -> np.ndarray:
    """Which base codes each motif position accepts.

    Parameters
    ----------
    consensus : str
        IUPAC consensus of length k.

    Returns
    -------
    np.ndarray, shape (k, 5), bool
        ``[j, code]`` is True when base ``code`` (A,C,G,T,N = 0..4) matches position j.
        A sequence N never matches, not even a motif N.

    Raises
    ------
    UsageError
        If the consensus is empty or holds a letter that is not IUPAC.
    """
    cons = consensus.upper()
    if not cons:
        raise UsageError("motif consensus is empty")
    bad = sorted({ch for ch in cons if ch not in IUPAC})
    if bad:
        raise UsageError(
            f"motif consensus {consensus!r} holds non-IUPAC letters: {''.join(bad)}",
            hint="use A C G T R Y S W K M B D H V N",
        )
    mat = np.zeros((len(cons), 5), dtype=bool)
    for j, ch in enumerate(cons):
        for base in IUPAC[ch]:
            mat[j, "ACGT".index(base)] = True
    return mat


def _mismatches(codes: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Mismatch counts of every k-mer start; codes (n, L) -> (n, L - k + 1) uint8."""
    k = mat.shape[0]
    n_pos = codes.shape[1] - k + 1
    mm = np.zeros((codes.shape[0], n_pos), dtype=np.uint8)
    for j in range(k):
        mm += ~mat[j][codes[:, j : j + n_pos]]
    return mm


def motif_hits(codes: np.ndarray, consensus: str, max_mismatch: int = 0) -> np.ndarray:
    """Where a motif matches, on either strand.

    Parameters
    ----------
    codes : np.ndarray, shape (n, L) or (L,), uint8
        Base codes A,C,G,T,N = 0..4.
    consensus : str
        IUPAC consensus of length k (``L >= k``).
    max_mismatch : int
        Positions allowed to mismatch (a sequence N always mismatches).

    Returns
    -------
    np.ndarray, shape (n, L - k + 1) or (L - k + 1,), bool
        True at start ``i`` when ``codes[..., i:i+k]`` matches the consensus (forward strand)
        or its reverse complement (reverse strand). A palindromic site counts once.
    """
    arr = np.asarray(codes, dtype=np.uint8)
    squeeze = arr.ndim == 1
    if squeeze:
        arr = arr[None, :]
    k = len(consensus)
    if arr.shape[1] < k:
        raise UsageError(f"sequence of length {arr.shape[1]} is shorter than motif {consensus!r}")
    fwd = _mismatches(arr, iupac_matrix(consensus)) <= max_mismatch
    rev = _mismatches(arr, iupac_matrix(reverse_complement_iupac(consensus))) <= max_mismatch
    hits = fwd | rev
    return hits[0] if squeeze else hits


def site_hits(codes: np.ndarray, motif: Motif) -> np.ndarray:
    """Where a motif has a site: its consensus within ``max_mismatch`` mismatches
    (:func:`motif_hits`), or, for a motif with a PWM, a log-odds score of at least
    ``min_score`` (:func:`epcli_bench.pwm_sites.pwm_hits`).

    Parameters
    ----------
    codes : np.ndarray, shape (n, L), uint8
    motif : Motif

    Returns
    -------
    np.ndarray, shape (n, L - k + 1), bool
    """
    if motif.pwm is None:
        return motif_hits(codes, motif.consensus, motif.max_mismatch)
    return pwm_hits(codes, np.asarray(motif.pwm, dtype=np.float64), motif.min_score)


def motif_counts(
    codes: np.ndarray, motifs: Sequence[Motif] = MOTIFS, chunk: int = 256
) -> np.ndarray:
    """Number of hits of each motif in each window (both strands).

    Parameters
    ----------
    codes : np.ndarray, shape (n, L), uint8
        Windows as base codes.
    motifs : sequence of Motif
        The T motifs to count.
    chunk : int
        Windows scanned at a time (bounds memory to about ``chunk * L`` bytes per array).

    Returns
    -------
    np.ndarray, shape (n, T), int32
    """
    arr = np.asarray(codes, dtype=np.uint8)
    out = np.zeros((arr.shape[0], len(motifs)), dtype=np.int32)
    for lo in range(0, arr.shape[0], chunk):
        block = arr[lo : lo + chunk]
        for t, m in enumerate(motifs):
            out[lo : lo + chunk, t] = site_hits(block, m).sum(axis=1)
    return out


def motif_features(counts: np.ndarray) -> np.ndarray:
    """Standardised motif scores: ``log1p(count)`` as z-scores per motif (column).

    Parameters
    ----------
    counts : np.ndarray, shape (n, T)

    Returns
    -------
    np.ndarray, shape (n, T), float64
        Mean 0 and SD 1 per column; a column without variation is all zeros.
    """
    x = np.log1p(np.asarray(counts, dtype=np.float64))
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def gc_content(codes: np.ndarray) -> np.ndarray:
    """GC fraction of each window among its A/C/G/T bases (N left out).

    Parameters
    ----------
    codes : np.ndarray, shape (n, L), uint8
        Windows as base codes A,C,G,T,N = 0..4.

    Returns
    -------
    np.ndarray, shape (n,), float64
        ``(#C + #G) / (#A + #C + #G + #T)``; 0.5 for an all-N window.
    """
    arr = np.asarray(codes)
    gc = ((arr == 1) | (arr == 2)).sum(axis=1)
    acgt = (arr < _CODE_N).sum(axis=1)
    return np.where(acgt > 0, gc / np.maximum(acgt, 1), 0.5)


# --------------------------------------------------------------------------- config
@dataclass
class SynthConfig:
    """Parameters of a semi-synthetic set (everything random follows ``seed``).

    Attributes
    ----------
    seed : int
        Seed of every random step (anchor placement, TF sets, pair sampling, labels).
    chrom : str or None
        Contig to use; None takes the FASTA's first record.
    start, end : int or None
        Region of the contig (0-based, half-open); None for the contig's ends.
    n_enhancers, n_promoters : int
        Candidate anchors placed across the non-N part of the region.
    enhancer_anchor, promoter_anchor : int
        Lengths of the anchor intervals written to BEDPE (bp).
    enhancer_window, promoter_window : int
        Windows centred on anchor midpoints that the motif scan reads; they must equal the
        windows of the model (epcli's defaults, 3,000 and 2,000 bp).
    min_distance, max_distance : int
        Range of enhancer-promoter midpoint distances (bp).
    train_cells, unseen_cells : tuple of str
        Cell lines whose activity the training may see, and cell lines it must not see.
    n_active : int
        Active TFs per cell line, drawn from :data:`CELL_TFS`.
    pairs_per_cell : int
        Pairs per cell line (train and test regions together).
    common_pairs : bool
        True: every cell gets the same pairs (with its own labels); False: each cell draws its
        own pairs from the candidate pool.
    prevalence : float
        Target fraction of positive pairs per cell.
    n_blocks : int
        Contiguous blocks the non-N part of the region is cut into.
    test_blocks : tuple of int
        0-based indices of the blocks that form the test region.
    compat_scale, activity_scale, distance_slope : float
        a, b and c of the rule (SD of the compatibility term, SD of the activity term, logit
        drop per tenfold distance).
    composition_scale : float
        g of the rule: SD of the cell-invariant GC-composition term (0, the default, leaves
        it out).
    cell_composition_scale : float
        h of the rule: SD of a cell-specific term on the enhancer's GC, ``h * s_c * z(GC_E)``,
        whose sign ``s_c`` alternates over :attr:`cells` (+1 for the 1st, 3rd, ... cell, -1
        for the 2nd, 4th, ...); 0, the default, leaves it out. A cell-specific signal that a
        model can learn from little sequence, for testing adaptation.
    motif_set : str
        ``"default"``: the 16 motifs, interactions and cell TFs above (the rule the project
        was developed on); ``"jaspar:SEED"``: a rule drawn at random from JASPAR 2024 (16 TFs
        other than the default ones, their IUPAC consensus, 8 random E x P interactions, 8
        cell TFs; :func:`jaspar_rule`), for checking that a model does not depend on the
        development rule; ``"jaspar-pwm:SEED"``: the same, with sites defined by PWM
        log-odds thresholds instead of consensus matches.
    """

    seed: int = 0
    chrom: str | None = None
    start: int | None = None
    end: int | None = None
    n_enhancers: int = 240
    n_promoters: int = 80
    enhancer_anchor: int = 500
    promoter_anchor: int = 2000
    enhancer_window: int = DEFAULT_ENHANCER_WINDOW
    promoter_window: int = DEFAULT_PROMOTER_WINDOW
    min_distance: int = 5_000
    max_distance: int = 500_000
    train_cells: tuple[str, ...] = ("T1", "T2", "T3")
    unseen_cells: tuple[str, ...] = ("U1", "U2")
    n_active: int = 3
    pairs_per_cell: int = 600
    common_pairs: bool = True
    prevalence: float = 0.25
    n_blocks: int = 4
    test_blocks: tuple[int, ...] = (2,)
    compat_scale: float = 1.5
    activity_scale: float = 1.5
    distance_slope: float = 1.5
    composition_scale: float = 0.0
    cell_composition_scale: float = 0.0
    motif_set: str = "default"

    @property
    def cells(self) -> tuple[str, ...]:
        """Training cells, then unseen cells."""
        return tuple(self.train_cells) + tuple(self.unseen_cells)

    def validate(self) -> None:
        """Check that the parameters fit together.

        Raises
        ------
        UsageError
            Naming the first parameter that is out of range.
        """
        if self.seed < 0:
            raise UsageError(f"seed must be >= 0, got {self.seed}")
        scales = ("compat_scale", "activity_scale", "distance_slope")
        for name in (*scales, "composition_scale", "cell_composition_scale"):
            if not math.isfinite(getattr(self, name)):
                raise UsageError(f"{name} must be a finite number, got {getattr(self, name)}")
        for name in ("composition_scale", "cell_composition_scale"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("n_enhancers", "n_promoters", "pairs_per_cell", "n_active", "n_blocks"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("enhancer_anchor", "promoter_anchor", "enhancer_window", "promoter_window"):
            if getattr(self, name) < 20:
                raise UsageError(f"{name} must be >= 20 bp, got {getattr(self, name)}")
        if not 0 < self.min_distance < self.max_distance:
            raise UsageError(
                f"need 0 < min_distance < max_distance, got {self.min_distance}, "
                f"{self.max_distance}"
            )
        if not 0.0 < self.prevalence < 1.0:
            raise UsageError(f"prevalence must be in (0, 1), got {self.prevalence}")
        cells = self.cells
        if not self.train_cells:
            raise UsageError("at least one training cell is needed")
        if len(set(cells)) != len(cells) or any(not c or c != c.strip() for c in cells):
            raise UsageError(f"cell names must be unique and non-empty: {', '.join(cells)}")
        if any(ch in c for c in cells for ch in "\t\n/ "):
            raise UsageError("cell names may not hold tabs, spaces, newlines or '/'")
        n_tfs = 8  # cell TFs of every rule
        if self.n_active > n_tfs:
            raise UsageError(f"n_active must be <= {n_tfs}, got {self.n_active}")
        if len(cells) > math.comb(n_tfs, self.n_active):
            raise UsageError(
                f"{len(cells)} cells need distinct TF sets but only "
                f"{math.comb(n_tfs, self.n_active)} sets of {self.n_active} exist"
            )
        ms = self.motif_set
        kind, _, seed = ms.partition(":")
        if ms != "default" and not (kind in ("jaspar", "jaspar-pwm") and seed.isdigit()):
            raise UsageError(
                f"motif_set must be 'default', 'jaspar:SEED' or 'jaspar-pwm:SEED', got {ms!r}",
                hint="e.g. jaspar:1 draws a rule from JASPAR 2024 with seed 1; jaspar-pwm:1 "
                "one whose sites are PWM score hits",
            )
        tb = set(self.test_blocks)
        if not tb or any(not 0 <= b < self.n_blocks for b in tb) or len(tb) == self.n_blocks:
            raise UsageError(
                f"test_blocks must name some but not all of blocks 0..{self.n_blocks - 1}, "
                f"got {tuple(self.test_blocks)}"
            )


# ---------------------------------------------------------------------------- truth
@dataclass
class SynthTruth:
    """The hidden rule of a generated set, and each pair's terms.

    Attributes
    ----------
    config : SynthConfig
    chrom : str
        Contig the set lies on.
    blocks : list of (int, int, str)
        Region blocks ``(start, end, split)`` in contig coordinates.
    active : dict of str -> tuple of str
        Active TFs of every cell.
    tf_weights : dict of str -> float
        ``w_TF`` of the activity term.
    bias : dict of str -> float
        Per-cell bias solved for the target prevalence.
    terms : pandas.DataFrame
        One row per row of the generated table: ``compat`` (a * compat), ``activity``
        (b * activity), ``composition`` (g * composition), ``cell_composition`` (h * s_c *
        z(GC_E)), ``decay``, ``bias``, ``logit`` and ``zeroshot_logit`` (the rule with the
        training cells' mean of the cell-specific terms in place of the cell's own; no bias),
        i.e. the best score a model that does not know the cell can give.
    """

    config: SynthConfig
    chrom: str
    blocks: list[tuple[int, int, str]]
    active: dict[str, tuple[str, ...]]
    tf_weights: dict[str, float]
    bias: dict[str, float]
    terms: pd.DataFrame = field(repr=False)
    rule: Rule = DEFAULT_RULE

    def to_json(self) -> dict:
        """The rule as a JSON-serialisable dict (no per-pair terms)."""
        return {
            "format": "epcli-synth-rule",
            "version": 1,
            "config": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()
            },
            "chrom": self.chrom,
            "blocks": [list(b) for b in self.blocks],
            "motifs": [asdict(m) for m in self.rule.motifs],
            "interactions": [list(t) for t in self.rule.interactions],
            "cell_tfs": list(self.rule.cell_tfs),
            "tf_weights": self.tf_weights,
            "active": {c: list(v) for c, v in self.active.items()},
            "bias": self.bias,
            "roles": {
                c: ("train" if c in self.config.train_cells else "unseen") for c in self.active
            },
        }


def _rng(seed: int, *stage: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stage])


def _blocks(lo: int, hi: int, cfg: SynthConfig) -> list[tuple[int, int, str]]:
    edges = np.linspace(lo, hi, cfg.n_blocks + 1).round().astype(np.int64)
    test = set(cfg.test_blocks)
    return [
        (int(edges[i]), int(edges[i + 1]), SPLIT_TEST if i in test else SPLIT_TRAIN)
        for i in range(cfg.n_blocks)
    ]


def _place_anchors(
    rng: np.random.Generator,
    n: int,
    anchor: int,
    window: int,
    blocks: list[tuple[int, int, str]],
    n_prefix: np.ndarray,
    offset: int,
    taken: list[tuple[int, int]],
    kind: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random anchors spread evenly over the blocks; windows inside a block and N-free.

    ``taken`` (sorted, disjoint intervals of placed anchors) is updated in place. Returns
    anchor starts, ends and block indices, each shape (n,), sorted by start.
    """
    per_block = [len(a) for a in np.array_split(np.arange(n), len(blocks))]
    starts: list[int] = []
    blk: list[int] = []
    half_lo = max(window // 2, anchor // 2)
    half_hi = max(window - window // 2, anchor - anchor // 2)
    taken_starts = [s for s, _ in taken]
    for b, ((bs, be, _), want) in enumerate(zip(blocks, per_block, strict=True)):
        lo, hi = bs + half_lo, be - half_hi
        if hi <= lo and want:
            raise UsageError(f"region blocks are too short for {window} bp {kind} windows")
        got, tries = 0, 0
        while got < want:
            tries += 1
            if tries > 200 * want + 1000:
                raise UsageError(
                    f"could not place {n} non-overlapping N-free {kind} anchors in the region",
                    hint="lower the number of anchors or use a larger region",
                )
            mid = int(rng.integers(lo, hi))
            s = mid - anchor // 2
            e = s + anchor
            ws = mid - window // 2
            we = ws + window
            if n_prefix[we - offset] - n_prefix[ws - offset] > 0:
                continue
            i = bisect.bisect_left(taken_starts, s)
            if i > 0 and taken[i - 1][1] > s:
                continue
            if i < len(taken) and taken[i][0] < e:
                continue
            taken.insert(i, (s, e))
            taken_starts.insert(i, s)
            starts.append(s)
            blk.append(b)
            got += 1
    order = np.argsort(starts, kind="stable")
    st = np.asarray(starts, dtype=np.int64)[order]
    return st, st + anchor, np.asarray(blk, dtype=np.int64)[order]


def _solve_bias(logit: np.ndarray, prevalence: float) -> float:
    """Bias with ``mean(sigmoid(logit + bias)) == prevalence`` (bisection)."""
    lo, hi = -60.0 - float(logit.max()), 60.0 - float(logit.min())
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if _sigmoid(logit + mid).mean() < prevalence:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / (sd if sd > 0 else 1.0)


def _tf_sets(
    cfg: SynthConfig, cell_tfs: tuple[str, ...] = CELL_TFS
) -> tuple[dict[str, tuple[str, ...]], dict[str, float]]:
    rng = _rng(cfg.seed, 2)
    weights = {
        tf: float(round(w, 3))
        for tf, w in zip(cell_tfs, rng.uniform(0.5, 1.5, len(cell_tfs)), strict=True)
    }
    seen: set[frozenset[str]] = set()
    active: dict[str, tuple[str, ...]] = {}
    for cell in cfg.cells:
        while True:
            pick = frozenset(rng.choice(len(cell_tfs), cfg.n_active, replace=False).tolist())
            if pick not in seen:
                break
        seen.add(pick)
        active[cell] = tuple(cell_tfs[i] for i in sorted(pick))
    return active, weights


def generate_with_truth(
    cfg: SynthConfig, fasta: str | os.PathLike
) -> tuple[pd.DataFrame, SynthTruth]:
    """Generate a semi-synthetic pair set and keep its rule.

    Parameters
    ----------
    cfg : SynthConfig
    fasta : str or path-like
        Indexed (or indexable) FASTA holding ``cfg.chrom``.

    Returns
    -------
    df : pandas.DataFrame
        Columns :data:`SYNTH_COLUMNS`; one row per (pair, cell), cells in ``cfg.cells`` order,
        then sorted by enhancer and promoter start.
    truth : SynthTruth
        The rule and every row's terms (aligned with ``df``).

    Raises
    ------
    EpcliError
        If the FASTA cannot be read or lacks the contig.
    UsageError
        If the configuration does not fit the region.
    """
    cfg.validate()
    with Genome(fasta) as genome:
        chrom = cfg.chrom if cfg.chrom is not None else next(iter(genome.lengths))
        if chrom not in genome.lengths:
            raise genome.missing_chrom_error(chrom, None, None)
        clen = genome.lengths[chrom]
        r0 = 0 if cfg.start is None else cfg.start
        r1 = clen if cfg.end is None else min(cfg.end, clen)
        if not 0 <= r0 < r1:
            raise UsageError(f"region {chrom}:{r0}-{r1} is empty or outside the contig")
        codes, _ = genome.window(chrom, r0, r1)
    is_n = codes == _CODE_N
    if is_n.all():
        raise EpcliError(f"region {chrom}:{r0}-{r1} is all N", path=fasta)
    n_prefix = np.concatenate([[0], np.cumsum(is_n, dtype=np.int64)])
    real = np.flatnonzero(~is_n)
    blocks = _blocks(r0 + int(real[0]), r0 + int(real[-1]) + 1, cfg)

    # anchors: promoters first (longer), then enhancers; no two anchors overlap
    rng = _rng(cfg.seed, 1)
    taken: list[tuple[int, int]] = []
    p_s, p_e, p_blk = _place_anchors(
        rng,
        cfg.n_promoters,
        cfg.promoter_anchor,
        cfg.promoter_window,
        blocks,
        n_prefix,
        r0,
        taken,
        "promoter",
    )
    e_s, e_e, e_blk = _place_anchors(
        rng,
        cfg.n_enhancers,
        cfg.enhancer_anchor,
        cfg.enhancer_window,
        blocks,
        n_prefix,
        r0,
        taken,
        "enhancer",
    )
    e_mid, p_mid = (e_s + e_e) // 2, (p_s + p_e) // 2
    ews, _ = window_bounds(e_s, e_e, cfg.enhancer_window)
    pws, _ = window_bounds(p_s, p_e, cfg.promoter_window)
    e_codes = codes[(ews - r0)[:, None] + np.arange(cfg.enhancer_window)]
    p_codes = codes[(pws - r0)[:, None] + np.arange(cfg.promoter_window)]
    rule = DEFAULT_RULE if cfg.motif_set == "default" else jaspar_rule(cfg.motif_set, codes)
    fe = motif_features(motif_counts(e_codes, rule.motifs))
    fp = motif_features(motif_counts(p_codes, rule.motifs))

    # candidate pool: both anchors in one block, distance in range
    pe, pp = [], []
    for b in range(len(blocks)):
        ei, pi = np.flatnonzero(e_blk == b), np.flatnonzero(p_blk == b)
        d = np.abs(p_mid[pi][None, :] - e_mid[ei][:, None])
        r, c = np.nonzero((d >= cfg.min_distance) & (d <= cfg.max_distance))
        pe.append(ei[r])
        pp.append(pi[c])
    pool_e, pool_p = np.concatenate(pe), np.concatenate(pp)
    if pool_e.size < cfg.pairs_per_cell:
        raise UsageError(
            f"only {pool_e.size} candidate pairs exist, fewer than pairs_per_cell="
            f"{cfg.pairs_per_cell}",
            hint="place more anchors (n_enhancers, n_promoters) or ask for fewer pairs",
        )
    pool_d = np.abs(p_mid[pool_p] - e_mid[pool_e])

    # cell-invariant terms over the pool
    idx = {m.name: t for t, m in enumerate(rule.motifs)}
    compat = np.zeros(pool_e.size)
    for tf_e, tf_p, w in rule.interactions:
        compat += w * fe[pool_e, idx[tf_e]] * fp[pool_p, idx[tf_p]]
    compat = cfg.compat_scale * _zscore(compat)
    decay = -cfg.distance_slope * np.log10(pool_d.astype(np.float64))
    # GC composition of both windows (A/B-compartment-like): z(GC_E) + z(GC_P), SD 1 * g
    gc_e = _zscore(gc_content(e_codes))[pool_e]
    comp = cfg.composition_scale * _zscore(gc_e + _zscore(gc_content(p_codes))[pool_p])
    # cell-specific enhancer GC: h * s_c * z(GC_E), s_c = +1, -1, +1, ... over cfg.cells
    gc_e = _zscore(gc_e)
    cell_comp = {
        c: cfg.cell_composition_scale * (1.0 if i % 2 == 0 else -1.0) * gc_e
        for i, c in enumerate(cfg.cells)
    }
    cell_comp_pop = np.mean([cell_comp[c] for c in cfg.train_cells], axis=0)

    active, weights = _tf_sets(cfg, rule.cell_tfs)
    wvec = np.array([weights[tf] for tf in rule.cell_tfs])
    cell_cols = [idx[tf] for tf in rule.cell_tfs]

    def activity_raw(tfs: Sequence[str]) -> np.ndarray:
        on = np.array([tf in tfs for tf in rule.cell_tfs], dtype=np.float64)
        return fe[pool_e][:, cell_cols] @ (wvec * on)

    act = {c: cfg.activity_scale * _zscore(activity_raw(active[c])) for c in cfg.cells}
    act_pop = np.mean([act[c] for c in cfg.train_cells], axis=0)

    # pairs per cell, log-uniform in distance (weights 1/d)
    p_pool = 1.0 / pool_d
    p_pool /= p_pool.sum()

    def draw(*stage: int) -> np.ndarray:
        pick = _rng(cfg.seed, 3, *stage).choice(
            pool_e.size, cfg.pairs_per_cell, replace=False, p=p_pool
        )
        return pick[np.lexsort((p_s[pool_p[pick]], e_s[pool_e[pick]]))]

    common = draw() if cfg.common_pairs else None
    frames, terms, bias = [], [], {}
    for ci, cell in enumerate(cfg.cells):
        rows = common if common is not None else draw(ci + 1)
        base = compat[rows] + act[cell][rows] + comp[rows] + cell_comp[cell][rows] + decay[rows]
        bias[cell] = round(_solve_bias(base, cfg.prevalence), 6)
        logit = base + bias[cell]
        prob = _sigmoid(logit)
        label = (_rng(cfg.seed, 4, ci).random(rows.size) < prob).astype(np.int8)
        ei, pi = pool_e[rows], pool_p[rows]
        n = rows.size
        frames.append(
            pd.DataFrame(
                {
                    "chrom1": chrom,
                    "start1": e_s[ei],
                    "end1": e_e[ei],
                    "chrom2": chrom,
                    "start2": p_s[pi],
                    "end2": p_e[pi],
                    "name": [f"E{a:05d}:P{b:05d}" for a, b in zip(ei, pi, strict=True)],
                    "score": [schema.MISSING] * n,
                    "strand1": [schema.MISSING] * n,
                    "strand2": [schema.MISSING] * n,
                    schema.COL_CELL: cell,
                    schema.COL_LABEL: label,
                    COL_SPLIT: [blocks[b][2] for b in e_blk[ei]],
                    COL_TRUE_PROB: prob,
                }
            )
        )
        terms.append(
            pd.DataFrame(
                {
                    "compat": compat[rows],
                    "activity": act[cell][rows],
                    "composition": comp[rows],
                    "cell_composition": cell_comp[cell][rows],
                    "decay": decay[rows],
                    "bias": bias[cell],
                    "logit": logit,
                    "zeroshot_logit": compat[rows]
                    + act_pop[rows]
                    + comp[rows]
                    + cell_comp_pop[rows]
                    + decay[rows],
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    truth = SynthTruth(
        config=cfg,
        chrom=chrom,
        blocks=blocks,
        active=active,
        tf_weights=weights,
        bias=bias,
        terms=pd.concat(terms, ignore_index=True),
        rule=rule,
    )
    return df, truth


def iupac_consensus(counts: np.ndarray) -> str:
    """IUPAC consensus of a count matrix (Cavener's rules), N-trimmed at both ends.

    A column is one base when its frequency exceeds 0.5 and twice the second's, the two-base
    code when the top two exceed 0.75 together, else N (:meth:`epcli.motifs.Motif.iupac`,
    written as a string).

    Parameters
    ----------
    counts : np.ndarray, shape (4, k)
    """
    allowed = MotifMatrix("", "", np.asarray(counts, float)).iupac()
    code = {frozenset(v): k for k, v in IUPAC.items()}
    return "".join(code[frozenset("ACGT"[i] for i in np.flatnonzero(col))] for col in allowed.T)


def _consensus_motif(name: str, cons: str, source: str, sample: np.ndarray) -> Motif | None:
    """A consensus-site motif with the largest mismatch allowance (0-2) that gives 0.15-6
    mean hits per sample window, or None when none does."""
    best = None
    for mm in (0, 1, 2):
        hits = motif_hits(sample, cons, mm).sum(axis=1).mean()
        if 0.15 <= hits <= 6:
            best = mm
    return None if best is None else Motif(name, cons, best, source)


def _pwm_motif(
    name: str,
    cons: str,
    source: str,
    counts: np.ndarray,
    sample: np.ndarray,
    rng: np.random.Generator,
) -> Motif | None:
    """A PWM-site motif whose threshold gives a mean of 0.3-3 sites (log-uniform) per sample
    window, or None when that threshold is below 60% of the best possible score."""
    lo = logodds_from_counts(counts)
    rate = float(np.exp(rng.uniform(np.log(0.3), np.log(3.0))))
    thr = threshold_for_rate(sample, lo, rate)
    best, worst = lo.max(axis=1).sum(), lo.min(axis=1).sum()
    if (thr - worst) / (best - worst) < 0.6:
        return None
    pwm = tuple(tuple(round(float(v), 6) for v in row) for row in lo)
    return Motif(name, cons, 0, source + f", PWM sites at score >= {thr:.3f}", pwm, thr)


def jaspar_rule(spec: str, region_codes: np.ndarray, n_motifs: int = 16) -> Rule:
    """A random rule from JASPAR 2024 CORE vertebrates (``spec = "jaspar:SEED"`` or
    ``"jaspar-pwm:SEED"``).

    Draws ``n_motifs`` TFs (distinct names, none of the default rule's families by JASPAR
    ID) whose IUPAC consensus has 6-14 positions with at least 5 specific ones. With
    ``jaspar:``, a site is a consensus match: each TF gets the largest mismatch allowance
    (0-2) that keeps its mean hits per 3 kb window of the region within 0.15-6 (motifs
    outside that range are skipped). With ``jaspar-pwm:``, a site is a log-odds score at or
    above a threshold (:mod:`epcli_bench.pwm_sites`) set so that a 3 kb window of the region
    holds a mean number of sites drawn log-uniformly from 0.3-3; a TF whose threshold falls
    below 60% of its best possible score is skipped (its "sites" would be noise). Then 8 E x
    P interactions between them (weights of either sign, 0.5-1.0 in size) and 8 cell TFs.

    Parameters
    ----------
    spec : str
        ``"jaspar:SEED"`` or ``"jaspar-pwm:SEED"``.
    region_codes : np.ndarray, shape (L,), uint8
        The region's sequence, for calibrating hit rates.
    """
    from epcli.motifs import load_motifs

    kind, seed_text = spec.split(":", 1)
    seed = int(seed_text)
    rng = _rng(seed, 9)
    dev_ids = {"MA0139", "MA0099", "MA0018", "MA0079", "MA0506", "MA0062", "MA0028", "MA0059",
               "MA0093", "MA0035", "MA0060", "MA0095", "MA0102", "MA0002", "MA0148", "MA0090",
               "MA0107", "MA0050"}  # fmt: skip
    ms = load_motifs("jaspar2024")
    order = rng.permutation(len(ms))
    real = region_codes[region_codes < _CODE_N]
    n_win = min(200, max(real.size // 3000, 1))
    sample = real[: n_win * 3000].reshape(n_win, 3000)
    picked: list[Motif] = []
    names: set[str] = set()
    for i in order:
        m = ms.motifs[int(i)]
        name = "".join(ch if ch.isalnum() else "_" for ch in m.name.upper())
        cons = iupac_consensus(m.counts)
        specific = sum(ch in "ACGT" for ch in cons)
        if m.id.split(".")[0] in dev_ids or name in names or not 6 <= len(cons) <= 14:
            continue
        if specific < 5:
            continue
        source = f"JASPAR 2024 {m.id} ({m.name})"
        if kind == "jaspar-pwm":
            motif = _pwm_motif(name, cons, source, m.counts, sample, rng)
        else:
            motif = _consensus_motif(name, cons, source, sample)
        if motif is None:
            continue
        picked.append(motif)
        names.add(name)
        if len(picked) == n_motifs:
            break
    if len(picked) < n_motifs:
        raise UsageError(f"could not draw {n_motifs} usable JASPAR motifs for {spec}")
    tf = [m.name for m in picked]
    inter = []
    seen = set()
    while len(inter) < 8:
        a, b = (tf[int(j)] for j in rng.integers(0, len(tf), 2))
        if (a, b) in seen:
            continue
        seen.add((a, b))
        w = float(round(rng.uniform(0.5, 1.0) * (1 if rng.random() < 0.75 else -1), 2))
        inter.append((a, b, w))
    cell = tuple(tf[int(j)] for j in rng.choice(len(tf), 8, replace=False))
    return Rule(tuple(picked), tuple(inter), cell)


def generate(cfg: SynthConfig, fasta: str | os.PathLike) -> pd.DataFrame:
    """Generate a semi-synthetic pair set (see :func:`generate_with_truth`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SYNTH_COLUMNS`: the ten BEDPE columns, then ``cell``, ``label``,
        ``split`` ("train"/"test") and ``true_prob``.
    """
    return generate_with_truth(cfg, fasta)[0]


def write_bedpe(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a generated table as BEDPE with a ``#chrom1 ... cell label split true_prob`` header.

    Parameters
    ----------
    df : pandas.DataFrame
        A table from :func:`generate` (or rows of it).
    path : str or path-like
        Output file (written atomically; ``.gz`` is gzipped; ``-`` is stdout).
    """
    with open_text_output(path) as fh:
        fh.write("#" + "\t".join(SYNTH_COLUMNS) + "\n")
        cols = [
            [f"{v:.6f}" for v in df[c].to_numpy(np.float64)]
            if c == COL_TRUE_PROB
            else df[c].astype(str).tolist()
            for c in SYNTH_COLUMNS
        ]
        fh.writelines("\t".join(r) + "\n" for r in zip(*cols, strict=True))


def write_set(
    df: pd.DataFrame, truth: SynthTruth, folder: str | os.PathLike, genome_name: str
) -> dict:
    """Write a generated set: ``<cell>.bedpe`` per cell and ``rule.json``.

    Parameters
    ----------
    df, truth : pandas.DataFrame, SynthTruth
        The output of :func:`generate_with_truth`.
    folder : str or path-like
        Created if missing; files in it are replaced (each written atomically).
    genome_name : str
        File name of the FASTA, recorded in ``rule.json`` as ``genome``.

    Returns
    -------
    dict
        The rule as written (:meth:`SynthTruth.to_json` plus ``genome``).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for cell in truth.config.cells:
        write_bedpe(df[df[schema.COL_CELL] == cell], out / f"{cell}.bedpe")
    rule = truth.to_json()
    rule["genome"] = genome_name
    with open_text_output(out / "rule.json") as fh:
        fh.write(json.dumps(rule, indent=1) + "\n")
    return rule


def aupr_by_cell(df: pd.DataFrame, score: np.ndarray | str) -> pd.Series:
    """Average precision of a score against ``label``, per cell.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows with ``cell`` and ``label`` (0/1).
    score : np.ndarray of shape (n,), or str
        Scores, higher = more likely to interact, or the name of a column of ``df``.

    Returns
    -------
    pandas.Series
        AUPR indexed by cell, in order of first appearance; NaN for a cell without both classes.
    """
    s = df[score].to_numpy(np.float64) if isinstance(score, str) else np.asarray(score, float)
    out = {}
    cells = df[schema.COL_CELL].to_numpy()
    labels = df[schema.COL_LABEL].to_numpy()
    for cell in pd.unique(cells):
        m = cells == cell
        y = labels[m]
        out[cell] = average_precision_score(y, s[m]) if 0 < y.sum() < y.size else float("nan")
    return pd.Series(out, name="aupr", dtype=np.float64)


def oracle_aupr(df: pd.DataFrame) -> pd.Series:
    """AUPR of the true probability per cell: the ceiling any model can reach on these labels."""
    return aupr_by_cell(df, COL_TRUE_PROB)


def distance_aupr(df: pd.DataFrame) -> pd.Series:
    """AUPR of minus the midpoint distance per cell (the distance-only floor)."""
    e = (df["start1"].to_numpy(np.int64) + df["end1"].to_numpy(np.int64)) // 2
    p = (df["start2"].to_numpy(np.int64) + df["end2"].to_numpy(np.int64)) // 2
    return aupr_by_cell(df, -np.abs(p - e).astype(np.float64))
