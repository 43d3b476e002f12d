"""The fault corpus: hostile input and interruptions across the five commands.

Each case runs the CLI and checks the exit code, a single ``error:`` line (no traceback),
that no output or temporary file is left behind, and that every input is unchanged (by
checksum). The cases read as a list: data loss first, then bad input that used to give a
traceback or a silent wrong answer, then interruptions.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import EXAMPLE, HG38_PIECE

SYNTH = EXAMPLE / "synth"
WINDOWS = ["--enhancer-window", 200, "--promoter-window", 160]
#: Small enough for seconds per run; enough steps that a signal lands inside an epoch.
CONFIG = {
    "train": {
        "epochs": 4,
        "steps_per_epoch": 6,
        "query_size": 16,
        "support_size": 8,
        "val_max_pairs": 60,
        "proto_pairs": 16,
        "num_threads": 1,
        "device": "cpu",
        "seed": 5,
    },
    # the whole consensus only (4 views per matrix, not 7): these tests are about files and
    # signals, and each trains twice, so a lighter scan keeps the suite inside its budget
    "model": {
        "d_model": 16,
        "pools": [4, 4],
        "n_heads": 2,
        "env_dim": 4,
        "ms_kernels": [7, 15],
        "motif_sites": "consensus",
    },
}


# ============================================================================ helpers
def _rows(path: Path, n: int) -> list[str]:
    lines = path.read_text().splitlines()
    return [lines[0], *lines[1 : n + 1]]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _tree(d: Path) -> dict[str, str]:
    """Checksums of every file under ``d`` (hidden ones included)."""
    return {str(p.relative_to(d)): _sha(p) for p in sorted(d.rglob("*")) if p.is_file()}


def _run(*args, stdin: bytes | None = None, cwd: Path | None = None, timeout=300):
    proc = subprocess.run(
        [sys.executable, "-m", "epcli", *[str(a) for a in args]],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def expect_error(res, code: int, *phrases: str) -> str:
    """The run failed with ``code`` and one ``error:`` line (the last) holding ``phrases``."""
    assert res.code == code, res.stderr
    assert "Traceback" not in res.stderr and "Warning" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], res.stderr
    for p in phrases:
        assert p in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny trained model, its data, a support set, a prototype and a scored file."""
    from epcli.cli import main

    d = tmp_path_factory.mktemp("faults")
    lines = _rows(SYNTH / "T1.bedpe", 200)
    for c in ("T2", "T3"):
        lines += _rows(SYNTH / f"{c}.bedpe", 200)[1:]
    (d / "train.bedpe").write_text("\n".join(lines) + "\n")
    (d / "u1.bedpe").write_text("\n".join(_rows(SYNTH / "U1.bedpe", 120)) + "\n")
    (d / "cfg.json").write_text(json.dumps(CONFIG))
    for args in (
        ["prepare", d / "train.bedpe", "-g", HG38_PIECE, "-o", d / "train.h5", *WINDOWS],
        ["train", d / "train.h5", "-o", d / "model", "--config", d / "cfg.json"],
        ["adapt", d / "model", d / "u1.bedpe", "-g", HG38_PIECE, "-o", d / "u1.proto"],
        ["predict", d / "u1.bedpe", "-g", HG38_PIECE, "-m", d / "model", "-p", d / "u1.proto"]
        + ["-o", d / "scored.bedpe"],
    ):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            assert exc.code in (0, None), args
    return d


@pytest.fixture
def work(world, tmp_path):
    """A fresh folder with copies of the inputs; checks afterwards that no temporary file
    was left in it."""
    for name in ("train.bedpe", "train.h5", "u1.bedpe", "u1.proto", "scored.bedpe", "cfg.json"):
        shutil.copy(world / name, tmp_path / name)
    shutil.copytree(world / "model", tmp_path / "model")
    yield tmp_path
    left = [p.name for p in tmp_path.rglob("*.tmp")]
    assert not left, left


def _weights(d: Path) -> dict[str, torch.Tensor]:
    return torch.load(d / "weights.pt", map_location="cpu", weights_only=True)


def _same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


