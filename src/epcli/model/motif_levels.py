"""The log-odds level of each E x P pair's view, refined on held-out pairs.

A site set such as ``levels+cores`` counts each matrix's hits at a few shared relative
log-odds levels (0.70, 0.75, ..., 0.95). A scanner that calls sites at a score threshold
(FIMO, HOMER) puts each matrix's threshold where it likes, and a count at the nearest
shared level can match such a count poorly: on the PWM-site benchmark the best of the six
levels matched a planted TF's site count with r 0.80 on average (0.39-0.97), the best level
within 0.04 of it 0.89 (docs/benchmarks.md). So once the warm start has chosen the views
U_I uses, each level view of an E x P pair (:func:`used_level_views`) tries the levels
:data:`OFFSETS` around its own, one view at a time (coordinate search, the other weights
fixed), and keeps the level whose held-out block deviance is lowest, when it beats the
current one by more than :data:`MIN_GAIN`. The matrix's level is shared by its enhancer and
promoter views, as the scan is.

A candidate costs a scan of one matrix (:meth:`~epcli.model.motif_scan.MotifScanner.level_hits`)
and a deviance, so the search takes seconds; the refit that follows is the warm start's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

#: Offsets (relative-score units) of the levels a used view tries around its own: up to
#: just short of the neighbouring shared levels (0.05 apart).
OFFSETS: tuple[float, ...] = (-0.04, -0.03, -0.02, -0.01, 0.01, 0.02, 0.03, 0.04)
#: Held-out deviance (mean per pair) a new level must save to be kept.
MIN_GAIN = 1e-4


def used_level_views(model) -> list[tuple[int, int]]:
    """(motif, level) of each log-odds level view that the E x P interaction reads, on
    either side: where a count that matches a rule's site count only in part costs most (a
    product of two such counts keeps about the square of their correlation; the additive
    motif terms were not where the PWM rule's zero-shot gap lay, docs/benchmarks.md), and
    few enough (two per pair) for the search to take seconds.

    Parameters
    ----------
    model : MotifPrismModel

    Returns
    -------
    list of (int, int)
        Sorted by motif, then level.
    """
    lay = model.scanner.layout
    m, v, nl = model.scanner.n_motifs, lay.views, lay.n_level_views
    if not model.cfg.use_interaction:
        return []
    inter = (model.u != 0).any(0) | (model.v != 0).any(0)
    used = inter[: m * v].reshape(m, v)[:, :nl]
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
    """Refine the level of each used log-odds view (module docstring), in place.

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
        One per view whose level changed: ``motif`` (index), ``view`` (level index),
        ``level_from``, ``level_to``, ``deviance_from``, ``deviance_to``. The scanner's
        ``level_rel`` and the activities' standardisation hold the new levels, and its memo
        of scans holds the windows' refined statistics (``stats`` must then be full scans)
        instead of any earlier scan.
    """
    sc = model.scanner
    lay = sc.layout
    if not lay.level_views or lay.rate_levels:
        return []
    acts = (model.act_e, model.act_p)
    norm_rows = tuple(torch.as_tensor(np.unique(np.asarray(r))) for r in norm_rows)

    def deviance(ze: torch.Tensor, zp: torch.Tensor) -> float:
        return float(F.binary_cross_entropy_with_logits(u_i((ze, zp)), y))

    dev = sc.weight.device
    windows = [torch.as_tensor(np.asarray(c).astype(np.int64), device=dev) for c in codes]

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

    changed: list[dict] = []
    with torch.no_grad():
        z = [acts[0](stats[0]), acts[1](stats[1])]  # kept current column by column
        best = deviance(*z)
        for m, lv in used_level_views(model):
            col = m * lay.views + lv
            here = float(sc.level_rel[m, lv])
            keep = [stats[s][:, m, lv].clone() for s in range(2)]
            kept = [(acts[s].mean[col].clone(), acts[s].sd[col].clone()) for s in range(2)]
            kept_z = [z[s][:, col].clone() for s in range(2)]
            cand = torch.tensor([here + o for o in OFFSETS]).clamp(0.5, 1.0)
            # never onto another view's level of the matrix (the same feature twice)
            others = torch.cat([sc.level_rel[m, :lv], sc.level_rel[m, lv + 1 :]]).cpu()
            cand = cand[(cand[:, None] - others[None, :]).abs().amin(1) > 0.005]
            if not cand.numel():
                continue
            hits = [sc.level_hits(w, m, cand) for w in windows]  # (N, C, B) per side
            devs = []
            for c in range(cand.numel()):
                put(m, lv, [hits[0][:, c], hits[1][:, c]])
                devs.append(deviance(*z))
            c = int(np.argmin(devs))
            if devs[c] < best - MIN_GAIN:
                put(m, lv, [hits[0][:, c], hits[1][:, c]])
                sc.level_rel[m, lv] = float(cand[c])
                changed.append(
                    {
                        "motif": m,
                        "view": lv,
                        "level_from": round(here, 4),
                        "level_to": round(float(cand[c]), 4),
                        "deviance_from": round(best, 6),
                        "deviance_to": round(devs[c], 6),
                    }
                )
                best = devs[c]
            else:  # back to the level it had
                for s in range(2):
                    stats[s][:, m, lv], z[s][:, col] = keep[s], kept_z[s]
                    acts[s].mean[col], acts[s].sd[col] = kept[s]
    if changed:  # memoised scans hold the old levels: the windows' new ones replace them
        sc.clear_cache()
        for w, st in zip(windows, stats, strict=True):
            sc.remember(w, st[:, : sc.n_motifs])
        model.forget_plans()
    if log is not None:
        names = model.cfg.motif_names or []
        moved = ", ".join(
            f"{names[r['motif']] if names else r['motif']} "
            f"{r['level_from']:.2f}->{r['level_to']:.2f}"
            for r in changed
        )
        log(
            f"warm start: log-odds levels refined on the held-out block: {len(changed)} of "
            f"{len(used_level_views(model))} level views of E x P pairs moved"
            + (
                f" ({moved}); held-out deviance {changed[0]['deviance_from']:.4f} -> {best:.4f}"
                if changed
                else ""
            )
        )
    return changed
