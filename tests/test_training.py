"""Tests of epcli.train: config, splits, episodes, input checks, the loop, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from epcli.cli.train import format_epoch
from epcli.core.arrays import PairData
from epcli.core.errors import EpcliError, UsageError
from epcli.core.metrics import aupr
from epcli.inference.predictor import Predictor
from epcli.io.modeldir import load_model_dir, load_train_state
from epcli.model.config import ModelConfig
from epcli.train import (
    VAL_CELLS,
    VAL_REGION,
    EpisodeSampler,
    TrainConfig,
    check_inputs,
    check_training_rows,
    make_split,
    train,
)
from epcli.train.validate import CellValidation, SetValidation, selection_value
from helpers import tiny_model_config

#: GATAAGCT: the planted motif that makes an enhancer positive.
MOTIF = np.array([2, 0, 3, 0, 0, 2, 1, 3], np.uint8)


def make_data(
    seed: int = 0,
    n_cells: int = 3,
    per_cell: int = 160,
    le: int = 200,
    lp: int = 150,
    chroms: tuple[str, ...] = ("chr1",),
    n_enh: int = 120,
    n_pro: int = 60,
) -> PairData:
    """Random windows; an enhancer carrying 3 copies of MOTIF makes every pair positive."""
    rng = np.random.default_rng(seed)
    enh = rng.integers(0, 4, size=(n_enh, le), dtype=np.uint8)
    pro = rng.integers(0, 4, size=(n_pro, lp), dtype=np.uint8)
    has = rng.random(n_enh) < 0.4
    for i in np.flatnonzero(has):
        for pos in rng.choice(le - 8, size=3, replace=False):
            enh[i, pos : pos + 8] = MOTIF
    enh_chrom = rng.choice(np.array(chroms), size=n_enh)
    enh_mid = rng.integers(10_000, 1_000_000, size=n_enh)
    e = rng.integers(0, n_enh, n_cells * per_cell)
    p = rng.integers(0, n_pro, n_cells * per_cell)
    cell = np.repeat(np.arange(n_cells), per_cell)
    em = enh_mid[e]
    pm = np.maximum(em + rng.choice([-1, 1], e.size) * rng.integers(1_000, 50_000, e.size), 0)
    return PairData(
        enh_seqs=enh,
        pro_seqs=pro,
        enh_idx=e.astype(np.int64),
        pro_idx=p.astype(np.int64),
        distance=np.abs(pm - em).astype(np.int64),
        cell_idx=cell.astype(np.int64),
        label=has[e].astype(np.int8),
        chrom=enh_chrom[e].astype(object),
        enh_mid=em.astype(np.int64),
        pro_mid=pm.astype(np.int64),
        cells=[f"C{i}" for i in range(n_cells)],
    )


def tiny_model() -> ModelConfig:
    return tiny_model_config()


def tiny_train(**kw) -> TrainConfig:
    """Training options for the from-scratch prism (the motif model: tests/test_motif_model)."""
    base = dict(
        model="prism-scratch",
        epochs=3,
        steps_per_epoch=10,
        query_size=32,
        support_size=8,
        lr=3e-3,
        seed=0,
        num_threads=1,
        patience=10,
        val_max_pairs=60,
        proto_pairs=32,
        device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


# ============================================================================ config
def test_train_config_round_trip_and_unknown_keys():
    cfg = TrainConfig(val_cells=["A"], max_time=12.5, loss_hsic=0.1)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert TrainConfig.from_dict(d) == cfg
    with pytest.raises(EpcliError, match="unknown key.*'epoch'.*'lrr'") as exc:
        TrainConfig.from_dict({"epoch": 3, "lrr": 0.1})
    assert "valid keys" in exc.value.hint and "epochs" in exc.value.hint
    with pytest.raises(UsageError, match="support_size"):
        TrainConfig(support_size=1)
    with pytest.raises(UsageError, match="model"):
        TrainConfig(model="transformer")
    with pytest.raises(UsageError, match="wrong type"):
        TrainConfig(epochs="3")


# ============================================================================ splits
def test_block_split_single_chromosome():
    data = make_data()
    cfg = TrainConfig(val_cells=["C1"], val_block_frac=0.25)
    s = make_split(data, cfg)
    assert s.region_mode == "blocks" and s.val_cells == ["C1"]
    # the cut, by hand: the enhancer midpoint at the 75% position of the sorted midpoints
    mids = np.sort(data.enh_mid)
    cut = int(mids[int(np.floor(0.75 * mids.size))])
    assert s.block_cuts == {"chr1": cut}
    e_val, p_val = data.enh_mid >= cut, data.pro_mid >= cut
    straddle = e_val != p_val
    assert s.n_straddling == int(straddle.sum()) > 0
    in_val_region = e_val & p_val
    c1 = data.cell_idx == 1
    assert set(s.train_rows) == set(np.flatnonzero(~c1 & ~e_val & ~p_val))
    assert set(s.val_rows[VAL_CELLS]) == set(np.flatnonzero(c1 & in_val_region))
    assert set(s.val_rows[VAL_REGION]) == set(np.flatnonzero(~c1 & in_val_region))
    for rows in s.val_rows.values():
        assert not np.isin(rows, np.flatnonzero(straddle)).any()
    # no training row in a validation cell or in the validation region
    assert not (data.cell_idx[s.train_rows] == 1).any()
    assert (data.enh_mid[s.train_rows] < cut).all() and (data.pro_mid[s.train_rows] < cut).all()
    assert any("straddling" in line for line in s.description)


def test_chromosome_split_auto_and_explicit():
    data = make_data(chroms=("chr1", "chr2", "chr3", "chr4", "chr5"), n_cells=2)
    s = make_split(data, TrainConfig(val_block_frac=0.2))
    assert s.region_mode == "chromosomes" and s.val_chroms
    assert s.n_straddling == 0
    assert not np.isin(data.chrom[s.train_rows], s.val_chroms).any()
    assert np.isin(data.chrom[s.val_rows[VAL_REGION]], s.val_chroms).all()
    # 2 cells: no held-out cell, and the description says so
    assert s.val_cells == [] and VAL_CELLS not in s.val_rows
    assert any("no held-out cell" in line for line in s.description)
    share = np.isin(data.chrom, s.val_chroms).mean()
    assert 0.2 <= share < 1.0
    s2 = make_split(data, TrainConfig(val_chroms=["chr2"]))
    assert s2.val_chroms == ["chr2"]
    assert set(s2.val_rows[VAL_REGION]) == set(np.flatnonzero(data.chrom == "chr2"))
    assert set(s2.train_rows) == set(np.flatnonzero(data.chrom != "chr2"))


def test_auto_val_cell_when_three_cells():
    data = make_data(n_cells=3)
    s = make_split(data, TrainConfig(seed=5))
    assert len(s.val_cells) == 1 and s.val_cells[0] in data.cells
    assert s.val_cells[0] not in s.train_cells and len(s.train_cells) == 2
    assert make_split(data, TrainConfig(seed=5)).val_cells == s.val_cells
    none = make_split(data, TrainConfig(val_cells=[]))
    assert none.val_cells == [] and VAL_CELLS not in none.val_rows


def test_unknown_validation_names():
    data = make_data()
    with pytest.raises(UsageError, match="unknown validation cell.*K562") as exc:
        make_split(data, TrainConfig(val_cells=["K562"]))
    assert "C0, C1, C2" in exc.value.hint
    with pytest.raises(UsageError, match="chrX") as exc:
        make_split(data, TrainConfig(val_chroms=["chrX"]))
    assert "chr1" in exc.value.hint
    with pytest.raises(UsageError, match="no cell is left"):
        make_split(data, TrainConfig(val_cells=["C0", "C1", "C2"]))


def test_early_stopping_value_is_the_mean_over_every_validation_cell():
    def cell(a: float) -> CellValidation:
        return CellValidation(n=100, n_pos=25, prevalence=0.25, aupr_zero_shot=a)

    def one_set(auprs: list[float]) -> SetValidation:
        cells = {f"C{i}": cell(a) for i, a in enumerate(auprs)}
        return SetValidation(cells, float(np.nanmean(auprs)), None, 0.25, 100 * len(auprs))

    # one held-out cell up, five region cells down: the mean over six cells, not the first set
    val = {VAL_CELLS: one_set([0.70]), VAL_REGION: one_set([0.60, 0.62, 0.64, 0.66, 0.68])}
    assert selection_value(val) == pytest.approx((0.70 + 0.60 + 0.62 + 0.64 + 0.66 + 0.68) / 6)
    # a cell without both classes (NaN) is left out; none at all gives NaN
    val[VAL_CELLS] = one_set([float("nan")])
    assert selection_value(val) == pytest.approx(0.64)
    assert np.isnan(selection_value({VAL_CELLS: one_set([float("nan")])}))


# ============================================================================ episodes
def test_episode_sampler():
    data = make_data()
    rows = np.arange(data.n_pairs)
    s = EpisodeSampler(data.label, data.cell_idx, rows, support_size=8, query_size=20)
    eps = s.sample(np.random.default_rng(1), 3)
    assert sorted(e.cell for e in eps) == [0, 1, 2]  # distinct cells while they last
    for e in eps:
        assert e.support.size == 8 and e.query.size == 20
        assert not np.isin(e.query, e.support).any()
        assert np.unique(e.query).size == e.query.size
        assert (data.cell_idx[e.support] == e.cell).all()
        assert (data.cell_idx[e.query] == e.cell).all()
        ys = data.label[e.support]
        prev = (data.label[data.cell_idx == e.cell] == 1).mean()
        assert (ys == 1).sum() == min(max(round(8 * prev), 1), 7)
    again = s.sample(np.random.default_rng(1), 3)
    for a, b in zip(eps, again, strict=True):
        assert a.cell == b.cell
        assert np.array_equal(a.support, b.support) and np.array_equal(a.query, b.query)
    more = s.sample(np.random.default_rng(2), 5)
    assert len(more) == 5 and set(e.cell for e in more) == {0, 1, 2}


# ============================================================================ bad input
def test_bad_inputs(tmp_path):
    data = make_data()
    cfg = TrainConfig()
    no_lab = data.subset(np.arange(data.n_pairs))
    no_lab.label = np.full(data.n_pairs, -1, np.int8)
    with pytest.raises(EpcliError, match="no labeled pairs"):
        check_inputs(no_lab, cfg)
    one = data.subset(np.arange(data.n_pairs))
    one.label = np.ones(data.n_pairs, np.int8)
    with pytest.raises(EpcliError, match="all 480 labeled pairs are positive"):
        check_inputs(one, cfg)
    big_k = TrainConfig(val_cells=["C1"], support_size=200)
    s = make_split(data, big_k)
    with pytest.raises(EpcliError, match="too few labeled pairs.*C0 \\(") as exc:
        check_training_rows(data, s, big_k)
    assert "support_size" in exc.value.hint
    # the same checks through train(), before anything is written
    with pytest.raises(EpcliError, match="no labeled pairs"):
        train(no_lab, tiny_train(), tiny_model(), tmp_path / "never-written")
    assert not (tmp_path / "never-written").exists()


def test_existing_output_needs_force(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(UsageError, match="already exists"):
        train(make_data(), tiny_train(), tiny_model(), tmp_path / "m")


# ============================================================================ training
def test_prism_learns_planted_motif(tmp_path):
    data = make_data()
    lines: list[str] = []
    res = train(
        data,
        tiny_train(epochs=4),
        tiny_model(),
        tmp_path / "m",
        log=lines.append,
        on_epoch=lambda report: lines.append(format_epoch(report)),
    )
    losses = [h["train_total"] for h in res.history]
    assert losses[-1] < 0.5 * losses[0]
    pred = Predictor.load(tmp_path / "m", "cpu")
    rows = res.split.train_rows
    s = pred.score(data.subset(rows))
    assert aupr(data.label[rows], s["logit"]) >= 0.95
    assert np.allclose(s["prob"], 1 / (1 + np.exp(-s["logit"])))
    assert np.allclose(s["logit"], (s["u_i"] - s["r_e"]) / pred.temperature(), atol=1e-5)
    assert any(line.startswith("epoch 4/4") for line in lines)
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    assert card["fingerprint"] == pred.fingerprint
    assert card["model_kind"] == "prism-scratch" and card["collapsed"] is False
    comps = card["components"]
    for comp in ("distance", "r_e", "prototypes", "rope", "ranking_loss", "aux_ui_loss", "hsic"):
        assert comp in comps
    # measured, not just declared: R_E moves the logits, RC and distance ablations ran
    assert 0 < comps["r_e"]["logit_variance_share"] < 1
    assert 0 <= comps["distance"]["aupr_distance_zeroed"] <= 1
    assert comps["rc_augmentation"]["mean_abs_logit_change"] > 0
    assert comps["aux_ui_loss"]["aupr_u_i_alone"] == comps["r_e"]["aupr_r_e_zeroed"]
    assert set(card["validation"]) == {VAL_CELLS, VAL_REGION}
    cell_val = card["validation"][VAL_CELLS]["cells"]
    assert set(cell_val) == set(res.split.val_cells)
    assert 0 <= next(iter(cell_val.values()))["distance_aupr"] <= 1
    # population prototype = mean of the stored prototypes of every training cell: the
    # fitted cells and the validation cell (from its pairs in the training region)
    protos = json.loads((tmp_path / "m" / "cell_prototypes.json").read_text())["cells"]
    assert res.split.n_unused > 0
    assert set(protos) == set(res.split.train_cells) | set(res.split.val_cells)
    assert card["components"]["prototypes"]["population_cells"] == list(protos)
    pop = pred.model.population_prototype.numpy()
    assert np.allclose(pop, np.mean([protos[c] for c in protos], axis=0), atol=1e-5)
    hist = (tmp_path / "m" / "history.tsv").read_text().splitlines()
    assert len(hist) == 1 + res.epochs_run and hist[0].startswith("epoch\t")


def test_same_seed_same_weights(tmp_path):
    data = make_data()
    cfg = tiny_train(epochs=1, steps_per_epoch=6)
    train(data, cfg, tiny_model(), tmp_path / "a")
    train(data, cfg, tiny_model(), tmp_path / "b")
    train(data, tiny_train(epochs=1, steps_per_epoch=6, seed=1), tiny_model(), tmp_path / "c")
    a, b, c = (load_model_dir(tmp_path / x).state_dict for x in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_training_switches_are_active(tmp_path):
    """Turning rc_aug or the HSIC term on/off changes the trained weights."""
    data = make_data()

    def weights(name: str, **kw):
        cfg = tiny_train(epochs=1, steps_per_epoch=3, cells_per_step=2, **kw)
        res = train(data, cfg, tiny_model(), tmp_path / name)
        return load_model_dir(tmp_path / name).state_dict, res

    base, _ = weights("base", rc_aug=True, loss_hsic=0.0)
    no_rc, _ = weights("norc", rc_aug=False, loss_hsic=0.0)
    hs, res = weights("hsic", rc_aug=True, loss_hsic=1.0)
    k = "encoder.stem.weight"
    assert not torch.equal(base[k], no_rc[k])
    assert not torch.equal(base[k], hs[k])
    assert res.history[0]["train_hsic"] > 0
    assert res.model_card["components"]["hsic"]["enabled"] is True


def test_max_time_stops_cleanly(tmp_path):
    lines: list[str] = []
    res = train(
        make_data(),
        tiny_train(epochs=500, max_time=1.0),
        tiny_model(),
        tmp_path / "m",
        log=lines.append,
    )
    assert res.stopped == "max_time" and res.epochs_run < 500
    assert any("time limit" in line for line in lines)
    pred = Predictor.load(tmp_path / "m", "cpu")
    assert pred.kind == "prism-scratch" and pred.windows == {"enhancer": 200, "promoter": 150}


def test_resume_matches_uninterrupted_run(tmp_path):
    data = make_data()
    train(data, tiny_train(epochs=3, steps_per_epoch=4), tiny_model(), tmp_path / "full")
    train(data, tiny_train(epochs=2, steps_per_epoch=4), tiny_model(), tmp_path / "part")
    res = train(
        data,
        tiny_train(epochs=3, steps_per_epoch=4),
        tiny_model(),
        tmp_path / "part",
        resume=True,
    )
    assert res.epochs_run == 3 and len(res.history) == 3
    full = load_train_state(tmp_path / "full")
    part = load_train_state(tmp_path / "part")
    assert full["epoch"] == part["epoch"] == 2
    for k, v in full["model_last"].items():
        assert torch.equal(v, part["model_last"][k]), k
    with pytest.raises(UsageError, match="cannot resume: no training state"):
        train(data, tiny_train(), tiny_model(), tmp_path / "absent", resume=True)
    with pytest.raises(UsageError, match="already trained 3"):
        train(data, tiny_train(epochs=3), tiny_model(), tmp_path / "part", resume=True)
    other = ModelConfig(**{**tiny_model().to_dict(), "env_dim": 6})
    with pytest.raises(UsageError, match="config differs"):
        train(data, tiny_train(epochs=5), other, tmp_path / "part", resume=True)


def test_crossattn_and_sklearn_baselines(tmp_path):
    data = make_data()
    lines: list[str] = []
    res = train(
        data,
        tiny_train(model="crossattn", epochs=1, steps_per_epoch=4),
        tiny_model(),
        tmp_path / "ca",
        log=lines.append,
    )
    # the closing summary: held-out AUPR beside distance; no "adapted" without prototypes
    kept = [x for x in lines if x.startswith("kept model on ")]
    v = res.model_card["validation"][VAL_CELLS]
    assert kept[0] == (
        f"kept model on {VAL_CELLS} (n {v['n']}, prevalence {v['prevalence']:.3f}): "
        f"zero-shot AUPR {v['aupr_zero_shot']:.3f}, distance baseline {v['distance_aupr']:.3f}"
    )
    assert len(kept) == 2
    ca = Predictor.load(tmp_path / "ca", "cpu")
    s = ca.score(data.subset(np.arange(20)))
    assert np.array_equal(s["r_e"], np.zeros(20)) and np.allclose(s["logit"], s["u_i"])
    for kind in ("kmer", "distance"):
        res = train(data, tiny_train(model=kind, kmer_k=3), None, tmp_path / kind)
        p = Predictor.load(tmp_path / kind)
        assert p.kind == kind and (tmp_path / kind / "params.json").is_file()
        sc = p.score(data)
        assert np.array_equal(sc["u_i"], sc["logit"]) and not sc["r_e"].any()
        assert set(res.model_card["validation"]) == {VAL_CELLS, VAL_REGION}
    # the kmer baseline sees the motif, the distance baseline cannot
    rows = make_split(data, tiny_train()).val_rows[VAL_REGION]
    km = Predictor.load(tmp_path / "kmer").score(data.subset(rows))["logit"]
    di = Predictor.load(tmp_path / "distance").score(data.subset(rows))["logit"]
    assert aupr(data.label[rows], km) > aupr(data.label[rows], di)


def test_cuda_requested_without_cuda_is_usage_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(UsageError, match="CUDA is not available"):
        train(make_data(), tiny_train(device="cuda"), tiny_model(), tmp_path / "m")


# ============================================================================ DDP
DDP_SCRIPT = """
import sys
import numpy as np
import torch
sys.path.insert(0, {tests!r})
from test_training import make_data, tiny_model, tiny_train
from epcli.train import train
torch.set_num_threads(1)
res = train(make_data(), tiny_train(epochs=2, steps_per_epoch=4), tiny_model(), {out!r})
import os
# one file per rank: the two processes' stdout lines would interleave
with open(os.path.join({tmp!r}, "rank" + os.environ["RANK"] + ".txt"), "w") as fh:
    fh.write(f"out {{res.out_dir}} epochs {{res.epochs_run}}")
"""


@pytest.mark.slow
def test_ddp_gloo_two_processes(tmp_path):
    script = tmp_path / "ddp_train.py"
    out = tmp_path / "m"
    script.write_text(
        textwrap.dedent(
            DDP_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out), tmp=str(tmp_path))
        )
    )
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "rank0.txt").read_text() == f"out {out} epochs 2"
    assert (tmp_path / "rank1.txt").read_text() == "out None epochs 2"
    loaded = load_model_dir(out)
    assert loaded.kind == "prism-scratch" and len(loaded.model_card["early_stopping"]) > 0
    assert Predictor.load(out, "cpu").score(make_data().subset(np.arange(5)))["prob"].shape == (5,)
