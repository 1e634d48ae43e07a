"""Profiler backends: the :class:`Runner` interface, the ``RUNNERS`` registry, :func:`make_runner`.

Each backend is a :class:`Runner` subclass registered under its name at definition
(``@RUNNERS.register("torch")``), one per module; :func:`make_runner` builds one from the shared
:class:`RunnerOptions` through :meth:`Runner.from_options`. The backends:

* ``torch``: eager PyTorch, ``torch.inference_mode()``, a pinned intra-op thread count;
* ``onnxruntime``: the module exported to ONNX (opset 17, the TorchScript exporter), run by an
  ``InferenceSession`` (CPU provider, all graph optimisations, pinned intra-op threads, one
  inter-op thread);
* ``litert``: the module converted to ``.tflite`` (``litert-torch``, cached on disk by block
  key, conversions in parallel processes) and run by the LiteRT interpreter with XNNPACK, fp32
  -- the phone's own runtime, on this CPU (:mod:`~nasforge.hardware_models.profiling._litert`);
* ``adb``: the same ``.tflite`` files pushed to an Android phone and timed by TFLite's
  ``benchmark_model`` (:mod:`~nasforge.hardware_models.profiling._adb`);
* ``command``: an external command template that receives the exported ONNX file as
  ``{model}`` (and the thread count as ``{threads}``) and prints a latency in ms as its last
  line.

Timing (``torch``, ``onnxruntime``, ``litert``): batch 1, fp32, a random input of the module's
shape, by the shared protocol of :mod:`~nasforge.hardware_models.profiling._protocol` (pinned,
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
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import TypeAlias

from nasforge.errors import InvalidInputError
from nasforge.hardware_models.profiling._protocol import CLOCKS
from nasforge.hardware_models.profiling._protocol import Measurement
from nasforge.hardware_models.profiling._protocol import measure_interleaved
from nasforge.hardware_models.profiling._protocol import pinned
from nasforge.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    #: a module to time and the shape of its input, (1, C, H, W).
    Item: TypeAlias = tuple[nn.Module, tuple[int, ...]]

__all__ = ["BACKENDS", "RUNNERS", "Runner", "RunnerOptions", "make_runner"]

#: the backend names, in the order messages list them (each registered in ``RUNNERS``).
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "litert", "adb", "command", "executorch",
                             "adb-executorch")


@dataclass(frozen=True)
class RunnerOptions:
    """What :func:`make_runner` passes to a backend (each takes the options it needs).

    Attributes:
        threads: threads of the runtime.
        command: the template of the ``command`` backend.
        repeats: timed rounds (``adb``: interleaved passes of ``benchmark_model``).
        cpus: CPUs to pin to (``adb``: ignored, the phone's big core is pinned by taskset).
        clock: ``wall`` or ``cpu``.
        workers: conversion processes (``litert``, ``adb``).
        serial: the phone's serial (``adb``; empty: the only one attached).
    """

    threads: int = 1
    command: str = ""
    repeats: int = 15
    cpus: tuple[int, ...] | None = None
    clock: str = "wall"
    workers: int = 1
    serial: str = ""


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

    @classmethod
    def from_options(cls, opts: RunnerOptions) -> Runner:
        """The runner :func:`make_runner` builds (a backend with other options overrides it)."""
        return cls(opts.threads, repeats=opts.repeats, cpus=opts.cpus, clock=opts.clock)

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
        """Time each module by the shared protocol (:mod:`._protocol`).

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


#: profiler backends by name; the runner modules of this package register themselves.
RUNNERS: Registry[type[Runner]] = Registry("profiler backend")


def make_runner(backend: str, *, threads: int = 1, command: str = "", repeats: int = 15,
                cpus: tuple[int, ...] | None = None, clock: str = "wall", workers: int = 1,
                serial: str = "") -> Runner:
    """The runner of a backend name, built from the :class:`RunnerOptions` of the other arguments.

    Args:
        backend: one of :data:`BACKENDS`.
        threads: threads of the runtime; ``command``, ``repeats``, ``cpus``, ``clock``,
            ``workers``, ``serial``: as in :class:`RunnerOptions` (each backend takes those it
            needs).

    Raises:
        InvalidInputError: unknown backend, ``command`` without a template, or a phone that
            cannot be reached.
        IncompatibleComponentsError: ``litert`` / ``adb`` without the ``tflite`` extra.

    Example:
        >>> from nasforge.hardware_models.profiling import make_runner
        >>> make_runner("torch", threads=2).config()
        {'backend': 'torch', 'threads': 2, 'clock': 'wall'}
    """
    if backend not in RUNNERS:
        raise InvalidInputError(f"unknown profiler backend {backend!r}; use one of "
                                f"{', '.join(BACKENDS)}")
    opts = RunnerOptions(threads=threads, command=command, repeats=repeats, cpus=cpus,
                         clock=clock, workers=workers, serial=serial)
    return RUNNERS.get(backend).from_options(opts)
