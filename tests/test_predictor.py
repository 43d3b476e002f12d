"""Model directories and the Predictor: model directory IO, scoring, prototypes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from epcli.core.arrays import PairData, log_distance
from epcli.core.errors import EpcliError, UsageError
from epcli.core.metrics import best_f1_threshold, threshold_at_recall
from epcli.inference.device import resolve_device
from epcli.inference.extrapolation import extrapolation_warning, prototype_distances
from epcli.inference.predictor import Predictor, load_prototype
from epcli.io.modeldir import (
    CONFIG,
    WEIGHTS,
    bundled_default_dir,
    load_model_dir,
    resolve_model,
    save_model_dir,
)
from epcli.io.prototype_file import Prototype
from epcli.model.baselines import DistanceBaseline
from epcli.model.config import ModelConfig
from epcli.model.registry import build_model
from helpers import tiny_model_config

LE, LP = 200, 150


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def make_pairs(seed: int = 0, n_enh: int = 12, n_pro: int = 8, n_pairs: int = 120) -> PairData:
    """Random pairs over few anchors (each anchor reused ~10x); labels random, both classes."""
    rng = np.random.default_rng(seed)
    e = rng.integers(0, n_enh, n_pairs)
    p = rng.integers(0, n_pro, n_pairs)
    dist = rng.integers(1_000, 200_000, n_pairs)
    label = (rng.random(n_pairs) < 0.3).astype(np.int8)
    label[:2] = [0, 1]
    return PairData(
        enh_seqs=rng.integers(0, 5, size=(n_enh, LE), dtype=np.uint8),
        pro_seqs=rng.integers(0, 5, size=(n_pro, LP), dtype=np.uint8),
        enh_idx=e.astype(np.int64),
        pro_idx=p.astype(np.int64),
        distance=dist.astype(np.int64),
        cell_idx=np.zeros(n_pairs, np.int64),
        label=label,
        chrom=np.array(["chr1"] * n_pairs, dtype=object),
        enh_mid=np.arange(n_pairs, dtype=np.int64) * 1000,
        pro_mid=np.arange(n_pairs, dtype=np.int64) * 1000 + dist,
        cells=["A"],
    )


def tiny_cfg(kind: str = "prism-scratch") -> ModelConfig:
    return tiny_model_config(kind)


def write_torch_model(path: Path, kind: str = "prism-scratch", seed: int = 0):
    """A randomly initialised model (population prototype set) saved as a model dir."""
    cfg = tiny_cfg(kind)
    model = build_model(cfg, seed=seed).eval()
    if kind == "prism-scratch":
        g = torch.Generator().manual_seed(seed + 1)
        model.set_population_prototype(torch.randn(2, cfg.env_dim, generator=g))
    save_model_dir(
        path,
        kind=kind,
        model_config=cfg.to_dict(),
        train_config={"model": kind},
        windows={"enhancer": LE, "promoter": LP},
        model_card={"components": {}},
        history=[{"epoch": 1, "loss": 0.5}],
        state_dict=model.state_dict(),
        cell_prototypes=(
            {"A": [[0.0] * 4, [1.0] * 4], "B": [[0.0] * 4, [0.0] * 4]}
            if kind == "prism-scratch"
            else None
        ),
    )
    return model


def naive_forward(model, data: PairData, proto=None) -> np.ndarray:
    """Logits by a per-pair forward (no anchor cache), independent of the predictor's path."""
    with torch.inference_mode():
        out = model(
            torch.from_numpy(data.enh_seqs[data.enh_idx]),
            torch.from_numpy(data.pro_seqs[data.pro_idx]),
            torch.from_numpy(log_distance(data.distance)),
            proto=None if proto is None else torch.as_tensor(proto),
        )
    return out["logit"].double().numpy()


