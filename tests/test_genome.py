"""Genome windows checked by hand on the tiny genome; FASTA problems give clear errors.

tiny.fa: chrA (100 bp) = "AAAAACCCCCGGGGGTTTTT" x 5, with positions 40-44 = "acgtn";
chrB (60 bp) = "ACGT" x 15, with positions 10-13 = "RYNk".
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

from epcli.core.errors import EpcliError
from epcli.io.genome import Genome, decode, encode, window_bounds


def test_encode_uppercases_and_maps_iupac_to_n():
    assert encode("ACGTacgtNRYkx").tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 4, 4, 4]
    assert decode(np.array([0, 1, 2, 3, 4])) == "ACGTN"


def test_window_bounds_centre_on_midpoint():
    ws, we = window_bounds(np.array([45, 0, 10]), np.array([55, 4, 14]), 10)
    # midpoints 50, 2, 12 -> windows start at mid - 5
    assert ws.tolist() == [45, -3, 7] and we.tolist() == [55, 7, 17]


def test_windows_by_hand(tiny_genome):
    g = Genome(tiny_genome)
    assert g.lengths == {"chrA": 100, "chrB": 60}
    codes, pad = g.window("chrA", 45, 55)
    assert decode(codes) == "CCCCCGGGGG" and pad == 0
    codes, pad = g.window("chrA", -3, 7)  # runs off the start
    assert decode(codes) == "NNNAAAAACC" and pad == 3
    codes, pad = g.window("chrA", 93, 103)  # runs off the end
    assert decode(codes) == "GGTTTTTNNN" and pad == 3
    codes, _ = g.window("chrA", 39, 45)  # soft-masked "acgtn" uppercased
    assert codes.tolist() == [3, 0, 1, 2, 3, 4]
    codes, _ = g.window("chrB", 8, 16)  # IUPAC R, Y, N, k -> N
    assert decode(codes) == "ACNNNNGT"
    codes, pad = g.window("chrB", -10, 70)  # wider than the contig on both sides
    assert pad == 20 and decode(codes[10:14]) == "ACGT"


def test_recent_windows_come_from_a_bounded_memo(tiny_genome):
    g = Genome(tiny_genome, memo_bytes=25)  # room for two 10 bp windows
    first, pad = g.window("chrA", 93, 103)
    g.close()  # a second fetch of a memoised window must not read the file
    again, pad2 = g.window("chrA", 93, 103)
    assert again is first and pad2 == pad == 3 and decode(again) == "GGTTTTTNNN"
    with pytest.raises(ValueError):
        again[0] = 0  # read-only: no caller can change what others are served
    g = Genome(tiny_genome, memo_bytes=25)
    for start in (0, 10, 20, 0):
        codes, _ = g.window("chrA", start, start + 10)
    assert decode(codes) == "AAAAACCCCC" and g.memo_bytes == 20  # the two most recent
    no_memo = Genome(tiny_genome, memo_bytes=0)
    no_memo.window("chrA", 0, 10)
    assert no_memo.memo_bytes == 0


def test_fingerprint_depends_on_names_and_lengths_not_path(tiny_genome, tmp_path):
    fp = Genome(tiny_genome).fingerprint
    other = tmp_path / "copy.fa"
    other.write_text(tiny_genome.read_text())
    assert Genome(other).fingerprint == fp
    shorter = tmp_path / "short.fa"
    shorter.write_text(tiny_genome.read_text().rsplit("\n", 2)[0] + "\n")
    assert Genome(shorter).fingerprint != fp


def test_chromosome_naming_mismatch_names_both_conventions(tiny_genome):
    g = Genome(tiny_genome)
    err = g.missing_chrom_error("A", "pairs.bedpe", 3)
    text = str(err)
    assert text.startswith("pairs.bedpe:3: chromosome 'A' is not in the genome")
    assert "'1' style (no chr prefix)" in text and "'chr1' style (with chr prefix)" in text
    err = g.missing_chrom_error("chrZ", "pairs.bedpe", 1)
    assert "not in the genome tiny.fa (it has chrA, chrB)" in str(err)


def test_not_fasta_missing_and_directory(tmp_path):
    bad = tmp_path / "x.fa"
    bad.write_text("chr1\t1\t2\n")
    with pytest.raises(EpcliError, match="not FASTA"):
        Genome(bad)
    with pytest.raises(EpcliError, match="genome FASTA not found"):
        Genome(tmp_path / "missing.fa")
    with pytest.raises(EpcliError, match="is a directory"):
        Genome(tmp_path)


def test_plain_gzip_fasta_is_refused_with_a_fix(tmp_path, tiny_genome):
    gz = tmp_path / "g.fa.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(tiny_genome.read_text())
    with pytest.raises(EpcliError, match="bgzip"):
        Genome(gz)


def test_index_built_elsewhere_when_folder_is_read_only(tiny_genome, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    real_access = os.access

    def no_write(path, mode):  # the FASTA's folder is read-only
        if mode == os.W_OK and str(path) == str(tiny_genome.parent):
            return False
        return real_access(path, mode)

    monkeypatch.setattr("epcli.io.genome.os.access", no_write)
    g = Genome(tiny_genome)
    assert decode(g.window("chrA", 45, 55)[0]) == "CCCCCGGGGG"
    assert not (tiny_genome.parent / "tiny.fa.fai").exists()
    assert len(list((cache / "epcli" / "fai").glob("*.fai"))) == 1


def test_unreadable_genome_is_a_clear_error(tiny_genome, monkeypatch):
    # (tests run as root here, so a chmod would not stop the read: simulate it)
    def denied(path, mode="r", *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("epcli.io.files.open", denied, raising=False)
    with pytest.raises(EpcliError) as err:
        Genome(tiny_genome)
    assert str(err.value) == f"{tiny_genome}: cannot read genome FASTA: Permission denied"
