"""``nas eval`` of many archs: files, a folder and a CSV, results in the order given."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.search_spaces import get_space

TINY = ["--data", "synthetic:32", "--sampler", "uniform", "--steps", "1", "--input-size", "16",
        "--resolution-scale", "0.0625", "--batch-size", "4", "--accelerator", "cpu",
        "--no-progress", "--no-eval"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sn")
    assert run_app(app, ["train", "--space", "elasticvit", "--out", str(out), *TINY]) == 0
    return out


def test_folder_and_csv_of_archs_in_order(run_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    space = get_space("elasticvit")
    rng = np.random.default_rng(0)
    archs = [space.min_arch(), space.sample(rng), space.sample(rng)]
    folder = tmp_path / "archs"
    folder.mkdir()
    for i, a in enumerate(archs[:2]):
        (folder / f"{i}.yaml").write_text(a.to_yaml())
    table = tmp_path / "pareto.csv"
    with open(table, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["arch_id", "arch"])
        w.writeheader()
        w.writerow({"arch_id": archs[2].arch_id, "arch": archs[2].to_json()})
    result = tmp_path / "out.csv"
    capsys.readouterr()
    assert run_app(app, ["eval", "--supernet", str(run_dir), "--arch", str(folder), "--arch",
                         str(table), "--recal-batches", "1", "--batch-size", "8",
                         "--csv", str(result), "--accelerator", "cpu"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "top-1" in ln]
    assert [ln.split(":")[0] for ln in lines] == [a.arch_id for a in archs]
    rows = list(csv.DictReader(result.read_text().splitlines()))
    assert [r["arch_id"] for r in rows] == [a.arch_id for a in archs]
    assert [int(r["input_size"]) for r in rows] == [
        max(8, round(a.resolution * 0.0625)) for a in archs]
    assert json.loads(rows[2]["arch"]) == json.loads(archs[2].to_json())
    assert all(int(r["recal_images"]) == 8 for r in rows)


def test_csv_without_arch_column_is_one_line(run_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "bad.csv"
    table.write_text("arch_id,accuracy\nx,1.0\n")
    assert run_app(app, ["eval", "--supernet", str(run_dir), "--arch", str(table)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs an `arch` column" in err


def _eval_rank(rank: int, world_size: int, sn: str, archs: str, out: str) -> None:
    import torch

    torch.set_num_threads(1)
    assert run_app(app, ["eval", "--supernet", sn, "--arch", archs, "--recal-batches", "1",
                         "--batch-size", "8", "--csv", out, "--accelerator", "cpu"]) == 0


@pytest.mark.slow
def test_two_gloo_ranks_write_the_one_process_csv(run_dir: Path, tmp_path: Path) -> None:
    import yaml

    from nasforge.supernet.training.distributed import launch

    space = get_space("elasticvit")
    rng = np.random.default_rng(1)
    archs = tmp_path / "archs.yaml"  # one file, a list of archs
    archs.write_text(yaml.safe_dump([space.sample(rng).to_dict() for _ in range(3)]))
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    _eval_rank(0, 1, str(run_dir), str(archs), str(one))
    launch(_eval_rank, 2, str(run_dir), str(archs), str(two))
    assert len(one.read_text().splitlines()) == 4  # header + 3 archs
    assert two.read_text() == one.read_text()  # rank 0 alone writes, in the given order


def test_eval_json_lists_the_results_in_order(run_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    space = get_space("elasticvit")
    archs = [space.min_arch(), space.max_arch()]
    path = tmp_path / "archs.yaml"
    import yaml

    path.write_text(yaml.safe_dump([a.to_dict() for a in archs]))
    capsys.readouterr()
    assert run_app(app, ["eval", "--supernet", str(run_dir), "--arch", str(path),
                         "--recal-batches", "1", "--batch-size", "8", "--accelerator", "cpu",
                         "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["arch_id"] for r in rows] == [a.arch_id for a in archs]
    assert rows[0]["arch"] == json.loads(archs[0].to_json())
    assert all(0.0 <= r["top1"] <= 1.0 for r in rows)
