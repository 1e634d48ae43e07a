"""Parallel subnet evaluation: a pool of Ray actors sharing one supernet's weights.

The supernet's weights and the dataset are put into Ray's object store once
(``ray.put``); every actor rebuilds the supernet from them, so N workers cost one
serialisation, not N. Each actor holds one :class:`~nasforge.supernet.evaluate.EvalSet` and
evaluates one subnet at a time exactly as the in-process
:class:`~nasforge.evaluation.SupernetAccuracyObjective` does (``set_active``, BN
recalibration on K training batches at the subnet's own eval size, top-1 on the validation
images at that size), and a ``ray.util.ActorPool`` hands subnets to idle actors. With the same
options the numbers are those of one process. :meth:`SupernetActorPool.evaluate_subnets` returns
the full results in the order given (``nas eval --ray-address``);
:class:`SupernetActorPool` also has the objective's ``evaluate_many`` / ``provenance``
interface, so ``run_experiment(evaluator=...)`` and sweeps take either.

Ray is the optional extra ``nasforge[ray]``; it is imported when a pool is built.

Example:
    >>> from nasforge.search_spaces import get_space
    >>> from nasforge.supernet import build_supernet
    >>> from nasforge.data import load_data
    >>> space = get_space("elasticvit")
    >>> data = load_data("synthetic", 32)
    >>> with SupernetActorPool(build_supernet(space, data.num_classes), data,  # doctest: +SKIP
    ...                        workers=2) as pool:
    ...     pool.evaluate_many([space.min_arch(), space.max_arch()]).shape
    (2,)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge._extras import import_optional
from nasforge.errors import InvalidInputError
from nasforge.errors import MissingDependencyError
from nasforge.errors import NasforgeError

if TYPE_CHECKING:
    from nasforge.data import ImageData
    from nasforge.search_spaces.arch import Arch
    from nasforge.supernet.base import Supernet
    from nasforge.supernet.evaluate import SubnetAccuracy

__all__ = ["MissingDependencyError", "SupernetActorPool", "import_ray"]


def import_ray() -> ModuleType:
    """Import Ray, or say which extra to install.

    Raises:
        MissingDependencyError: Ray is not installed.
    """
    return import_optional("ray", extra="ray", feature="this (Ray)")


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to Ray (``address``: ``auto``, ``HOST:PORT``; None: a new local instance).

    Does nothing when this process is already connected (e.g. inside a Ray task).

    Returns:
        True when this call started the connection (the caller shuts it down).
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "configure_logging": False}
    if address is not None:
        kwargs["address"] = address
    elif num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    try:
        ray.init(**kwargs)
    except ConnectionError as e:
        raise InvalidInputError(f"cannot connect to the Ray cluster at {address!r}: {e}") from None
    return True


# ---- the actor ---------------------------------------------------------------------------------
class _Worker:
    """One actor: a supernet rebuilt from the shared weights plus a local evaluator."""

    def __init__(self, weights: dict[str, Any], data: dict[str, Any], opts: dict[str, Any]
                 ) -> None:
        import torch

        from nasforge.data import ImageData
        from nasforge.search_spaces import get_space
        from nasforge.supernet.evaluate import EvalSet
        from nasforge.supernet.registry import build_supernet

        torch.set_num_threads(int(opts["threads"]))
        self.space = get_space(str(weights["space"]))
        net = build_supernet(self.space, int(weights["num_classes"]))
        with warnings.catch_warnings():  # object-store arrays are read-only; load_state copies
            warnings.simplefilter("ignore", UserWarning)
            state = {k: torch.from_numpy(v) for k, v in weights["state"].items()}
            net.load_state_dict(state, strict=True)
            tensors = {k: torch.from_numpy(np.array(data[k])) for k in
                       ("train_x", "train_y", "val_x", "val_y")}
        self.data = ImageData(str(data["name"]), tensors["train_x"], tensors["train_y"],
                              tensors["val_x"], tensors["val_y"], int(data["num_classes"]),
                              int(data["input_size"]), data.get("resolution_scale"))
        self.net = net.eval()
        # the same held images as the in-process objective: same batches, same numbers
        self.eval_set = EvalSet(self.data, recal_batches=int(opts["recal_batches"]),
                                batch_size=int(opts["batch_size"]), seed=int(opts["seed"]),
                                device=str(opts["device"]), val_images=opts.get("val_images"))

    def ready(self) -> bool:
        """True once the supernet is rebuilt (the constructor has run)."""
        return True

    def evaluate(self, arch: dict[str, Any]) -> dict[str, Any]:
        """The :class:`~nasforge.supernet.evaluate.SubnetAccuracy` (as a dict) of one subnet
        given as its plain dict: BN recalibrated and scored at its own eval size."""
        from nasforge.supernet.evaluate import evaluate_subnet

        a = self.space.arch_from_dict(arch)
        acc = evaluate_subnet(self.net, a, self.data, eval_set=self.eval_set)
        return dataclasses.asdict(acc)

    def evaluate_at(self, position: int, arch: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``(position, evaluate(arch))``: the position lets the pool restore the order."""
        return position, self.evaluate(arch)


