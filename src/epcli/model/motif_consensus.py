"""The string of each consensus or core view that U_I reads, edited on held-out pairs.

A consensus view counts the matches of a matrix's IUPAC consensus (Cavener's rules), or of
its most informative 8, 6 or 5 bp core, with at most 0, 1 or 2 mismatches. Sites written
by hand or called by a consensus scanner often differ from such a string by a base or two:
a position left open (IRF's ``GAAANNGAAA`` against Stat2's ``GAAACAGAAA``, NF-kB's
``GGGRNTTTCC`` against RELA's ``GGGRATTTCC``), a two-base code taken as one base
(NRF1's ``GCGCATGCGC`` against Nrf1's ``GCGCMTGCGC``), a site a base shorter or longer than
the matrix's core. Such a count then matches the sites poorly (r 0.5-0.7 for those three on
the development rule), and no other view of JASPAR fits them better, while one or two edits
of the string fit them exactly (r 1.00; docs/benchmarks.md).

So, once the warm start has chosen its views, each consensus or core view that an E x P
pair reads, and each of the :data:`ADDITIVE_EDITS` such views with the largest additive
weights (:func:`~epcli.model.motif_levels.swappable`), tries every single edit of its
matrix's string for that site model (:func:`edits`): open an inner position (N), narrow a
two-base code to one of its bases, drop an end base, or add the base of the matrix's whole
consensus next to an end. Each edit is counted at each mismatch allowance of the site
model, the view's weight at its best scale on the held-out genome block
(:meth:`~epcli.model.motif_levels.ViewSearch.fit_weight`). The best is kept when it lowers
the held-out deviance by :data:`EDIT_GAIN` below the view as it is (also at its best
weight), and lowers it on each half of the block's enhancer windows; the search goes on
from it, at most :data:`MAX_EDITS` edits. This searches the prior's neighbourhood; it
does not discover motifs: a string keeps at least
:data:`~epcli.motifs.CORE_MIN_SPECIFIC` specific positions, and every base it names is
one the matrix's consensus names.

The edited string lives in the scanner's consensus matrices (``cons``, ``cons_len``,
``cons_edited``), which are saved with the weights, so ``predict``, ``explain`` and
``adapt`` count what training counted; its views are named by it
(``Stat2 [consensus edited to GAAANNGAAA, <=1 mismatch]``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from epcli.model.motif_kernels import scan_input
from epcli.model.motif_levels import ViewSearch, refine_levels, swappable
from epcli.motifs.pwm import CORE_MIN_SPECIFIC, iupac_string

#: Additive consensus and core views edited beside the E x P pairs' (those of the largest
#: weights): they carry the training cells' mean TF activity, and R_E's gates read them.
ADDITIVE_EDITS = 12
#: Edits kept for one view at most (each must lower the held-out deviance).
MAX_EDITS = 4
#: Held-out deviance (mean per pair) an edit must save, and it must lower the deviance of
#: both halves of the block's enhancer windows. An edit is chosen among hundreds tried on
#: the same block: with the level search's 1e-4 and no halves, the development rule took 12
#: edits, of which 7 of TFs it does not plant, and its unseen cells lost 0.009 zero-shot.
EDIT_GAIN = 5e-4


def edits(cur: np.ndarray, ref: np.ndarray | None, at: int | None, width: int) -> list:
    """Every single edit of a consensus string.

    Parameters
    ----------
    cur : np.ndarray, shape (4, k), bool
        The string as allowed bases.
    ref : np.ndarray, shape (4, K0), bool, optional
        The matrix's whole consensus, whose end neighbours an edit may add.
    at : int, optional
        Where ``cur`` starts in ``ref`` (None: it is not a window of it).
    width : int
        The longest string the scanner holds.

    Returns
    -------
    list of (np.ndarray, int or None)
        Each edited string (4, k') and where it starts in ``ref``: an inner position opened
        (N), a two-base position narrowed to each of its bases, an end base dropped, a
        neighbour of ``ref`` added at either end; open ends are trimmed, and a string with
        fewer than :data:`~epcli.motifs.CORE_MIN_SPECIFIC` specific positions, or longer
        than ``width``, is left out.
    """
    k = cur.shape[1]
    out: list[tuple[np.ndarray, int | None]] = [
        (cur[:, 1:], None if at is None else at + 1),
        (cur[:, :-1], at),
    ]
    if ref is not None and at is not None:
        if at > 0:
            out.append((np.concatenate([ref[:, at - 1 : at], cur], axis=1), at - 1))
        if at + k < ref.shape[1]:
            out.append((np.concatenate([cur, ref[:, at + k : at + k + 1]], axis=1), at))
    for i in range(1, k - 1):
        n = int(cur[:, i].sum())
        if n < 4:
            opened = cur.copy()
            opened[:, i] = True
            out.append((opened, at))
        if n == 2:
            for b in np.flatnonzero(cur[:, i]):
                narrow = cur.copy()
                narrow[:, i] = False
                narrow[b, i] = True
                out.append((narrow, at))
    kept = []
    for s, a in out:
        specific = s.sum(0) < 4
        if specific.sum() < CORE_MIN_SPECIFIC or s.shape[1] > width:
            continue
        lo, hi = np.flatnonzero(specific)[[0, -1]]
        kept.append((s[:, lo : hi + 1], None if a is None else a + int(lo)))
    return kept


def _start_in(cur: np.ndarray, ref: np.ndarray | None) -> int | None:
    """Where ``cur`` (4, k) is a window of ``ref`` (4, K0), or None."""
    if ref is None:
        return None
    k = cur.shape[1]
    for a in range(ref.shape[1] - k + 1):
        if np.array_equal(ref[:, a : a + k], cur):
            return a
    return None


def refine_consensus(
    model,
    codes: tuple[np.ndarray, np.ndarray],
    stats: tuple[torch.Tensor, torch.Tensor],
    norm_rows: tuple[np.ndarray, np.ndarray],
    u_i: Callable[[tuple[torch.Tensor, torch.Tensor]], torch.Tensor],
    y: torch.Tensor,
    log: Callable[[str], None] | None = None,
    part: torch.Tensor | None = None,
) -> list[dict]:
    """Edit the string of each used consensus or core view on the held-out block (module
    docstring), in place.

    Parameters
    ----------
    model : MotifPrismModel
        Warm-started, with consensus matrices set.
    codes, stats, norm_rows, u_i, y
        As :class:`~epcli.model.motif_levels.ViewSearch` takes them: the windows, their
        statistics (full scans; an edited consensus's columns are rewritten), the windows the
        activities are standardised over, U_I of the held-out block's pairs from the
        activities, and their labels.
    log : callable, optional
    part : torch.Tensor, shape (n,), bool, optional
        The held-out pairs of one half of the block's enhancer windows: an edit must lower
        the deviance of both halves (a gain that some windows' residuals alone give does
        not carry to new windows). None: halves by pair.

    Returns
    -------
    list of dict
        One per weight row whose view changed (the string of its matrix's site model, or the
        mismatch allowance it reads; both sides of an E x P pair are rows of their own):
        ``motif`` (index), ``site`` (the site model's name),
        ``consensus_from``, ``consensus_to`` (IUPAC strings), ``mismatches_from``,
        ``mismatches_to`` (the allowance of the view the weight reads), ``deviance_from``,
        ``deviance_to``. The scanner's consensus matrices and the activities'
        standardisation hold the edits, and its memo of scans the windows' new statistics.
    """
    sc = model.scanner
    lay = sc.layout
    if not lay.models or not bool((sc.cons_len > 0).any()):
        return []
    vs = ViewSearch(model, codes, stats, norm_rows, u_i, y)
    if part is None:
        part = torch.arange(y.numel()) % 2 == 0
    nl, nlev = lay.n_level_views, len(lay.levels)
    first, channel = [], []  # each site model's first count channel; channel -> (site, t)
    for s, (_, _, allow) in enumerate(lay.models):
        first.append(len(channel))
        channel += [(s, t) for t in range(len(allow))]
    whole = next((s for s, (_, core, _) in enumerate(lay.models) if core is None), None)
    xs = [scan_input(w) for w in vs.windows]

    def allowed(s: int, m: int) -> np.ndarray:
        return sc.cons[s, m, :, : sc.cons_len[s, m]].cpu().numpy() > 0

    def put(m: int, s: int, hits: list[torch.Tensor]) -> None:
        """Site model ``s``'s views of matrix ``m`` from ``hits`` (per side (N, T, B))."""
        for t in range(len(lay.models[s][2])):
            c = first[s] + t
            vs.put(m, nl + c, nlev + c, [hits[0][:, t], hits[1][:, t]])

    def counts(cands: list[np.ndarray], allow) -> list[list[torch.Tensor]]:
        """Hits (N, T, B) per side of each candidate string."""
        out: list[list[torch.Tensor]] = [[] for _ in cands]
        by_len: dict[int, list[int]] = {}
        for i, c in enumerate(cands):
            by_len.setdefault(c.shape[1], []).append(i)
        for idx in by_len.values():
            mats = torch.as_tensor(np.stack([cands[i] for i in idx]), dtype=torch.float32)
            hits = [sc.consensus_hits(x, mats.to(x.device), allow) for x in xs]
            for j, i in enumerate(idx):
                out[i] = [hits[0][:, j], hits[1][:, j]]
        return out

    def edit(w: torch.Tensor, row: tuple[int, ...], f: int, current: float) -> float:
        """The view ``f`` that weight row ``w[row]`` reads, its string edited while an edit
        lowers the deviance (at most :data:`MAX_EDITS`); the deviance."""
        m, view = divmod(f, lay.views)
        s, _ = channel[view - nl]
        allow = lay.models[s][2]
        cols = [m * lay.views + nl + first[s] + t for t in range(len(allow))]
        ref = allowed(whole, m) if whole is not None and sc.cons_len[whole, m] > 0 else None
        cur = allowed(s, m)
        at, seen = _start_in(cur, ref), {cur.tobytes() + bytes([cur.shape[1]])}
        start_str, start_t, start_dev = iupac_string(cur), cols.index(f), current
        for _ in range(MAX_EDITS):
            cands = [
                (c, a)
                for c, a in edits(cur, ref, at, sc.width)
                if c.tobytes() + bytes([c.shape[1]]) not in seen
            ]
            seen |= {c.tobytes() + bytes([c.shape[1]]) for c, _ in cands}
            cands.append((cur, at))  # the string as it is, at another allowance
            hits = counts([c for c, _ in cands], allow)
            val = w[(*row, f)].clone()
            halves = vs.split(part)
            here = vs.fit_weight(w, (*row, f))  # the view as it is, at its best weight
            if here < current:
                halves = vs.split(part)
            w[(*row, f)] = val
            kept = vs.state(m)
            best = (min(current, here) - EDIT_GAIN, None, None)
            for i, h in enumerate(hits):
                put(m, s, h)
                for col in cols:
                    if col != f and w[(*row, col)] != 0:
                        continue  # the row reads that view already
                    w[(*row, f)], w[(*row, col)] = 0.0, val
                    dev = vs.fit_weight(w, (*row, col))
                    if dev < best[0] and all(
                        a < b for a, b in zip(vs.split(part), halves, strict=True)
                    ):
                        best = (dev, i, col)
                    w[(*row, col)], w[(*row, f)] = 0.0, val
                vs.state(m, kept)
            if best[1] is None:
                break
            dev, i, col = best
            cur, at = cands[i]
            put(m, s, hits[i])
            with torch.no_grad():
                sc.cons[s, m] = 0.0
                sc.cons[s, m, :, : cur.shape[1]] = torch.as_tensor(cur, dtype=torch.float32)
                sc.cons_len[s, m] = cur.shape[1]
                sc.cons_edited[s, m] = True
            w[(*row, f)], w[(*row, col)] = 0.0, val
            current, f = vs.fit_weight(w, (*row, col)), col
        if iupac_string(cur) == start_str and cols.index(f) == start_t:
            return current
        done.append(
            {
                "motif": m,
                "site": lay.models[s][0],
                "consensus_from": start_str,
                "consensus_to": iupac_string(cur),
                "mismatches_from": int(allow[start_t]),
                "mismatches_to": int(allow[cols.index(f)]),
                "deviance_from": round(start_dev, 6),
                "deviance_to": round(current, 6),
            }
        )
        return current

    done: list[dict] = []
    tried: set[tuple] = set()  # (weight tensor, row, matrix, site model)
    with torch.no_grad():
        best = start = vs.deviance()
        for w, row, f in swappable(model, ADDITIVE_EDITS):
            m, view = divmod(f, lay.views)
            key = (id(w), row, m, channel[view - nl][0])
            if key in tried or w[(*row, f)] == 0:
                continue  # a weight row edits a matrix's site model once
            tried.add(key)
            best = edit(w, row, f, best)
    if done:
        vs.commit()
    if log is not None:
        log(_summary(model, done, len(tried), start, best))
    return done


def refine_views(model, *search, part: torch.Tensor | None = None) -> tuple[list[dict], list[dict]]:
    """The warm start's refinements of the views U_I reads, as the model's config switches
    them on: :func:`~epcli.model.motif_levels.refine_levels`
    (``motif_refine_levels``), then :func:`refine_consensus` (``motif_refine_consensus``,
    with ``part``), both with the arguments ``search`` (``codes, stats, norm_rows, u_i, y,
    log``).

    Returns
    -------
    levels, consensus : list of dict
        What each changed (empty when switched off).
    """
    cfg = model.cfg
    levels = refine_levels(model, *search) if cfg.motif_refine_levels else []
    on = cfg.motif_refine_consensus
    consensus = refine_consensus(model, *search, part=part) if on else []
    return levels, consensus


def _summary(model, done: list[dict], n_tried: int, before: float, after: float) -> str:
    """The log line of :func:`refine_consensus`."""
    names = model.cfg.motif_names or []
    what = ", ".join(
        f"{names[r['motif']] if names else r['motif']} {r['consensus_from']}"
        f"<={r['mismatches_from']} -> {r['consensus_to']}<={r['mismatches_to']}"
        for r in done
    )
    return (
        f"warm start: consensus strings edited on the held-out block: {len(done)} of "
        f"{n_tried} used consensus and core views"
        + (f" ({what}); held-out deviance {before:.4f} -> {after:.4f}" if done else "")
    )
