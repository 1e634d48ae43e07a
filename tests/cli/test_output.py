"""What the CLI prints when stdout is not a terminal: tables keep each row on one line, and
``--json`` prints plain JSON."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.search_spaces import get_space


def _invoke(argv: list[str]) -> tuple[int, str]:
    runner = CliRunner()
    with runner.isolation() as streams:
        code = run_app(app, argv)
        return code, streams[0].getvalue().decode()


def test_piped_tables_are_not_folded_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    code, out = _invoke(["spaces"])
    assert code == 0
    description = get_space("elasticvit").description
    assert len(description) > 40
    assert any(description in line for line in out.splitlines()), out
    assert max(len(line) for line in out.splitlines()) > 80


def test_spaces_json_is_plain_json() -> None:
    code, out = _invoke(["spaces", "--json"])
    assert code == 0
    assert "elasticvit" in {row["space"] for row in json.loads(out)}
