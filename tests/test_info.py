"""epcli info: a model directory's or prototype file's summary, as text and as JSON."""

from __future__ import annotations

import json
import shutil

from helpers import write_text

MOTIF_SET = {
    "source": "JASPAR",
    "release": "2024",
    "collection": "CORE",
    "taxon": "vertebrates",
    "n_motifs": 879,
    "checksum": "0123456789abcdef0123",
}
TOP_MOTIFS = [
    {"id": "MA0099.4", "name": "FOS::JUN", "part": "enhancer", "effect": 1.25},
    {"id": "MA0139.2", "name": "CTCF", "part": "promoter", "effect": -0.5},
    {"id": "MA0102.5", "name": "CEBPA", "part": "pair", "effect": 0.125},
]


def _model_dir(tmp_path, card_extra: dict | None = None):
    """A model directory: the bundled one's files, with a card like epcli train writes."""
    from epcli.io.modeldir import bundled_default_dir

    d = tmp_path / "model"
    shutil.copytree(bundled_default_dir(), d)
    card = {
        "model_kind": "distance",
        "fingerprint": "abc123",
        "components": {
            "distance": {"enabled": True, "contribution": 0.031},
            "r_e": {"enabled": False},
        },
        "validation": {
            "heldout_cells": {
                "n": 41,
                "prevalence": 0.317,
                "aupr_zero_shot": 0.473,
                "aupr_adapted": 0.446,
                "distance_aupr": 0.625,
                "cells": {"T2": {"n": 41, "prevalence": 0.317, "aupr_zero_shot": 0.473}},
            }
        },
        "train": {"pairs": 364, "cells": ["T1", "T3"]},
        "split": {"train_cells": ["T1", "T3"], "val_cells": ["T2"]},
        "collapsed": False,
        "temperature": 1.5,
        **(card_extra or {}),
    }
    (d / "model_card.json").write_text(json.dumps(card))
    return d


def test_info_text_with_motifs(cli, tmp_path):
    d = _model_dir(tmp_path, {"motif_set": MOTIF_SET, "top_motifs": TOP_MOTIFS})
    r = cli("info", d)
    assert r.code == 0, r.stderr
    out = r.stdout
    assert out.startswith("model       distance")
    assert "windows     enhancer 3000 bp, promoter 2000 bp" in out
    assert "motif set   JASPAR 2024 CORE vertebrates, 879 motifs (checksum 0123456789abcdef)" in out
    assert "trained on  T1, T3 (364 training pairs)" in out
    assert "validated   held-out cells T2" in out
    lines = out.splitlines()
    row = next(x for x in lines if x.strip().startswith("heldout_cells"))
    assert row.split() == ["heldout_cells", "41", "0.317", "0.473", "0.446", "0.625"]
    cell = next(x for x in lines if x.strip().startswith("T2"))
    assert cell.split() == ["T2", "41", "0.317", "0.473", "-", "-"]
    comp = next(x for x in lines if x.strip().startswith("distance ") and "yes" in x)
    assert comp.split() == ["distance", "yes", "+0.031"]
    assert next(x for x in lines if x.strip().startswith("r_e")).split() == ["r_e", "no", "-"]
    i = lines.index("top motifs (by |effect|, 3 of 3)")
    assert lines[i + 2].split() == ["MA0099.4", "FOS::JUN", "enhancer", "+1.250"]
    assert lines[i + 3].split() == ["MA0139.2", "CTCF", "promoter", "-0.500"]
    r = cli("info", d, "--top", 1)
    assert "top motifs (by |effect|, 1 of 3)" in r.stdout and "CTCF" not in r.stdout


