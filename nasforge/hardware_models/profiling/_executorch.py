"""ExecuTorch: lower a torch module to a ``.pte`` program (XNNPACK), list what stays out, run it.

ExecuTorch is PyTorch's own on-device runtime. A module goes ``torch.export.export`` ->
``executorch.exir.to_edge_transform_and_lower`` with the XNNPACK partitioner -> an ExecuTorch
program (``.pte`` flatbuffer). Ops the partitioner does not take stay in the program as
portable-kernel ops between XNNPACK delegate calls; each such boundary costs time (and lowering
time grows with the partitions), which is why nasforge lists them and first rewrites the graph
into ops XNNPACK takes where it can
(:mod:`~nasforge.hardware_models.profiling._executorch_prep`: LayerNorm, weights-only
subgraphs, no-op expands). Both the lowering and the runtime come with the optional extra
``nasforge[executorch]``.

* :func:`lower_module` lowers one module (or an already exported program) and returns the
  program with the ops left outside the delegate (count per op name);
  :func:`lower_to_executorch` is the same, returning only the bytes;
* :func:`method_call` loads a program into ``executorch.runtime`` and returns a timing call
  and a ``run(x)``;
* :class:`PteCache` keeps lowered programs on disk by key (a block key, an arch id), so a block
  is lowered once per machine; :func:`lower_many` fills it (``workers`` processes at once).

Example:
    >>> import torch
    >>> low = lower_module(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()),
    ...                    (torch.randn(1, 3, 8, 8),))
    >>> low.delegates, low.outside
    (1, {})
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from dataclasses import field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge._extras import require_optional
from nasforge._paths import cache_dir
from nasforge.errors import InvalidInputError

__all__ = [
    "Lowered",
    "PteCache",
    "executorch_versions",
    "lower_many",
    "lower_module",
    "lower_to_executorch",
    "method_call",
    "outside_delegate",
    "require_executorch",
    "runtime_description",
    "set_threads",
]

logger = logging.getLogger(__name__)

#: how programs are lowered; part of the cache key, so a change of the lowering re-lowers.
LOWERING = "xnnpack-prepared-2"

#: graph nodes that are plumbing, not ops: the delegate call itself and tuple indexing.
_PLUMBING = {"executorch_call_delegate", "getitem"}


def require_executorch() -> None:
    """Check that the ``executorch`` extra is installed.

    Raises:
        MissingDependencyError: ``executorch`` is missing.
    """
    require_optional({"executorch": "executorch"}, extra="executorch", feature="ExecuTorch")


def executorch_versions() -> dict[str, str]:
    """Versions of ``executorch`` and ``torch``."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version

    try:
        et = version("executorch")
    except PackageNotFoundError:
        et = "missing"
    return {"executorch": et, "torch": torch.__version__.split("+")[0]}


@dataclass(frozen=True)
class Lowered:
    """A lowered ExecuTorch program.

    Attributes:
        content: the ``.pte`` flatbuffer.
        outside: ops left outside the XNNPACK delegate, count per op name
            (``{"aten.native_layer_norm.default": 8}``); empty when all was delegated.
        delegates: number of XNNPACK delegate calls in the program.
        seconds: wall time of export and lowering.
    """

    content: bytes
    outside: dict[str, int] = field(default_factory=dict)
    delegates: int = 0
    seconds: float = 0.0

    def report(self) -> dict[str, Any]:
        """JSON-ready: the counts, the size and the versions (no bytes)."""
        return {"outside_delegate": dict(self.outside),
                "outside_delegate_total": int(sum(self.outside.values())),
                "delegate_calls": self.delegates, "pte_bytes": len(self.content),
                "lower_s": round(self.seconds, 2), **executorch_versions()}


def outside_delegate(graph: torch.fx.Graph) -> tuple[dict[str, int], int]:
    """Ops of a lowered edge graph left outside the delegate, and the number of delegate calls.

    Args:
        graph: the graph of the lowered edge program (``edge.exported_program().graph``).

    Returns:
        ``({op name: count}, delegate calls)``, op names as ``aten.mean.dim``, sorted.
    """
    ops: Counter[str] = Counter()
    calls = 0
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        name = str(getattr(node.target, "__name__", node.target))
        if name == "executorch_call_delegate":
            calls += 1
        elif name not in _PLUMBING:
            ops[name] += 1
    return dict(sorted(ops.items())), calls


