"""``nas`` in a child process (``python -m nasforge.cli``), with resource limits set in the
child only (``resource.setrlimit`` in ``preexec_fn``), and the checks of a bad-input answer."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Answer", "assert_one_error", "limits", "run_nas"]

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Answer:
    """What a ``nas`` child process said."""

    code: int
    stdout: str
    stderr: str


def limits(**rlimits: int) -> Callable[[], None]:
    """A ``preexec_fn`` that sets soft and hard ``RLIMIT_<NAME>`` (``fsize=65536``)."""
    def apply() -> None:
        for name, value in rlimits.items():
            resource.setrlimit(getattr(resource, f"RLIMIT_{name.upper()}"), (value, value))
    return apply


def run_nas(args: Sequence[str], cwd: Path, preexec: Callable[[], None] | None = None,
            timeout: float = 300) -> Answer:
    """Run ``nas ARGS`` in ``cwd`` with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    p = subprocess.run([sys.executable, "-m", "nasforge.cli", *args], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=timeout, preexec_fn=preexec)
    return Answer(p.returncode, p.stdout, p.stderr)


def assert_one_error(a: Answer, *needles: str, absent: Sequence[Path] = ()) -> str:
    """Exit code 2, exactly one ``error:`` line on stderr holding every needle, no traceback,
    none of ``absent`` written; returns the error line."""
    lines = [ln for ln in a.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert "Traceback" not in a.stderr, a.stderr
    assert a.code == 2, (a.code, a.stderr)
    assert len(errors) == 1, a.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    for path in absent:
        assert not path.exists(), path
    return errors[0]
