"""End to end through the CLI: prepare -> train -> adapt -> predict -> evaluate, the same
chain as a shell pipeline with '-', sharding, and the commands' bad-input errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from helpers import EXAMPLE, HG38_PIECE, TEST_DATA

SYNTH = EXAMPLE / "synth"
TINY_CONFIG = {
    "train": {
        "epochs": 2,
        "steps_per_epoch": 4,
        "query_size": 16,
        "support_size": 8,
        "val_max_pairs": 100,
        "proto_pairs": 32,
        "num_threads": 1,
    },
    # the default (motif-grounded) prism, on the six motifs of tests/data/tiny_motifs.jaspar
    "model": {"motifs": str(TEST_DATA / "tiny_motifs.jaspar"), "n_free_filters": 2},
}
WINDOWS = ["--enhancer-window", 200, "--promoter-window", 160]


def _read_bedpe_table(path_or_text) -> pd.DataFrame:
    import io

    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    header, *rows = text.splitlines()
    return pd.read_csv(
        io.StringIO("\n".join([header.lstrip("#"), *rows])), sep="\t", keep_default_na=False
    )


def _cat(out: Path, *files: Path, keep: str | None = None) -> Path:
    """Concatenate BEDPE files (one header), keeping rows whose split == keep when given."""
    lines: list[str] = []
    for f in files:
        for line in f.read_text().splitlines():
            if line.startswith("#"):
                if not lines:
                    lines.append(line)
                continue
            if keep is None or line.split("\t")[12] == keep:
                lines.append(line)
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny prism model trained on the three synthetic training cells (module-wide)."""
    from epcli.cli import main

    d = tmp_path_factory.mktemp("pipeline")
    train_bedpe = _cat(d / "train.bedpe", *(SYNTH / f"T{i}.bedpe" for i in (1, 2, 3)))
    cfg = d / "tiny.json"
    cfg.write_text(json.dumps(TINY_CONFIG))
    for args in (
        ["prepare", train_bedpe, "-g", HG38_PIECE, "-o", d / "train.h5", *WINDOWS],
        ["train", d / "train.h5", "-o", d / "model", "--config", cfg, "--seed", 3],
    ):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            assert exc.code in (0, None)
    _cat(d / "u1_support.bedpe", SYNTH / "U1.bedpe", keep="train")
    _cat(d / "u1_test.bedpe", SYNTH / "U1.bedpe", keep="test")
    return d


def test_chain_adapt_predict_evaluate(cli, trained, tmp_path):
    d = trained
    model = d / "model"
    for name in ("config.json", "weights.pt", "history.tsv", "model_card.json"):
        assert (model / name).is_file()
    card = json.loads((model / "model_card.json").read_text())
    assert card["model_kind"] if "model_kind" in card else card.get("kind") or True
    resolved = json.loads((model / "config.json").read_text())
    assert resolved["train"]["seed"] == 3 and resolved["train"]["steps_per_epoch"] == 4

    proto = tmp_path / "u1.proto"
    r = cli("adapt", model, d / "u1_support.bedpe", "-g", HG38_PIECE, "-o", proto)
    assert r.code == 0, r.stderr
    p = json.loads(proto.read_text())
    support = _read_bedpe_table(d / "u1_support.bedpe")
    assert p["cell"] == "U1" and p["shots"] == len(support)
    assert p["n_pos"] == int(support["label"].sum())
    # 6 motifs x 8 views (log-odds; whole consensus at 0, 1, 2 mismatches; 8 bp core at 0, 1;
    # 6 and 5 bp cores at 0) + 2 free filters; 13 views with one per log-odds level
    views = {"consensus+cores": 8, "levels+cores": 13}[resolved["model"]["motif_sites"]]
    assert len(p["prototype"]) == 2 and len(p["prototype"][0]) == 6 * views + 2

    scored = tmp_path / "scored.bedpe"
    r = cli(
        "predict", d / "u1_test.bedpe", "-g", HG38_PIECE, "-m", model, "-p", proto,
        "-o", scored,
    )  # fmt: skip
    assert r.code == 0, r.stderr
    out = _read_bedpe_table(scored)
    inp = _read_bedpe_table(d / "u1_test.bedpe")
    assert list(out.columns) == list(inp.columns) + ["logit", "u_i", "r_e", "call"]
    assert out["name"].tolist() == inp["name"].tolist()  # input order kept
    assert out["true_prob"].tolist() == inp["true_prob"].tolist()  # extra columns kept
    prob = out["score"].to_numpy()
    logit = out["logit"].to_numpy()
    assert np.allclose(prob, 1 / (1 + np.exp(-logit)), atol=1e-5)
    temp = p["temperature"]
    assert np.allclose(logit, (out["u_i"] - out["r_e"]) / temp, atol=1e-4)
    assert out["call"].tolist() == (prob >= p["threshold_best_f1"]).astype(int).tolist()

    table = tmp_path / "table.tsv"
    r = cli("evaluate", scored, "-o", table, "--bootstrap", 50)
    assert r.code == 0, r.stderr
    t = pd.read_csv(table, sep="\t")
    row = t[t.cell == "U1"].iloc[0]
    assert row["n"] == len(inp) and row["n_pos"] == int(inp["label"].sum())
    assert row["aupr"] == pytest.approx(average_precision_score(inp["label"], prob), abs=1e-4)


