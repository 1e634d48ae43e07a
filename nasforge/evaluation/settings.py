"""The knobs of expensive evaluation, as one frozen value: :class:`EvalSettings`.

A light module (no torch, no pandas): experiment configs hold one.

Example:
    >>> EvalSettings(workers=4).eval_chunk_for(batched=True)
    8
    >>> EvalSettings(workers=16).eval_chunk_for(batched=True), EvalSettings().eval_chunk_for(False)
    (16, None)
    >>> try:
    ...     EvalSettings(accelerator="gpu")
    ... except ValueError as e:
    ...     print(e)
    accelerator (--accelerator): must be one of auto, cpu, cuda, got 'gpu'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasforge.errors import ConfigError

__all__ = ["ACCELERATORS", "MAX_WORKERS", "EvalSettings"]

#: accelerators an evaluation can run on
ACCELERATORS = ("auto", "cpu", "cuda")
#: most parallel evaluation workers a run takes
MAX_WORKERS = 4096


def _check_int(value: Any, label: str, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(label, f"must be an integer >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(label, f"must be an integer <= {high}, got {value!r}")


@dataclass(frozen=True)
class EvalSettings:
    """How expensive accuracy sources evaluate: the five knobs, as one value.

    Attributes:
        accelerator: compute used to evaluate (``auto``, ``cpu``, ``cuda``).
        workers: parallel supernet evaluators (Ray actors when > 1).
        batch_size: images per BN-recalibration and evaluation batch.
        recal_batches: K, the training batches that recalibrate BatchNorm per subnet.
        eval_chunk: fewest new candidates a search hands a batched source at once (it hands
            ``max(eval_chunk, workers)``, so that every actor has work).

    Raises:
        ConfigError: a knob out of range (the rule and the value).
    """

    accelerator: str = "auto"
    workers: int = 1
    batch_size: int = 128
    recal_batches: int = 1
    eval_chunk: int = 8

    def __post_init__(self) -> None:
        _check_int(self.workers, "workers (--workers)", 1, MAX_WORKERS)
        if self.accelerator not in ACCELERATORS:
            raise ConfigError("accelerator (--accelerator)",
                              f"must be one of {', '.join(ACCELERATORS)}, got "
                              f"{self.accelerator!r}")
        for label in ("batch_size", "recal_batches", "eval_chunk"):
            _check_int(getattr(self, label), label, 1)

    def eval_chunk_for(self, batched: bool) -> int | None:
        """New candidates per evaluation call of a source (None: all at once)."""
        return max(self.eval_chunk, self.workers) if batched else None

    def device(self) -> str:
        """The resolved compute device (``auto`` becomes ``cuda`` when present, else ``cpu``)."""
        from nasforge.supernet.training.quick import resolve_device

        return str(resolve_device(self.accelerator))
