"""Genome access: fixed-length windows centred on anchor midpoints, as uint8 base codes.

Sequence comes from an indexed FASTA through pyfaidx (random access; the whole genome is
never loaded). Soft-masked (lowercase) bases are uppercased, IUPAC codes other than ACGT
become N, and windows running off a contig end are padded with N.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyfaidx

from epcli.core.arrays import CODE_N
from epcli.core.errors import EpcliError
from epcli.core.pairs import midpoint
from epcli.io.files import read_head

#: Byte -> base code (A,C,G,T = 0..3, everything else N = 4); lowercase maps like uppercase.
CODE_LUT = np.full(256, CODE_N, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    CODE_LUT[_b] = _i
    CODE_LUT[_b + 32] = _i

#: Bytes of recently fetched windows a :class:`Genome` keeps (about 20,000 3 kb windows).
WINDOW_MEMO_BYTES = 64 * 1024**2

#: Default window lengths (bp).
DEFAULT_ENHANCER_WINDOW = 3000
DEFAULT_PROMOTER_WINDOW = 2000


def encode(seq: str | bytes) -> np.ndarray:
    """Encode a DNA string as base codes.

    Parameters
    ----------
    seq : str or bytes
        Sequence of length L (any case, any IUPAC letters).

    Returns
    -------
    np.ndarray, shape (L,), uint8
        A,C,G,T -> 0..3; anything else -> 4 (N).
    """
    raw = seq.encode("ascii", "replace") if isinstance(seq, str) else seq
    return CODE_LUT[np.frombuffer(raw, dtype=np.uint8)]


def decode(codes: np.ndarray) -> str:
    """Inverse of :func:`encode` (uppercase ACGTN)."""
    return np.frombuffer(b"ACGTN", dtype=np.uint8)[np.asarray(codes)].tobytes().decode()


def window_bounds(start: np.ndarray, end: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Window of ``length`` bp centred on each interval's midpoint ``(start + end) // 2``.

    Returns
    -------
    (np.ndarray, np.ndarray), each shape (n,), int64
        Window starts (may be negative) and ends (may exceed the contig).
    """
    mid = midpoint(start, end)
    ws = mid - length // 2
    return ws, ws + length


def _fai_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "epcli" / "fai"


def _has_chr_prefix(names: Iterable[str]) -> bool:
    names = list(names)
    return sum(n.lower().startswith("chr") for n in names) * 2 >= len(names)


def naming_style(names: Iterable[str]) -> str:
    """Describe a chromosome naming convention, e.g. ``"'chr1' style"``."""
    return (
        "'chr1' style (with chr prefix)" if _has_chr_prefix(names) else "'1' style (no chr prefix)"
    )


def missing_chrom_error(
    chrom: str,
    lengths: dict[str, int],
    source: str,
    path: str | None,
    line: int | None,
    what: str = "pairs",
) -> EpcliError:
    """The error for a chromosome that a genome lacks, naming both naming conventions.

    Parameters
    ----------
    chrom : str
        The chromosome name that was not found.
    lengths : dict of str to int
        The genome's contigs and lengths.
    source : str
        How messages name the genome (a file name).
    path, line : optional
        Where ``chrom`` was read.
    what : str
        How messages name the input (``"pairs"``, ``"elements"``).
    """
    names = list(lengths)
    alt = chrom[3:] if chrom.lower().startswith("chr") else "chr" + chrom
    if alt in lengths or _has_chr_prefix([chrom]) != _has_chr_prefix(names):
        return EpcliError(
            f"chromosome {chrom!r} is not in the genome: the {what} use "
            f"{naming_style([chrom])} names but {source} uses {naming_style(names)} names",
            path=path,
            line=line,
            hint=f"rename the {what}' chromosomes to match the genome, e.g. "
            + (
                "sed 's/^chr//'"
                if _has_chr_prefix([chrom])
                else "awk '{$1=\"chr\"$1; $4=\"chr\"$4}1' OFS='\\t'"
            ),
        )
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return EpcliError(
        f"chromosome {chrom!r} is not in the genome {source} (it has {shown})",
        path=path,
        line=line,
        hint=f"use the genome build the {what} were called on, or drop those {what}",
    )


def read_chrom_sizes(path: str | os.PathLike) -> dict[str, int]:
    """Read a chromosome-sizes file (``chrom<TAB>length`` per line, as UCSC's ``.chrom.sizes``).

    A FASTA index (``.fai``) reads the same way: columns after the second are ignored.

    Returns
    -------
    dict of str to int
        Contig lengths, in file order.

    Raises
    ------
    EpcliError
        Missing file, a line without an integer length, a name given twice, or no contigs.
    """
    from epcli.io.files import display_name, open_text_input

    where = display_name(path)
    read_head(path, 1, "chromosome sizes file", hint="check the --chrom-sizes path")
    sizes: dict[str, int] = {}
    hint = "each line is 'chrom<TAB>length', e.g. 'chr1\t248956422'"
    with open_text_input(path) as fh:
        for line_no, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text or text.startswith("#"):
                continue
            parts = text.split()
            if len(parts) < 2:
                raise EpcliError(
                    "expected a chromosome and its length", path=where, line=line_no, hint=hint
                )
            try:
                length = int(parts[1])
            except ValueError:
                raise EpcliError(
                    f"length is not an integer: {parts[1]!r}", path=where, line=line_no, hint=hint
                ) from None
            if length <= 0:
                raise EpcliError(f"length must be positive, got {length}", path=where, line=line_no)
            if parts[0] in sizes:
                raise EpcliError(
                    f"chromosome {parts[0]!r} is listed twice", path=where, line=line_no
                )
            sizes[parts[0]] = length
    if not sizes:
        raise EpcliError("chromosome sizes file lists no chromosomes", path=where, hint=hint)
    return sizes


