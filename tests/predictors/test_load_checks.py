"""Issue 26, class 2 (predictors): a saved predictor's numbers are checked when it is loaded and
its predictions before a search uses them, and a predictor folder records its space. Each bad
folder is a real saved predictor rewritten by the test; each case ends in one ``error:`` line,
exit code 2, no traceback and no result written."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from safetensors.torch import save_file
from torch import nn

from nasforge.errors import IncompatibleComponentsError
from nasforge.evaluation._predictor import PredictorObjective
from nasforge.predictors import BasePredictor
from nasforge.predictors import GBDTPredictor
from nasforge.predictors import GPPredictor
from nasforge.predictors import MLPPredictor
from nasforge.predictors import RFPredictor
from nasforge.search_spaces import get_space
from tests._refusals import assert_one_line
from tests._refusals import invoke

SPACE = "elasticvit"
Mutate = Callable[[Path], None]


def _xy(space_name: str, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    space = get_space(space_name)
    rng = np.random.default_rng(0)
    X = space.encode_many([space.sample(rng) for _ in range(n)])
    return X, rng.uniform(60, 80, n)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predchecks")
    X, y = _xy(SPACE)
    Xn, yn = _xy("nasbench201")
    return {
        "mlp": MLPPredictor(hidden=(8,), n_models=2, epochs=2).fit(X, y).save(root / "mlp",
                                                                            space=SPACE),
        "gbdt": GBDTPredictor(n_estimators=3).fit(X, y).save(root / "gbdt"),
        "gbdt_nb201": GBDTPredictor(n_estimators=3).fit(Xn, yn).save(root / "gbdt_nb201"),
        "rf": RFPredictor(n_estimators=3).fit(X, y).save(root / "rf"),
        "gp": GPPredictor().fit(X, y).save(root / "gp"),
    }


def _tensors(edit: Callable[[dict[str, torch.Tensor]], None]) -> Mutate:
    def mutate(d: Path) -> None:
        t = load_file(str(d / "weights.safetensors"))
        edit(t)
        save_file(t, str(d / "weights.safetensors"))
    return mutate


def _manifest(edit: Callable[[dict], None]) -> Mutate:
    def mutate(d: Path) -> None:
        meta = json.loads((d / "predictor.json").read_text())
        edit(meta)
        (d / "predictor.json").write_text(json.dumps(meta))
    return mutate


def _arrays(edit: Callable[[dict[str, np.ndarray]], None]) -> Mutate:
    def mutate(d: Path) -> None:
        with np.load(d / "trees.npz") as data:
            arrays = {k: data[k].copy() for k in data.files}
        edit(arrays)
        np.savez(d / "trees.npz", **arrays)
    return mutate


def _self_loop(a: dict[str, np.ndarray]) -> None:
    a["children_left"][0] = 0  # the root's left child is the root: a walk would never end


def _gp_state(edit: Callable[[dict], None]) -> Mutate:
    def mutate(d: Path) -> None:
        state = json.loads((d / "gp_state.json").read_text())
        edit(state)
        (d / "gp_state.json").write_text(json.dumps(state))
    return mutate


def _set(t: dict[str, torch.Tensor], name: str, value: torch.Tensor) -> None:
    t[name] = value


CASES: dict[str, tuple[str, Mutate, tuple[str, ...]]] = {
    "mlp NaN weights": ("mlp", _tensors(lambda t: _set(
        t, "layer0.weight", torch.full_like(t["layer0.weight"], float("nan")))),
        ("'layer0.weight' holds NaN or infinite",)),
    "mlp inf bias": ("mlp", _tensors(lambda t: _set(
        t, "layer1.bias", torch.full_like(t["layer1.bias"], float("inf")))),
        ("'layer1.bias' holds NaN or infinite",)),
    "mlp float64 weights": ("mlp", _tensors(lambda t: _set(
        t, "layer1.weight", t["layer1.weight"].double())), ("dtype torch.float64",)),
    "mlp weights of another shape": ("mlp", _tensors(lambda t: _set(
        t, "layer0.weight", t["layer0.weight"][:, 1:, :].contiguous())), ("has shape",)),
    "mlp tensor missing": ("mlp", _tensors(lambda t: t.pop("layer1.bias")),
                           ("disagrees with the manifest", "layer1.bias")),
    "mlp scaler of another length": ("mlp", _manifest(lambda m: m["state"]["scalers"].update(
        x_mean=m["state"]["scalers"]["x_mean"][:-1])), ("scaler x_mean has shape",)),
    "mlp zero target scale": ("mlp", _manifest(lambda m: m["state"]["scalers"].update(
        y_scale=[0.0])), ("scaler y_scale", "non-positive")),
    "mlp overflowing weights": ("mlp", _tensors(lambda t: t.update(
        {k: torch.full_like(v, 1e30) for k, v in t.items()})),
        ("predicted NaN or infinite accuracy",)),
    "gbdt manifest disagrees with model": ("gbdt", _manifest(lambda m: m.update(
        n_features=m["n_features"] + 1)), ("the model file reads", "n_features")),
    "rf node pointing to itself": ("rf", _arrays(_self_loop), ("points backwards",)),
    "rf NaN leaf value": ("rf", _arrays(lambda a: a["value"].fill(np.nan)),
                          ("NaN or infinite",)),
    "rf split on a missing feature": ("rf", _arrays(lambda a: a["feature"].__setitem__(
        0, 10_000)), ("feature outside",)),
    "gp scaler of another length": ("gp", _gp_state(lambda s: s.update(
        x_scale=s["x_scale"] + [1.0])), ("x_scale has shape",)),
    "gp inf training row": ("gp", _gp_state(lambda s: s["X_train"][0].__setitem__(
        0, float("inf"))), ("X_train",)),
    "predictor of another space": ("mlp", _manifest(lambda m: m.update(space="nasbench201")),
                                   ("'nasbench201'", f"'{SPACE}'")),
    "old folder of another space": ("gbdt_nb201", lambda d: None,
                                    ("records no space", f"'{SPACE}'")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_nas_search_refuses_a_damaged_predictor(case: str, saved: dict[str, Path],
                                                tmp_path: Path) -> None:
    which, mutate, words = CASES[case]
    bad = tmp_path / "pred"
    shutil.copytree(saved[which], bad)
    mutate(bad)
    out = tmp_path / "search"
    code, err = invoke(["search", "--space", SPACE, "--device", "pixel7", "--predictor",
                         str(bad), "--budget", "4", "--out", str(out), "-q"])
    assert_one_line(code, err, *words)
    assert not (out / "best.yaml").exists() and not (out / "pareto.csv").exists()


def test_old_folder_of_the_right_width_keeps_loading(saved: dict[str, Path]) -> None:
    space = get_space(SPACE)
    pred = BasePredictor.load(saved["gbdt"])
    assert pred.fitted_space is None
    obj = PredictorObjective(pred, space)
    assert obj.evaluate_many([space.min_arch()]).shape == (1,)
    assert BasePredictor.load(saved["mlp"]).fitted_space == SPACE
    with pytest.raises(IncompatibleComponentsError, match="records no space"):
        PredictorObjective(BasePredictor.load(saved["gbdt_nb201"]), space)


# ---- OFA's importer -------------------------------------------------------------------------
def _ofa_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(15)
    mlp = nn.Sequential(nn.Linear(128, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(),
                        nn.Linear(400, 400), nn.ReLU(), nn.Linear(400, 1))
    return {k: v.clone() for k, v in mlp.state_dict().items()}


def _all_nan(s: dict[str, torch.Tensor]) -> None:
    s.update({k: torch.full_like(v, float("nan")) for k, v in s.items()})


def _inf_bias(s: dict[str, torch.Tensor]) -> None:
    s["6.bias"] = torch.tensor([float("inf")])


def _int_weights(s: dict[str, torch.Tensor]) -> None:
    s["0.weight"] = s["0.weight"].to(torch.int32)


@pytest.mark.parametrize(("edit", "words"), [
    (_all_nan, ("'0.weight' holds NaN or infinite",)),
    (_inf_bias, ("'6.bias' holds NaN or infinite",)),
    (_int_weights, ("torch.int32", "floating point")),
], ids=["all NaN", "inf bias", "integer weights"])
def test_ofa_import_refuses_non_finite_files(edit: Callable[[dict[str, torch.Tensor]], None],
                                             words: tuple[str, ...], tmp_path: Path) -> None:
    state = _ofa_state()
    edit(state)
    pth = tmp_path / "acc_predictor.pth"
    torch.save(state, pth)
    out = tmp_path / "pred"
    code, err = invoke(["predictor", "import", "--from", "ofa", str(pth), "--out", str(out)])
    assert_one_line(code, err, str(pth), *words)
    assert not out.exists()


@pytest.fixture(scope="module")
def ofa_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ofachecks")
    torch.save(_ofa_state(), root / "acc_predictor.pth")
    code, err = invoke(["predictor", "import", "--from", "ofa", str(root / "acc_predictor.pth"),
                         "--out", str(root / "ofa")])
    assert code == 0, err
    return root / "ofa"


@pytest.mark.parametrize(("space", "mutate", "words"), [
    ("ofa_mbv3_w12", _tensors(lambda t: _set(t, "6.bias", torch.tensor([float("inf")]))),
     ("'6.bias' holds NaN or infinite",)),
    ("ofa_mbv3", lambda d: None, ("'ofa_mbv3_w12'", "'ofa_mbv3'")),
], ids=["inf bias rewritten into the folder", "imported for another space"])
def test_nas_search_refuses_a_damaged_or_foreign_ofa_folder(
        space: str, mutate: Mutate, words: tuple[str, ...], ofa_dir: Path,
        tmp_path: Path) -> None:
    bad = tmp_path / "ofa"
    shutil.copytree(ofa_dir, bad)
    mutate(bad)
    out = tmp_path / "search"
    code, err = invoke(["search", "--space", space, "--device", "pixel7", "--predictor",
                         str(bad), "--budget", "4", "--out", str(out), "-q"])
    assert_one_line(code, err, *words)
    assert not (out / "best.yaml").exists()
