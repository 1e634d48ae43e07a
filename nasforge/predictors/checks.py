"""Checks of a saved predictor's numbers, made when it is loaded and before it is used.

A predictor folder is a set of files anyone can rewrite, so its tensors and arrays are checked
like user input: the exact names, dtype and shape the manifest implies, and every value finite
(:func:`check_tensors`, :func:`check_vector`). The space it was fitted for is checked where it
is used (:func:`nasforge.evaluation._predictor.check_space`).

Example:
    >>> import torch
    >>> check_tensors("p", {"w": torch.ones(2, 3)}, {"w": (2, 3)})
    >>> try:
    ...     check_tensors("p", {"w": torch.full((2, 3), float("nan"))}, {"w": (2, 3)})
    ... except InvalidInputError as e:
    ...     print(str(e)[:47])
    p: tensor 'w' holds NaN or infinite values; the
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError

if TYPE_CHECKING:
    import torch

__all__ = ["check_tensors", "check_vector"]

_DAMAGED = "the file is damaged: re-save or re-import the predictor"


def check_tensors(source: str, tensors: Mapping[str, torch.Tensor],
                  want: Mapping[str, tuple[int, ...]], dtype: torch.dtype | None = None
                  ) -> None:
    """Refuse tensors other than ``want`` (names and shapes), of another dtype (default
    float32), or not finite.

    Raises:
        InvalidInputError: one line naming the first tensor at fault.
    """
    import torch

    dtype = torch.float32 if dtype is None else dtype
    missing = sorted(set(want) - set(tensors))
    extra = sorted(set(tensors) - set(want))
    if missing or extra:
        raise InvalidInputError(
            f"{source}: the weights file holds {sorted(tensors)[:4]}, expected "
            f"{sorted(want)[:4]} ({'missing ' + str(missing[:3]) if missing else ''}"
            f"{'unexpected ' + str(extra[:3]) if extra else ''}); it disagrees with the "
            f"manifest: {_DAMAGED}")
    for name, shape in want.items():
        t = tensors[name]
        if t.dtype != dtype:
            raise InvalidInputError(f"{source}: tensor {name!r} has dtype {t.dtype}, expected "
                                    f"{dtype}; {_DAMAGED}")
        if tuple(t.shape) != tuple(shape):
            raise InvalidInputError(f"{source}: tensor {name!r} has shape {tuple(t.shape)}, the "
                                    f"manifest implies {tuple(shape)}; {_DAMAGED}")
        if not bool(torch.isfinite(t).all()):
            raise InvalidInputError(f"{source}: tensor {name!r} holds NaN or infinite values; "
                                    f"{_DAMAGED}")


def check_vector(source: str, name: str, values: Any, length: int | None = None,
                 positive: bool = False) -> np.ndarray:
    """``values`` as a finite float64 vector (of ``length``, all > 0 when ``positive``).

    Raises:
        InvalidInputError: not a list of numbers, another length, a NaN / inf or a value <= 0.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{source}: {name} must be a list of numbers; "
                                f"{_DAMAGED}") from None
    if arr.ndim != 1 or (length is not None and arr.shape[0] != length):
        raise InvalidInputError(
            f"{source}: {name} has shape {arr.shape}, expected ({length},) (one value per "
            f"{'feature' if length and length > 1 else 'target'}); {_DAMAGED}")
    if not np.isfinite(arr).all() or (positive and (arr <= 0).any()):
        raise InvalidInputError(f"{source}: {name} holds NaN, infinite"
                                f"{' or non-positive' if positive else ''} values; {_DAMAGED}")
    return arr
