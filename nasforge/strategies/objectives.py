"""Objectives: what a search measures, in which direction, under which bound.

One interface, :class:`Objective`: a name, a direction (``minimize`` / ``maximize``), an optional
:class:`Bound` (lower and/or upper), a ``cheap`` flag and a vectorised
``evaluate_many(archs) -> np.ndarray``. Cheap objectives (FLOPs, params, a latency model, a
predictor) are computed for every proposed candidate so that candidates violating their bounds
are rejected *before* the expensive ones (supernet accuracy, a tabular benchmark query) run
(Archai's ``SearchObjectives`` with ``compute_intensive``).

:class:`SearchObjectives` collects objectives, checks feasibility and gives the scalar score of
single-objective mode (the primary objective, sign-adjusted so that larger is better; ``-inf``
when a bound is violated).

Example:
    >>> import numpy as np
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("nasbench201")
    >>> objs = SearchObjectives([FlopsObjective(space, upper=100.0), ParamsObjective(space)],
    ...                         primary="params_m", mode="single")
    >>> archs = [space.sample(np.random.default_rng(0)) for _ in range(3)]
    >>> objs.evaluate(archs).shape
    (3, 2)
"""

from __future__ import annotations

import abc
import difflib
import math
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import ChoiceSpace
    from nasforge.search_spaces.base import SearchSpace

__all__ = [
    "Bound",
    "CallableObjective",
    "Direction",
    "FlopsObjective",
    "LatencyObjective",
    "Objective",
    "ParamsObjective",
    "PredictorObjective",
    "SearchObjectives",
    "SupernetAccuracyObjective",
    "TabularBenchmark",
]

