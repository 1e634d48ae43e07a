"""Issue 16's bad-input sweep: every probe of ``_sweep_probes`` ends with exit code 2, exactly
one ``error: ...`` line on stderr, no traceback, and (for the inputs that used to be accepted
silently) no result written.

Probes run in process (``typer.testing.CliRunner``'s isolation around :func:`run_app`, the
``nas`` entry point's error boundary): a subprocess per probe would cost ~2 s each.
Probes in another helper's area (``owner``) are expected to fail until that branch is merged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.hardware_models._devices import clear_device_cache
from nasforge.predictors import GBDTPredictor
from nasforge.search_spaces import get_space
from tests.cli._sweep_probes import PROBES
from tests.cli._sweep_probes import Probe
from tests.cli._sweep_probes import Workspace
from tests.cli._sweep_probes import make_workspace

_OTHER_AREAS: set[str] = set()  # every area is fixed now; was i16-train, i16-storage, report


def invoke(argv: list[str]) -> tuple[int, str, str]:
    """Run ``nas ARGV`` in process; (exit code, stdout, stderr). An escaping exception is a
    traceback: it propagates and fails the test."""
    runner = CliRunner()
    with runner.isolation() as streams:
        code = run_app(app, argv)
        return code, streams[0].getvalue().decode(), streams[1].getvalue().decode()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory, nb201_table: Path) -> Workspace:
    root = tmp_path_factory.mktemp("sweep")
    space = get_space("elasticvit")
    rng = np.random.default_rng(0)
    X = np.stack([space.encode(space.sample(rng)) for _ in range(24)])
    pred = GBDTPredictor(n_estimators=5).fit(X, rng.uniform(60, 80, len(X)))
    pred_dir = pred.save(root / "pred")
    run_dir = root / "run"
    code, _, err = invoke(["search", "--space", "nasbench201", "--device", "pixel3_ms",
                           "--benchmark", str(nb201_table),
                           "--metric", "cifar10_val", "--strategy", "random", "--budget", "4",
                           "--out", str(run_dir), "-q"])
    assert code == 0, err
    return make_workspace(root, nb201_table, run_dir=run_dir, predictor=pred_dir)


def _param(p: Probe) -> object:
    marks = [pytest.mark.xfail(reason=f"{p.owner}'s area: fixed on its branch", strict=False)
             ] if p.owner in _OTHER_AREAS else []
    return pytest.param(p, id=p.id, marks=marks)


@pytest.mark.parametrize("probe", [_param(p) for p in PROBES])
def test_bad_input_is_one_line_and_exit_2(probe: Probe, ws: Workspace, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASFORGE_CACHE", str(tmp_path / "cache"))
    clear_device_cache()
    work = tmp_path / "probe"
    work.mkdir()
    argv, guard = probe.build(ws, work)
    try:
        code, _, err = invoke(argv)
    finally:
        clear_device_cache()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert "Traceback" not in err, err
    assert code == 2, (code, err)
    assert len(errors) == 1, err
    assert probe.needle in errors[0], (probe.needle, errors[0])
    assert not [ln for ln in lines if ln.lstrip("╭│ ").startswith(("Usage:", "Error", "Try "))
                ], err  # click's multi-line usage block
    if guard is not None:
        assert not guard.exists(), f"{guard} was written for a bad input"


def test_probe_counts_cover_every_command() -> None:
    """The sweep keeps its breadth: the issue's commands are all probed, ~260 probes."""
    by_command: dict[str, int] = {}
    for p in PROBES:
        by_command[p.command] = by_command.get(p.command, 0) + 1
    for cmd in ("search", "run", "arch sample", "arch import", "arch export", "arch describe",
                "hw import", "hw predict", "hw validate", "profile", "device folder", "export",
                "report", "sweep", "predictor import", "train", "eval"):
        assert by_command.get(cmd, 0) >= 1, cmd
    assert len({p.id for p in PROBES}) == len(PROBES)  # ids are unique
    assert len(PROBES) >= 200
