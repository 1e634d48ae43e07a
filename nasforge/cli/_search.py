"""``nas search`` and ``nas run``: one search, from flags or from an experiment YAML.

Each command turns its flags into an :class:`~nasforge.experiments.config.ExperimentConfig`,
calls :func:`~nasforge.experiments.runner.run_experiment` and prints the outcome (a table, or
``--json``: the run's manifest on stdout and nothing else).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated
from typing import Any

import typer
from rich.table import Table

from nasforge.cli._common import console
from nasforge.cli._common import set_verbosity
from nasforge.errors import InvalidInputError
from nasforge.evaluation.settings import EvalSettings
from nasforge.experiments.config import AccuracySource
from nasforge.experiments.config import Constraints
from nasforge.experiments.config import ExperimentConfig
from nasforge.experiments.config import StrategyConfig
from nasforge.experiments.config import accuracy_of
from nasforge.experiments.config import load_experiment
from nasforge.structured import parse_structured

__all__ = ["register"]

EXAMPLES = Path(__file__).resolve().parents[1] / "experiments" / "examples"

_Space = Annotated[str, typer.Option("--space", "-s", help="Search space (`nas spaces`).")]
_SpaceOpt = Annotated[list[str], typer.Option(
    "--space-opt", help="Space option KEY=VALUE (repeatable), restricting a choice of the "
    "space, e.g. resolutions=160,176,192,208,224 (ofa_mbv3: OFA's table resolutions).")]
_Device = Annotated[str, typer.Option(
    "--device", "-d", help="Latency target (`nas devices`), or a latency column of the "
    "--benchmark table (e.g. pixel3_ms).")]
_Latency = Annotated[float | None, typer.Option("--latency", help="Latency budget in ms.")]
_Flops = Annotated[float | None, typer.Option("--flops", help="FLOPs budget in MFLOPs (MACs).")]
_Params = Annotated[float | None, typer.Option("--params", help="Parameter budget in millions.")]
_Strategy = Annotated[str, typer.Option("--strategy",
                                        help="random, evolution, predictor, gradient, optuna.")]
_StrategyOpt = Annotated[list[str], typer.Option(
    "--strategy-opt", help="Strategy setting KEY=VALUE (repeatable).")]
_Supernet = Annotated[str | None, typer.Option(
    "--supernet", help="Trained supernet checkpoint (`nas train`); as --accuracy supernet:PATH.")]
_Predictor = Annotated[str | None, typer.Option(
    "--predictor", help="Saved accuracy predictor folder; as --accuracy predictor:DIR.")]
_Benchmark = Annotated[str | None, typer.Option(
    "--benchmark", help="Tabular benchmark CSV (with --metric); as --accuracy csv:CSV:COL.")]
_Metric = Annotated[str | None, typer.Option("--metric", help="Accuracy column of --benchmark.")]
_Accuracy = Annotated[str | None, typer.Option(
    "--accuracy", help="Accuracy spec, as `nas rank --a`: quick, supernet:PATH, predictor:DIR, "
    "csv:PATH:COLUMN, zc:NAME (zc:synflow, zc:jacob_cov, zc:snip, zc:grad_norm), standalone, "
    "report:PATH:a|b.")]
_Data = Annotated[str | None, typer.Option(
    "--data", help="Dataset of the proxy's one batch or of stand-alone training (digits, "
    "mnist5k, cifar10:PATH); zc:synflow needs none.")]
_Budget = Annotated[int, typer.Option("--budget", min=1, help="Distinct evaluations.")]
_Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]
_Storage = Annotated[str | None, typer.Option(
    "--storage", help="Optuna storage of the search's study: sqlite:///PATH.db, "
    "postgresql://USER@HOST:PORT/DB, mysql://..., journal:PATH (default: OUT/search.db).")]
_Study = Annotated[str | None, typer.Option(
    "--study", help="Study name in --storage; joins (or continues) that study, so that several "
    "`nas search` processes share its budget (default: nasforge).")]
_Worker = Annotated[int | None, typer.Option(
    "--worker", min=0, help="This process's worker number in a shared --study (default 0). "
    "With neither --study nor --worker the search is its study's only writer (fastest: no "
    "claims); a process joining it while it runs is refused.")]
_Resume = Annotated[bool, typer.Option("--resume", help="Continue the search in its storage.")]
_CommitEvery = Annotated[float, typer.Option(
    "--commit-every", min=0, max=3600, help="Seconds between two writes of a single-writer "
    "search (its candidates and state, one transaction; 0: after every round). A kill loses "
    "what was evaluated since the last write; slow evaluations are written every round.")]
_TrialParams = Annotated[bool, typer.Option(
    "--trial-params", help="Store a single-writer search's candidates as Optuna trials with "
    "the architecture also as one param per choice (optuna-dashboard's param plots); by "
    "default they go to the study database's nasforge_candidates table (a generation a "
    "row, many times faster), which `nas trials` turns into trials.")]
_Workers = Annotated[int, typer.Option("--workers", min=1,
                                       help="Parallel supernet evaluators (Ray actors).")]
_Accelerator = Annotated[str, typer.Option("--accelerator", help="cpu, cuda or auto.")]
_Out = Annotated[Path, typer.Option("--out", "-o", help="Run folder.")]
_Quiet = Annotated[bool, typer.Option("--quiet", "-q",
                                      help="No progress bars or notices (as `nas -q`).")]
_Json = Annotated[bool, typer.Option(
    "--json", help="Print the run's manifest (run.json) as JSON on stdout, nothing else.")]


def search(
    space: _Space = "elasticvit", space_opt: _SpaceOpt = [],  # noqa: B006 (typer's list)
    device: _Device = "pixel7", latency: _Latency = None,
    flops: _Flops = None, params: _Params = None, strategy: _Strategy = "evolution",
    strategy_opt: _StrategyOpt = [], supernet: _Supernet = None,  # noqa: B006 (typer's list)
    predictor: _Predictor = None, benchmark: _Benchmark = None, metric: _Metric = None,
    accuracy: _Accuracy = None, data: _Data = None, budget: _Budget = 100, seed: _Seed = 0,
    storage: _Storage = None, study: _Study = None, worker: _Worker = None,
    resume: _Resume = False, commit_every: _CommitEvery = 1.0,
    trial_params: _TrialParams = False, workers: _Workers = 1,
    accelerator: _Accelerator = "auto", out: _Out = Path("runs/search"), quiet: _Quiet = False,
    as_json: _Json = False,
) -> None:
    """Find the best subnet under a latency budget on a device.

    Accuracy comes from exactly one source: --accuracy SPEC (every spec `nas rank --a` takes),
    or its older forms --supernet, --predictor, --benchmark CSV --metric COL; with none, the
    embedded quick supernet trained on `digits` (once, cached). Writes best.yaml, pareto.csv,
    candidates.csv, pareto.png and run.json into --out. Every evaluation is stored as it
    happens (--storage), so --resume continues a killed search, and several processes given
    one --storage and --study cooperate as workers of one Optuna study. A single writer
    (neither --study nor --worker) stores a generation of candidates a row; `nas trials
    STORAGE` turns them into Optuna trials for optuna-dashboard.
    """
    _run(_search_config(dict(locals())), quiet, as_json, study=study, worker=worker)


def _search_config(flags: dict[str, Any]) -> ExperimentConfig:
    """The experiment of ``nas search``'s flags (the older accuracy flags become specs)."""
    f = flags
    if (f["benchmark"] is None) != (f["metric"] is None):
        raise InvalidInputError("--benchmark and --metric go together (a CSV and its column)")
    if f["data"] is not None and f["accuracy"] is None:
        raise InvalidInputError("--data is the batch of a zero-cost proxy; use it with "
                                "--accuracy zc:NAME")
    sn, acc = f["supernet"], f["accuracy"]
    if acc == "supernet" and sn is not None:  # as `nas rank --a supernet --supernet CKPT`
        sn, acc = None, "quick" if sn == "quick" else f"supernet:{sn}"
    specs = {
        "supernet": None if sn is None else AccuracySource(
            "quick" if sn == "quick" else f"supernet:{sn}"),
        "predictor": None if f["predictor"] is None else AccuracySource(
            f"predictor:{f['predictor']}"),
        "benchmark": None if f["benchmark"] is None or f["metric"] is None else AccuracySource(
            f"csv:{f['benchmark']}:{f['metric']}"),
        "accuracy": None if acc is None else AccuracySource(acc, f["data"]),
    }
    return ExperimentConfig(
        search_space=f["space"], device=f["device"], accuracy=accuracy_of(specs),
        strategy=StrategyConfig(f["strategy"], _parse_opts(f["strategy_opt"])),
        constraints=Constraints(f["latency"], f["flops"], f["params"]), budget=f["budget"],
        seed=f["seed"], storage=f["storage"], out=str(f["out"]), resume=f["resume"],
        commit_every=f["commit_every"], trial_params=f["trial_params"],
        evaluation=EvalSettings(accelerator=f["accelerator"], workers=f["workers"]),
        space_options=_parse_opts(f["space_opt"], "--space-opt"))


