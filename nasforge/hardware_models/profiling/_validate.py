"""``nas hw validate``: a device's latency model against end-to-end measurements.

N random subnets (seeded) are built as static models and measured end to end on the device
with the backend, thread count and clock its profile was measured with, by the shared protocol
(:mod:`~nasforge.hardware_models.profiling._protocol`: interleaved in small groups, pinned, robust
statistic; ``litert`` and ``adb`` convert each subnet to ``.tflite`` once, cached). Every
subnet is measured in ``passes`` independent passes (default 2); the measured latency is their
mean, and how well the passes agree is the noise floor the model is judged against. The report
compares the measurements with ``model.predict``:

* ``within_10pct``: share of subnets with ``|predicted / measured - 1| <= 0.1``;
* ``rmse_ms``, ``mape``, ``spearman`` (rank correlation), ``kendall``;
* ``self_agreement``: share of subnets whose two passes agree within ±10 %, and the median and
  90th percentile of ``|pass1 / pass2 - 1|`` (where the machine's own repeats disagree by more
  than 10 %, no model can be within ±10 % of them);
* ``measurement_basis``: how many subnet measurements (over all passes) are undisturbed
  wall-clock samples, and how many fell back to CPU time because the machine descheduled
  nearly every sample (:mod:`~nasforge.hardware_models.profiling._protocol`); ``device``:
  timed by the device itself (``benchmark_model``, a command);

and is written as ``validate.json`` and a predicted-vs-measured scatter ``validate.png`` (y = x
and +-10 % lines) into the output folder, with the load average seen during the run.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
from scipy import stats

from nasforge._lock import lock_run_folder
from nasforge.errors import InvalidInputError
from nasforge.hardware_models._devices import get_device
from nasforge.hardware_models._local import LOCAL
from nasforge.hardware_models._local import load_profiled
from nasforge.hardware_models._local import local_device_name
from nasforge.hardware_models._local import resolve_local
from nasforge.hardware_models.profiling._protocol import self_agreement
from nasforge.hardware_models.profiling._steps import measure_networks
from nasforge.hardware_models.profiling.base import Runner
from nasforge.hardware_models.profiling.base import make_runner
from nasforge.progress import ProgressBar
from nasforge.search_spaces.registry import get_space

if TYPE_CHECKING:
    from nasforge.hardware_models.base import LatencyModel
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["latency_metrics", "plot_validation", "validate_device"]

logger = logging.getLogger(__name__)

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


def _finite_mean(xs: Sequence[float]) -> float:
    f = [x for x in xs if np.isfinite(x)]
    return float(np.mean(f)) if f else float("nan")


@dataclass(frozen=True)
class _Passes:
    """The end-to-end measurements of every pass, in the subnets' order."""

    runs: list[list[tuple[float, float]]]
    bases: list[str]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    @property
    def measured(self) -> np.ndarray:
        """Mean latency of each subnet over the passes."""
        return np.mean([[ms for ms, _ in r] for r in self.runs], axis=0)

    @property
    def spread(self) -> np.ndarray:
        """Mean (finite) spread of each subnet over the passes."""
        return np.asarray([_finite_mean([r[i][1] for r in self.runs])
                           for i in range(len(self.runs[0]))])


def validate_device(
    device: str, space: str, *, n: int = 50, backend: str = "", threads: int = 0,
    clock: str = "wall", out: Path = Path("hw_validate"), seed: int = 1, repeats: int = 0,
    group: int = 5, passes: int = 2, workers: int = 1, command: str = "",
) -> dict[str, Any]:
    """Measure ``n`` random subnets end to end and compare with the device's model.

    Args:
        device: ``cpu-local``, ``cpu-local-litert``, or a device profiled through
            ``--backend adb`` or ``--backend command``.
        space: the space to sample subnets from.
        n: number of subnets.
        backend: for ``cpu-local``, which profile (``torch``, ``onnxruntime``, ``litert``,
            ``command``); empty: the ``cpu-local`` alias.
        threads: for ``cpu-local`` with ``backend``: the profile's thread count (0: 1).
        clock: for ``cpu-local`` with ``backend``: the profile's clock (``wall``, ``cpu``).
        out: folder for ``validate.json`` and ``validate.png`` (created).
        seed: seeds the subnet sample.
        repeats: timed rounds per subnet (0: the profile's).
        group: subnets timed together (interleaved).
        passes: independent measurement passes per subnet (>= 2 reports self-agreement).
        workers: ``litert`` / ``adb``: conversion processes.
        command: for a device profiled with the ``command`` backend, the command template to
            run, as the user gives it on the command line. The template stored in the device's
            ``profile.json`` is never run by itself: a device folder from someone else must
            not be executable configuration.

    Returns:
        The report (what ``validate.json`` holds).

    Raises:
        InvalidInputError: ``n < 2``, ``passes < 1``, a device that cannot be reached
            from this machine (no adb, no phone, no benchmark_model), or a ``command`` device
            without ``command``.
        MissingLatencyError: ``cpu-local`` not profiled yet.
    """
    if n < 2 or passes < 1:
        raise InvalidInputError(f"--n must be >= 2 to compare rankings and --passes >= 1, got "
                                f"{n=}, {passes=}")
    model = _resolve(device, backend, threads or 1, clock)
    runner = _profile_runner(model, device, command=command, repeats=repeats, workers=workers)
    sp = get_space(space)
    rng = np.random.default_rng(seed)
    archs = [sp.sample(rng) for _ in range(n)]
    predicted = model.predict_many(archs)
    measured = _measure_passes(runner, sp, archs, passes, group,
                               f"{model.name}: {space} subnets end to end")
    report = _report(model, runner, space, seed, archs, predicted, measured)
    with lock_run_folder(Path(out), "hw validate"):  # validate.json and .png of one run
        _write(Path(out), report, _label(model, runner))
    return report


