"""The measure side's seams: the ``RUNNERS`` registry, and a predict side that loads no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nasforge.errors import InvalidInputError
from nasforge.hardware_models.profiling import BACKENDS
from nasforge.hardware_models.profiling import RUNNERS
from nasforge.hardware_models.profiling import make_runner


def test_every_backend_is_a_registered_runner() -> None:
    assert sorted(BACKENDS) == RUNNERS.list()
    for name in BACKENDS:
        assert RUNNERS.get(name).name == name


def test_unknown_backend_names_the_backends() -> None:
    with pytest.raises(InvalidInputError, match="unknown profiler backend 'tpu'; use one of "
                       "torch, onnxruntime, litert, adb, command"):
        make_runner("tpu")


def test_predict_side_loads_no_torch() -> None:
    code = ("import sys, nasforge.hardware_models as hw; hw.get_device('pixel6'); "
            "assert 'torch' not in sys.modules, 'torch loaded'")
    subprocess.run([sys.executable, "-c", code], check=True)
