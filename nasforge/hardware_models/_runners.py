"""Profiler backends: how a module's latency is measured on a reachable device.

* ``torch``: eager PyTorch, ``torch.inference_mode()``, a pinned intra-op thread count;
* ``onnxruntime``: the module exported to ONNX (opset 17, the TorchScript exporter), run by an
  ``InferenceSession`` (CPU provider, all graph optimisations, pinned intra-op threads, one
  inter-op thread);
* ``litert``: the module converted to ``.tflite`` (``litert-torch``, cached on disk by block
  key, conversions in parallel processes) and run by the LiteRT interpreter with XNNPACK, fp32
  -- the phone's own runtime, on this CPU (:mod:`~nasforge.hardware_models._litert`);
* ``adb``: the same ``.tflite`` files pushed to an Android phone and timed by TFLite's
  ``benchmark_model`` (:mod:`~nasforge.hardware_models._adb`);
* ``command``: an external command template that receives the exported ONNX file as
  ``{model}`` (and the thread count as ``{threads}``) and prints a latency in ms as its last
  line.

Timing (``torch``, ``onnxruntime``, ``litert``): batch 1, fp32, a random input of the module's
shape, by the shared protocol of :mod:`~nasforge.hardware_models._protocol` (pinned,
interleaved rounds, preemption filter, median of the faster half, spread recorded).

Clocks: ``wall`` (default, ``time.perf_counter_ns``) is latency as a user sees it. ``cpu``
(``time.thread_time_ns``, the calling thread's CPU time) leaves out the time the thread waits
while other processes hold the core; with one thread (torch, onnxruntime and LiteRT/XNNPACK then
compute in the calling thread) it is the latency the same code has on an idle machine, up to
cache pollution. Use it on a shared, loaded machine; it is refused for more than one thread.
"""

from __future__ import annotations

import abc
import contextlib
import io
import math
import shlex
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nasforge._extras import import_optional
from nasforge.errors import InvalidInputError
from nasforge.hardware_models._protocol import CLOCKS
from nasforge.hardware_models._protocol import Measurement
from nasforge.hardware_models._protocol import default_cpus
from nasforge.hardware_models._protocol import measure_interleaved
from nasforge.hardware_models._protocol import pinned
from nasforge.hardware_models._protocol import robust_estimate

__all__ = [
    "BACKENDS",
    "CLOCKS",
    "CommandRunner",
    "LiteRTRunner",
    "Measurement",
    "OnnxRuntimeRunner",
    "Runner",
    "TorchRunner",
    "export_onnx",
    "make_runner",
    "robust_estimate",
]

BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "litert", "adb", "command")
OPSET = 17

