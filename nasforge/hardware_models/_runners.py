"""Profiler backends: how a module's latency is measured on a reachable device.

* ``torch``: eager PyTorch, ``torch.inference_mode()``, a pinned intra-op thread count;
* ``onnxruntime``: the module exported to ONNX (opset 17, the TorchScript exporter), run by an
  ``InferenceSession`` (CPU provider, all graph optimisations, pinned intra-op threads, one
  inter-op thread);
* ``command``: an external command template that receives the exported ONNX file as
  ``{model}`` (and the thread count as ``{threads}``) and prints a latency in ms as its last
  line -- how a phone over ``adb`` plugs in.

Timing (``torch`` and ``onnxruntime``): batch 1, fp32, a random input of the module's shape;
``warmup`` calls, then ``repeats`` rounds in which every module of a batch is timed in turn
(interleaved, the order rotating each round, so a burst of load from other processes hits all
modules alike). A sample is the mean of enough back-to-back calls to last about
``sample_ms``. Contention only ever *adds* time, so the slower half of the samples is discarded
as outliers and the estimate is the median of the faster half; ``std`` is the spread of the
kept samples.

Preemption filter (``wall`` clock, one thread): each sample also reads the thread's CPU time;
a sample whose wall time exceeds its CPU time by more than 2 % (+5 us) was descheduled by
another process for part of it and is discarded. Rounds continue (up to 4x ``repeats``) until
every module has ``ceil(repeats / 2)`` undisturbed samples; the estimate is then taken over those
only (else over all samples). On an idle machine nearly every sample is undisturbed and this is
the plain median; on a loaded one it is the latency of the runs nobody interrupted.

Clocks: ``wall`` (default, ``time.perf_counter_ns``) is latency as a user sees it. ``cpu``
(``time.thread_time_ns``, the calling thread's CPU time) leaves out the time the thread waits
while other processes hold the core; with one intra-op thread (torch and onnxruntime then
compute in the calling thread) it is the latency the same code has on an idle machine, up to
cache pollution. Use it on a shared, loaded machine; it is refused for more than one thread.
"""

from __future__ import annotations

import abc
import contextlib
import io
import math
import os
import shlex
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nasforge.errors import InvalidInputError

__all__ = [
    "BACKENDS",
    "CLOCKS",
    "CommandRunner",
    "Measurement",
    "OnnxRuntimeRunner",
    "Runner",
    "TorchRunner",
    "export_onnx",
    "make_runner",
    "robust_estimate",
]

BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "command")
#: a wall-clock sample counts as undisturbed when wall <= cpu * (1 + tol) + slack.
PREEMPT_TOL = 0.02
PREEMPT_SLACK_NS = 5_000
#: at most this many times ``repeats`` rounds while collecting undisturbed samples.
MAX_EXTRA_ROUNDS = 4
CLOCKS: tuple[str, ...] = ("wall", "cpu")
OPSET = 17

#: a module to time and the shape of its input, (1, C, H, W).
Item = tuple[nn.Module, tuple[int, ...]]


@dataclass(frozen=True)
class Measurement:
    """One measured latency.

    Attributes:
        ms: the estimate in milliseconds.
        std: spread of the kept samples (NaN when there is one).
        count: samples kept.
    """

    ms: float
    std: float
    count: int


def robust_estimate(samples: Sequence[float]) -> Measurement:
    """Median of the faster half of ``samples`` (see the module docstring)."""
    s = np.sort(np.asarray(samples, dtype=np.float64))
    kept = s[: max(1, math.ceil(len(s) / 2))]
    std = float(np.std(kept, ddof=1)) if len(kept) > 1 else math.nan
    return Measurement(float(np.median(kept)), std, len(kept))


def export_onnx(module: nn.Module, shape: tuple[int, ...], path: Path | io.BytesIO) -> None:
    """Export ``module`` (eval mode, fixed input ``shape``) to ONNX opset 17.

    Args:
        module: maps (1, C, H, W) to its output.
        shape: the input shape.
        path: file or buffer to write.
    """
    module = module.eval()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # the TorchScript exporter writes to a buffer too; its stub only names paths
        torch.onnx.export(module, (x,), path,  # type: ignore[arg-type]
                          opset_version=OPSET, input_names=["x"], output_names=["y"],
                          dynamo=False)