def lower_module(model: nn.Module | torch.export.ExportedProgram,
                 example_inputs: tuple[torch.Tensor, ...], *, name: str = "module",
                 prepare: bool = True) -> Lowered:
    """Export ``model`` and lower it to an ExecuTorch program with the XNNPACK partitioner.

    An ``nn.Module`` (put in eval mode; a PT2E-quantized ``GraphModule`` too) is exported with
    ``torch.export.export`` at ``example_inputs``; an ``ExportedProgram`` is lowered as it is.

    Args:
        model: the module or exported program; x: (1, C, H, W) -> output.
        example_inputs: the inputs it is exported at (shapes are fixed in the program).
        name: what the module is (a block key, an arch id), for the error message.
        prepare: make the graph XNNPACK-friendly first (LayerNorm from delegable ops, weights-only
            subgraphs folded to constants, no-op expands dropped; see
            :mod:`~nasforge.hardware_models.profiling._executorch_prep`): fewer partitions,
            faster lowering and running; False lowers the graph as exported.

    Returns:
        The program, the ops outside the delegate and the lowering time.

    Raises:
        MissingDependencyError: the extra is not installed.
        InvalidInputError: export or lowering fails (the message names ``name``).
    """
    require_executorch()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from nasforge.hardware_models.profiling._executorch_prep import edge_passes
    from nasforge.hardware_models.profiling._executorch_prep import forget_provenance
    from nasforge.hardware_models.profiling._executorch_prep import xnnpack_ready

    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if isinstance(model, torch.export.ExportedProgram):
                ep = model
            else:
                module = xnnpack_ready(model.eval()) if prepare else model.eval()
                ep = torch.export.export(module, tuple(example_inputs))
                if prepare:
                    forget_provenance(ep)
            edge = to_edge_transform_and_lower(
                ep, partitioner=[XnnpackPartitioner()],
                transform_passes=edge_passes() if prepare else None)
            outside, calls = outside_delegate(edge.exported_program().graph)
            content = bytes(edge.to_executorch().buffer)
    except Exception as e:  # export and lowering raise many kinds; one line, named
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise InvalidInputError(
            f"ExecuTorch could not lower {name}: {type(e).__name__}: {first}; this model is not "
            f"lowerable with executorch {executorch_versions()['executorch']}; export another "
            "format (--format tflite / onnx) or report it") from None
    return Lowered(content, outside, calls, time.perf_counter() - t0)


def lower_to_executorch(model: nn.Module | torch.export.ExportedProgram,
                        example_inputs: tuple[torch.Tensor, ...]) -> bytes:
    """The ``.pte`` bytes of :func:`lower_module` (XNNPACK partitioner, fp32 or PT2E int8).

    Example:
        >>> import torch
        >>> pte = lower_to_executorch(torch.nn.Linear(4, 2), (torch.randn(1, 4),))
        >>> len(pte) > 0
        True
    """
    return lower_module(model, example_inputs).content


def set_threads(threads: int) -> None:
    """Size ExecuTorch's (process-wide) threadpool to ``threads`` (XNNPACK's workers).

    Raises:
        InvalidInputError: ``threads < 1``.
    """
    if threads < 1:
        raise InvalidInputError(f"ExecuTorch threads must be >= 1, but got {threads=}")
    from executorch.extension.pybindings import portable_lib

    if portable_lib._threadpool_get_thread_count() != threads:
        portable_lib._unsafe_reset_threadpool(threads)


def method_call(content: bytes | Path, threads: int = 1, seed: int = 0,
                ) -> tuple[Callable[[], object], Callable[[np.ndarray], np.ndarray]]:
    """Load a ``.pte`` program into ``executorch.runtime`` and return calls of its ``forward``.

    Args:
        content: the program or a file holding it.
        threads: threadpool size (process-wide; 1: XNNPACK computes in the calling thread).
        seed: seed of the fixed input of the timing call.

    Returns:
        ``(call, run)``: ``call()`` runs the program once on a fixed random input (for
        timing); ``run(x)`` runs it on ``x`` (its input shape, float32) and returns its first
        output.

    Raises:
        MissingDependencyError: the extra is not installed.
    """
    require_executorch()
    set_threads(threads)
    loaded = _Loaded(content.read_bytes() if isinstance(content, Path) else content, seed)
    return loaded.call, loaded.run


class _Loaded:
    """A program's ``forward``, holding the bytes and the program, which the runtime reads in
    place: both must outlive the method (its bound calls keep this object alive)."""

    def __init__(self, data: bytes, seed: int) -> None:
        from executorch.runtime import Runtime

        self.data = data
        self.program = Runtime.get().load_program(data)
        self.method = self.program.load_method("forward")
        shape = tuple(self.method.metadata.input_tensor_meta(0).sizes())
        self.fixed = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))

    def call(self) -> object:
        return self.method.execute([self.fixed])

    def run(self, x: np.ndarray) -> np.ndarray:
        out = self.method.execute([torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))])
        return np.array(out[0].numpy())


