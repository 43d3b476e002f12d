"""`epcli prepare`: dataset contents counted by hand, reader round trip, every bad input,
and real hg38 windows checked base-for-base against bedtools getfasta."""

from __future__ import annotations

import gzip

import numpy as np
import pybedtools
import pytest

from epcli.io.genome import decode, encode
from epcli.io.hdf5 import Dataset, load_pairdata, read_anchor_table
from helpers import HG38_PIECE, run_subprocess

HEADER = (
    "#chrom1\tstart1\tend1\tchrom2\tstart2\tend2\tname\tscore\tstrand1\tstrand2\tcell\tlabel\tsrc\n"
)
ROWS = [
    # enhancer e1 = chrA:45-55 (mid 50), promoter p1 = chrA:80-90 (mid 85)
    "chrA\t45\t55\tchrA\t80\t90\tp1\t.\t.\t+\tK562\t1\tx",
    "chrA\t45\t55\tchrA\t60\t70\tp2\t.\t.\t-\tK562\t0\tx",  # e1, p2 (mid 65)
    "chrA\t10\t20\tchrA\t80\t90\tp3\t.\t.\t+\tHeLa\t0\ty",  # e2 (mid 15), p1
    "chrB\t10\t14\tchrB\t40\t50\tp4\t.\t.\t+\tHeLa\t1\ty",  # e3 (mid 12), p3 (mid 45)
    "chrA\t45\t55\tchrA\t80\t90\tp5\t.\t.\t+\tHeLa\t.\tz",  # e1, p1 again, label unknown
]
PAIRS = HEADER + "\n".join(ROWS) + "\n"


def _prepare(cli, tmp_path, genome, text=PAIRS, *extra):
    pairs = tmp_path / "pairs.bedpe"
    pairs.write_text(text)
    out = tmp_path / "out.h5"
    res = cli(
        "prepare", pairs, "--genome", genome, "-o", out,
        "--enhancer-window", 10, "--promoter-window", 6, *extra,
    )  # fmt: skip
    return res, out, pairs


def test_dataset_contents_by_hand(cli, tmp_path, tiny_genome):
    res, out, _ = _prepare(cli, tmp_path, tiny_genome)
    assert res.code == 0, res.stderr
    assert "5 pairs, 3 unique enhancers, 3 unique promoters" in res.stderr
    assert "2 positive, 2 negative, 1 unknown" in res.stderr
    with Dataset(out) as ds:
        info = ds.info
        assert (info.n_pairs, info.n_enhancers, info.n_promoters) == (5, 3, 3)
        assert (info.enhancer_window, info.promoter_window) == (10, 6)
        assert info.cells == ["K562", "HeLa"] and info.extra_columns == ["src"]
        assert info.genome_name == "tiny.fa" and len(info.genome_fingerprint) == 16
        assert ds.h5.attrs["format_version"] == 1 and ds.h5.attrs["epcli_version"]
        data = ds.load()
        frame = ds.pairs_frame()
        assert ds.h5["enhancers/seq"].compression == "gzip"
    assert data.enh_idx.tolist() == [0, 0, 1, 2, 0]
    assert data.pro_idx.tolist() == [0, 1, 0, 2, 0]
    assert data.distance.tolist() == [35, 15, 70, 33, 35]
    assert data.cell_idx.tolist() == [0, 0, 1, 1, 1]
    assert data.label.tolist() == [1, 0, 0, 1, -1]
    assert data.chrom.tolist() == ["chrA", "chrA", "chrA", "chrB", "chrA"]
    # windows: e1 = chrA[45:55]; e2 = chrA[10:20]; e3 = chrB[7:17] (R Y N k -> N)
    assert [decode(s) for s in data.enh_seqs] == ["CCCCCGGGGG", "GGGGGTTTTT", "TACNNNNGTA"]
    # promoters, 6 bp: p1 = chrA[82:88], p2 = chrA[62:68], p3 = chrB[42:48]
    assert [decode(s) for s in data.pro_seqs] == ["AAACCC", "AAACCC", "GTACGT"]
    assert frame["name"].tolist() == ["p1", "p2", "p3", "p4", "p5"]
    assert frame["strand2"].tolist() == ["+", "-", "+", "+", "+"]
    assert frame["src"].tolist() == ["x", "x", "y", "y", "z"]
    assert frame["cell"].tolist() == ["K562", "K562", "HeLa", "HeLa", "HeLa"]
    anchors = read_anchor_table(out)
    assert anchors[anchors.kind == "enhancer"]["start"].tolist() == [45, 10, 10]
    assert anchors[anchors.kind == "promoter"]["chrom"].tolist() == ["chrA", "chrA", "chrB"]


