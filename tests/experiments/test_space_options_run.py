"""Space options at the edge (issue 25): ``nas search --space-opt resolutions=...`` and YAML
``space_options`` search ``ofa_mbv3_w12`` at OFA's five table resolutions only; a value the
space does not serve or an option it does not take is one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nasforge.errors import InvalidInputError
from nasforge.experiments._space import space_of
from nasforge.experiments.config import ExperimentConfig
from nasforge.hardware_models import LatencyEntry
from nasforge.hardware_models import LatencyTable
from nasforge.hardware_models import get_key_scheme
from nasforge.hardware_models import import_table
from nasforge.predictors import GBDTPredictor
from nasforge.search_spaces import get_space

OFA = (160, 176, 192, 208, 224)
SPACE = "ofa_mbv3_w12"


def test_space_of_restricts_a_choice_and_keeps_the_name() -> None:
    space = space_of(SPACE, {"resolutions": [224, 160, 192, 176, 208]})
    assert space.cfg.resolutions == OFA and space.name == SPACE  # type: ignore[attr-defined]
    assert space_of(SPACE, {"resolutions": "160,176,192,208,224"}) is space  # shared instance
    rng = np.random.default_rng(0)
    assert {space.sample(rng).resolution for _ in range(200)} == set(OFA)  # type: ignore[attr-defined]
    assert space_of(SPACE, {}) is get_space(SPACE)


@pytest.mark.parametrize(("options", "needle"), [
    ({"resolutions": [160, 170]}, r"resolutions=170 is not served .* 128\.\.224 step 4"),
    ({"resolutions": []}, "non-empty list"),
    ({"widths": [24]}, "no space option 'widths'; its options are resolutions"),
])
def test_bad_space_options_are_one_line(options: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle) as info:
        space_of(SPACE, options)
    assert "\n" not in str(info.value)


def test_yaml_space_options_round_trip() -> None:
    cfg = ExperimentConfig.from_dict({"search_space": SPACE, "device": "pixel6",
                                      "space_options": {"resolutions": list(OFA)}})
    assert cfg.space_options == {"resolutions": list(OFA)}
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg
    assert "space_options" not in ExperimentConfig.from_dict(
        {"search_space": SPACE, "device": "pixel6"}).to_dict()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A table device for ``ofa_mbv3_w12`` (random means of the blocks of 40 archs, analytic
    fallback for the others) and a GBDT accuracy predictor fitted on 40 archs."""
    root = tmp_path_factory.mktemp("ofa_opts")
    space, scheme = get_space(SPACE), get_key_scheme(SPACE)
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(40)]
    keys = {k for a in archs for k in scheme.keys(space.blocks(a))}
    LatencyTable({k: LatencyEntry(float(rng.uniform(0.05, 2.0))) for k in sorted(keys)}
                 ).write_csv(root / "t.csv")
    with pytest.MonkeyPatch.context() as mp:  # the cache every test of the session uses
        mp.setenv("NASFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        import_table(root / "t.csv", "csv", "optdev", SPACE)
    X = np.stack([space.encode(a) for a in archs])
    pred = GBDTPredictor(n_estimators=5).fit(X, rng.uniform(60, 80, len(X)))
    return "optdev", pred.save(root / "pred")


def _nas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nasforge.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_nas_search_at_ofa_resolutions(inputs: tuple[str, Path], tmp_path: Path) -> None:
    device, pred = inputs
    base = ["search", "--space", SPACE, "--device", device, "--predictor", str(pred),
            "--budget", "60", "--seed", "1", "-q"]
    done = _nas(*base, "--space-opt", "resolutions=160,176,192,208,224",
                "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(tmp_path / "run" / "candidates.csv")
    assert len(frame) == 60 and set(frame["resolution"]) <= set(OFA)
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["config"]["space_options"] == {"resolutions": "160,176,192,208,224"}
    assert manifest["summary"]["cpu_s"] > 0
    # the registered space draws other resolutions (the option is what restricts it)
    free = _nas(*base, "--out", str(tmp_path / "free"))
    assert free.returncode == 0, free.stderr[-2000:]
    assert not set(pd.read_csv(tmp_path / "free" / "candidates.csv")["resolution"]) <= set(OFA)
    # a resume with another restriction is refused
    other = _nas(*base, "--space-opt", "resolutions=160,224", "--out", str(tmp_path / "run"),
                 "--resume")
    assert other.returncode == 2 and "space_options" in other.stderr


@pytest.mark.parametrize(("opt", "needle"), [
    ("resolutions=160,170", "resolutions='170' is not served"),
    ("depths=2", "no space option 'depths'"),
    ("resolutions", "--space-opt takes KEY=VALUE"),
])
def test_nas_search_bad_space_option_exit_2(inputs: tuple[str, Path], tmp_path: Path,
                                            opt: str, needle: str) -> None:
    device, pred = inputs
    res = _nas("search", "--space", SPACE, "--device", device, "--predictor", str(pred),
               "--budget", "5", "--space-opt", opt, "--out", str(tmp_path / "run"), "-q")
    assert res.returncode == 2, res.stderr[-2000:]
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1
