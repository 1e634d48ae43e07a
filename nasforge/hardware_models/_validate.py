"""``nas hw validate``: a device's latency model against end-to-end measurements.

N random subnets (seeded) are built as static models and measured end to end on the device
with the backend, thread count and clock its profile was measured with (the ``torch`` /
``onnxruntime`` runners time them interleaved in small groups; an external-command device runs
its command on each exported model). The report compares them with ``model.predict``:

* ``within_10pct``: share of subnets with ``|predicted / measured - 1| <= 0.1``;
* ``rmse_ms``, ``mape``, ``spearman`` (rank correlation), ``kendall``;

and is written as ``validate.json`` and a predicted-vs-measured scatter ``validate.png`` (y = x
and +-10 % lines) into the output folder, with the load average seen during the run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn
from scipy import stats

from nasforge.errors import InvalidInputError
from nasforge.hardware_models._cpu import measure_networks
from nasforge.hardware_models._devices import get_device
from nasforge.hardware_models._local import LOCAL
from nasforge.hardware_models._local import load_profiled
from nasforge.hardware_models._local import local_device_name
from nasforge.hardware_models._local import resolve_local
from nasforge.hardware_models._runners import make_runner
from nasforge.search_spaces.registry import get_space

if TYPE_CHECKING:
    from rich.console import Console

    from nasforge.hardware_models.base import LatencyModel

__all__ = ["latency_metrics", "plot_validation", "validate_device"]

JSON_FILE = "validate.json"
PNG_FILE = "validate.png"


def latency_metrics(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """Share within +-10 % (and +-5 %), RMSE (ms), MAPE, Spearman and Kendall."""
    p = np.asarray(predicted, dtype=np.float64)
    m = np.asarray(measured, dtype=np.float64)
    rel = p / m - 1.0
    n = len(m)
    return {
        "n": n,
        "within_10pct": float(np.mean(np.abs(rel) <= 0.10)),
        "within_5pct": float(np.mean(np.abs(rel) <= 0.05)),
        "rmse_ms": float(np.sqrt(np.mean((p - m) ** 2))),
        "mape": float(np.mean(np.abs(rel))),
        "mean_rel_err": float(np.mean(rel)),
        "spearman": float(stats.spearmanr(p, m).statistic) if n > 1 else float("nan"),
        "kendall": float(stats.kendalltau(p, m).statistic) if n > 1 else float("nan"),
    }


def plot_validation(predicted: Sequence[float], measured: Sequence[float], path: Path,
                    title: str, device: str = "") -> None:
    """Scatter of predicted vs measured ms with the y = x and +-10 % lines (matplotlib Agg).

    Args:
        predicted: model latencies (ms).
        measured: end-to-end latencies (ms).
        path: the PNG to write.
        title: plot title (may hold a newline).
        device: device and backend, for the axis labels.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    m, p = np.asarray(measured), np.asarray(predicted)
    lo, hi = float(min(m.min(), p.min())) * 0.9, float(max(m.max(), p.max())) * 1.1
    xs = np.linspace(lo, hi, 2)
    fig, ax = plt.subplots(figsize=(5.5, 5.0), dpi=120)
    ax.plot(xs, xs, "k-", lw=1, label="y = x")
    ax.plot(xs, 1.1 * xs, "k--", lw=0.8, label="±10 %")
    ax.plot(xs, 0.9 * xs, "k--", lw=0.8)
    ax.scatter(m, p, s=14, alpha=0.8)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel(f"measured end to end (ms){', ' + device if device else ''}", fontsize=8)
    ax.set_ylabel(f"predicted by the latency model (ms){', ' + device if device else ''}",
                  fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _resolve(device: str, backend: str, threads: int, clock: str) -> LatencyModel:
    if device == LOCAL:
        folder = (resolve_local(local_device_name(backend, threads, clock)) if backend else
                  resolve_local(LOCAL))
        return load_profiled(folder)
    return get_device(device)


def validate_device(
    device: str,
    space: str,
    *,
    n: int = 50,
    backend: str = "",
    threads: int = 0,
    clock: str = "wall",
    out: Path = Path("hw_validate"),
    seed: int = 1,
    repeats: int = 0,
    group: int = 5,
    console: Console | None = None,
) -> dict[str, Any]:
    """Measure ``n`` random subnets end to end and compare with the device's model.

    Args:
        device: ``cpu-local`` or a device profiled through ``--backend command``.
        space: the space to sample subnets from.
        n: number of subnets.
        backend: for ``cpu-local``, which profile (``torch``, ``onnxruntime``, ``command``);
            empty: the ``cpu-local`` alias.
        threads: for ``cpu-local`` with ``backend``: the profile's thread count (0: 1).
        clock: for ``cpu-local`` with ``backend``: the profile's clock (``wall``, ``cpu``).
        out: folder for ``validate.json`` and ``validate.png`` (created).
        seed: seeds the subnet sample.
        repeats: timed rounds per subnet (0: the profile's).
        group: subnets timed together (interleaved).
        console: where the progress bar and the summary go (None: silent).

    Returns:
        The report (what ``validate.json`` holds).

    Raises:
        InvalidInputError: ``n < 2``, or a device that cannot be reached from this machine.
        MissingLatencyError: ``cpu-local`` not profiled yet.
    """
    if n < 2:
        raise InvalidInputError(f"--n must be >= 2 to compare rankings, got {n}")
    model = _resolve(device, backend, threads or 1, clock)
    prof = model.profile.extra.get("profiler")
    if not isinstance(prof, dict):
        raise InvalidInputError(
            f"device {device!r} cannot be reached from this machine ({model.provenance} model "
            f"without a profiler); validate cpu-local or a device profiled with `nas profile "
            "--backend command`")
    runner = make_runner(str(prof["backend"]), threads=int(prof.get("threads", 1)),
                         command=str(prof.get("command", "")),
                         repeats=repeats or int(prof.get("repeats", 15)),
                         clock=str(prof.get("clock", "wall")))
    sp = get_space(space)
    rng = np.random.default_rng(seed)
    archs = [sp.sample(rng) for _ in range(n)]
    predicted = model.predict_many(archs)
    load_before = os.getloadavg()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, disable=console is None) as bar:
        task = bar.add_task(f"{model.name}: {space} subnets end to end", total=n)
        got = measure_networks(runner, sp, archs, lambda k: bar.advance(task, k), group=group)
    load_after = os.getloadavg()
    measured = np.asarray([ms for ms, _ in got])
    metrics = latency_metrics(predicted.tolist(), measured.tolist())
    label = (f"{model.name} ({runner.name}, {runner.threads} thread"
             f"{'s' * (runner.threads > 1)}, {runner.clock} clock)")
    report: dict[str, Any] = {
        "device": model.name, "space": space, "backend": runner.name,
        "threads": runner.threads, "clock": runner.clock, "runtime": model.profile.runtime,
        "hardware": model.profile.hardware, "seed": seed, "repeats": runner.repeats,
        **metrics,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "subnets": [{"arch_id": a.arch_id, "arch": a.to_dict(), "measured_ms": float(m),
                     "measured_std_ms": float(s), "predicted_ms": float(p)}
                    for a, m, (_, s), p in zip(archs, measured, got, predicted, strict=True)],
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / JSON_FILE).write_text(json.dumps(report, indent=1, sort_keys=True,
                                            default=float) + "\n")
    plot_validation(predicted.tolist(), measured.tolist(), out / PNG_FILE,
                    f"{space} on {label}\n{metrics['within_10pct']:.0%} within ±10 %, "
                    f"RMSE {metrics['rmse_ms']:.2f} ms, Spearman {metrics['spearman']:.3f}, n={n}",
                    label)
    if console is not None:
        console.print(
            f"{label}, {space}, n={n}: {metrics['within_10pct']:.1%} within ±10 %, RMSE "
            f"{metrics['rmse_ms']:.3f} ms, MAPE {metrics['mape']:.1%}, Spearman "
            f"{metrics['spearman']:.3f} (load avg {load_before[0]:.2f} -> {load_after[0]:.2f}); "
            f"wrote {out / JSON_FILE} and {out / PNG_FILE}")
    return report
