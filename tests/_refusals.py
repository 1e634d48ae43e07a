"""The shape of a refused input, shared by the issue-26 load-check tests: the CLI run in an
isolated runner, and one ``error:`` line, exit code 2, no traceback."""

from __future__ import annotations

from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.cli._common import run_app


def invoke(argv: list[str]) -> tuple[int, str]:
    """Run ``nas ARGV``; returns ``(exit code, stderr)``."""
    runner = CliRunner()
    with runner.isolation() as streams:
        code = run_app(app, argv)
        return code, streams[1].getvalue().decode()


def assert_one_line(code: int, err: str, *words: str) -> None:
    """Exit code 2 and one ``error:`` line holding every one of ``words``, no traceback."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])
