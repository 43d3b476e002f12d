"""epcli candidates: all cis pairs within a distance, checked against bedtools and by hand."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd
import pytest

from helpers import HG38_PIECE, run_subprocess, write_text


def _read(text: str) -> pd.DataFrame:
    header, *rows = text.splitlines()
    return pd.read_csv(
        io.StringIO("\n".join([header.lstrip("#"), *rows])), sep="\t", keep_default_na=False
    )


def _random_bed(rng, chroms: dict[str, int], n: int, lengths: tuple[int, int], prefix: str):
    rows = []
    for k in range(n):
        chrom = list(chroms)[k % len(chroms)]
        length = int(rng.integers(*lengths))
        start = int(rng.integers(0, chroms[chrom] - length))
        strand = "+-"[int(rng.integers(0, 2))]
        rows.append((chrom, start, start + length, f"{prefix}{k}", 0, strand))
    rng.shuffle(rows)
    return sorted(rows, key=lambda r: (r[0], r[1]))  # grouped by chromosome, as sort -k1,1


def _bed_text(rows) -> str:
    return "".join("\t".join(map(str, r)) + "\n" for r in rows)


def test_equals_bedtools_window_then_midpoint_filter(cli, tmp_path):
    """Same pairs and distances as bedtools window (pybedtools) filtered by midpoint distance,
    on random elements over two chromosomes."""
    import pybedtools

    rng = np.random.default_rng(7)
    chroms = {"chr1": 3_000_000, "chr2": 2_000_000}
    enh = _random_bed(rng, chroms, 400, (150, 2500), "e")
    pro = _random_bed(rng, chroms, 120, (1000, 3000), "p")
    e_path = write_text(tmp_path / "e.bed", _bed_text(enh))
    p_path = write_text(tmp_path / "p.bed", _bed_text(pro))
    max_d, min_d = 400_000, 5_000

    r = cli("candidates", e_path, p_path, "--max-distance", max_d, "--min-distance", min_d)
    assert r.code == 0, r.stderr
    got = _read(r.stdout)

    hits = pybedtools.BedTool(str(e_path)).window(pybedtools.BedTool(str(p_path)), w=max_d)
    want = []
    for f in hits:
        a, b = f.fields[:6], f.fields[6:]
        em = (int(a[1]) + int(a[2])) // 2
        pm = (int(b[1]) + int(b[2])) // 2
        d = abs(pm - em)
        if min_d <= d <= max_d:
            want.append((a[0], int(a[1]), int(a[2]), int(b[1]), int(b[2]), f"{a[3]}|{b[3]}", d))
    pybedtools.cleanup()
    assert len(want) > 1000  # a real test: many pairs on both chromosomes
    key = ["chrom1", "start1", "end1", "start2", "end2", "name", "distance"]
    got_set = sorted(map(tuple, got[key].itertuples(index=False, name=None)))
    assert got_set == sorted(want)
    assert set(got["chrom1"]) == {"chr1", "chr2"}
    assert (got["chrom1"] == got["chrom2"]).all()
    # strands of the inputs are kept
    e_strand = {r[3]: r[5] for r in enh}
    p_strand = {r[3]: r[5] for r in pro}
    names = got["name"].str.split("|", expand=True)
    assert got["strand1"].tolist() == [e_strand[n] for n in names[0]]
    assert got["strand2"].tolist() == [p_strand[n] for n in names[1]]
    # sorted by chromosome and position
    order = got.sort_values(["chrom1", "start1", "end1", "start2", "end2"], kind="stable")
    assert order.index.tolist() == list(range(len(got)))


def test_tss_windows_by_hand(cli, tmp_path):
    """--tss: + strand window [tss-1500, tss+500), - strand [tss-499, tss+1501) (TSS = end-1),
    a gene body gives its TSS, windows clipped at chromosome ends; checked by hand."""
    e = write_text(tmp_path / "e.bed", "chrA\t10000\t10400\tE1\nchrA\t30000\t30200\tE2\n")
    p = write_text(
        tmp_path / "genes.bed",
        "chrA\t12000\t12001\tTSSplus\t0\t+\n"  # TSS 12000 -> [10500, 12500), mid 11500
        "chrA\t20000\t28000\tGENEminus\t0\t-\n"  # TSS 27999 -> [27500, 29500), mid 28500
        "chrA\t500\t900\tNEAR0\t0\t+\n",  # TSS 500 -> [-1000, 1000) clipped to [0, 1000)
    )
    sizes = write_text(tmp_path / "g.sizes", "chrA\t40000\n")
    r = cli("candidates", e, p, "--tss", "--max-distance", 20_000, "--chrom-sizes", sizes)
    assert r.code == 0, r.stderr
    got = _read(r.stdout)
    rows = got[["start1", "start2", "end2", "name", "strand2", "distance"]].values.tolist()
    assert rows == [
        [10000, 0, 1000, "E1|NEAR0", "+", 9700],  # E1 mid 10200, promoter mid 500
        [10000, 10500, 12500, "E1|TSSplus", "+", 1300],
        [10000, 27500, 29500, "E1|GENEminus", "-", 18300],
        [30000, 10500, 12500, "E2|TSSplus", "+", 18600],  # E2 mid 30100
        [30000, 27500, 29500, "E2|GENEminus", "-", 1600],
    ]
    assert "clipped" in r.stderr
    # the up/downstream sizes are options
    r = cli("candidates", e, p, "--tss", "--upstream", 100, "--downstream", 50)
    got = _read(r.stdout)
    plus = got[got["name"] == "E1|TSSplus"].iloc[0]
    minus = got[got["name"] == "E1|GENEminus"].iloc[0]
    assert (plus.start2, plus.end2) == (11900, 12050)
    assert (minus.start2, minus.end2) == (27999 - 49, 27999 + 101)


def test_library_tss_window():
    from epcli.candidates import tss_window

    assert tss_window(5000, 5001, "+") == (3500, 5500, 0)
    assert tss_window(5000, 5001, "-") == (4501, 6501, 0)
    assert tss_window(100, 200, "+", length=1000) == (0, 600, 1)
    assert tss_window(800, 950, "-", length=1000) == (450, 1000, 1)


@pytest.mark.parametrize("model", ["default", "prism"])
def test_pipeline_candidates_predict_evaluate(tmp_path, model):
    """candidates | predict - | evaluate --truth, end to end with real shell pipes, with the
    bundled distance prior and with a (tiny, untrained) sequence model."""
    import subprocess
    import sys

    from test_predictor import write_torch_model

    e = write_text(
        tmp_path / "e.bed",
        "".join(
            f"chr20\t{s}\t{s + 400}\tE{i}\n" for i, s in enumerate(range(100_000, 400_000, 30_000))
        ),
    )
    p = write_text(
        tmp_path / "p.bed",
        "".join(
            f"chr20\t{s}\t{s + 1}\tG{i}\t0\t{'+-'[i % 2]}\n"
            for i, s in enumerate(range(120_000, 420_000, 50_000))
        ),
    )
    cand = run_subprocess("candidates", e, p, "--tss", "--max-distance", 150_000, "-g", HG38_PIECE)
    assert cand.code == 0, cand.stderr
    pairs = _read(cand.stdout)
    assert len(pairs) > 20
    # labels: the closer half are "positive"
    truth = pairs.copy()
    truth["label"] = (truth["distance"] < truth["distance"].median()).astype(int)
    truth_path = tmp_path / "truth.bedpe"
    truth_path.write_text(
        "#" + "\t".join(truth.columns) + "\n" + truth.to_csv(sep="\t", header=False, index=False)
    )
    m_opt = ""
    if model == "prism":
        write_torch_model(tmp_path / "m")
        m_opt = f"--model {tmp_path / 'm'} --threads 1"
    py = [sys.executable, "-m", "epcli"]
    scored = tmp_path / "scored.bedpe"
    cmd = (
        f"{' '.join(py)} candidates {e} {p} --tss --max-distance 150000 -g {HG38_PIECE} | "
        f"{' '.join(py)} predict - --genome {HG38_PIECE} --cell X {m_opt} | tee {scored} | "
        f"{' '.join(py)} evaluate - --truth {truth_path} --bootstrap 0"
    )
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(io.StringIO(proc.stdout), sep=r"\s+")
    row = table[table["cell"] == "ALL"].iloc[0]
    assert row["n"] == len(pairs) and row["n_pos"] == truth["label"].sum()
    assert row["distance_aupr"] == pytest.approx(1.0)  # labels follow distance
    out = _read(scored.read_text())
    assert out["name"].tolist() == pairs["name"].tolist()  # every candidate, in order
    assert out["distance"].tolist() == pairs["distance"].tolist()
    if model == "default":  # the distance prior ranks exactly like distance
        assert row["aupr"] == pytest.approx(1.0)
    else:  # the sequence model read both windows of every pair
        assert out["u_i"].nunique() > len(out) // 2 and 0 < row["aupr"] <= 1


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("enh", "pro", "args", "code", "message"),
    [
        ("chrA\t10\t5\n", "chrA\t1\t2\n", [], 1, "e.bed:1: start 10 is not below end 5"),
        ("chrA\tx\t5\n", "chrA\t1\t2\n", [], 1, "e.bed:1: start is not an integer"),
        ("#c\nchrA\t1\n", "chrA\t1\t2\n", [], 1, "e.bed:2: found 2 column(s)"),
        (
            "chrA\t1\t5\n",
            "chrA\t1\t2\tG\n",
            ["--tss"],
            1,
            "p.bed:1: --tss needs each gene's strand",
        ),
        ("chrA\t1\t5\n", "chrA\t1\t2\tG\t0\t*\n", [], 1, "p.bed:1: strand (column 6) must be"),
        ("chrA\t1\t5\n", "1\t1\t2\n", [], 1, "share no chromosome"),
        ("", "chrA\t1\t2\n", [], 1, "no enhancers found"),
        ("chrA\t1\t5\n", "chrA\t1\t2\n", ["--min-distance", 10, "--max-distance", 5], 2, "above"),
        ("chrA\t1\t5\n", "chrA\t1\t2\n", ["--upstream", 10], 2, "need --tss"),
    ],
)
def test_bad_input_clean_errors(cli, tmp_path, enh, pro, args, code, message):
    e = write_text(tmp_path / "e.bed", enh)
    p = write_text(tmp_path / "p.bed", pro)
    out = tmp_path / "out.bedpe"
    r = cli("candidates", e, p, *args, "-o", out)
    assert r.code == code, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()  # nothing half-written
    assert not list(tmp_path.glob(".out.bedpe*"))


def test_genome_checks_names_and_ends(cli, tiny_genome, tmp_path):
    p = write_text(tmp_path / "p.bed", "chrA\t10\t20\tG\n")
    e = write_text(tmp_path / "e.bed", "chrA\t1\t5\nA\t1\t5\n")
    r = cli("candidates", e, p, "-g", tiny_genome)
    assert r.code == 1 and "e.bed:2: chromosome 'A' is not in the genome" in r.stderr
    e = write_text(tmp_path / "e.bed", "chrA\t1\t5\nchrB\t50\t61\n")  # chrB is 60 bp
    r = cli("candidates", e, p, "-g", tiny_genome)
    assert r.code == 1 and "e.bed:2: end 61 is beyond the end of chrB" in r.stderr
    assert r.stdout == ""  # validated before any output, even on stdout


def test_output_never_overwrites_input(cli, tmp_path):
    e = write_text(tmp_path / "e.bed", "chrA\t1\t5\n")
    p = write_text(tmp_path / "p.bed", "chrA\t10\t20\n")
    r = cli("candidates", e, p, "-o", e, "--force")
    assert r.code == 2 and "is the input" in r.stderr
    assert e.read_text() == "chrA\t1\t5\n"
    out = write_text(tmp_path / "out.bedpe", "old\n")
    r = cli("candidates", e, p, "-o", out)
    assert r.code == 2 and "already exists" in r.stderr
    assert out.read_text() == "old\n"


def test_gzip_stdin_and_ungrouped_input(tmp_path):
    """gzip and '-' inputs; an enhancer file with interleaved chromosomes gives the same pairs
    (read whole, with a warning)."""
    rows = [("chr1", 100, 200, "a"), ("chr2", 100, 300, "b"), ("chr1", 5000, 5100, "c")]
    text = "".join("\t".join(map(str, r)) + "\n" for r in rows)
    p = tmp_path / "p.bed.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("track name=x\nchr1\t1000\t1200\tP1\nchr2\t900\t1100\tP2\n")
    r = run_subprocess("candidates", "-", p, stdin=text.encode())
    assert r.code == 0, r.stderr
    got = _read(r.stdout)
    assert got["name"].tolist() == ["a|P1", "c|P1", "b|P2"]  # chromosome order of first sight
    assert got["distance"].tolist() == [950, 3950, 800]
    assert "not grouped by chromosome" in r.stderr
    sorted_text = "".join("\t".join(map(str, r)) + "\n" for r in sorted(rows))
    r2 = run_subprocess("candidates", "-", p, stdin=sorted_text.encode())
    assert r2.code == 0 and "not grouped" not in r2.stderr
    assert sorted(r2.stdout.splitlines()) == sorted(r.stdout.splitlines())


def test_blocks_and_counts_agree(tmp_path):
    """Small pair blocks give the same rows as one block; the first pass counts them exactly."""
    from epcli.candidates import Candidates

    rng = np.random.default_rng(3)
    chroms = {"chr1": 500_000}
    e = write_text(tmp_path / "e.bed", _bed_text(_random_bed(rng, chroms, 300, (100, 900), "e")))
    p = write_text(tmp_path / "p.bed", _bed_text(_random_bed(rng, chroms, 80, (50, 200), "p")))
    with Candidates(e, p, max_distance=100_000, min_distance=2_000) as c:
        whole = pd.concat(list(c.iter_pairs(block_pairs=10**9)), ignore_index=True)
        small = pd.concat(list(c.iter_pairs(block_pairs=97)), ignore_index=True)
        assert c.stats.n_pairs == len(whole) > 1000
    pd.testing.assert_frame_equal(whole, small)
    assert whole["distance"].between(2_000, 100_000).all()


def test_chrom_sizes_errors(cli, tmp_path):
    e = write_text(tmp_path / "e.bed", "chrA\t1\t5\n")
    p = write_text(tmp_path / "p.bed", "chrA\t10\t20\n")
    sizes = write_text(tmp_path / "bad.sizes", "chrA\tbig\n")
    r = cli("candidates", e, p, "--chrom-sizes", sizes)
    assert r.code == 1 and "bad.sizes:1: length is not an integer" in r.stderr
    r = cli("candidates", e, p, "--chrom-sizes", sizes, "-g", sizes)
    assert r.code == 2


def test_gzip_output_reads_back_as_bedpe(cli, tmp_path):
    from epcli.io.bedpe import read_bedpe

    e = write_text(tmp_path / "e.bed", "chrA\t1\t5\tE\n")
    p = write_text(tmp_path / "p.bed", "chrA\t10\t20\tP\n")
    out = tmp_path / "c.bedpe.gz"
    r = cli("candidates", e, p, "-o", out)
    assert r.code == 0, r.stderr
    df = read_bedpe(out)
    assert df["name"].tolist() == ["E|P"] and df["distance"].tolist() == ["12"]
    assert df.attrs["layout"].extras == ["distance"]