def runtime_description(threads: int) -> str:
    """``ExecuTorch 1.5.1 (executorch.runtime), XNNPACK delegate, fp32, batch 1, N thread(s)``."""
    v = executorch_versions()
    return (f"ExecuTorch {v['executorch']} (executorch.runtime) with the XNNPACK delegate, fp32, "
            f"batch 1, {threads} thread{'s' if threads > 1 else ''}; lowered from torch "
            f"{v['torch']}")


class PteCache:
    """Lowered programs on disk, by key: ``<root>/<sha1(key, shape, versions, LOWERING)[:20]>.pte``.

    Each file has a ``.json`` beside it with the key, the shape, the ops outside the delegate
    and the lowering time.

    Args:
        root: the folder (default ``$NASFORGE_CACHE/executorch``).
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "executorch"

    def path(self, key: str, shape: Sequence[int]) -> Path:
        """The file of ``key`` at input ``shape`` (versions and :data:`LOWERING` in the hash)."""
        v = executorch_versions()
        tag = f"{key}|{tuple(shape)}|{v['executorch']}|{v['torch']}|{LOWERING}"
        return self.root / f"{hashlib.sha1(tag.encode()).hexdigest()[:20]}.pte"

    def get(self, key: str, shape: Sequence[int]) -> Path | None:
        """The cached file, or None."""
        p = self.path(key, shape)
        return p if p.is_file() and p.stat().st_size > 0 else None

    def put(self, key: str, shape: Sequence[int], low: Lowered) -> Path:
        """Store ``low`` (atomically: a killed run leaves no torn file)."""
        p = self.path(key, shape)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(low.content)
        p.with_suffix(".json").write_text(json.dumps(
            {"key": key, "shape": list(shape), **low.report()}, sort_keys=True))
        os.replace(tmp, p)
        return p

    def outside(self, key: str, shape: Sequence[int]) -> dict[str, int] | None:
        """The ops outside the delegate recorded for ``key``, or None."""
        from nasforge.structured import load_structured

        meta = self.path(key, shape).with_suffix(".json")
        if not meta.is_file():
            return None
        got = load_structured(meta, "lowering metadata", kind="json").get("outside_delegate")
        return {str(k): int(v) for k, v in (got or {}).items()}


def lower_many(jobs: Sequence[tuple[str, nn.Module, tuple[int, ...]]], cache: PteCache,
               *, seed: int = 0, workers: int = 1) -> list[Path]:
    """Lower what ``cache`` lacks of ``jobs`` (``(key, module, shape)``), ``workers`` at once.

    Lowering is single-threaded Python (seconds to minutes per network), so on a machine with
    idle cores ``workers`` processes lower that many programs at once.

    Args:
        jobs: what to lower; the key names the file and, on failure, the block.
        cache: where files go and are found.
        seed: seed of the example input each module is exported at.
        workers: processes lowering at once (1: in this process).

    Returns:
        The file of each job, in order.

    Raises:
        InvalidInputError: a lowering failed (the message names the key), or a lowering
            process died.
    """
    todo = [(k, m, s) for k, m, s in jobs if cache.get(k, s) is None]
    if todo and workers > 1 and len(todo) > 1:
        ctx = get_context("spawn")  # torch and the lowering are not fork-safe
        try:
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as ex:
                futs = [ex.submit(_lower_job, k, m, s, seed) for k, m, s in todo]
                for (k, _, s), f in zip(todo, futs, strict=True):
                    cache.put(k, s, f.result())
        except BrokenProcessPool:
            raise InvalidInputError(
                f"a lowering process died while lowering {len(todo)} model(s) (out of memory, "
                "or a caller without an `if __name__ == '__main__':` guard); rerun with "
                "--jobs 1") from None
    else:
        for k, m, s in todo:
            cache.put(k, s, _lower_job(k, m, s, seed))
    out = []
    for k, _, s in jobs:
        p = cache.get(k, s)
        if p is None:  # pragma: no cover - put() just wrote it
            raise InvalidInputError(f"lowered program of {k} vanished from {cache.root}")
        out.append(p)
    return out


def _lower_job(key: str, module: nn.Module, shape: tuple[int, ...], seed: int) -> Lowered:
    """One job of :func:`lower_many` (module level: it runs in worker processes)."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    return lower_module(module, (x,), name=key)
