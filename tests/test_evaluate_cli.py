"""`epcli evaluate` end to end on small BEDPE files, its errors, and the leakage audit."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from epcli.core import schema
from epcli.evaluate import leakage

HEADER = "#chrom1\tstart1\tend1\tchrom2\tstart2\tend2\tname\tscore\tstrand1\tstrand2\tcell\tlabel\n"

# (chrom, e_start, e_end, p_start, p_end, score, cell, label); distance = |p_mid - e_mid|
ROWS = [
    ("chr1", 100, 200, 1_000, 1_200, "0.9", "A", "1"),
    ("chr1", 300, 400, 5_000, 5_200, "0.8", "A", "0"),
    ("chr1", 500, 600, 2_000, 2_200, "0.7", "A", "1"),
    ("chr1", 700, 800, 9_000, 9_200, "0.3", "A", "0"),
    ("chr2", 100, 200, 1_000, 1_200, "0.6", "B", "1"),
    ("chr2", 300, 400, 5_000, 5_200, "0.5", "B", "0"),
    ("chr2", 500, 600, 2_000, 2_200, "0.4", "B", "0"),
    ("chr2", 700, 800, 9_000, 9_200, "0.2", "B", "."),
]


def bedpe_text(rows, header: str | None = HEADER, with_cell=True, with_label=True) -> str:
    lines = [] if header is None else [header.rstrip("\n")]
    for chrom, es, ee, ps, pe, score, cell, label in rows:
        fields = [chrom, es, ee, chrom, ps, pe, ".", score, ".", "."]
        if with_cell:
            fields.append(cell)
        if with_label:
            fields.append(label)
        lines.append("\t".join(str(f) for f in fields))
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def read_table(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), sep="\t", na_values=["NA"], keep_default_na=False)


def expected(rows, cell: str | None):
    """Scores, labels and -distance of the labeled rows of ``cell`` (None: all)."""
    s, y, d = [], [], []
    for _chrom, es, ee, ps, pe, score, c, label in rows:
        if label not in ("0", "1") or (cell is not None and c != cell):
            continue
        s.append(float(score))
        y.append(int(label))
        d.append(-abs((ps + pe) // 2 - (es + ee) // 2))
    return np.array(s), np.array(y), np.array(d)


@pytest.fixture
def scored(tmp_path: Path) -> Path:
    return write(tmp_path / "scored.bedpe", bedpe_text(ROWS))


# ------------------------------------------------------------------------- happy paths
def test_stdout_table_matches_sklearn(cli, scored):
    r = cli("evaluate", scored, "--bootstrap", "100")
    assert r.code == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.split("\t") == list(schema.EVAL_COLUMNS)
    t = read_table(r.stdout)
    assert t["cell"].tolist() == ["A", "B", "ALL"]
    for cell in ("A", "B", None):
        row = t.set_index("cell").loc[cell or "ALL"]
        s, y, d = expected(ROWS, cell)
        assert row["n"] == len(y) and row["n_pos"] == y.sum()
        assert row["aupr"] == pytest.approx(average_precision_score(y, s), abs=5e-5)
        assert row["auroc"] == pytest.approx(roc_auc_score(y, s), abs=5e-5)
        assert row["distance_aupr"] == pytest.approx(average_precision_score(y, d), abs=5e-5)
        assert row["aupr_lo"] <= row["aupr"] + 5e-5 <= row["aupr_hi"] + 1e-4
    # four decimals
    assert r.stdout.splitlines()[1].split("\t")[4] == "0.8333"
    assert "1 of 8 pairs have no label" in r.stderr


def test_output_file_and_force(cli, scored, tmp_path):
    out = tmp_path / "table.tsv"
    r = cli("evaluate", scored, "-o", out, "--bootstrap", "0")
    assert r.code == 0, r.stderr
    assert r.stdout == ""
    assert out.read_text().splitlines()[0].split("\t") == list(schema.EVAL_COLUMNS)
    assert f"wrote 3 rows to {out}" in r.stderr
    before = out.read_text()
    r = cli("evaluate", scored, "-o", out, "--bootstrap", "0", "--seed", "3")
    assert r.code == 2 and "already exists" in r.stderr
    assert out.read_text() == before
    r = cli("evaluate", scored, "-o", out, "--bootstrap", "0", "--force")
    assert r.code == 0


def test_stdin(cli, monkeypatch):
    data = bedpe_text(ROWS).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    r = cli("evaluate", "-", "--bootstrap", "0")
    assert r.code == 0, r.stderr
    t = read_table(r.stdout)
    assert t["n"].tolist() == [4, 3, 7]
    assert "<stdin>" in r.stderr


def test_gzip_input(cli, tmp_path):
    import gzip

    p = tmp_path / "scored.bedpe.gz"
    with gzip.open(p, "wt") as fh:
        fh.write(bedpe_text(ROWS))
    r = cli("evaluate", p, "--bootstrap", "0")
    assert r.code == 0, r.stderr
    assert read_table(r.stdout)["n"].tolist() == [4, 3, 7]


def test_by_none_and_cells(cli, scored):
    r = cli("evaluate", scored, "--by", "none", "--bootstrap", "0")
    assert r.code == 0
    assert read_table(r.stdout)["cell"].tolist() == ["ALL"]
    r = cli("evaluate", scored, "--cells", "B", "--bootstrap", "0")
    assert r.code == 0
    t = read_table(r.stdout).set_index("cell")
    assert t.index.tolist() == ["B", "ALL"]
    s, y, _ = expected(ROWS, "B")
    assert t.loc["ALL", "n"] == 3
    assert t.loc["ALL", "aupr"] == pytest.approx(average_precision_score(y, s), abs=5e-5)


def test_cell_option_for_a_file_without_cells(cli, tmp_path):
    p = write(
        tmp_path / "s.bedpe",
        bedpe_text(ROWS[:4], header=HEADER.replace("\tcell", ""), with_cell=False),
    )
    r = cli("evaluate", p, "--bootstrap", "0")
    assert r.code == 0
    assert read_table(r.stdout)["cell"].tolist() == ["ALL"]
    r = cli("evaluate", p, "--cell", "K562", "--bootstrap", "0")
    assert read_table(r.stdout)["cell"].tolist() == ["K562", "ALL"]


def test_truth_join(cli, tmp_path):
    # SCORED: 10 columns + cell, no labels; the truth has labels, one extra pair, and the
    # first pair again for another cell with the opposite label (must not be used for A)
    s_header = HEADER.replace("\tlabel", "")
    scored = write(tmp_path / "s.bedpe", bedpe_text(ROWS, header=s_header, with_label=False))
    truth_rows = [row for row in ROWS[:-2]]  # ROWS[6] and ROWS[7] get no truth
    truth_rows.append(("chr9", 1, 2, 10, 20, ".", "A", "1"))
    truth_rows.append(("chr1", 100, 200, 1_000, 1_200, ".", "Z", "0"))
    truth = write(tmp_path / "t.bedpe", bedpe_text(truth_rows))
    r = cli("evaluate", scored, "--truth", truth, "--bootstrap", "0")
    assert r.code == 0, r.stderr
    assert "2 of 8 scored pairs have no row in" in r.stderr
    t = read_table(r.stdout).set_index("cell")
    assert t.index.tolist() == ["A", "B", "ALL"]
    s, y, _ = expected(ROWS[:-2], None)
    assert t.loc["ALL", "n"] == 6
    assert t.loc["ALL", "aupr"] == pytest.approx(average_precision_score(y, s), abs=5e-5)


def test_truth_gives_cells_to_a_file_without_cells(cli, tmp_path):
    s_header = HEADER.replace("\tcell\tlabel", "")
    scored = write(
        tmp_path / "s.bedpe", bedpe_text(ROWS, header=s_header, with_cell=False, with_label=False)
    )
    truth = write(tmp_path / "t.bedpe", bedpe_text(ROWS))
    r = cli("evaluate", scored, "--truth", truth, "--bootstrap", "0")
    assert r.code == 0, r.stderr
    t = read_table(r.stdout)
    assert t["cell"].tolist() == ["A", "B", "ALL"]
    assert t["n"].tolist() == [4, 3, 7]


def test_plot(cli, scored, tmp_path):
    png = tmp_path / "pr.png"
    r = cli("evaluate", scored, "--plot", png, "--bootstrap", "0")
    assert r.code == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = cli("evaluate", scored, "--plot", png, "--bootstrap", "0")
    assert r.code == 2 and "already exists" in r.stderr
    r = cli("evaluate", scored, "--plot", tmp_path / "pr.txt")
    assert r.code == 2 and "--plot" in r.stderr
    assert not (tmp_path / "pr.txt").exists()


def test_plot_has_a_prevalence_line_per_cell(scored):
    """Each cell's curve has a dotted horizontal line at its prevalence (random ranking)."""
    import matplotlib.pyplot as plt

    from epcli.evaluate.evaluation import load_scored, pr_figure, run_evaluation

    pairs = load_scored(scored)
    result = run_evaluation(pairs, by="cell", bootstrap=0)
    fig = pr_figure(pairs.scores, pairs.labels, pairs.distance, result.groups, result.table)
    try:
        lines = {
            ln.get_label(): ln for ln in fig.axes[0].get_lines() if "prevalence" in ln.get_label()
        }
        # A: 2 of 4 positive; B: 1 of 3 labeled; ALL: 3 of 7
        want = {"A": 2 / 4, "B": 1 / 3, "ALL": 3 / 7}
        assert len(lines) == 3
        for cell, prev in want.items():
            (ln,) = [v for k, v in lines.items() if k.startswith(f"{cell} prevalence")]
            assert np.allclose(ln.get_ydata(), prev)
            assert ln.get_linestyle() == ":"
            curve = next(
                x for x in fig.axes[0].get_lines() if x.get_label().startswith(f"{cell} (")
            )
            assert ln.get_color() == curve.get_color()  # same colour as the cell's curve
    finally:
        plt.close(fig)


