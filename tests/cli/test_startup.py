"""CLI start-up stays light: `nas --help` must not import torch, onnx or Ray."""

from __future__ import annotations

import subprocess
import sys

import nasforge.experiments as experiments


def test_cli_import_loads_no_heavy_framework() -> None:
    code = ("import sys; import nasforge.cli; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_experiments_lazy_exports_resolve() -> None:
    assert set(experiments.__all__) == set(experiments._SOURCES)
    for name in experiments.__all__:
        assert getattr(experiments, name) is not None, name
