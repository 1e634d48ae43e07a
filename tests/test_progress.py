"""The one progress helper: silent unless logging asks, plain lines with ETA off a terminal."""

from __future__ import annotations

import logging

import pytest

from nasforge.progress import ProgressBar


def test_silent_when_logging_is_not_configured(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="nasforge.progress")
    with ProgressBar("quiet", total=5) as bar:
        bar.advance(5)
    assert bar.completed == 5
    assert caplog.records == []


def test_plain_lines_carry_count_eta_and_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nasforge.progress")
    with ProgressBar("train", total=10, log_every_s=0.0) as bar:
        for i in range(4):
            bar.advance(loss=f"{1.0 / (i + 1):.2f}")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5  # one line per update (interval 0) and the closing line
    assert lines[-1].startswith("train 4/10 (40%)")
    assert "ETA" in lines[-1] and "loss 0.25" in lines[-1]


def test_disabled_bar_logs_nothing_even_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nasforge.progress")
    with ProgressBar("rank1", total=3, enabled=False) as bar:
        bar.advance(3)
    assert caplog.records == []


def test_eta_follows_the_rate_since_a_resumed_start() -> None:
    bar = ProgressBar("resumed", total=100, completed=50)
    assert bar.eta_s() is None  # nothing done since it opened: no rate yet
    bar._t0 -= 10.0  # ten seconds ago
    bar.update(60)
    eta = bar.eta_s()
    assert eta is not None and 35.0 < eta < 45.0  # 10 units in ~10 s, 40 left
