"""``nas search`` and ``nas run``: one search, from flags or from an experiment YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml
from rich.table import Table

from nasforge.cli._common import console
from nasforge.cli._common import set_verbosity
from nasforge.errors import InvalidInputError
from nasforge.experiments.config import AccuracySource
from nasforge.experiments.config import BenchmarkSource
from nasforge.experiments.config import Constraints
from nasforge.experiments.config import ExperimentConfig
from nasforge.experiments.config import StrategyConfig
from nasforge.experiments.config import load_experiment

__all__ = ["register"]

EXAMPLES = Path(__file__).resolve().parents[1] / "experiments" / "examples"


def _parse_opts(opts: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for o in opts:
        key, sep, value = o.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--strategy-opt takes KEY=VALUE, got {o!r}")
        out[key] = yaml.safe_load(value)
    return out


def search(
    space: str = typer.Option("elasticvit", "--space", "-s", help="Search space (`nas spaces`)."),
    device: str = typer.Option("pixel7", "--device", "-d",
                               help="Latency target (`nas devices`), or a latency column of "
                                    "the --benchmark table (e.g. pixel3_ms)."),
    latency: float | None = typer.Option(None, "--latency", help="Latency budget in ms."),
    flops: float | None = typer.Option(None, "--flops", help="FLOPs budget in MFLOPs (MACs)."),
    params: float | None = typer.Option(None, "--params", help="Parameter budget in millions."),
    strategy: str = typer.Option("evolution", "--strategy",
                                 help="random, evolution, predictor, gradient, optuna."),
    strategy_opt: list[str] = typer.Option([], "--strategy-opt",
                                           help="Strategy setting KEY=VALUE (repeatable)."),
    supernet: str | None = typer.Option(None, "--supernet",
                                        help="Trained supernet checkpoint (`nas train`)."),
    predictor: str | None = typer.Option(None, "--predictor",
                                         help="Saved accuracy predictor folder."),
    benchmark: str | None = typer.Option(None, "--benchmark",
                                         help="Tabular benchmark CSV (with --metric)."),
    metric: str | None = typer.Option(None, "--metric", help="Accuracy column of --benchmark."),
    accuracy: str | None = typer.Option(None, "--accuracy",
                                        help="Zero-cost proxy as the accuracy: zc:synflow, "
                                             "zc:jacob_cov, zc:snip, zc:grad_norm."),
    data: str | None = typer.Option(None, "--data",
                                    help="Dataset of the proxy's one batch (digits, mnist5k, "
                                         "cifar10:PATH); zc:synflow needs none."),
    budget: int = typer.Option(100, "--budget", min=1, help="Distinct evaluations."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage of the search's study: sqlite:///PATH.db, "
        "postgresql://USER@HOST:PORT/DB, mysql://..., journal:PATH (default: OUT/search.db)."),
    study: str | None = typer.Option(
        None, "--study", help="Study name in --storage; joins (or continues) that study, so "
        "that several `nas search` processes share its budget (default: nasforge)."),
    worker: int = typer.Option(0, "--worker", min=0,
                               help="This process's worker number in a shared --study."),
    resume: bool = typer.Option(False, "--resume", help="Continue the search in --storage."),
    workers: int = typer.Option(1, "--workers", min=1,
                                help="Parallel supernet evaluators (Ray actors)."),
    accelerator: str = typer.Option("auto", "--accelerator", help="cpu, cuda or auto."),
    out: Path = typer.Option(Path("runs/search"), "--out", "-o", help="Run folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or notices "
                               "(as `nas -q`)."),
) -> None:
    """Find the best subnet under a latency budget on a device.

    Accuracy comes from exactly one source: a trained supernet (--supernet), a saved predictor
    (--predictor), a tabular benchmark (--benchmark CSV --metric COL), a zero-cost proxy of the
    randomly initialised subnet (--accuracy zc:synflow; --data for the proxies that need one
    batch), or — with none — the
    embedded quick supernet trained on `digits` (once, cached). Writes best.yaml, pareto.csv,
    candidates.csv, pareto.png and run.json into --out. Every evaluation is a trial of an
    Optuna study (--storage, --study), so --resume continues a killed search, several
    processes given one --storage and --study cooperate, and optuna-dashboard shows it.
    """
    if (benchmark is None) != (metric is None):
        raise InvalidInputError("--benchmark and --metric go together (a CSV and its column)")
    if data is not None and accuracy is None:
        raise InvalidInputError("--data is the batch of a zero-cost proxy; use it with "
                                "--accuracy zc:NAME")
    cfg = ExperimentConfig(
        search_space=space, device=device, supernet=supernet, predictor=predictor,
        benchmark=BenchmarkSource(benchmark, metric) if benchmark and metric else None,
        strategy=StrategyConfig(strategy, _parse_opts(strategy_opt)),
        constraints=Constraints(latency, flops, params), budget=budget, seed=seed,
        storage=storage, out=str(out), workers=workers, resume=resume, accelerator=accelerator,
        accuracy=AccuracySource(accuracy, data) if accuracy is not None else None,
    )
    _run(cfg, quiet, study=study, worker=worker)


def run(
    experiment: Path | None = typer.Argument(None, help="Experiment YAML (see --list)."),
    list_: bool = typer.Option(False, "--list", help="List the example experiments shipped."),
    resume: bool = typer.Option(False, "--resume", help="Continue the search in its storage."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or notices "
                               "(as `nas -q`)."),
) -> None:
    """Run an experiment file: the YAML form of `nas search` (search_space, device, supernet /
    predictor / benchmark, strategy, constraints, budget, seed, storage, out)."""
    if list_:
        table = Table(title=f"example experiments ({EXAMPLES})")
        table.add_column("file")
        table.add_column("what")
        for p in sorted(EXAMPLES.glob("*.yaml")):
            first = p.read_text().splitlines()[0].lstrip("# ") if p.read_text() else ""
            table.add_row(p.name, first)
        console.print(table)
        return
    if experiment is None:
        raise InvalidInputError("give an experiment YAML (or --list to see the examples)")
    path = experiment if experiment.exists() or not (EXAMPLES / experiment).exists() else (
        EXAMPLES / experiment)
    cfg = load_experiment(path)
    if resume:
        cfg = cfg.replace(resume=True)
    _run(cfg, quiet)


def _run(cfg: ExperimentConfig, quiet: bool, *, study: str | None = None,
         worker: int = 0) -> None:
    from nasforge.experiments.runner import run_experiment
    from nasforge.strategies.storage import StorageURL

    if quiet:
        set_verbosity(-1)
    else:
        command = StorageURL.for_run(cfg.storage, Path(cfg.out)).dashboard_command()
        console.print(f"watch it live: {command}", markup=False, highlight=False)
    outcome = run_experiment(cfg, study=study, worker=worker)
    manifest = outcome.manifest
    s = manifest["summary"]
    table = Table(title=f"nas search · {cfg.search_space} on {cfg.device} · {s['name']}")
    table.add_column("", style="bold")
    table.add_column("value")
    best = s["best"]
    if best is None:
        table.add_row("best", "no candidate met the constraints")
    else:
        table.add_row("best arch", best["arch_id"])
        table.add_row("latency", f"{best['latency_ms']:.2f} ms "
                      f"(budget {cfg.constraints.latency_ms or '-'})")
        table.add_row("accuracy", f"{best['accuracy']:.2f}")
        table.add_row("FLOPs (MACs)", f"{best['mflops']:.1f} M")
        table.add_row("params", f"{best['params_m']:.2f} M")
    table.add_row("evaluated", f"{s['n_evaluated']} ({s['stopped']}), Pareto front "
                  f"{s['pareto_size']}")
    table.add_row("time", f"{s['seconds']:.1f} s")
    table.add_row("outputs", str(outcome.out_dir))
    console.print(table)
    acc = manifest.get("accuracy", {})
    dev = manifest.get("device", {})
    console.print(f"accuracy provenance: {acc.get('kind')}"
                  + (f" on {acc.get('data')} @ {acc.get('input_size')} px"
                     if acc.get("input_size") else "")
                  + f"; latency provenance: {dev.get('provenance', dev.get('source', '?'))}")


def register(app: typer.Typer) -> None:
    """Add ``search`` and ``run`` to ``app``."""
    app.command("search")(search)
    app.command("run")(run)
