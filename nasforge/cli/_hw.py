"""``nas devices``, ``nas profile`` and ``nas hw {import,predict,validate}``: latency models."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from nasforge.cli._common import console
from nasforge.cli._common import read_structured
from nasforge.errors import InvalidInputError

__all__ = ["register"]

hw_app = typer.Typer(
    name="hw",
    help=(
        "Per-device latency models: import measured tables, predict an architecture's latency "
        "block by block, validate a model against end-to-end measurements."
    ),
    no_args_is_help=True,
)


def _pct(x: Any) -> str:
    return f"{100 * float(x):.1f}%" if isinstance(x, int | float) and math.isfinite(x) else "-"


def devices(
    as_json: bool = typer.Option(False, "--json", help="Print the profiles as JSON."),
) -> None:
    """List the devices with their hardware, runtime and provenance.

    Provenance says how each device's numbers were obtained: `measured` (a lookup table from
    real runs), `predicted` (per-block regressors fitted on measured data) or `derived`
    (another device's model times a documented factor). Tables you import with
    `nas hw import` and devices you profile with `nas profile` are listed too.
    """
    from nasforge.hardware_models import device_profile
    from nasforge.hardware_models import list_devices

    profiles = [device_profile(n) for n in list_devices()]
    if as_json:
        console.print_json(json.dumps([p.to_dict() for p in profiles]))
        return
    t = Table(title="devices", show_lines=False)
    for col in ("device", "provenance", "hardware", "runtime", "spaces", "error / factor"):
        t.add_column(col, overflow="fold")
    for p in profiles:
        if p.derived:
            note = (f"x{p.derived['factor']} of {p.derived['from']} "
                    f"[{p.derived['factor_low']}, {p.derived['factor_high']}]")
        elif p.errors.get("holdout"):
            h = p.errors["holdout"]
            note = f"held-out keys: median {_pct(h['median_rel_err'])}"
        elif p.analytic:
            note = f"fallback calib.: median {_pct(p.analytic['calibration']['median_rel_err'])}"
        else:
            note = "-"
        t.add_row(p.name, p.provenance, p.hardware, p.runtime, ", ".join(p.spaces), note)
    console.print(t)


def hw_import(
    file: Path = typer.Argument(..., help="The table file to import."),
    fmt: str = typer.Option(..., "--format", help="Table format: nnmeter-hybrid (JSON {key: "
                            "ms}), ofa-yaml ({key: {count, mean, std}}) or csv "
                            "(key,mean_ms,std_ms,count)."),
    device: str = typer.Option(..., "--device", help="Device name to create; a shipped name "
                               "(e.g. pixel6) is overlaid: its table answers first."),
    space: str = typer.Option(..., "--space", help="Search space whose blocks the table keys."),
    hardware: str = typer.Option("", help="Hardware description for the profile."),
    runtime: str = typer.Option("", help="Runtime description for the profile."),
) -> None:
    """Import a measured latency table into your cache ($NASFORGE_CACHE or ~/.cache/nasforge).

    The device is then usable like any shipped one (`nas hw predict --device NAME`); block
    keys the table lacks fall back to the device's regressors or to the analytical estimate
    calibrated on the imported entries, and are labelled `predicted`.
    """
    import numpy as np

    from nasforge.hardware_models import get_device
    from nasforge.hardware_models import import_table
    from nasforge.search_spaces import get_space

    profile = import_table(file, fmt, device, space, hardware=hardware, runtime=runtime)
    model = get_device(device)
    sp = get_space(space)
    rng = np.random.default_rng(0)
    keys = {k for _ in range(200) for k in model.keys(sp.sample(rng))}  # type: ignore[attr-defined]
    hit = sum(k in model.table for k in keys) / max(len(keys), 1)  # type: ignore[attr-defined]
    console.print(f"imported {profile.source} as device [bold]{device}[/bold] into "
                  f"{profile.folder}; {hit:.1%} of the block keys of 200 random {space} "
                  "architectures are in the table")


def hw_predict(
    arch_file: Path = typer.Argument(..., help="Architecture YAML or JSON (as written by `nas "
                                     "arch` or a search run); its `space` field names the space."),
    device: str = typer.Option(..., "--device", help="Device name (see `nas devices`)."),
    space: str = typer.Option("", "--space", help="Space, when the file has no `space` field."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: latency_ms, device, "
                                 "provenance, blocks (block, key, ms, provenance)."),
) -> None:
    """Predict an architecture's latency on a device, block by block, with provenance."""
    from nasforge.hardware_models import get_device
    from nasforge.search_spaces import get_space

    data = read_structured(arch_file)
    if not isinstance(data, dict):
        raise InvalidInputError(f"{arch_file}: an architecture file holds a mapping of fields")
    name = space or data.get("space")
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"{arch_file}: no `space` field; pass --space")
    arch = get_space(name).arch_from_dict(data)
    model = get_device(device)
    rows = model.explain(arch)
    total = model.predict(arch)
    provs = {r.provenance for r in rows}
    overall = "derived" if "derived" in provs else "measured" if provs == {"measured"} else (
        "predicted" if provs == {"predicted"} else "measured+predicted")
    if as_json:
        console.print_json(json.dumps({
            "latency_ms": total, "device": device, "provenance": overall,
            "device_provenance": model.provenance, "arch_id": arch.arch_id,
            "blocks": [r.to_dict() for r in rows]}))
        return
    t = Table(title=f"{arch.arch_id} on {device}: {total:.3f} ms ({overall})")
    for col in ("#", "stage", "kind", "key", "ms", "provenance", "source"):
        t.add_column(col, justify="right" if col in ("#", "ms") else "left", overflow="fold")
    for i, r in enumerate(rows):
        t.add_row(str(i), r.block.stage, r.block.kind, r.key, f"{r.ms:.4f}", r.provenance,
                  r.source)
    console.print(t)