# ============================================================================ model dir
def test_model_dir_round_trip_scores(tmp_path):
    model = write_torch_model(tmp_path / "m")
    data = make_pairs()
    pred = Predictor.load(tmp_path / "m", "cpu")
    assert pred.kind == "prism-scratch" and pred.windows == {"enhancer": LE, "promoter": LP}
    s = pred.score(data, batch_size=16)
    assert set(s) == {"logit", "u_i", "r_e", "prob"}
    assert np.allclose(s["logit"], naive_forward(model, data), atol=1e-5)
    assert np.allclose(s["prob"], 1 / (1 + np.exp(-s["logit"])))
    # the population prototype buffer travelled with the weights
    assert torch.equal(pred.model.population_prototype, model.population_prototype)
    assert len(pred.fingerprint) == 16
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    assert card["fingerprint"] == pred.fingerprint
    cfg = json.loads((tmp_path / "m" / CONFIG).read_text())
    assert cfg["model"]["d_model"] == 16 and cfg["windows"] == {"enhancer": LE, "promoter": LP}
    # same files -> same fingerprint; fingerprint = sha256(config + weights)[:16]
    import hashlib

    raw = (tmp_path / "m" / CONFIG).read_bytes() + (tmp_path / "m" / WEIGHTS).read_bytes()
    assert pred.fingerprint == hashlib.sha256(raw).hexdigest()[:16]
    # the folder gets the usual permissions (not the 0700 of a temporary folder)
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o777 & ~mask


def test_existing_dir_replaced_only_with_force(tmp_path):
    write_torch_model(tmp_path / "m", seed=0)
    fp0 = load_model_dir(tmp_path / "m").fingerprint
    with pytest.raises(UsageError, match="already exists"):
        write_torch_model(tmp_path / "m", seed=1)
    cfg = tiny_cfg()
    save_model_dir(
        tmp_path / "m",
        kind="prism-scratch",
        model_config=cfg.to_dict(),
        train_config={},
        windows={"enhancer": LE, "promoter": LP},
        model_card={},
        history=[],
        state_dict=build_model(cfg, seed=1).state_dict(),
        force=True,
    )
    assert load_model_dir(tmp_path / "m").fingerprint != fp0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary leftovers


def test_load_model_dir_errors(tmp_path):
    with pytest.raises(EpcliError, match="not found"):
        load_model_dir(tmp_path / "nope")
    write_torch_model(tmp_path / "m")
    (tmp_path / "m" / WEIGHTS).unlink()
    with pytest.raises(EpcliError, match="incomplete.*weights.pt is missing"):
        load_model_dir(tmp_path / "m")
    write_torch_model(tmp_path / "c")
    (tmp_path / "c" / WEIGHTS).write_bytes(b"not a zip file")
    with pytest.raises(EpcliError, match="corrupt.*weights.pt"):
        load_model_dir(tmp_path / "c")
    write_torch_model(tmp_path / "j")
    (tmp_path / "j" / CONFIG).write_text("{broken")
    with pytest.raises(EpcliError, match="not valid JSON") as exc:
        load_model_dir(tmp_path / "j")
    assert exc.value.line == 1
    write_torch_model(tmp_path / "e")
    cfg = json.loads((tmp_path / "e" / CONFIG).read_text())
    cfg["windows"]["enhancer"] = 999
    (tmp_path / "e" / CONFIG).write_text(json.dumps(cfg))
    with pytest.raises(EpcliError, match="does not match its fingerprint"):
        load_model_dir(tmp_path / "e")
    write_torch_model(tmp_path / "f")
    torch.save({"x": torch.zeros(1)}, tmp_path / "f" / WEIGHTS)  # swapped weights file
    with pytest.raises(EpcliError, match="does not match its fingerprint"):
        load_model_dir(tmp_path / "f")
    other = build_model(ModelConfig(**{**tiny_cfg().to_dict(), "d_model": 8}))
    save_model_dir(
        tmp_path / "w",
        kind="prism-scratch",
        model_config=tiny_cfg().to_dict(),
        train_config={},
        windows={"enhancer": LE, "promoter": LP},
        model_card={},
        history=[],
        state_dict=other.state_dict(),
    )
    with pytest.raises(EpcliError, match="weights do not fit the model config"):
        Predictor.load(tmp_path / "w", "cpu")


