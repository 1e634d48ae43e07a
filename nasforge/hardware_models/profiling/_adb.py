"""Phones over ``adb``: TFLite's ``benchmark_model`` on a real Android device.

The protocol is that of nn-Meter's phone tables (the ``pixel*`` / ``xiaomi11`` devices):
each model is converted to ``.tflite`` (fp32, cached on this machine by block key), pushed to
``/data/local/tmp/nasforge/``, and timed by ``benchmark_model`` pinned to a big core with
``taskset``: ``--num_threads=1 --warmup_runs=10 --num_runs=50 --use_xnnpack=true``. The
average of the timed runs (``Inference (avg)``, microseconds) is parsed from its output, with
the standard deviation of its ``count=... avg=... std=...`` line. As in the local protocol
(:mod:`~nasforge.hardware_models.profiling._protocol`), the models of a batch are run in ``passes``
interleaved rounds and the estimate is the median of the faster half of the passes, with the
spread kept.

Before anything is converted, :meth:`AdbRunner.check` finds ``adb`` on ``PATH``, the phone
(``adb devices``; ``--serial`` when several are attached) and ``benchmark_model`` on it; each
failure is one line that says what to do. This module has been tested against a stand-in
``adb`` that runs the pushed models locally with LiteRT and prints ``benchmark_model``'s
output format (``tests/hardware_models/fake_adb.py``), not against a physical phone.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import subprocess
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nasforge.errors import InvalidInputError
from nasforge.hardware_models.profiling._protocol import Measurement
from nasforge.hardware_models.profiling._protocol import robust_estimate
from nasforge.hardware_models.profiling.base import RUNNERS
from nasforge.hardware_models.profiling.base import Runner
from nasforge.hardware_models.profiling.base import RunnerOptions

if TYPE_CHECKING:
    from torch import nn

    from nasforge.hardware_models.profiling.base import Item

__all__ = ["BENCHMARK_BINARY", "AdbRunner", "parse_benchmark_output"]

logger = logging.getLogger(__name__)

#: where ``benchmark_model`` is expected on the phone (push it there once, ``chmod +x``).
BENCHMARK_BINARY = "/data/local/tmp/benchmark_model"
REMOTE_DIR = "/data/local/tmp/nasforge"
#: nn-Meter's settings for its TFLite CPU tables.
WARMUP_RUNS = 10
NUM_RUNS = 50
#: ``taskset`` mask of the core ``benchmark_model`` is pinned to (cpu 7: a big core on the
#: Snapdragon / Tensor phones of the shipped tables).
BIG_CORE_MASK = "80"

_AVG = re.compile(r"Inference \(avg\):\s*([0-9.eE+-]+)")
_STATS = re.compile(r"count=(\d+).*?avg=([0-9.eE+-]+)\s+std=([0-9.eE+-]+)")
_INSTALL_HINT = (
    "download the android_aarch64 benchmark_model of TFLite "
    "(https://ai.google.dev/edge/litert/models/measurement), then `adb push benchmark_model "
    f"{BENCHMARK_BINARY}` and `adb shell chmod +x {BENCHMARK_BINARY}`")


def parse_benchmark_output(text: str) -> tuple[float, float, int]:
    """``(avg_ms, std_ms, runs)`` of the timed runs in ``benchmark_model``'s output.

    Args:
        text: the tool's standard output (and error).

    Raises:
        InvalidInputError: no ``Inference (avg)`` line (the tool failed; its last line is
            quoted).
    """
    m = _AVG.search(text)
    if m is None:
        tail = ([ln for ln in text.strip().splitlines() if ln.strip()] or ["(no output)"])[-1]
        raise InvalidInputError(
            f"benchmark_model printed no 'Inference (avg)' timing: {tail.strip()[:200]}; run it "
            "by hand with `adb shell` to see why")
    avg_us = float(m.group(1))
    std_us, runs = math.nan, 0
    stats = _STATS.findall(text)
    if stats:  # the last count=... line is the timed runs (the first is the warm-up)
        runs, _, std = stats[-1]
        std_us, runs = float(std), int(runs)
    return avg_us / 1e3, std_us / 1e3, runs


@RUNNERS.register("adb")
class AdbRunner(Runner):
    """An Android phone over ``adb``, timed by ``benchmark_model`` (see the module docstring).

    Args:
        threads: ``--num_threads`` of ``benchmark_model``.
        serial: the phone (``adb devices``); empty: the only one attached.
        passes: interleaved rounds over a batch (median of the faster half).
        workers: conversion processes on this machine.
        binary: where ``benchmark_model`` is on the phone.
        core_mask: ``taskset`` mask pinning it (a big core); empty: no pinning.
        timeout_s: seconds one ``adb`` call may take.
    """

    name = "adb"
    #: the timing tool on the phone, where it is expected, and how to install it.
    tool = "benchmark_model"
    default_binary = BENCHMARK_BINARY
    install_hint = _INSTALL_HINT

    def __init__(self, threads: int = 1, *, serial: str = "", passes: int = 3,
                 workers: int = 1, binary: str = "",
                 core_mask: str = BIG_CORE_MASK, timeout_s: float = 600.0) -> None:
        super().__init__(threads, repeats=max(1, passes))
        self._setup_local()
        self.serial, self.passes, self.workers = serial, max(1, passes), workers
        self.binary, self.core_mask = binary or self.default_binary, core_mask
        self.timeout_s = timeout_s
        self._checked = False
        self._pushed: set[str] = set()

    def _setup_local(self) -> None:
        """This machine's side: check the converter is installed, open the file cache."""
        from nasforge.hardware_models.profiling._litert import TfliteCache
        from nasforge.hardware_models.profiling._litert import require_litert

        require_litert()
        self.cache = TfliteCache()

    @classmethod
    def from_options(cls, opts: RunnerOptions) -> Runner:
        return cls(opts.threads, serial=opts.serial, passes=min(opts.repeats, 3),
                   workers=opts.workers)

    # ---- reaching the phone ------------------------------------------------------------------
    def _adb(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        exe = shutil.which("adb")
        if exe is None:
            raise InvalidInputError(
                "`adb` is not on PATH: --backend adb needs Android platform-tools "
                "(https://developer.android.com/tools/releases/platform-tools); install it and "
                "check that `adb devices` lists your phone")
        argv = [exe, *(["-s", self.serial] if self.serial else []), *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise InvalidInputError(f"`{' '.join(argv[1:])}` failed: {e}; check the USB "
                                    "connection and `adb devices`") from None
        if check and done.returncode != 0:
            tail = ((done.stderr or done.stdout).strip().splitlines() or ["(no output)"])[-1]
            raise InvalidInputError(f"`adb {' '.join(args[:2])}` exited with "
                                    f"{done.returncode}: {tail}; check `adb devices`")
        return done

    def devices(self) -> list[str]:
        """Serials of the attached phones in the ``device`` state."""
        out = self._adb_plain("devices").stdout
        return [ln.split()[0] for ln in out.splitlines()[1:]
                if len(ln.split()) >= 2 and ln.split()[1] == "device"]

    def _adb_plain(self, *args: str) -> subprocess.CompletedProcess[str]:
        serial, self.serial = self.serial, ""
        try:
            return self._adb(*args)
        finally:
            self.serial = serial

    def check(self) -> None:
        """Find ``adb``, the phone and ``benchmark_model`` on it (once).

        Raises:
            InvalidInputError: no ``adb``; no phone, an unknown serial, or several phones and
                no ``--serial``; ``benchmark_model`` missing on the phone.
        """
        if self._checked:
            return
        found = self.devices()
        if not found:
            raise InvalidInputError(
                "no phone attached: `adb devices` lists none in the 'device' state; connect "
                "it by USB with USB debugging on and accept the prompt on the phone")
        if self.serial and self.serial not in found:
            raise InvalidInputError(
                f"no phone with serial {self.serial!r}: `adb devices` lists "
                f"{', '.join(found)}; pass one of those to --serial")
        if not self.serial:
            if len(found) > 1:
                raise InvalidInputError(
                    f"{len(found)} phones attached ({', '.join(found)}); pick one with --serial")
            self.serial = found[0]
        probe = self._adb("shell", f"ls {self.binary}", check=False)
        if probe.returncode != 0 or "No such file" in probe.stdout + probe.stderr:
            raise InvalidInputError(
                f"{self.tool} is not on phone {self.serial} at {self.binary}: "
                f"{self.install_hint}")
        self._adb("shell", f"mkdir -p {REMOTE_DIR}")
        self._checked = True

    # ---- the runner protocol -----------------------------------------------------------------
    def runtime(self) -> str:
        from nasforge.hardware_models.profiling._litert import litert_versions

        pin = f", pinned by taskset {self.core_mask}" if self.core_mask else ""
        return (f"TFLite benchmark_model over adb (phone {self.serial or '?'}), XNNPACK, fp32, "
                f"batch 1, {self.threads} thread{'s' if self.threads > 1 else ''}{pin}, "
                f"{WARMUP_RUNS} warm-up + {NUM_RUNS} runs x {self.passes} passes; converted by "
                f"litert-torch {litert_versions()['litert-torch']}")

    def config(self) -> dict[str, object]:
        return {"backend": self.name, "threads": self.threads, "clock": "wall",
                "serial": self.serial, "passes": self.passes, "binary": self.binary,
                "core_mask": self.core_mask}

    def _prepare(self, module: nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        raise NotImplementedError("AdbRunner measures on the phone")

    def local_files(self, jobs: Sequence[tuple[str, nn.Module, tuple[int, ...]]]) -> list[Path]:
        """The model file of each ``(key, module, shape)`` job, converted once (cached)."""
        from nasforge.hardware_models.profiling._litert import convert_many

        return convert_many(jobs, self.cache, workers=self.workers)

    def push(self, local: Path) -> str:
        """Push a converted file (once per run); returns its path on the phone."""
        remote = f"{REMOTE_DIR}/{local.name}"
        if remote not in self._pushed:
            self._adb("push", str(local), remote)
            self._pushed.add(remote)
        return remote

    def run_remote(self, remote: str) -> tuple[float, float, int]:
        """Time one pushed model with ``benchmark_model``: ``(avg_ms, std_ms, runs)``."""
        pin = f"taskset {self.core_mask} " if self.core_mask else ""
        cmd = (f"{pin}{self.binary} --graph={remote} --num_threads={self.threads} "
               f"--warmup_runs={WARMUP_RUNS} --num_runs={NUM_RUNS} --use_xnnpack=true")
        done = self._adb("shell", cmd, check=False)
        return parse_benchmark_output(done.stdout + "\n" + done.stderr)

    def measure(self, items: Sequence[Item],
                keys: Sequence[str] | None = None) -> list[Measurement]:
        self.check()
        names = list(keys) if keys is not None else [f"item{i}" for i in range(len(items))]
        jobs = [(k, m, s) for k, (m, s) in zip(names, items, strict=True)]
        files = self.local_files(jobs)
        remotes = [self.push(f) for f in files]
        samples: list[list[float]] = [[] for _ in remotes]
        for r in range(self.passes):
            for j in range(len(remotes)):
                i = (j + r) % len(remotes)
                ms, _std, _runs = self.run_remote(remotes[i])
                samples[i].append(ms)
        return [robust_estimate(s) for s in samples]
