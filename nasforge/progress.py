"""One progress helper for long work: training, search, profiling, validation.

Library code opens a :class:`ProgressBar`, advances it and sets the fields it wants shown
(loss, best accuracy, images/s); it never builds a console of its own. What a person sees is
decided by whoever configured logging (the ``nas`` CLI does it once with
:func:`configure_logging`):

- the ``nasforge.progress`` logger enabled for INFO and stderr a terminal: a rich bar with
  count, elapsed time, ETA and the fields;
- enabled but not a terminal (logs, CI): one plain INFO line at most every ``log_every_s``
  seconds and one at the end, with the same count, rate, ETA and fields;
- disabled (a library caller who configured nothing, or ``enabled=False``): nothing.

Example:
    >>> import logging
    >>> with ProgressBar("demo", total=3) as bar:
    ...     for i in range(3):
    ...         bar.advance(loss=f"{1.0 / (i + 1):.2f}")
    >>> bar.completed
    3
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

__all__ = ["ProgressBar", "configure_logging"]

logger = logging.getLogger("nasforge.progress")


class ProgressBar:
    """A progress bar with ETA over ``total`` units of work (``None``: unknown total).

    Args:
        description: what is being done, e.g. ``"search"`` or ``"train elasticvit"``.
        total: units of work expected, or ``None``.
        completed: units already done (a resumed run starts its bar there).
        enabled: ``False`` silences the bar whatever logging says (rank > 0 of a DDP run).
        log_every_s: the interval of plain lines when stderr is not a terminal.
    """

    def __init__(self, description: str, total: int | None = None, *, completed: int = 0,
                 enabled: bool = True, log_every_s: float = 30.0) -> None:
        self.description = description
        self.total = total
        self.completed = completed
        self.fields: dict[str, str] = {}
        self.log_every_s = log_every_s
        self._start_done = completed
        self._on = enabled and logger.isEnabledFor(logging.INFO)
        self._rich: Any = None
        self._task: Any = None
        self._t0 = time.monotonic()
        self._last_log = self._t0

    @property
    def shown(self) -> bool:
        """Whether the bar shows anything (enabled, and logging shows INFO)."""
        return self._on

    def __enter__(self) -> ProgressBar:
        if self._on and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn
            from rich.progress import MofNCompleteColumn
            from rich.progress import Progress
            from rich.progress import TextColumn
            from rich.progress import TimeElapsedColumn
            from rich.progress import TimeRemainingColumn

            self._rich = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(),
                                  TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                  console=Console(stderr=True, highlight=False))
            self._rich.start()
            self._task = self._rich.add_task(self.description, total=self.total,
                                             completed=self.completed, info="")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def advance(self, n: int = 1, **fields: Any) -> None:
        """Count ``n`` more units done and update the shown fields."""
        self.update(self.completed + n, **fields)

    def update(self, completed: int, **fields: Any) -> None:
        """Set the units done to ``completed`` and update the shown fields."""
        self.completed = completed
        self.fields.update({k: str(v) for k, v in fields.items()})
        if self._rich is not None:
            self._rich.update(self._task, completed=completed, info=self._info())
        elif self._on:
            now = time.monotonic()
            if now - self._last_log >= self.log_every_s:
                self._last_log = now
                logger.info("%s", self.line())

    def eta_s(self) -> float | None:
        """Seconds left at the rate seen since this bar opened, or ``None`` if unknown."""
        done = self.completed - self._start_done
        elapsed = time.monotonic() - self._t0
        if self.total is None or done <= 0 or elapsed <= 0:
            return None
        return max(0.0, (self.total - self.completed) * elapsed / done)

    def line(self) -> str:
        """The plain-text form of the bar: ``desc 40/100 (40%) 2.1 it/s, ETA 28 s, loss 0.4``."""
        elapsed = time.monotonic() - self._t0
        done = self.completed - self._start_done
        count = (f"{self.completed}/{self.total} ({100 * self.completed / self.total:.0f}%)"
                 if self.total else f"{self.completed}")
        parts = [f"{self.description} {count}"]
        if elapsed > 0 and done > 0:
            parts.append(f"{done / elapsed:.3g} it/s")
        eta = self.eta_s()
        if eta is not None:
            parts.append(f"ETA {eta:.0f} s")
        if self.fields:
            parts.append(self._info())
        return ", ".join(parts)

    def close(self) -> None:
        """Stop the bar; a plain-text bar logs its final line."""
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
        elif self._on:
            self._on = False
            logger.info("%s", self.line())

    def _info(self) -> str:
        return " ".join(f"{k} {v}" for k, v in self.fields.items())


def configure_logging(verbosity: int = 0) -> None:
    """Route nasforge's log records to stderr; the CLI calls this once at start.

    Args:
        verbosity: ``-1`` warnings only (``--quiet``), ``0`` info (progress and notices),
            ``1`` and above debug.
    """
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    root = logging.getLogger("nasforge")
    root.setLevel(level)
    if not any(getattr(h, "_nasforge", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._nasforge = True  # type: ignore[attr-defined]
        root.addHandler(handler)
