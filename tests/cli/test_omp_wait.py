"""`nas` lets idle OpenMP threads sleep unless the user chose a wait policy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CALL = "from nasforge.cli._app import _passive_omp_wait; _passive_omp_wait()"


def _policy_after(code: str, given: str | None = None) -> str:
    """OMP_WAIT_POLICY as a fresh interpreter sees it after running ``code``."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(REPO)
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", f"import os; {code}; "
                          "print(os.environ.get('OMP_WAIT_POLICY'))"],
                         env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_wait_policy_defaults_to_passive_and_respects_the_user(given: str | None,
                                                               expected: str) -> None:
    assert _policy_after(f"{CALL}; import torch", given) == expected


def test_wait_policy_is_left_alone_once_torch_is_loaded() -> None:
    assert _policy_after(f"import torch; {CALL}") == "None"
