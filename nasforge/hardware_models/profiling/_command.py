"""The ``command`` backend: an external command timing an exported ONNX file."""

from __future__ import annotations

import math
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nasforge.errors import InvalidInputError
from nasforge.hardware_models.profiling._onnxruntime import OPSET
from nasforge.hardware_models.profiling._onnxruntime import export_onnx
from nasforge.hardware_models.profiling._protocol import Measurement
from nasforge.hardware_models.profiling.base import RUNNERS
from nasforge.hardware_models.profiling.base import Runner
from nasforge.hardware_models.profiling.base import RunnerOptions

if TYPE_CHECKING:
    from torch import nn

    from nasforge.hardware_models.profiling.base import Item

__all__ = ["CommandRunner"]


@RUNNERS.register("command")
class CommandRunner(Runner):
    """An external command: ``template`` with ``{model}`` (ONNX file) and ``{threads}``.

    The command does its own warm-up and repeats and prints the latency in ms as the last line
    of its standard output. It is split like a shell line (``shlex``) but run without a shell.

    Args:
        template: e.g. ``"python run_onnx.py {model} --threads {threads}"`` or
            ``"adb_bench.sh {model}"``.
        timeout_s: seconds one call may take.
    """

    name = "command"

    def __init__(self, template: str, threads: int = 1, *, timeout_s: float = 600.0) -> None:
        super().__init__(threads)
        if "{model}" not in template:
            raise InvalidInputError(
                f"a command template must contain {{model}} (the ONNX file), got {template!r}; "
                "e.g. --command 'python bench.py {model}'")
        try:
            self.argv = shlex.split(template)
        except ValueError as e:
            raise InvalidInputError(f"cannot split command template {template!r}: {e}") from None
        self.template, self.timeout_s = template, timeout_s

    @classmethod
    def from_options(cls, opts: RunnerOptions) -> Runner:
        if not opts.command:
            raise InvalidInputError("--backend command needs --command 'TEMPLATE {model}'")
        return cls(opts.command, opts.threads)

    def runtime(self) -> str:
        return f"external command `{self.template}` (ONNX opset {OPSET}, fp32, batch 1)"

    def config(self) -> dict[str, object]:
        return {**super().config(), "command": self.template}

    def _prepare(self, module: nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        raise NotImplementedError("CommandRunner measures in the external process")

    def run_file(self, model: Path) -> float:
        """Run the command on one ONNX file and parse its latency.

        Raises:
            InvalidInputError: the command fails, times out, or its last line is not a
                positive number of milliseconds.
        """
        argv = [a.format(model=str(model), threads=self.threads) for a in self.argv]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise InvalidInputError(f"command {argv[0]!r} could not run: {e}; check --command"
                                    ) from None
        lines = [ln.strip() for ln in done.stdout.splitlines() if ln.strip()]
        if done.returncode != 0 or not lines:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise InvalidInputError(
                f"command `{' '.join(argv)}` exited with {done.returncode} and printed no "
                f"latency: {tail}; it must print the latency in ms as its last line")
        try:
            ms = float(lines[-1].split()[0])
        except ValueError:
            ms = math.nan
        if not math.isfinite(ms) or ms <= 0:
            raise InvalidInputError(
                f"command `{' '.join(argv)}` printed {lines[-1]!r} as its last line; it must be a "
                "positive latency in ms (e.g. `1.234`)")
        return ms

    def measure(self, items: Sequence[Item],
                keys: Sequence[str] | None = None) -> list[Measurement]:
        out = []
        with tempfile.TemporaryDirectory(prefix="nasforge-cmd-") as tmp:
            path = Path(tmp) / "model.onnx"
            for module, shape in items:
                export_onnx(module, shape, path)
                out.append(Measurement(self.run_file(path), math.nan, 1))
        return out
