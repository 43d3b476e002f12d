"""The log-odds level and background of each E x P pair's view, refined on held-out pairs.

A site set such as ``levels+cores`` counts each matrix's hits at a few shared relative
log-odds levels (0.70, 0.75, ..., 0.95). A scanner that calls sites at a score threshold
(FIMO, HOMER) puts each matrix's threshold where it likes, and a count at the nearest
shared level can match such a count poorly: on the PWM-site benchmark the best of the six
levels matched a planted TF's site count with r 0.80 on average (0.39-0.97), the best level
within 0.04 of it 0.89 (docs/benchmarks.md). So once the warm start has chosen the views
U_I uses, each level view of an E x P pair and of the largest additive motif terms
(:func:`used_level_views`) tries the levels
:data:`OFFSETS` around its own, one view at a time (coordinate search, the other weights
fixed), and keeps the level whose held-out block deviance is lowest, when it beats the
current one by more than :data:`MIN_GAIN`. The matrix's level is shared by its enhancer and
promoter views, as the scan is.

A log-odds score also depends on the background it is taken against. The motif set's is
the human genome's (A/T 0.295, C/G 0.205); FIMO with a JASPAR MEME file, MOODS and
Biopython score against a uniform one by default, and against it GC-rich positions weigh
less. Which sites pass a threshold then differs, not only how many: on the PWM-site
benchmark, whose sites are called against a uniform background, the best level within 0.04
of the shared one matched a planted TF's count with r 0.90 with the genome background and
0.95 with a uniform one. So each matrix read by those views then tries the other
backgrounds of :data:`BACKGROUNDS` (:func:`rebase`), with the same level search, and keeps
the one whose held-out deviance is lowest by the same margin.

A candidate costs a scan of one matrix (:meth:`~epcli.model.motif_scan.MotifScanner.level_hits`)
and a deviance, so the search takes seconds; the refit that follows is the warm start's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from epcli.motifs.pwm import DEFAULT_BACKGROUND

#: Offsets (relative-score units) of the levels a used view tries around its own: up to
#: just short of the neighbouring shared levels (0.05 apart).
OFFSETS: tuple[float, ...] = (-0.04, -0.03, -0.02, -0.01, 0.01, 0.02, 0.03, 0.04)
#: Additive level views refined beside the E x P pairs' (those of the largest weights).
ADDITIVE_VIEWS = 12
#: Held-out deviance (mean per pair) a new level or background must save to be kept.
MIN_GAIN = 1e-4
#: Backgrounds (A, C, G, T) a used matrix may be scored against: uniform (the default of
#: FIMO with a JASPAR MEME file, MOODS and Biopython) and the human genome's (the motif
#: set's default).
UNIFORM: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)
BACKGROUNDS: tuple[tuple[float, float, float, float], ...] = (UNIFORM, DEFAULT_BACKGROUND)


def background_name(background) -> str:
    """``"uniform"``, ``"genome"`` (:data:`~epcli.motifs.DEFAULT_BACKGROUND`) or the
    frequencies (``"A0.3 C0.2 G0.2 T0.3"``) of a background (4,)."""
    b = np.asarray(background, dtype=np.float64)
    for name, ref in (("uniform", UNIFORM), ("genome", DEFAULT_BACKGROUND)):
        if np.allclose(b, ref, atol=1e-4):
            return name
    return " ".join(f"{base}{x:.3g}" for base, x in zip("ACGT", b, strict=True))


#: What :func:`refine_levels` saves of a matrix before trying a level or background.
_STATE = ("stats_e", "stats_p", "mean_e", "sd_e", "mean_p", "sd_p", "z_e", "z_p", "levels")
_STATE += ("weights", "background")


def rebase(scanner, motif: int, background) -> None:
    """Take matrix ``motif``'s log-odds against ``background`` (A, C, G, T) instead of its
    own: ``log2(p / b)`` becomes ``log2(p / background)`` at each of its positions, the base
    probabilities p (with the pseudocount they were made with) unchanged. In place, without
    clearing the scanner's memo.

    Parameters
    ----------
    scanner : MotifScanner
        With a site set of level views (it holds each matrix's ``background``).
    motif : int
    background : sequence of 4 floats
    """
    new = torch.as_tensor(background, dtype=torch.float32).to(scanner.background)
    k = int(scanner.lengths[motif])
    with torch.no_grad():
        shift = torch.log2(scanner.background[motif] / new)
        scanner.weight[motif, :, :k] += shift[:, None].to(scanner.weight)
        scanner.background[motif] = new


def used_level_views(model, additive: int = 0) -> list[tuple[int, int]]:
    """(motif, level) of each log-odds level view that the E x P interaction reads, on
    either side, and of the ``additive`` level views with the largest additive weight
    (``|w_E|`` or ``|w_P|``) besides: a product of two counts that match a rule's site
    counts only in part keeps about the square of their correlation, and the largest
    additive terms carry the training cells' mean TF activity, whose views R_E's gates
    then read. Few enough for the search to take seconds.

    Parameters
    ----------
    model : MotifPrismModel
    additive : int
        Additive level views to add (0: the E x P pairs' only).

    Returns
    -------
    list of (int, int)
        Sorted by motif, then level.
    """
    lay = model.scanner.layout
    m, v, nl = model.scanner.n_motifs, lay.views, lay.n_level_views
    used = torch.zeros(m, v, dtype=torch.bool)
    if model.cfg.use_interaction:
        used |= ((model.u != 0).any(0) | (model.v != 0).any(0))[: m * v].reshape(m, v).cpu()
    used[:, nl:] = False
    if additive > 0:
        w = torch.maximum(model.w_e.abs(), model.w_p.abs()).detach()[: m * v].cpu()
        w = w.reshape(m, v).clone()
        w[:, nl:] = 0.0
        w[used] = 0.0
        top = torch.topk(w.flatten(), min(int(additive), w.numel()))
        pick = torch.zeros(m * v, dtype=torch.bool)
        pick[top.indices[top.values > 0]] = True
        used |= pick.reshape(m, v)
    return [tuple(x) for x in used.nonzero().tolist()]


def refine_levels(
    model,
    codes: tuple[np.ndarray, np.ndarray],
    stats: tuple[torch.Tensor, torch.Tensor],
    norm_rows: tuple[np.ndarray, np.ndarray],
    u_i: Callable[[tuple[torch.Tensor, torch.Tensor]], torch.Tensor],
    y: torch.Tensor,
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Refine the level of each used log-odds view, then the background of each matrix
    they read (module docstring), in place.

    Parameters
    ----------
    model : MotifPrismModel
        Warm-started, with a site set of shared levels, one view per level.
    codes : (np.ndarray, np.ndarray), shapes (Ne, Le) and (Np, Lp), uint8
        The enhancer and promoter windows.
    stats : (torch.Tensor, torch.Tensor), shapes (Ne, M+F, n_stats, B) and (Np, ...)
        Their scan statistics; the level columns of a refined matrix are rewritten.
    norm_rows : (np.ndarray, np.ndarray)
        Windows (rows, repeats allowed) the activities are standardised over: the fitted
        pairs' enhancer and promoter windows.
    u_i : callable
        ``u_i((z_E, z_P))``: U_I of the held-out block's pairs, shape (n,), from the
        activities, shapes (Ne, M * views + F) and (Np, ...).
    y : torch.Tensor, shape (n,)
        Their labels (0/1 floats).
    log : callable, optional

    Returns
    -------
    list of dict
        One per used view whose level or matrix background changed: ``motif`` (index),
        ``view`` (level index), ``level_from``, ``level_to``, ``background_from``,
        ``background_to`` (:func:`background_name`), ``deviance_from``, ``deviance_to``.
        The scanner's ``level_rel``, ``background`` and weights and the activities'
        standardisation hold the new levels, and its memo of scans holds the windows'
        refined statistics (``stats`` must then be full scans) instead of any earlier scan.
    """
    sc = model.scanner
    lay = sc.layout
    if not lay.level_views or lay.rate_levels:
        return []
    acts = (model.act_e, model.act_p)
    nl = lay.n_level_views
    norm_rows = tuple(torch.as_tensor(np.unique(np.asarray(r))) for r in norm_rows)
    windows = [
        torch.as_tensor(np.asarray(c).astype(np.int64), device=sc.weight.device) for c in codes
    ]

    def deviance() -> float:
        return float(F.binary_cross_entropy_with_logits(u_i((z[0], z[1])), y))

    def put(m: int, lv: int, hits: list[torch.Tensor]) -> None:
        """Level view ``lv`` of matrix ``m`` from ``hits`` (per side (N, B)): statistics,
        standardisation and activity column."""
        col = m * lay.views + lv
        for side in range(2):
            stats[side][:, m, lv] = hits[side]
            a = acts[side]
            raw = a.level_view(hits[side])
            ref = raw[norm_rows[side]]
            sd = ref.std() if ref.numel() > 1 else torch.ones(())
            a.mean[col] = ref.mean()
            a.sd[col] = torch.where(sd < 1e-3, torch.ones_like(sd), sd)
            z[side][:, col] = (raw - a.mean[col]) / a.sd[col]

    def state(m: int, back: dict | None = None) -> dict:
        """Matrix ``m``'s statistics, level views, levels, weights and background (copies),
        or put ``back`` such copies."""
        cols = slice(m * lay.views, m * lay.views + nl)
        parts = [*stats, *(x for a in acts for x in (a.mean, a.sd)), *z, sc.level_rel]
        parts += [sc.weight.data, sc.background]
        where = [*[(slice(None), m)] * 2, *[(cols,)] * 4, *[(slice(None), cols)] * 2]
        where += [(m,)] * 3
        if back is None:
            return {k: t[w].clone() for k, t, w in zip(_STATE, parts, where, strict=True)}
        for k, t, w in zip(_STATE, parts, where, strict=True):
            t[w] = back[k]
        return back

    def search(m: int, lv: int, current: float) -> float:
        """Move view ``lv`` of ``m`` to the level of :data:`OFFSETS` around its own with
        the lowest deviance, if it beats ``current`` by :data:`MIN_GAIN`; that deviance."""
        here = float(sc.level_rel[m, lv])
        cand = torch.tensor([here + o for o in OFFSETS]).clamp(0.5, 1.0)
        # never onto another view's level of the matrix (the same feature twice)
        others = torch.cat([sc.level_rel[m, :lv], sc.level_rel[m, lv + 1 :]]).cpu()
        cand = cand[(cand[:, None] - others[None, :]).abs().amin(1) > 0.005]
        if not cand.numel():
            return current
        kept = state(m)
        hits = [sc.level_hits(w, m, cand) for w in windows]  # (N, C, B) per side
        devs = []
        for c in range(cand.numel()):
            put(m, lv, [hits[0][:, c], hits[1][:, c]])
            devs.append(deviance())
        c = int(np.argmin(devs))
        if devs[c] >= current - MIN_GAIN:
            state(m, kept)
            return current
        put(m, lv, [hits[0][:, c], hits[1][:, c]])
        sc.level_rel[m, lv] = float(cand[c])
        return devs[c]

    def record(m: int, views: list[int], start: dict, before: float, after: float) -> None:
        """Log the moves of views ``views`` of ``m`` since ``start`` (a :func:`state`)."""
        for lv in views:
            key = (m, lv)
            first = moved.get(key, {"level_from": round(float(start["levels"][lv]), 4)})
            first.setdefault("background_from", background_name(start["background"]))
            first.setdefault("deviance_from", round(before, 6))
            moved[key] = first | {
                "motif": m,
                "view": lv,
                "level_to": round(float(sc.level_rel[m, lv]), 4),
                "background_to": background_name(sc.background[m]),
                "deviance_to": round(after, 6),
            }

    moved: dict[tuple[int, int], dict] = {}
    used = used_level_views(model, ADDITIVE_VIEWS)
    with torch.no_grad():
        z = [acts[0](stats[0]), acts[1](stats[1])]  # kept current column by column
        best = start_dev = deviance()
        for m, lv in used:  # each view's level, the matrix's background fixed
            start = state(m)
            new = search(m, lv, best)
            if new < best:
                record(m, [lv], start, best, new)
                best = new
        for m in sorted({m for m, _ in used}):  # each matrix's background, with its levels
            views = [lv for mm, lv in used if mm == m]
            start = state(m)
            for bg in BACKGROUNDS:
                if torch.allclose(
                    start["background"], torch.tensor(bg).to(start["background"]), atol=1e-4
                ):
                    continue
                rebase(sc, m, bg)
                hits = [sc.level_hits(w, m, sc.level_rel[m], best=True) for w in windows]
                for side in range(2):
                    stats[side][:, m, -1] = hits[side][:, -1]
                for lv in range(nl):
                    put(m, lv, [hits[0][:, lv], hits[1][:, lv]])
                new = deviance()
                for lv in views:
                    new = search(m, lv, new)
                if new < best - MIN_GAIN:
                    record(m, views, start, best, new)
                    best = new
                    break
                state(m, start)
    changed = sorted(moved.values(), key=lambda r: (r["motif"], r["view"]))
    if changed:  # memoised scans hold the old levels: the windows' new ones replace them
        sc.clear_cache()
        for w, st in zip(windows, stats, strict=True):
            sc.remember(w, st[:, : sc.n_motifs])
        model.forget_plans()
    if log is not None:
        log(_summary(model, changed, len(used), start_dev, best))
    return changed


def _summary(model, changed: list[dict], n_used: int, before: float, after: float) -> str:
    """The log line of :func:`refine_levels`."""
    names = model.cfg.motif_names or []
    moved = ", ".join(
        f"{names[r['motif']] if names else r['motif']} {r['level_from']:.2f}->{r['level_to']:.2f}"
        + (
            f" ({r['background_to']} background)"
            if r["background_to"] != r["background_from"]
            else ""
        )
        for r in changed
    )
    return (
        f"warm start: log-odds levels refined on the held-out block: {len(changed)} of "
        f"{n_used} level views of E x P pairs and the largest motif terms moved"
        + (f" ({moved}); held-out deviance {before:.4f} -> {after:.4f}" if changed else "")
    )
