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


def test_the_nas_process_collects_in_big_passes_and_freezes_its_heap_at_exit() -> None:
    """``nas`` (its console-script entry) raises the young generation's threshold and freezes
    the heap at exit, after every other exit handler registered later has run."""
    import subprocess
    import sys

    code = ("import atexit, gc\n"
            "atexit.register(lambda: print('after', gc.get_freeze_count() > 0))\n"
            "from nasforge.cli._app import _collect_less\n"
            "_collect_less()\n"
            "atexit.register(lambda: print('before', gc.get_freeze_count() > 0))\n"
            "print('threshold', gc.get_threshold()[0])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["threshold", "50000", "before", "False", "after", "True"]
