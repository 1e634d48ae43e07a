"""``nas hw import --format hat-csv``: HAT's latency datasets as devices, drift, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from nasforge.cli._common import run_app
from nasforge.errors import InvalidInputError
from nasforge.hardware_models import get_device
from nasforge.hardware_models import read_hat_csv
from nasforge.hardware_models._drift import lag1_autocorrelation
from nasforge.hardware_models._hat_csv import HAT_FEATURES
from nasforge.hardware_models._hat_csv import fit_hat_model
from nasforge.hardware_models._hat_csv import holdout_errors
from nasforge.search_spaces import get_space

SPACE = "hat_wmt14ende"
COLUMNS = [*HAT_FEATURES, "latency_mean_encoder", "latency_mean_decoder",
           "latency_std_encoder", "latency_std_decoder"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from nasforge.cli import app

    rc = run_app(app, list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _costs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A device with MAC-proportional costs (ms): encoder and decoder of HAT features x."""
    ed, el, ef, eh, dd, dl, df, dh, da, dr = x.T
    enc = 5 + el * (ed * ed * 2e-5 + ed * ef * 1.5e-5 + 0.4 * eh)
    dec = 40 + 0.02 * dd + dl * (dd * dd * 3e-4 + dd * df * 2e-4 + 2 * dh + 3 * da * dr)
    return enc, dec


