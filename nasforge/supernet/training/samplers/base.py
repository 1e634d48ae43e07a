"""The sampler contract: which subnets a supernet training step trains.

Call protocol (what the trainer does, every step, on every rank):

1. ``plan = sampler.sample()`` returns the step's :class:`SampledArch` s, in training order.
   A subnet with role ``"max"`` (when present, first) is the in-place distillation teacher of
   the others; every subnet's gradients accumulate before the one optimizer step.
2. After the forward pass of each subnet, the trainer calls ``sampler.feedback(arch, loss)``
   with the subnet's cross-entropy on the current batch (averaged over ranks). Only
   performance-aware sampling uses it; the others ignore it.
3. ``sampler.set_progress(step, total_steps)`` is called before ``sample()``; samplers whose
   behaviour changes over training (the bank-exploitation probability) read it.
4. ``state_dict()`` / ``load_state_dict()`` round-trip everything needed to continue the exact
   same sequence after a resume: a JSON-serialisable dict (architectures as plain dicts, the
   ``numpy`` generator state from ``rng.bit_generator.state``).

Randomness comes only from the injected ``numpy.random.Generator``: two samplers built with
generators of the same seed, fed the same losses, return the same plans (which is what keeps
data-parallel ranks in step).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from typing import ClassVar

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.base import SearchSpace

__all__ = ["BaseSampler", "SampledArch"]


@dataclass(frozen=True)
class SampledArch:
    """One subnet of a training step.

    Attributes:
        arch: the architecture to activate.
        role: ``"max"`` (largest subnet, distillation teacher), ``"min"``, ``"random"``, ``"bank"``
            (drawn from a performance bank) or ``"level_min"`` (the smallest of a FLOPs level).
        level: index of the FLOPs level it was drawn for, ``None`` for level-free samplers.
    """

    arch: Arch
    role: str
    level: int | None = None


class BaseSampler(abc.ABC):
    """Base class of sampling rules (see the module docstring for the call protocol).

    Args:
        space: the search space subnets are drawn from.
        rng: the only source of randomness.
    """

    #: Registered name, set by :func:`~nasforge.supernet.training.samplers.register_sampler`.
    name: str = ""
    #: The ``sampler_options`` a recipe gets when a user picks this sampler by name only
    #: (``nas train --sampler NAME``); empty: the constructor's defaults.
    recipe_options: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    def __init__(self, space: SearchSpace, rng: np.random.Generator) -> None:
        self.space = space
        self.rng = rng
        self.step = 0
        self.total_steps = 1

    @abc.abstractmethod
    def sample(self) -> list[SampledArch]:
        """The subnets of the next training step, in training order (teacher first)."""

    def feedback(self, arch: Arch, loss: float) -> None:  # noqa: B027 - optional hook
        """Report the cross-entropy ``loss`` of ``arch`` on the current batch (default: ignored)."""

    def set_progress(self, step: int, total_steps: int) -> None:
        """Tell the sampler that training is at ``step`` of ``total_steps``."""
        self.step = int(step)
        self.total_steps = max(int(total_steps), 1)

    @property
    def level(self) -> int | None:
        """The current FLOPs level index, ``None`` for level-free samplers."""
        return None

    def level_names(self) -> list[str]:
        """Human labels of the FLOPs levels (for logs), empty for level-free samplers."""
        return []

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: the RNG, progress and subclass extras."""
        return {"name": self.name, "space": self.space.name, "rng": _rng_state(self.rng),
                "step": self.step, "total_steps": self.total_steps, **self._extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`.

        Raises:
            InvalidInputError: the state belongs to another sampler or space, or is malformed.
        """
        if not isinstance(state, dict):
            raise InvalidInputError(f"sampler state must be a mapping, got {type(state).__name__}")
        if state.get("name") != self.name or state.get("space") != self.space.name:
            raise InvalidInputError(
                f"sampler state of {state.get('name')!r} on space {state.get('space')!r} cannot "
                f"be loaded into sampler {self.name!r} on space {self.space.name!r}"
            )
        try:
            self.rng.bit_generator.state = state["rng"]
            self.step = int(state["step"])
            self.total_steps = int(state["total_steps"])
            self._load_extra_state(state)
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInputError(f"malformed {self.name} sampler state: {e!r}") from None

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore the subclass part of the state (keys of :meth:`_extra_state`)."""

    def arch_from_dict(self, data: dict[str, Any]) -> Arch:
        """Load a stored architecture through the space (validated)."""
        return self.space.arch_from_dict(data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space.name!r})"


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return _jsonable(rng.bit_generator.state)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value
