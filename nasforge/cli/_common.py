"""Shared CLI helpers: the error boundary, output console, YAML/JSON loading.

The CLI needs nothing beyond typer: click's exception classes come from the click that typer
vendors (``typer._click`` on newer typer) or, on older typer, from the click it depends on.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import sys
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import typer
from rich.console import Console
from rich.console import ConsoleDimensions
from rich.table import Table

from nasforge.cli._resource_errors import resource_error_line
from nasforge.errors import NasforgeError
from nasforge.progress import configure_logging

__all__ = ["check_flags", "console", "err_console", "fail", "print_records",
           "run_app", "set_verbosity"]

#: width of the output when it is not a terminal (a pipe, a file): wide enough that a table
#: keeps each row on one line instead of folding its cells at 80 columns
PIPED_WIDTH = 1000


class _Console(Console):
    """A rich console that, writing to a pipe or a file, lays tables out :data:`PIPED_WIDTH`
    columns wide (a terminal, ``COLUMNS`` or an explicit ``width`` decide as usual).

    Example:
        >>> import io, os
        >>> _Console(file=io.StringIO()).size.width == PIPED_WIDTH or "COLUMNS" in os.environ
        True
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # rich fixes ``_width`` from ``COLUMNS`` at construction; whether the width was chosen
        # explicitly is asked of the environment at print time instead
        self._explicit_width = kwargs.get("width") is not None

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if not self._explicit_width and not self.is_terminal \
                and "COLUMNS" not in self._environ:
            return ConsoleDimensions(PIPED_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


console = _Console(highlight=False, soft_wrap=True)
err_console = _Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_USAGE = 2


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit-2 exception to raise."""
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(EXIT_USAGE)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (a test may swap it)."""

    _nasforge = True  # what configure_logging looks for: it then adds no handler of its own

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


#: third-party loggers without handlers of their own, whose warnings restate a failure that
#: nasforge reports in its own one line (psycopg: "error ignored terminating <Pipeline>" when a
#: PostgreSQL server goes away mid-batch); shown again from ``-v`` on
_LIBRARY_LOGGERS = ("psycopg",)


def set_verbosity(verbosity: int) -> None:
    """Configure nasforge's logging for this invocation (``-1`` quiet, ``0`` info, ``1+`` debug).

    Records go to stderr (stdout stays for results) through
    :func:`nasforge.progress.configure_logging`; the handler follows ``sys.stderr``, so an
    in-process caller that swaps it (a test capturing output) sees them.
    """
    root = logging.getLogger("nasforge")
    if not any(getattr(h, "_nasforge", False) for h in root.handlers):
        root.addHandler(_StderrHandler())
    configure_logging(verbosity)
    for name in _LIBRARY_LOGGERS:
        # a handler of its own keeps Python's last-resort stderr handler from printing it
        lib = logging.getLogger(name)
        quiet = [h for h in lib.handlers if isinstance(h, logging.NullHandler)]
        if verbosity < 1 and not quiet:
            lib.addHandler(logging.NullHandler())
        elif verbosity >= 1:
            for h in quiet:
                lib.removeHandler(h)


def _click_exception() -> type[Exception]:
    """``ClickException`` of the click typer runs on: its vendored copy, else the dependency."""
    try:
        module = importlib.import_module("typer._click.exceptions")
    except ModuleNotFoundError:  # older typer depends on click instead of vendoring it
        module = importlib.import_module("click.exceptions")
    cls: type[Exception] = module.ClickException
    return cls


def flow_help(app: typer.Typer) -> None:
    """Let every command's help text (its docstring) wrap to the terminal: typer's rich help
    keeps a paragraph's line breaks, which at 80 columns break each 92-column docstring
    line in two. A paragraph starting with ``\\b`` keeps its lines (click's marker)."""
    import inspect

    for info in app.registered_commands:
        doc = info.help or inspect.getdoc(info.callback) or ""
        first, *rest = doc.split("\n\n")
        info.help = "\n\n".join([first, *(p if p.startswith("\b") else " ".join(p.split("\n"))
                                          for p in rest)])
    for group in app.registered_groups:
        if group.typer_instance is not None:
            flow_help(group.typer_instance)


def run_app(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run ``app``; user errors become one line on stderr and exit code 2, no traceback."""
    command = typer.main.get_command(app)
    usage = _click_exception()
    try:
        rv = command.main(args=argv, prog_name="nas", standalone_mode=False)
    except NasforgeError as e:
        one = " ".join(ln.strip() for ln in str(e).splitlines() if ln.strip())
        err_console.print(f"error: {one}", markup=False, highlight=False)
        return EXIT_USAGE
    except typer.Exit as e:  # click's Exit on older typer, typer's own on newer
        return int(getattr(e, "exit_code", 0) or 0)
    except typer.Abort:
        err_console.print("aborted", markup=False)
        return 130
    except usage as e:  # a bad flag value, a missing argument: one line, like ours
        err_console.print(f"error: {_usage_line(e)}", markup=False, highlight=False)
        return int(getattr(e, "exit_code", EXIT_USAGE) or EXIT_USAGE)
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        return 130
    except Exception as e:  # a full disk, no memory, an unreadable safetensors file: one line
        line = resource_error_line(e, sys.argv[1:] if argv is None else argv)
        if line is None:  # a bug: its traceback is what a report needs
            raise
        err_console.print(f"error: {line}", markup=False, highlight=False)
        return EXIT_USAGE
    return rv if isinstance(rv, int) else 0


def _usage_line(e: Exception) -> str:
    """Click's usage error as one line: its message and the command to ask for help."""
    fmt = getattr(e, "format_message", None)
    message = " ".join(str(fmt() if callable(fmt) else e).split())
    ctx = getattr(e, "ctx", None)
    path = getattr(ctx, "command_path", "") if ctx is not None else ""
    return f"{message} (see `{path} --help`)" if path else message


def check_flags(checks: Sequence[tuple[str, Any, str, float | None, float | None]]) -> None:
    """Range checks of the flags given, before any work: ``(flag, value, kind, low, high)``,
    kind ``int``, ``num`` (closed range) or ``pos`` (a number above ``low``); None values
    (flags left out) are skipped.

    Example:
        >>> check_flags([("--workers", 4, "int", 0, 512), ("--val-images", None, "int", 1, None)])
        >>> check_flags([("--workers", -1, "int", 0, 512)])
        Traceback (most recent call last):
        ...
        nasforge.errors.InvalidInputError: --workers must be an integer >= 0 and <= 512, got -1
    """
    from nasforge.validation import check_int
    from nasforge.validation import check_number

    for flag, value, kind, low, high in checks:
        if value is None:
            continue
        if kind == "int":
            check_int(value, flag, low=None if low is None else int(low),
                      high=None if high is None else int(high))
        else:
            check_number(value, flag, low=low, high=high, low_open=kind == "pos")


def print_records(title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                  as_json: bool = False) -> None:
    """Result rows on stdout: a table of ``columns`` (floats with two decimals), or with
    ``as_json`` a JSON list of the whole rows (NaN as null).

    Example:
        >>> print_records("t", [{"a": 1.0, "b": float("nan")}], ["a"], as_json=True)
        [
          {
            "a": 1.0,
            "b": null
          }
        ]
    """
    if as_json:
        plain = [{str(k): None if isinstance(v, float) and math.isnan(v) else v
                  for k, v in row.items()} for row in rows]
        console.print_json(json.dumps(plain, default=str))
        return
    table = Table(title=title)
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        table.add_row(*[f"{v:.2f}" if isinstance(v, float) else str(v)
                        for v in (row.get(c) for c in columns)])
    console.print(table)