def write_hat_csv(path: Path, n: int = 300, *, seed: int = 0, drift: bool = False,
                  noise: float = 0.01) -> Path:
    """A HAT-format CSV of ``n`` random SubTransformers of the space; with ``drift`` every
    other stretch of 40 rows is measured 25% slow (a throttled device)."""
    space = get_space(SPACE)
    rng = np.random.default_rng(seed)
    x = space.hat_features_many([space.sample(rng) for _ in range(n)])  # type: ignore[attr-defined]
    enc, dec = _costs(x)
    slow = 1 + 0.25 * ((np.arange(n) // 40) % 2) if drift else np.ones(n)
    enc = enc * slow * (1 + noise * rng.standard_normal(n))
    dec = dec * slow * (1 + noise * rng.standard_normal(n))
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i in range(n):
            w.writerow([*x[i], enc[i], dec[i], 0.01 * enc[i], 0.01 * dec[i]])
    return path


def test_import_predicts_encoder_plus_decoder(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path, cache: Path) -> None:
    path = write_hat_csv(tmp_path / "wmt14ende_cpu_raspberrypi_all.csv")
    rc, out, _ = _run(capsys, "hw", "import", "--format", "hat-csv", str(path), "--name",
                      "pi", "--space", SPACE)
    assert rc == 0, out
    assert "do not follow the row order" in out
    profile = json.loads((cache / "devices" / "pi" / "profile.json").read_text())
    assert "HAT (MIT Han Lab), MIT" in profile["source"]
    assert "beam 5" in profile["extra"]["protocol"]
    assert profile["hardware"].startswith("Raspberry Pi 4")
    assert profile["errors"]["holdout"]["mape"] < 0.03  # noise is 1%
    space = get_space(SPACE)
    archs = [space.sample(np.random.default_rng(7)) for _ in range(20)]
    enc, dec = _costs(space.hat_features_many(archs))  # type: ignore[attr-defined]
    total = get_device("pi").predict_many(archs)
    np.testing.assert_allclose(total, enc + dec, rtol=0.03)
    np.testing.assert_allclose(get_device("pi:decoder").predict_many(archs), dec, rtol=0.03)
    np.testing.assert_allclose(get_device("pi:encoder").predict_many(archs)
                               + get_device("pi:decoder").predict_many(archs), total)


def test_model_is_smooth_at_the_corners(tmp_path: Path) -> None:
    """Fitted away from the corners, the model still predicts the largest and smallest
    SubTransformers (a tree would answer its nearest leaf's constant there)."""
    data = read_hat_csv(write_hat_csv(tmp_path / "a_all.csv", n=400, noise=0.005))
    x = data.features
    inner = np.flatnonzero((x[:, 5] > 1) & (x[:, 5] < 6))  # decoder depth 2-5 only
    model = fit_hat_model(data, inner)
    space = get_space(SPACE)
    corners = space.hat_features_many([space.min_arch(), space.max_arch()])  # type: ignore[attr-defined]
    enc, dec = _costs(corners)
    np.testing.assert_allclose(model.predict(corners), enc + dec, rtol=0.02)


def test_drift_warning_fires_on_slow_stretches_only(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path, cache: Path) -> None:
    clean = write_hat_csv(tmp_path / "clean_all.csv", seed=1)
    drifting = write_hat_csv(tmp_path / "drift_all.csv", seed=1, drift=True)
    rc, out, err = _run(capsys, "hw", "import", "--format", "hat-csv", str(drifting),
                        "--name", "d", "--space", SPACE)
    assert rc == 0
    stat = json.loads((cache / "devices" / "d" / "profile.json").read_text())["extra"]["drift"]
    assert stat["drifting"] and stat["lag1_autocorrelation"] > 0.7
    assert "follow the order rows were measured in" in out + err
    rc, out, err = _run(capsys, "hw", "import", "--format", "hat-csv", str(clean),
                        "--name", "c", "--space", SPACE)
    assert rc == 0
    stat = json.loads((cache / "devices" / "c" / "profile.json").read_text())["extra"]["drift"]
    assert not stat["drifting"] and abs(stat["lag1_autocorrelation"]) < 0.3
    assert "follow the order rows were measured in" not in out + err


def test_lag1_autocorrelation() -> None:
    rng = np.random.default_rng(0)
    assert abs(lag1_autocorrelation(rng.standard_normal(4000))) < 0.05
    assert lag1_autocorrelation(np.repeat(rng.standard_normal(100), 20)) > 0.9


@pytest.mark.parametrize("edit, needle", [
    (lambda rows: [r[:-4] + r[-3:] for r in rows], "missing latency_mean_encoder"),
    (lambda rows: [rows[0], [*rows[1][:10], "nan", *rows[1][11:]], *rows[2:]],
     "line 2, column latency_mean_encoder"),
    (lambda rows: [rows[0], [*rows[1][:11], "inf", *rows[1][12:]], *rows[2:]],
     "line 2, column latency_mean_decoder"),
    (lambda rows: rows[:5], "at least 20 rows"),
])
def test_bad_csv_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                 cache: Path, edit: object, needle: str) -> None:
    good = write_hat_csv(tmp_path / "good_all.csv", n=30)
    rows = list(csv.reader(good.open()))
    bad = tmp_path / "bad_all.csv"
    with bad.open("w", newline="") as f:
        csv.writer(f).writerows(edit(rows))  # type: ignore[operator]
    rc, _, err = _run(capsys, "hw", "import", "--format", "hat-csv", str(bad), "--name", "x",
                        "--space", SPACE)
    assert rc == 2
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert not (cache / "devices" / "x").exists()


def test_space_without_hat_features_is_refused(tmp_path: Path, cache: Path) -> None:
    from nasforge.hardware_models import import_hat_csv

    path = write_hat_csv(tmp_path / "a_all.csv", n=30)
    with pytest.raises(InvalidInputError, match="needs a HAT space"):
        import_hat_csv(path, "x", "elastic_lm")


@pytest.mark.fidelity
def test_hat_csvs_beat_hats_recipe_and_drift(shared_data: Path) -> None:
    """On HAT's measurements: held-out MAPE below the anchors of HAT's own MLP (issue 23),
    the drift check fires on Pi en-de and stays quiet on Pi en-fr."""
    from nasforge.hardware_models._hat_csv import _drift

    for name, anchor, drifts in (("wmt14enfr_cpu_raspberrypi", 0.0089, False),
                                 ("wmt14ende_cpu_raspberrypi", 0.0454, True)):
        data = read_hat_csv(shared_data / "hat_latency" / f"{name}_all.csv")
        perm = np.random.default_rng(0).permutation(len(data.total_ms))
        test, train = perm[:400], perm[400:]
        pred = fit_hat_model(data, train).predict(data.features[test])
        assert holdout_errors(data.total_ms[test], pred)["mape"] <= anchor, name
        assert _drift(data, 0).drifting is drifts, name
