"""Assembly of the ``nas`` typer application, its global options and its error boundary.

The global options decide what a person sees: ``-v/--verbose`` (repeatable: debug records)
and ``-q/--quiet`` (warnings and errors only: no progress bars, no notices). Library code
only logs (``logging.getLogger(__name__)``) and opens :class:`~nasforge.progress.ProgressBar`;
the CLI configures logging once per invocation, to stderr, so stdout stays for results.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys

import typer

from nasforge.cli import _arch
from nasforge.cli import _experiments
from nasforge.cli import _finetune
from nasforge.cli import _hw
from nasforge.cli import _predictor
from nasforge.cli import _rank
from nasforge.cli import _search
from nasforge.cli import _spaces
from nasforge.cli import _train
from nasforge.cli._common import EXIT_USAGE
from nasforge.cli._common import err_console
from nasforge.cli._common import flow_help
from nasforge.cli._common import run_app
from nasforge.cli._common import set_verbosity
from nasforge.cli._resource_errors import cwd_error_line

__all__ = ["app", "main"]

app = typer.Typer(
    name="nas",
    help=(
        "nasforge: hardware-aware neural architecture search.\n\n"
        "Search spaces, per-device latency models, weight-shared supernets and search strategies. "
        "Start with `nas spaces` and `nas devices`, then `nas search --space elasticvit "
        "--device pixel7 --latency 25`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global_options(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True,
                                help="More detail on stderr (-vv: debug records)."),
    quiet: bool = typer.Option(False, "--quiet", "-q",
                               help="Only warnings and errors on stderr: no progress bars or "
                                    "notices."),
) -> None:
    """nasforge: hardware-aware neural architecture search."""
    set_verbosity(-1 if quiet else verbose)


for _topic in (_spaces, _arch, _hw, _train, _finetune, _search, _experiments, _predictor,
               _rank):
    _topic.register(app)
flow_help(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    gone = cwd_error_line()  # before torch loads: its MKL dies on a deleted working directory
    if gone is not None:
        err_console.print(f"error: {gone}", markup=False, highlight=False)
        sys.exit(EXIT_USAGE)
    _passive_omp_wait()
    _collect_less()
    sys.exit(run_app(app, argv))


def _collect_less() -> None:
    """Tune the garbage collector for one command's process: a pass per 50,000 new
    containers rather than 700, and the heap frozen at exit.

    A command imports torch and the models (hundreds of thousands of objects that live as
    long as the process): with Python's defaults the collector walked them again and again
    while they were imported (0.6 s of a ``nas search``), and the interpreter's last pass at
    exit walked them once more (1.1 s; ``benchmarks/ofa_search.py`` process CPU). Garbage
    cycles are still collected, in bigger passes; the frozen heap is only skipped by the
    last pass, when the process ends (finalizers run as before, by ``atexit``)."""
    gc.set_threshold(50_000, *gc.get_threshold()[1:])
    atexit.register(gc.freeze)


def _passive_omp_wait() -> None:
    """Let torch's idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``),
    unless the user chose a policy; it must be set before torch loads OpenMP.

    torch runs one thread per core, and a spinning thread whose core another process holds
    stalls the whole team at every parallel region: on the 2-core development machine, 12
    quick-recipe training steps took 253 s with the default (active) policy beside one busy
    single-threaded process, 35.5 s with the passive one, 30.4 s with one thread
    (``benchmarks/omp_wait.py`` compares the policies on an idle machine).
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
