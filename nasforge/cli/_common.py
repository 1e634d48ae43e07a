"""Shared CLI helpers: the error boundary, output console, YAML/JSON loading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import typer
import yaml
from rich.console import Console

from nasforge.errors import InvalidInputError
from nasforge.errors import NasforgeError

__all__ = ["console", "err_console", "fail", "read_structured", "run_app"]

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_USAGE = 2


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit-2 exception to raise."""
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(EXIT_USAGE)


def _click_exceptions() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...],
                                  tuple[type[BaseException], ...]]:
    """(exit, abort, usage-error) exception classes of click and of typer's vendored click."""
    exits: list[type[BaseException]] = [click.exceptions.Exit, typer.Exit]
    aborts: list[type[BaseException]] = [click.exceptions.Abort, typer.Abort]
    usage: list[type[BaseException]] = [click.ClickException]
    vendored = getattr(getattr(typer, "_click", None), "exceptions", None)
    if vendored is not None:
        usage.append(vendored.ClickException)
    return tuple(exits), tuple(aborts), tuple(usage)


def run_app(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run ``app``; user errors become one line on stderr and exit code 2, no traceback."""
    command = typer.main.get_command(app)
    exits, aborts, usage = _click_exceptions()
    try:
        rv = command.main(args=argv, prog_name="nas", standalone_mode=False)
    except NasforgeError as e:
        err_console.print(f"error: {e}", markup=False, highlight=False)
        return EXIT_USAGE
    except exits as e:
        return int(getattr(e, "exit_code", 0) or 0)
    except aborts:
        err_console.print("aborted", markup=False)
        return 130
    except usage as e:
        e.show()  # type: ignore[attr-defined]
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


