"""Semi-synthetic ground-truth benchmark: every model, zero-shot and few-shot, on unseen cells.

On a semi-synthetic set (:mod:`epcli_bench.synth`: real hg38 sequence, labels from a hidden motif
rule, true probability of every pair known), this script

1. generates the set (or reads one written by ``benchmarks/make_synth.py`` with ``--data``);
2. splits it: training = the training cells' ``split == "train"`` region; for each unseen
   cell, support pairs come from its ``train`` region and evaluation is on its ``test``
   region (anchors that no training pair touches);
3. prepares HDF5 (:func:`epcli.prepare.prepare_hdf5`) and trains ``prism``, ``crossattn``,
   ``kmer`` and ``distance`` (:func:`epcli.train.train`) under the same wall-clock budget
   per torch model, the same seed and threads, validation held out by cell (one training
   cell) and genome block as ``epcli train`` does;
4. scores each unseen cell's test region zero-shot (k = 0: population prototype / plain model)
   and adapted with k labeled support pairs (``Predictor.build_prototype``,
   several seeds of the support draw), next to the oracle AUPR (``true_prob``), the zero-shot
   oracle (the rule with the training cells' mean TF activity), the distance-only AUPR and the
   prevalence, all on the same rows;
5. writes ``results.tsv`` (one row per model, cell, k, seed), ``summary.tsv`` (mean and SD over
   seeds), ``goals.tsv`` (prism's lift and the issue's checks), ``table.md`` and
   ``section.md`` (markdown for docs/benchmarks.md) under ``--out``, and the label-efficiency
   plot (``--plot``).

Lift = (AUPR - prevalence) / (oracle AUPR - prevalence): the share of the gap between a random
ranking and the best possible ranking that a model closes.

Examples::

    python benchmarks/run.py --quick -o bench_out/synth_quick           # harness check, ~1.5 min
    python benchmarks/run.py -o bench_out/synth --budget-s 300 \\
        --plot docs/img/label_efficiency.png                             # the documented run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from epcli.core import schema
from epcli.core.arrays import PairData
from epcli.core.errors import EpcliError
from epcli_bench import synth

REPO = Path(__file__).resolve().parents[1]
DEFAULT_GENOME = REPO / "example_data" / "genome" / "hg38_chr20_0-3000000.fa"
MODELS = ("prism", "prism-scratch", "motif-lr", "crossattn", "kmer", "distance")
TORCH_MODELS = ("prism", "prism-scratch", "crossattn")
#: Models whose ranking a prototype changes; for the others ``build_prototype`` only
#: calibrates thresholds, so their AUPR is the same at every k.
PROTOTYPE_MODELS = ("prism", "prism-scratch")
#: Shots at which the issue's goals are checked.
GOAL_SHOTS = 64
#: Adapted must beat zero-shot by this much (AUPR).
GOAL_ADAPT_GAIN = 0.03
GOAL_LIFT_ADAPTED = 0.85
GOAL_LIFT_ZERO = 0.70

#: Sizes of the full run: the benchmark-size set of docs/synthetic.md.
FULL = {
    "n_enhancers": 1500,
    "n_promoters": 400,
    "pairs_per_cell": 20_000,
    "budget_s": 300.0,
    "shots": (8, 32, 64, 128),
    "support_seeds": 3,
    "bootstrap": 200,
    "train": {
        "epochs": 1000,
        "steps_per_epoch": 40,
        "val_max_pairs": 1000,
        "patience": 1000,  # the budget decides; the best epoch on validation is kept
        "lr": 0.003,
    },
    # the CPU-sized model of example_data/demo_config.json: about 250 training pairs/s on 2
    # idle cores, twice the default d_model = 64 (about 120 pairs/s, docs/benchmarks.md)
    "model": {"d_model": 32, "n_heads": 4, "env_dim": 8},
}
#: Sizes of ``--quick`` (the example-size set, tiny models, seconds of training).
QUICK = {
    "n_enhancers": 240,
    "n_promoters": 80,
    "pairs_per_cell": 600,
    "budget_s": 8.0,
    "shots": (8, 32),
    "support_seeds": 2,
    "bootstrap": 50,
    "train": {
        "epochs": 1000,
        "steps_per_epoch": 4,
        "val_max_pairs": 100,
        "patience": 3,
        "query_size": 16,
        "proto_pairs": 32,
    },
    "model": {"d_model": 16, "n_heads": 2, "env_dim": 4},
}


# ============================================================================ helpers
def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _ints(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {text!r}") from None
    if any(v < 2 for v in vals):
        raise argparse.ArgumentTypeError("shots must be >= 2 (one pair of each class)")
    return vals


def lift(aupr: float, prevalence: float, oracle: float) -> float:
    """Share of the gap from a random ranking to the oracle that ``aupr`` closes.

    Parameters
    ----------
    aupr, prevalence, oracle : float
        A model's AUPR, the positive rate and the oracle AUPR on the same rows.

    Returns
    -------
    float
        ``(aupr - prevalence) / (oracle - prevalence)``; NaN when the oracle does not beat
        random.
    """
    gap = oracle - prevalence
    return float((aupr - prevalence) / gap) if gap > 0 else float("nan")


def _aupr(y: np.ndarray, s: np.ndarray) -> float:
    y = np.asarray(y)
    return float(average_precision_score(y, s)) if 0 < y.sum() < y.size else float("nan")


# ============================================================================ data
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Semi-synthetic ground-truth benchmark of every epcli model on unseen "
        "cells (zero-shot and few-shot).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder from benchmarks/make_synth.py (<cell>.bedpe, rule.json); default: "
        "generate a set",
    )
    p.add_argument("--genome", type=Path, default=DEFAULT_GENOME, help="FASTA file")
    p.add_argument("--quick", action="store_true", help="tiny sizes and budgets (< 2 minutes)")
    p.add_argument("--seed", type=int, default=0, help="seed of the set, training, support")
    p.add_argument("--budget-s", type=float, default=None, help="training seconds per model")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--models", type=_names, default=MODELS, help="comma-separated")
    p.add_argument("--shots", type=_ints, default=None, help="k values, comma-separated")
    p.add_argument("--support-seeds", type=int, default=None, help="draws of each support set")
    p.add_argument("--bootstrap", type=int, default=None, help="resamples for AUPR intervals")
    p.add_argument("--n-enhancers", type=int, default=None)
    p.add_argument("--n-promoters", type=int, default=None)
    p.add_argument("--pairs-per-cell", type=int, default=None)
    p.add_argument("--train-cells", type=_names, default=("T1", "T2", "T3", "T4", "T5", "T6"))
    p.add_argument("--unseen-cells", type=_names, default=("U1", "U2", "U3", "U4"))
    p.add_argument(
        "--motif-set",
        default="default",
        help="rule of a generated set: 'default', 'jaspar:SEED' or 'jaspar-pwm:SEED' "
        "(see epcli_bench.synth)",
    )
    p.add_argument(
        "--val-cell",
        default=None,
        help="training cell held out for validation (default: the last training cell)",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help='JSON {"train": {...}, "model": {...}} merged over the benchmark settings',
    )
    p.add_argument(
        "--plot", type=Path, default=None, help="PNG (default: OUT/label_efficiency.png)"
    )
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the tables, section.md and plot from OUT/run.json and OUT/results.tsv",
    )
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key in ("n_enhancers", "n_promoters", "pairs_per_cell", "budget_s", "shots"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    if args.support_seeds is None:
        args.support_seeds = preset["support_seeds"]
    if args.bootstrap is None:
        args.bootstrap = preset["bootstrap"]
    args.train_overrides = dict(preset["train"])
    args.model_overrides = dict(preset["model"])
    if args.config is not None:
        cfg = json.loads(args.config.read_text(encoding="utf-8"))
        args.train_overrides.update(cfg.get("train", {}))
        args.model_overrides.update(cfg.get("model", {}))
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    if args.support_seeds < 1 or args.budget_s <= 0:
        p.error("--support-seeds must be >= 1 and --budget-s > 0")
    return args


def _read_bedpe(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t", dtype={"name": str, "score": str})
    df.columns = [c.lstrip("#") for c in df.columns]
    missing = [c for c in synth.SYNTH_COLUMNS if c not in df.columns]
    if missing:
        raise EpcliError(f"not a semi-synthetic BEDPE: no column(s) {missing}", path=path)
    return df[list(synth.SYNTH_COLUMNS)]


def _config_from_rule(rule: dict[str, Any]) -> synth.SynthConfig:
    c = dict(rule["config"])
    for key in ("train_cells", "unseen_cells", "test_blocks"):
        c[key] = tuple(c[key])
    return synth.SynthConfig(**c)


def _rule_meta(rule: dict[str, Any]) -> dict[str, Any]:
    keys = ("config", "active", "motifs", "interactions", "cell_tfs")
    return {k: rule[k] for k in keys if k in rule}


def load_data(args: argparse.Namespace) -> tuple[pd.DataFrame, np.ndarray | None, dict]:
    """The set: generated, or read from ``--data``.

    Returns
    -------
    df : pandas.DataFrame
        :data:`epcli_bench.synth.SYNTH_COLUMNS`, every cell.
    zeroshot_logit : np.ndarray of shape (len(df),) or None
        The rule's score with the training cells' mean activity (None when ``--data`` cannot
        be regenerated from its ``rule.json`` and the genome).
    meta : dict
        What was used (for the report).
    """
    data_dir = args.out / "data"
    if args.data is None:
        cfg = synth.SynthConfig(
            seed=args.seed,
            n_enhancers=args.n_enhancers,
            n_promoters=args.n_promoters,
            pairs_per_cell=args.pairs_per_cell,
            train_cells=tuple(args.train_cells),
            unseen_cells=tuple(args.unseen_cells),
            motif_set=args.motif_set,
        )
        t0 = time.perf_counter()
        df, truth = synth.generate_with_truth(cfg, args.genome)
        rule = synth.write_set(df, truth, data_dir, args.genome.name)
        _log(f"generated {len(df):,} rows in {time.perf_counter() - t0:.1f} s -> {data_dir}")
        meta = {"source": "generated", **_rule_meta(rule)}
        return df, truth.terms["zeroshot_logit"].to_numpy(), meta
    rule = json.loads((args.data / "rule.json").read_text(encoding="utf-8"))
    cfg = _config_from_rule(rule)
    args.train_cells, args.unseen_cells = tuple(cfg.train_cells), tuple(cfg.unseen_cells)
    df = pd.concat([_read_bedpe(args.data / f"{c}.bedpe") for c in cfg.cells], ignore_index=True)
    meta = {"source": str(args.data.name), **_rule_meta(rule)}
    zs: np.ndarray | None = None
    try:
        gen, truth = synth.generate_with_truth(cfg, args.genome)
        if (
            len(gen) == len(df)
            and np.array_equal(gen["name"].to_numpy(str), df["name"].to_numpy(str))
            and np.array_equal(gen[schema.COL_LABEL].to_numpy(), df[schema.COL_LABEL].to_numpy())
        ):
            zs = truth.terms["zeroshot_logit"].to_numpy()
        else:
            _log("the set does not regenerate from rule.json; no zero-shot oracle")
    except EpcliError as exc:
        _log(f"cannot regenerate the set ({exc}); no zero-shot oracle")
    return df, zs, meta


def prepare_sets(
    df: pd.DataFrame, args: argparse.Namespace
) -> tuple[PairData, dict[str, dict[str, tuple[PairData, pd.DataFrame]]]]:
    """BEDPE -> HDF5 -> PairData for the training set and each unseen cell's support/test.

    Returns
    -------
    train : PairData
        Training cells, ``train`` region.
    unseen : dict
        ``unseen[cell]["support" | "test"] = (PairData, frame)``; the frame's rows are the
        PairData's pairs in order (checked on label and distance).
    """
    from epcli.io.hdf5 import load_pairdata
    from epcli.prepare import prepare_hdf5

    work = args.out / "prepared"
    work.mkdir(parents=True, exist_ok=True)
    split = df[synth.COL_SPLIT]
    cell = df[schema.COL_CELL]

    def one(frame: pd.DataFrame, name: str) -> PairData:
        bedpe, h5 = work / f"{name}.bedpe", work / f"{name}.h5"
        synth.write_bedpe(frame, bedpe)
        prepare_hdf5(bedpe, args.genome, h5, force=True)
        data, _ = load_pairdata([h5])
        e = (frame["start1"].to_numpy() + frame["end1"].to_numpy()) // 2
        p = (frame["start2"].to_numpy() + frame["end2"].to_numpy()) // 2
        if not (
            data.n_pairs == len(frame)
            and np.array_equal(np.asarray(data.label), frame[schema.COL_LABEL].to_numpy())
            and np.array_equal(np.asarray(data.distance), np.abs(p - e))
        ):
            raise EpcliError(f"{h5.name}: pairs are not in the order of the BEDPE", path=h5)
        return data

    t0 = time.perf_counter()
    train_frame = df[cell.isin(args.train_cells) & (split == synth.SPLIT_TRAIN)]
    train = one(train_frame, "train")
    unseen: dict[str, dict[str, tuple[PairData, pd.DataFrame]]] = {}
    for c in args.unseen_cells:
        unseen[c] = {}
        for part, region in (("support", synth.SPLIT_TRAIN), ("test", synth.SPLIT_TEST)):
            frame = df[(cell == c) & (split == region)]
            unseen[c][part] = (one(frame, f"{c}.{part}"), frame)
    _log(
        f"prepared {train.n_pairs:,} training pairs ({', '.join(args.train_cells)}) and "
        + ", ".join(
            f"{c}: {v['support'][0].n_pairs:,} support / {v['test'][0].n_pairs:,} test"
            for c, v in unseen.items()
        )
        + f" in {time.perf_counter() - t0:.1f} s"
    )
    return train, unseen


# ============================================================================ training
def train_models(train: PairData, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Train every model of ``args.models``; returns per model its directory and timings."""
    from epcli.cli.train import format_epoch
    from epcli.model.config import ModelConfig
    from epcli.train import TrainConfig
    from epcli.train import train as run_training

    val_cell = args.val_cell or args.train_cells[-1]
    info: dict[str, dict[str, Any]] = {}
    for kind in args.models:
        tdict = dict(args.train_overrides)
        if kind == "prism":  # U_I is fitted by the warm start; episodes fine-tune it gently
            tdict["lr"] = min(float(tdict.get("lr", 1e-3)), 1e-3)
        tdict.update(
            model=kind,
            max_time=float(args.budget_s),
            seed=args.seed,
            num_threads=args.threads,
            device=args.device,
            val_cells=[val_cell],
        )
        tcfg = TrainConfig.from_dict(tdict)
        mcfg = ModelConfig.from_dict(
            {**args.model_overrides, "kind": kind if kind in TORCH_MODELS else "prism"}
        )
        out = args.out / "models" / kind
        out.parent.mkdir(parents=True, exist_ok=True)
        _log(f"training {kind} (budget {args.budget_s:g} s, validation cell {val_cell})")
        t0 = time.perf_counter()
        res = run_training(
            train,
            tcfg,
            mcfg,
            out,
            log=lambda m, k=kind: _log(f"  {k}: {m}"),
            force=True,
            on_epoch=lambda r, k=kind: _log(f"  {k}: {format_epoch(r)}"),
        )
        wall = time.perf_counter() - t0
        hist = res.history
        rates = [h["train_pairs_per_s"] for h in hist if "train_pairs_per_s" in h]
        info[kind] = {
            "dir": out,
            "wall_s": wall,
            "stopped": res.stopped,
            "best_epoch": res.best_epoch,
            "epochs_run": res.epochs_run,
            "steps": int(sum(h.get("steps", 0) for h in hist)),
            "pairs_per_s": float(np.median(rates)) if rates else float("nan"),
            "collapsed": bool(res.model_card.get("collapsed", False)),
            "train_config": tcfg.to_dict(),
            "model_config": mcfg.to_dict() if kind in TORCH_MODELS else None,
        }
        _log(
            f"{kind}: {wall:.0f} s, stopped by {res.stopped}, best epoch {res.best_epoch} of "
            f"{res.epochs_run}"
        )
    return info


