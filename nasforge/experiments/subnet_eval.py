"""Many subnets of one trained supernet scored at once (``nas eval``): in this process, sharded
over the ranks of a ``torchrun`` group, or over Ray actors.

Steps of :func:`evaluate_checkpoint`, each with one job: load the supernet and the archs
(:func:`~nasforge.experiments.arch_files.read_archs`), open the data the checkpoint records (or
another spec), expand the archs over the asked resolutions, score them (:func:`_score`), and
return them in the order given (:class:`SubnetEvaluation`; ``None`` on ranks other than 0).
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.experiments.arch_files import read_archs

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.supernet.evaluate import SubnetAccuracy

__all__ = ["EvalOptions", "SubnetEvaluation", "evaluate_checkpoint"]

#: which training batches recalibrate BN (as ``nas eval`` always did)
RECAL_SEED = 0


@dataclass(frozen=True)
class EvalOptions:
    """How the subnets are scored.

    Attributes:
        data: dataset spec (``None``: the one the checkpoint was trained on).
        resolutions: score each arch at these deployment resolutions instead of its own.
        recal_batches: BN recalibration batches.
        batch_size: batch size of recalibration and evaluation.
        val_images: score this many validation images (``None``: all).
        workers: DataLoader worker processes (``None``: the run's).
        ray_address: shard the archs over Ray actors (``local``: a Ray started here).
        ray_workers: Ray actors.
        accelerator: ``cpu``, ``cuda`` or ``auto``.
    """

    data: str | None = None
    resolutions: Sequence[int] = ()
    recal_batches: int = 8
    batch_size: int = 128
    val_images: int | None = None
    workers: int | None = None
    ray_address: str | None = None
    ray_workers: int = 2
    accelerator: str = "auto"


@dataclass(frozen=True)
class SubnetEvaluation:
    """The scored archs, in the order given (each repeated per asked resolution).

    Attributes:
        archs: the archs scored.
        accuracies: their top-1 and how it was measured, one per arch.
        data: the dataset's name.
    """

    archs: list[Arch]
    accuracies: list[SubnetAccuracy]
    data: str

    def rows(self) -> list[dict[str, Any]]:
        """One plain dict per arch: the accuracy's fields and ``arch`` (its JSON)."""
        return [{**dataclasses.asdict(acc), "arch": a.to_json()}
                for a, acc in zip(self.archs, self.accuracies, strict=True)]

    def write_csv(self, path: Path) -> None:
        """Write :meth:`rows` as CSV (``arch_id`` only as header when nothing was scored)."""
        from nasforge.supernet.evaluate import SubnetAccuracy

        path.parent.mkdir(parents=True, exist_ok=True)
        fields = [f.name for f in dataclasses.fields(SubnetAccuracy)] if self.accuracies \
            else ["arch_id"]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[*fields, "arch"])
            writer.writeheader()
            writer.writerows(self.rows())


def evaluate_checkpoint(checkpoint: Path, arch_paths: Sequence[Path],
                        options: EvalOptions = EvalOptions()) -> SubnetEvaluation | None:
    """Top-1 of subnets of a trained supernet, each at its resolution (BN recalibrated there).

    Args:
        checkpoint: checkpoint file or run folder.
        arch_paths: architecture files, folders of them, or CSVs with an ``arch`` column.
        options: data, resolutions, batches and where to run.

    Returns:
        The :class:`SubnetEvaluation` (``None`` on ``torchrun`` ranks other than 0).

    Raises:
        InvalidInputError: unreadable checkpoint or archs, streaming data with Ray.
        IncompatibleComponentsError: data whose classes differ from the supernet's.
    """
    from nasforge.supernet.checkpoint import RunConfig
    from nasforge.supernet.checkpoint import load_supernet
    from nasforge.supernet.training.train import resolve_device

    device = resolve_device(options.accelerator)
    model, ck = load_supernet(checkpoint)
    space: Any = model.space
    given = read_archs(space, arch_paths)
    ds = RunConfig.from_checkpoint(ck).open_data(options.data, workers=options.workers)
    if ds.task != "image":
        raise IncompatibleComponentsError(
            f"nas eval scores image classifiers; {checkpoint} was trained on text "
            f"({ds.name}): score its subnets by validation loss with nas search --supernet "
            f"{checkpoint} or nas rank --a supernet:{checkpoint}")
    if ds.num_classes != model.num_classes:
        raise IncompatibleComponentsError(
            f"data {ds.name!r} has {ds.num_classes} classes, the supernet {model.num_classes}"
        )
    archs = given if not options.resolutions else [
        space.arch_from_dict({**a.to_dict(), "resolution": int(r)})
        for a in given for r in options.resolutions]
    accs = _score(model, ds, archs, options, device)
    return None if accs is None else SubnetEvaluation(archs, accs, ds.name)


def _score(model: Any, ds: Any, archs: list[Arch], options: EvalOptions, device: Any
           ) -> list[SubnetAccuracy] | None:
    """On Ray actors, or in this process (sharded over a ``torchrun`` group when one is up);
    ``None`` on ranks other than 0."""
    from nasforge.supernet.evaluate import EvalSet
    from nasforge.supernet.evaluate import evaluate_subnets
    from nasforge.supernet.training.distributed import join_torchrun_group
    from nasforge.supernet.training.distributed import rank_and_world
    from nasforge.supernet.training.distributed import shutdown

    es = EvalSet(ds, recal_batches=options.recal_batches, batch_size=options.batch_size,
                 seed=RECAL_SEED, device=device, val_images=options.val_images)
    if options.ray_address is not None:
        return _ray_score(model, ds, archs, options, str(device))
    owns_group = join_torchrun_group(device)
    try:
        accs = evaluate_subnets(model, archs, ds, eval_set=es)
        rank = rank_and_world()[0]
    finally:
        if owns_group:
            shutdown()
    return accs if rank == 0 else None


def _ray_score(model: Any, ds: Any, archs: list[Arch], options: EvalOptions, device: str
               ) -> list[SubnetAccuracy]:
    from nasforge.data import ImageData
    from nasforge.evaluation.pool import SupernetActorPool

    if not isinstance(ds, ImageData):
        raise InvalidInputError(f"--ray-address shares the dataset through Ray's object store, "
                                f"which needs an in-memory dataset; {ds.name!r} streams: drop "
                                "--ray-address or use torchrun")
    address = options.ray_address
    with SupernetActorPool(model, ds, workers=options.ray_workers,
                           recal_batches=options.recal_batches, batch_size=options.batch_size,
                           val_images=options.val_images, seed=RECAL_SEED, device=device,
                           address=None if address == "local" else address) as pool:
        return pool.evaluate_subnets(archs)
