"""Reading a torch file without running its pickled code, in nasforge's words.

``torch.load(weights_only=True)`` refuses a file that holds Python objects beyond tensors, but
its message advises retrying with ``weights_only=False``, which would run the file's code; and
it may warn on stderr. :func:`load_weights_only` turns both into one sentence of ours.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

from nasforge.errors import InvalidInputError

__all__ = ["load_weights_only"]


def load_weights_only(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` in our words: torch's refusal (and its advice
    to retry with ``weights_only=False``, which would run the file's pickled code) and its
    warnings never reach the user.

    Raises:
        InvalidInputError: the file holds Python objects beyond tensors, or is no torch file.
    """
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "unsupported global" in str(e).lower():
            raise InvalidInputError(
                f"{path} holds Python objects beyond tensors; nasforge loads only weights "
                "(a weights-only torch file or safetensors)"
            ) from None
        raise _not_torch(path) from None
    except MemoryError:
        raise
    except Exception:  # torch raises many kinds for a file that is not a torch file
        raise _not_torch(path) from None


def _not_torch(path: Path) -> InvalidInputError:
    return InvalidInputError(f"{path} is not a torch file (truncated, or another format); "
                             "pass a file written by torch.save")
