"""The warm start's L1 fit: the converging solver (FISTA) against Adam with a proximal step.

Builds a ``benchmarks/run.py`` set (the same options), starts training ``prism`` and stops it
at the warm start, whose inputs (the training windows and pairs, the held-out block) it keeps.
Then, for each penalty of the warm start's path, it fits U_I's additive terms (bias,
distance, enhancer and promoter motif weights; no interaction) on the fitting pairs in two
ways:

- ``fista``: :func:`epcli.model.lasso.fista`, what the warm start uses;
- ``adam120`` / ``adam1000``: full-batch Adam (lr 0.05) with the model's L1 proximal step
  after each update, for 120 steps (what the warm start used before) or 1,000;

and reports each fit's penalised objective (mean log loss + L1; lower is better, and the
lasso's solution is the lowest), its non-zero motif weights, the held-out block's AUPR and
the seconds taken.

Example::

    python benchmarks/warm_start_solver.py bench_out/solver_j4.tsv -- \\
        -o bench_out/solver_j4 --motif-set jaspar:4 --seed 4 --force
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

import run as bench
from epcli.core.metrics import aupr
from epcli.model import motif_fit
from epcli.train import motif_setup

ADAM_LR = 0.05


class _Captured(Exception):  # noqa: N818 - a control-flow signal, not an error
    def __init__(self, model, args: tuple, kwargs: dict):
        super().__init__("warm start captured")
        self.model, self.args, self.kwargs = model, args, kwargs


def capture(argv: list[str]) -> _Captured:
    """Run ``run.py``'s data and prepare steps with ``argv``, and train prism up to its warm
    start; return the warm start's inputs."""
    args = bench.parse_args([*argv, "--models", "prism"])
    args.out.mkdir(parents=True, exist_ok=True)
    df, _, _ = bench.load_data(args)
    train, _ = bench.prepare_sets(df, args)

    def stop(model, *a, **kw):
        raise _Captured(model, a, kw)

    motif_setup.warm_start = stop
    try:
        bench.train_models(train, args)
    except _Captured as cap:
        return cap
    raise RuntimeError("prism training never reached its warm start")


def adam_prox(model, pr, z, params, lam: float, steps: int) -> None:
    """The former fit: full-batch Adam, then the model's L1 proximal step, ``steps`` times."""
    opt = torch.optim.Adam(params, lr=ADAM_LR)
    saved, model.cfg.sparsity = model.cfg.sparsity, lam
    try:
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            u = motif_fit._u_i(model, None, None, pr, False, z)
            F.binary_cross_entropy_with_logits(u, pr.y).backward()
            opt.step()
            model.proximal_step(opt)
    finally:
        model.cfg.sparsity = saved


def compare(cap: _Captured) -> pd.DataFrame:
    """One row per (penalty, solver)."""
    model = cap.model
    enh_codes, pro_codes, ei, pi, ld, y, _cells, block = cap.args
    fitted = ~np.asarray(cap.kwargs["episode_only"])
    se, sp = model.scan_stats(enh_codes), model.scan_stats(pro_codes)
    model.fit_normalization(
        se[torch.as_tensor(np.unique(ei[fitted]))], sp[torch.as_tensor(np.unique(pi[fitted]))]
    )

    def pairs(rows: np.ndarray) -> motif_fit.Pairs:
        return motif_fit.Pairs(
            torch.as_tensor(ei[rows]),
            torch.as_tensor(pi[rows]),
            torch.as_tensor(ld[rows], dtype=torch.float32),
            torch.as_tensor(y[rows], dtype=torch.float32),
        )

    fit, held = np.flatnonzero(~block & fitted), np.flatnonzero(block & fitted)
    pf, ph = pairs(fit), pairs(held)
    with torch.no_grad():
        z = (model.act_e(se), model.act_p(sp))
    additive = [model.bias, model.w_e, model.w_p, model.dist]
    rows = []
    model.train()
    for lam in [model.cfg.sparsity * m for m in motif_fit.PATH]:
        for how in ("adam120", "adam1000", "fista"):
            with torch.no_grad():
                for p in additive:
                    p.zero_()
            t0 = time.perf_counter()
            steps: int | str
            if how == "fista":
                res = motif_fit._fit(model, pf, z, additive, lam, False)
                steps = f"{res.iterations}{'' if res.converged else ' (not converged)'}"
            else:
                steps = int(how[4:])
                adam_prox(model, pf, z, additive, lam, steps)
            sec = time.perf_counter() - t0
            with torch.no_grad():
                u = motif_fit._u_i(model, None, None, pf, False, z)
                obj = F.binary_cross_entropy_with_logits(u, pf.y) + lam * (
                    model.w_e.abs().sum() + model.w_p.abs().sum()
                )
                held_s = motif_fit._u_i(model, None, None, ph, False, z).numpy()
            rows.append(
                {
                    "penalty": lam,
                    "solver": how,
                    "steps": steps,
                    "seconds": round(sec, 2),
                    "objective": round(float(obj), 4),
                    "nonzero_weights": int((model.w_e != 0).sum() + (model.w_p != 0).sum()),
                    "heldout_aupr": round(aupr(y[held], held_s), 4),
                }
            )
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    table = compare(capture(argv[2:]))
    table.to_csv(out, sep="\t", index=False)
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