def test_resolve_model(tmp_path, monkeypatch):
    write_torch_model(tmp_path / "m")
    monkeypatch.setenv("EPCLI_MODEL", str(tmp_path / "env"))
    p, src = resolve_model(str(tmp_path / "m"))
    assert p == tmp_path / "m" and "--model" in src
    with pytest.raises(EpcliError, match="not found.*EPCLI_MODEL"):
        resolve_model(None)
    monkeypatch.setenv("EPCLI_MODEL", str(tmp_path / "m"))
    assert resolve_model(None)[0] == tmp_path / "m"
    monkeypatch.delenv("EPCLI_MODEL")
    assert bundled_default_dir().parts[-2:] == ("data", "default_model")
    if (bundled_default_dir() / CONFIG).is_file():
        assert resolve_model(None)[0] == bundled_default_dir()
    else:
        with pytest.raises(EpcliError, match="bundled default"):
            resolve_model(None)


# ============================================================================ scoring
class CountingEncoder:
    """Wraps an encode method; records every window it encodes.

    Batches have a fixed shape: the last batch of a call is padded by repeating its own rows,
    so ``seen`` keeps each batch's distinct windows (padding is no second encoding of work
    that is used).
    """

    def __init__(self, fn):
        self.fn = fn
        self.seen: list[bytes] = []
        self.rows = 0

    def __call__(self, codes):
        rows = [bytes(r) for r in codes.cpu().numpy().astype(np.uint8)]
        self.rows += len(rows)
        self.seen.extend(dict.fromkeys(rows))
        return self.fn(codes)


@pytest.mark.parametrize("cache_bytes", [None, 40_000])
def test_each_unique_anchor_encoded_once(tmp_path, cache_bytes):
    model = write_torch_model(tmp_path / "m")
    data = make_pairs(n_enh=12, n_pro=8, n_pairs=120)  # anchors reused ~10x / 15x
    sub = data.subset(np.arange(20, 120))
    pred = Predictor.load(tmp_path / "m", "cpu")
    ce = CountingEncoder(pred.model.encode_enhancers)
    cp = CountingEncoder(pred.model.encode_promoters)
    pred.model.encode_enhancers, pred.model.encode_promoters = ce, cp
    if cache_bytes is None:
        s = pred.score(sub, batch_size=7)
    else:
        from epcli.inference.engine import pair_features_unique, score_features

        feats = pair_features_unique(pred.model, sub, batch_size=7, max_cache_bytes=cache_bytes)
        s = score_features(pred.model, feats, None)
    want_e = {bytes(data.enh_seqs[i]) for i in np.unique(sub.enh_idx)}
    assert len(ce.seen) == len(want_e) and set(ce.seen) == want_e
    assert ce.rows % 7 == 0 and ce.rows < len(want_e) + 7 * (1 if cache_bytes is None else 4)
    want_p = {bytes(data.pro_seqs[i]) for i in np.unique(sub.pro_idx)}
    if cache_bytes is None:
        assert len(cp.seen) == len(want_p) and set(cp.seen) == want_p
    else:  # chunked: promoters may repeat across chunks, but not within one
        assert set(cp.seen) == want_p and len(cp.seen) <= sub.n_pairs
    assert np.allclose(s["logit"], naive_forward(model, sub), atol=1e-5)


def test_score_with_prototype_and_progress(tmp_path):
    model = write_torch_model(tmp_path / "m")
    data = make_pairs()
    pred = Predictor.load(tmp_path / "m", "cpu")
    proto_arr = np.arange(8, dtype=np.float32).reshape(2, 4) / 8
    proto = Prototype(
        pred.fingerprint, "prism-scratch", "A", 10, 3, 7, proto_arr.tolist(), 1.0, 0.5, 0.3, 0.7
    )
    calls: list[tuple[int, int]] = []
    s = pred.score(data, proto, batch_size=50, progress=lambda d, n: calls.append((d, n)))
    assert np.allclose(s["logit"], naive_forward(model, data, proto_arr), atol=1e-5)
    assert calls[-1] == (data.n_pairs, data.n_pairs) and len(calls) == 3
    zs = pred.score(data)
    assert np.allclose(s["u_i"], zs["u_i"]) and not np.allclose(s["r_e"], zs["r_e"])


