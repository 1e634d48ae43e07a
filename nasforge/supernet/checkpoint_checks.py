"""Checks of what a supernet checkpoint holds, made before any of it is used.

A checkpoint is a file anyone can rewrite, so its numbers are checked like user input:

* :func:`check_metadata`: ``step``, ``config.num_classes``, ``config.input_size``,
  ``config.resolution_scale``, ``config.train.steps`` and the data position against their
  declared ranges (:data:`RANGES`), before a supernet is built or a tensor allocated;
* :func:`check_tensors`: every floating-point tensor finite (weights, BN statistics, EMA,
  optimizer moments);
* :func:`check_model_tensors`: the ``model.*`` tensors against the built supernet's dtypes
  (their names and shapes are checked by ``load_model_state``).

Each failure is one :class:`~nasforge.errors.InvalidInputError` line naming the file, the field,
the value and the allowed range.

Example:
    >>> from pathlib import Path
    >>> check_metadata(Path("x.ckpt"), {"step": 3, "config": {"num_classes": 10,
    ...                                 "input_size": 32, "train": {"steps": 6}}})
    >>> try:
    ...     check_metadata(Path("x.ckpt"), {"step": -5, "config": {"num_classes": 10,
    ...                                     "input_size": 32}})
    ... except InvalidInputError as e:
    ...     print(str(e)[:61])
    checkpoint x.ckpt: step = -5 is not in its range 0..100000000
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError

__all__ = ["RANGES", "check_metadata", "check_model_tensors", "check_tensors"]

#: Declared ranges (inclusive) of the integer fields of a checkpoint's JSON state.
RANGES: dict[str, tuple[int, int]] = {
    "step": (0, 10**12),
    "config.num_classes": (1, 100_000),
    "config.input_size": (1, 4096),
    "config.train.steps": (1, 10**12),
    "extra.data_position": (0, 10**12),
}
_SCALE = (0.0, 4.0)  # resolution_scale in (0, 4], as a recipe declares it


def _bad(p: Path, field: str, value: Any, allowed: str) -> InvalidInputError:
    return InvalidInputError(f"checkpoint {p}: {field} = {value!r} is not in its range "
                             f"{allowed}; the file was edited or is damaged")


def _int_in(p: Path, field: str, value: Any, hi: int | None = None) -> int:
    lo, top = RANGES[field]
    top = top if hi is None else hi
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= top:
        raise _bad(p, field, value, f"{lo}..{top} (integers)")
    return value


def check_metadata(p: Path, state: dict[str, Any]) -> None:
    """Refuse a checkpoint whose JSON numbers lie outside :data:`RANGES`.

    Args:
        p: the file (named in the message).
        state: its JSON state, holding ``step`` and a ``config`` mapping.

    Raises:
        InvalidInputError: a field of the wrong type or outside its range.
    """
    cfg = state["config"]
    train = cfg.get("train")
    total: int | None = None
    if isinstance(train, dict) and "steps" in train:
        total = _int_in(p, "config.train.steps", train["steps"])
    _int_in(p, "step", state["step"], hi=total)
    _int_in(p, "config.num_classes", cfg["num_classes"])
    _int_in(p, "config.input_size", cfg["input_size"])
    scale = cfg.get("resolution_scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int | float)
                              or not math.isfinite(scale) or not _SCALE[0] < scale <= _SCALE[1]):
        raise _bad(p, "config.resolution_scale", scale, f"({_SCALE[0]:g}, {_SCALE[1]:g}] or null")
    extra = state.get("extra")
    pos = extra.get("data_position") if isinstance(extra, dict) else None
    if pos is not None:
        if not isinstance(pos, list) or len(pos) != 2:
            raise _bad(p, "extra.data_position", pos, "[epoch, batch] of integers >= 0")
        for v in pos:
            _int_in(p, "extra.data_position", v)


def check_tensors(p: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse a checkpoint with a NaN or infinite value in a floating-point tensor.

    Raises:
        InvalidInputError: names the first such tensor and how many tensors are affected.
    """
    bad = [k for k, t in tensors.items()
           if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all())]
    if bad:
        raise InvalidInputError(
            f"checkpoint {p} holds NaN or infinite values in {len(bad)} tensor(s), first "
            f"{bad[0]!r}; it cannot be scored or resumed: use an earlier checkpoint "
            "(step-*.ckpt) or retrain")


def check_model_tensors(p: Path, own: dict[str, torch.Tensor],
                        state: dict[str, torch.Tensor]) -> None:
    """Refuse ``state`` tensors whose dtype differs from the built supernet's ``own``.

    Raises:
        IncompatibleComponentsError: names the first such tensor and both dtypes.
    """
    for k, t in own.items():
        if k in state and state[k].dtype != t.dtype:
            raise IncompatibleComponentsError(
                f"checkpoint {p}: tensor {k!r} has dtype {state[k].dtype}, the supernet "
                f"expects {t.dtype}; the file was edited or written by another program")
