"""Random labeled cis pairs on the real hg38 piece, shared by the speed benchmarks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GENOME = REPO / "example_data" / "genome" / "hg38_chr20_0-3000000.fa"
CELLS: tuple[str, ...] = ("GM12878", "K562", "HeLa", "IMR90")
HEADER = "#chrom1\tstart1\tend1\tchrom2\tstart2\tend2\tname\tscore\tstrand1\tstrand2\tcell\tlabel\n"


def write_random_pairs(
    path: Path,
    n_pairs: int,
    n_enh: int,
    n_pro: int,
    seed: int = 0,
    enh_len: tuple[int, int] = (200, 2000),
    cells: Sequence[str] = CELLS,
) -> None:
    """Write ``n_pairs`` random cis pairs over ``n_enh`` enhancers and ``n_pro`` promoters.

    Anchors lie in chr20:70,000-2,990,000 (past the leading run of N): enhancers of a random
    length in ``enh_len``, promoters of 2 kb. Each pair picks one enhancer and one promoter
    uniformly at random, a cell from ``cells`` and a label ~ Bernoulli(0.25), all seeded.
    """
    rng = np.random.default_rng(seed)
    e_start = rng.choice(np.arange(70_000, 2_990_000, 7), n_enh, replace=False)
    e_len = rng.integers(enh_len[0], enh_len[1] + 1, n_enh)
    p_start = rng.choice(np.arange(70_000, 2_990_000, 11), n_pro, replace=False)
    ei = rng.integers(0, n_enh, n_pairs)
    pi = rng.integers(0, n_pro, n_pairs)
    cell = np.array(list(cells))[rng.integers(0, len(cells), n_pairs)]
    labels = (rng.random(n_pairs) < 0.25).astype(int)
    with open(path, "w") as fh:
        fh.write(HEADER)
        for k in range(n_pairs):
            a, b = e_start[ei[k]], p_start[pi[k]]
            fh.write(
                f"chr20\t{a}\t{a + e_len[ei[k]]}\tchr20\t{b}\t{b + 2000}\tpair{k}\t.\t.\t+"
                f"\t{cell[k]}\t{labels[k]}\n"
            )


def write_reuse_pairs(path: Path, n_pairs: int, reuse: int, seed: int = 0) -> int:
    """Write ``n_pairs`` random cis pairs in which every anchor is in exactly ``reuse`` pairs.

    ``n_pairs // reuse`` enhancers and as many promoters (2 kb) on chr20:70,000-2,990,000;
    each anchor index is repeated ``reuse`` times and the two index lists are shuffled
    independently, so the pairs come in random order (an anchor's pairs are spread over the
    whole file, as in a genome-wide candidate list split into chunks). Returns the number of
    anchors per side.
    """
    rng = np.random.default_rng(seed)
    n_anchor = n_pairs // reuse
    e_start = rng.choice(np.arange(70_000, 2_990_000, 7), n_anchor, replace=False)
    e_len = rng.integers(200, 2001, n_anchor)
    p_start = rng.choice(np.arange(70_000, 2_990_000, 11), n_anchor, replace=False)
    ei = rng.permutation(np.repeat(np.arange(n_anchor), reuse))
    pi = rng.permutation(np.repeat(np.arange(n_anchor), reuse))
    with open(path, "w") as fh:
        fh.write(HEADER)
        for k in range(ei.size):
            a, b = e_start[ei[k]], p_start[pi[k]]
            fh.write(
                f"chr20\t{a}\t{a + e_len[ei[k]]}\tchr20\t{b}\t{b + 2000}\tpair{k}\t.\t.\t+"
                f"\tGM12878\t0\n"
            )
    return n_anchor