@contextlib.contextmanager
def _affinity(cpus: tuple[int, ...] | None) -> Iterator[None]:
    if not cpus or not hasattr(os, "sched_setaffinity"):
        yield
        return
    old = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as e:
        raise InvalidInputError(f"cannot pin to CPUs {cpus}: {e.strerror}; this machine has CPUs "
                                f"{sorted(old)}") from None
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


class Runner(abc.ABC):
    """A profiler backend.

    Call protocol: :meth:`measure` takes a batch of ``(module, input shape)`` pairs and returns
    one :class:`Measurement` per pair, in order. :meth:`runtime` describes the runtime for the
    device profile and :meth:`config` is what a later run needs to rebuild the runner.

    Args:
        threads: intra-op threads (pinned).
        warmup: untimed calls per module.
        repeats: timed rounds.
        sample_ms: target duration of one sample.
        cpus: CPUs to pin the process to while measuring (``os.sched_setaffinity``), or None.
        clock: ``wall`` or ``cpu`` (one thread only), see the module docstring.
    """

    name: str = ""

    def __init__(self, threads: int = 1, *, warmup: int = 3, repeats: int = 15,
                 sample_ms: float = 1.0, cpus: tuple[int, ...] | None = None,
                 clock: str = "wall") -> None:
        if threads < 1 or warmup < 0 or repeats < 1:
            raise InvalidInputError(
                f"threads and repeats must be >= 1 and warmup >= 0, but got {threads=}, "
                f"{repeats=}, {warmup=}")
        if clock not in CLOCKS or (clock == "cpu" and threads != 1):
            raise InvalidInputError(
                f"clock must be one of {', '.join(CLOCKS)}, and cpu needs --threads 1 (other "
                f"threads' CPU time is not counted), but got {clock=}, {threads=}")
        self.clock = clock
        self._now = time.thread_time_ns if clock == "cpu" else time.perf_counter_ns
        self.threads, self.warmup, self.repeats = threads, warmup, repeats
        self.sample_ms, self.cpus = sample_ms, cpus

    @abc.abstractmethod
    def runtime(self) -> str:
        """Runtime description (``torch 2.13 eager fp32, batch 1, 1 thread``)."""

    def config(self) -> dict[str, object]:
        """What :func:`make_runner` needs to rebuild this runner."""
        return {"backend": self.name, "threads": self.threads, "clock": self.clock}

    @abc.abstractmethod
    def _prepare(self, module: nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        """A zero-argument call that runs ``module`` once on a fixed input."""

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        yield

    def measure(self, items: Sequence[Item]) -> list[Measurement]:
        """Time each module (interleaved rounds, see the module docstring)."""
        with _affinity(self.cpus), self._session():
            calls = [self._prepare(m, s) for m, s in items]
            inner = []
            for c in calls:
                for _ in range(self.warmup):
                    c()
                t0 = self._now()
                c()
                one = max(self._now() - t0, 1)
                inner.append(int(min(max(self.sample_ms * 1e6 / one, 1), 200)))
            filtered = self.clock == "wall" and self.threads == 1
            clean: list[list[float]] = [[] for _ in calls]
            every: list[list[float]] = [[] for _ in calls]
            n = len(calls)
            want = max(3, math.ceil(self.repeats / 2))
            for r in range(self.repeats * (MAX_EXTRA_ROUNDS if filtered else 1)):
                if r >= self.repeats and all(len(c) >= want for c in clean):
                    break
                for j in range(n):
                    i = (j + r) % n
                    if r >= self.repeats and len(clean[i]) >= want:
                        continue
                    c, k = calls[i], inner[i]
                    w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                    for _ in range(k):
                        c()
                    cpu, wall = time.thread_time_ns() - c0, time.perf_counter_ns() - w0
                    ms = (cpu if self.clock == "cpu" else wall) / k / 1e6
                    every[i].append(ms)
                    if filtered and wall <= cpu * (1 + PREEMPT_TOL) + PREEMPT_SLACK_NS:
                        clean[i].append(ms)
        return [robust_estimate(c if len(c) >= want else e) for c, e in zip(clean, every,
                                                                            strict=True)]


class TorchRunner(Runner):
    """Eager PyTorch with ``torch.set_num_threads(threads)`` (restored afterwards)."""

    name = "torch"

    def runtime(self) -> str:
        return (f"torch {torch.__version__} eager, fp32, batch 1, {self.threads} "
                f"thread{'s' if self.threads > 1 else ''}, {self.clock} clock")

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        old = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                yield
        finally:
            torch.set_num_threads(old)

    def _prepare(self, module: nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        module = module.eval()
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        return lambda: module(x)


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime, CPU provider, ``intra_op_num_threads = threads``."""

    name = "onnxruntime"

    def runtime(self) -> str:
        import onnxruntime as ort

        return (f"onnxruntime {ort.__version__} CPU (ONNX opset {OPSET}, all graph "
                f"optimisations), fp32, batch 1, {self.threads} thread"
                f"{'s' if self.threads > 1 else ''}, {self.clock} clock")

    def _prepare(self, module: nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        import onnxruntime as ort

        buf = io.BytesIO()
        export_onnx(module, shape, buf)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
        feed = {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
        return lambda: sess.run(None, feed)


class CommandRunner(Runner):
    """An external command: ``template`` with ``{model}`` (ONNX file) and ``{threads}``.

    The command does its own warm-up and repeats and prints the latency in ms as the last line
    of its standard output. It is split like a shell line (``shlex``) but run without a shell.

    Args:
        template: e.g. ``"python run_onnx.py {model} --threads {threads}"`` or
            ``"adb_bench.sh {model}"``.
        timeout_s: seconds one call may take.
    """

    name = "command"

    def __init__(self, template: str, threads: int = 1, *, timeout_s: float = 600.0) -> None:
        super().__init__(threads)
        if "{model}" not in template:
            raise InvalidInputError(
                f"a command template must contain {{model}} (the ONNX file), got {template!r}; "
                "e.g. --command 'python bench.py {model}'")
        try:
            self.argv = shlex.split(template)
        except ValueError as e:
            raise InvalidInputError(f"cannot split command template {template!r}: {e}") from None
        self.template, self.timeout_s = template, timeout_s

    def runtime(self) -> str:
        return f"external command `{self.template}` (ONNX opset {OPSET}, fp32, batch 1)"

    def config(self) -> dict[str, object]:
        return {**super().config(), "command": self.template}

    def _prepare(self, module: nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        raise NotImplementedError("CommandRunner measures in the external process")

    def run_file(self, model: Path) -> float:
        """Run the command on one ONNX file and parse its latency.

        Raises:
            InvalidInputError: the command fails, times out, or its last line is not a
                positive number of milliseconds.
        """
        argv = [a.format(model=str(model), threads=self.threads) for a in self.argv]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise InvalidInputError(f"command {argv[0]!r} could not run: {e}; check --command"
                                    ) from None
        lines = [ln.strip() for ln in done.stdout.splitlines() if ln.strip()]
        if done.returncode != 0 or not lines:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise InvalidInputError(
                f"command `{' '.join(argv)}` exited with {done.returncode} and printed no "
                f"latency: {tail}; it must print the latency in ms as its last line")
        try:
            ms = float(lines[-1].split()[0])
        except ValueError:
            ms = math.nan
        if not math.isfinite(ms) or ms <= 0:
            raise InvalidInputError(
                f"command `{' '.join(argv)}` printed {lines[-1]!r} as its last line; it must be a "
                "positive latency in ms (e.g. `1.234`)")
        return ms

    def measure(self, items: Sequence[Item]) -> list[Measurement]:
        out = []
        with tempfile.TemporaryDirectory(prefix="nasforge-cmd-") as tmp:
            path = Path(tmp) / "model.onnx"
            for module, shape in items:
                export_onnx(module, shape, path)
                out.append(Measurement(self.run_file(path), math.nan, 1))
        return out


def make_runner(backend: str, *, threads: int = 1, command: str = "", repeats: int = 15,
                cpus: tuple[int, ...] | None = None, clock: str = "wall") -> Runner:
    """The runner of a backend name.

    Raises:
        InvalidInputError: unknown backend, or ``command`` without a template.
    """
    if backend == "torch":
        return TorchRunner(threads, repeats=repeats, cpus=cpus, clock=clock)
    if backend == "onnxruntime":
        return OnnxRuntimeRunner(threads, repeats=repeats, cpus=cpus, clock=clock)
    if backend == "command":
        if not command:
            raise InvalidInputError("--backend command needs --command 'TEMPLATE {model}'")
        return CommandRunner(command, threads)
    raise InvalidInputError(f"unknown profiler backend {backend!r}; use one of "
                            f"{', '.join(BACKENDS)}")
