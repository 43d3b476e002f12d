"""BEDPE reading: layouts, gzip, CRLF, comments, and every malformed-line error."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from epcli.core.errors import EpcliError
from epcli.core.pairs import pair_distance
from epcli.io.bedpe import iter_bedpe_chunks, read_bedpe

SIX = "chr1\t100\t200\tchr1\t1000\t1200\nchr1\t300\t500\tchr1\t2000\t2100\n"


def test_six_columns_get_standard_defaults(tmp_path):
    p = tmp_path / "a.bedpe"
    p.write_text(SIX)
    df = read_bedpe(p)
    assert list(df.columns[:10]) == [
        "chrom1", "start1", "end1", "chrom2", "start2", "end2",
        "name", "score", "strand1", "strand2",
    ]  # fmt: skip
    assert df["start1"].tolist() == [100, 300]
    assert df["name"].tolist() == [".", "."]
    assert df["cell"].tolist() == [".", "."]
    assert df["label"].tolist() == [-1, -1]
    assert df["_line"].tolist() == [1, 2]
    # midpoints 150 -> 1100 and 400 -> 2050
    assert pair_distance(df).tolist() == [950, 1650]


def test_ten_columns_and_cell_option(tmp_path):
    p = tmp_path / "a.bedpe"
    p.write_text("chr2\t0\t10\tchr2\t50\t60\tpairA\t5\t+\t-\n")
    df = read_bedpe(p, cell="K562")
    assert df.loc[0, "name"] == "pairA" and df.loc[0, "strand2"] == "-"
    assert df.loc[0, "cell"] == "K562"


def test_header_names_extras_and_comments_crlf_skipped(tmp_path):
    p = tmp_path / "a.bedpe"
    p.write_bytes(
        b"track name=x\r\n# a comment\r\n"
        b"#chrom1\tstart1\tend1\tchrom2\tstart2\tend2\tcell\tlabel\tdepth\r\n"
        b"chr1\t1\t2\tchr1\t5\t9\tGM12878\t1\t7\r\n"
        b"\r\n"
        b"browser position chr1\r\n"
        b"chr1\t3\t4\tchr1\t5\t9\tHeLa\t0\t8\r\n"
        b"chr1\t3\t4\tchr1\t5\t9\tHeLa\t.\t9\r\n"
    )
    df = read_bedpe(p)
    assert df["cell"].tolist() == ["GM12878", "HeLa", "HeLa"]
    assert df["label"].tolist() == [1, 0, -1]
    assert df["depth"].tolist() == ["7", "8", "9"]
    assert df["_line"].tolist() == [4, 7, 8]
    layout = df.attrs["layout"]
    assert layout.has_header and layout.extras == ["cell", "label", "depth"]


def test_gzip_and_chunks(tmp_path):
    p = tmp_path / "a.bedpe.gz"
    with gzip.open(p, "wt") as fh:
        for i in range(25):
            fh.write(f"chr1\t{i}\t{i + 1}\tchr1\t{100 + i}\t{101 + i}\n")
    chunks = list(iter_bedpe_chunks(p, chunk_size=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert chunks[2]["start1"].tolist() == [20, 21, 22, 23, 24]
    assert np.all(chunks[1]["_line"].to_numpy() == np.arange(11, 21))


BAD = [
    ("chr1\t1\t2\tchr1\t5\t9\tx\n", 1, "found 7 columns, expected 6 or 10"),
    (SIX + "chr1\t1\t2\tchr1\t5\n", 3, "found 5 columns"),
    ("chr1\t1\tabc\tchr1\t5\t9\n", 1, "end1 is not an integer: 'abc'"),
    ("chr1\t1.5\t3\tchr1\t5\t9\n", 1, "start1 is not an integer"),
    ("chr1\t-5\t3\tchr1\t5\t9\n", 1, "start1 is negative: -5"),
    ("chr1\t10\t10\tchr1\t50\t60\n", 1, "enhancer (anchor 1) start 10 is not below end 10"),
    ("chr1\t1\t2\tchr1\t60\t50\n", 1, "promoter (anchor 2) start 60 is not below end 50"),
    ("chr1\t1\t2\tchr2\t5\t9\n", 1, "inter-chromosomal pair (chr1 vs chr2)"),
    (
        "#chrom1\tstart1\tend1\tchrom2\tstart2\tend2\tlabel\nchr1\t1\t2\tchr1\t5\t9\t2\n",
        2,
        "label must be 0 or 1, found '2'",
    ),
    (
        "#chrom1\tstart1\tend1\tchrom2\tstart2\tend2\tlabel\nchr1\t1\t2\tchr1\t5\t9\n",
        2,
        "found 6 columns, expected 7 columns as the header names",
    ),
    ("#chrom\tstart\tend\nchr1\t1\t2\tchr1\t5\t9\n", None, None),  # not our header: a comment
]


@pytest.mark.parametrize("text,line,message", BAD)
def test_bad_lines_name_file_and_line(tmp_path, text, line, message):
    p = tmp_path / "bad.bedpe"
    p.write_text(text)
    if message is None:
        assert len(read_bedpe(p)) == 1
        return
    with pytest.raises(EpcliError) as err:
        read_bedpe(p)
    assert err.value.line == line
    assert message in str(err.value)
    assert str(err.value).startswith(f"{p}:{line}: ")


def test_header_must_start_with_coordinates(tmp_path):
    p = tmp_path / "h.bedpe"
    p.write_text("#chrom1\tend1\tstart1\tchrom2\tstart2\tend2\nchr1\t1\t2\tchr1\t5\t9\n")
    with pytest.raises(EpcliError, match="header must start with chrom1 start1 end1"):
        read_bedpe(p)


@pytest.mark.parametrize("text", ["", "# only a comment\n\n", "track x\n"])
def test_empty_input(tmp_path, text):
    p = tmp_path / "e.bedpe"
    p.write_text(text)
    with pytest.raises(EpcliError, match="no pairs found"):
        read_bedpe(p)


def test_missing_file(tmp_path):
    with pytest.raises(EpcliError, match="file not found"):
        read_bedpe(tmp_path / "nope.bedpe")
