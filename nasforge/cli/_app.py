"""Assembly of the ``nas`` typer application and its error boundary."""

from __future__ import annotations

import importlib
import sys

import typer

from nasforge.cli._common import run_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="nas",
    help=(
        "nasforge: hardware-aware neural architecture search.\n\n"
        "Search spaces, per-device latency models, weight-shared supernets and search strategies. "
        "Start with `nas spaces` and `nas devices`, then `nas search --space elasticvit "
        "--device pixel7 --latency 25`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# topic modules register their commands on import; a missing one (optional feature) is skipped
_TOPICS = ("_spaces", "_arch", "_hw", "_train", "_search", "_experiments", "_predictor")
for _topic in _TOPICS:
    try:
        _mod = importlib.import_module(f"nasforge.cli.{_topic}")
    except ModuleNotFoundError as _e:  # pragma: no cover - topic not written yet
        if _e.name != f"nasforge.cli.{_topic}":
            raise
        continue
    _mod.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    sys.exit(run_app(app, argv))