#: a module to time and the shape of its input, (1, C, H, W).
Item = tuple[nn.Module, tuple[int, ...]]


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
        self.threads, self.warmup, self.repeats = threads, warmup, repeats
        self.sample_ms, self.cpus = sample_ms, cpus

    def check(self) -> None:
        """Check that the device is reachable (a phone: adb, serial, benchmark tool)."""
        return None

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

    def prepare_batch(self, items: Sequence[Item],
                      keys: Sequence[str] | None = None) -> list[Callable[[], object]]:
        """The calls of a batch (a runner that converts may cache by ``keys``)."""
        return [self._prepare(m, s) for m, s in items]

    def measure(self, items: Sequence[Item],
                keys: Sequence[str] | None = None) -> list[Measurement]:
        """Time each module by the shared protocol (:mod:`~nasforge.hardware_models._protocol`).

        Args:
            items: ``(module, input shape)`` pairs, the shape (1, C, H, W).
            keys: a stable name of each item (block key, arch id), for runners that cache
                converted files; None: no caching.
        """
        with pinned(self.cpus), self._session():
            calls = self.prepare_batch(items, keys)
            return measure_interleaved(calls, warmup=self.warmup, repeats=self.repeats,
                                       sample_ms=self.sample_ms, clock=self.clock,
                                       filtered=self.clock == "wall" and self.threads == 1)


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
        ort = import_optional("onnxruntime", extra="onnx", feature="the onnxruntime backend")

        return (f"onnxruntime {ort.__version__} CPU (ONNX opset {OPSET}, all graph "
                f"optimisations), fp32, batch 1, {self.threads} thread"
                f"{'s' if self.threads > 1 else ''}, {self.clock} clock")

    def _prepare(self, module: nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        ort = import_optional("onnxruntime", extra="onnx", feature="the onnxruntime backend")

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


class LiteRTRunner(Runner):
    """LiteRT (TFLite runtime) with XNNPACK, fp32, ``threads`` interpreter threads.

    Modules are converted with ``litert-torch`` once per key and shape and kept in
    ``cache`` (default ``$NASFORGE_CACHE/tflite``); a batch's missing conversions run in
    ``workers`` processes. :attr:`convert_stats` counts conversions, cache hits and seconds.
    Without ``cpus`` the runner pins itself to the last ``threads`` CPUs of this process.

    Args:
        threads: interpreter threads.
        workers: conversion processes (1: in this process).
        cache_root: folder of converted files (None: the default).
        **kw: the :class:`Runner` options.
    """

    name = "litert"

    def __init__(self, threads: int = 1, *, workers: int = 1, cache_root: Path | None = None,
                 **kw: object) -> None:
        from nasforge.hardware_models._litert import ConvertStats
        from nasforge.hardware_models._litert import TfliteCache
        from nasforge.hardware_models._litert import require_litert

        require_litert()
        super().__init__(threads, **kw)  # type: ignore[arg-type]
        if self.cpus is None:
            self.cpus = default_cpus(threads)
        if workers < 1:
            raise InvalidInputError(f"--jobs must be >= 1, got {workers}")
        self.workers = workers
        self.cache = TfliteCache(cache_root)
        self.convert_stats = ConvertStats()

    def runtime(self) -> str:
        from nasforge.hardware_models._litert import runtime_description

        return f"{runtime_description(self.threads)}, {self.clock} clock"

    def config(self) -> dict[str, object]:
        return {**super().config(), "cpus_default": list(self.cpus or ())}

    def convert(self, items: Sequence[Item], keys: Sequence[str] | None) -> list[Path | bytes]:
        """The ``.tflite`` of each item: cached files by key, else converted in memory."""
        from nasforge.hardware_models._litert import convert_many
        from nasforge.hardware_models._litert import convert_module

        if keys is None:
            return [convert_module(m, s).content for m, s in items]
        jobs = [(k, m, s) for k, (m, s) in zip(keys, items, strict=True)]
        return list(convert_many(jobs, self.cache, workers=self.workers,
                                 stats=self.convert_stats))

    def measure(self, items: Sequence[Item],
                keys: Sequence[str] | None = None) -> list[Measurement]:
        from nasforge.hardware_models._litert import interpreter_call

        files = self.convert(items, keys)  # unpinned: conversions may use every core
        with pinned(self.cpus):
            calls = [interpreter_call(f, self.threads)[0] for f in files]
            return measure_interleaved(calls, warmup=self.warmup, repeats=self.repeats,
                                       sample_ms=self.sample_ms, clock=self.clock,
                                       filtered=self.clock == "wall" and self.threads == 1)

    def _prepare(self, module: nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        from nasforge.hardware_models._litert import convert_module
        from nasforge.hardware_models._litert import interpreter_call

        return interpreter_call(convert_module(module, shape).content, self.threads)[0]


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

    def measure(self, items: Sequence[Item],
                keys: Sequence[str] | None = None) -> list[Measurement]:
        out = []
        with tempfile.TemporaryDirectory(prefix="nasforge-cmd-") as tmp:
            path = Path(tmp) / "model.onnx"
            for module, shape in items:
                export_onnx(module, shape, path)
                out.append(Measurement(self.run_file(path), math.nan, 1))
        return out


def make_runner(backend: str, *, threads: int = 1, command: str = "", repeats: int = 15,
                cpus: tuple[int, ...] | None = None, clock: str = "wall", workers: int = 1,
                serial: str = "") -> Runner:
    """The runner of a backend name.

    Args:
        backend: one of :data:`BACKENDS`.
        threads: threads of the runtime.
        command: the template of the ``command`` backend.
        repeats: timed rounds (``adb``: interleaved passes of ``benchmark_model``).
        cpus: CPUs to pin to (``adb``: ignored, the phone's big core is pinned by taskset).
        clock: ``wall`` or ``cpu``.
        workers: conversion processes (``litert``, ``adb``).
        serial: the phone's serial (``adb``; empty: the only one attached).

    Raises:
        InvalidInputError: unknown backend, ``command`` without a template, or a phone that
            cannot be reached.
        IncompatibleComponentsError: ``litert`` / ``adb`` without the ``tflite`` extra.
    """
    if backend == "torch":
        return TorchRunner(threads, repeats=repeats, cpus=cpus, clock=clock)
    if backend == "onnxruntime":
        return OnnxRuntimeRunner(threads, repeats=repeats, cpus=cpus, clock=clock)
    if backend == "litert":
        return LiteRTRunner(threads, workers=workers, repeats=repeats, cpus=cpus, clock=clock)
    if backend == "adb":
        from nasforge.hardware_models._adb import AdbRunner

        return AdbRunner(threads, serial=serial, passes=min(repeats, 3), workers=workers)
    if backend == "command":
        if not command:
            raise InvalidInputError("--backend command needs --command 'TEMPLATE {model}'")
        return CommandRunner(command, threads)
    raise InvalidInputError(f"unknown profiler backend {backend!r}; use one of "
                            f"{', '.join(BACKENDS)}")