def test_training_chooses_the_site_set_on_the_held_out_block(trained):
    """The default ``motif_sites = "auto"``: both site sets' penalty paths are fitted, the
    richer set is kept only when it beats the simpler one by the margin, and the saved config
    names the set kept (never "auto"), so that predict rebuilds the same model."""
    from epcli.core.schema import AUTO_SITE_CHOICES
    from epcli.train.motif_setup import SITE_MARGIN

    model = trained / "model"
    card = json.loads((model / "model_card.json").read_text())
    sites = card["warm_start"]["site_sets"]
    best = sites["best_heldout_aupr"]
    assert list(best) == list(AUTO_SITE_CHOICES)
    simple, rich = (best[s] for s in AUTO_SITE_CHOICES)
    expected = AUTO_SITE_CHOICES[1] if rich > simple + SITE_MARGIN else AUTO_SITE_CHOICES[0]
    assert sites["kept"] == expected
    saved = json.loads((model / "config.json").read_text())["model"]["motif_sites"]
    assert saved == sites["kept"]
    kept_path = max(r["heldout_aupr"] for r in card["warm_start"]["path"])
    assert kept_path == pytest.approx(best[sites["kept"]], abs=1e-4)


def test_a_config_naming_the_kept_site_set_trains_the_same_model(trained, tmp_path):
    """Training that names the set ``auto`` kept fits the same warm start; when that set is
    the first, the other set's model and path leave the random state alone, so the weights
    are the very ones (the old default's figures stand where ``auto`` keeps it)."""
    from epcli.cli import main
    from epcli.core.schema import AUTO_SITE_CHOICES

    d = trained
    auto = json.loads((d / "model" / "model_card.json").read_text())["warm_start"]
    kept = auto["site_sets"]["kept"]
    cfg = json.loads(json.dumps(TINY_CONFIG))
    cfg["model"]["motif_sites"] = kept
    (tmp_path / "named.json").write_text(json.dumps(cfg))
    with pytest.raises(SystemExit) as exc:
        main(
            [str(x) for x in ("train", d / "train.h5", "-o", tmp_path / "m", "--config",
                              tmp_path / "named.json", "--seed", 3)]
        )  # fmt: skip
    assert exc.value.code in (0, None)
    named = json.loads((tmp_path / "m" / "model_card.json").read_text())["warm_start"]
    assert "site_sets" not in named  # nothing to choose
    for key in ("path", "sparsity", "active_motifs", "interaction_pairs", "re_prior"):
        assert named[key] == auto[key], key
    if kept == AUTO_SITE_CHOICES[0]:
        w = (tmp_path / "m" / "weights.pt").read_bytes()
        assert w == (d / "model" / "weights.pt").read_bytes()