# ============================================================================ evaluation
def _lifts(df: pd.DataFrame, col: str) -> list[float]:
    return [
        lift(a, p, o) for a, p, o in zip(df[col], df["prevalence"], df["oracle_aupr"], strict=True)
    ]


def _scores(pred: Any, test: PairData, feats: dict | None, proto: Any) -> np.ndarray:
    """Logits of ``test`` with a prototype (None: zero-shot).

    For torch models ``feats`` (from ``pred.features(test)``) is reused, and the logits are
    ``score_features`` of them, which is what :meth:`Predictor.score` computes.
    """
    from epcli.inference.engine import score_features

    if feats is None:
        return pred.score(test, prototype=proto)["logit"]
    arr = None if proto is None else proto.array()
    return score_features(pred.model, feats, arr)["logit"]


def evaluate_models(
    models: dict[str, dict[str, Any]],
    unseen: dict[str, dict[str, tuple[PairData, pd.DataFrame]]],
    zs_logit: pd.Series | None,
    args: argparse.Namespace,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every unseen cell's test region, zero-shot and with k-shot prototypes.

    Returns
    -------
    results : pandas.DataFrame
        One row per model, cell, k and support seed (k = 0: zero-shot, seed -1): ``aupr``
        and the references on the same rows (prevalence, oracle, zero-shot oracle, distance).
    intervals : pandas.DataFrame
        :func:`epcli.evaluate.metrics.evaluate_table` rows of the zero-shot scores (AUPR with a
        bootstrap interval, AUROC, best-F1 threshold), per model and cell.
    """
    import torch

    from epcli.evaluate.metrics import evaluate_table
    from epcli.inference.predictor import Predictor

    torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    tables = []
    for kind, m in models.items():
        t0 = time.perf_counter()
        pred = Predictor.load(m["dir"], device=args.device)
        for cell, parts in unseen.items():
            test, frame = parts["test"]
            support, _ = parts["support"]
            y = np.asarray(test.label).astype(np.int64)
            ref = {
                "model": kind,
                "cell": cell,
                "n": int(y.size),
                "n_pos": int(y.sum()),
                "prevalence": float(y.mean()),
                "oracle_aupr": _aupr(y, frame[synth.COL_TRUE_PROB].to_numpy()),
                "zeroshot_oracle_aupr": _aupr(y, zs_logit.loc[frame.index].to_numpy())
                if zs_logit is not None
                else float("nan"),
                "distance_aupr": _aupr(y, -np.asarray(test.distance, np.float64)),
            }
            # prototype-independent features once; score_features is what Predictor.score does
            feats = pred.features(test) if pred.is_torch else None

            zs = _scores(pred, test, feats, None)
            rows.append({**ref, "k": 0, "seed": -1, "aupr": _aupr(y, zs)})
            t = evaluate_table(
                zs,
                y,
                np.asarray(test.distance),
                [cell] * y.size,
                bootstrap=args.bootstrap,
                seed=args.seed,
            )
            t = t[t["cell"] == cell].assign(model=kind)
            tables.append(t)
            for k in args.shots:
                for s in range(args.support_seeds):
                    proto = pred.build_prototype(support, cell, shots=k, seed=args.seed + s)
                    rows.append(
                        {
                            **ref,
                            "k": k,
                            "seed": args.seed + s,
                            "aupr": _aupr(y, _scores(pred, test, feats, proto)),
                        }
                    )
        _log(f"scored {kind} in {time.perf_counter() - t0:.1f} s")
    results = pd.DataFrame(rows)
    results["lift"] = _lifts(results, "aupr")
    intervals = pd.concat(tables, ignore_index=True)
    cols = ["model"] + [c for c in intervals.columns if c != "model"]
    return results, intervals[cols]


def _planted(meta: dict[str, Any], seqs: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Names and log1p counts (n_windows, n_motifs) of the rule's motifs in windows."""
    motifs = tuple(synth.Motif(**m) for m in meta["motifs"])
    return [m.name for m in motifs], np.log1p(synth.motif_counts(seqs, motifs))


def _best_match(z: np.ndarray, planted: np.ndarray, names: list[str]) -> tuple[str, float]:
    """The planted motif whose counts correlate best with a model motif's activity z."""
    zc = z - z.mean()
    pc = planted - planted.mean(0)
    den = np.sqrt((zc**2).sum() * (pc**2).sum(0))
    r = np.where(den > 0, zc @ pc / np.where(den > 0, den, 1), 0.0)
    j = int(np.argmax(r))
    return names[j], float(r[j])


#: A model motif "is" a planted TF when its activity over the training windows correlates
#: with the TF's planted-site counts at least this much (same TF family: FOS/JUN for AP-1).
MATCH_R = 0.5


def recovery(
    model_dir: Path, train: PairData, unseen: dict, meta: dict[str, Any], shots: int, seed: int
) -> dict[str, Any]:
    """Precision at k of the planted TFs among the model card's top motifs and adapt's TFs.

    A top entry of the card is a hit when its motif (both motifs, for an E x P pair)
    matches a planted TF of its side (:data:`MATCH_R`): for the enhancer, a motif of the
    rule's E x P interactions or a cell TF (whose mean activity over the training cells is
    an additive enhancer term); for the promoter, a motif of the interactions. A TF that
    ``adapt`` says an unseen cell favours is a hit when it matches one of the cell's active
    TFs.
    """
    import torch

    from epcli.inference.predictor import Predictor
    from epcli.model.motif_read import model_feature_names

    pred = Predictor.load(model_dir, device="cpu")
    model = pred.model
    if not hasattr(model, "scanner") or "motifs" not in meta:
        return {}
    ids, _ = model_feature_names(model)
    pos = {i: k for k, i in enumerate(ids)}
    e_tf = {a for a, _, _ in meta["interactions"]} | set(meta.get("cell_tfs", []))
    p_tf = {b for _, b, _ in meta["interactions"]}
    with torch.no_grad():
        ze = torch.cat(
            [
                model.encode_enhancers(train.enh_seqs[a : a + 256])
                for a in range(0, len(train.enh_seqs), 256)
            ]
        ).numpy()
        zp = torch.cat([model.encode_promoters(train.pro_seqs[a : a + 256])
                        for a in range(0, len(train.pro_seqs), 256)]).numpy()  # fmt: skip
    names, fe = _planted(meta, train.enh_seqs)
    _, fp = _planted(meta, train.pro_seqs)

    def match(mid: str, side: str) -> tuple[str, float]:
        z, f = (ze, fe) if side == "e" else (zp, fp)
        return _best_match(z[:, pos[mid]], f, names)

    top = pred.model_card.get("top_motifs", [])
    hits, rows = [], []
    for t in top[:10]:
        if t["part"] == "pair":
            (a, ra), (b, rb) = match(t["id"], "e"), match(t["promoter_id"], "p")
            hit = (
                ra >= MATCH_R
                and rb >= MATCH_R
                and (a, b) in {(x, y) for x, y, _ in meta["interactions"]}
            )
            got = f"{a} x {b} (r {ra:.2f}, {rb:.2f})"
        else:
            side = "e" if t["part"] == "enhancer" else "p"
            a, ra = match(t["id"], side)
            hit = ra >= MATCH_R and a in (e_tf if side == "e" else p_tf)
            got = f"{a} (r {ra:.2f})"
        hits.append(hit)
        rows.append({**t, "matches": got, "hit": bool(hit)})
    out: dict[str, Any] = {
        "card_top": rows,
        "card_precision_at_5": float(np.mean(hits[:5])) if hits else float("nan"),
        "card_precision_at_10": float(np.mean(hits[:10])) if hits else float("nan"),
        "adapt": {},
    }
    for cell, parts in unseen.items():
        support, _ = parts["support"]
        proto = pred.build_prototype(support, cell, shots=shots, seed=seed)
        fav = proto.favoured_tfs or []
        active = set(meta["active"].get(cell, ()))
        got = [match(t["id"], "e") for t in fav[:5]]
        h = [r >= MATCH_R and n in active for n, r in got]
        out["adapt"][cell] = {
            "active": sorted(active),
            "favoured": [f"{t['name']} ({t['id']}) -> {n} r {r:.2f}" for t, (n, r) in
                         zip(fav[:5], got, strict=True)],
            "precision_at_3": float(np.mean(h[:3])) if h else 0.0,
            "precision_at_5": float(np.mean(h[:5])) if h else 0.0,
        }  # fmt: skip
    return out


def markdown_recovery(rec: dict[str, Any]) -> str:
    """The recovery check as markdown."""
    if not rec:
        return "(no motif model: no recovery check)"
    lines = [
        f"Model card top motifs: precision at 5 = {rec['card_precision_at_5']:.2f}, at 10 = "
        f"{rec['card_precision_at_10']:.2f} (planted TFs of the entry's side: interaction "
        "motifs, and cell TFs for enhancer terms).",
        "",
        "| rank | part | motif | effect | best planted match | hit |",
        "|---|---|---|---|---|---|",
    ]
    for i, t in enumerate(rec["card_top"], start=1):
        name = t["name"] + (f" x {t['promoter_name']}" if t["part"] == "pair" else "")
        lines.append(
            f"| {i} | {t['part']} | {name} | {t['effect']:+.3f} | {t['matches']} | "
            f"{'yes' if t['hit'] else 'no'} |"
        )
    lines += ["", "| unseen cell | active TFs | adapt's favoured TFs (top 5) | precision at 3 |",
              "|---|---|---|---|"]  # fmt: skip
    for cell, a in rec["adapt"].items():
        lines.append(
            f"| {cell} | {' '.join(a['active'])} | {'; '.join(a['favoured'])} | "
            f"{a['precision_at_3']:.2f} |"
        )
    return "\n".join(lines)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD (over support seeds) of AUPR per model, cell and k, with the references."""
    keys = ["model", "cell", "k"]
    ref_cols = [
        "n",
        "n_pos",
        "prevalence",
        "oracle_aupr",
        "zeroshot_oracle_aupr",
        "distance_aupr",
    ]
    g = results.groupby(keys, sort=False)
    out = g[ref_cols].first()
    out["aupr_mean"] = g["aupr"].mean()
    out["aupr_sd"] = g["aupr"].std(ddof=1)
    out["n_seeds"] = g["aupr"].size()
    out = out.reset_index()
    out["lift"] = _lifts(out, "aupr_mean")
    return out


def goals(summary: pd.DataFrame, shots: tuple[int, ...]) -> pd.DataFrame:
    """prism's lifts and the issue's checks, per unseen cell.

    Checks: lift at ``GOAL_SHOTS`` shots >= 0.85; zero-shot lift >= 0.70; adapted > zero-shot;
    prism (zero-shot and adapted) above every baseline's best AUPR on the cell.
    """
    if "prism" not in set(summary["model"]):
        return pd.DataFrame()
    k_goal = GOAL_SHOTS if GOAL_SHOTS in shots else max(shots)
    rows = []
    for cell, g in summary.groupby("cell", sort=False):
        pr = g[g["model"] == "prism"].set_index("k")
        base = g[g["model"] != "prism"]
        zs, ad = float(pr.loc[0, "aupr_mean"]), float(pr.loc[k_goal, "aupr_mean"])
        prev, orc = float(pr.loc[0, "prevalence"]), float(pr.loc[0, "oracle_aupr"])
        zso = float(pr.loc[0, "zeroshot_oracle_aupr"])
        best_base = float(base["aupr_mean"].max()) if len(base) else float("nan")
        best_name = str(base.loc[base["aupr_mean"].idxmax(), "model"]) if len(base) else "(none)"
        rows.append(
            {
                "cell": cell,
                "k_goal": k_goal,
                "prevalence": prev,
                "oracle_aupr": orc,
                "zeroshot_oracle_aupr": zso,
                "prism_zero_shot": zs,
                "prism_adapted": ad,
                "lift_zero_shot": lift(zs, prev, orc),
                "lift_adapted": lift(ad, prev, orc),
                "lift_zeroshot_oracle": lift(zso, prev, orc),
                "best_baseline": best_name,
                "best_baseline_aupr": best_base,
                "ok_lift_adapted": lift(ad, prev, orc) >= GOAL_LIFT_ADAPTED,
                "ok_lift_zero_shot": lift(zs, prev, orc) >= GOAL_LIFT_ZERO,
                "ok_adapted_gt_zero_shot": ad - zs >= GOAL_ADAPT_GAIN,
                "zero_shot_over_zeroshot_oracle": lift(zs, prev, orc) / lift(zso, prev, orc)
                if lift(zso, prev, orc) > 0
                else float("nan"),
                "ok_above_baselines": bool(min(zs, ad) > best_base),
            }
        )
    return pd.DataFrame(rows)


# ============================================================================ report
def _f(x: float, d: int = 3) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{d}f}"


def markdown_table(summary: pd.DataFrame, shots: tuple[int, ...]) -> str:
    """AUPR per unseen cell and model: k = 0 and each k (mean ± SD), references beside."""
    head = (
        "| cell | model | prevalence | k = 0 (zero-shot) | "
        + " | ".join(f"k = {k}" for k in shots)
        + " | oracle | zero-shot oracle | distance (-d) |"
    )
    sep = "|" + "---|" * (head.count("|") - 1)
    lines = [head, sep]
    cells = list(dict.fromkeys(summary["cell"]))
    models = list(dict.fromkeys(summary["model"]))
    for cell, model in ((c, m) for c in cells for m in models):
        g = summary[(summary["cell"] == cell) & (summary["model"] == model)].set_index("k")
        if g.empty:
            continue
        r0 = g.loc[0]
        cells = [f"{r0['aupr_mean']:.3f}"]
        for k in shots:
            if k not in g.index:
                cells.append("-")
            elif model not in PROTOTYPE_MODELS:
                cells.append("same")
            else:
                r = g.loc[k]
                sd = f" ± {r['aupr_sd']:.3f}" if np.isfinite(r["aupr_sd"]) else ""
                cells.append(f"{r['aupr_mean']:.3f}{sd}")
        lines.append(
            f"| {cell} | {model} | {r0['prevalence']:.3f} | "
            + " | ".join(cells)
            + f" | {_f(r0['oracle_aupr'])} | {_f(r0['zeroshot_oracle_aupr'])} | "
            f"{_f(r0['distance_aupr'])} |"
        )
    return "\n".join(lines)


def markdown_goals(g: pd.DataFrame) -> str:
    """prism's lift and the checks as a markdown table."""
    if g.empty:
        return "(prism was not run: no goals to check)"

    def ok(v: bool) -> str:
        return "yes" if v else "**no**"

    k = int(g["k_goal"].iloc[0])
    lines = [
        f"| cell | lift zero-shot (goal >= {GOAL_LIFT_ZERO:.2f}) | lift {k}-shot (goal >= "
        f"{GOAL_LIFT_ADAPTED:.2f}) | lift of the zero-shot oracle (prism zero-shot / it) | "
        f"{k}-shot - zero-shot (>= {GOAL_ADAPT_GAIN}) | "
        "prism above every baseline |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in g.iterrows():
        lines.append(
            f"| {r['cell']} | {_f(r['lift_zero_shot'], 2)} ({ok(r['ok_lift_zero_shot'])}) | "
            f"{_f(r['lift_adapted'], 2)} ({ok(r['ok_lift_adapted'])}) | "
            f"{_f(r['lift_zeroshot_oracle'], 2)} ({_f(r['zero_shot_over_zeroshot_oracle'], 2)}) | "
            f"{r['prism_adapted'] - r['prism_zero_shot']:+.3f} "
            f"({ok(r['ok_adapted_gt_zero_shot'])}) | "
            f"{ok(r['ok_above_baselines'])} (best baseline {r['best_baseline']} "
            f"{_f(r['best_baseline_aupr'])}) |"
        )
    return "\n".join(lines)


def plot(summary: pd.DataFrame, shots: tuple[int, ...], path: Path, subtitle: str = "") -> None:
    """AUPR vs k per model (mean ± SD), oracle / zero-shot oracle / distance as lines.

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`summarise`.
    shots : tuple of int
        The k values (k = 0 is added).
    path : Path
        PNG to write.
    subtitle : str
        A line under the panels (budget, machine).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = list(dict.fromkeys(summary["cell"]))
    ks = [0, *shots]
    xpos = {k: i for i, k in enumerate(ks)}
    fig, axes = plt.subplots(1, len(cells), figsize=(5.2 * len(cells), 4.8), squeeze=False)
    colors = {
        "prism": "C0",
        "crossattn": "C1",
        "kmer": "C2",
        "distance": "C3",
        "prism-scratch": "C4",
        "motif-lr": "C5",
    }
    for ax, cell in zip(axes[0], cells, strict=True):
        g = summary[summary["cell"] == cell]
        r0 = g.iloc[0]
        curves = [m for m in dict.fromkeys(g["model"]) if m != "distance"]
        # prism last and on top, so that a baseline with the same values does not hide it
        curves.sort(key=lambda m: m in PROTOTYPE_MODELS)
        for model in curves:
            gm = g[g["model"] == model].set_index("k").reindex(ks)
            top = model in PROTOTYPE_MODELS
            ax.errorbar(
                [xpos[k] for k in ks],
                gm["aupr_mean"],
                yerr=gm["aupr_sd"].fillna(0.0),
                marker="o" if top else "s",
                ms=5 if top else 7,
                capsize=3,
                color=colors.get(model),
                label=model,
                zorder=4 if top else 3,
            )
        ax.axhline(r0["oracle_aupr"], color="k", ls="--", lw=1, label="oracle (true_prob)")
        if np.isfinite(r0["zeroshot_oracle_aupr"]):
            ax.axhline(
                r0["zeroshot_oracle_aupr"], color="0.4", ls=":", lw=1.2, label="zero-shot oracle"
            )
        dm = g[(g["model"] == "distance") & (g["k"] == 0)]
        dist = float(dm["aupr_mean"].iloc[0]) if len(dm) else float(r0["distance_aupr"])
        ax.axhline(dist, color=colors["distance"], ls="-.", lw=1.2, label="distance model")
        ax.axhline(r0["prevalence"], color="0.7", lw=1, label="prevalence (random)")
        ax.set_xticks(range(len(ks)), [str(k) for k in ks])
        ax.set_xlabel("labeled support pairs of the unseen cell (k)")
        ax.set_ylabel("AUPR on the test region")
        ax.set_title(f"unseen cell {cell} (n = {int(r0['n'])}, {int(r0['n_pos'])} positives)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    if subtitle:
        fig.suptitle(subtitle, y=0.995, fontsize=9, color="0.3")
    fig.tight_layout(rect=(0, 0.12, 1, 0.97 if subtitle else 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine() -> str:
    """One line about the machine the run used."""
    import torch

    dev = "CUDA " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{os.cpu_count()} CPU cores ({platform.machine()}, {platform.system()}), {dev}; "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def command_line(argv: list[str] | None) -> str:
    """The command as typed (paths relative to the repository where possible)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return "python benchmarks/run.py " + " ".join(args)


def section_markdown(info: dict[str, Any], summary: pd.DataFrame, goal: pd.DataFrame) -> str:
    """Markdown of a run: command, settings, machine, tables (for docs/benchmarks.md).

    Parameters
    ----------
    info : dict
        The content of ``run.json`` (command, machine, timings, settings, models, data).
    summary, goal : pandas.DataFrame
        From :func:`summarise` and :func:`goals`.
    """
    st, meta, tm = info["settings"], info["data"], info["timings_s"]
    cfg = meta["config"]
    models = info["models"]
    train_lines = "\n".join(
        f"| {k} | {v['wall_s']:.0f} s | {v['stopped']} | {v['best_epoch']} / {v['epochs_run']} "
        f"| {v['steps']} | {_f(v['pairs_per_s'], 0)} |"
        for k, v in models.items()
    )
    active = "; ".join(f"{c}: {' '.join(v)}" for c, v in meta["active"].items())
    seeds = ", ".join(str(st["seed"] + s) for s in range(st["support_seeds"]))
    shots = tuple(st["shots"])
    return f"""Command: `{info["command"]}`

- Set: {meta["source"]}, seed {cfg["seed"]}, {cfg["n_enhancers"]:,} enhancers and
  {cfg["n_promoters"]:,} promoters placed, {cfg["pairs_per_cell"]:,} pairs per cell. Training
  cells {", ".join(st["train_cells"])} (train region); validation cell {st["val_cell"]} and the
  last {st["val_block_frac"]:.0%} genome block of the train region. Unseen cells
  {", ".join(st["unseen_cells"])}: support pairs from their train region, evaluation on their
  test region. Active TFs: {active}.
- Training: {st["budget_s"]:g} s wall-clock budget per torch model, seed {st["seed"]},
  {st["threads"]} torch threads, device {st["device"]}; training options
  `{json.dumps(st["train_overrides"])}` over `TrainConfig`'s defaults; model options
  `{json.dumps(st["model_overrides"])}` over `ModelConfig`'s defaults (both torch models).
- Support draws: seeds {seeds} for each k ({", ".join(str(k) for k in shots)}).
- Machine: {info["machine"]}.
- Wall time: {tm["total"] / 60:.1f} min (data {tm["data"]:.0f} s, prepare {tm["prepare"]:.0f} s,
  training {tm["train"]:.0f} s, scoring {tm["score"]:.0f} s).

| model | training wall | stopped by | best epoch / epochs | steps | train pairs/s |
|---|---|---|---|---|---|
{train_lines}

AUPR on each unseen cell's test region (k-shot: mean ± SD over the support draws; "same": the
model has no prototype, so k labeled pairs only calibrate its thresholds and its ranking is the
zero-shot one; oracle: ranking by `true_prob`; zero-shot oracle: the rule with the training
cells' mean TF activity; distance: ranking by minus the distance):

{markdown_table(summary, shots)}

prism's lift = (AUPR - prevalence) / (oracle - prevalence), and the goals of the issue:

{markdown_goals(goal)}

Recovery of the planted rule (a model motif matches a planted TF when its activity over the
training windows correlates >= {MATCH_R} with the TF's planted-site counts):

{markdown_recovery(info.get("recovery", {}))}
"""


def write_report(out: Path, info: dict[str, Any], results: pd.DataFrame, plot_path: Path) -> str:
    """Summary, goals, tables, section, ``run.json`` and plot of a run; returns the tables."""
    shots = tuple(info["settings"]["shots"])
    summary = summarise(results)
    goal = goals(summary, shots)
    results.to_csv(out / "results.tsv", sep="\t", index=False, float_format="%.5f")
    summary.to_csv(out / "summary.tsv", sep="\t", index=False, float_format="%.5f")
    goal.to_csv(out / "goals.tsv", sep="\t", index=False, float_format="%.5f")
    tables = markdown_table(summary, shots) + "\n\n" + markdown_goals(goal) + "\n"
    (out / "table.md").write_text(tables, encoding="utf-8")
    (out / "section.md").write_text(section_markdown(info, summary, goal), encoding="utf-8")
    (out / "run.json").write_text(json.dumps(info, indent=1, default=str) + "\n")
    st = info["settings"]
    subtitle = (
        f"training budget {st['budget_s']:g} s per torch model, seed {st['seed']}, "
        f"{info['machine'].split(';')[0]}"
    )
    plot(summary, shots, plot_path, subtitle)
    return tables


# ============================================================================ main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    plot_path = args.plot or out / "label_efficiency.png"
    if args.report_only:
        try:
            info = json.loads((out / "run.json").read_text(encoding="utf-8"))
            results = pd.read_csv(out / "results.tsv", sep="\t")
        except (OSError, ValueError) as exc:
            print(f"error: cannot read the run in {out}: {exc}", file=sys.stderr)
            return 1
        print(write_report(out, info, results, plot_path))
        return 0
    if out.exists() and any(out.iterdir()) and not args.force:
        print(f"error: {out} exists and is not empty (use --force)", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    try:
        t0 = time.perf_counter()
        df, zs_logit, meta = load_data(args)
        timings["data"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        train, unseen = prepare_sets(df, args)
        timings["prepare"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        models = train_models(train, args)
        timings["train"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        zs = None if zs_logit is None else pd.Series(zs_logit, index=df.index)
        results, intervals = evaluate_models(models, unseen, zs, args)
        timings["score"] = time.perf_counter() - t0
        rec = (
            recovery(models["prism"]["dir"], train, unseen, meta, GOAL_SHOTS, args.seed)
            if "prism" in models
            else {}
        )
    except EpcliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    timings["total"] = time.perf_counter() - t_all
    intervals.to_csv(out / "zero_shot_eval.tsv", sep="\t", index=False, float_format="%.5f")
    tcfg = next(iter(models.values()))["train_config"] if models else {}
    info = {
        "command": command_line(argv),
        "machine": machine(),
        "timings_s": timings,
        "settings": {
            "budget_s": args.budget_s,
            "seed": args.seed,
            "threads": args.threads,
            "device": args.device,
            "shots": list(args.shots),
            "support_seeds": args.support_seeds,
            "bootstrap": args.bootstrap,
            "train_cells": list(args.train_cells),
            "unseen_cells": list(args.unseen_cells),
            "val_cell": args.val_cell or args.train_cells[-1],
            "val_block_frac": tcfg.get("val_block_frac", 0.2),
            "train_overrides": args.train_overrides,
            "model_overrides": args.model_overrides,
        },
        "models": {
            k: {kk: (str(vv) if isinstance(vv, Path) else vv) for kk, vv in v.items()}
            for k, v in models.items()
        },
        "data": meta,
        "recovery": rec,
    }
    print(write_report(out, info, results, plot_path))
    _log(f"done in {timings['total'] / 60:.1f} min; outputs in {out}, plot {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
