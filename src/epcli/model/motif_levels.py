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
current one by more than :data:`MIN_GAIN`; when that level is the farthest one tried, it
tries again from there (forward selection may take a view at a shared level more than 0.04
from the matrix's best one). The matrix's level is shared by its enhancer and
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

Forward selection also takes, for a rule's TF pair, whichever views' product matches it best
at the shared levels, and with hundreds of related JASPAR matrices that is often a
consensus or core view (``ZBTB12 [consensus]`` for ZBTB12 sites called at a threshold of
their own, ``ZBTB14 [core 6 bp]`` for TCFL5's), which no level search can move. So last,
each E x P side that reads such a view, and each of the :data:`ADDITIVE_SWAPS` such views
with the largest additive weights, tries a level view of its own matrix and of the few
matrices whose level views the held-out deviance's slope favours, each at its best weight,
level and background, and takes the best when it saves :data:`MIN_GAIN`.

A candidate costs a scan of one matrix (:meth:`~epcli.model.motif_scan.MotifScanner.level_hits`)
and a deviance, so one search takes seconds and the whole refinement one to two minutes on
a benchmark set; the refit that follows is the warm start's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from epcli.motifs.pwm import DEFAULT_BACKGROUND

#: Offsets (relative-score units) of the levels a used view tries around its own: up to
#: just short of the neighbouring shared levels (0.05 apart); the search goes on from the
#: farthest when it wins.
OFFSETS: tuple[float, ...] = (-0.04, -0.03, -0.02, -0.01, 0.01, 0.02, 0.03, 0.04)
#: Additive level views refined beside the E x P pairs' (those of the largest weights).
ADDITIVE_VIEWS = 12
#: Held-out deviance (mean per pair) a new view, level or background must save to be kept.
MIN_GAIN = 1e-4
#: Matrices whose level views are tried in place of an E x P pair's consensus or core view
#: (:func:`refine_levels`): its own and those whose level views promise most.
SWAP_CANDIDATES = 4
#: Additive consensus and core views tried the same way (those of the largest weights).
ADDITIVE_SWAPS = 6
#: Newton steps of the scale of a swapped view's weight.
WEIGHT_STEPS = 8
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


def best_scale(rest: torch.Tensor, term: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The scale s in [0, 10] with the lowest deviance of logits ``rest + s * term``:
    :data:`WEIGHT_STEPS` Newton steps from 1, each halved until the deviance does not rise
    (where the logits saturate, the curvature is near 0 and a full step overshoots).

    Parameters
    ----------
    rest, term : torch.Tensor, shape (n,)
        The logits without the term, and the term at scale 1.
    y : torch.Tensor, shape (n,)
        0/1 labels.

    Returns
    -------
    torch.Tensor, shape ()
    """

    def dev(scale: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(rest + scale * term, y)

    scale = torch.ones((), dtype=term.dtype)
    now = dev(scale)
    for _ in range(WEIGHT_STEPS):
        p = torch.sigmoid(rest + scale * term)
        step = ((p - y) * term).mean() / (p * (1 - p) * term**2).mean().clamp(min=1e-12)
        for _ in range(20):
            new = (scale - step).clamp(0.0, 10.0)
            if dev(new) <= now:
                break
            step = step / 2
        else:
            break
        scale, now = new, dev(new)
    return scale


def swappable(model, additive: int) -> list[tuple[torch.Tensor, tuple[int, ...], int]]:
    """The consensus and core views (of JASPAR matrices, not free filters) that
    :func:`refine_levels` tries to replace: each side of each E x P pair that reads one, then
    the ``additive`` such views with the largest additive weights.

    Returns
    -------
    list of (torch.Tensor, tuple, int)
        The weight tensor (``u``, ``v``, ``w_E`` or ``w_P``), the row of it (``(k,)`` for
        pair k, ``()`` for an additive term) and the activity column read.
    """
    lay = model.scanner.layout
    mv, nl = model.scanner.n_motifs * lay.views, lay.n_level_views

    def counts(x: torch.Tensor) -> torch.Tensor:
        cols = torch.arange(x.numel(), device=x.device)
        return (x != 0) & (cols < mv) & (cols % lay.views >= nl)

    out = []
    if model.cfg.use_interaction:
        for k in range(model.u.shape[0]):
            for w in (model.u, model.v):
                out += [(w, (k,), int(f)) for f in counts(w[k]).nonzero().flatten()]
    if additive > 0:
        both = torch.stack([model.w_e.detach(), model.w_p.detach()])
        size = torch.where(torch.stack([counts(x) for x in both]), both.abs(), 0.0).flatten()
        top = torch.topk(size, min(int(additive), size.numel()))
        for i in top.indices[top.values > 0].tolist():
            side, f = divmod(i, both.shape[1])
            out.append(((model.w_e, model.w_p)[side], (), f))
    return out


class ViewSearch:
    """What the held-out searches of U_I's views share (:func:`refine_levels`,
    :func:`~epcli.model.motif_consensus.refine_consensus`): the windows, their statistics and
    activities kept current column by column, a matrix's state saved and put back, and the
    held-out deviance, also at a weight's best scale.

    Parameters
    ----------
    model : MotifPrismModel
    codes : (np.ndarray, np.ndarray), shapes (Ne, Le) and (Np, Lp), uint8
        The enhancer and promoter windows.
    stats : (torch.Tensor, torch.Tensor), shapes (Ne, M+F, n_stats, B) and (Np, ...)
        Their scan statistics, rewritten in place where a view changes.
    norm_rows : (np.ndarray, np.ndarray)
        Windows (rows, repeats allowed) the activities are standardised over.
    u_i : callable
        ``u_i((z_E, z_P))``: U_I of the held-out block's pairs, shape (n,).
    y : torch.Tensor, shape (n,)
        Their labels (0/1 floats).
    """

    def __init__(self, model, codes, stats, norm_rows, u_i, y) -> None:
        self.model, self.sc = model, model.scanner
        self.lay = self.sc.layout
        self.acts = (model.act_e, model.act_p)
        self.stats, self.u_i, self.y = stats, u_i, y
        self.norm_rows = tuple(torch.as_tensor(np.unique(np.asarray(r))) for r in norm_rows)
        dev = self.sc.weight.device
        self.windows = [torch.as_tensor(np.asarray(c).astype(np.int64), device=dev) for c in codes]
        with torch.no_grad():
            self.z = [self.acts[0](stats[0]), self.acts[1](stats[1])]

    def loss(self) -> torch.Tensor:
        """Mean held-out deviance (a tensor, for gradients)."""
        return F.binary_cross_entropy_with_logits(self.u_i((self.z[0], self.z[1])), self.y)

    def deviance(self) -> float:
        """Mean held-out deviance."""
        return float(self.loss())

    def split(self, part: torch.Tensor) -> tuple[float, float]:
        """Mean held-out deviance of the pairs in ``part`` ((n,) bool) and of the others."""
        d = F.binary_cross_entropy_with_logits(
            self.u_i((self.z[0], self.z[1])), self.y, reduction="none"
        )
        return float(d[part].mean()), float(d[~part].mean())

    def fit_weight(self, w: torch.Tensor, at: tuple[int, ...]) -> float:
        """The weight ``w[at]`` (of ``u``, ``v``, ``w_E`` or ``w_P``) scaled to its held-out
        optimum (:func:`best_scale`), so that views are compared each at its best weight,
        not at one fitted to another view; the deviance."""
        keep = w[at].clone()
        w[at] = 0.0
        rest = self.u_i((self.z[0], self.z[1]))
        w[at] = keep
        term = self.u_i((self.z[0], self.z[1])) - rest
        w[at] = keep * best_scale(rest, term, self.y)
        return self.deviance()

    def put(self, m: int, view: int, stat: int, hits: list[torch.Tensor]) -> None:
        """View ``view`` of matrix ``m`` from ``hits`` (per side (N, B)), its statistic
        ``stat``: statistics, standardisation and activity column."""
        col = m * self.lay.views + view
        for side in range(2):
            self.stats[side][:, m, stat] = hits[side]
            a = self.acts[side]
            raw = a.count_view(hits[side])
            ref = raw[self.norm_rows[side]]
            sd = ref.std() if ref.numel() > 1 else torch.ones(())
            a.mean[col] = ref.mean()
            a.sd[col] = torch.where(sd < 1e-3, torch.ones_like(sd), sd)
            self.z[side][:, col] = (raw - a.mean[col]) / a.sd[col]

    def _parts(self, m: int) -> dict[str, tuple[torch.Tensor, tuple]]:
        """Name -> (tensor, index) of everything of matrix ``m`` that a search may change."""
        v = self.lay.views
        cols = slice(m * v, (m + 1) * v)
        every = (slice(None), m)
        sc = self.sc
        out = {"stats_e": (self.stats[0], every), "stats_p": (self.stats[1], every)}
        for side, a in zip("ep", self.acts, strict=True):
            out[f"mean_{side}"], out[f"sd_{side}"] = (a.mean, (cols,)), (a.sd, (cols,))
        out["z_e"], out["z_p"] = (self.z[0], (slice(None), cols)), (self.z[1], (slice(None), cols))
        out["weights"] = (sc.weight.data, (m,))
        for key in ("cons", "cons_len", "cons_edited"):
            out[key] = (getattr(sc, key), every)
        if self.lay.level_views:
            out["levels"], out["background"] = (sc.level_rel, (m,)), (sc.background, (m,))
        return out

    def state(self, m: int, back: dict | None = None) -> dict:
        """Matrix ``m``'s statistics, views, consensus matrices, levels, weights and
        background (copies), or put ``back`` such copies."""
        parts = self._parts(m)
        if back is None:
            return {k: t[w].clone() for k, (t, w) in parts.items()}
        for k, (t, w) in parts.items():
            t[w] = back[k]
        return back

    def commit(self) -> None:
        """The memo of scans holds earlier statistics: the windows' new ones replace them
        (``stats`` must be full scans)."""
        self.sc.clear_cache()
        for w, st in zip(self.windows, self.stats, strict=True):
            self.sc.remember(w, st[:, : self.sc.n_motifs])
        self.model.forget_plans()


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
    they read, then try level views in place of the consensus and core views of the E x P
    pairs and of the largest additive terms (module docstring), in place.

    Parameters
    ----------
    model : MotifPrismModel
        Warm-started, with a site set of shared levels, one view per level.
    codes, stats, norm_rows, u_i, y
        As :class:`ViewSearch` takes them: the windows, their statistics (the level
        columns of a refined matrix are rewritten), the windows the activities are
        standardised over (the fitted pairs'), U_I of the held-out block's pairs from the
        activities, and their labels.
    log : callable, optional

    Returns
    -------
    list of dict
        One per used view whose level or matrix background changed: ``motif`` (index),
        ``view`` (level index), ``level_from``, ``level_to``, ``background_from``,
        ``background_to`` (:func:`background_name`), ``deviance_from``, ``deviance_to``,
        and for a view taken in place of another ``in_place_of``, the activity column it
        replaced (its weight then refitted on the block).
        The scanner's ``level_rel``, ``background`` and weights and the activities'
        standardisation hold the new levels, and its memo of scans holds the windows'
        refined statistics (``stats`` must then be full scans) instead of any earlier scan.
    """
    sc = model.scanner
    lay = sc.layout
    if not lay.level_views or lay.rate_levels:
        return []
    nl = lay.n_level_views
    vs = ViewSearch(model, codes, stats, norm_rows, u_i, y)
    windows, state, deviance = vs.windows, vs.state, vs.deviance

    def put(m: int, lv: int, hits: list[torch.Tensor]) -> None:
        """Level view ``lv`` of matrix ``m`` (its statistic of the same index)."""
        vs.put(m, lv, lv, hits)

    def search(m: int, lv: int, current: float) -> float:
        """Move view ``lv`` of ``m`` to the level of :data:`OFFSETS` around its own with
        the lowest deviance, if it beats ``current`` by :data:`MIN_GAIN`, and on from
        there while that level is the farthest one tried (a line search ends inside its
        window, not at its edge); the deviance."""
        reach = max(abs(o) for o in OFFSETS) - 1e-6
        while True:
            here = float(sc.level_rel[m, lv])
            new = step(m, lv, current)
            if new >= current or abs(float(sc.level_rel[m, lv]) - here) < reach:
                return new
            current = new

    def step(m: int, lv: int, current: float) -> float:
        """One move of :func:`search`, within :data:`OFFSETS` of the view's level."""
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
        """Log the moves of views ``views`` of ``m`` since ``start`` (a
        :meth:`~ViewSearch.state`)."""
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

    def backgrounds(m: int, views: list[int], current: float) -> tuple[float, bool]:
        """Matrix ``m`` against each other background of :data:`BACKGROUNDS`, its ``views``
        searched again under it; the first to beat ``current`` by :data:`MIN_GAIN` is kept.
        The deviance, and whether one was kept."""
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
            if new < current - MIN_GAIN:
                return new, True
            state(m, start)
        return current, False

    def tune(m: int, lv: int, current: float) -> float:
        """View ``lv`` of ``m`` at its best level and background; the deviance."""
        return backgrounds(m, [lv], search(m, lv, current))[0]

    def swap(w: torch.Tensor, row: tuple[int, ...], f: int, current: float) -> float:
        """The consensus or core view ``f`` that weight row ``w[row]`` reads (a side of an
        E x P pair: a row of ``u`` or ``v``; an additive term: ``w_E`` or ``w_P``), tried
        as a level view of its own matrix and of the :data:`SWAP_CANDIDATES` - 1 others
        whose level views promise most (the held-out deviance's slope along each level
        view in its place: the score test of that view), each at its best weight, level
        and background (:meth:`~ViewSearch.fit_weight`, :func:`tune`); the best is kept
        when it beats ``current``, and ``f`` at its best weight, by :data:`MIN_GAIN`. The
        deviance."""
        val = w[(*row, f)].clone()
        w[(*row, f)] = 0.0
        with torch.enable_grad():
            slope = torch.autograd.grad(vs.loss(), w)[0][row][level_cols]
        w[(*row, f)] = val
        gain = -slope * val.sign()
        gain[w[row][level_cols] != 0] = -1.0  # views the row reads already
        gain = gain.view(-1, nl).max(1)  # each matrix's most promising level view
        top = torch.topk(gain.values, min(SWAP_CANDIDATES, gain.values.numel()))
        own = f // lay.views  # the view's own matrix first, whatever its promise
        picks = [own] + [
            int(m) for m, g in zip(top.indices, top.values, strict=True) if g > 0 and m != own
        ][: SWAP_CANDIDATES - 1]
        cand = [(m, int(gain.indices[m])) for m in picks]

        def trial(m: int, lv: int) -> float:
            w[(*row, f)], w[(*row, m * lay.views + lv)] = 0.0, val
            return tune(m, lv, vs.fit_weight(w, (*row, m * lay.views + lv)))

        devs = []
        for m, lv in cand:
            kept = state(m)
            devs.append(trial(m, lv))
            state(m, kept)
            w[(*row, m * lay.views + lv)], w[(*row, f)] = 0.0, val
        here = vs.fit_weight(w, (*row, f))  # the view as it is, at its best weight too
        w[(*row, f)] = val
        if not devs or min(devs) >= min(current, here) - MIN_GAIN:
            return current
        m, lv = cand[int(np.argmin(devs))]
        start = state(m)
        new = trial(m, lv)
        record(m, [lv], start, current, new)
        moved[(m, lv)]["in_place_of"] = f
        return new

    moved: dict[tuple[int, int], dict] = {}
    used = used_level_views(model, ADDITIVE_VIEWS)
    mv = sc.n_motifs * lay.views
    level_cols = torch.arange(mv).view(-1, lay.views)[:, :nl].flatten()
    with torch.no_grad():
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
            new, kept = backgrounds(m, views, best)
            if kept:
                record(m, views, start, best, new)
                best = new
        for w, row, f in swappable(model, ADDITIVE_SWAPS):  # consensus and core views
            if w[(*row, f)] != 0:  # (an earlier swap may have taken its weight)
                best = swap(w, row, f, best)
    changed = sorted(moved.values(), key=lambda r: (r["motif"], r["view"]))
    if changed:
        vs.commit()
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
        + (f" in place of {_label(model, r['in_place_of'])}" if "in_place_of" in r else "")
        for r in changed
    )
    swapped = sum("in_place_of" in r for r in changed)
    return (
        f"warm start: log-odds levels refined on the held-out block: {len(changed) - swapped}"
        f" of {n_used} level views of E x P pairs and the largest motif terms moved, "
        f"{swapped} taken in place of consensus or core views"
        + (f" ({moved}); held-out deviance {before:.4f} -> {after:.4f}" if changed else "")
    )


def _label(model, col: int) -> str:
    """``NAME/view`` of activity column ``col`` (the matrix's name, the view's index)."""
    names = model.cfg.motif_names or []
    m, view = divmod(int(col), model.scanner.layout.views)
    return f"{names[m] if names else m}/{view}"