def test_window_mismatch(tmp_path):
    write_torch_model(tmp_path / "m")
    data = make_pairs()
    bad = PairData(**{**data.__dict__, "pro_seqs": data.pro_seqs[:, :100]})
    with pytest.raises(EpcliError, match="promoter=100.*promoter=150"):
        Predictor.load(tmp_path / "m", "cpu").score(bad)


def test_baseline_predictor(tmp_path):
    data = make_pairs()
    base = DistanceBaseline().fit(data)
    save_model_dir(
        tmp_path / "d",
        kind="distance",
        model_config=None,
        train_config={"model": "distance"},
        windows={"enhancer": LE, "promoter": LP},
        model_card={},
        history=[],
        params=base.to_json(),
    )
    pred = Predictor.load(tmp_path / "d")
    s = pred.score(data)
    assert np.allclose(s["logit"], base.logit(data))
    assert np.array_equal(s["u_i"], s["logit"]) and not s["r_e"].any()
    proto = pred.build_prototype(data, "A")
    assert proto.prototype is None and proto.model_kind == "distance"
    # calibration only: a temperature fitted on the support rescales the baseline's logit
    assert proto.temperature == pytest.approx(
        brute_force_temperature(base.logit(data), data.label), rel=0.02
    )
    s2 = pred.score(data, proto)
    assert np.allclose(s2["logit"], base.logit(data) / proto.temperature)


def brute_force_temperature(margin, y, lo=0.25, hi=4.0):
    """T minimising the mean BCE of sigmoid(margin / T), by a fine linear scan."""
    best, best_t = np.inf, None
    for t in np.linspace(lo, hi, 20001):
        p = 1 / (1 + np.exp(-np.asarray(margin, float) / t))
        loss = -np.mean(np.where(np.asarray(y) == 1, np.log(p), np.log(1 - p)))
        if loss < best:
            best, best_t = loss, t
    return best_t


# ============================================================================ prototypes
def test_build_prototype_and_thresholds(tmp_path):
    model = write_torch_model(tmp_path / "m")
    data = make_pairs()
    pred = Predictor.load(tmp_path / "m", "cpu")
    proto = pred.build_prototype(data, "A", target_recall=0.7)
    y = data.label
    assert (proto.n_pos, proto.n_neg) == (int((y == 1).sum()), int((y == 0).sum()))
    # prototype = class means of the env features (independent per-pair path)
    with torch.inference_mode():
        f = model.pair_features(
            model.encode_enhancers(torch.from_numpy(data.enh_seqs[data.enh_idx])),
            model.encode_promoters(torch.from_numpy(data.pro_seqs[data.pro_idx])),
            torch.from_numpy(log_distance(data.distance)),
        )
    env = f["env"].numpy()
    want = np.stack([env[y == 0].mean(0), env[y == 1].mean(0)])
    assert np.allclose(proto.array(), want, atol=1e-5)
    t_model = float(model.temperature().detach())
    with torch.inference_mode():
        r_e = model.r_e(f["env"], torch.from_numpy(want).float()).numpy()
    margin = f["u_i"].numpy() - r_e  # U_I - R_E with the new prototype
    assert proto.temperature == pytest.approx(brute_force_temperature(margin, y), rel=0.02)
    scored = pred.score(data, proto)
    assert np.allclose(scored["logit"], margin / proto.temperature, atol=1e-4)
    assert t_model != pytest.approx(proto.temperature)  # calibration changed T
    prob = scored["prob"]
    rec = ((prob >= proto.threshold_at_recall) & (y == 1)).sum() / (y == 1).sum()
    assert rec >= 0.7
    # shots: stratified seeded subset
    p10 = pred.build_prototype(data, "A", shots=10, seed=3)
    assert p10.shots == 10 and p10.n_pos == round(10 * (y == 1).mean())
    assert pred.build_prototype(data, "A", shots=10, seed=3) == p10
    with pytest.raises(EpcliError, match="only 120 labeled"):
        pred.build_prototype(data, "A", shots=500)


def test_build_prototype_needs_both_classes(tmp_path):
    write_torch_model(tmp_path / "m")
    data = make_pairs()
    neg = data.subset(np.flatnonzero(data.label == 0))
    with pytest.raises(EpcliError, match="needs labeled positive and negative.*0 positive"):
        Predictor.load(tmp_path / "m", "cpu").build_prototype(neg, "A")


