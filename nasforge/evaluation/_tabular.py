"""One metric column of a tabular benchmark (e.g. NAS-Bench-201 results), queried by arch.

Example:
    >>> import pandas as pd
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("nasbench201")
    >>> lo, hi = space.min_arch(), space.max_arch()
    >>> table = pd.DataFrame({"arch_str": [lo.to_arch_str(), hi.to_arch_str()],
    ...                       "acc": [10.0, 93.5], "pixel3_ms": [0.1, 9.0]})
    >>> acc = TabularBenchmark(table, "acc", space)
    >>> acc.evaluate_many([hi, lo, hi]).tolist(), acc.n_queries, acc.n_unique
    ([93.5, 10.0, 93.5], 3, 2)
    >>> lat = acc.column("pixel3_ms")
    >>> lat.direction, lat.cheap
    ('minimize', True)
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from typing import runtime_checkable

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.evaluation.base import AccuracyObjective
from nasforge.strategies.objectives import ArchMemo
from nasforge.strategies.objectives import Objective
from nasforge.strategies.objectives.base import Direction

if TYPE_CHECKING:
    import pandas as pd

    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["LATENCY_SUFFIX", "TableLatency", "TabularBenchmark", "is_latency_column"]

#: latency columns of a benchmark table are named ``<device>_ms``
LATENCY_SUFFIX = "_ms"


@runtime_checkable
class _KeyedByArchStr(Protocol):
    """An architecture with a NAS-Bench-201 ``arch_str`` (``NB201Arch``)."""

    def to_arch_str(self) -> str: ...


@runtime_checkable
class _ParsesArchStr(Protocol):
    """A space that parses ``arch_str`` keys (``NasBench201Space``)."""

    def arch_from_str(self, text: str) -> Arch: ...


class TabularBenchmark(AccuracyObjective):
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
        name: objective name (default: ``metric``).
    """

    def __init__(self, table: pd.DataFrame, metric: str, space: SearchSpace, *,
                 key: str | None = None, direction: Direction | None = None,
                 lower: float | None = None, upper: float | None = None,
                 cheap: bool | None = None, source: str = "", name: str | None = None) -> None:
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
        is_latency = is_latency_column(metric) or "latency" in metric
        super().__init__(name or metric, direction or ("minimize" if is_latency else "maximize"),
                         lower=lower, upper=upper,
                         cheap=is_latency if cheap is None else cheap)
        self.column_name = metric
        self.space = space
        self.key = key
        self.source = source
        self.table = table
        values = table[metric].to_numpy(dtype=np.float64)
        keys = table[key].astype(str).tolist()
        self._lookup: dict[str, float] = dict(zip(keys, values.tolist(), strict=True))
        self._memo: ArchMemo[Arch] = ArchMemo()
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

    @property
    def metric(self) -> str:
        """The column's name (labels the number in run names)."""
        return self.column_name

    def column(self, metric: str, **kwargs: Any) -> TabularBenchmark:
        """Another metric of the same table (shares the parsed rows)."""
        return TabularBenchmark(self.table, metric, self.space, key=self.key, source=self.source,
                                **kwargs)

    def _key_of(self, arch: Arch) -> str:
        if self.key == "arch_str":
            if not isinstance(arch, _KeyedByArchStr):
                raise IncompatibleComponentsError(
                    f"benchmark {self.source!r} is keyed by NB201 arch_str but got an arch of "
                    f"space {arch.space!r}; use a table keyed by arch_id"
                )
            return str(arch.to_arch_str())
        return arch.arch_id

    def _lookup_rows(self, archs: Sequence[Arch], todo: list[int]) -> list[float]:
        out = []
        for i in todo:
            k = self._key_of(archs[i])
            got = self._lookup.get(k)
            if got is None:
                raise InvalidArchitectureError(
                    f"benchmark {self.source or '(in memory)'} has no row for {k!r}; the "
                    "table must cover every architecture the search can propose"
                )
            out.append(got)
        return out

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        out = self._memo.lookup(archs, lambda todo: self._lookup_rows(archs, todo))
        self.n_queries += len(archs)
        self._seen.update(a.arch_id for a in archs)
        return out

    @property
    def n_unique(self) -> int:
        """Number of distinct architectures queried."""
        return len(self._seen)

    def archs(self) -> list[Arch]:
        """Every architecture of the table (for exhaustive predictor search on small spaces)."""
        keys = self.table[self.key].astype(str).tolist()
        if self.key == "arch_str":
            space = self.space
            if not isinstance(space, _ParsesArchStr):
                raise IncompatibleComponentsError(
                    f"space {self.space.name!r} cannot parse arch_str keys; give a table of "
                    "NAS-Bench-201 cells with space nasbench201")
            return [space.arch_from_str(k) for k in keys]
        raise IncompatibleComponentsError(
            "a table keyed by arch_id does not hold the architectures; give an 'arch_str' table"
        )

    def best_values(self, k: int = 1) -> np.ndarray:
        """The ``k`` best values of the column in its direction (for regret / top-k checks)."""
        v = np.sort(self.table[self.column_name].to_numpy(dtype=np.float64))
        return v[::-1][:k] if self.direction == "maximize" else v[:k]

    def provenance(self) -> dict[str, Any]:
        return {"kind": "tabular", "source": self.source, "metric": self.column_name,
                "key": self.key}


class TableLatency(Objective):
    """A latency column of a benchmark table, measured on a real device, as the latency source.

    Chosen where the device is resolved (:func:`~nasforge.evaluation.resolve_latency`): a
    device named like a latency column (``pixel3_ms``, see :func:`is_latency_column`) of the
    run's benchmark table. Shares the table's parsed rows.

    Args:
        table: the benchmark (any column of it).
        device: the latency column (``pixel3_ms``).
        upper: latency budget in ms.
        name: objective name (default: ``device``).

    Example:
        >>> import pandas as pd
        >>> from nasforge.search_spaces import get_space
        >>> space = get_space("nasbench201")
        >>> table = pd.DataFrame({"arch_str": [space.min_arch().to_arch_str()],
        ...                       "acc": [10.0], "pixel3_ms": [0.1]})
        >>> lat = TableLatency(TabularBenchmark(table, "acc", space), "pixel3_ms", upper=5.0)
        >>> lat.name, lat.cheap, lat.evaluate_many([space.min_arch()]).tolist()
        ('pixel3_ms', True, [0.1])
    """

    def __init__(self, table: TabularBenchmark, device: str, *, upper: float | None = None,
                 name: str | None = None) -> None:
        self.column = table.column(device, cheap=True)
        super().__init__(name or device, "minimize", upper=upper, cheap=True)
        self.device = device

    @property
    def table(self) -> pd.DataFrame:
        """The benchmark's rows (shared with its accuracy column)."""
        return self.column.table

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.asarray(list(self.column.evaluate_many(archs)), dtype=np.float64)

    def provenance(self) -> dict[str, Any]:
        return {"device": self.device, "provenance": "measured",
                "source": f"column {self.device} of {self.column.source}"}


def is_latency_column(name: str) -> bool:
    """Whether ``name`` names a latency column of a benchmark table (``<device>_ms``).

    Example:
        >>> is_latency_column("pixel3_ms"), is_latency_column("pixel7")
        (True, False)
    """
    return name.endswith(LATENCY_SUFFIX)