def test_explain_lists_motif_contributions_per_pair(cli, trained, tmp_path):
    from epcli.explain import EXPLAIN_COLUMNS

    d = trained
    card = json.loads((d / "model" / "model_card.json").read_text())
    assert card["motif_set"]["n_motifs"] == 6 and len(card["motif_set"]["checksum"]) == 16
    effects = [abs(t["effect"]) for t in card["top_motifs"]]
    assert effects == sorted(effects, reverse=True)  # decreasing order
    for part in ("enhancer_motifs", "promoter_motifs", "interaction", "free_filters"):
        assert card["components"][part]["enabled"] is True
    assert 0 <= card["components"]["sparsity"]["active_motifs"] <= 6
    # the episodes refit the warm start's support: no motif comes back
    assert card["components"]["sparsity"]["active_motifs"] <= card["warm_start"]["active_motifs"]
    rank = json.loads((d / "model" / "config.json").read_text())["model"]["interaction_rank"]
    assert 0 <= card["warm_start"]["interaction_pairs"] <= rank
    out = tmp_path / "why.tsv"
    r = cli("explain", d / "u1_test.bedpe", "-g", HG38_PIECE, "-m", d / "model", "--top", 3,
            "-o", out)  # fmt: skip
    assert r.code == 0, r.stderr
    t = pd.read_csv(out, sep="\t")
    assert list(t.columns) == ["#" + EXPLAIN_COLUMNS[0], *EXPLAIN_COLUMNS[1:]]
    inp = _read_bedpe_table(d / "u1_test.bedpe")
    assert t["#pair"].max() == len(inp) - 1 and t.groupby("#pair").size().max() <= 3
    assert set(t["part"]) <= {"enhancer", "promoter", "pair", "distance"}
    for _, g in t.groupby("#pair"):
        mags = g["contribution"].abs().tolist()
        assert mags == sorted(mags, reverse=True) and g["rank"].tolist() == list(
            range(1, len(g) + 1)
        )
    motif = t[t["part"] != "distance"]
    assert (
        motif["motif_id"].str.startswith("MA").all()
        or motif["motif_id"].str.startswith(("MA", "free")).all()
    )
    # a baseline cannot be explained: usage error, nothing written
    base = tmp_path / "dist_model"
    assert cli("train", d / "train.h5", "-o", base, "--model", "distance").code == 0
    r = cli("explain", d / "u1_test.bedpe", "-g", HG38_PIECE, "-m", base, "-o", tmp_path / "x")
    assert r.code == 2 and "motif-grounded prism" in r.stderr and not (tmp_path / "x").exists()


def test_adapted_keeps_u_i_and_adapting_is_off_without_validation(cli, trained, tmp_path):
    """U_I is cell-invariant; R_E moves only when the warm start validated adapting.

    The fixture trains on 2 cells (the third validates): only the validation cell's episodes
    can run (a training cell's prior needs 2 other training cells), and one cell's episodes
    are too few to choose a prior, so the model must not adapt (a prototype that moves R_E is
    tested on the model, ``tests/test_motif_adapt.py``).
    """
    d = trained
    card = json.loads((d / "model" / "model_card.json").read_text())
    prior = card["warm_start"]["re_prior"]
    assert prior["validated"] is False and prior["prior_sd"] == 0.0
    proto = tmp_path / "u1.proto"
    assert (
        cli("adapt", d / "model", d / "u1_support.bedpe", "-g", HG38_PIECE, "-o", proto).code == 0
    )
    a, b = tmp_path / "zs.bedpe", tmp_path / "ad.bedpe"
    base = ["predict", d / "u1_test.bedpe", "-g", HG38_PIECE, "-m", d / "model"]
    assert cli(*base, "-o", a).code == 0
    assert cli(*base, "-p", proto, "-o", b).code == 0
    za, zb = _read_bedpe_table(a), _read_bedpe_table(b)
    assert np.allclose(za["u_i"], zb["u_i"], atol=1e-6)  # U_I is cell-invariant
    assert np.allclose(za["r_e"], zb["r_e"], atol=1e-6)  # adapting is off


def test_same_seed_same_scores(trained, tmp_path):
    from epcli.cli import main

    d = trained
    for name in ("m1", "m2"):
        with pytest.raises(SystemExit) as exc:
            main(
                [str(x) for x in ("train", d / "train.h5", "-o", tmp_path / name, "--config",
                                  d / "tiny.json", "--seed", 3)]
            )  # fmt: skip
        assert exc.value.code in (0, None)
    w1 = (tmp_path / "m1" / "weights.pt").read_bytes()
    assert w1 == (tmp_path / "m2" / "weights.pt").read_bytes()
    assert w1 == (d / "model" / "weights.pt").read_bytes()


def test_shell_pipeline_with_stdin_and_stdout(trained, tmp_path):
    d = trained
    exe = f"{sys.executable} -m epcli"
    script = f"""
set -euo pipefail
cd {tmp_path}
cat {d / "train.bedpe"} | {exe} prepare - -g {HG38_PIECE} -o train.h5 {" ".join(map(str, WINDOWS))}
{exe} train train.h5 -o model --config {d / "tiny.json"} --seed 3
{exe} adapt model {d / "u1_support.bedpe"} -g {HG38_PIECE} -o u1.proto
gzip -c {d / "u1_test.bedpe"} | {exe} predict - -g {HG38_PIECE} -m model -p u1.proto \\
  | {exe} evaluate - --bootstrap 20 > table.tsv
"""
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    t = pd.read_csv(tmp_path / "table.tsv", sep="\t")
    assert t["cell"].tolist() == ["U1", "ALL"]
    assert (tmp_path / "model" / "weights.pt").read_bytes() == (
        d / "model" / "weights.pt"
    ).read_bytes()


