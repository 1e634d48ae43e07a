"""Shared CLI helpers: the error boundary, output console, YAML/JSON loading."""

from __future__ import annotations

import json

from pathlib import Path
from typing import Any

import click
import typer
import yaml
from rich.console import Console

from nasforge.errors import NasforgeError
from nasforge.errors import InvalidInputError

__all__ = ["console", "err_console", "fail", "read_structured", "run_app"]

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_USAGE = 2


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit-2 exception to raise."""
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(EXIT_USAGE)


def run_app(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run ``app``; user errors become one line on stderr and exit code 2, no traceback."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="nas", standalone_mode=False)
    except NasforgeError as e:
        err_console.print(f"error: {e}", markup=False, highlight=False)
        return EXIT_USAGE
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except click.exceptions.Abort:
        err_console.print("aborted", markup=False)
        return 130
    except click.ClickException as e:
        e.show()
        return EXIT_USAGE
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        return 130
    return 0


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
        raise InvalidInputError(f"{path}{where}: malformed {'JSON' if str(path).endswith('.json') else 'YAML'}: {problem}") from None


