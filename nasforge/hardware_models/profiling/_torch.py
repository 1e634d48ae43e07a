"""The ``torch`` backend: eager PyTorch on this machine."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from collections.abc import Iterator

import torch
from torch import nn

from nasforge.hardware_models.profiling.base import RUNNERS
from nasforge.hardware_models.profiling.base import Runner

__all__ = ["TorchRunner"]


@RUNNERS.register("torch")
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