def test_chunking_does_not_change_the_dataset(cli, tmp_path, tiny_genome):
    _, out1, _ = _prepare(cli, tmp_path, tiny_genome)
    out2 = tmp_path / "chunked.h5"
    res = cli(
        "prepare", tmp_path / "pairs.bedpe", "-g", tiny_genome, "-o", out2,
        "--enhancer-window", 10, "--promoter-window", 6, "--chunk-size", 2,
    )  # fmt: skip
    assert res.code == 0
    a, b = load_pairdata([out1])[0], load_pairdata([out2])[0]
    for name in ("enh_idx", "pro_idx", "distance", "cell_idx", "label"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert np.array_equal(a.enh_seqs, b.enh_seqs) and np.array_equal(a.pro_seqs, b.pro_seqs)


def test_cell_option_and_padding_warning(cli, tmp_path, tiny_genome):
    text = "chrA\t0\t4\tchrA\t96\t100\nchrA\t45\t55\tchrA\t60\t70\n"
    res, out, _ = _prepare(cli, tmp_path, tiny_genome, text, "--cell", "GM12878")
    assert res.code == 0
    assert "2 window(s) ran off a contig end and were padded with N" in res.stderr
    with Dataset(out) as ds:
        d = ds.load()
        assert ds.info.cells == ["GM12878"]
    assert decode(d.enh_seqs[0]) == "NNNAAAAACC"  # chrA[-3:7]
    assert decode(d.pro_seqs[0]) == "TTTTTN"  # chrA[95:101]


def test_stdin_and_gzip_give_the_same_dataset(tmp_path, tiny_genome):
    gz = tmp_path / "pairs.bedpe.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(PAIRS)
    out_gz, out_stdin = tmp_path / "gz.h5", tmp_path / "stdin.h5"
    args = ["-g", tiny_genome, "--enhancer-window", 10, "--promoter-window", 6]
    r1 = run_subprocess("prepare", gz, "-o", out_gz, *args)
    r2 = run_subprocess("prepare", "-", "-o", out_stdin, *args, stdin=PAIRS.encode())
    assert r1.code == 0 and r2.code == 0, r1.stderr + r2.stderr
    a, b = load_pairdata([out_gz])[0], load_pairdata([out_stdin])[0]
    assert np.array_equal(a.enh_seqs, b.enh_seqs) and a.label.tolist() == b.label.tolist()


def test_refuses_to_overwrite_without_force(cli, tmp_path, tiny_genome):
    res, out, pairs = _prepare(cli, tmp_path, tiny_genome)
    before = out.read_bytes()
    res = cli("prepare", pairs, "-g", tiny_genome, "-o", out)
    assert res.code == 2 and "output already exists" in res.stderr and "--force" in res.stderr
    assert out.read_bytes() == before
    res = cli("prepare", pairs, "-g", tiny_genome, "-o", out, "--force")
    assert res.code == 0


BAD_INPUTS = [
    ("chrA\t45\t55\tchrA\t80\t90\textra\n", ":1: found 7 columns, expected 6 or 10 columns"),
    ("chrA\t45\tx5\tchrA\t80\t90\n", ":1: end1 is not an integer: 'x5'"),
    ("chrA\t-1\t55\tchrA\t80\t90\n", ":1: start1 is negative: -1"),
    ("chrA\t45\t55\tchrA\t90\t80\n", ":1: promoter (anchor 2) start 90 is not below end 80"),
    ("chrA\t45\t55\tchrA\t80\t90\nchrZ\t1\t2\tchrZ\t5\t6\n", ":2: chromosome 'chrZ' is not in"),
    ("A\t45\t55\tA\t80\t90\n", ":1: chromosome 'A' is not in the genome: the pairs use '1' style"),
    ("chrB\t45\t55\tchrB\t50\t61\n", ":1: promoter chrB:50-61 runs past the end of the contig"),
    (HEADER + "chrA\t1\t2\tchrA\t5\t6\t.\t.\t.\t.\tK\tyes\tx\n", ":2: label must be 0 or 1"),
    ("# nothing here\n", ": no pairs found"),
    ("chrA\t45\t55\tchrB\t10\t20\n", ":1: inter-chromosomal pair (chrA vs chrB)"),
]


@pytest.mark.parametrize("text,message", BAD_INPUTS)
def test_bad_input_exit_1_message_and_no_output(cli, tmp_path, tiny_genome, text, message):
    res, out, pairs = _prepare(cli, tmp_path, tiny_genome, text)
    assert res.code == 1
    assert f"error: {pairs}{message}" in res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genome", "pairs.bedpe"]


@pytest.mark.parametrize(
    "genome_text,message",
    [("chrA\t1\t2\n", "genome file is not FASTA"), (None, "genome FASTA not found")],
)
def test_bad_genome(cli, tmp_path, genome_text, message):
    genome = tmp_path / "g.fa"
    if genome_text is not None:
        genome.write_text(genome_text)
    res, out, _ = _prepare(cli, tmp_path, genome, "chrA\t1\t2\tchrA\t5\t6\n")
    assert res.code == 1 and message in res.stderr and str(genome) in res.stderr
    assert not out.exists()


def test_bad_window_is_usage_error(cli, tmp_path, tiny_genome):
    res, out, _ = _prepare(cli, tmp_path, tiny_genome, PAIRS, "--enhancer-window", 0)
    # the later --enhancer-window wins
    assert res.code == 2 and "--enhancer-window must be between 1 " in res.stderr
    assert not out.exists()


def test_input_file_is_not_changed(cli, tmp_path, tiny_genome):
    res, _, pairs = _prepare(cli, tmp_path, tiny_genome)
    assert res.code == 0 and pairs.read_text() == PAIRS


@pytest.mark.slow
def test_real_hg38_windows_match_bedtools_getfasta(cli, tmp_path):
    """Windows extracted from the real hg38 piece equal `bedtools getfasta` base for base."""
    rng = np.random.default_rng(7)
    n = 300
    e_start = rng.integers(70_000, 2_900_000, n)
    e_end = e_start + rng.integers(50, 4000, n)
    p_start = np.clip(e_start + rng.integers(-200_000, 200_000, n), 70_000, 2_990_000)
    p_end = p_start + 2000
    lines = [
        f"chr20\t{a}\t{b}\tchr20\t{c}\t{d}"
        for a, b, c, d in zip(e_start, e_end, p_start, p_end, strict=True)
    ]
    pairs = tmp_path / "real.bedpe"
    pairs.write_text("\n".join(lines) + "\n")
    out = tmp_path / "real.h5"
    res = cli("prepare", pairs, "-g", HG38_PIECE, "-o", out, "--cell", "X")
    assert res.code == 0, res.stderr
    anchors = read_anchor_table(out)
    data = load_pairdata([out])[0]
    checked = 0
    for kind, seqs, width in (("enhancer", data.enh_seqs, 3000), ("promoter", data.pro_seqs, 2000)):
        t = anchors[anchors.kind == kind].reset_index(drop=True)
        mid = (t.start + t.end) // 2
        ws = mid - width // 2
        bed = pybedtools.BedTool(
            "\n".join(f"chr20\t{s}\t{s + width}" for s in ws), from_string=True
        ).sequence(fi=str(HG38_PIECE))
        with open(bed.seqfn) as fh:
            ref = [ln.strip() for ln in fh if not ln.startswith(">")]
        assert len(ref) == len(t)
        for i, seq in enumerate(ref):
            assert len(seq) == width
            assert np.array_equal(seqs[i], encode(seq.upper())), f"{kind} {i} differs"
            checked += 1
    assert checked == data.enh_seqs.shape[0] + data.pro_seqs.shape[0] > 400


def test_unreadable_genome_cli_exit_1_and_no_output(cli, tmp_path, tiny_genome, monkeypatch):
    pairs = tmp_path / "pairs.bedpe"
    pairs.write_text(PAIRS)
    real_open = open

    def deny_genome(path, *args, **kwargs):  # root ignores chmod, so simulate the denial
        if str(path) == str(tiny_genome):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("epcli.io.files.open", deny_genome, raising=False)
    out = tmp_path / "out.h5"
    res = cli("prepare", pairs, "-g", tiny_genome, "-o", out)
    assert res.code == 1
    assert f"error: {tiny_genome}: cannot read genome FASTA: Permission denied" in res.stderr
    assert not out.exists()