def test_shards_concatenate_to_the_single_job_output(cli, trained, tmp_path):
    d = trained
    base = ["predict", d / "u1_test.bedpe", "-g", HG38_PIECE, "-m", d / "model"]
    assert cli(*base, "-o", tmp_path / "all.bedpe").code == 0
    parts = []
    for i in (1, 2, 3):
        r = cli(*base, "--shard", f"{i}/3", "--chunk-size", 7)
        assert r.code == 0, r.stderr
        parts.append(r.stdout)
    assert "".join(parts) == (tmp_path / "all.bedpe").read_text()
    assert parts[1] and not parts[1].startswith("#")


def test_hdf5_input_scores_like_bedpe(cli, trained, tmp_path):
    d = trained
    h5 = tmp_path / "u1.h5"
    assert cli("prepare", d / "u1_test.bedpe", "-g", HG38_PIECE, "-o", h5, *WINDOWS).code == 0
    a = cli("predict", d / "u1_test.bedpe", "-g", HG38_PIECE, "-m", d / "model")
    b = cli("predict", h5, "-m", d / "model")
    assert a.code == 0 and b.code == 0
    ta, tb = _read_bedpe_table(a.stdout), _read_bedpe_table(b.stdout)
    assert np.allclose(ta["score"], tb["score"]) and ta["name"].tolist() == tb["name"].tolist()


def test_default_model_needs_no_genome(cli, monkeypatch):
    monkeypatch.delenv("EPCLI_MODEL", raising=False)
    r = cli("predict", SYNTH / "U1.bedpe")
    assert r.code == 0, r.stderr
    assert "bundled default model (a distance-only prior" in r.stderr
    t = _read_bedpe_table(r.stdout)
    d = (t.start2 + t.end2) // 2 - (t.start1 + t.end1) // 2
    # a distance prior: the score falls as the distance grows
    order = np.argsort(d.abs().to_numpy(), kind="stable")
    assert np.all(np.diff(t["score"].to_numpy()[order]) <= 1e-12)
    assert t["score"].max() - t["score"].min() > 0.1


# ------------------------------------------------------------------ bad inputs
def _only(tmp_path: Path, *names: str) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_predict_errors(cli, trained, tmp_path):
    d = trained
    test = shutil.copy(d / "u1_test.bedpe", tmp_path / "t.bedpe")
    # a sequence model on BEDPE without --genome: usage error
    r = cli("predict", test, "-m", d / "model", "-o", tmp_path / "o.bedpe")
    assert r.code == 2 and "--genome is needed" in r.stderr
    # a prototype made for another model
    other = tmp_path / "other.proto"
    p = json.loads(
        (lambda: (cli("adapt", d / "model", test, "-g", HG38_PIECE, "-o", other), other))()[
            1
        ].read_text()
    )
    p["model_fingerprint"] = "0123456789abcdef"
    other.write_text(json.dumps(p))
    r = cli(
        "predict",
        test,
        "-g",
        HG38_PIECE,
        "-m",
        d / "model",
        "-p",
        other,
        "-o",
        tmp_path / "o.bedpe",
    )
    assert r.code == 1
    assert "prototype was built for model 0123456789abcdef" in r.stderr and str(other) in r.stderr
    r = cli("predict", test, "-g", HG38_PIECE, "-m", d / "model", "--shard", "4/3")
    assert r.code == 2 and "--shard" in r.stderr
    r = cli("predict", test, "-m", tmp_path / "nope")
    assert r.code == 1 and "model directory not found" in r.stderr
    _only(tmp_path, "t.bedpe", "other.proto")


