"""The strategy contract (ask/tell) and the strategy registry.

Call protocol (what :func:`~nasforge.strategies.run_search` does, and what any other driver
must do):

1. Construct the strategy with its space, its :class:`~nasforge.strategies.objectives.
   SearchObjectives`, a seed and its own settings (objects, never an ``args`` namespace).
2. Optionally restore it: :meth:`BaseStrategy.load_state_dict` with a state from
   :meth:`BaseStrategy.state_dict` and the history told before that state was taken.
3. Loop: ``archs = strategy.ask(n)`` returns between 0 and ``n`` valid architectures that
   satisfy every *cheap* bound (candidates violating one are rejected before the expensive
   objectives run); an empty list means the strategy has nothing more to propose. The driver
   evaluates them (re-using values of architectures it has already evaluated) and calls
   ``strategy.tell(archs, values)`` exactly once with the same list, in the same order, before
   the next ``ask``. ``values`` has shape ``(len(archs), len(objectives))``, columns in
   ``objectives.names`` order. Strategies that search a space's index codec (evolution,
   gradient) keep the index rows of what they asked and match them to ``tell`` by that order.
4. ``strategy.batch_size`` is the ``n`` the strategy prefers (a generation, a top-k, ...); a
   driver may ask for fewer (e.g. when the budget is nearly spent).

Randomness comes only from ``self.rng`` (a ``numpy.random.Generator`` seeded in ``__init__``
and saved in :meth:`BaseStrategy.state_dict`), so a fixed seed gives the same search and a
resumed search continues as if it had never stopped.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeVar

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.registry import Registry
from nasforge.search_spaces.choice_space import ChoiceSpace

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.strategies.objectives import SearchObjectives

__all__ = ["STRATEGIES", "BaseStrategy", "register_strategy", "require_choice_space"]

#: name -> strategy class; classes are constructed as ``cls(space, objectives, seed=..., **kw)``.
STRATEGIES: Registry[type[BaseStrategy]] = Registry("strategy")

S = TypeVar("S", bound="type[BaseStrategy]")


def register_strategy(name: str) -> Callable[[S], S]:
    """Class decorator registering a :class:`BaseStrategy` subclass as ``name``."""

    def deco(cls: S) -> S:
        cls.name = name
        STRATEGIES.add(name, cls)
        return cls

    return deco


def require_choice_space(space: SearchSpace, strategy: str) -> ChoiceSpace:
    """``space`` itself, checked to be a :class:`~nasforge.search_spaces.choice_space.ChoiceSpace`:
    the strategies that make candidates in numpy work on its index codec (the index matrix).

    Args:
        space: the space given to the strategy.
        strategy: the strategy's class name, for the message.

    Raises:
        IncompatibleComponentsError: ``space`` is not a ChoiceSpace.

    Example:
        >>> from nasforge.search_spaces import get_space
        >>> require_choice_space(get_space("nasbench201"), "EvolutionStrategy").num_choices()
        6
    """
    if not isinstance(space, ChoiceSpace):
        raise IncompatibleComponentsError(
            f"{strategy} searches the index codec of a ChoiceSpace (a space declared as "
            f"discrete choices); space {space.name!r} is a {type(space).__name__}, which is "
            "not one: declare the space as a ChoiceSpace or use the random strategy"
        )
    return space


class BaseStrategy(abc.ABC):
    """Base class of every search strategy (see the module docstring for the call protocol).

    Args:
        space: the search space.
        objectives: what is measured; bounds of cheap objectives filter candidates.
        seed: seed of :attr:`rng`.
        max_rejections: how many candidates in a row may violate cheap bounds before
            :class:`~nasforge.errors.InvalidInputError` says the bounds look unsatisfiable.

    Attributes:
        history_archs: every told architecture, in order.
        history_values: the told values, shape ``(len(history_archs), len(objectives))``.
    """

    #: Registered name, set by :func:`register_strategy`.
    name: str = ""

    def __init__(self, space: SearchSpace, objectives: SearchObjectives, *, seed: int = 0,
                 max_rejections: int = 10_000) -> None:
        self.space = space
        self.objectives = objectives
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.max_rejections = max_rejections
        self.history_archs: list[Arch] = []
        self._history_rows: list[np.ndarray] = []

    # ---- the protocol ----------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """How many archs the strategy prefers to be asked for at once."""
        return 1

    @abc.abstractmethod
    def ask(self, n: int) -> list[Arch]:
        """Propose up to ``n`` architectures (each satisfying every cheap bound)."""

    def tell(self, archs: Sequence[Arch], values: np.ndarray) -> None:
        """Report the objective values of the archs of the last :meth:`ask`.

        Args:
            archs: the archs, as returned by ``ask``.
            values: shape ``(len(archs), len(objectives))``.

        Raises:
            InvalidInputError: ``values`` has the wrong shape.
        """
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (len(archs), len(self.objectives)):
            raise InvalidInputError(
                f"{type(self).__name__}.tell: values must have shape (len(archs), "
                f"len(objectives)) = ({len(archs)}, {len(self.objectives)}), got {v.shape}"
            )
        self.history_archs.extend(archs)
        self._history_rows.extend(v)
        self._tell(list(archs), v)

    def _tell(self, archs: list[Arch], values: np.ndarray) -> None:
        """Strategy-specific part of :meth:`tell` (history is already updated)."""
        return

    @property
    def history_values(self) -> np.ndarray:
        if not self._history_rows:
            return np.zeros((0, len(self.objectives)))
        return np.stack(self._history_rows)

    # ---- persistence -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state: RNG state plus :meth:`_state` (history is stored apart)."""
        return {"strategy": self.name, "seed": self.seed,
                "rng": self.rng.bit_generator.state, "extra": self._state()}

    def load_state_dict(self, state: dict[str, Any], history_archs: Sequence[Arch],
                        history_values: np.ndarray) -> None:
        """Restore a state taken by :meth:`state_dict` after ``history`` had been told.

        Raises:
            IncompatibleComponentsError: the state belongs to another strategy.
        """
        if state.get("strategy") != self.name:
            raise IncompatibleComponentsError(
                f"stored state is of strategy {state.get('strategy')!r}, not {self.name!r}; "
                "resume with the strategy that wrote it or start a new study"
            )
        self.history_archs = list(history_archs)
        self._history_rows = list(np.asarray(history_values, dtype=np.float64).reshape(
            len(self.history_archs), len(self.objectives)))
        self.rng.bit_generator.state = state["rng"]
        self._load_state(state.get("extra", {}))

    def _state(self) -> dict[str, Any]:
        """Strategy-specific JSON-ready state."""
        return {}

    def _load_state(self, extra: dict[str, Any]) -> None:
        """Restore what :meth:`_state` returned."""
        return

    def resumed_history(self) -> tuple[list[Arch], np.ndarray]:
        """Candidates evaluated before this process started, held in the strategy's own storage
        (Optuna RDB); empty for strategies persisted by the driver's storage."""
        return [], np.zeros((0, len(self.objectives)))

    def describe(self) -> dict[str, Any]:
        """Name, seed and settings, JSON-ready (recorded in results)."""
        return {"strategy": self.name, "seed": self.seed, "settings": self._settings()}

    def _settings(self) -> dict[str, Any]:
        return {}

    # ---- helpers for subclasses ------------------------------------------------------------
    def arch_to_state(self, arch: Arch) -> dict[str, Any]:
        """Plain-dict form of an arch for :meth:`_state` (``arch.to_dict()``)."""
        from nasforge.strategies.storage.claims import arch_dict

        return arch_dict(arch)

    def arch_from_state(self, data: dict[str, Any]) -> Arch:
        """Inverse of :meth:`arch_to_state` (validated by the space)."""
        return self.space.arch_from_dict(data)

    def feasible_batch(self, make: Callable[[int], list[Arch]], n: int) -> list[Arch]:
        """Draw ``n`` archs from ``make(k)`` (which returns k candidates), rejecting those that
        violate a cheap bound, in a vectorised way (one ``evaluate_many`` per round).

        Raises:
            InvalidInputError: ``max_rejections`` candidates in a row were rejected.
        """
        out: list[Arch] = []
        rejected = 0
        while len(out) < n:
            want = n - len(out)
            cand = make(want)
            ok = self.objectives.cheap_feasible(cand)
            out.extend(a for a, good in zip(cand, ok.tolist(), strict=True) if good)
            rejected = 0 if ok.any() else rejected + len(cand)
            if rejected >= self.max_rejections:
                self._raise_unsatisfiable()
        return out[:n]

    def feasible_rows(self, space: ChoiceSpace, make: Callable[[int], np.ndarray],
                      n: int) -> np.ndarray:
        """:meth:`feasible_batch` on index matrices: ``make(k)`` returns (k, num_choices)
        candidate rows of ``space``; rows violating a cheap bound are dropped and redrawn.

        Returns:
            (n, num_choices) int64 rows, in the order they were accepted.

        Raises:
            InvalidInputError: ``max_rejections`` candidates in a row were rejected.
        """
        parts: list[np.ndarray] = []
        have = rejected = 0
        while have < n:
            cand = make(n - have)
            ok = self.objectives.cheap_feasible_indices(space, cand)
            parts.append(cand[ok])
            have += int(ok.sum())
            rejected = 0 if ok.any() else rejected + len(cand)
            if rejected >= self.max_rejections:
                self._raise_unsatisfiable()
        if not parts:
            return np.zeros((0, space.num_choices()), dtype=np.int64)
        return np.concatenate(parts)[:n]

    def _raise_unsatisfiable(self) -> None:
        bounds = {o.name: (o.bound.lower, o.bound.upper) for o in self.objectives
                  if o.cheap and o.bound is not None}
        hint = " or ".join(_bound_hint(name) for name in bounds)
        raise InvalidInputError(
            f"{self.max_rejections} candidates in a row violated the cheap bounds "
            f"{bounds} (lower, upper); the bounds look unsatisfiable in space "
            f"{self.space.name!r}: relax them (a larger {hint})"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space.name!r}, seed={self.seed})"


def _bound_hint(name: str) -> str:
    """What to relax for a bound on objective ``name`` (a FLOPs bound gets a FLOPs hint).

    Example:
        >>> _bound_hint("mflops"), _bound_hint("latency_ms"), _bound_hint("score")
        ('FLOPs budget (--flops)', 'latency budget (--latency)', 'score bound')
    """
    hints = {"mflops": "FLOPs budget (--flops)", "params_m": "parameter budget (--params)",
             "latency_ms": "latency budget (--latency)"}
    return hints.get(name, f"{name} bound")
