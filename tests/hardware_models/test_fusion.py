"""The fusion rule's weights term: its fit, its use per block, and profiles without it."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from nasforge.errors import InvalidInputError
from nasforge.errors import MissingLatencyError
from nasforge.hardware_models._blockkeys import block_key
from nasforge.hardware_models._fusion import FORMS
from nasforge.hardware_models._fusion import Fusion
from nasforge.hardware_models._fusion import fit_fusion
from nasforge.hardware_models._local import load_profiled
from nasforge.hardware_models._lut import CSV_HEADER
from nasforge.hardware_models._model import BlockSumLatencyModel
from nasforge.hardware_models._profile import DeviceProfile
from nasforge.search_spaces import get_space
from nasforge.search_spaces.block import block_params
from nasforge.search_spaces.block import total_params


def _networks(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block sums (ms), block counts and weights (M) of ``n`` made-up networks."""
    rng = np.random.default_rng(seed)
    return rng.uniform(1, 40, n), rng.integers(20, 65, n).astype(float), rng.uniform(5, 38, n)


def test_fit_recovers_weights_term() -> None:
    s, n, w = _networks(12, 0)
    y = 0.2 + s + 0.085 * w
    f = fit_fusion(s.tolist(), n.tolist(), y.tolist(), w.tolist())
    assert f.rel_err is not None and f.rel_err["form"] == "network+weights"
    assert f.per_network_ms == pytest.approx(0.2, abs=1e-9)
    assert f.per_mparam_ms == pytest.approx(0.085, abs=1e-9)
    assert f.scale == 1.0 and f.per_block_ms == 0.0
    y4 = -0.1 + 0.02 * n + 0.95 * s + 0.06 * w  # all four terms
    f4 = fit_fusion(s.tolist(), n.tolist(), y4.tolist(), w.tolist())
    assert f4.rel_err is not None and f4.rel_err["form"] == "network+block+scale+weights"
    got = (f4.per_network_ms, f4.per_block_ms, f4.scale, f4.per_mparam_ms)
    assert got == pytest.approx((-0.1, 0.02, 0.95, 0.06), abs=1e-8)


def test_fit_without_weights_is_the_old_rule() -> None:
    s, n, w = _networks(12, 1)
    y = 0.2 + s + 0.085 * w
    f = fit_fusion(s.tolist(), n.tolist(), y.tolist())  # no weights: the old forms only
    assert f.per_mparam_ms == 0.0 and f.rel_err is not None
    assert not f.rel_err["form"].endswith("weights")
    assert {k for k, v in FORMS.items() if not v[3]} == {
        "sum", "network", "network+scale", "network+block", "network+block+scale"}
    with pytest.raises(ValueError, match="equally long"):
        fit_fusion(s.tolist(), n.tolist(), y.tolist(), w[:3].tolist())


def test_few_networks_get_few_terms() -> None:
    s, n, w = _networks(4, 2)
    y = 0.3 + s + 0.05 * w
    f = fit_fusion(s.tolist(), n.tolist(), y.tolist(), w.tolist())
    assert f.rel_err is not None and sum(FORMS[f.rel_err["form"]]) <= 2


def _device(folder: Path, fusion: dict[str, object]) -> list[str]:
    """A profiled-device folder whose table holds every block of elasticvit's min arch."""
    space = get_space("elasticvit")
    keys = [block_key(b) for b in space.blocks(space.min_arch())]
    folder.mkdir(parents=True)
    with (folder / "table.csv").open("w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(CSV_HEADER)
        for i, k in enumerate(dict.fromkeys(keys)):
            wr.writerow([k, repr(0.01 * (i + 1)), "", 5])
    DeviceProfile(name=folder.name, table="table.csv", spaces=["elasticvit"],
                  extra={"fusion": fusion, "keying": "block"}).save(folder)
    return keys


def test_weights_are_charged_once_per_block(tmp_path: Path) -> None:
    space = get_space("elasticvit")
    arch = space.min_arch()
    blocks = space.blocks(arch)
    old = {"per_network_ms": 0.2, "per_block_ms": 0.01, "scale": 1.1, "n_networks": 12}
    _device(tmp_path / "old", old)  # written before the weights term: still loads
    _device(tmp_path / "new", {**old, "per_mparam_ms": 0.09})
    m_old, m_new = load_profiled(tmp_path / "old"), load_profiled(tmp_path / "new")
    assert m_old.fusion.per_mparam_ms == 0.0
    rows = m_old.explain(arch)
    assert m_old.predict(arch) == pytest.approx(sum(r.ms for r in rows) + 0.2)
    extra = 0.09 * total_params(blocks) / 1e6
    assert extra > 0.1  # the term is large enough for the check to mean something
    assert m_new.predict(arch) == pytest.approx(m_old.predict(arch) + extra, rel=1e-12)
    assert m_new.predict_many([arch, arch]) == pytest.approx([m_new.predict(arch)] * 2)
    for r_old, r_new, b in zip(rows, m_new.explain(arch), blocks, strict=True):
        assert r_new.ms - r_old.ms == pytest.approx(0.09 * block_params(b) / 1e6, abs=1e-12)


def test_weights_term_needs_block_keys_and_numbers() -> None:
    from nasforge.hardware_models._lut import LatencyEntry
    from nasforge.hardware_models._lut import LatencyTable

    model = BlockSumLatencyModel(DeviceProfile(name="d"), keying="block",
                                 table=LatencyTable({"opaque": LatencyEntry(1.0, 0.0, 1)}),
                                 fusion=Fusion(per_mparam_ms=0.1, n_networks=4))
    with pytest.raises(MissingLatencyError, match="not a block-shape key"):
        model.lookup(["opaque"])
    with pytest.raises(InvalidInputError, match="malformed fusion rule"):
        Fusion.from_dict({"per_mparam_ms": "fast"})
    f = Fusion(0.2, 0.01, 1.1, 12, {"form": "network+block+scale+weights"}, 0.09)
    assert Fusion.from_dict(f.to_dict()) == f


def test_profile_writes_the_weights_term(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nasforge.hardware_models.profiling import profile_device

    monkeypatch.setenv("NASFORGE_CACHE", str(tmp_path))
    profile_device("cpu-local", "elasticvit", budget=6, n_archs=3, seed_blocks=6, batch=2,
                   n_networks=3, repeats=2)
    folder = tmp_path / "devices" / "cpu-local-torch-t1"
    fusion = DeviceProfile.load(folder).extra["fusion"]
    assert {"per_network_ms", "per_block_ms", "scale", "per_mparam_ms"} <= set(fusion)
    assert fusion["n_networks"] == 3 and fusion["rel_err"]["form"] in FORMS
    model = load_profiled(folder)
    arch = get_space("elasticvit").max_arch()
    assert model.predict(arch) == pytest.approx(
        sum(r.ms for r in model.explain(arch)) + model.fusion.per_network_ms)
