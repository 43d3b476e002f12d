"""`epcli train`: fit a model (or a baseline) with validation on held-out cells and genome."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from epcli.cli._common import log, progress_counter
from epcli.core.schema import ALL_KINDS


def _split_names(values: list[str] | None) -> list[str] | None:
    """``--val-cells A,B --val-cells C`` -> ``["A", "B", "C"]``."""
    if values is None:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def register(app: typer.Typer) -> None:
    """Add the command to the app."""

    @app.command("train")
    def train(
        data: Annotated[
            list[Path],
            typer.Argument(
                help="HDF5 dataset(s) from epcli prepare, with labels and cells.",
                metavar="DATA.h5...",
            ),
        ],
        output: Annotated[Path, typer.Option("--output", "-o", help="Model directory to write.")],
        model: Annotated[
            str | None,
            typer.Option(help="Model kind: " + ", ".join(ALL_KINDS) + " (default prism)."),
        ] = None,
        val_cells: Annotated[
            list[str] | None,
            typer.Option(help="Cell lines held out for validation (comma-separated)."),
        ] = None,
        val_chroms: Annotated[
            list[str] | None,
            typer.Option(
                help="Chromosomes held out for validation (comma-separated); default: chosen "
                "automatically, or contiguous blocks when the data spans few chromosomes."
            ),
        ] = None,
        epochs: Annotated[int | None, typer.Option(help="Maximum epochs.")] = None,
        max_time: Annotated[
            float | None,
            typer.Option(help="Wall-clock budget (s); stops cleanly keeping the best model."),
        ] = None,
        steps_per_epoch: Annotated[
            int | None, typer.Option(help="Optimizer steps per epoch.")
        ] = None,
        support_size: Annotated[
            int | None, typer.Option(help="k, labeled support pairs per episode.")
        ] = None,
        seed: Annotated[int | None, typer.Option(help="Seed of every random step.")] = None,
        device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
        threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
        config: Annotated[
            Path | None,
            typer.Option(
                help='JSON {"train": {...}, "model": {...}} merged over the defaults; '
                "command-line options win."
            ),
        ] = None,
        resume: Annotated[
            bool,
            typer.Option(
                "--resume",
                help="Continue the run in -o from its last checkpoint, with its saved config "
                "(options given now, e.g. --epochs, override it).",
            ),
        ] = False,
        force: Annotated[bool, typer.Option("--force", help="Replace an existing -o.")] = False,
    ) -> None:
        """Train on labeled pairs with episodic prototypes; validate on held-out cells AND
        held-out chromosomes (or genome blocks); keep the best checkpoint."""
        from epcli.core.errors import UsageError
        from epcli.io.files import check_distinct_inputs, check_output_path
        from epcli.io.hdf5 import load_pairdata
        from epcli.io.modeldir import check_replaceable, read_marker
        from epcli.train import train as run_training
        from epcli.train.checkpoint import saved_configs
        from epcli.train.configfile import resolve_configs

        overrides = {
            "model": model,
            "val_cells": _split_names(val_cells),
            "val_chroms": _split_names(val_chroms),
            "epochs": epochs,
            "max_time": max_time,
            "steps_per_epoch": steps_per_epoch,
            "support_size": support_size,
            "seed": seed,
            "device": device,
            "num_threads": threads,
        }
        check_distinct_inputs(data, "dataset")
        if not (resume or force) and (read_marker(output) or {}).get("status") == "incomplete":
            raise UsageError(
                "the model directory was left by an interrupted training run",
                path=output,
                hint="continue it with --resume, or start over with --force",
            )
        check_output_path(
            output,
            force or resume,
            inputs=data + ([config] if config is not None else []),
            what="model directory",
            no_stdout="must be a directory on disk",
            directory=True,
            replaceable=None if resume else check_replaceable,
        )
        base = saved_configs(output) if resume else None
        tcfg, mcfg = resolve_configs(config, overrides, base=base)
        pairs, infos = load_pairdata(data)
        log(
            f"data: {pairs.n_pairs} pairs from {len(infos)} file(s), cells: "
            + ", ".join(pairs.cells)
        )
        # the library logs the collapse check and the written directory; each epoch's line
        with progress_counter(
            "train", unit="steps", total=tcfg.epochs * tcfg.steps_per_epoch
        ) as advance:
            run_training(
                pairs,
                tcfg,
                mcfg,
                output,
                log=log,
                resume=resume,
                force=force,
                data_files=[str(p) for p in data],
                progress=advance,
                on_epoch=lambda report: log(format_epoch(report)),
            )


def _fmt(x: float | None) -> str:
    return "NA" if x is None or not math.isfinite(x) else f"{x:.3f}"


def format_epoch(report) -> str:
    """One log line for an epoch (:class:`~epcli.train.loop.EpochReport`): the training
    loss and its parts, each validation set's zero-shot / adapted AUPR (per cell when there
    are several), HSIC, the temperature and the speed; ``*`` marks a new best epoch."""
    row = report.row
    parts_text = ", ".join(
        f"{k} {_fmt(row.get(f'train_{k}'))}"
        for k in ("bce", "rank", "aux_ui", "hsic", "l1")
        if f"train_{k}" in row
    )
    text = (
        f"epoch {report.epoch}/{report.epochs}{' (partial)' if report.partial else ''}"
        f"{' (the warm start, before any episode)' if report.epoch == 0 else ''}: loss "
        f"{_fmt(row.get('train_total'))}" + (f" ({parts_text})" if parts_text else "")
    )
    for name, v in report.validation.items():
        text += f" | {name} zero-shot {_fmt(v.aupr_zero_shot)} adapted {_fmt(v.aupr_adapted)}"
        if len(v.cells) > 1:
            text += (
                " ["
                + ", ".join(
                    f"{c} {_fmt(cv.aupr_zero_shot)}/{_fmt(cv.aupr_adapted)}"
                    for c, cv in v.cells.items()
                )
                + "]"
            )
        if v.hsic is not None and math.isfinite(v.hsic):
            text += f" HSIC {v.hsic:.3g}"
    text += f" | T {report.temperature:.3f} | {row['train_pairs_per_s']:.0f} pairs/s"
    return text + (" *" if report.improved else "")
