"""Checking an exported model: a fixed input, output agreement and on-machine latency.

The exported model is run by its own runtime (onnxruntime, ``torch.jit.load``, a freshly built
static model) on one fixed random input and compared with PyTorch's output of the original
module; its latency is the median of ``runs`` timed calls after ``warmup`` untimed ones, with
the thread count pinned so that numbers compare across runs of this machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from nasforge.errors import InvalidInputError

__all__ = ["Runner", "fixed_input", "max_abs_diff", "median_latency_ms", "positive",
           "torch_threads"]

#: A loaded exported model: (B, 3, H, W) float32 array -> (B, classes) float32 array.
Runner = Callable[[np.ndarray], np.ndarray]


def fixed_input(input_size: int, seed: int = 0, batch: int = 1) -> torch.Tensor:
    """The verification input: standard-normal values from a seeded private generator.

    Args:
        input_size: side of the square image.
        seed: generator seed (the global torch RNG is left untouched).
        batch: batch size.

    Returns:
        (batch, 3, input_size, input_size) float32 tensor.
    """
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, input_size, input_size, generator=g)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute element-wise difference of two arrays of the same shape.

    Returns ``inf`` when the shapes differ or either array holds a NaN, so that a broken
    export never passes a tolerance check.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    d = np.abs(a - b)
    if d.size == 0:
        return 0.0
    if np.isnan(d).any():
        return float("inf")
    return float(d.max())


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Pin torch's intra-op thread count to ``n`` inside the block, then restore it.

    ``None`` leaves torch's setting as it is (a CLI option the user did not give).
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def median_latency_ms(run: Runner, x: np.ndarray, runs: int = 30, warmup: int = 5) -> float:
    """Median wall-clock time of ``run(x)`` in milliseconds.

    Args:
        run: the loaded model.
        x: (B, 3, H, W) input.
        runs: timed calls (at least 1).
        warmup: untimed calls first (allocator, kernel selection, caches).
    """
    for _ in range(max(0, warmup)):
        run(x)
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        run(x)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(statistics.median(times))


def positive(key: str, value: Any) -> int:
    """``value`` when it is an integer >= 1 (runs, threads, batches, input sizes).

    Raises:
        InvalidInputError: naming ``key`` and the value.

    Example:
        >>> positive("runs", 0)
        Traceback (most recent call last):
        ...
        nasforge.errors.InvalidInputError: `runs` must be a positive integer, but got runs=0
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"`{key}` must be a positive integer, but got {key}={value!r}")
    return value