def test_prototype_file_round_trip_and_fingerprint(tmp_path):
    write_torch_model(tmp_path / "m", seed=0)
    write_torch_model(tmp_path / "m2", seed=5)
    data = make_pairs()
    pred = Predictor.load(tmp_path / "m", "cpu")
    proto = pred.build_prototype(data, "A", shots=20)
    proto.save(tmp_path / "a.proto")
    d = json.loads((tmp_path / "a.proto").read_text())
    assert d["format"] == "epcli-prototype" and d["version"] == 1
    assert d["model_fingerprint"] == pred.fingerprint and len(d["prototype"]) == 2
    back = load_prototype(tmp_path / "a.proto", pred)
    assert back == proto
    other = Predictor.load(tmp_path / "m2", "cpu")
    with pytest.raises(EpcliError, match=f"built for model {pred.fingerprint}, this model is"):
        load_prototype(tmp_path / "a.proto", other)
    (tmp_path / "b.proto").write_text(json.dumps({**d, "format": "x"}))
    with pytest.raises(EpcliError, match="not an epcli prototype"):
        load_prototype(tmp_path / "b.proto", pred)
    (tmp_path / "c.proto").write_text(json.dumps({**d, "prototype": [[1, 2], "x"]}))
    with pytest.raises(EpcliError, match="2 rows of finite numbers"):
        load_prototype(tmp_path / "c.proto")
    del d["cell"]
    (tmp_path / "d.proto").write_text(json.dumps(d))
    with pytest.raises(EpcliError, match="lacks cell"):
        load_prototype(tmp_path / "d.proto")


def test_prototype_distances(tmp_path):
    write_torch_model(tmp_path / "m")  # training cells A = [0,1], B = [0,0] (4 dims each)
    pred = Predictor.load(tmp_path / "m", "cpu")
    near = Prototype(
        pred.fingerprint, "prism-scratch", "X", 4, 2, 2, [[0.0] * 4, [1.0] * 4], 1.0, 0.5, 0.5, 0.7
    )
    dist = prototype_distances(near, pred)
    assert dist == pytest.approx({"A": 0.0, "B": 2.0})  # sqrt(4 * 1^2)
    assert extrapolation_warning(near, pred) is None
    far = Prototype(
        pred.fingerprint,
        "prism-scratch",
        "X",
        4,
        2,
        2,
        [[10.0] * 4, [10.0] * 4],
        1.0,
        0.5,
        0.5,
        0.7,
    )
    assert "far from every training cell" in extrapolation_warning(far, pred)


def test_threshold_helpers_against_brute_force():
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.3).astype(int)
    prob = np.clip(0.3 * y + rng.random(200) * 0.7, 0, 1)

    def f1_at(t):
        pred = prob >= t
        tp = (pred & (y == 1)).sum()
        return 0.0 if tp == 0 else 2 * tp / (pred.sum() + (y == 1).sum())

    cands = np.unique(prob)
    best = max(cands, key=f1_at)
    assert f1_at(best_f1_threshold(y, prob)) == pytest.approx(f1_at(best))
    t = threshold_at_recall(y, prob, 0.8)
    recall = lambda t: ((prob >= t) & (y == 1)).sum() / (y == 1).sum()  # noqa: E731
    assert recall(t) >= 0.8
    assert all(recall(c) < 0.8 for c in cands if c > t)


def test_resolve_device():
    from epcli.inference.device import check_device_name
    from epcli.train import TrainConfig

    # one rule for device names: every command and the training config accept the same
    for name in ("auto", "CPU", "cuda", "cuda:1"):
        assert check_device_name(name) == name.lower()
        TrainConfig(device=name)
    for bad in ("tpu", "cuda:x", "gpu"):
        with pytest.raises(UsageError, match="unknown device"):
            check_device_name(bad)
        with pytest.raises(UsageError, match="device"):
            TrainConfig(device=bad)
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(UsageError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            resolve_device("cuda")
        assert resolve_device("auto").type == "cpu"
