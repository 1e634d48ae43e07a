"""The ``executorch`` backend: ``.pte`` programs (XNNPACK) timed in executorch.runtime on this CPU.

Lowering, the on-disk cache and the runtime calls are
:mod:`~nasforge.hardware_models.profiling._executorch`. Blocks and whole networks are lowered
the same way (the graph prepared first, so an ElasticViT block or network is one XNNPACK
partition with nothing outside), so each measured block holds one delegate entry and exit and
one runtime call; what a whole network saves beyond its blocks (one call instead of one per
block, activations handed on inside the delegate) is the device's fusion rule
(:mod:`~nasforge.hardware_models._fusion`: per-network and per-block terms), fitted on whole
networks while profiling.
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

__all__ = ["ExecutorchRunner"]


@RUNNERS.register("executorch")
class ExecutorchRunner(Runner):
    """ExecuTorch (``executorch.runtime``) with the XNNPACK delegate, fp32, ``threads`` threads.

    Modules are lowered once per key and shape, ``workers`` processes at once, and kept in
    ``cache`` (default ``$NASFORGE_CACHE/executorch``). Without ``cpus`` the runner pins
    itself to the last ``threads`` CPUs of this process.

    Args:
        threads: threadpool size (process-wide in ExecuTorch).
        workers: lowering processes (1: in this process).
        cache_root: folder of lowered programs (None: the default).
        **kw: the :class:`Runner` options.
    """

    name = "executorch"

    def __init__(self, threads: int = 1, *, workers: int = 1, cache_root: Path | None = None,
                 **kw: object) -> None:
        from nasforge.hardware_models.profiling._executorch import PteCache
        from nasforge.hardware_models.profiling._executorch import require_executorch

        require_executorch()
        if workers < 1:
            raise InvalidInputError(f"--jobs must be >= 1, got {workers}")
        super().__init__(threads, **kw)  # type: ignore[arg-type]
        self.workers = workers
        if self.cpus is None:
            self.cpus = default_cpus(threads)
        self.cache = PteCache(cache_root)

    @classmethod
    def from_options(cls, opts: RunnerOptions) -> Runner:
        return cls(opts.threads, workers=opts.workers, repeats=opts.repeats, cpus=opts.cpus,
                   clock=opts.clock)

    def runtime(self) -> str:
        from nasforge.hardware_models.profiling._executorch import runtime_description

        return f"{runtime_description(self.threads)}, {self.clock} clock"

    def config(self) -> dict[str, object]:
        return {**super().config(), "cpus_default": list(self.cpus or ())}

    def lower(self, items: Sequence[Item], keys: Sequence[str] | None) -> list[Path | bytes]:
        """The ``.pte`` of each item: cached files by key, else lowered in memory."""
        import torch

        from nasforge.hardware_models.profiling._executorch import lower_many
        from nasforge.hardware_models.profiling._executorch import lower_module

        if keys is None:
            return [lower_module(m, (torch.randn(*s),)).content for m, s in items]
        jobs = [(k, m, s) for k, (m, s) in zip(keys, items, strict=True)]
        return list(lower_many(jobs, self.cache, workers=self.workers))

    def measure(self, items: Sequence[Item],
                keys: Sequence[str] | None = None) -> list[Measurement]:
        from nasforge.hardware_models.profiling._executorch import method_call

        files = self.lower(items, keys)  # unpinned: lowering may use every core
        with pinned(self.cpus):
            calls = [method_call(f, self.threads)[0] for f in files]
            return measure_interleaved(calls, warmup=self.warmup, repeats=self.repeats,
                                       sample_ms=self.sample_ms, clock=self.clock,
                                       filtered=self.clock == "wall" and self.threads == 1)

    def _prepare(self, module: nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        import torch

        from nasforge.hardware_models.profiling._executorch import lower_module
        from nasforge.hardware_models.profiling._executorch import method_call

        return method_call(lower_module(module, (torch.randn(*shape),)).content,
                           self.threads)[0]