def test_plot_without_matplotlib(cli, scored, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    out = tmp_path / "t.tsv"
    r = cli("evaluate", scored, "--plot", tmp_path / "pr.png", "-o", out)
    assert r.code == 1
    assert "pip install 'epcli[plot]'" in r.stderr
    assert not out.exists()


# ---------------------------------------------------------------------------- errors
def assert_error(r, code: int, *parts: str) -> None:
    assert r.code == code, (r.code, r.stderr)
    err = r.stderr.strip()
    assert err.startswith("error:"), err
    assert len(err.splitlines()) == 1, err
    for p in parts:
        assert p in err, (p, err)
    assert "Traceback" not in r.stderr


def test_error_no_label_column(cli, tmp_path):
    p = write(
        tmp_path / "s.bedpe", bedpe_text(ROWS, header=None, with_cell=False, with_label=False)
    )
    out = tmp_path / "out.tsv"
    r = cli("evaluate", p, "-o", out)
    assert_error(
        r, 1, f"{p}:", "cannot evaluate without labels; add a label column or pass --truth"
    )
    assert not out.exists()
    assert r.stdout == ""


def test_error_all_labels_unknown(cli, tmp_path):
    rows = [row[:-1] + (".",) for row in ROWS]
    p = write(tmp_path / "s.bedpe", bedpe_text(rows))
    out = tmp_path / "out.tsv"
    r = cli("evaluate", p, "-o", out)
    assert_error(r, 1, str(p), "cannot evaluate without labels")
    assert not out.exists()


def test_error_score_not_a_number(cli, tmp_path):
    rows = list(ROWS)
    rows[1] = rows[1][:5] + ("high",) + rows[1][6:]
    p = write(tmp_path / "s.bedpe", bedpe_text(rows))  # header is line 1 -> row 2 is line 3
    out = tmp_path / "out.tsv"
    r = cli("evaluate", p, "-o", out)
    assert_error(r, 1, f"{p}:3:", "score is not a number: 'high'")
    assert not out.exists()
    rows[1] = rows[1][:5] + ("inf",) + rows[1][6:]
    write(p, bedpe_text(rows))
    assert_error(cli("evaluate", p, "-o", out), 1, f"{p}:3:", "not a finite number: 'inf'")


def test_error_no_score_column(cli, tmp_path):
    p = write(tmp_path / "s.bedpe", "chr1\t1\t2\tchr1\t10\t20\n")
    assert_error(cli("evaluate", p), 1, str(p), "no score column")


def test_error_truth_matches_nothing(cli, tmp_path, scored):
    truth = write(tmp_path / "t.bedpe", bedpe_text([("chr7", 1, 2, 10, 20, ".", "A", "1")]))
    out = tmp_path / "out.tsv"
    r = cli("evaluate", scored, "--truth", truth, "-o", out)
    assert_error(r, 1, str(truth), "--truth matched no rows")
    assert not out.exists()


def test_error_truth_conflicting_labels(cli, tmp_path, scored):
    rows = [ROWS[0], ROWS[1], ROWS[0][:-1] + ("0",)]
    truth = write(tmp_path / "t.bedpe", bedpe_text(rows))
    assert_error(cli("evaluate", scored, "--truth", truth), 1, f"{truth}:4:", "different label")


def test_error_unknown_cells(cli, scored, tmp_path):
    out = tmp_path / "out.tsv"
    r = cli("evaluate", scored, "--cells", "A,Z", "-o", out)
    assert_error(r, 2, "unknown cell line(s) in --cells: Z", "A, B")
    assert not out.exists()


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2"])
def test_error_bad_target_recall(cli, scored, tmp_path, value):
    out = tmp_path / "out.tsv"
    r = cli("evaluate", scored, "--target-recall", value, "-o", out)
    assert_error(r, 2, "--target-recall must be in (0, 1]")
    assert not out.exists()


def test_target_recall_one_is_allowed(cli, scored):
    r = cli("evaluate", scored, "--target-recall", "1", "--bootstrap", "0")
    assert r.code == 0
    row = read_table(r.stdout).set_index("cell").loc["A"]
    # A: scores 0.9(1) 0.8(0) 0.7(1) 0.3(0): recall 1 first reached at t = 0.7, P = 2/3
    assert row["threshold_at_recall"] == pytest.approx(0.7)
    assert row["precision_at_recall"] == pytest.approx(2 / 3, abs=5e-5)


# --------------------------------------------------------------------------- leakage
# Evaluated pairs (cell A, B) and training pairs whose overlaps are known by hand.
LEAK_EVAL = [
    ("chr1", 100, 200, 5_000, 6_000, "0.9", "A", "1"),  # enhancer overlaps 150-160
    ("chr1", 300, 400, 7_000, 8_000, "0.8", "A", "0"),  # promoter overlaps 7999-8100 (1 bp)
    ("chr1", 500, 600, 9_000, 10_000, "0.7", "A", "1"),  # 600-700 only touches: free
    ("chr1", 800, 900, 11_000, 12_000, "0.6", "A", "0"),  # both anchors overlap
    ("chr2", 100, 200, 5_000, 6_000, "0.5", "A", "0"),  # only a training ENHANCER there: free
    ("chr2", 300, 400, 20_000, 21_000, "0.4", "A", "1"),  # free
    ("chr1", 100, 200, 20_000, 21_000, "0.3", "B", "1"),  # enhancer as row 1
    ("chr5", 1, 100, 1_000, 2_000, "0.2", "B", "1"),  # free
    ("chr5", 200, 300, 3_000, 4_000, "0.1", "B", "0"),  # free
    ("chr5", 400, 500, 5_000, 6_000, "0.05", "B", "1"),  # free
]
LEAK_TRAIN = [
    ("chr1", 150, 160, 900_000, 900_100, ".", "T", "1"),
    ("chr1", 800_000, 800_010, 7_999, 8_100, ".", "T", "0"),
    ("chr1", 600, 700, 900_000, 900_100, ".", "T", "1"),
    ("chr1", 850, 860, 11_500, 11_600, ".", "T", "0"),
    ("chr2", 5_000, 6_000, 900_000, 900_100, ".", "T", "1"),
]
LEAK_FLAGS = [  # enh_seen, pro_seen
    (1, 0),
    (0, 1),
    (0, 0),
    (1, 1),
    (0, 0),
    (0, 0),
    (1, 0),
    (0, 0),
    (0, 0),
    (0, 0),
]


def test_audit_flags_by_hand(tmp_path):
    from epcli.io.bedpe import read_bedpe

    ev = read_bedpe(write(tmp_path / "e.bedpe", bedpe_text(LEAK_EVAL)))
    tr = read_bedpe(write(tmp_path / "t.bedpe", bedpe_text(LEAK_TRAIN)))
    anchors = leakage.anchors_from_bedpe(tr)
    assert sorted(anchors["kind"].value_counts().items()) == [("enhancer", 5), ("promoter", 4)]
    flags = leakage.audit(ev, anchors)
    expect = np.array(LEAK_FLAGS, dtype=bool)
    np.testing.assert_array_equal(flags["enh_seen"], expect[:, 0])
    np.testing.assert_array_equal(flags["pro_seen"], expect[:, 1])
    np.testing.assert_array_equal(flags["both"], expect.all(axis=1))
    s = leakage.summarize(flags, ev["cell"].to_numpy()).set_index("cell")
    assert s.loc["A", "enh_seen"] == pytest.approx(2 / 6)
    assert s.loc["A", "pro_seen"] == pytest.approx(2 / 6)
    assert s.loc["A", "both"] == pytest.approx(1 / 6)
    assert s.loc["A", "leak_free"] == pytest.approx(3 / 6)
    assert s.loc["B", "leak_free"] == pytest.approx(3 / 4)
    assert s.loc["ALL", "leak_free"] == pytest.approx(6 / 10)


def test_audit_warns_on_chromosome_naming(tmp_path):
    from epcli.io.bedpe import read_bedpe

    ev = read_bedpe(write(tmp_path / "e.bedpe", bedpe_text(LEAK_EVAL)))
    anchors = pd.DataFrame({"kind": ["enhancer"], "chrom": ["1"], "start": [100], "end": [200]})
    flags = leakage.audit(ev, anchors)
    assert not flags["enh_seen"].any()
    assert "name chromosomes differently" in flags.attrs["warnings"][0]


def leak_free_expectation():
    free = [i for i, f in enumerate(LEAK_FLAGS) if f == (0, 0)]
    out = {}
    for cell in ("A", "B", None):
        rows = [LEAK_EVAL[i] for i in free if cell is None or LEAK_EVAL[i][6] == cell]
        out[cell or "ALL"] = expected(rows, None)
    return out


def test_evaluate_with_train_bedpe(cli, tmp_path):
    ev = write(tmp_path / "e.bedpe", bedpe_text(LEAK_EVAL))
    tr = write(tmp_path / "t.bedpe", bedpe_text(LEAK_TRAIN))
    r = cli("evaluate", ev, "--train-data", tr, "--bootstrap", "0")
    assert r.code == 0, r.stderr
    t = read_table(r.stdout).set_index("cell")
    assert t.index.tolist() == ["A", "B", "ALL", "A|leak-free", "B|leak-free", "ALL|leak-free"]
    assert t["n"].tolist() == [6, 4, 10, 3, 3, 6]
    for name, (s, y, d) in leak_free_expectation().items():
        row = t.loc[f"{name}|leak-free"]
        assert row["n_pos"] == y.sum()
        assert row["aupr"] == pytest.approx(average_precision_score(y, s), abs=5e-5)
        assert row["distance_aupr"] == pytest.approx(average_precision_score(y, d), abs=5e-5)
    assert (
        "A: of 6 labeled pairs, enhancer seen in training 33.3%, promoter seen 33.3%, "
        "both 16.7%, leak-free 50.0%" in r.stderr
    )


def test_evaluate_with_train_hdf5(cli, tmp_path, tiny_genome):
    # training dataset built by `epcli prepare` on the tiny genome (chrA is 100 bp)
    train_rows = [("chrA", 10, 20, 60, 70, ".", "T", "1"), ("chrA", 22, 28, 84, 86, ".", "T", "0")]
    tr = write(tmp_path / "t.bedpe", bedpe_text(train_rows))
    h5 = tmp_path / "train.h5"
    r = cli(
        "prepare", tr, "-g", tiny_genome, "-o", h5, "--enhancer-window", "8",
        "--promoter-window", "8",
    )  # fmt: skip
    assert r.code == 0, r.stderr
    eval_rows = [
        ("chrA", 15, 25, 88, 90, "0.9", "X", "1"),  # enhancer overlaps 10-20 and 22-28
        ("chrA", 30, 40, 65, 75, "0.8", "X", "0"),  # promoter overlaps 60-70
        ("chrA", 40, 50, 90, 95, "0.7", "X", "1"),  # free
        ("chrA", 0, 10, 70, 80, "0.6", "X", "0"),  # bookended on both sides: free
        ("chrA", 28, 30, 86, 88, "0.5", "X", "0"),  # bookended: free
    ]
    ev = write(tmp_path / "e.bedpe", bedpe_text(eval_rows))
    r = cli("evaluate", ev, "--train-data", h5, "--bootstrap", "0")
    assert r.code == 0, r.stderr
    t = read_table(r.stdout).set_index("cell")
    assert t.loc["X|leak-free", "n"] == 3
    assert t.loc["X|leak-free", "n_pos"] == 1
    # leak-free: 0.7(1) 0.6(0) 0.5(0) -> AUPR 1
    assert t.loc["X|leak-free", "aupr"] == pytest.approx(1.0)
    assert "enhancer seen in training 20.0%, promoter seen 20.0%, both 0.0%" in r.stderr


def test_train_hdf5_uses_read_anchor_table(cli, tmp_path, monkeypatch):
    import epcli.io.hdf5

    fake = tmp_path / "fake.h5"
    fake.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    anchors = pd.DataFrame(
        {"kind": ["enhancer", "promoter"], "chrom": ["chr1", "chr1"], "start": [150, 11_500],
         "end": [160, 11_600]}
    )  # fmt: skip
    seen = []
    monkeypatch.setattr(
        epcli.io.hdf5, "read_anchor_table", lambda p: seen.append(str(p)) or anchors
    )
    ev = write(tmp_path / "e.bedpe", bedpe_text(LEAK_EVAL))
    r = cli("evaluate", ev, "--train-data", fake, "--bootstrap", "0")
    assert r.code == 0, r.stderr
    assert seen == [str(fake)]
    t = read_table(r.stdout).set_index("cell")
    # enhancer seen: rows 1, 4, 7; promoter seen: row 4 -> leak-free A 4, B 3
    assert t.loc["A|leak-free", "n"] == 4 and t.loc["B|leak-free", "n"] == 3


def test_error_train_data_missing(cli, scored, tmp_path):
    out = tmp_path / "o.tsv"
    r = cli("evaluate", scored, "--train-data", tmp_path / "nope.h5", "-o", out)
    assert_error(r, 1, "nope.h5", "training data not found")
    assert not out.exists()