def profile(
    device: str = typer.Option("cpu-local", "--device", help="Device to profile; only "
                               "cpu-local (this machine) is reachable."),
    space: str = typer.Option(..., "--space", help="Search space whose blocks are measured."),
    backend: str = typer.Option("torch", "--backend", help="torch (eager, fixed threads), "
                                "onnxruntime, or command (see --command)."),
    command: str = typer.Option("", "--command", help="For --backend command: a template with "
                                "{model} (an ONNX file) that prints one latency in ms."),
    threads: int = typer.Option(1, "--threads", help="Intra-op threads (pinned count)."),
    n_archs: int = typer.Option(200, "--n-archs", help="Random architectures whose blocks "
                                "seed the measured set."),
    seed: int = typer.Option(0, "--seed", help="Seed of the architecture sample."),
) -> None:
    """Measure a latency table for the blocks a space can produce on this machine.

    Blocks are measured in context (warm-up, median of repeats), the table is cached in
    $NASFORGE_CACHE/devices/<device>/ and written as it grows, so an interrupted run resumes
    where it stopped. Needs the static model builder (nasforge.search_spaces.static).
    """
    from nasforge.hardware_models._cpu import profile_device

    profile_device(device, space, backend=backend, command=command, threads=threads,
                   n_archs=n_archs, seed=seed, console=console)


def hw_validate(
    device: str = typer.Option("cpu-local", "--device", help="A reachable device (cpu-local)."),
    space: str = typer.Option(..., "--space", help="Search space to sample subnets from."),
    n: int = typer.Option(50, "--n", help="Number of random subnets measured end to end."),
    backend: str = typer.Option("torch", "--backend", help="Runtime for the end-to-end runs."),
    out: Path = typer.Option(Path("hw_validate"), "--out", help="Folder for the scatter PNG "
                             "and the JSON report."),
    seed: int = typer.Option(1, "--seed", help="Seed of the subnet sample."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Measure N random subnets end to end and compare with the device's latency model.

    Reports the share of subnets predicted within +-10 %, RMSE (ms) and Spearman rank
    correlation, and writes a predicted-vs-measured scatter plot (PNG).
    """
    from nasforge.hardware_models._cpu import validate_device

    report = validate_device(device, space, n=n, backend=backend, out=out, seed=seed,
                             console=console)
    if as_json:
        console.print_json(json.dumps(report))


def register(app: typer.Typer) -> None:
    """Add ``devices``, ``profile`` and the ``hw`` group to the ``nas`` app."""
    app.command("devices")(devices)
    hw_app.command("import")(hw_import)
    hw_app.command("predict")(hw_predict)
    app.command("profile")(profile)
    hw_app.command("validate")(hw_validate)
    app.add_typer(hw_app, name="hw")
