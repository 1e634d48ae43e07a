"""``nas devices``, ``nas profile`` and ``nas hw {import,predict,validate}``: latency models."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any

import typer
from rich.table import Table

from nasforge.cli._common import console
from nasforge.errors import InvalidInputError
from nasforge.validation import check_number
from nasforge.validation import check_output_dir

if TYPE_CHECKING:
    from nasforge.hardware_models import DeviceProfile

__all__ = ["register"]

hw_app = typer.Typer(
    name="hw",
    help=(
        "Per-device latency models: import measured tables, predict an architecture's latency "
        "block by block, validate a model against end-to-end measurements."
    ),
    no_args_is_help=True,
)

# ---- flags shared by `nas profile` and `nas hw validate` ----------------------------------------
_Clock = Annotated[str, typer.Option("--clock", help="wall (latency) or cpu (the thread's CPU "
                                     "time: robust on a loaded machine; --threads 1 only).")]
_Jobs = Annotated[int, typer.Option("--jobs", min=1, help="--backend litert/adb/executorch: "
                                    "conversions (.tflite, .pte) run in this many processes.")]
_Json = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
# ---- `nas profile` ------------------------------------------------------------------------------
#: a required option (typer's ``...`` default; mypy accepts it on an OptionInfo default only).
_SPACE = typer.Option(..., "--space", help="Search space whose blocks are measured.")
_PDevice = Annotated[str, typer.Option("--device", help="cpu-local (this machine), or a name for "
                                       "a phone (--backend adb) or a device reached through "
                                       "--backend command.")]
_PBackend = Annotated[str, typer.Option("--backend", help="torch (eager), onnxruntime, litert "
                                        "(TFLite runtime, XNNPACK; nasforge[tflite]), adb (a "
                                        "phone's benchmark_model), executorch (XNNPACK; "
                                        "nasforge[executorch]), adb-executorch (a phone's "
                                        "executor_runner) or command (see --command).")]
_PCommand = Annotated[str, typer.Option("--command", help="For --backend command: a template "
                                        "with {model} (an ONNX file) and optionally {threads}; it "
                                        "must print the latency in ms as its last line.")]
_PThreads = Annotated[int, typer.Option("--threads", min=1, help="Intra-op threads (pinned "
                                        "count).")]
_Budget = Annotated[int, typer.Option("--budget", min=1, help="Blocks of the space to measure in "
                                      "all (seed set + adaptive rounds).")]
_SeedBlocks = Annotated[int, typer.Option("--seed-blocks", min=1, help="Size of the seed set.")]
_Batch = Annotated[int, typer.Option("--batch", min=1, help="Blocks measured per adaptive "
                                     "round.")]
_TimeBudget = Annotated[float, typer.Option("--time-budget", help="Stop measuring blocks after "
                                            "this many seconds (0: no limit).")]
_Networks = Annotated[int, typer.Option("--networks", min=0, help="Whole networks measured to "
                                        "fit the runtime's fusion rule (0: plain block sum).")]
_PRepeats = Annotated[int, typer.Option("--repeats", min=1, help="Timed rounds per block.")]
_Cpu = Annotated[list[int], typer.Option("--cpu", min=0, help="Pin to this CPU while measuring "
                                         "(repeatable; default: no pinning).")]
_NArchs = Annotated[int, typer.Option("--n-archs", min=1, help="Random architectures whose "
                                      "blocks are the candidates.")]
_PSeed = Annotated[int, typer.Option("--seed", min=0, help="Seed of the candidates and of the "
                                     "sampling.")]
_Serial = Annotated[str, typer.Option("--serial", help="--backend adb: the phone's serial (`adb "
                                      "devices`); default: the only one attached.")]
_PJson = Annotated[bool, typer.Option("--json", help="Print the written profile as JSON.")]
# ---- `nas hw validate` --------------------------------------------------------------------------
_VDevice = Annotated[str, typer.Option("--device", help="A reachable device: cpu-local, "
                                       "cpu-local-litert, cpu-local-executorch, or one "
                                       "profiled with --backend adb, adb-executorch or "
                                       "command.")]
_VSPACE = typer.Option(..., "--space", help="Search space to sample subnets from.")
_VN = Annotated[int, typer.Option("--n", min=2, help="Number of random subnets measured end to "
                                  "end.")]
_VBackend = Annotated[str, typer.Option("--backend", help="For cpu-local: which profile (torch, "
                                        "onnxruntime, command); default: the cpu-local alias.")]
_VThreads = Annotated[int, typer.Option("--threads", min=1, help="For cpu-local with --backend: "
                                        "the profile's thread count.")]
_VClock = Annotated[str, typer.Option("--clock", help="For cpu-local with --backend: the "
                                      "profile's clock (wall or cpu).")]
_VOut = Annotated[Path, typer.Option("--out", help="Folder for validate.json and validate.png.")]
_VSeed = Annotated[int, typer.Option("--seed", min=0, help="Seed of the subnet sample.")]
_VRepeats = Annotated[int, typer.Option("--repeats", min=0, help="Timed rounds per subnet (0: the "
                                        "profile's).")]
_Passes = Annotated[int, typer.Option("--passes", min=1, help="Independent measurement passes per "
                                      "subnet (2 or more: their self-agreement is reported).")]
_VJobs = Annotated[int, typer.Option("--jobs", min=1, help="litert/adb/executorch devices: "
                                     "conversion (lowering) processes.")]
_VCommand = Annotated[str, typer.Option("--command", help="For a device profiled with --backend "
                                        "command: the command template to run ({model}, "
                                        "{threads}). A command stored in a device folder never "
                                        "runs by itself.")]


def _check_choice(value: str, flag: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidInputError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")


def _check_runner_flags(clock: str, backend: str | None) -> None:
    """``--clock`` and ``--backend`` (None: not given) name a clock and a profiler backend."""
    from nasforge.hardware_models.profiling import BACKENDS
    from nasforge.hardware_models.profiling import CLOCKS

    _check_choice(clock, "--clock", CLOCKS)
    if backend is not None:
        _check_choice(backend, "--backend", BACKENDS)


def _pct(x: Any) -> str:
    return f"{100 * float(x):.1f}%" if isinstance(x, int | float) and math.isfinite(x) else "-"


def _device_note(p: DeviceProfile) -> str:
    """The ``error / factor`` cell of a device: derivation, held-out or calibration error."""
    if p.derived:
        return (f"x{p.derived['factor']} of {p.derived['from']} "
                f"[{p.derived['factor_low']}, {p.derived['factor_high']}]")
    if p.errors.get("holdout"):
        return f"held-out keys: median {_pct(p.errors['holdout']['median_rel_err'])}"
    if p.analytic:
        return f"fallback calib.: median {_pct(p.analytic['calibration']['median_rel_err'])}"
    return p.description if p.description.startswith("not profiled") else "-"


def _devices_table(profiles: list[DeviceProfile]) -> Table:
    t = Table(title="devices", show_lines=False)
    for col in ("device", "provenance", "hardware", "runtime", "spaces", "error / factor"):
        t.add_column(col, overflow="fold")
    for p in profiles:
        t.add_row(p.name, p.provenance, p.hardware, p.runtime, ", ".join(p.spaces),
                  _device_note(p))
    return t


def devices(
    as_json: bool = typer.Option(False, "--json", help="Print the profiles as JSON."),
) -> None:
    """List the devices with their hardware, runtime and provenance.

    Provenance says how each device's numbers were obtained: `measured` (a lookup table from
    real runs), `predicted` (per-block regressors fitted on measured data) or `derived`
    (another device's model times a documented factor). Tables you import with
    `nas hw import` and devices you profile with `nas profile` are listed too.
    """
    from nasforge.hardware_models import device_profiles

    profiles = device_profiles()
    if as_json:
        console.print_json(json.dumps([p.to_dict() for p in profiles]))
    else:
        console.print(_devices_table(profiles))


def hw_import(
    file: Path = typer.Argument(..., help="The table file to import."),
    fmt: str = typer.Option(..., "--format", help="Table format: nnmeter-hybrid (JSON {key: "
                            "ms}), ofa-yaml ({key: {count, mean, std}}), csv "
                            "(key,mean_ms,std_ms,count) or hat-csv (one of HAT's latency "
                            "datasets: 10 features, encoder/decoder ms per SubTransformer)."),
    device: str = typer.Option(..., "--device", "--name", help="Device name to create; a "
                               "shipped name (e.g. pixel6) is overlaid: its table answers "
                               "first."),
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

    if fmt == HAT_CSV:
        _import_hat(file, device, space)
        return
    profile = import_table(file, fmt, device, space, hardware=hardware, runtime=runtime)
    model = get_device(device)
    sp = get_space(space)
    rng = np.random.default_rng(0)
    keys = {k for _ in range(200) for k in model.keys(sp.sample(rng))}  # type: ignore[attr-defined]
    hit = sum(k in model.table for k in keys) / max(len(keys), 1)  # type: ignore[attr-defined]
    console.print(f"imported {profile.source} as device [bold]{device}[/bold] into "
                  f"{profile.folder}; {hit:.1%} of the block keys of 200 random {space} "
                  "architectures are in the table")


HAT_CSV = "hat-csv"


def _import_hat(file: Path, device: str, space: str) -> None:
    """``--format hat-csv``: fit, store, print the held-out error and the drift check (the
    library logs the drift warning)."""
    from nasforge.hardware_models import import_hat_csv

    profile, drift = import_hat_csv(file, device, space)
    err = profile.errors["holdout"]
    console.print(f"imported {profile.source} as device [bold]{device}[/bold] into "
                  f"{profile.folder}; latency = encoder + decoder ms ({device}:encoder, "
                  f"{device}:decoder for one part); held-out 20%: MAPE {_pct(err['mape'])}, "
                  f"Spearman {err['spearman']:.3f}; {drift.message('row order')}")


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
    from nasforge.search_spaces.io import load_arch

    arch = load_arch(arch_file, space=space or None)
    model = get_device(device)
    rows = model.explain(arch)
    total = model.predict(arch)
    fusion = getattr(model, "fusion", None)
    extra = float(fusion.per_network_ms) if fusion is not None else 0.0
    provs = {r.provenance for r in rows}
    overall = "derived" if "derived" in provs else "measured" if provs == {"measured"} else (
        "predicted" if provs == {"predicted"} else "measured+predicted")
    if as_json:
        console.print_json(json.dumps({
            "latency_ms": total, "device": device, "provenance": overall,
            "device_provenance": model.provenance, "arch_id": arch.arch_id,
            "blocks": [r.to_dict() for r in rows], "network_overhead_ms": extra}))
        return
    t = Table(title=f"{arch.arch_id} on {device}: {total:.3f} ms ({overall})")
    for col in ("#", "stage", "kind", "key", "ms", "provenance", "source"):
        t.add_column(col, justify="right" if col in ("#", "ms") else "left", overflow="fold")
    for i, r in enumerate(rows):
        t.add_row(str(i), r.block.stage, r.block.kind, r.key, f"{r.ms:.4f}", r.provenance,
                  r.source)
    if extra:
        t.add_row("", "", "network", "(per-network fusion term)", f"{extra:.4f}", "measured",
                  "fusion rule")
    console.print(t)


def profile(
    device: _PDevice = "cpu-local", space: str = _SPACE, backend: _PBackend = "torch",
    command: _PCommand = "", threads: _PThreads = 1, budget: _Budget = 400,
    seed_blocks: _SeedBlocks = 150, batch: _Batch = 16, time_budget: _TimeBudget = 0.0,
    n_networks: _Networks = 20, repeats: _PRepeats = 15, clock: _Clock = "wall",
    cpu: _Cpu = [], n_archs: _NArchs = 200, seed: _PSeed = 0,  # noqa: B006 (typer's default)
    serial: _Serial = "", jobs: _Jobs = 1, as_json: _PJson = False,
) -> None:
    """Measure a latency table for the blocks a space can produce on this machine or a phone.

    Blocks are sampled adaptively (nn-Meter): a seed set is measured, per-family regressors are
    fitted, then the blocks where a bootstrap ensemble disagrees most (weighted by how often
    they occur) are measured, up to --budget. A few whole networks fit the runtime's fusion
    rule. The table is appended to $NASFORGE_CACHE/devices/cpu-local-<backend>-t<threads>/ (a
    phone: devices/<name>/) as it grows, so an interrupted run resumes where it stopped.
    --backend litert converts each block to .tflite once (cached) and times it with LiteRT;
    --backend adb pushes the same files to a phone and times them with benchmark_model.
    """
    from nasforge.hardware_models.profiling import profile_device
    from nasforge.progress import configure_logging

    _check_runner_flags(clock, backend)
    check_number(time_budget, "--time-budget", low=0)
    configure_logging(-1 if as_json else 0)  # progress bar and the summary line (issue 12)
    if _lm_space(space, device, backend):
        from nasforge.hardware_models.profiling._lm import profile_lm
        from nasforge.search_spaces import get_space

        lm = profile_lm(get_space(space), n_archs=min(n_archs, LM_MAX_ARCHS), seed=seed,
                        repeats=min(repeats, LM_MAX_REPEATS))
        if as_json:
            console.print_json(json.dumps(lm.to_dict()))
        else:
            console.print(f"profiled {space} ({lm.description}) as device [bold]{lm.name}"
                          f"[/bold] into {lm.folder} (`--device cpu-local` with this space)")
        return
    written = profile_device(
        device, space, backend=backend, command=command, threads=threads, budget=budget,
        seed_blocks=seed_blocks, batch=batch, time_budget_s=time_budget or None,
        n_networks=n_networks, repeats=repeats, cpus=tuple(cpu) or None, clock=clock,
        n_archs=n_archs, seed=seed, serial=serial, workers=jobs)
    if as_json:
        console.print_json(json.dumps(written.to_dict()))


def hw_validate(
    device: _VDevice = "cpu-local", space: str = _VSPACE, n: _VN = 50, backend: _VBackend = "",
    threads: _VThreads = 1, clock: _VClock = "wall", out: _VOut = Path("hw_validate"),
    seed: _VSeed = 1, repeats: _VRepeats = 0, as_json: _Json = False, passes: _Passes = 2,
    jobs: _VJobs = 1, command: _VCommand = "",
) -> None:
    """Measure N random subnets end to end and compare with the device's latency model.

    Reports the share of subnets predicted within +-10 %, RMSE (ms), MAPE and Spearman rank
    correlation, and writes validate.json and a predicted-vs-measured scatter (validate.png).
    """
    from nasforge.hardware_models.profiling import validate_device
    from nasforge.progress import configure_logging

    _check_runner_flags(clock, backend or None)
    check_output_dir(out, "--out")
    configure_logging(-1 if as_json else 0)
    if _lm_space(space, device, backend or "torch"):
        from nasforge.hardware_models.profiling._lm import validate_lm
        from nasforge.search_spaces import get_space

        rep = validate_lm(get_space(space), n=n, seed=seed, repeats=repeats or LM_MAX_REPEATS,
                          passes=passes, out=out)
        summary = {k: v for k, v in rep.items() if k != "subnets"}
        if as_json:
            console.print_json(json.dumps(summary))
        else:
            for part in [k for k in rep if isinstance(rep[k], dict) and "mape" in rep[k]]:
                f = rep[part]
                console.print(f"{part}: {_pct(f['within_10pct'])} within +-10%, MAPE "
                              f"{_pct(f['mape'])}, RMSE {f['rmse_ms']:.4f} ms, Spearman "
                              f"{f['spearman']:.3f} ({n} subnets; {out}/validate.json)")
        return
    report = validate_device(device, space, n=n, backend=backend, threads=threads, clock=clock,
                             out=out, seed=seed, repeats=repeats, passes=passes, workers=jobs,
                             command=command)
    if as_json:
        console.print_json(json.dumps({k: v for k, v in report.items() if k != "subnets"}))


#: ``nas profile`` of a language-model space: at most this many subnets and timed rounds.
LM_MAX_ARCHS = 40
LM_MAX_REPEATS = 7


def _lm_space(space: str, device: str, backend: str) -> bool:
    """Whether ``space`` is a language space (profiled in two parts: prefill + decode, or
    HAT's encoder + decoder); refuses what that path cannot do (another device or backend)."""
    from nasforge.search_spaces import get_space

    if get_space(space).modality != "text":
        return False
    if device != "cpu-local" or backend != "torch":
        raise InvalidInputError(f"a language-model space ({space}) is profiled on --device "
                                f"cpu-local --backend torch only, got --device {device} "
                                f"--backend {backend}")
    return True


def register(app: typer.Typer) -> None:
    """Add ``devices``, ``profile`` and the ``hw`` group to the ``nas`` app."""
    app.command("devices")(devices)
    hw_app.command("import")(hw_import)
    hw_app.command("predict")(hw_predict)
    app.command("profile")(profile)
    hw_app.command("validate")(hw_validate)
    app.add_typer(hw_app, name="hw")
