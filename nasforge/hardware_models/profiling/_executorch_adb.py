"""Phones over ``adb`` with ExecuTorch: ``.pte`` programs timed by ``executor_runner``.

The ``adb`` backend's protocol (:mod:`~nasforge.hardware_models.profiling._adb`: find the
phone, push to ``/data/local/tmp/nasforge/``, pin a big core with ``taskset``, interleaved
passes, median of the faster half) with ExecuTorch in place of TFLite: each model is lowered to
``.pte`` with the XNNPACK partitioner on this machine (cached by key) and run on the phone by
ExecuTorch's ``executor_runner`` (built for Android with the XNNPACK backend)::

    executor_runner --model_path=M --num_executions=60 --cpu_threads=1

which prints one ``Iteration i of N: X ms`` line per run and ``Model executed successfully N
time(s) in X ms.``; the first :data:`WARMUP_RUNS` iterations are dropped and the rest averaged
(older runners print only the total, whose mean over all runs is then used). Tested against the
stand-in ``adb`` of ``tests/hardware_models/fake_adb.py``, not against a physical phone.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nasforge.errors import InvalidInputError
from nasforge.hardware_models.profiling._adb import NUM_RUNS
from nasforge.hardware_models.profiling._adb import WARMUP_RUNS
from nasforge.hardware_models.profiling._adb import AdbRunner
from nasforge.hardware_models.profiling.base import RUNNERS

if TYPE_CHECKING:
    from torch import nn

__all__ = ["EXECUTOR_RUNNER", "AdbExecutorchRunner", "parse_executor_runner_output"]

#: where ``executor_runner`` is expected on the phone (push it there once, ``chmod +x``).
EXECUTOR_RUNNER = "/data/local/tmp/executor_runner"

_ITER = re.compile(r"Iteration\s+(\d+)\s+of\s+(\d+):\s*([0-9.eE+-]+)\s*ms")
_TOTAL = re.compile(r"Model executed successfully\s+(\d+)\s+time\(s\)\s+in\s+([0-9.eE+-]+)\s*ms")
_INSTALL_HINT = (
    "build ExecuTorch's executor_runner for android-arm64-v8a with the XNNPACK backend "
    "(https://docs.pytorch.org/executorch/stable/using-executorch-building-from-source.html, "
    "-DEXECUTORCH_BUILD_XNNPACK=ON), then `adb push executor_runner "
    f"{EXECUTOR_RUNNER}` and `adb shell chmod +x {EXECUTOR_RUNNER}`")


def parse_executor_runner_output(text: str, warmup: int = WARMUP_RUNS) -> tuple[float, float, int]:
    """``(avg_ms, std_ms, runs)`` of the timed runs in ``executor_runner``'s output.

    Per-iteration lines after the first ``warmup`` are averaged (std over them); without
    per-iteration lines, the total of the success line over its run count (std NaN).

    Args:
        text: the tool's standard output and error.
        warmup: leading iterations left out.

    Raises:
        InvalidInputError: no success line (the tool failed; its last line is quoted).

    Example:
        >>> parse_executor_runner_output("Model executed successfully 4 time(s) in 10.0 ms.")
        (2.5, nan, 4)
    """
    total = _TOTAL.search(text)
    if total is None:
        tail = ([ln for ln in text.strip().splitlines() if ln.strip()] or ["(no output)"])[-1]
        raise InvalidInputError(
            f"executor_runner printed no 'Model executed successfully' line: "
            f"{tail.strip()[:200]}; run it by hand with `adb shell` to see why")
    iters = [float(ms) for i, _n, ms in _ITER.findall(text) if int(i) > warmup]
    if iters:
        std = statistics.stdev(iters) if len(iters) > 1 else math.nan
        return statistics.fmean(iters), std, len(iters)
    runs = int(total.group(1))
    return float(total.group(2)) / max(runs, 1), math.nan, runs


@RUNNERS.register("adb-executorch")
class AdbExecutorchRunner(AdbRunner):
    """An Android phone over ``adb``, timed by ExecuTorch's ``executor_runner``.

    Options as :class:`~nasforge.hardware_models.profiling._adb.AdbRunner` (``binary``: where
    ``executor_runner`` is on the phone); ``workers``: lowering processes on this machine.
    """

    name = "adb-executorch"
    tool = "executor_runner"
    default_binary = EXECUTOR_RUNNER
    install_hint = _INSTALL_HINT

    def _setup_local(self) -> None:
        from nasforge.hardware_models.profiling._executorch import PteCache
        from nasforge.hardware_models.profiling._executorch import require_executorch

        require_executorch()
        self.pte_cache = PteCache()

    def runtime(self) -> str:
        from nasforge.hardware_models.profiling._executorch import executorch_versions

        pin = f", pinned by taskset {self.core_mask}" if self.core_mask else ""
        return (f"ExecuTorch executor_runner over adb (phone {self.serial or '?'}), XNNPACK "
                f"delegate, fp32, batch 1, {self.threads} thread"
                f"{'s' if self.threads > 1 else ''}{pin}, {WARMUP_RUNS} warm-up + {NUM_RUNS} "
                f"runs x {self.passes} passes; lowered by executorch "
                f"{executorch_versions()['executorch']}")

    def local_files(self, jobs: Sequence[tuple[str, nn.Module, tuple[int, ...]]]) -> list[Path]:
        """The ``.pte`` of each ``(key, module, shape)`` job, lowered once (cached)."""
        from nasforge.hardware_models.profiling._executorch import lower_many

        return lower_many(jobs, self.pte_cache, workers=self.workers)

    def run_remote(self, remote: str) -> tuple[float, float, int]:
        """Time one pushed program with ``executor_runner``: ``(avg_ms, std_ms, runs)``."""
        pin = f"taskset {self.core_mask} " if self.core_mask else ""
        cmd = (f"{pin}{self.binary} --model_path={remote} "
               f"--num_executions={WARMUP_RUNS + NUM_RUNS} --cpu_threads={self.threads}")
        done = self._adb("shell", cmd, check=False)
        return parse_executor_runner_output(done.stdout + "\n" + done.stderr)