def _parse_opts(opts: list[str], flag: str = "--strategy-opt") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for o in opts:
        key, sep, value = o.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"{flag} takes KEY=VALUE, got {o!r}")
        out[key] = parse_structured(value, f"{flag} {key}", kind="yaml")
    return out


def run(
    experiment: Path | None = typer.Argument(None, help="Experiment YAML (see --list)."),
    list_: bool = typer.Option(False, "--list", help="List the example experiments shipped."),
    resume: _Resume = False, quiet: _Quiet = False, as_json: _Json = False,
) -> None:
    """Run an experiment file: the YAML form of `nas search` (search_space, device, accuracy,
    strategy, constraints, budget, seed, storage, out)."""
    if list_:
        _print_examples()
        return
    if experiment is None:
        raise InvalidInputError("give an experiment YAML (or --list to see the examples)")
    path = experiment if experiment.exists() or not (EXAMPLES / experiment).exists() else (
        EXAMPLES / experiment)
    cfg = load_experiment(path)
    _run(cfg.replace(resume=True) if resume else cfg, quiet, as_json)


def _print_examples() -> None:
    table = Table(title=f"example experiments ({EXAMPLES})")
    table.add_column("file")
    table.add_column("what")
    for p in sorted(EXAMPLES.glob("*.yaml")):
        first = p.read_text().splitlines()[0].lstrip("# ") if p.read_text() else ""
        table.add_row(p.name, first)
    console.print(table)


