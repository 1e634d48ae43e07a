"""The ``litert`` backend: ``.tflite`` conversions timed by the LiteRT interpreter on this CPU.

Conversion, the on-disk cache and the interpreter are
:mod:`~nasforge.hardware_models.profiling._litert`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nasforge.errors import InvalidInputError
from nasforge.hardware_models.profiling._protocol import Measurement
from nasforge.hardware_models.profiling._protocol import default_cpus
from nasforge.hardware_models.profiling._protocol import measure_interleaved
from nasforge.hardware_models.profiling._protocol import pinned
from nasforge.hardware_models.profiling.base import RUNNERS
from nasforge.hardware_models.profiling.base import Runner
from nasforge.hardware_models.profiling.base import RunnerOptions

if TYPE_CHECKING:
    from torch import nn

    from nasforge.hardware_models.profiling.base import Item

__all__ = ["LiteRTRunner"]


@RUNNERS.register("litert")
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
        from nasforge.hardware_models.profiling._litert import ConvertStats
        from nasforge.hardware_models.profiling._litert import TfliteCache
        from nasforge.hardware_models.profiling._litert import require_litert

        require_litert()
        super().__init__(threads, **kw)  # type: ignore[arg-type]
        if self.cpus is None:
            self.cpus = default_cpus(threads)
        if workers < 1:
            raise InvalidInputError(f"--jobs must be >= 1, got {workers}")
        self.workers = workers
        self.cache = TfliteCache(cache_root)
        self.convert_stats = ConvertStats()

    @classmethod
    def from_options(cls, opts: RunnerOptions) -> Runner:
        return cls(opts.threads, workers=opts.workers, repeats=opts.repeats, cpus=opts.cpus,
                   clock=opts.clock)

    def runtime(self) -> str:
        from nasforge.hardware_models.profiling._litert import runtime_description

        return f"{runtime_description(self.threads)}, {self.clock} clock"

    def config(self) -> dict[str, object]:
        return {**super().config(), "cpus_default": list(self.cpus or ())}

    def convert(self, items: Sequence[Item], keys: Sequence[str] | None) -> list[Path | bytes]:
        """The ``.tflite`` of each item: cached files by key, else converted in memory."""
        from nasforge.hardware_models.profiling._litert import convert_many
        from nasforge.hardware_models.profiling._litert import convert_module

        if keys is None:
            return [convert_module(m, s).content for m, s in items]
        jobs = [(k, m, s) for k, (m, s) in zip(keys, items, strict=True)]
        return list(convert_many(jobs, self.cache, workers=self.workers,
                                 stats=self.convert_stats))

    def measure(self, items: Sequence[Item],
                keys: Sequence[str] | None = None) -> list[Measurement]:
        from nasforge.hardware_models.profiling._litert import interpreter_call

        files = self.convert(items, keys)  # unpinned: conversions may use every core
        with pinned(self.cpus):
            calls = [interpreter_call(f, self.threads)[0] for f in files]
            return measure_interleaved(calls, warmup=self.warmup, repeats=self.repeats,
                                       sample_ms=self.sample_ms, clock=self.clock,
                                       filtered=self.clock == "wall" and self.threads == 1)

    def _prepare(self, module: nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        from nasforge.hardware_models.profiling._litert import convert_module
        from nasforge.hardware_models.profiling._litert import interpreter_call

        return interpreter_call(convert_module(module, shape).content, self.threads)[0]