Direction = Literal["minimize", "maximize"]
_DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class Bound:
    """A feasibility bound on an objective's value: ``lower <= value <= upper``.

    Attributes:
        lower: smallest feasible value, or None.
        upper: largest feasible value, or None (e.g. a latency budget in ms).
    """

    lower: float | None = None
    upper: float | None = None

    def __post_init__(self) -> None:
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise InvalidInputError(
                f"a bound needs `lower <= upper`, but got lower={self.lower}, upper={self.upper}; "
                "swap them or drop one"
            )

    def satisfied(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the values inside the bound (NaN is never inside)."""
        v = np.asarray(values, dtype=np.float64)
        ok = ~np.isnan(v)
        if self.lower is not None:
            ok &= v >= self.lower
        if self.upper is not None:
            ok &= v <= self.upper
        return ok

    def violation(self, values: np.ndarray) -> np.ndarray:
        """Non-negative amount by which each value is outside the bound (0 when inside)."""
        v = np.asarray(values, dtype=np.float64)
        out = np.zeros_like(v)
        if self.lower is not None:
            out += np.maximum(self.lower - v, 0.0)
        if self.upper is not None:
            out += np.maximum(v - self.upper, 0.0)
        return np.where(np.isnan(v), np.inf, out)


def _make_bound(lower: float | None, upper: float | None) -> Bound | None:
    return None if lower is None and upper is None else Bound(lower, upper)


class Objective(abc.ABC):
    """Base of every objective.

    Subclasses implement :meth:`evaluate_many`; everything else is data set in ``__init__``.

    Attributes:
        name: column name in results (``flops_m``, ``pixel6_ms``, ``cifar10_val``, ...).
        direction: ``minimize`` or ``maximize``.
        bound: feasibility bound, or None.
        cheap: computed before expensive objectives, to reject candidates early.
    """

    name: str
    direction: Direction
    bound: Bound | None
    cheap: bool

    def __init__(self, name: str, direction: Direction, *, lower: float | None = None,
                 upper: float | None = None, cheap: bool = True) -> None:
        if direction not in _DIRECTIONS:
            raise InvalidInputError(
                f"objective {name!r}: direction must be 'minimize' or 'maximize', got {direction!r}"
            )
        self.name = name
        self.direction = direction
        self.bound = _make_bound(lower, upper)
        self.cheap = cheap

    @abc.abstractmethod
    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        """Values of the objective: float64 array of shape ``(len(archs),)``."""

    def evaluate(self, arch: Arch) -> float:
        """The value for one architecture."""
        return float(self.evaluate_many([arch])[0])

    @property
    def sign(self) -> float:
        """+1 for ``maximize``, -1 for ``minimize`` (``sign * value``: larger is better)."""
        return 1.0 if self.direction == "maximize" else -1.0

    def provenance(self) -> dict[str, Any]:
        """What produced the numbers (recorded in every result)."""
        return {"kind": type(self).__name__}

    def describe(self) -> dict[str, Any]:
        """Name, direction, bound, cheapness and provenance as a JSON-ready dict."""
        b = self.bound
        return {
            "name": self.name,
            "direction": self.direction,
            "lower": None if b is None else b.lower,
            "upper": None if b is None else b.upper,
            "cheap": self.cheap,
            "provenance": self.provenance(),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, direction={self.direction!r})"


class CallableObjective(Objective):
    """Wrap a vectorised function ``fn(archs) -> values`` (tests, user metrics).

    Args:
        name: objective name.
        fn: maps a sequence of archs to a sequence of floats of the same length.
        direction: ``minimize`` or ``maximize``.
        lower: lower feasibility bound.
        upper: upper feasibility bound.
        cheap: whether it filters before the expensive objectives.
    """

    def __init__(self, name: str, fn: Callable[[Sequence[Arch]], Iterable[float]],
                 direction: Direction = "maximize", *, lower: float | None = None,
                 upper: float | None = None, cheap: bool = False) -> None:
        super().__init__(name, direction, lower=lower, upper=upper, cheap=cheap)
        self.fn = fn

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        out = np.asarray(list(self.fn(archs)), dtype=np.float64)
        if out.shape != (len(archs),):
            raise InvalidInputError(
                f"objective {self.name!r}: the function returned shape {out.shape} for "
                f"{len(archs)} archs; it must return one float per arch"
            )
        return out


class FlopsObjective(Objective):
    """MFLOPs (= MACs / 1e6, the field's convention) from the space's analytic count.

    Args:
        space: the search space.
        lower: lower bound in MFLOPs.
        upper: upper bound in MFLOPs.
        reference: use ``space.flops_reference`` (the paper's counting rule) instead of
            ``space.flops`` (what the built module executes).
        name: column name.
    """

    def __init__(self, space: SearchSpace, *, lower: float | None = None,
                 upper: float | None = None, reference: bool = False,
                 name: str = "flops_m") -> None:
        super().__init__(name, "minimize", lower=lower, upper=upper, cheap=True)
        self.space = space
        self.reference = reference
        self._cache: dict[Arch, float] = {}

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        fn = self.space.flops_reference if self.reference else self.space.flops
        out = np.empty(len(archs))
        for i, a in enumerate(archs):
            v = self._cache.get(a)
            if v is None:
                v = self._cache[a] = fn(a) / 1e6
            out[i] = v
        return out

    def provenance(self) -> dict[str, Any]:
        return {"kind": "flops", "space": self.space.name, "rule":
                "flops_reference" if self.reference else "flops", "unit": "MMACs"}


class ParamsObjective(Objective):
    """Trainable parameters in millions, from the space's blocks.

    Args:
        space: the search space.
        lower: lower bound in M.
        upper: upper bound in M.
        name: column name.
    """

    def __init__(self, space: SearchSpace, *, lower: float | None = None,
                 upper: float | None = None, name: str = "params_m") -> None:
        super().__init__(name, "minimize", lower=lower, upper=upper, cheap=True)
        self.space = space
        self._cache: dict[Arch, float] = {}

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        out = np.empty(len(archs))
        for i, a in enumerate(archs):
            v = self._cache.get(a)
            if v is None:
                v = self._cache[a] = self.space.params(a) / 1e6
            out[i] = v
        return out

    def provenance(self) -> dict[str, Any]:
        return {"kind": "params", "space": self.space.name, "unit": "M"}


class LatencyObjective(Objective):
    """Device latency in ms from a latency model's vectorised ``predict_many``.

    Args:
        model: a latency model (``predict_many(archs) -> np.ndarray`` in ms; a ``profile``
            attribute with the device's name and provenance is recorded when present).
        lower: lower bound in ms (e.g. to drop degenerate near-zero cells).
        upper: latency budget in ms.
        name: column name; defaults to ``<device>_ms``.
    """

    def __init__(self, model: Any, *, lower: float | None = None, upper: float | None = None,
                 name: str | None = None) -> None:
        if not callable(getattr(model, "predict_many", None)):
            raise IncompatibleComponentsError(
                f"LatencyObjective needs a latency model with predict_many(archs); "
                f"{type(model).__name__} has none"
            )
        device = getattr(model, "name", None) or getattr(
            getattr(model, "profile", None), "name", None) or "device"
        super().__init__(name or f"{device}_ms", "minimize", lower=lower, upper=upper,
                         cheap=True)
        self.model = model
        self.device = str(device)

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.asarray(self.model.predict_many(list(archs)), dtype=np.float64)

    def provenance(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "latency", "device": self.device, "unit": "ms",
                               "model": type(self.model).__name__}
        profile = getattr(self.model, "profile", None)
        if profile is not None:
            to_dict = getattr(profile, "to_dict", None)
            if callable(to_dict):
                out["profile"] = to_dict()
            else:
                out["provenance"] = str(getattr(profile, "provenance", ""))
        return out


class PredictorObjective(Objective):
    """A fitted surrogate (e.g. GBDT accuracy predictor) on ``space.encode_many``.

    A whole batch is encoded at once; an XGBoost-backed predictor (``booster_`` attribute) is
    called through ``Booster.inplace_predict`` (one call per batch, no DMatrix).

    Args:
        predictor: fitted; ``predict(X)`` returns an array or an object with ``.mean``.
        space: the space whose ``encode_many`` gives the predictor's features.
        name: column name.
        direction: ``maximize`` for accuracy predictors.
        lower: lower bound.
        upper: upper bound.
        cheap: surrogates are cheap, but play the expensive (accuracy) role by default.
    """

    def __init__(self, predictor: Any, space: SearchSpace, *, name: str = "pred_acc",
                 direction: Direction = "maximize", lower: float | None = None,
                 upper: float | None = None, cheap: bool = False) -> None:
        super().__init__(name, direction, lower=lower, upper=upper, cheap=cheap)
        self.predictor = predictor
        self.space = space

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        if not archs:
            return np.zeros(0)
        X = self.space.encode_many(list(archs))
        booster = getattr(self.predictor, "booster_", None)
        if booster is not None and hasattr(booster, "inplace_predict"):
            # XGBoost fast path: one inplace_predict call per batch, no DMatrix
            return np.asarray(booster.inplace_predict(X), dtype=np.float64).reshape(-1)
        pred = self.predictor.predict(X)
        return np.asarray(getattr(pred, "mean", pred), dtype=np.float64).reshape(-1)

    def provenance(self) -> dict[str, Any]:
        return {"kind": "predictor", "predictor": type(self.predictor).__name__,
                "space": self.space.name}


class TabularBenchmark(Objective):
    """One metric column of a tabular benchmark (e.g. NAS-Bench-201 results), queried by arch.

    Rows are keyed by NB201 ``arch_str`` (column ``arch_str``) or by ``arch_id`` (column
    ``arch_id``). Every looked-up architecture counts as a query (:attr:`n_queries`); distinct
    ones are counted in :attr:`n_unique`.

    Args:
        table: the rows (a pandas DataFrame).
        metric: the column to return.
        space: the search space of the rows.
        key: ``arch_str`` or ``arch_id``.
        direction: defaults to ``minimize`` for columns ending in ``_ms``, else ``maximize``.
        lower: lower bound.
        upper: upper bound.
        cheap: True for columns that are cheap to know in practice (latency), False for
            accuracy (the query being counted stands for a training run).
        source: where the table came from (recorded in provenance).
    """

    def __init__(self, table: pd.DataFrame, metric: str, space: SearchSpace, *,
                 key: str | None = None, direction: Direction | None = None,
                 lower: float | None = None, upper: float | None = None,
                 cheap: bool | None = None, source: str = "") -> None:
        columns = [str(c) for c in table.columns]
        if metric not in columns:
            close = difflib.get_close_matches(metric, columns, n=1, cutoff=0.3)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidInputError(
                f"benchmark table {source or '(in memory)'} has no metric column {metric!r}{hint} "
                f"Columns: {', '.join(columns)}"
            )
        if key is None:
            key = "arch_str" if "arch_str" in columns else "arch_id"
        if key not in ("arch_str", "arch_id") or key not in columns:
            raise InvalidInputError(
                f"benchmark table {source or '(in memory)'} must have a key column 'arch_str' "
                f"(NAS-Bench-201 cells) or 'arch_id'; got key={key!r}, columns: "
                f"{', '.join(columns)}"
            )
        is_latency = metric.endswith("_ms") or "latency" in metric
        super().__init__(metric, direction or ("minimize" if is_latency else "maximize"),
                         lower=lower, upper=upper,
                         cheap=is_latency if cheap is None else cheap)
        self.space = space
        self.key = key
        self.source = source
        self.table = table
        values = table[metric].to_numpy(dtype=np.float64)
        keys = table[key].astype(str).tolist()
        self._lookup: dict[str, float] = dict(zip(keys, values.tolist(), strict=True))
        self._by_arch: dict[Arch, float] = {}
        self.n_queries = 0
        self._seen: set[str] = set()

    @classmethod
    def from_csv(cls, path: str | Path, metric: str, space: SearchSpace,
                 **kwargs: Any) -> TabularBenchmark:
        """Read a benchmark CSV (one row per architecture).

        Args:
            path: the CSV file.
            metric: the metric column (``cifar10_val``, ``pixel3_ms``, ...).
            space: the search space of the rows.
            **kwargs: passed to the constructor (``key``, ``direction``, bounds, ``cheap``).

        Raises:
            InvalidInputError: the file is missing or unreadable, or lacks the metric or key
                column (the message lists the columns and the closest name).
        """
        import pandas as pd

        p = Path(path)
        if not p.is_file():
            raise InvalidInputError(f"benchmark table {str(p)!r} does not exist; give a CSV file")
        try:
            table = pd.read_csv(p)
        except (ValueError, OSError) as exc:  # pandas' parser errors are ValueErrors
            raise InvalidInputError(
                f"benchmark table {str(p)!r} is not a readable CSV: {exc}"
            ) from None
        return cls(table, metric, space, source=str(p), **kwargs)

    def column(self, metric: str, **kwargs: Any) -> TabularBenchmark:
        """Another metric of the same table (shares the parsed rows)."""
        return TabularBenchmark(self.table, metric, self.space, key=self.key, source=self.source,
                                **kwargs)

    def _key_of(self, arch: Arch) -> str:
        if self.key == "arch_str":
            to_str = getattr(arch, "to_arch_str", None)
            if to_str is None:
                raise IncompatibleComponentsError(
                    f"benchmark {self.source!r} is keyed by NB201 arch_str but got an arch of "
                    f"space {arch.space!r}; use a table keyed by arch_id"
                )
            return str(to_str())
        return arch.arch_id

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        out = np.empty(len(archs))
        for i, a in enumerate(archs):
            v = self._by_arch.get(a)
            if v is None:
                k = self._key_of(a)
                got = self._lookup.get(k)
                if got is None:
                    raise InvalidArchitectureError(
                        f"benchmark {self.source or '(in memory)'} has no row for {k!r}; the "
                        "table must cover every architecture the search can propose"
                    )
                v = self._by_arch[a] = got
            out[i] = v
            self.n_queries += 1
            self._seen.add(a.arch_id)
        return out

    @property
    def n_unique(self) -> int:
        """Number of distinct architectures queried."""
        return len(self._seen)

    def archs(self) -> list[Arch]:
        """Every architecture of the table (for exhaustive predictor search on small spaces)."""
        keys = self.table[self.key].astype(str).tolist()
        if self.key == "arch_str":
            parse = getattr(self.space, "arch_from_str", None)
            if parse is None:
                raise IncompatibleComponentsError(
                    f"space {self.space.name!r} cannot parse arch_str keys")
            return [parse(k) for k in keys]
        raise IncompatibleComponentsError(
            "a table keyed by arch_id does not hold the architectures; give an 'arch_str' table"
        )

    def best_values(self, k: int = 1) -> np.ndarray:
        """The ``k`` best values of the column in its direction (for regret / top-k checks)."""
        v = np.sort(self.table[self.name].to_numpy(dtype=np.float64))
        return v[::-1][:k] if self.direction == "maximize" else v[:k]

    def provenance(self) -> dict[str, Any]:
        return {"kind": "tabular", "source": self.source, "metric": self.name, "key": self.key}


class SupernetAccuracyObjective(Objective):
    """BN-recalibrated top-1 (%) of subnets of a weight-shared supernet, cached by ``arch_id``.

    Each distinct arch is activated, its BatchNorm statistics recalibrated on ``recal_batches``
    training batches, and scored on the validation split
    (:func:`nasforge.supernet.evaluate.evaluate_subnet`).

    Args:
        supernet: a trained :class:`~nasforge.supernet.Supernet`.
        data: the dataset (:class:`~nasforge.supernet.data.ImageData`): training batches
            recalibrate BN, the validation split scores.
        recal_batches: K, the recalibration batches.
        batch_size: batch size of recalibration and evaluation.
        seed: which training batches recalibrate (fixed, so scores are reproducible).
        device: compute device (``cpu``, ``cuda``).
        checkpoint: where the supernet came from (recorded in provenance).
        lower: lower feasibility bound (%).
        name: column name.
    """

    def __init__(self, supernet: Any, data: Any, *, recal_batches: int = 2,
                 batch_size: int = 128, seed: int = 0, device: str = "cpu",
                 checkpoint: str | Path | None = None, lower: float | None = None,
                 name: str = "accuracy") -> None:
        super().__init__(name, "maximize", lower=lower, cheap=False)
        if not callable(getattr(supernet, "set_active", None)):
            raise IncompatibleComponentsError(
                f"SupernetAccuracyObjective needs a supernet with set_active(arch); "
                f"{type(supernet).__name__} has none"
            )
        self.supernet = supernet
        self.data = data
        self.recal_batches = recal_batches
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self._cache: dict[str, float] = {}

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        from nasforge.supernet.evaluate import evaluate_subnet

        out = np.empty(len(archs))
        for i, arch in enumerate(archs):
            hit = self._cache.get(arch.arch_id)
            if hit is None:
                acc = evaluate_subnet(self.supernet, arch, self.data,
                                      recal_batches=self.recal_batches,
                                      batch_size=self.batch_size, seed=self.seed,
                                      device=self.device)
                hit = self._cache[arch.arch_id] = 100.0 * acc.top1
            out[i] = hit
        return out

    def provenance(self) -> dict[str, Any]:
        return {"kind": "supernet top-1 %", "checkpoint": self.checkpoint,
                "data": self.data.name, "input_size": self.data.input_size,
                "resolution_scale": self.data.resolution_scale,  # subnet r scored at r * scale px
                "val_images": self.data.num_val, "bn_recalibration_batches": self.recal_batches,
                "batch_size": self.batch_size}


class SearchObjectives:
    """The objectives of one search, in column order.

    Args:
        objectives: the objectives; names must be unique.
        primary: name of the objective optimised in single-objective mode (its sign-adjusted
            value is the score); defaults to the first expensive objective, else the first one.
        mode: ``single`` (maximise the primary's score under all bounds) or ``pareto``
            (the non-dominated set over :attr:`pareto_names`).
        pareto: names of the objectives of the Pareto front (default: all).

    Raises:
        InvalidInputError: empty list, duplicate names, unknown primary or mode.
    """

    def __init__(self, objectives: Sequence[Objective], *, primary: str | None = None,
                 mode: Literal["single", "pareto"] = "single",
                 pareto: Sequence[str] | None = None) -> None:
        objs = list(objectives)
        if not objs:
            raise InvalidInputError("a search needs at least one objective; got none")
        names = [o.name for o in objs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InvalidInputError(
                f"objective names must be unique, but {', '.join(dup)} appear twice; pass "
                "name=... to tell them apart"
            )
        if mode not in ("single", "pareto"):
            raise InvalidInputError(f"mode must be 'single' or 'pareto', got {mode!r}")
        self.objectives = objs
        self.names = names
        self.mode = mode
        if primary is None:
            expensive = [o.name for o in objs if not o.cheap]
            primary = expensive[0] if expensive else names[0]
        self._check_names([primary], "primary")
        self.primary = primary
        self.primary_index = names.index(primary)
        self.pareto_names = list(pareto) if pareto is not None else list(names)
        self._check_names(self.pareto_names, "pareto")
        self.pareto_index = [names.index(n) for n in self.pareto_names]
        self.signs = np.array([o.sign for o in objs])
        self.cheap_index = [i for i, o in enumerate(objs) if o.cheap]
        self.expensive_index = [i for i, o in enumerate(objs) if not o.cheap]
        self._cheap_cache: dict[Arch, np.ndarray] = {}
        self._row_cache: dict[Any, dict[bytes, np.ndarray]] = {}

    def _check_names(self, wanted: Sequence[str], what: str) -> None:
        for n in wanted:
            if n not in self.names:
                close = difflib.get_close_matches(n, self.names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise InvalidInputError(
                    f"{what} objective {n!r} is not among the objectives{hint} Available: "
                    f"{', '.join(self.names)}"
                )

    def __len__(self) -> int:
        return len(self.objectives)

    def __iter__(self) -> Any:
        return iter(self.objectives)

    def __getitem__(self, name: str) -> Objective:
        self._check_names([name], "requested")
        return self.objectives[self.names.index(name)]

    @property
    def has_cheap_bounds(self) -> bool:
        """Whether some cheap objective has a bound (so rejection sampling is needed)."""
        return any(self.objectives[i].bound is not None for i in self.cheap_index)

    # ---- evaluation ----------------------------------------------------------------------
    def evaluate_cheap(self, archs: Sequence[Arch]) -> np.ndarray:
        """Values of the cheap objectives only: shape ``(len(archs), len(cheap_index))``.

        Results are memoised per architecture so that the full evaluation that follows a
        rejection filter does not recompute them.
        """
        out = np.empty((len(archs), len(self.cheap_index)))
        todo = [i for i, a in enumerate(archs) if a not in self._cheap_cache]
        if todo:
            sub = [archs[i] for i in todo]
            cols = [self.objectives[j].evaluate_many(sub) for j in self.cheap_index]
            vals = np.stack(cols, axis=1) if cols else np.zeros((len(sub), 0))
            if len(self._cheap_cache) > 200_000:
                self._cheap_cache.clear()
            for r, i in enumerate(todo):
                self._cheap_cache[archs[i]] = vals[r]
        for i, a in enumerate(archs):
            out[i] = self._cheap_cache[a]
        return out

    def evaluate_cheap_indices(self, space: ChoiceSpace, matrix: np.ndarray) -> np.ndarray:
        """:meth:`evaluate_cheap` of the rows of an index matrix of ``space``.

        Values are memoised per row, so a row seen before costs a dict lookup and no
        architecture is built for it; only unseen rows become architectures (one batched
        :meth:`evaluate_cheap` call).

        Args:
            space: the space the rows index (see ``ChoiceSpace.to_indices``).
            matrix: (n, num_choices) option indices of valid architectures.

        Returns:
            float64 array of shape ``(n, len(cheap_index))``.
        """
        idx = np.asarray(matrix)
        n = len(idx)
        if n == 0:
            return np.zeros((0, len(self.cheap_index)))
        keys = space.row_keys(idx)
        cache = self._row_cache.setdefault(space, {})
        miss = [i for i, k in enumerate(keys) if k not in cache]
        if miss:
            if len(cache) > 200_000:
                cache.clear()
            vals = self.evaluate_cheap(space.from_indices(idx[miss], check=False))
            for i, v in zip(miss, vals, strict=True):
                cache[keys[i]] = v
        return np.asarray([cache[k] for k in keys], dtype=np.float64).reshape(
            n, len(self.cheap_index))

    def cheap_feasible_indices(self, space: ChoiceSpace, matrix: np.ndarray) -> np.ndarray:
        """:meth:`cheap_feasible` of the rows of an index matrix (see
        :meth:`evaluate_cheap_indices`): bool array of shape ``(n,)``."""
        n = len(matrix)
        if not self.has_cheap_bounds or n == 0:
            return np.ones(n, dtype=bool)
        return self._within_cheap_bounds(self.evaluate_cheap_indices(space, matrix))

    def _within_cheap_bounds(self, vals: np.ndarray) -> np.ndarray:
        ok = np.ones(len(vals), dtype=bool)
        for c, j in enumerate(self.cheap_index):
            b = self.objectives[j].bound
            if b is not None:
                ok &= b.satisfied(vals[:, c])
        return ok

    def cheap_feasible(self, archs: Sequence[Arch]) -> np.ndarray:
        """Mask of the archs that satisfy every cheap bound (all True when there is none)."""
        if not self.has_cheap_bounds or not archs:
            return np.ones(len(archs), dtype=bool)
        return self._within_cheap_bounds(self.evaluate_cheap(archs))

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        """Every objective: shape ``(len(archs), len(self))``, columns in :attr:`names` order."""
        out = np.empty((len(archs), len(self.objectives)))
        if not archs:
            return out
        if self.cheap_index:
            out[:, self.cheap_index] = self.evaluate_cheap(archs)
        for j in self.expensive_index:
            out[:, j] = self.objectives[j].evaluate_many(archs)
        return out

    # ---- feasibility and scores ----------------------------------------------------------
    def violation(self, values: np.ndarray) -> np.ndarray:
        """Total bound violation per row of ``values`` (0 for feasible rows)."""
        v = np.atleast_2d(np.asarray(values, dtype=np.float64))
        out = np.zeros(v.shape[0])
        for j, o in enumerate(self.objectives):
            if o.bound is not None:
                out += o.bound.violation(v[:, j])
        return out

    def feasible(self, values: np.ndarray) -> np.ndarray:
        """Mask of the rows of ``values`` that satisfy every bound."""
        return self.violation(values) == 0.0

    def score(self, values: np.ndarray) -> np.ndarray:
        """Single-objective score (larger is better): ``sign * primary``, ``-inf`` if infeasible.

        Args:
            values: shape ``(n, len(self))``.

        Returns:
            float64 array of shape ``(n,)``.
        """
        v = np.atleast_2d(np.asarray(values, dtype=np.float64))
        s = self.signs[self.primary_index] * v[:, self.primary_index]
        s = np.where(np.isnan(s), -math.inf, s)
        return np.where(self.feasible(v), s, -math.inf)

    def minimization_matrix(self, values: np.ndarray) -> np.ndarray:
        """The Pareto objectives turned into minimisation: shape ``(n, len(pareto_names))``."""
        v = np.atleast_2d(np.asarray(values, dtype=np.float64))
        return -(v[:, self.pareto_index] * self.signs[self.pareto_index])

    def describe(self) -> list[dict[str, Any]]:
        """Every objective's :meth:`Objective.describe`, in column order."""
        return [o.describe() for o in self.objectives]
