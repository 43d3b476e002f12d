"""Test helpers shared by the suites: paths to test data, a subprocess CLI runner, a tiny
model configuration (the fixtures live in the repository's conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
EXAMPLE = REPO / "example_data"
HG38_PIECE = EXAMPLE / "genome" / "hg38_chr20_0-3000000.fa"


@dataclass
class CliResult:
    """Outcome of one CLI call."""

    code: int
    stdout: str
    stderr: str


def run_subprocess(*args: object, stdin: bytes | None = None, cwd: Path | None = None) -> CliResult:
    """Run ``python -m epcli ARGS`` in a child process (for stdin/stdout pipelines)."""
    proc = subprocess.run(
        [sys.executable, "-m", "epcli", *[str(a) for a in args]],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=600,
    )
    return CliResult(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def tiny_model_config(kind: str = "prism-scratch"):
    """A ModelConfig small enough for unit tests (d_model 16, two pooling stages, no dropout;
    the motif model ``prism`` scans the six motifs of ``tests/data/tiny_motifs.jaspar``)."""
    from epcli.model.config import ModelConfig

    return ModelConfig(
        kind=kind,
        motifs=str(TEST_DATA / "tiny_motifs.jaspar"),
        d_model=16,
        pools=(4, 4),
        stem_kernel=9,
        ms_kernels=(5, 9),
        n_heads=2,
        env_dim=4,
        dropout=0.0,
    )


def tiny_motif_model(seed: int = 0, **kw):
    """A motif prism over the six motifs of ``tests/data/tiny_motifs.jaspar`` (PWM layer set,
    no consensus matrices); ``kw`` overrides fields of :func:`tiny_model_config`."""
    import dataclasses

    from epcli.model.registry import build_model
    from epcli.motifs import load_motifs

    ms = load_motifs(TEST_DATA / "tiny_motifs.jaspar")
    base = dict(motif_ids=ms.ids, motif_names=ms.names, motif_width=ms.max_length)
    cfg = dataclasses.replace(tiny_model_config("prism"), **{**base, **kw})
    m = build_model(cfg, seed=seed)
    w, lengths, _ = ms.log_odds_tensor()
    m.set_motifs(w, lengths)
    return m


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` and return the path."""
    path.write_text(text)
    return path


def reads_only(m, col: int, weight: float = 2.5) -> None:
    """Make motif model ``m``'s U_I ``-1 + weight * z_E[col] * z_P[col]``: one E x P pair on
    activity column ``col``, no other term or gate."""
    import torch

    with torch.no_grad():
        for p in (m.w_e, m.w_p, m.u, m.v, m.gate):
            p.zero_()
        m.u[0, col] = weight
        m.v[0, col] = 1.0
        m.bias.fill_(-1.0)


def pair_u_i(m, ei, pi):
    """U_I of pairs (enhancer and promoter window rows ``ei``, ``pi``) of a motif model that
    has only its E x P interaction and bias, from activities (z_E, z_P)."""
    import torch

    ei, pi = torch.as_tensor(ei), torch.as_tensor(pi)
    return lambda z: m.bias + ((z[0] @ m.u.T)[ei] * (z[1] @ m.v.T)[pi]).sum(-1)


def random_windows(n: int, length: int, seed: int):
    """``n`` uniformly random windows of base codes A, C, G, T, shape (n, length), uint8."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, 4, size=(n, length)).astype(np.uint8)


def product_pairs(m, enh, pro, counts, seed: int, n: int = 8000):
    """Pairs of windows labelled by the product of a site's standardised ``log1p`` counts
    on both sides, ``logit = 2.5 x_E x_P - 1``, with motif model ``m`` standardised over
    the windows' statistics.

    Parameters
    ----------
    m : MotifPrismModel
    enh, pro : np.ndarray, shapes (Ne, L) and (Np, L), uint8
    counts : (np.ndarray, np.ndarray), shapes (Ne,) and (Np,)
        The site's count in each window (each must vary).
    seed : int
    n : int
        Pairs; the second half is the held-out block.

    Returns
    -------
    (se, sp), (ei, pi), y, held
        The windows' statistics, each pair's windows, its 0/1 label (a float tensor) and
        whether it is held out.
    """
    import numpy as np
    import torch

    x = []
    for c in counts:
        c = np.log1p(np.asarray(c, dtype=np.float64))
        assert c.std() > 0
        x.append((c - c.mean()) / c.std())
    se, sp = m.scan_stats(enh), m.scan_stats(pro)
    m.fit_normalization(se, sp)
    rng = np.random.default_rng(seed + 2)
    ei, pi = rng.integers(0, len(enh), n), rng.integers(0, len(pro), n)
    p = 1 / (1 + np.exp(-(2.5 * x[0][ei] * x[1][pi] - 1)))
    y = torch.as_tensor(rng.random(n) < p, dtype=torch.float32)
    return (se, sp), (ei, pi), y, np.arange(n) >= n // 2