def _run(cfg: ExperimentConfig, quiet: bool, as_json: bool = False, *,
         study: str | None = None, worker: int | None = None) -> None:
    from nasforge.experiments.runner import run_experiment
    from nasforge.strategies.storage import StorageURL

    if quiet or as_json:
        set_verbosity(-1)
    if not quiet and not as_json:
        url = StorageURL.for_run(cfg.storage, Path(cfg.out))
        if study is None and worker is None and not cfg.trial_params and url.scheme != "journal":
            # a single writer's rows are Optuna trials once `nas trials` has turned them
            console.print(f"for optuna-dashboard: nas trials {url.label} && "
                          f"{url.dashboard_command()} (or search with --trial-params)",
                          markup=False, highlight=False)
        else:
            console.print(f"watch it live: {url.dashboard_command()}", markup=False,
                          highlight=False)
    outcome = run_experiment(cfg, study=study, worker=worker)
    if as_json:
        console.print_json(json.dumps({"out_dir": str(outcome.out_dir), **outcome.manifest},
                                      default=str))
        return
    _print_outcome(cfg, outcome.out_dir, outcome.manifest)


def _print_outcome(cfg: ExperimentConfig, out_dir: Path, manifest: dict[str, Any]) -> None:
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
        lower = any(o.get("name") == "accuracy" and o.get("direction") == "minimize"
                    for o in manifest.get("objectives", []))  # a language model's loss
        table.add_row("loss (lower is better)" if lower else "accuracy",
                      f"{best['accuracy']:.{3 if lower else 2}f}")
        table.add_row("FLOPs (MACs)", f"{best['mflops']:.1f} M")
        table.add_row("params", f"{best['params_m']:.2f} M")
    table.add_row("evaluated", f"{s['n_evaluated']} ({s['stopped']}), Pareto front "
                  f"{s['pareto_size']}")
    table.add_row("time", f"{s['seconds']:.1f} s")
    table.add_row("outputs", str(out_dir))
    console.print(table)
    acc = manifest.get("accuracy", {})
    dev = manifest.get("device", {})
    console.print(f"accuracy provenance: {acc.get('kind')}"
                  + (f" on {acc.get('data')} @ {acc.get('input_size')} px"
                     if acc.get("input_size") else "")
                  + f"; latency provenance: {dev.get('provenance', dev.get('source', '?'))}")


def trials(
    storage: Annotated[str, typer.Argument(help="The search's storage: a run folder's "
                                           "search.db, sqlite:///PATH.db, postgresql://...")],
    study: Annotated[str | None, typer.Option(
        "--study", help="The study in STORAGE (default: nasforge, the name nas search gives "
        "it).")] = None,
) -> None:
    """Turn a single-writer search's candidates into Optuna trials, for optuna-dashboard.

    `nas search` without --study, --worker and --trial-params stores its candidates in the
    study database's nasforge_candidates table (a generation a row, many times faster than
    Optuna trials); this writes them as the trials the search would otherwise have written (same
    numbers, values and user attributes, one transaction). Workers joining the study with
    --study do it themselves. Run it after the search, not while it runs.
    """
    from nasforge.strategies.storage import StorageURL
    from nasforge.strategies.storage import write_trials

    url = StorageURL.parse(storage)
    n = write_trials(url, study or "nasforge")
    console.print(f"{n} candidate rows written as Optuna trials; view them: "
                  f"{url.dashboard_command()}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``search``, ``run`` and ``trials`` to ``app``."""
    app.command("search")(search)
    app.command("run")(run)
    app.command("trials")(trials)