class Genome:
    """An indexed FASTA file.

    Parameters
    ----------
    path : str or path-like
        FASTA file (plain or bgzip-compressed). A missing ``.fai`` index is built next to it,
        or in the user cache folder when the FASTA's folder is read-only.

    Raises
    ------
    EpcliError
        If the file is missing, unreadable, not FASTA, or gzip but not bgzip.
    """

    def __init__(self, path: str | os.PathLike, memo_bytes: int = WINDOW_MEMO_BYTES) -> None:
        self.path = Path(path)
        self._check_file()
        self._fa = self._open()
        # recently fetched windows (an anchor of a genome-wide candidate list recurs in many
        # chunks): bounded LRU, keyed by coordinates
        self._memo: OrderedDict[tuple[str, int, int], tuple[np.ndarray, int]] = OrderedDict()
        self._memo_bytes, self.memo_budget = 0, int(memo_bytes)
        self.lengths: dict[str, int] = {k: len(v) for k, v in self._fa.records.items()}
        if not self.lengths:
            raise EpcliError("genome FASTA holds no sequences", path=self.path)

    # ------------------------------------------------------------------ opening
    def _check_file(self) -> None:
        p = self.path
        head = read_head(p, 4096, "genome FASTA", hint="check the --genome path")
        if head[:2] == b"\x1f\x8b":
            is_bgzf = len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC"
            if not is_bgzf:
                raise EpcliError(
                    "genome FASTA is gzip-compressed but not with bgzip, so it cannot be indexed",
                    path=p,
                    hint="decompress it (gunzip) or recompress it with 'bgzip'",
                )
            try:
                import Bio.bgzf  # noqa: F401  (pyfaidx reads bgzip through Biopython)
            except ImportError:
                raise EpcliError(
                    "reading a bgzip-compressed FASTA needs Biopython",
                    path=p,
                    hint="pip install biopython, or decompress the FASTA",
                ) from None
            with gzip.open(p, "rb") as gz:
                try:
                    head = gz.read(4096)
                except OSError:
                    raise EpcliError("genome FASTA is a corrupt gzip file", path=p) from None
        first = head.lstrip()[:1]
        if first != b">":
            raise EpcliError(
                "genome file is not FASTA (it must start with a '>' header line)",
                path=p,
                hint="pass a FASTA file such as hg38.fa",
            )

    def _open(self) -> pyfaidx.Fasta:
        p = self.path
        fai = Path(str(p) + ".fai")
        kwargs: dict = {"as_raw": True, "sequence_always_upper": False, "rebuild": False}
        if not fai.exists() and not os.access(p.parent, os.W_OK):
            cache = _fai_cache_dir()
            cache.mkdir(parents=True, exist_ok=True)
            st = p.stat()
            key = hashlib.sha256(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
            kwargs["indexname"] = str(cache / f"{key.hexdigest()[:16]}_{p.name}.fai")
            kwargs["rebuild"] = True
        try:
            return pyfaidx.Fasta(str(p), **kwargs)
        except pyfaidx.UnsupportedCompressionFormat:
            raise EpcliError(
                "genome FASTA is gzip-compressed but not with bgzip, so it cannot be indexed",
                path=p,
                hint="decompress it (gunzip) or recompress with 'bgzip'",
            ) from None
        except (pyfaidx.FastaIndexingError, ValueError) as exc:
            raise EpcliError(f"cannot index genome FASTA: {exc}", path=p) from None
        except PermissionError as exc:
            raise EpcliError(f"cannot read genome FASTA: {exc.strerror}", path=p) from None

    # --------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        """File name of the FASTA (no folder)."""
        return self.path.name

    @property
    def fingerprint(self) -> str:
        """Hash (16 hex) of the contig names and lengths, independent of file location."""
        text = "".join(f"{k}\t{v}\n" for k, v in sorted(self.lengths.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def missing_chrom_error(self, chrom: str, path: str | None, line: int | None) -> EpcliError:
        """The error for a chromosome that the genome lacks, naming both conventions."""
        return missing_chrom_error(chrom, self.lengths, self.name, path, line)

    # ------------------------------------------------------------------ fetching
    def window(self, chrom: str, wstart: int, wend: int) -> tuple[np.ndarray, int]:
        """Codes of ``chrom[wstart:wend]``, N-padded where it runs off the contig.

        Windows fetched recently are served from a bounded memo (``memo_bytes``).

        Returns
        -------
        codes : np.ndarray, shape (wend - wstart,), uint8, read-only
        n_padded : int
            Number of padded positions.
        """
        key = (chrom, wstart, wend)
        hit = self._memo.get(key)
        if hit is not None:
            self._memo.move_to_end(key)
            return hit
        length = self.lengths[chrom]
        out = np.full(wend - wstart, CODE_N, dtype=np.uint8)
        s, e = max(wstart, 0), min(wend, length)
        if e > s:
            seq = self._fa[chrom][s:e]
            out[s - wstart : e - wstart] = encode(seq)
        out.setflags(write=False)
        value = (out, (wend - wstart) - max(e - s, 0))
        if 0 < out.nbytes <= self.memo_budget:
            self._memo[key] = value
            self._memo_bytes += out.nbytes
            while self._memo_bytes > self.memo_budget:
                _, (old, _) = self._memo.popitem(last=False)
                self._memo_bytes -= old.nbytes
        return value

    @property
    def memo_bytes(self) -> int:
        """Bytes held by the memo of recently fetched windows."""
        return self._memo_bytes

    def close(self) -> None:
        """Close the FASTA file."""
        self._fa.close()

    def __enter__(self) -> Genome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
