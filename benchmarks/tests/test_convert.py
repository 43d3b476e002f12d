"""BENGI / TargetFinder tables -> epcli BEDPE, TransEPI strict folds, leakage, default prior.

Runs on the real tables in example_data/pairs (hg19). Every expected value comes from an
independent path: raw line counts, pandas.read_csv on the raw file, the fold list as
TransEPI publishes it, brute-force overlaps.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from epcli.core import schema
from epcli.core.errors import EpcliError, UsageError
from epcli.io.bedpe import read_bedpe
from epcli_bench.convert import (
    BENGI_COLUMNS,
    FOLDS,
    TARGETFINDER_COLUMNS,
    canonical_cell,
    cell_only_split,
    fold_name,
    fold_of,
    leakage_figures,
    read_bengi,
    read_targetfinder,
    strict_split,
    write_bedpe,
)

PAIRS = Path(__file__).resolve().parents[2] / "example_data" / "pairs"
BENGI_FILES = sorted((PAIRS / "transepi_bengi").glob("*.tsv.gz"))
TF_FILES = sorted((PAIRS / "targetfinder").glob("*.ep_pairs.tsv.gz"))
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "src" / "epcli" / "data" / "default_model"

#: TransEPI strict folds, as published (typed in independently of epcli_bench.convert.FOLDS).
TRANSEPI = {
    0: "chr1 chr10 chr15 chr21",
    1: "chr19 chr3 chr4 chr7 chrX",
    2: "chr13 chr17 chr2 chr22 chr9",
    3: "chr12 chr14 chr16 chr18 chr20",
    4: "chr11 chr5 chr6 chr8",
}


@pytest.fixture(scope="module")
def bengi() -> dict[str, pd.DataFrame]:
    """Every BENGI table read by epcli, by file name."""
    return {f.name: read_bengi(f) for f in BENGI_FILES}


@pytest.fixture(scope="module")
def targetfinder() -> dict[str, pd.DataFrame]:
    """Every TargetFinder table read by epcli, by file name."""
    return {f.name: read_targetfinder(f) for f in TF_FILES}


@pytest.fixture(scope="module")
def bengi_hic(bengi) -> pd.DataFrame:
    """All BENGI Hi-C tables stacked."""
    return pd.concat([df for n, df in bengi.items() if ".HiC-" in n], ignore_index=True)


def _raw_lines(path: Path) -> int:
    with gzip.open(path, "rt") as fh:
        return sum(1 for line in fh if line.strip())


def test_the_tables_are_there():
    assert len(BENGI_FILES) == 10
    assert len(TF_FILES) == 6


def test_row_counts_equal_raw_line_counts(bengi, targetfinder):
    for f in BENGI_FILES:
        assert len(bengi[f.name]) == _raw_lines(f), f.name
    for f in TF_FILES:
        assert len(targetfinder[f.name]) == _raw_lines(f) - 1, f.name  # minus the header


def test_bengi_columns_equal_pandas_parse(bengi):
    for f in BENGI_FILES:
        raw = pd.read_csv(f, sep="\t", header=None, names=list(BENGI_COLUMNS))
        df = bengi[f.name]
        assert list(df.columns[:10]) == list(schema.BEDPE_STANDARD)
        for ours, theirs in (
            ("chrom1", "e_chrom"),
            ("start1", "e_start"),
            ("end1", "e_end"),
            ("chrom2", "p_chrom"),
            ("start2", "p_start"),
            ("end2", "p_end"),
            ("label", "label"),
        ):
            np.testing.assert_array_equal(
                df[ours].to_numpy(), raw[theirs].to_numpy(), err_msg=f"{f.name} {ours}"
            )
        np.testing.assert_array_equal(df["bengi_distance"].to_numpy(), raw["distance"].to_numpy())
        p = [v.split("|") for v in raw["p_name"]]
        e = [v.split("|") for v in raw["e_name"]]
        assert df["strand2"].tolist() == [v[-1] for v in p]
        assert df["name"].tolist() == [f"{a[2]}|{b[2]}" for a, b in zip(e, p, strict=True)]
        cell, assay = f.name.split(".")[0], f.name.split(".")[1].replace("-Benchmark", "")
        assert set(df["cell"]) == {cell}
        assert set(df["assay"]) == {assay}
        assert set(df["source"]) == {"bengi"}
        assert set(df["score"]) == set(df["strand1"]) == {"."}


def test_bengi_first_line_by_hand(bengi):
    # zcat GM12878.HiC-Benchmark.v3.tsv.gz | head -1
    # 1 572380.0 chr5 317258 317610 chr5:317258-317610|GM12878|EH37E0762690 chr5 889314
    # 891314 chr5:889813-889814|GM12878|ENSG00000028310.13|ENST00000388890.4|-
    r = bengi["GM12878.HiC-Benchmark.v3.tsv.gz"].iloc[0]
    assert (r.chrom1, r.start1, r.end1) == ("chr5", 317258, 317610)
    assert (r.chrom2, r.start2, r.end2) == ("chr5", 889314, 891314)
    assert r["name"] == "EH37E0762690|ENSG00000028310.13"
    assert (r.strand2, r.cell, r.label, r.fold) == ("-", "GM12878", 1, "fold4")
    assert r.bengi_distance == 572380.0


def test_targetfinder_columns_equal_pandas_parse(targetfinder):
    for f in TF_FILES:
        raw = pd.read_csv(f, sep="\t")
        assert list(raw.columns) == list(TARGETFINDER_COLUMNS)
        df = targetfinder[f.name]
        for ours, theirs in (
            ("chrom1", "e_chrom"),
            ("start1", "e_start"),
            ("end1", "e_end"),
            ("chrom2", "p_chrom"),
            ("start2", "p_start"),
            ("end2", "p_end"),
            ("label", "label"),
            ("cell", "cell_line"),
        ):
            np.testing.assert_array_equal(
                df[ours].to_numpy(), raw[theirs].to_numpy(), err_msg=f"{f.name} {ours}"
            )
        # the name is the coordinate part of the table's own enhancer/promoter names
        name = [
            a.split("|")[1] + "|" + b.split("|")[1]
            for a, b in zip(raw["enhancer_name"], raw["promoter_name"], strict=True)
        ]
        assert df["name"].tolist() == name
        assert set(df["strand2"]) == {"."}
    # TargetFinder spells HeLa "HeLa-S3"; the source's spelling is kept
    assert set(targetfinder["HeLa-S3.ep_pairs.tsv.gz"]["cell"]) == {"HeLa-S3"}
    assert canonical_cell("HeLa-S3") == canonical_cell("HeLa") == "HeLa"


def test_every_chromosome_in_exactly_one_fold(bengi, targetfinder):
    published = {f"fold{k}": v.split() for k, v in TRANSEPI.items()}
    assert {k: sorted(v) for k, v in FOLDS.items()} == {k: sorted(v) for k, v in published.items()}
    chroms = [f"chr{i}" for i in range(1, 23)] + ["chrX"]
    for c in chroms:
        assert sum(c in v for v in published.values()) == 1
        assert fold_of(c) == next(k for k, v in published.items() if c in v)
    for c in ("chrY", "chrM", "chr1_gl000191_random", "1"):
        assert fold_of(c) == "none"
    assert fold_name(3) == fold_name("3") == fold_name("fold3") == "fold3"
    with pytest.raises(UsageError):
        fold_name(5)
    for df in list(bengi.values()) + list(targetfinder.values()):
        expect = [next((k for k, v in published.items() if c in v), "none") for c in df["chrom1"]]
        assert df["fold"].tolist() == expect


@pytest.mark.parametrize("fold", range(5))
def test_strict_split_bengi(bengi_hic, fold):
    train, test = strict_split(bengi_hic, fold)
    held = TRANSEPI[fold].split()
    assert not train["chrom1"].isin(held).any()
    assert not train["chrom2"].isin(held).any()
    assert test["chrom1"].isin(held).all()
    assert set(train["cell"]) == {"GM12878", "HeLa"}
    assert not test["cell"].isin(["GM12878", "HeLa"]).any()
    # sizes from an independent count
    c = bengi_hic["cell"].isin(["GM12878", "HeLa"])
    h = bengi_hic["chrom1"].isin(held)
    assert len(train) == int((c & ~h).sum())
    assert len(test) == int((~c & h).sum())
    # no identical pair, no common anchor across the split
    fig = leakage_figures(train, test)
    assert fig["pair_identical"] == 0.0
    assert fig["promoter_seen"] == fig["enhancer_seen"] == 0.0


def test_strict_split_targetfinder_matches_hela_s3(targetfinder):
    tf = pd.concat(targetfinder.values(), ignore_index=True)
    train, test = strict_split(tf, "fold2")
    assert set(train["cell"]) == {"GM12878", "HeLa-S3"}
    assert set(test["cell"]) == {"HUVEC", "IMR90", "K562", "NHEK"}
    assert not train["chrom1"].isin(TRANSEPI[2].split()).any()
    with pytest.raises(UsageError):
        strict_split(tf, 0, train_cells=("Nowhere",))


def test_leakage_cell_only_split_is_nonzero(bengi_hic):
    train, test = cell_only_split(bengi_hic, 0)
    assert len(test) == len(strict_split(bengi_hic, 0)[1])  # the same test set
    fig = leakage_figures(train, test)
    # independent: merge on the six coordinates
    coords = list(schema.BEDPE_COORDS)
    keys = train[coords].drop_duplicates()
    hit = test[coords].merge(keys, how="left", on=coords, indicator=True)["_merge"] == "both"
    assert fig["pair_identical"] == pytest.approx(hit.mean())
    assert fig["pair_identical"] > 0.01
    prom_te = test[coords[3:]].drop_duplicates()
    prom_hit = prom_te.merge(train[coords[3:]].drop_duplicates(), how="left", indicator=True)
    assert fig["promoter_seen"] == pytest.approx((prom_hit["_merge"] == "both").mean())
    assert fig["promoter_seen"] > 0.1
    assert fig["enhancer_seen"] > 0.0
    assert fig["promoter_overlap"] >= fig["promoter_seen"]


@pytest.mark.parametrize("suffix", [".bedpe", ".bedpe.gz"])
def test_round_trip_through_read_bedpe(bengi, targetfinder, tmp_path, suffix):
    df = pd.concat(
        [
            bengi["HeLa.HiC-Benchmark.v3.tsv.gz"].iloc[:3000],
            targetfinder["NHEK.ep_pairs.tsv.gz"].iloc[:2000],
        ],
        ignore_index=True,
    )
    out = tmp_path / f"pairs{suffix}"
    write_bedpe(df, out)
    first = (gzip.open(out, "rt") if suffix.endswith(".gz") else open(out)).readline()
    assert first.startswith("#chrom1\tstart1\tend1\tchrom2\tstart2\tend2\tname\tscore")
    assert "\tcell\tlabel\t" in first
    back = read_bedpe(out)
    assert len(back) == len(df)
    assert list(back.columns[:10]) == list(schema.BEDPE_STANDARD)
    for c in list(schema.BEDPE_STANDARD) + ["cell", "label", "source", "assay", "fold"]:
        np.testing.assert_array_equal(back[c].to_numpy(), df[c].to_numpy(), err_msg=c)
    dist = pd.to_numeric(back["bengi_distance"], errors="coerce").to_numpy()
    np.testing.assert_array_equal(dist, df["bengi_distance"].to_numpy())  # NaN == NaN here
    assert back["_line"].tolist() == list(range(2, len(df) + 2))


BENGI_LINE = (
    "{label}\t1000.0\tchr1\t100\t{e_end}\tchr1:100-200|K562|EH1\tchr1\t1000\t3000\t"
    "chr1:2499-2500|K562|ENSG1|ENST1|+\n"
)


def _bengi_lines(n: int = 4) -> list[str]:
    return [BENGI_LINE.format(label=i % 2, e_end=200) for i in range(n)]


def test_malformed_bengi_label(tmp_path):
    lines = _bengi_lines()
    lines[2] = BENGI_LINE.format(label=2, e_end=200)
    p = tmp_path / "K562.HiC-Benchmark.v3.tsv"
    p.write_text("".join(lines))
    with pytest.raises(EpcliError) as ei:
        read_bengi(p)
    assert ei.value.line == 3 and ei.value.path == str(p)
    assert "label" in str(ei.value) and "'2'" in str(ei.value)
    assert f"{p}:3" in str(ei.value)


def test_malformed_bengi_short_line_after_blank(tmp_path):
    lines = _bengi_lines()
    lines.insert(1, "\n")  # blank lines are skipped but counted
    lines[3] = "\t".join(lines[3].split("\t")[:7]) + "\n"
    p = tmp_path / "bad.tsv"
    p.write_text("".join(lines))
    with pytest.raises(EpcliError) as ei:
        read_bengi(p)
    assert ei.value.line == 4
    assert "found 7 columns, expected 10" in str(ei.value)


def test_malformed_bengi_coordinates(tmp_path):
    for bad_end, line, text in (("12.5", 2, "e_end"), ("50", 2, "start is not below")):
        lines = _bengi_lines()
        lines[1] = BENGI_LINE.format(label=1, e_end=bad_end)
        p = tmp_path / "bad.tsv.gz"
        with gzip.open(p, "wt") as fh:
            fh.write("".join(lines))
        with pytest.raises(EpcliError) as ei:
            read_bengi(p)
        assert ei.value.line == line and text in str(ei.value)
    good = tmp_path / "good.tsv"
    good.write_text("".join(_bengi_lines()))
    df = read_bengi(good)
    assert df["label"].tolist() == [0, 1, 0, 1]
    assert df["assay"].tolist() == ["."] * 4  # the file name does not give the assay


def test_malformed_targetfinder(tmp_path):
    header = "\t".join(TARGETFINDER_COLUMNS) + "\n"
    row = (
        "K562\t{label}\tchr1\t100\t200\tchr1\t5000\t6000\tK562|chr1:100-200\tK562|chr1:5000-6000\n"
    )
    p = tmp_path / "K562.ep_pairs.tsv"
    p.write_text(header + row.format(label=1) + row.format(label=0) + row.format(label="yes"))
    with pytest.raises(EpcliError) as ei:
        read_targetfinder(p)
    assert ei.value.line == 4 and "'yes'" in str(ei.value)
    p.write_text(header.replace("cell_line", "cell") + row.format(label=1))
    with pytest.raises(EpcliError) as ei:
        read_targetfinder(p)
    assert ei.value.line == 1 and "header" in str(ei.value)
    p.write_text(header + row.format(label=1).replace("\tchr1\t5000", "\tchr2\t5000"))
    with pytest.raises(EpcliError) as ei:
        read_targetfinder(p)
    assert ei.value.line == 2 and "inter-chromosomal" in str(ei.value)
    p.write_text(header)
    with pytest.raises(EpcliError, match="no pairs"):
        read_targetfinder(p)


def test_bundled_default_model(bengi):
    from epcli.io.modeldir import load_model_dir

    m = load_model_dir(DEFAULT_MODEL)  # verifies the fingerprint
    assert m.kind == "distance"
    assert m.windows == {"enhancer": 3000, "promoter": 2000}
    card = m.model_card
    assert card["name"] == "distance prior (BENGI HiC, hg19)"
    assert card["uses_sequence"] is False
    assert card["fingerprint"] == m.fingerprint
    assert m.params["coef"][0] < 0  # closer pairs interact more often
    # the card's held-out prevalences are those of the raw test tables
    held = card["validation"]["held_out_per_cell"]
    for cell in ("HMEC", "IMR90", "K562", "NHEK"):
        raw = bengi[f"{cell}.HiC-Benchmark.v3.tsv.gz"]["label"]
        assert held[cell]["n"] == len(raw)
        assert held[cell]["prevalence"] == pytest.approx(raw.mean(), abs=1e-4)
        assert held[cell]["aupr"] > held[cell]["prevalence"]
    assert all(p.suffix in (".json", ".tsv") for p in DEFAULT_MODEL.iterdir())
    assert sum(p.stat().st_size for p in DEFAULT_MODEL.iterdir()) < 64_000
    json.loads((DEFAULT_MODEL / "config.json").read_text())