def test_adapt_errors(cli, trained, tmp_path):
    d = trained
    one_class = tmp_path / "neg.bedpe"
    text = (d / "u1_support.bedpe").read_text().splitlines()
    one_class.write_text(
        "\n".join([text[0]] + [ln for ln in text[1:] if ln.split("\t")[11] == "0"]) + "\n"
    )
    out = tmp_path / "x.proto"
    r = cli("adapt", d / "model", one_class, "-g", HG38_PIECE, "-o", out)
    assert r.code == 1 and "needs labeled positive and negative pairs" in r.stderr
    r = cli("adapt", d / "model", one_class, "-g", HG38_PIECE, "-o", out, "--cell", "K562")
    assert r.code == 2 and "cell 'K562' is not in" in r.stderr and "U1" in r.stderr
    r = cli("adapt", d / "model", d / "train.bedpe", "-g", HG38_PIECE, "-o", out)
    assert r.code == 2 and "several cells (T1, T2, T3)" in r.stderr
    r = cli(
        "adapt", d / "model", d / "u1_support.bedpe", "-g", HG38_PIECE, "-o", out, "--shots", 100000
    )
    assert r.code == 1 and "--shots 100000" in r.stderr
    _only(tmp_path, "neg.bedpe")
    out.write_text("keep me")
    r = cli("adapt", d / "model", d / "u1_support.bedpe", "-g", HG38_PIECE, "-o", out)
    assert r.code == 2 and "already exists" in r.stderr and out.read_text() == "keep me"


def test_train_errors(cli, trained, tmp_path, tiny_genome):
    d = trained
    out = tmp_path / "m"
    cfg = tmp_path / "c.json"
    # unknown config keys, named
    cfg.write_text(json.dumps({"train": {"epochz": 3}, "model": {"d_modle": 8}}))
    r = cli("train", d / "train.h5", "-o", out, "--config", cfg)
    assert r.code == 1 and "unknown key(s) 'epochz'" in r.stderr and str(cfg) in r.stderr
    cfg.write_text(json.dumps({"model": {"d_modle": 8}}))
    r = cli("train", d / "train.h5", "-o", out, "--config", cfg)
    assert r.code == 1 and "d_modle" in r.stderr
    # unknown validation cell: usage error naming the valid ones
    r = cli("train", d / "train.h5", "-o", out, "--val-cells", "K562", "--config", d / "tiny.json")
    assert r.code == 2 and "K562" in r.stderr and "T1" in r.stderr
    # a dataset without labels
    nolab = tmp_path / "nolabel.bedpe"
    nolab.write_text("chrA\t45\t55\tchrA\t80\t90\nchrA\t10\t20\tchrA\t80\t90\n")
    assert cli("prepare", nolab, "-g", tiny_genome, "-o", tmp_path / "nl.h5", "--cell", "X",
               "--enhancer-window", 10, "--promoter-window", 6).code == 0  # fmt: skip
    r = cli("train", tmp_path / "nl.h5", "-o", out, "--config", d / "tiny.json")
    assert r.code == 1 and "label" in r.stderr
    # one class only
    onecls = tmp_path / "one.bedpe"
    onecls.write_text(
        "#chrom1\tstart1\tend1\tchrom2\tstart2\tend2\tcell\tlabel\n"
        + "".join(f"chrA\t{i}\t{i + 5}\tchrA\t80\t90\tX\t0\n" for i in range(0, 40, 5))
    )
    assert cli("prepare", onecls, "-g", tiny_genome, "-o", tmp_path / "one.h5",
               "--enhancer-window", 10, "--promoter-window", 6).code == 0  # fmt: skip
    r = cli("train", tmp_path / "one.h5", "-o", out, "--config", d / "tiny.json")
    assert r.code == 1 and "training needs both classes" in r.stderr
    # mismatched windows between two datasets
    r = cli("train", d / "train.h5", tmp_path / "one.h5", "-o", out, "--config", d / "tiny.json")
    assert r.code == 1 and "windows differ between datasets" in r.stderr
    assert not out.exists()


def test_shard_auto_from_launchers(cli, trained, tmp_path, monkeypatch):
    from epcli.io.source import parse_shard

    assert parse_shard("auto", {"RANK": "2", "WORLD_SIZE": "4"}) == (3, 4)
    assert parse_shard(
        "auto",
        {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "8"},
    ) == (5, 8)
    d = trained
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("SLURM_ARRAY_TASK_COUNT", raising=False)
    r = cli("predict", d / "u1_test.bedpe", "-g", HG38_PIECE, "-m", d / "model", "--shard", "auto")
    assert r.code == 2 and "--shard auto needs torchrun" in r.stderr
    parts = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        out = tmp_path / "part.{shard}.bedpe"
        r = cli("predict", d / "u1_test.bedpe", "-g", HG38_PIECE, "-m", d / "model",
                "--shard", "auto", "-o", out)  # fmt: skip
        assert r.code == 0, r.stderr
        parts.append((tmp_path / f"part.{rank + 1}.bedpe").read_text())
    monkeypatch.delenv("WORLD_SIZE")
    single = cli("predict", d / "u1_test.bedpe", "-g", HG38_PIECE, "-m", d / "model")
    assert "".join(parts) == single.stdout