# ============================================================================ data loss
def test_train_force_refuses_a_folder_that_is_not_a_model(cli, work):
    out = work / "results"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    before = _tree(work)
    err = expect_error(
        cli("train", work / "train.h5", "-o", out, "--force"), 2, "not one", "notes.txt"
    )
    assert "nothing was deleted" in err
    assert _tree(work) == before


def test_train_force_refuses_a_model_dir_holding_other_files(cli, work):
    (work / "model" / "my_analysis.tsv").write_text("x\n")
    before = _tree(work)
    expect_error(
        cli("train", work / "train.h5", "-o", work / "model", "--force"), 2, "my_analysis.tsv"
    )
    assert _tree(work) == before


def test_train_force_never_deletes_its_input(cli, work):
    (work / "model" / "train.h5").write_bytes((work / "train.h5").read_bytes())
    before = _tree(work)
    expect_error(
        cli("train", work / "model" / "train.h5", "-o", work / "model", "--force"),
        2,
        "contains the input",
    )
    # the input in the current directory with -o .
    expect_error(_cli_in(cli, work, "train", "train.h5", "-o", ".", "--force"), 2, "input")
    assert _tree(work) == before


def _cli_in(cli, cwd: Path, *args):
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return cli(*args)
    finally:
        os.chdir(old)


def test_train_force_replaces_an_epcli_model_dir(cli, work):
    marker = json.loads((work / "model" / "epcli_model.json").read_text())
    assert marker["format"] == "epcli-model-dir" and marker["status"] == "complete"
    res = cli(
        "train", work / "train.h5", "-o", work / "model", "--force", "--model", "distance",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    names = sorted(p.name for p in (work / "model").iterdir())
    assert "params.json" in names and "weights.pt" not in names and "train_state.pt" not in names
    assert json.loads((work / "model" / "config.json").read_text())["model_kind"] == "distance"


def test_train_into_the_current_directory(cli, work):
    empty = work / "empty"
    empty.mkdir()
    expect_error(
        _cli_in(cli, empty, "train", work / "train.h5", "-o", ".", "--force"),
        2,
        "current directory",
    )
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [
        "prepare x.bedpe -g G -o x.bedpe --force",
        "prepare x.bedpe -g G -o link.bedpe --force",  # a symlink to the input
        "predict x.bedpe -g G -m model -o hard.bedpe --force",  # a hard link to the input
        "prepare x.bedpe -g G -o G --force",  # the genome
        "predict x.bedpe -g G -m model -o x.bedpe --force",
        "predict x.bedpe -g G -m model -p u1.proto -o u1.proto --force",
        "predict x.bedpe -g G -m model -o model/config.json --force",
        "adapt model x.bedpe -g G -o x.bedpe --force",
        "adapt model x.bedpe -g G -o model/weights.pt --force",
        "evaluate scored.bedpe -o scored.bedpe --force",
        "evaluate scored.bedpe --truth x.bedpe -o x.bedpe --force",
        "train train.h5 -o train.h5 --force",
    ],
)
def test_output_is_never_an_input(cli, work, command):
    shutil.copy(work / "u1.bedpe", work / "x.bedpe")
    shutil.copy(HG38_PIECE, work / "genome.fa")
    (work / "link.bedpe").symlink_to(work / "x.bedpe")
    os.link(work / "x.bedpe", work / "hard.bedpe")
    before = _tree(work)
    args = [
        str(work / "genome.fa") if a == "G" else str(work / a) if "." in a or a == "model" else a
        for a in command.split()
    ]
    expect_error(cli(*args), 2, "input")
    assert _tree(work) == before


