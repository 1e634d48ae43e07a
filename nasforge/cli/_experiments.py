"""``nas export``, ``nas sweep`` and ``nas report``: deployment and many runs at once.

Each command is a plain function in this module; :func:`register` adds the ones listed in
:data:`COMMANDS` to the ``nas`` app.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated

import typer
from rich.table import Table

from nasforge.cli._common import console
from nasforge.cli._common import err_console
from nasforge.cli._common import print_records
from nasforge.errors import InvalidInputError
from nasforge.validation import check_output_dir
from nasforge.validation import check_output_file

if TYPE_CHECKING:
    from nasforge.experiments.export import ExportResult

__all__ = ["COMMANDS", "export", "register", "report", "sweep"]

#: largest input side ``nas export`` builds a model for (px)
MAX_INPUT_SIZE = 2048

_Opt = typer.Option
_ArchFile = Annotated[Path, typer.Argument(help="Architecture YAML/JSON (ours, or an export "
                                           "config written by a previous export).")]
_Supernet = Annotated[Path | None, _Opt(
    "--supernet", help="Trained supernet checkpoint (file or run folder): extract the subnet and "
    "recalibrate BN. Without it the static model is randomly initialised (for retraining from "
    "scratch).")]
_Model = Annotated[Path | None, _Opt(
    "--model", help="A fine-tuned model: the --out folder of nas finetune (model.json + "
    "model.safetensors); its input size is the default --input-size.")]
_Format = Annotated[str, _Opt("--format", "-f", help="onnx, torchscript, safetensors, tflite "
                              "(LiteRT; nasforge[tflite]) or executorch (XNNPACK; "
                              "nasforge[executorch]); tflite-int8 / executorch-int8: "
                              "post-training int8, calibrated on --calib-batches x 8 training "
                              "images, top-1 against fp32 reported.")]
_ExportOut = Annotated[Path, _Opt("--out", "-o", help="Output folder.")]
_Device = Annotated[str | None, _Opt(
    "--device", "-d", help="Latency target (e.g. pixel7): print its predicted latency beside "
    "the measured one, and name the file after it with --top1.")]
_Data = Annotated[str | None, _Opt(
    "--data", help="Dataset for BN recalibration (default: the checkpoint's).")]
_Calib = Annotated[int, _Opt("--calib-batches", min=1,
                             help="Training batches for BN recalibration (K).")]
_InputSize = Annotated[int | None, _Opt("--input-size", min=8, max=MAX_INPUT_SIZE,
                                        help="Input side (default: the arch's resolution).")]
_Classes = Annotated[int | None, _Opt(
    "--num-classes", min=1, help="Classes of a randomly initialised model (default: the arch "
    "file's, else the space's).")]
_Top1 = Annotated[float | None, _Opt("--top1", help="Top-1 accuracy (%) for the name.")]
_Name = Annotated[str | None, _Opt("--name", help="File stem (default: the field's "
                                   "`DEVICE_lat@MSms_top1@ACC`, else SPACE_ARCHID).")]
_Runs = Annotated[int, _Opt("--runs", min=1, help="Timed runs (median reported).")]
_Threads = Annotated[int, _Opt("--threads", min=1, help="Threads for timing.")]
_Opset = Annotated[int, _Opt("--opset", min=17, help="ONNX opset (>= 17).")]
_Tolerance = Annotated[float, _Opt("--tolerance",
                                   help="Absolute part of the allowed max abs diff.")]
_Rtol = Annotated[float, _Opt("--rtol", help="Relative part of the allowed max abs diff, times "
                              "the largest |logit| (0: purely absolute).")]
_Json = Annotated[bool, _Opt("--json", help="Print the result as JSON instead of a table.")]


def export(
    arch_file: _ArchFile, supernet: _Supernet = None, fmt: _Format = "onnx",
    out: _ExportOut = Path("exports"), device: _Device = None, data: _Data = None,
    calib_batches: _Calib = 20, input_size: _InputSize = None, num_classes: _Classes = None,
    top1: _Top1 = None, name: _Name = None, runs: _Runs = 30, threads: _Threads = 1,
    opset: _Opset = 17, tolerance: _Tolerance = 1e-4, rtol: _Rtol = 1e-5,
    json_out: _Json = False, model: _Model = None,
) -> None:
    """Export a subnet as ONNX, TorchScript, TFLite or safetensors, check it, time it.

    Writes the model file and its YAML config (arch, space, classes, input size) into --out,
    runs the file on its runtime (onnxruntime CPU, torch.jit.load, or a freshly built model)
    on a fixed random input, compares its outputs with PyTorch's, and measures its latency on
    this machine. Exit code 1 when the outputs differ by more than --tolerance + --rtol x the
    largest |logit|.
    """
    from nasforge.experiments.export import ExportRequest
    from nasforge.experiments.export import export_arch_file

    request = ExportRequest(
        arch_file, fmt=fmt, out=out, supernet=supernet, model=model, device=device, data=data,
        calib_batches=calib_batches, input_size=input_size, num_classes=num_classes, top1=top1,
        name=name, runs=runs, threads=threads, opset=opset, tolerance=tolerance, rtol=rtol)
    result = export_arch_file(request, status=console.status)
    if json_out:
        console.print_json(json.dumps(result.to_dict()))
    else:
        _print_export(result)
    if not result.ok:
        err_console.print(f"error: exported outputs differ from PyTorch's by "
                          f"{result.max_abs_diff:.3e} > {result.tolerance:.3e}", markup=False)
        raise typer.Exit(1)


def _print_export(result: ExportResult) -> None:
    """The export's table, where its files are, and (tflite) the converter's MAC count."""
    from nasforge.experiments.export._tflite import mac_line

    size = f"{result.input_size} tokens" if result.inputs else f"{result.input_size}px"
    table = Table(title=f"{result.space} {result.arch_id} @ {size}")
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
                  f"{result.runs} runs at "
                  f"{result.inputs or (1, 3, result.input_size, result.input_size)}")
    if result.fmt == "tflite":  # issue 12: the converter's MAC count beside ours
        console.print(mac_line(result.config_path), markup=False)
    if result.int8 is not None:  # issue 24: what int8 costs on the validation split
        q = result.int8
        console.print(f"int8: top-1 {q['top1_int8']:.4f} vs fp32 {q['top1_fp32']:.4f} "
                      f"({q['top1_change_points']:+.2f} points) on {q['val_images']} val images "
                      f"of {q['data']} at {q['input_size']} px", markup=False)
    if result.fmt in ("executorch", "executorch-int8"):  # issue 24: ops outside the delegate
        from nasforge.experiments.export._executorch import delegation_line

        console.print(delegation_line(result.config_path), markup=False)


_SweepFile = Annotated[Path, typer.Argument(
    help="Sweep YAML: `base` experiment plus `grid` and/or `random` field paths (see "
    "nasforge/experiments/examples/*sweep*.yaml).")]
_Address = Annotated[str | None, _Opt(
    "--address", help="Ray cluster: `auto` (the cluster this machine belongs to) or HOST:PORT. "
    "Default: a local Ray instance on this machine.")]
_MaxConcurrent = Annotated[int | None, _Opt(
    "--max-concurrent", min=1, help="Trials running at once (default: the file's "
    "`max_concurrent`, else as many as resources allow).")]
_SweepResume = Annotated[bool, _Opt("--resume", help="Continue the sweep in the file's `out`: "
                                    "keep finished trials, re-run the others.")]
_Quiet = Annotated[bool, _Opt("--quiet", "-q", help="No Ray Tune progress output.")]
_JsonRows = Annotated[bool, _Opt("--json", help="Print the table as a JSON list of rows.")]


def sweep(sweep_file: _SweepFile, address: _Address = None,
          max_concurrent: _MaxConcurrent = None, resume: _SweepResume = False,
          quiet: _Quiet = False, json_out: _JsonRows = False) -> None:
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
    (err_console if json_out else console).print(
        f"sweep {cfg.name}: {cfg.n_trials} trial(s) over {', '.join(cfg.swept)} -> {cfg.out}")
    outcome = run_sweep(cfg, address=address, max_concurrent=max_concurrent, resume=resume,
                        progress=not quiet)
    cols = [*cfg.swept, "status", "attempts", "best_arch_id", "best_accuracy",
            "best_latency_ms", "best_mflops"]
    print_records(f"sweep {cfg.name}", outcome.table.to_dict("records"), cols, json_out)
    failed = int((outcome.table["status"] == "error").sum()) if len(outcome.table) else 0
    if not json_out:
        console.print(f"wrote {outcome.csv} and {outcome.plot or '(no finished trial to plot)'}")
    if failed:
        err_console.print(f"error: {failed} trial(s) failed after their retries; see "
                          f"{outcome.csv} (column `error`) and re-run with --resume",
                          markup=False)
        raise typer.Exit(1)


_RunDirs = Annotated[list[str], typer.Argument(
    help="Run folders (each with run.json, candidates.csv, pareto.csv), or search storages: URL "
    "or URL#STUDY (sqlite:///PATH, postgresql://..., journal:PATH).")]
_ReportOut = Annotated[Path, _Opt("--out", "-o", help="The PNG to write.")]
_Html = Annotated[bool, _Opt("--html", help="Also write OUT.html: the figure embedded, with the "
                             "tables.")]
_Title = Annotated[str | None, _Opt("--title", help="Page title.")]


def report(run_dirs: _RunDirs, out: _ReportOut = Path("report.png"), html: _Html = False,
           title: _Title = None, json_out: _JsonRows = False) -> None:
    """Compare runs on one page: Pareto fronts per device, search curves, chosen archs."""
    from nasforge.experiments.report import make_report

    check_output_file(out, "--out", suffixes=(".png",))
    for d in run_dirs:
        if not Path(d).is_dir() and not _is_storage_url(d):
            raise InvalidInputError(f"{d} is not a run folder (a folder that has no run.json); "
                                    "give the --out folder of a `nas search` or `nas run`")
    outcome = make_report(run_dirs, out, html=html, title=title)
    rows = outcome.table.to_dict("records")
    print_records("chosen architectures", rows, [str(c) for c in outcome.table.columns],
                  json_out)
    if not json_out:
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
