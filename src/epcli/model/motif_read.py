"""Reading a trained motif prism: feature names, the model card's top motifs, the TFs a cell
prototype favours, and switching a component off (the card's ablations)."""

from __future__ import annotations

import numpy as np
import torch

from epcli.model.config import ModelConfig
from epcli.model.motif import MotifPrismModel
from epcli.model.motif_levels import background_name
from epcli.model.motif_sites import SiteLayout
from epcli.motifs.pwm import iupac_string


def feature_names(
    cfg: ModelConfig,
    levels: np.ndarray | None = None,
    backgrounds: list[str] | None = None,
    edited: dict[tuple[int, int], str] | None = None,
) -> tuple[list[str], list[str]]:
    """IDs and names of the activity features: each motif's views, then the free filters.

    ``levels`` (M, views' levels): each matrix's own log-odds levels (a trained model's,
    :func:`model_feature_names`), which a layout of shared levels names instead of the
    shared ones; ``backgrounds`` (M,): the name of each matrix's background
    (:func:`~epcli.model.motif_levels.background_name`), named when not the genome's
    (``MA0099.4/s85u``, ``FOS::JUN [log-odds >= 0.85, uniform background]``; another:
    ``.../s85b``); ``edited``: (matrix, site model) -> the IUPAC string of each consensus
    the warm start edited (:mod:`~epcli.model.motif_consensus`), which its views name
    (``MA1623.2/c1:GAAANNGAAA``, ``Stat2 [consensus edited to GAAANNGAAA, <=1 mismatch]``).

    A motif's (blended) log-odds view is its matrix ID and TF name (``MA0099.4``,
    ``FOS::JUN``); a layout with a view per level names the level (``MA0099.4/s85``,
    ``FOS::JUN [log-odds >= 0.85]``; one per hit rate: ``MA0099.4/r1e-04``, ``FOS::JUN [hits
    at 0.0001/bp]``); consensus views add the site model and mismatch
    allowance (``MA0099.4/c1``, ``FOS::JUN [consensus, <=1 mismatch]``; a core site model:
    ``MA0099.4/k8c0``, ``FOS::JUN [core 8 bp, <=0 mismatches]``); free filters are
    ``free1``, ``free2``, ...
    """
    ids, names = [], []
    layout = SiteLayout(cfg.motif_sites)
    for mi, (i, n) in enumerate(zip(cfg.motif_ids or [], cfg.motif_names or [], strict=True)):
        if layout.rate_levels:
            for lv in layout.levels:
                ids.append(f"{i}/r{lv:.0e}")
                names.append(f"{n} [hits at {lv:g}/bp]")
        elif layout.level_views:
            bg = "genome" if backgrounds is None else backgrounds[mi]
            tag, said = (
                ("", "")
                if bg == "genome"
                else ({"uniform": "u"}.get(bg, "b"), f", {bg} background")
            )
            for lv in layout.levels if levels is None else np.round(levels[mi], 2).tolist():
                ids.append(f"{i}/s{round(lv * 100)}{tag}")
                names.append(f"{n} [log-odds >= {lv:g}{said}]")
        else:
            ids.append(i)
            names.append(n)
        for s, (site, core, allow) in enumerate(layout.models):
            string = (edited or {}).get((mi, s))
            tag, said = ("", site)
            if string is not None:
                tag, said = f":{string}", f"{site} edited to {string}"
            for t in allow:
                ids.append((f"{i}/c{t}" if core is None else f"{i}/k{core}c{t}") + tag)
                names.append(f"{n} [{said}, <={t} mismatch{'es' if t != 1 else ''}]")
    free = [f"free{i + 1}" for i in range(cfg.n_free_filters)]
    return ids + free, names + free


def model_feature_names(model: MotifPrismModel) -> tuple[list[str], list[str]]:
    """:func:`feature_names` of a model, its log-odds views named by their own levels and
    its edited consensus views by their strings."""
    sc = model.scanner
    edited = {
        (int(m), int(s)): iupac_string(sc.cons[s, m, :, : sc.cons_len[s, m]].cpu().numpy())
        for s, m in sc.cons_edited.nonzero().tolist()
    }
    if not (sc.layout.level_views and not sc.layout.rate_levels):
        return feature_names(model.cfg, edited=edited)
    bgs = [background_name(b) for b in sc.background.detach().cpu().numpy()]
    return feature_names(model.cfg, sc.level_rel.detach().cpu().numpy(), bgs, edited)


