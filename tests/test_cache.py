"""The cross-chunk anchor cache: LRU by bytes, each window encoded once across chunks, and
scores identical with and without it and across chunk sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import EXAMPLE, HG38_PIECE
from test_predictor import CountingEncoder, make_pairs, write_torch_model


def test_lru_by_bytes():
    from epcli.inference.cache import WindowCache

    c = WindowCache(max_bytes=3 * 400)  # three float32 (100,) arrays
    for k in "abc":
        c.put(k, np.zeros(100, np.float32))
    assert len(c) == 3 and c.nbytes == 1200
    assert c.get("a") is not None  # a is now the most recently used
    c.put("d", np.zeros(100, np.float32))  # evicts b, the least recently used
    assert "b" not in c and all(k in c for k in "acd")
    assert c.stats.evictions == 1 and c.nbytes == 1200
    c.put("big", np.zeros(1000, np.float32))  # larger than the budget: not stored
    assert "big" not in c and len(c) == 3
    c.put("a", torch.zeros(50))  # replacing a key re-counts its bytes
    assert c.nbytes == 1000
    assert c.get("zz") is None and c.stats.misses == 1
    off = WindowCache(0)
    off.put("a", np.zeros(1))
    assert len(off) == 0


def test_encode_computes_only_missing_windows():
    from epcli.inference.cache import WindowCache, window_keys

    seqs = np.random.default_rng(0).integers(0, 5, size=(6, 30), dtype=np.uint8)
    calls: list[list[int]] = []

    def compute(rows_of):
        def f(rows):
            calls.append(rows_of[rows].tolist())
            return torch.from_numpy(seqs[rows_of[rows]].astype(np.float32)) * 2

        return f

    c = WindowCache(10**6)
    idx = np.array([0, 1, 2])
    out = c.encode(window_keys(seqs[idx], "e"), compute(idx))
    assert torch.equal(out, torch.from_numpy(seqs[idx].astype(np.float32)) * 2)
    idx = np.array([2, 3, 0])
    out = c.encode(window_keys(seqs[idx], "e"), compute(idx))
    assert calls == [[0, 1, 2], [3]]  # windows 2 and 0 came from the cache
    assert torch.equal(out, torch.from_numpy(seqs[idx].astype(np.float32)) * 2)
    assert c.stats.computed == 4 and c.stats.hits == 2
    # tags keep encoders apart; identical bases share a key
    assert window_keys(seqs[:1], "e") != window_keys(seqs[:1], "p")
    assert window_keys(seqs[[0, 0]], "e")[0] == window_keys(seqs[[0, 0]], "e")[1]
    # numpy values stack with numpy
    arr = c.encode(window_keys(seqs[:2], "n"), lambda rows: seqs[rows].astype(np.int16))
    assert isinstance(arr, np.ndarray) and arr.shape == (2, 30)


@pytest.mark.parametrize("chunk", [17, 50])
def test_window_reused_across_chunks_encoded_once(tmp_path, chunk):
    from epcli.inference.cache import WindowCache
    from epcli.inference.predictor import Predictor

    torch.set_num_threads(1)
    write_torch_model(tmp_path / "m")
    data = make_pairs(n_enh=12, n_pro=8, n_pairs=120)  # every anchor in ~10-15 pairs
    plain = Predictor.load(tmp_path / "m", "cpu").score(data, batch_size=7)

    def chunked(cache):
        pred = Predictor.load(tmp_path / "m", "cpu")
        pred.window_cache = cache
        ce = CountingEncoder(pred.model.encode_enhancers)
        cp = CountingEncoder(pred.model.encode_promoters)
        pred.model.encode_enhancers, pred.model.encode_promoters = ce, cp
        parts = []
        for a in range(0, data.n_pairs, chunk):
            rows = np.arange(a, min(a + chunk, data.n_pairs))
            parts.append(pred.score(data.subset(rows), batch_size=7, row_offset=a))
        s = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return s, ce, cp

    s_cache, ce, cp = chunked(WindowCache(10**8))
    s_none, ce0, cp0 = chunked(None)
    # with the cache: each of the 12 + 8 windows encoded exactly once over all chunks
    assert len(ce.seen) == 12 and len(set(ce.seen)) == 12
    assert len(cp.seen) == 8 and len(set(cp.seen)) == 8
    # without it: once per chunk that uses the window
    n_chunks = -(-data.n_pairs // chunk)
    assert len(ce0.seen) > 12 and len(ce0.seen) <= 12 * n_chunks
    # scores identical with and without the cache, and to one chunk
    for k in ("logit", "u_i", "r_e", "prob"):
        assert np.array_equal(s_cache[k], s_none[k]), k
        assert np.array_equal(s_cache[k], plain[k]), k


def test_tiny_budget_evicts_but_scores_do_not_change(tmp_path):
    from epcli.inference.cache import WindowCache
    from epcli.inference.predictor import Predictor

    write_torch_model(tmp_path / "m")
    data = make_pairs(n_enh=12, n_pro=8, n_pairs=120)
    pred = Predictor.load(tmp_path / "m", "cpu")
    want = pred.score(data, batch_size=7)
    pred.window_cache = cache = WindowCache(max_bytes=3 * 1024)  # a few windows only
    got = pred.score(data, batch_size=7)
    assert cache.nbytes <= 3 * 1024 and cache.stats.evictions > 0
    assert np.array_equal(got["prob"], want["prob"])


def test_cli_output_identical_with_and_without_cache_and_across_chunks(cli, tmp_path):
    """epcli predict: the same bytes with --cache-mb 0 or default, chunk size 7 or 1000."""
    write_torch_model(tmp_path / "m")
    lines = (EXAMPLE / "synth" / "U1.bedpe").read_text().splitlines()
    pairs = tmp_path / "pairs.bedpe"
    pairs.write_text("\n".join(lines[:61]) + "\n")
    outs = {}
    for chunk in (7, 1000):
        for cache in (0, 64):
            r = cli(
                "predict", pairs, "-g", HG38_PIECE, "-m", tmp_path / "m", "--threads", 1,
                "--chunk-size", chunk, "--cache-mb", cache,
            )  # fmt: skip
            assert r.code == 0, r.stderr
            outs[(chunk, cache)] = r.stdout
            if cache:
                assert "anchor cache:" in r.stderr
    assert len(set(outs.values())) == 1
    assert len(outs[(7, 0)].splitlines()) == 61
