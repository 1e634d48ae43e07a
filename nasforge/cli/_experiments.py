"""``nas export``, ``nas sweep`` and ``nas report``: deployment and many runs at once.

Each command is a plain function in this module; :func:`register` adds the ones listed in
:data:`COMMANDS` to the ``nas`` app.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from nasforge.cli._common import console
from nasforge.cli._common import err_console
from nasforge.errors import InvalidInputError
from nasforge.validation import check_number
from nasforge.validation import check_output_dir
from nasforge.validation import check_output_file

__all__ = ["COMMANDS", "export", "register", "report", "sweep"]

#: largest input side ``nas export`` builds a model for (px)
MAX_INPUT_SIZE = 2048


def export(
    arch_file: Path = typer.Argument(..., help="Architecture YAML/JSON (ours, or an export "
                                     "config written by a previous export)."),
    supernet: Path | None = typer.Option(
        None, "--supernet", help="Trained supernet checkpoint (file or run folder): extract "
        "the subnet and recalibrate BN. Without it the static model is randomly initialised "
        "(for retraining from scratch)."),
    fmt: str = typer.Option("onnx", "--format", "-f",
                            help="onnx, torchscript, safetensors or tflite (LiteRT; "
                            "nasforge[tflite])."),
    out: Path = typer.Option(Path("exports"), "--out", "-o", help="Output folder."),
    device: str | None = typer.Option(
        None, "--device", "-d", help="Latency target (e.g. pixel7): print its predicted "
        "latency beside the measured one, and name the file after it with --top1."),
    data: str | None = typer.Option(
        None, "--data", help="Dataset for BN recalibration (default: the checkpoint's)."),
    calib_batches: int = typer.Option(20, "--calib-batches", min=1,
                                      help="Training batches for BN recalibration (K)."),
    input_size: int | None = typer.Option(
        None, "--input-size", min=8, max=MAX_INPUT_SIZE,
        help="Input side (default: the arch's resolution)."),
    num_classes: int | None = typer.Option(
        None, "--num-classes", min=1, help="Classes of a randomly initialised model "
        "(default: the arch file's, else the space's)."),
    top1: float | None = typer.Option(None, "--top1", help="Top-1 accuracy (%) for the name."),
    name: str | None = typer.Option(None, "--name", help="File stem (default: the field's "
                                    "`DEVICE_lat@MSms_top1@ACC`, else SPACE_ARCHID)."),
    runs: int = typer.Option(30, "--runs", min=1, help="Timed runs (median reported)."),
    threads: int = typer.Option(1, "--threads", min=1, help="Threads for timing."),
    opset: int = typer.Option(17, "--opset", min=17, help="ONNX opset (>= 17)."),
    tolerance: float = typer.Option(1e-4, "--tolerance",
                                    help="Absolute part of the allowed max abs diff."),
    rtol: float = typer.Option(1e-5, "--rtol", help="Relative part of the allowed max abs "
                               "diff, times the largest |logit| (0: purely absolute)."),
) -> None:
    """Export a subnet as ONNX, TorchScript, TFLite or safetensors, check it, time it.

    Writes the model file and its YAML config (arch, space, classes, input size) into --out,
    runs the file on its runtime (onnxruntime CPU, torch.jit.load, or a freshly built model)
    on a fixed random input, compares its outputs with PyTorch's, and measures its latency on
    this machine. Exit code 1 when the outputs differ by more than --tolerance + --rtol x the
    largest |logit|.
    """
    from nasforge.experiments import EXPORT_FORMATS
    from nasforge.experiments import export_model
    from nasforge.experiments import load_arch_config
    from nasforge.experiments.export import extract_subnet
    from nasforge.experiments.export import predict_device_ms

    EXPORT_FORMATS.get(fmt)  # unknown format: one line before any heavy work
    if top1 is not None:
        check_number(top1, "--top1", low=0, high=100)
    check_number(tolerance, "--tolerance", low=0)
    check_number(rtol, "--rtol", low=0)
    if name is not None and (not name or name in (".", "..") or any(
            c in name for c in "/\\\0")):
        raise InvalidInputError(f"--name is a file stem inside --out (no folders), got {name!r}")
    check_output_dir(out, "--out")
    cfg = load_arch_config(arch_file)
    arch, space = cfg.arch, cfg.space
    predicted = predict_device_ms(device, arch) if device is not None else None
    extra: dict[str, Any]
    if supernet is not None:
        with console.status(f"extracting {arch.arch_id} from {supernet} and recalibrating BN"):
            model, extra = extract_subnet(supernet, arch, data=data, calib_batches=calib_batches)
        extra = {"source": extra}
    else:
        classes = num_classes or cfg.num_classes
        model = space.build_model(arch, num_classes=classes)
        extra = {"source": "random initialisation (for training from scratch)"}
    size = input_size or cfg.input_size
    with console.status(f"exporting {arch.arch_id} as {fmt} and checking it"):
        result = export_model(
            model, arch, space, fmt, out, input_size=size, name=name, device=device,
            device_ms=predicted, accuracy=top1, tolerance=tolerance, rtol=rtol, runs=runs,
            threads=threads, opset=opset, strict=False, extra=extra,
        )
    table = Table(title=f"{space.name} {arch.arch_id} @ {result.input_size}px")
    table.add_column("file", overflow="fold")
    table.add_column("format")
    for col in ("max abs diff", "measured ms", "predicted ms"):
        table.add_column(col, justify="right", no_wrap=True)
    pred = (f"{result.predicted_ms:.2f} ({result.device})" if result.predicted_ms is not None
            else "-")
    diff = f"{result.max_abs_diff:.2e}"
    table.add_row(result.model_path.name, result.fmt,
                  diff if result.ok else f"[red]{diff}[/red]", f"{result.latency_ms:.2f}", pred)
    console.print(table)
    console.print(f"in {result.model_path.parent}/ with its config {result.config_path.name}; "
                  f"measured with {result.runtime}, {result.threads} thread(s), median of "
                  f"{result.runs} runs at (1, 3, {result.input_size}, {result.input_size})")
    if fmt == "tflite":  # issue 12: the converter's MAC count beside ours
        from nasforge.experiments._tflite import mac_line

        console.print(mac_line(result.config_path), markup=False)
    if not result.ok:
        err_console.print(f"error: exported outputs differ from PyTorch's by "
                          f"{result.max_abs_diff:.3e} > {result.tolerance:.3e}", markup=False)
        raise typer.Exit(1)


def sweep(
    sweep_file: Path = typer.Argument(..., help="Sweep YAML: `base` experiment plus `grid` "
                                      "and/or `random` field paths (see nasforge/experiments/"
                                      "examples/*sweep*.yaml)."),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster: `auto` (the cluster this machine belongs to) or "
        "HOST:PORT. Default: a local Ray instance on this machine."),
    max_concurrent: int | None = typer.Option(
        None, "--max-concurrent", min=1, help="Trials running at once (default: the file's "
        "`max_concurrent`, else as many as resources allow)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the sweep in the file's "
                                "`out`: keep finished trials, re-run the others."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No Ray Tune progress output."),
) -> None:
    """Run a sweep of experiments on Ray Tune (devices x budgets x strategies x seeds).

    Every trial is one experiment run writing its own folder under OUT/runs/; a trial lost
    with its node is retried (`max_failures`) and resumes its persisted candidates. Writes
    OUT/sweep.csv (one row per trial) and OUT/sweep_pareto.png (Pareto fronts per device).
    """
    from nasforge.experiments.sweep import load_sweep
    from nasforge.experiments.sweep import run_sweep

    cfg = load_sweep(sweep_file)  # a malformed file: one line, exit 2, before Ray starts
    cfg.check_names()
    cfg.check_inputs()  # benchmark tables: one line here, not a failure in every trial
    check_output_dir(cfg.out, f"{sweep_file}: out")
    console.print(f"sweep {cfg.name}: {cfg.n_trials} trial(s) over {', '.join(cfg.swept)} "
                  f"-> {cfg.out}")
    outcome = run_sweep(cfg, address=address, max_concurrent=max_concurrent, resume=resume,
                        progress=not quiet)
    table = Table(title=f"sweep {cfg.name}")
    cols = [*cfg.swept, "status", "attempts", "best_arch_id", "best_accuracy",
            "best_latency_ms", "best_mflops"]
    for c in cols:
        table.add_column(c, overflow="fold")
    for row in outcome.table.to_dict("records"):
        table.add_row(*[f"{row.get(c):.2f}" if isinstance(row.get(c), float)
                        else str(row.get(c)) for c in cols])
    console.print(table)
    failed = int((outcome.table["status"] == "error").sum()) if len(outcome.table) else 0
    console.print(f"wrote {outcome.csv} and {outcome.plot or '(no finished trial to plot)'}")
    if failed:
        err_console.print(f"error: {failed} trial(s) failed after their retries; see "
                          f"{outcome.csv} (column `error`) and re-run with --resume",
                          markup=False)
        raise typer.Exit(1)


def report(
    run_dirs: list[str] = typer.Argument(..., help="Run folders (each with run.json, "
                                         "candidates.csv, pareto.csv), or search storages: "
                                         "URL or URL#STUDY (sqlite:///PATH, postgresql://..., "
                                         "journal:PATH)."),
    out: Path = typer.Option(Path("report.png"), "--out", "-o", help="The PNG to write."),
    html: bool = typer.Option(False, "--html", help="Also write OUT.html: the figure "
                              "embedded, with the tables."),
    title: str | None = typer.Option(None, "--title", help="Page title."),
) -> None:
    """Compare runs on one page: Pareto fronts per device, search curves, chosen archs."""
    from nasforge.experiments.report import make_report

    check_output_file(out, "--out", suffixes=(".png",))
    for d in run_dirs:
        if not Path(d).is_dir() and not _is_storage_url(d):
            raise InvalidInputError(f"{d} is not a run folder (a folder that has no run.json); "
                                    "give the --out folder of a `nas search` or `nas run`")
    outcome = make_report(run_dirs, out, html=html, title=title)
    table = Table(title="chosen architectures")
    for c in outcome.table.columns:
        table.add_column(str(c), overflow="fold")
    for row in outcome.table.to_dict("records"):
        table.add_row(*[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()])
    console.print(table)
    console.print(f"wrote {outcome.png}" + (f" and {outcome.html}" if outcome.html else ""))


def _is_storage_url(text: str) -> bool:
    """Whether ``text`` names a search storage (loads the storage package only when asked,
    so reports of run folders import no search code)."""
    from nasforge.strategies.storage import StorageURL

    return StorageURL.is_url(text)


#: name -> command function (``search`` and ``run`` live in :mod:`nasforge.cli._search`).
COMMANDS: dict[str, Callable[..., None]] = {"export": export, "sweep": sweep, "report": report}


def register(app: typer.Typer) -> None:
    """Add the experiment commands (:data:`COMMANDS`) to the ``nas`` app."""
    for name, fn in COMMANDS.items():
        app.command(name)(fn)