def top_motifs(model: MotifPrismModel, k: int = 20) -> list[dict]:
    """The motifs (and E x P motif pairs) with the largest effect on U_I, largest first.

    Motif activities are standardised, so a term's weight is the SD of its contribution
    over training windows: ``w_E[i]`` for an enhancer motif, ``w_P[i]`` for a promoter
    motif and ``W[i, j]`` for an E x P pair (times SD(z_E z_P), about 1).

    Parameters
    ----------
    model : MotifPrismModel
    k : int
        Entries to return.

    Returns
    -------
    list of dict
        ``{"part": "enhancer"|"promoter"|"pair", "id", "name", "effect"}`` (pairs also have
        ``"promoter_id"``, ``"promoter_name"``), sorted by decreasing ``|effect|``.
    """
    ids, names = model_feature_names(model)
    with torch.no_grad():
        cand = []
        for part, w in (("enhancer", model.w_e), ("promoter", model.w_p)):
            w = w.detach().cpu().numpy()
            for i in np.argsort(-np.abs(w))[:k]:
                if w[i] != 0:
                    cand.append(
                        {"part": part, "id": ids[i], "name": names[i], "effect": float(w[i])}
                    )
        if model.cfg.use_interaction:
            wm = model.interaction_matrix().detach().cpu().numpy()
            flat = np.argsort(-np.abs(wm), axis=None)[:k]
            for f in flat:
                i, j = np.unravel_index(f, wm.shape)
                if wm[i, j] != 0:
                    cand.append(
                        {
                            "part": "pair",
                            "id": ids[i],
                            "name": names[i],
                            "promoter_id": ids[j],
                            "promoter_name": names[j],
                            "effect": float(wm[i, j]),
                        }
                    )
    cand.sort(key=lambda d: -abs(d["effect"]))
    return cand[:k]


def prototype_tfs(
    model: MotifPrismModel, proto: np.ndarray, reference: np.ndarray | None = None, k: int = 10
) -> tuple[list[dict], list[dict]]:
    """TFs a cell prototype favours and disfavours.

    A prototype's direction ``mu_pos - mu_neg`` over e(x) = g * z_E says which enhancer motifs
    lower the cell's resistance (favoured) or raise it (disfavoured). With a ``reference``
    (the population prototype) the direction is taken relative to it, so the TFs named are
    the ones this cell favours more than the training cells on average.

    Parameters
    ----------
    model : MotifPrismModel
    proto, reference : np.ndarray, shape (2, M + F)
    k : int

    Returns
    -------
    favoured, disfavoured : list of dict
        ``{"id", "name", "weight"}``, largest ``|weight|`` first; weights are 0-free.
    """
    ids, names = model_feature_names(model)
    p = np.asarray(proto, dtype=np.float64)
    d = p[1] - p[0]
    if reference is not None:
        r = np.asarray(reference, dtype=np.float64)
        d = d - (r[1] - r[0])
    order = np.argsort(-d)
    fav = [{"id": ids[i], "name": names[i], "weight": float(d[i])} for i in order[:k] if d[i] > 0]
    dis = [
        {"id": ids[i], "name": names[i], "weight": float(d[i])} for i in order[::-1][:k] if d[i] < 0
    ]
    return fav, dis


#: Parts of U_I that :func:`ablated` can switch off.
ABLATIONS = ("enhancer_motifs", "promoter_motifs", "interaction", "free_filters", "r_e_gates")


class ablated:
    """Context manager: a part of a trained model switched off (weights restored on exit).

    Parameters
    ----------
    model : MotifPrismModel
    part : str
        One of :data:`ABLATIONS`: the additive enhancer or promoter motif terms, the E x P
        interaction, the free filters (their columns in every term), or the R_E gates.
    """

    def __init__(self, model: MotifPrismModel, part: str) -> None:
        if part not in ABLATIONS:
            raise ValueError(f"unknown part {part!r}; one of {ABLATIONS}")
        self.model, self.part = model, part
        self._saved: dict[str, torch.Tensor] = {}

    def __enter__(self) -> MotifPrismModel:
        m = self.model
        names = {
            "enhancer_motifs": ["w_e"],
            "promoter_motifs": ["w_p"],
            "interaction": ["u", "v"],
            "free_filters": ["w_e", "w_p", "u", "v", "gate"],
            "r_e_gates": ["gate"],
        }[self.part]
        nm = m.scanner.n_motifs * m.scanner.layout.views
        with torch.no_grad():
            for n in names:
                p = getattr(m, n)
                self._saved[n] = p.detach().clone()
                if self.part == "free_filters":
                    p[..., nm:] = 0.0
                else:
                    p.zero_()
        m.forget_plans()
        return m

    def __exit__(self, *exc) -> None:
        with torch.no_grad():
            for n, v in self._saved.items():
                getattr(self.model, n).copy_(v)
        self.model.forget_plans()