def _truncated_gzip(work: Path) -> Path:
    gz = gzip.compress((work / "train.bedpe").read_bytes())
    p = work / "partial.bedpe.gz"
    p.write_bytes(gz[: len(gz) * 2 // 3])
    return p


def _corrupt_gzip(work: Path) -> Path:
    gz = bytearray(gzip.compress((work / "train.bedpe").read_bytes()))
    gz[len(gz) // 2 : len(gz) // 2 + 8] = b"\x00" * 8
    p = work / "corrupt.bedpe.gz"
    p.write_bytes(bytes(gz))
    return p


@pytest.mark.parametrize("damage", [_truncated_gzip, _corrupt_gzip])
def test_damaged_gzip_is_an_error_and_writes_nothing(cli, work, damage):
    src = damage(work)
    before = _tree(work)
    for args in (
        ["prepare", src, "-g", HG38_PIECE, "-o", work / "out.h5", *WINDOWS],
        ["predict", src, "-o", work / "out.bedpe"],
        ["adapt", work / "model", src, "-g", HG38_PIECE, "-o", work / "out.proto"],
        ["evaluate", src, "-o", work / "out.tsv"],
    ):
        expect_error(cli(*args), 1, "truncated/corrupt gzip")
    assert _tree(work) == before


def test_truncated_gzip_on_stdin(work):
    src = _truncated_gzip(work)
    code, _, err = _run(
        "prepare", "-", "-g", HG38_PIECE, "-o", work / "out.h5", *WINDOWS, stdin=src.read_bytes()
    )
    assert code == 1 and "truncated/corrupt gzip" in err and "Traceback" not in err
    assert not (work / "out.h5").exists()


# ------------------------------------------------------------- interrupted training
def _train_proc(world: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "epcli", "train", world / "train.h5", "-o", out, "--config"]
        + [world / "cfg.json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for_epoch(proc: subprocess.Popen, out: Path, epoch: int, timeout=240.0) -> None:
    """Wait until ``out``'s checkpoint has finished ``epoch`` (1-based) epochs."""
    state = out / "train_state.pt"
    t0 = time.time()
    seen = None
    while time.time() - t0 < timeout:
        assert proc.poll() is None, proc.stderr.read().decode()
        if state.is_file() and state.stat().st_mtime_ns != seen:
            seen = state.stat().st_mtime_ns
            try:
                done = torch.load(state, weights_only=True)["epoch"] + 1
            except (RuntimeError, OSError, EOFError):
                continue
            if done >= epoch:
                return
        time.sleep(0.02)
    raise AssertionError("training did not reach the epoch in time")


def _assert_incomplete(cli, out: Path, world: Path) -> None:
    marker = json.loads((out / "epcli_model.json").read_text())
    assert marker["status"] == "incomplete"
    assert "--resume" in (out / "INCOMPLETE").read_text()
    res = cli("predict", world / "u1.bedpe", "-g", HG38_PIECE, "-m", out, "-o", out.parent / "s")
    expect_error(res, 1, "incomplete model directory", "--resume", "--allow-incomplete")
    assert not (out.parent / "s").exists()
    res = cli("train", world / "train.h5", "-o", out)  # neither --resume nor --force
    expect_error(res, 2, "interrupted training run", "--resume")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_train_leaves_a_resumable_checkpoint(cli, world, tmp_path, sig):
    out = tmp_path / "m"
    proc = _train_proc(world, out)
    _wait_for_epoch(proc, out, 1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error:") and f"interrupted by {sig.name}" in last
    assert "checkpoint saved" in last and f"-o {out} --resume" in last
    _assert_incomplete(cli, out, world)
    # the best model so far, when asked for
    res = cli(
        "predict", world / "u1.bedpe", "-g", HG38_PIECE, "-m", out, "--allow-incomplete",
        "-o", tmp_path / "early.bedpe",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    # --resume without --config: the saved config; the same weights as the full run
    res = cli("train", world / "train.h5", "-o", out, "--resume")
    assert res.code == 0, res.stderr
    assert json.loads((out / "epcli_model.json").read_text())["status"] == "complete"
    assert not (out / "INCOMPLETE").exists()
    _same_weights(out, world / "model")
    assert (out / "config.json").read_bytes() == (world / "model" / "config.json").read_bytes()


def test_sigkill_after_epoch_2_of_4_then_resume_gives_the_same_weights(cli, world, tmp_path):
    out = tmp_path / "m"
    proc = _train_proc(world, out)
    _wait_for_epoch(proc, out, 2)
    proc.kill()
    proc.communicate(timeout=60)
    state = torch.load(out / "train_state.pt", weights_only=True)
    assert 2 <= state["epoch"] + 1 < 4 and state["in_epoch"] is None  # at most one epoch lost
    warm = int(state["history"][0]["epoch"] == 0)  # the warm start's row (epoch 0)
    assert len(state["history"]) == state["epoch"] + 1 + warm
    _assert_incomplete(cli, out, world)
    res = cli("train", world / "train.h5", "-o", out, "--resume")
    assert res.code == 0, res.stderr
    assert f"resuming {out} at epoch {state['epoch'] + 2}" in res.stderr
    _same_weights(out, world / "model")
    last = torch.load(out / "train_state.pt", weights_only=True)["model_last"]
    ref = torch.load(world / "model" / "train_state.pt", weights_only=True)["model_last"]
    assert all(torch.equal(last[k], ref[k]) for k in ref)


def test_checkpoint_holds_what_resume_needs(world):
    state = torch.load(world / "model" / "train_state.pt", weights_only=True)
    assert state["format"] == "epcli-checkpoint" and state["epoch"] == 3
    for key in ("model_last", "optimizer", "best_state", "best_value", "best_epoch", "history"):
        assert key in state, key
    assert state["train_config"]["epochs"] == 4 and state["model_config"]["d_model"] == 16
    warm = int(state["history"][0]["epoch"] == 0)  # the warm start's row (epoch 0)
    assert 1 - warm <= state["best_epoch"] <= 4 and len(state["history"]) == 4 + warm
    best = _weights(world / "model")
    # the saved population prototype is recomputed at the end from every training cell
    # (the validation cells too); the kept weights are the checkpoint's best ones
    assert set(best) == set(state["best_state"])
    assert all(torch.equal(best[k], state["best_state"][k]) for k in best if "population" not in k)


def test_resume_refuses_other_data(cli, work):
    other = work / "other.h5"
    rows = _rows(SYNTH / "T1.bedpe", 150) + _rows(SYNTH / "T2.bedpe", 150)[1:]
    rows += _rows(SYNTH / "T3.bedpe", 150)[1:]
    (work / "other.bedpe").write_text("\n".join(rows) + "\n")
    assert cli("prepare", work / "other.bedpe", "-g", HG38_PIECE, "-o", other, *WINDOWS).code == 0
    res = cli("train", other, "-o", work / "model", "--resume", "--epochs", 6)
    expect_error(res, 1, "training data differs")


# ------------------------------------------------------------- interrupted writers
def _wait_for_tmp(folder: Path, proc: subprocess.Popen, timeout=120.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, proc.stderr.read().decode()
        if list(folder.glob(".*.tmp")):
            return
        time.sleep(0.02)
    raise AssertionError("no temporary output appeared")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("command", ["predict", "prepare"])
def test_signal_during_a_write_leaves_no_file(world, tmp_path, command, sig):
    """stdin stays open, so the command is caught mid-write with its temporary file."""
    out = tmp_path / ("out.bedpe" if command == "predict" else "out.h5")
    args = (
        ["predict", "-", "-g", HG38_PIECE, "-m", world / "model", "-o", out, "--chunk-size", 5]
        if command == "predict"
        else ["prepare", "-", "-g", HG38_PIECE, "-o", out, "--chunk-size", 5, *WINDOWS]
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "epcli", *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdin.write(("\n".join(_rows(SYNTH / "U1.bedpe", 20)) + "\n").encode())
    proc.stdin.flush()
    _wait_for_tmp(tmp_path, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error:")
    assert list(tmp_path.iterdir()) == []


def test_closed_pipe_stops_quietly(world, tmp_path):
    big = tmp_path / "big.bedpe"
    body = (world / "train.bedpe").read_text().splitlines()
    big.write_text("\n".join(body + body[1:] * 4) + "\n")  # ~3,000 rows, > a pipe buffer
    proc = subprocess.Popen(
        [sys.executable, "-m", "epcli", "predict", str(big)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline().startswith(b"#chrom1")
    proc.stdout.close()  # `| head -1`
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert proc.returncode == 141  # 128 + SIGPIPE, as coreutils report it
    assert "error" not in err and "Traceback" not in err and "Exception" not in err


# ============================================================ bad input, clean errors
def _proto_with(work: Path, **fields) -> Path:
    d = json.loads((work / "u1.proto").read_text())
    d.update(fields)
    p = work / "bad.proto"
    p.write_text(json.dumps(d))
    return p


@pytest.mark.parametrize(
    "field,value",
    [
        ("temperature", 0),
        ("temperature", -1),
        ("temperature", 1e300),
        ("temperature", 1e-300),
        ("temperature", float("nan")),
        ("temperature", "hot"),
        ("threshold_best_f1", 1.5),
        ("threshold_best_f1", -0.1),
        ("threshold_at_recall", float("inf")),
        ("target_recall", 0),
        ("shots", -4),
        ("n_pos", 2.5),
        ("cell", None),
    ],
)
def test_prototype_fields_are_checked(cli, work, field, value):
    p = _proto_with(work, **{field: value})
    before = _tree(work)
    res = cli(
        "predict", work / "u1.bedpe", "-g", HG38_PIECE, "-m", work / "model", "-p", p,
        "-o", work / "out.bedpe",
    )  # fmt: skip
    expect_error(res, 1, field)
    assert _tree(work) == before


def test_negative_temperature_cannot_reverse_the_ranking(world):
    """The case that silently turned AUROC 0.77 into 0.23: now refused at load."""
    from epcli.core.errors import EpcliError
    from epcli.io.prototype_file import Prototype

    d = json.loads((world / "u1.proto").read_text())
    d["temperature"] = -d["temperature"]
    with pytest.raises(EpcliError, match="temperature"):
        Prototype.from_json(json.dumps(d))


@pytest.mark.parametrize("command", ["prepare", "predict", "adapt", "evaluate"])
def test_coordinate_beyond_int64(cli, work, command):
    lines = (work / "scored.bedpe").read_text().splitlines()
    fields = lines[3].split("\t")
    fields[1] = "99999999999999999999999"
    lines[3] = "\t".join(fields)
    src = work / "huge.bedpe"
    src.write_text("\n".join(lines) + "\n")
    before = _tree(work)
    out = work / "out"
    args = {
        "prepare": ["prepare", src, "-g", HG38_PIECE, "-o", out, *WINDOWS],
        "predict": ["predict", src, "-g", HG38_PIECE, "-m", work / "model", "-o", out],
        "adapt": ["adapt", work / "model", src, "-g", HG38_PIECE, "-o", out],
        "evaluate": ["evaluate", src, "-o", out],
    }[command]
    expect_error(cli(*args), 1, f"{src}:4:", "start1 is too large")
    assert _tree(work) == before


@pytest.mark.parametrize(
    "command",
    [
        "prepare u1.bedpe -g G -o DIR --force",
        "predict u1.bedpe -g G -m model -o DIR --force",
        "adapt model u1.bedpe -g G -o DIR --force",
        "evaluate scored.bedpe -o DIR --force",
        "evaluate scored.bedpe --plot DIR.png --force",
        "train train.h5 -o DIR.h5 --force",  # a file where a model directory should be
    ],
)
def test_output_that_is_the_wrong_kind_of_path(cli, work, command):
    (work / "DIR").mkdir()
    (work / "DIR.png").mkdir()
    (work / "DIR.h5").write_text("a file\n")
    before = _tree(work)
    args = [
        str(HG38_PIECE) if a == "G" else str(work / a) if "." in a or a in ("DIR", "model") else a
        for a in command.split()
    ]
    expect_error(cli(*args), 2)
    assert _tree(work) == before


@pytest.mark.parametrize(
    "command,why",
    [
        ("prepare u1.bedpe -g G -o -", "seekable file"),
        ("train train.h5 -o -", "directory"),
        ("evaluate scored.bedpe --plot -", "--plot"),
    ],
)
def test_dash_output_refused_where_stdout_cannot_hold_it(cli, work, command, why):
    args = [
        str(HG38_PIECE) if a == "G" else str(work / a) if "." in a else a for a in command.split()
    ]
    before = _tree(work)
    expect_error(cli(*args), 2, why)
    assert _tree(work) == before
    assert not (work / "-").exists()


def test_dash_output_is_stdout_for_adapt_and_evaluate(cli, work):
    res = cli("adapt", work / "model", work / "u1.bedpe", "-g", HG38_PIECE, "-o", "-")
    assert res.code == 0, res.stderr
    proto = json.loads(res.stdout)
    assert proto["format"] == "epcli-prototype" and proto["cell"] == "U1"
    assert proto == json.loads((work / "u1.proto").read_text())  # same as the file
    res = cli("evaluate", work / "scored.bedpe", "-o", "-", "--bootstrap", 0)
    assert res.code == 0 and res.stdout.splitlines()[0].startswith("cell\tn\tn_pos")
    assert not (work / "-").exists()


def test_rescoring_a_scored_file_replaces_its_columns(cli, work):
    again = work / "again.bedpe"
    res = cli(
        "predict", work / "scored.bedpe", "-g", HG38_PIECE, "-m", work / "model",
        "-p", work / "u1.proto", "-o", again,
    )  # fmt: skip
    assert res.code == 0, res.stderr
    assert "logit, u_i, r_e, call were replaced" in res.stderr
    header = again.read_text().splitlines()[0].lstrip("#").split("\t")
    assert len(header) == len(set(header))
    assert header == (work / "scored.bedpe").read_text().splitlines()[0].lstrip("#").split("\t")
    assert again.read_text() == (work / "scored.bedpe").read_text()  # same scores again
    assert cli("evaluate", again, "--bootstrap", 0).code == 0


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"train": {"epoch": 3}}',  # unknown key
        '{"train": {"epochs": -3}}',
        '{"train": {"epochs": "3"}}',  # wrong type
        '{"train": {"lr": NaN}}',
        '{"train": {"weight_decay": Infinity}}',
        '{"model": {"dropout": NaN}}',
        '{"model": {"d_model": 2.5}}',
        "[1, 2]",
        '{"train": 3}',
    ],
)
def test_bad_config_content_is_exit_1(cli, work, content):
    (work / "bad.json").write_text(content)
    res = cli("train", work / "train.h5", "-o", work / "m", "--config", work / "bad.json")
    expect_error(res, 1, str(work / "bad.json"))
    assert not (work / "m").exists()


def test_bad_config_option_on_the_command_line_is_exit_2(cli, work):
    expect_error(cli("train", work / "train.h5", "-o", work / "m", "--epochs", 0), 2, "epochs")
    assert not (work / "m").exists()


def test_pickled_weights_never_run_and_give_one_message(work):
    import pickle

    marker = work / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (work / "model" / "weights.pt").write_bytes(pickle.dumps(Evil()))
    code, _, err = _run("predict", work / "u1.bedpe", "-g", HG38_PIECE, "-m", work / "model")
    assert code == 1 and not marker.exists()
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error:") and "not a safe epcli weights file" in lines[-1]
    assert "weights_only" not in err and "Warning" not in err
    assert [x for x in lines if not x.startswith(("model:", "device:"))] == [lines[-1]]


def test_truncated_hdf5(cli, work):
    data = (work / "train.h5").read_bytes()
    (work / "cut.h5").write_bytes(data[: len(data) // 2])
    before = _tree(work)
    for args in (
        ["train", work / "cut.h5", "-o", work / "m"],
        ["predict", work / "cut.h5", "-m", work / "model", "-o", work / "s.bedpe"],
    ):
        expect_error(cli(*args), 1, "truncated or corrupt")
    assert _tree(work) == before


def test_utf8_bom_is_ignored(cli, work):
    src = work / "bom.bedpe"
    src.write_bytes(b"\xef\xbb\xbf" + (work / "u1.bedpe").read_bytes())
    for s, o in ((src, work / "a.bedpe"), (work / "u1.bedpe", work / "b.bedpe")):
        res = cli("predict", s, "-g", HG38_PIECE, "-m", work / "model", "-o", o)
        assert res.code == 0, res.stderr
    assert (work / "a.bedpe").read_text() == (work / "b.bedpe").read_text()


def test_invalid_utf8_names_the_line(cli, work):
    lines = (work / "u1.bedpe").read_bytes().split(b"\n")
    lines[7] = lines[7].replace(b"E0", b"E\xff0", 1)
    (work / "bad.bedpe").write_bytes(b"\n".join(lines))
    before = _tree(work)
    res = cli("prepare", work / "bad.bedpe", "-g", HG38_PIECE, "-o", work / "o.h5", *WINDOWS)
    expect_error(res, 1, f"{work / 'bad.bedpe'}:8:", "invalid UTF-8")
    assert _tree(work) == before


def test_adapt_without_a_label_column(cli, work):
    rows = [line for line in (work / "u1.bedpe").read_text().splitlines() if line[0] != "#"]
    (work / "nolabel.bedpe").write_text("".join("\t".join(r.split("\t")[:10]) + "\n" for r in rows))
    res = cli("adapt", work / "model", work / "nolabel.bedpe", "-g", HG38_PIECE, "-o", work / "p")
    expect_error(res, 1, "no 'label' column")
    assert not (work / "p").exists()


def test_one_class_evaluate_plot(cli, work):
    lines = (work / "scored.bedpe").read_text().splitlines()
    header = lines[0].lstrip("#").split("\t")
    i = header.index("label")
    rows = [line.split("\t") for line in lines[1:]]
    for r in rows:
        r[i] = "0"
    (work / "neg.bedpe").write_text("\n".join([lines[0]] + ["\t".join(r) for r in rows]) + "\n")
    res = cli("evaluate", work / "neg.bedpe", "--plot", work / "pr.png", "-o", work / "t.tsv")
    expect_error(res, 1, "both positive and negative")
    assert not (work / "pr.png").exists() and not (work / "t.tsv").exists()


def test_swapped_anchors_warn_once(cli, work):
    out = []
    for line in (work / "u1.bedpe").read_text().splitlines():
        f = line.split("\t")
        if not line.startswith("#"):
            f[1:3], f[4:6] = f[4:6], f[1:3]
        out.append("\t".join(f))
    (work / "swapped.bedpe").write_text("\n".join(out) + "\n")
    res = cli("predict", work / "swapped.bedpe", "-m", work / "model", "-g", HG38_PIECE)
    assert res.code == 0, res.stderr
    assert res.stderr.count("look swapped") == 1
    res = cli("predict", work / "u1.bedpe", "-m", work / "model", "-g", HG38_PIECE)
    assert res.code == 0 and "look swapped" not in res.stderr


# ================================================== more hostile inputs, found by trying
def _bedpe_with_header(work: Path, header_extra: str, value: str) -> Path:
    rows = [r.split("\t")[:6] for r in (work / "u1.bedpe").read_text().splitlines()[1:]]
    p = work / "odd.bedpe"
    head = "#chrom1\tstart1\tend1\tchrom2\tstart2\tend2\t" + header_extra
    p.write_text("\n".join([head] + ["\t".join(r) + "\t" + value for r in rows]) + "\n")
    return p


def test_same_dataset_twice_would_count_every_pair_twice(cli, work):
    (work / "link.h5").symlink_to(work / "train.h5")
    res = cli("train", work / "train.h5", work / "link.h5", "-o", work / "m")
    expect_error(res, 2, "given twice")
    assert not (work / "m").exists()


@pytest.mark.parametrize(
    "extra,value,phrase",
    [("_line", "x", "keeps for itself"), ("\tfoo", "a\tb", "column 7 has no name")],
)
def test_header_names_that_cannot_work(cli, work, extra, value, phrase):
    src = _bedpe_with_header(work, extra, value)
    res = cli("predict", src, "-g", HG38_PIECE, "-m", work / "model", "-o", work / "o")
    expect_error(res, 1, f"{src}:1:", phrase)
    assert not (work / "o").exists()


def test_extra_column_named_distance_survives_hdf5(cli, work):
    src = _bedpe_with_header(work, "distance", "5")
    h5 = work / "d.h5"
    assert cli("prepare", src, "-g", HG38_PIECE, "-o", h5, *WINDOWS).code == 0
    res = cli("predict", h5, "-m", work / "model")
    assert res.code == 0, res.stderr
    header = res.stdout.splitlines()[0].lstrip("#").split("\t")
    i = header.index("distance")
    assert {line.split("\t")[i] for line in res.stdout.splitlines()[1:]} == {"5"}


@pytest.mark.parametrize("cell", ["", "K 562", "a\tb"])
def test_cell_option_must_be_a_plain_name(cli, work, cell):
    res = cli("predict", work / "u1.bedpe", "-g", HG38_PIECE, "-m", work / "model", "--cell", cell)
    expect_error(res, 2, "--cell")
    res = cli("evaluate", work / "scored.bedpe", "--cell", cell)
    expect_error(res, 2, "--cell")


def test_old_mac_line_ends_read_like_unix(cli, work):
    text = (work / "u1.bedpe").read_text()
    (work / "cr.bedpe").write_text(text.replace("\n", "\r"))
    outs = []
    for src in (work / "cr.bedpe", work / "u1.bedpe"):
        res = cli("predict", src, "-g", HG38_PIECE, "-m", work / "model")
        assert res.code == 0, res.stderr
        outs.append(res.stdout)
    assert outs[0] == outs[1] and len(outs[0].splitlines()) == 121


@pytest.mark.parametrize("bad", ["dir", "binary"])
def test_prototype_path_that_is_not_a_prototype(cli, work, bad):
    p = work / "model" if bad == "dir" else work / "train.h5"
    res = cli("predict", work / "u1.bedpe", "-g", HG38_PIECE, "-m", work / "model", "-p", p)
    expect_error(res, 1, str(p))


def test_binary_config_file(cli, work):
    res = cli("train", work / "train.h5", "-o", work / "m", "--config", work / "train.h5")
    expect_error(res, 1, "not UTF-8")


def test_resume_without_a_checkpoint_or_with_nothing_left(cli, work):
    (work / "empty").mkdir()
    expect_error(
        cli("train", work / "train.h5", "-o", work / "empty", "--resume"), 2, "no training state"
    )
    expect_error(cli("train", work / "train.h5", "-o", work / "model", "--resume"), 2, "already")
    expect_error(cli("train", work / "train.h5", "-o", work / "nope", "--resume"), 2)


def test_incomplete_dir_without_any_finished_epoch(cli, work):
    from epcli.io.modeldir import mark_incomplete

    (work / "m").mkdir()
    mark_incomplete(work / "m", epochs_done=0, epochs=4)
    for extra in ([], ["--allow-incomplete"]):
        res = cli(
            "adapt", work / "m", work / "u1.bedpe", "-g", HG38_PIECE, "-o", work / "p", *extra
        )
        expect_error(res, 1, "incomplete model directory")
    assert not (work / "p").exists()
    # and --force may replace it (it is an epcli model directory)
    res = cli("train", work / "train.h5", "-o", work / "m", "--force", "--model", "distance")
    assert res.code == 0, res.stderr


def test_negative_seed(cli, work):
    expect_error(cli("train", work / "train.h5", "-o", work / "m", "--seed", -1), 2, "seed")
    (work / "s.json").write_text('{"train": {"seed": -2}}')
    res = cli("train", work / "train.h5", "-o", work / "m", "--config", work / "s.json")
    expect_error(res, 1, "seed")
    res = cli(
        "adapt", work / "model", work / "u1.bedpe", "-g", HG38_PIECE, "-o", work / "q",
        "--shots", 10, "--seed", -5,
    )  # fmt: skip
    assert res.code == 2 and "Traceback" not in res.stderr and not (work / "q").exists()
    assert not (work / "m").exists()


def test_two_outputs_that_are_one_file(cli, work):
    before = _tree(work)
    res = cli("evaluate", work / "scored.bedpe", "-o", work / "x.png", "--plot", work / "x.png")
    expect_error(res, 2, "same file")
    assert _tree(work) == before  # the plot used to be written before the table failed
