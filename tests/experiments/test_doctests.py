"""The ``>>>`` examples of the experiments, CLI-facing and error modules run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "nasforge.errors",
    "nasforge.experiments.config",
    "nasforge.experiments.runner",
    "nasforge.experiments._outputs",
    "nasforge.search_spaces",
    "nasforge.search_spaces.registry",
    pytest.param("nasforge.experiments.export", marks=pytest.mark.slow),
    "nasforge.experiments.export._executorch",
    "nasforge.hardware_models.profiling._executorch_adb",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0, f"{result.failed} example(s) of {name} failed"