def _profile_runner(model: LatencyModel, device: str, *, command: str, repeats: int,
                    workers: int) -> Runner:
    """The runner the device's profile was measured with, checked to reach the device."""
    prof = model.profile.extra.get("profiler")
    if not isinstance(prof, dict):
        raise InvalidInputError(
            f"device {device!r} cannot be reached from this machine ({model.provenance} model "
            f"without a profiler); validate cpu-local or a device profiled with `nas profile "
            "--backend adb` or `--backend command`")
    if str(prof.get("backend")) == "command" and not command:
        raise InvalidInputError(
            f"device {device!r} is measured through an external command, and nasforge never "
            "runs a command stored in a device folder; give it on the command line: --command "
            f"{str(prof.get('command', 'TEMPLATE {model}'))!r} (check it first)")
    runner = make_runner(str(prof["backend"]), threads=int(prof.get("threads", 1)),
                         command=command,
                         repeats=repeats or int(prof.get("repeats", 15)),
                         clock=str(prof.get("clock", "wall")), workers=workers,
                         serial=str(prof.get("serial") or ""))
    runner.check()
    return runner


def _measure_passes(runner: Runner, sp: SearchSpace, archs: list[Arch], passes: int,
                    group: int, title: str) -> _Passes:
    """Every subnet end to end, ``passes`` times; odd passes walk the subnets in reverse."""
    load_before = os.getloadavg()
    runs: list[list[tuple[float, float]]] = []
    bases: list[str] = []
    with ProgressBar(title, total=len(archs) * passes) as bar:
        for p in range(passes):  # odd passes walk the subnets in reverse: drifts do not align
            order = archs if p % 2 == 0 else archs[::-1]
            got = measure_networks(runner, sp, order, bar.advance, group=group, bases=bases)
            runs.append(got if p % 2 == 0 else got[::-1])
    return _Passes(runs, bases, load_before, os.getloadavg())


def _label(model: LatencyModel, runner: Runner) -> str:
    return (f"{model.name} ({runner.name}, {runner.threads} thread"
            f"{'s' * (runner.threads > 1)}, {runner.clock} clock)")


def _report(model: LatencyModel, runner: Runner, space: str, seed: int, archs: list[Arch],
            predicted: np.ndarray, m: _Passes) -> dict[str, Any]:
    """What ``validate.json`` holds: the metrics, the noise floor, every subnet."""
    measured, spread = m.measured, m.spread
    rel_spread = [s / ms for s, ms in zip(spread, measured, strict=True) if np.isfinite(s)]
    agreement = (self_agreement([ms for ms, _ in m.runs[0]], [ms for ms, _ in m.runs[1]])
                 if len(m.runs) >= 2 else {})
    return {
        "device": model.name, "space": space, "backend": runner.name,
        "threads": runner.threads, "clock": runner.clock, "runtime": model.profile.runtime,
        "hardware": model.profile.hardware, "seed": seed, "repeats": runner.repeats,
        **latency_metrics(predicted.tolist(), measured.tolist()),
        "passes": len(m.runs),
        "self_agreement": agreement,
        "noise_floor_median_rel_std": float(np.median(rel_spread)) if rel_spread else None,
        "measurement_basis": dict(sorted(Counter(b or "device" for b in m.bases).items())),
        "load_avg_before": [round(x, 2) for x in m.load_before],
        "load_avg_after": [round(x, 2) for x in m.load_after],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "subnets": [{"arch_id": a.arch_id, "arch": a.to_dict(), "measured_ms": float(ms),
                     "measured_std_ms": float(sd), "passes_ms": [r[i][0] for r in m.runs],
                     "predicted_ms": float(p)}
                    for i, (a, ms, sd, p) in enumerate(zip(archs, measured, spread, predicted,
                                                           strict=True))],
    }


def _write(out: Path, report: dict[str, Any], label: str) -> None:
    """``validate.json``, ``validate.png`` and the summary line."""
    out.mkdir(parents=True, exist_ok=True)
    (out / JSON_FILE).write_text(json.dumps(report, indent=1, sort_keys=True,
                                            default=float) + "\n")
    predicted = [s["predicted_ms"] for s in report["subnets"]]
    measured = [s["measured_ms"] for s in report["subnets"]]
    space, n, agreement = report["space"], report["n"], report["self_agreement"]
    plot_validation(predicted, measured, out / PNG_FILE,
                    f"{space} on {label}\n{report['within_10pct']:.0%} within ±10 %, "
                    f"RMSE {report['rmse_ms']:.2f} ms, Spearman {report['spearman']:.3f}, n={n}",
                    label)
    logger.info(
        "%s, %s, n=%d: %.1f%% within ±10 %%, RMSE %.3f ms, MAPE %.1f%%, Spearman %.3f; "
        "passes agree within ±10 %% for %s (load avg %.2f -> %.2f); wrote %s and %s",
        label, space, n, 100 * report["within_10pct"], report["rmse_ms"],
        100 * report["mape"], report["spearman"],
        f"{agreement['within_10pct']:.0%}" if agreement else "-",
        report["load_avg_before"][0], report["load_avg_after"][0], out / JSON_FILE,
        out / PNG_FILE)