# ---- the pool ----------------------------------------------------------------------------------
class SupernetActorPool:
    """Evaluate subnets of one supernet on ``workers`` Ray actors in parallel.

    Same interface (and the same numbers) as
    :class:`~nasforge.evaluation.SupernetAccuracyObjective`: top-1 in percent after BN
    recalibration on ``recal_batches`` training batches chosen by ``seed``.

    Args:
        supernet: a trained supernet (its weights are shared through the object store).
        data: the dataset (shared through the object store as well).
        workers: number of actors.
        recal_batches: K, the BN recalibration batches per subnet.
        batch_size: batch size of recalibration and evaluation.
        val_images: score only this many validation images (``None``: all), as the
            in-process objective.
        seed: which training batches recalibrate.
        device: compute device inside each actor (``cpu``, ``cuda``).
        checkpoint: where the supernet came from (recorded in provenance).
        cpus_per_worker: Ray CPUs reserved per actor.
        gpus_per_worker: Ray GPUs reserved per actor (e.g. 0.5 to put two on one GPU).
        threads_per_worker: torch intra-op threads per actor.
        address: Ray address (``auto``, ``HOST:PORT``) when this process is not connected
            yet; None starts a local Ray instance.

    Raises:
        InvalidInputError: ``workers < 1`` or other non-positive sizes.
        MissingDependencyError: Ray is not installed.
    """

    def __init__(self, supernet: Supernet, data: ImageData, *, workers: int = 2,
                 recal_batches: int = 1, batch_size: int = 128, val_images: int | None = None,
                 seed: int = 0, device: str = "cpu", checkpoint: str | Path | None = None,
                 cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
                 threads_per_worker: int = 1, address: str | None = None) -> None:
        for label, v in (("workers", workers), ("recal_batches", recal_batches),
                         ("batch_size", batch_size), ("threads_per_worker", threads_per_worker)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInputError(f"SupernetActorPool: `{label} >= 1` must hold, but got "
                                        f"{label}={v!r}")
        ray = import_ray()
        from ray.util import ActorPool

        self.workers = workers
        self.recal_batches = recal_batches
        self.batch_size = batch_size
        self.val_images = val_images
        self.seed = seed
        self.device = device
        self.checkpoint = str(checkpoint) if checkpoint is not None else None
        self.data_name = data.name
        self.input_size = data.input_size
        self.val_split_images = len(data.val_x)
        self.resolution_scale = data.resolution_scale
        self._owns_ray = ensure_ray(address)
        weights = {"space": supernet.space.name, "num_classes": int(supernet.num_classes),
                   "state": {k: v.detach().cpu().numpy()
                             for k, v in supernet.state_dict().items()}}
        arrays = {k: getattr(data, k).detach().cpu().numpy()
                  for k in ("train_x", "train_y", "val_x", "val_y")}
        # one copy of each in the object store; every actor reads the same objects
        self._weights_ref = ray.put(weights)
        self._data_ref = ray.put({"name": data.name, "num_classes": data.num_classes,
                                  "input_size": data.input_size,
                                  "resolution_scale": data.resolution_scale, **arrays})
        opts = {"recal_batches": recal_batches, "batch_size": batch_size, "seed": seed,
                "device": device, "threads": threads_per_worker, "val_images": val_images}
        actor_cls = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker)(_Worker)
        self._actors = [actor_cls.remote(self._weights_ref, self._data_ref, opts)
                        for _ in range(workers)]
        self._pool: Any = ActorPool(self._actors)
        self._cache: dict[str, float] = {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, data: str | None = None,
                        **kwargs: Any) -> SupernetActorPool:
        """A pool over the supernet saved at ``path`` (file or run folder).

        Args:
            path: the checkpoint.
            data: dataset spec (default: the one the supernet was trained on, at its input
                size and with its seed, as ``run_experiment`` does).
            **kwargs: the constructor's keyword arguments (``workers``, ``recal_batches``...).
        """
        from nasforge.supernet.checkpoint import RunConfig
        from nasforge.supernet.checkpoint import load_supernet

        supernet, ckpt = load_supernet(Path(path))
        run = RunConfig.from_checkpoint(ckpt)
        seed, image_data = run.seed, run.open_data(data)
        kwargs.setdefault("seed", seed)
        kwargs.setdefault("checkpoint", path)
        return cls(supernet, image_data, **kwargs)  # type: ignore[arg-type]

    def wait_ready(self) -> None:
        """Block until every actor has rebuilt the supernet (start-up, for timing)."""
        import_ray().get([a.ready.remote() for a in self._actors])

    def evaluate_subnets(self, archs: Sequence[Arch]) -> list[SubnetAccuracy]:
        """One :class:`~nasforge.supernet.evaluate.SubnetAccuracy` per arch, in the order given
        (every arch evaluated, duplicates included; idle actors take the next one).

        Raises:
            NasforgeError: the pool was closed.
        """
        from nasforge.supernet.evaluate import SubnetAccuracy

        if self._pool is None:
            raise NasforgeError("SupernetActorPool is closed; build a new one")
        results = self._pool.map_unordered(
            lambda actor, job: actor.evaluate_at.remote(*job),
            [(i, a.to_dict()) for i, a in enumerate(archs)])
        out: dict[int, SubnetAccuracy] = {}
        for i, acc in results:
            out[int(i)] = SubnetAccuracy(**acc)
        return [out[i] for i in range(len(archs))]

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        """Top-1 in percent, shape ``(len(archs),)``; each distinct arch is evaluated once.

        Raises:
            NasforgeError: the pool was closed.
        """
        if self._pool is None:
            raise NasforgeError("SupernetActorPool is closed; build a new one")
        todo: dict[str, Arch] = {}
        for a in archs:
            if a.arch_id not in self._cache:
                todo.setdefault(a.arch_id, a)
        if todo:
            for acc in self.evaluate_subnets(list(todo.values())):
                self._cache[acc.arch_id] = 100.0 * acc.top1
        return np.array([self._cache[a.arch_id] for a in archs], dtype=np.float64)

    def provenance(self) -> dict[str, Any]:
        """How the numbers were obtained (as the in-process evaluator's, plus the pool size)."""
        n_val = (self.val_split_images if self.val_images is None
                 else min(self.val_split_images, self.val_images))
        return {"kind": "supernet top-1 %", "checkpoint": self.checkpoint,
                "data": self.data_name, "input_size": self.input_size,
                "resolution_scale": self.resolution_scale,
                "val_images": n_val, "val_split_images": self.val_split_images,
                "bn_recalibration_batches": self.recal_batches,
                "bn_recalibration_images": self.recal_batches * self.batch_size,
                "batch_size": self.batch_size, "recalibration_seed": self.seed,
                "executor": "ray actor pool", "workers": self.workers}

    def close(self) -> None:
        """Stop the actors (and the local Ray instance when this pool started it)."""
        if self._pool is None:
            return
        ray = import_ray()
        for actor in self._actors:
            ray.kill(actor)
        self._actors, self._pool = [], None
        if self._owns_ray:
            ray.shutdown()

    def __enter__(self) -> SupernetActorPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
