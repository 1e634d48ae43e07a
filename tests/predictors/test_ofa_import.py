"""OFA's accuracy predictor imported: the 128-d encoding field by field, predictions equal to an
independent reference of OFA's tutorial code on 200 random archs, and bad files refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.errors import IncompatibleComponentsError
from nasforge.evaluation import PredictorObjective
from nasforge.predictors import BasePredictor
from nasforge.predictors import OFAAccuracyPredictor
from nasforge.predictors import import_ofa_predictor
from nasforge.predictors._ofa import ofa_features
from nasforge.search_spaces import get_space

# ---- an independent reference: OFA's tutorial spec2feats, written out loop by loop ----------
KS_POS = {3: 0, 5: 1, 7: 2}
EX_POS = {3: 0, 4: 1, 6: 2}


def reference_features(ks: list[int], e: list[int], d: list[int], r: int) -> list[float]:
    ks, e = list(ks), list(e)
    for stage, depth in enumerate(d):  # blocks past a stage's depth are zeroed
        for j in range(stage * 4 + depth, stage * 4 + 4):
            ks[j] = 0
            e[j] = 0
    ks_onehot = [0.0] * 60
    ex_onehot = [0.0] * 60
    r_onehot = [0.0] * 8
    for i in range(20):
        if ks[i]:
            ks_onehot[i * 3 + KS_POS[ks[i]]] = 1.0
        if e[i]:
            ex_onehot[i * 3 + EX_POS[e[i]]] = 1.0
    r_onehot[(r - 112) // 16] = 1.0
    return ks_onehot + ex_onehot + r_onehot


def reference_mlp(state: dict[str, torch.Tensor]) -> nn.Sequential:
    mlp = nn.Sequential(nn.Linear(128, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(),
                        nn.Linear(400, 400), nn.ReLU(), nn.Linear(400, 1))
    mlp.load_state_dict(state)
    return mlp.eval()


@pytest.fixture(scope="module")
def ofa_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(15)
    mlp = nn.Sequential(nn.Linear(128, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(),
                        nn.Linear(400, 400), nn.ReLU(), nn.Linear(400, 1))
    return {k: v.clone() for k, v in mlp.state_dict().items()}


@pytest.fixture()
def pth(tmp_path: Path, ofa_state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path / "acc_predictor.pth"
    torch.save(ofa_state, path)
    return path


def test_encoding_field_by_field() -> None:
    ks = [3, 5, 7, 3] * 5
    e = [6, 4, 3, 6] * 5
    d = [2, 3, 4, 2, 4]
    f = ofa_features(np.array([160]), np.array([d]), np.array([ks]), np.array([e]))[0]
    assert f.shape == (128,)
    # stage 0 (blocks 0-3), depth 2: blocks 0, 1 live
    assert f[0:3].tolist() == [1, 0, 0]           # block 0 kernel 3
    assert f[3:6].tolist() == [0, 1, 0]           # block 1 kernel 5
    assert f[6:12].tolist() == [0] * 6            # blocks 2, 3 beyond depth 2
    assert f[60:63].tolist() == [0, 0, 1]         # block 0 expand 6
    assert f[63:66].tolist() == [0, 1, 0]         # block 1 expand 4
    assert f[66:72].tolist() == [0] * 6
    # stage 1 depth 3: blocks 4, 5, 6 live, 7 not
    assert f[12:15].tolist() == [1, 0, 0] and f[18:21].tolist() == [0, 0, 1]
    assert f[21:24].tolist() == [0, 0, 0]
    assert f[60 + 18:60 + 21].tolist() == [1, 0, 0]  # block 6 expand 3
    # resolution 160 -> (160 - 112) // 16 = 3
    assert f[120:].tolist() == [0, 0, 0, 1, 0, 0, 0, 0]
    assert f.sum() == 2 * sum(d) + 1
    # a resolution between grid points takes the bucket below (OFA's integer division)
    g = ofa_features(np.array([188]), np.array([d]), np.array([ks]), np.array([e]))[0]
    assert g[120:].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]
    assert f.tolist() == reference_features(ks, e, d, 160)


def test_imported_predictor_equals_ofa_on_200_random_archs(
        pth: Path, tmp_path: Path, ofa_state: dict[str, torch.Tensor]) -> None:
    out = import_ofa_predictor(pth, tmp_path / "ofa_pred")
    pred = BasePredictor.load(out)
    assert isinstance(pred, OFAAccuracyPredictor)
    space = get_space("ofa_mbv3_w12")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(200)]
    got = pred.predict(space.encode_many(archs)).mean
    feats = torch.tensor([reference_features(list(a.kernels), list(a.expands),  # type: ignore[attr-defined]
                                             list(a.depths), a.resolution)  # type: ignore[attr-defined]
                          for a in archs])
    with torch.no_grad():
        want = reference_mlp(ofa_state)(feats).reshape(-1).double().numpy()
    assert got.shape == (200,)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert np.unique(np.round(got, 6)).size > 100  # the archs really differ
    # the search path: the predictor as an objective over the space's encoding
    obj = PredictorObjective(pred, space, name="ofa_top1")
    np.testing.assert_allclose(obj.evaluate_many(archs[:5]), want[:5], atol=1e-6)


def test_cli_import_then_load(pth: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli_pred"
    assert run_app(app, ["predictor", "import", "--from", "ofa", str(pth), "--out",
                         str(out)]) == 0
    assert (out / "predictor.json").exists() and (out / "weights.safetensors").exists()
    assert isinstance(BasePredictor.load(out), OFAAccuracyPredictor)


def test_file_of_another_shape_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "other.pth"
    torch.save(nn.Sequential(nn.Linear(145, 400), nn.ReLU(), nn.Linear(400, 1)).state_dict(), bad)
    with pytest.raises(IncompatibleComponentsError, match=r"0\.weight \(400, 128\)") as e:
        import_ofa_predictor(bad, tmp_path / "x")
    assert "\n" not in str(e.value) and "6.bias (1,)" in str(e.value)
    capsys.readouterr()
    assert run_app(app, ["predictor", "import", "--from", "ofa", str(bad), "--out",
                         str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1 and "(400, 128)" in err
    assert not (tmp_path / "y").exists()


def test_pickled_code_and_unknown_source_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = tmp_path / "evil.pth"
    torch.save({"0.weight": torch.zeros(1), "obj": Path("x")}, evil)  # a non-tensor object
    assert run_app(app, ["predictor", "import", "--from", "ofa", str(evil), "--out",
                         str(tmp_path / "z")]) == 2
    assert "weights-only" in capsys.readouterr().err
    assert run_app(app, ["predictor", "import", "--from", "nasbench", str(evil), "--out",
                         str(tmp_path / "z")]) == 2
    assert "ofa" in capsys.readouterr().err


def test_ofa_predictor_cannot_be_fitted() -> None:
    with pytest.raises(IncompatibleComponentsError, match="cannot be fitted"):
        OFAAccuracyPredictor(feature_names=get_space("ofa_mbv3_w12").encoding_names()).fit(
            np.zeros((3, 45)), np.zeros(3))
