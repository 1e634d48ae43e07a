"""Shared CLI helpers: the error boundary, output console, YAML/JSON loading.

The CLI needs nothing beyond typer: click's exception classes come from the click that typer
vendors (``typer._click`` on newer typer) or, on older typer, from the click it depends on.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console

from nasforge.errors import InvalidInputError
from nasforge.errors import NasforgeError
from nasforge.progress import configure_logging

__all__ = ["console", "err_console", "fail", "read_structured", "run_app", "set_verbosity"]

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

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


def _click_exception() -> type[Exception]:
    """``ClickException`` of the click typer runs on: its vendored copy, else the dependency."""
    try:
        module = importlib.import_module("typer._click.exceptions")
    except ModuleNotFoundError:  # older typer depends on click instead of vendoring it
        module = importlib.import_module("click.exceptions")
    cls: type[Exception] = module.ClickException
    return cls


def run_app(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run ``app``; user errors become one line on stderr and exit code 2, no traceback."""
    command = typer.main.get_command(app)
    usage = _click_exception()
    try:
        rv = command.main(args=argv, prog_name="nas", standalone_mode=False)
    except NasforgeError as e:
        err_console.print(f"error: {e}", markup=False, highlight=False)
        return EXIT_USAGE
    except typer.Exit as e:  # click's Exit on older typer, typer's own on newer
        return int(getattr(e, "exit_code", 0) or 0)
    except typer.Abort:
        err_console.print("aborted", markup=False)
        return 130
    except usage as e:
        e.show()  # type: ignore[attr-defined]  # a ClickException, typed through the tuple
        return int(getattr(e, "exit_code", EXIT_USAGE) or EXIT_USAGE)
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        return 130
    return rv if isinstance(rv, int) else 0


def read_structured(path: Path) -> Any:
    """Load a YAML or JSON file with one clear error for a missing or malformed file.

    Raises:
        InvalidInputError: the file is missing, unreadable or not valid YAML/JSON.
    """
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise InvalidInputError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        if str(path).endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else (
            f" line {e.lineno}" if isinstance(e, json.JSONDecodeError) else "")
        problem = getattr(e, "problem", None) or getattr(e, "msg", None) or str(e)
        kind = "JSON" if str(path).endswith(".json") else "YAML"
        raise InvalidInputError(f"{path}{where}: malformed {kind}: {problem}") from None