def test_info_json(cli, tmp_path):
    d = _model_dir(tmp_path, {"motif_set": MOTIF_SET, "top_motifs": TOP_MOTIFS})
    r = cli("info", d, "--json")
    assert r.code == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["type"] == "model" and info["kind"] == "distance"
    assert info["windows"] == {"enhancer": 3000, "promoter": 2000}
    assert info["motif_set"] == MOTIF_SET
    assert info["top_motifs"] == TOP_MOTIFS
    assert info["training_cells"] == ["T1", "T3"]
    assert info["validation"][0] == {
        "set": "heldout_cells",
        "cell": None,
        "n": 41,
        "prevalence": 0.317,
        "aupr_zero_shot": 0.473,
        "aupr_adapted": 0.446,
        "distance_aupr": 0.625,
    }
    assert info["components"][0] == {
        "name": "distance",
        "active": True,
        "contribution": 0.031,
        "note": None,
    }


def test_info_without_optional_keys(cli, tmp_path):
    """The bundled distance prior has no motif set, no top motifs: shown as such, no failure."""
    from epcli.io.modeldir import bundled_default_dir

    r = cli("info", bundled_default_dir())
    assert r.code == 0, r.stderr
    assert "motif set   none recorded" in r.stdout
    assert "top motifs" not in r.stdout
    assert "(no sequence is read)" in r.stdout
    held = next(x for x in r.stdout.splitlines() if x.strip().startswith("held_out"))
    assert held.split()[1:4] == ["128,507", "0.065", "0.150"]
    d = tmp_path / "bare"
    d.mkdir()
    write_text(d / "config.json", json.dumps({"model_kind": "kmer"}))
    r = cli("info", d, "--json")
    assert r.code == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["kind"] == "kmer" and info["top_motifs"] == [] and info["motif_set"] is None


def test_info_prototype(cli, tmp_path):
    proto = {
        "format": "epcli-prototype",
        "version": 1,
        "model_fingerprint": "abc123",
        "model_kind": "prism",
        "cell": "K562",
        "shots": 32,
        "n_pos": 8,
        "n_neg": 24,
        "prototype": [[0.0, 0.1, 0.2, 0.3], [1.0, 1.1, 1.2, 1.3]],
        "temperature": 0.9,
        "threshold_best_f1": 0.31,
        "threshold_at_recall": 0.22,
        "target_recall": 0.7,
        "favoured_tfs": [{"id": "MA0140.3", "name": "GATA1::TAL1", "weight": 0.8}],
        "disfavoured_tfs": [{"id": "MA0139.2", "name": "CTCF", "weight": -0.4}],
    }
    p = write_text(tmp_path / "k562.proto", json.dumps(proto))
    r = cli("info", p)
    assert r.code == 0, r.stderr
    assert "prototype   cell K562" in r.stdout
    assert "support     32 labeled pairs (8 positive, 24 negative)" in r.stdout
    assert "prototype   2 x 4" in r.stdout
    lines = r.stdout.splitlines()
    i = lines.index("favoured TFs (1 of 1)")
    assert lines[i + 2].split() == ["MA0140.3", "GATA1::TAL1", "+0.800"]
    assert "disfavoured TFs (1 of 1)" in lines
    info = json.loads(cli("info", p, "--json").stdout)
    assert info["type"] == "prototype" and info["favoured_tfs"] == proto["favoured_tfs"]
    del proto["favoured_tfs"], proto["disfavoured_tfs"]
    write_text(p, json.dumps(proto))
    r = cli("info", p)
    assert r.code == 0 and "favoured" not in r.stdout


def test_info_errors(cli, tmp_path):
    r = cli("info", tmp_path / "nope")
    assert r.code == 1 and "not found" in r.stderr
    bad = write_text(tmp_path / "x.json", "{not json")
    r = cli("info", bad)
    assert r.code == 1 and "not valid JSON" in r.stderr and "Traceback" not in r.stderr
    other = write_text(tmp_path / "y.json", json.dumps({"format": "something"}))
    r = cli("info", other)
    assert r.code == 1 and "not a prototype file or model directory" in r.stderr
    empty = tmp_path / "emptydir"
    empty.mkdir()
    r = cli("info", empty)
    assert r.code == 1 and "no config.json" in r.stderr
