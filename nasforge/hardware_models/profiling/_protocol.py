"""The measurement protocol shared by ``nas profile`` and ``nas hw validate``.

A latency measured once on a shared machine is a draw from a noisy distribution: on the
2-core machines this project runs on, two measurements of the same subnet agreed within
±10 % only 44 % of the time. Every number nasforge measures therefore comes from the same
protocol, and carries the spread it was measured with:

1. **pinned**: the process is pinned to the chosen CPUs (``os.sched_setaffinity``) and the
   runtime to its thread count (one by default, as the phone tables were measured);
2. **interleaved**: the items of a batch (blocks, or whole networks) are timed in rounds, one
   sample of each per round, the order rotating, so a burst of load hits every item alike
   instead of one item wholly;
3. **filtered and robust**: with one thread and the wall clock, a sample whose wall time
   exceeds its thread CPU time by more than 2 % (+5 us) was descheduled and is set aside;
   rounds continue (up to 4x) until each item has enough undisturbed samples. The estimate is
   the median of the faster half of the kept samples (contention only ever adds time). An
   item that never gets enough undisturbed samples (a whole network of tens of ms on a loaded
   machine is descheduled in nearly every sample; a 1 ms block slips between preemptions) is
   estimated from its samples' thread CPU time instead, which an undisturbed wall sample
   equals within the 2 % above, and :attr:`Measurement.basis` says ``cpu-fallback``. Before
   this fallback such a network kept its preempted wall time, while its blocks were timed
   undisturbed: on the 2-core machine at load ~6, whole LiteRT networks measured about 2.7x
   their blocks' sum (the 0.37x of issue 12; ``benchmarks/litert_block_sum.py`` compares
   both clocks);
4. **spread recorded**: each :class:`Measurement` carries the standard deviation of its kept
   samples and :attr:`Measurement.rel_spread` (their interquartile range over the estimate),
   the noise floor next to the number; :func:`self_agreement` compares two independent passes
   over the same items (how often repeated measurements agree within ±10 %).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError

__all__ = [
    "CLOCKS",
    "Measurement",
    "default_cpus",
    "measure_interleaved",
    "pinned",
    "robust_estimate",
    "self_agreement",
]

CLOCKS: tuple[str, ...] = ("wall", "cpu")
#: a wall-clock sample counts as undisturbed when wall <= cpu * (1 + tol) + slack.
PREEMPT_TOL = 0.02
PREEMPT_SLACK_NS = 5_000
#: at most this many times ``repeats`` rounds while collecting undisturbed samples.
MAX_EXTRA_ROUNDS = 4


@dataclass(frozen=True)
class Measurement:
    """One measured latency with its noise.

    Attributes:
        ms: the estimate in milliseconds.
        std: standard deviation of the kept samples (NaN when there is one).
        count: samples kept.
        rel_spread: interquartile range of the kept samples over ``ms`` (0 for one sample).
        basis: what ``ms`` is: ``wall`` (unfiltered wall clock), ``wall-undisturbed``
            (wall-clock samples that were not descheduled), ``cpu`` (the thread's CPU time,
            asked for), ``cpu-fallback`` (too few undisturbed wall samples: their CPU time),
            or empty (another measurement, e.g. a phone's ``benchmark_model``).
    """

    ms: float
    std: float
    count: int
    rel_spread: float = math.nan
    basis: str = ""


def robust_estimate(samples: Sequence[float], basis: str = "") -> Measurement:
    """Median of the faster half of ``samples``, with its spread (see the module docstring).

    Args:
        samples: latencies (ms).
        basis: what they are (:attr:`Measurement.basis`).
    """
    s = np.sort(np.asarray(samples, dtype=np.float64))
    kept = s[: max(1, math.ceil(len(s) / 2))]
    std = float(np.std(kept, ddof=1)) if len(kept) > 1 else math.nan
    med = float(np.median(kept))
    iqr = float(np.subtract(*np.quantile(kept, [0.75, 0.25]))) if len(kept) > 1 else 0.0
    return Measurement(med, std, len(kept), iqr / med if med > 0 else math.nan, basis)


def self_agreement(first: Sequence[float], second: Sequence[float],
                   tol: float = 0.10) -> dict[str, Any]:
    """How well two independent measurement passes over the same items agree.

    Args:
        first: latencies of pass one (ms).
        second: latencies of pass two, same items in the same order.
        tol: the agreement band (0.10: ±10 %).

    Returns:
        ``within_10pct`` (share of items with ``|first / second - 1| <= tol``),
        ``median_rel_diff`` and ``p90_rel_diff`` of ``|first / second - 1|``, and ``n``.
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    rel = np.abs(a / b - 1.0)
    key = f"within_{round(tol * 100)}pct"
    if len(rel) == 0:
        return {"n": 0, key: math.nan, "median_rel_diff": math.nan, "p90_rel_diff": math.nan}
    return {"n": len(rel), key: float(np.mean(rel <= tol)),
            "median_rel_diff": float(np.median(rel)),
            "p90_rel_diff": float(np.quantile(rel, 0.9))}


def default_cpus(threads: int) -> tuple[int, ...] | None:
    """The last ``threads`` CPUs this process may run on (None where affinity is unknown)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    usable = sorted(os.sched_getaffinity(0))
    return tuple(usable[-threads:]) if len(usable) >= threads else None


@contextlib.contextmanager
def pinned(cpus: tuple[int, ...] | None) -> Iterator[None]:
    """Pin this process to ``cpus`` for the block (no-op for None); restore afterwards.

    Raises:
        InvalidInputError: a CPU this process may not run on.
    """
    if not cpus or not hasattr(os, "sched_setaffinity"):
        yield
        return
    old = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as e:
        raise InvalidInputError(f"cannot pin to CPUs {cpus}: {e.strerror}; this machine has CPUs "
                                f"{sorted(old)}; pass --cpu with one of those") from None
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


def measure_interleaved(calls: Sequence[Callable[[], object]], *, warmup: int, repeats: int,
                        sample_ms: float, clock: str, filtered: bool) -> list[Measurement]:
    """Time each zero-argument call by the protocol (steps 2-4 of the module docstring).

    Args:
        calls: one call per item; each runs the item once.
        warmup: untimed calls per item first.
        repeats: timed rounds (more, up to 4x, while collecting undisturbed samples).
        sample_ms: a sample is the mean of enough back-to-back calls to last about this long.
        clock: ``wall`` (``perf_counter``) or ``cpu`` (the thread's CPU time).
        filtered: set aside samples that were descheduled (wall clock, one thread only);
            an item left with too few undisturbed samples is estimated from CPU time.

    Returns:
        One :class:`Measurement` per call, in order.
    """
    now = time.thread_time_ns if clock == "cpu" else time.perf_counter_ns
    inner = []
    for c in calls:
        for _ in range(warmup):
            c()
        t0 = now()
        c()
        one = max(now() - t0, 1)
        inner.append(int(min(max(sample_ms * 1e6 / one, 1), 200)))
    clean: list[list[float]] = [[] for _ in calls]
    every: list[list[float]] = [[] for _ in calls]
    cpu_every: list[list[float]] = [[] for _ in calls]
    n = len(calls)
    want = max(3, math.ceil(repeats / 2))
    for r in range(repeats * (MAX_EXTRA_ROUNDS if filtered else 1)):
        if r >= repeats and all(len(c) >= want for c in clean):
            break
        for j in range(n):
            i = (j + r) % n
            if r >= repeats and len(clean[i]) >= want:
                continue
            c, k = calls[i], inner[i]
            w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            for _ in range(k):
                c()
            cpu, wall = time.thread_time_ns() - c0, time.perf_counter_ns() - w0
            ms = (cpu if clock == "cpu" else wall) / k / 1e6
            every[i].append(ms)
            cpu_every[i].append(cpu / k / 1e6)
            if filtered and wall <= cpu * (1 + PREEMPT_TOL) + PREEMPT_SLACK_NS:
                clean[i].append(ms)
    out = []
    for kept, wall_or_cpu, cpu_only in zip(clean, every, cpu_every, strict=True):
        if not filtered:
            out.append(robust_estimate(wall_or_cpu, clock))
        elif len(kept) >= want:
            out.append(robust_estimate(kept, "wall-undisturbed"))
        else:  # descheduled in most samples: their CPU time (see the module docstring)
            out.append(robust_estimate(cpu_only, "cpu-fallback"))
    return out
