"""LiteRT (the TFLite runtime): convert a torch module to ``.tflite``, count its MACs, run it.

Conversion goes through ``litert-torch`` (PyTorch -> ``.tflite``, no TensorFlow) and running
through ``ai-edge-litert`` (the LiteRT interpreter with the XNNPACK CPU delegate), both in the
optional extra ``nasforge[tflite]``. The input stays NCHW as in torch.

* :func:`convert_module` converts one module at a fixed input shape and returns the flatbuffer
  with the converter's own MAC count (the "Estimated count of arithmetic ops" that the
  flatbuffer exporter logs, which nasforge sets beside its analytic ``flops``);
* :class:`TfliteCache` keeps converted files on disk by key (a block key or an arch id), so a
  block is converted once per machine; :func:`convert_many` fills it, in parallel processes
  when asked;
* :func:`interpreter_call` loads a file into a LiteRT interpreter (XNNPACK, fp32, ``threads``
  threads) and returns a zero-argument call that runs it once on a fixed input.

Conversions are slow (about 2 s for one block, 40 s for a whole elasticvit subnet on one core);
the library's own progress lines and the native libraries' log lines are kept off the
terminal and sent to this module's logger at DEBUG.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
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
    "ConvertStats",
    "Converted",
    "TfliteCache",
    "convert_many",
    "convert_module",
    "converter_macs",
    "graph_macs",
    "interpreter_call",
    "litert_versions",
    "require_litert",
    "runtime_description",
]

logger = logging.getLogger(__name__)

_MACS = re.compile(r"equivalently\s+([0-9.]+)\s*([KMGT]?)\s*MACs")
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def require_litert() -> None:
    """Check that the ``tflite`` extra is installed.

    Raises:
        MissingDependencyError: ``litert-torch`` or ``ai-edge-litert`` is missing.
    """
    require_optional({"litert_torch": "litert-torch", "ai_edge_litert": "ai-edge-litert"},
                     extra="tflite", feature="TFLite / LiteRT")


def litert_versions() -> dict[str, str]:
    """Versions of the converter and the runtime (``litert-torch``, ``ai-edge-litert``)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version

    out = {}
    for pkg in ("litert-torch", "ai-edge-litert"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


@contextlib.contextmanager
def _captured_fd2() -> Iterator[list[str]]:
    """Redirect file descriptor 2 (native libraries' logs) into a list of lines.

    Handlers that the libraries add to the root logger meanwhile (``logging.info`` at import
    installs one) are removed again, so nasforge's own log lines are not printed twice.
    """
    import sys

    got: list[str] = []
    root = logging.getLogger()
    handlers = list(root.handlers)  # a library calling logging.info() adds one: undone below
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield got
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            got.extend(tmp.read().decode(errors="replace").splitlines())
            for h in [h for h in root.handlers if h not in handlers]:
                root.removeHandler(h)
    for line in got:
        logger.debug("litert: %s", line)


@contextlib.contextmanager
def _quiet_converter() -> Iterator[list[str]]:
    old = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"  # read by litert-torch at each task
    try:
        with _captured_fd2() as lines, warnings.catch_warnings(), \
                contextlib.redirect_stdout(_LogWriter()):
            warnings.simplefilter("ignore")
            yield lines
    finally:
        if old is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = old


class _LogWriter:
    """A text stream that sends what is written to this module's logger (DEBUG)."""

    def write(self, s: str) -> int:
        if s.strip():
            logger.debug("litert: %s", s.rstrip())
        return len(s)

    def flush(self) -> None:
        return None


def converter_macs(log_lines: Sequence[str]) -> int | None:
    """The converter's MAC count from its log (``... equivalently 1.188 M  MACs``), or None."""
    for line in reversed(log_lines):
        m = _MACS.search(line)
        if m:
            return round(float(m.group(1)) * _UNITS[m.group(2)])
    return None


@dataclass(frozen=True)
class Converted:
    """A converted model.

    Attributes:
        content: the ``.tflite`` flatbuffer.
        macs: the converter's estimated multiply-accumulates (None if it did not say).
        seconds: wall time of the conversion.
    """

    content: bytes
    macs: int | None
    seconds: float


def convert_module(module: nn.Module, shape: tuple[int, ...], *, name: str = "module",
                   seed: int = 0) -> Converted:
    """Convert ``module`` (eval mode, input ``shape``) to a ``.tflite`` flatbuffer.

    Args:
        module: maps x: (1, C, H, W) to its output; put in eval mode.
        shape: the fixed input shape (NCHW, kept so in the file).
        name: what the module is (a block key, an arch id), for the error message.
        seed: seed of the example input the exporter traces with.

    Returns:
        The flatbuffer and the converter's MAC count.

    Raises:
        MissingDependencyError: the extra is not installed.
        InvalidInputError: the converter fails on this module (the message names it).
    """
    require_litert()
    module = module.eval()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    t0 = time.perf_counter()
    try:
        with _quiet_converter() as lines, torch.no_grad():
            import litert_torch

            edge = litert_torch.convert(module, (x,))
            content = edge.model_content()
    except Exception as e:  # the converter raises many kinds; report one line, named
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise InvalidInputError(
            f"litert-torch could not convert {name} to TFLite: {type(e).__name__}: {first}; "
            "this block kind is not convertible with the installed litert-torch "
            f"({litert_versions()['litert-torch']}); profile with --backend torch or report it"
        ) from None
    return Converted(bytes(content), converter_macs(lines), time.perf_counter() - t0)


def interpreter_call(content: bytes | Path, threads: int = 1,
                     seed: int = 0) -> tuple[Callable[[], object], Callable[[np.ndarray],
                                                                           np.ndarray]]:
    """Load a ``.tflite`` model into LiteRT (XNNPACK delegate, fp32) with ``threads`` threads.

    Args:
        content: the flatbuffer or a file holding it.
        threads: interpreter threads (1: XNNPACK computes in the calling thread).
        seed: seed of the fixed input of the timing call.

    Returns:
        ``(call, run)``: ``call()`` runs the model once on a fixed random input (for timing);
        ``run(x)`` runs it on ``x`` (the model's input shape, float32) and returns its first
        output.

    Raises:
        MissingDependencyError: the extra is not installed.
    """
    require_litert()
    from ai_edge_litert.interpreter import Interpreter

    data = content.read_bytes() if isinstance(content, Path) else content
    with _captured_fd2():
        ip = Interpreter(model_content=data, num_threads=threads)
        ip.allocate_tensors()
    inp = ip.get_input_details()[0]
    out = ip.get_output_details()[0]
    fixed = np.random.default_rng(seed).standard_normal(inp["shape"]).astype(np.float32)
    ip.set_tensor(inp["index"], fixed)

    def call() -> object:
        ip.invoke()
        return None

    def run(x: np.ndarray) -> np.ndarray:
        ip.set_tensor(inp["index"], np.ascontiguousarray(x, dtype=np.float32))
        ip.invoke()
        y = np.array(ip.get_tensor(out["index"]))
        ip.set_tensor(inp["index"], fixed)
        return y

    return call, run


def graph_macs(content: bytes | Path) -> int:
    """MACs counted from the converted graph's ops and tensor shapes.

    ``CONV_2D``, ``DEPTHWISE_CONV_2D``, ``FULLY_CONNECTED`` and ``BATCH_MATMUL``: output
    elements times the reduction length. An independent check of the converter's own estimate
    (which, in litert-torch 0.10, undercounts ``BATCH_MATMUL``).

    Args:
        content: the flatbuffer or a file holding it.
    """
    require_litert()
    from ai_edge_litert.interpreter import Interpreter

    data = content.read_bytes() if isinstance(content, Path) else content
    with _captured_fd2():
        ip = Interpreter(model_content=data)
    shapes = {t["index"]: [int(d) for d in t["shape"]] for t in ip.get_tensor_details()}
    total = 0
    for op in ip._get_ops_details():  # the public API has no per-op view
        name = op["op_name"]
        ins = [shapes[i] for i in op["inputs"] if i >= 0]
        outs = [shapes[i] for i in op["outputs"]]
        if not ins or not outs:
            continue
        out_n = int(np.prod(outs[0]))
        if name == "CONV_2D":  # weight (Cout, kh, kw, Cin)
            total += out_n * int(np.prod(ins[1][1:]))
        elif name == "DEPTHWISE_CONV_2D":  # weight (1, kh, kw, C)
            total += out_n * ins[1][1] * ins[1][2]
        elif name == "FULLY_CONNECTED":  # weight (out, in)
            total += out_n * ins[1][-1]
        elif name == "BATCH_MATMUL":
            a = ins[0]
            k = a[-1] if a[-2] == outs[0][-2] else a[-2]
            total += out_n * k
    return total


def runtime_description(threads: int) -> str:
    """``LiteRT 2.3 (ai-edge-litert) XNNPACK, fp32, batch 1, N thread(s)``."""
    v = litert_versions()
    return (f"LiteRT {v['ai-edge-litert']} (ai-edge-litert) interpreter with XNNPACK, fp32, "
            f"batch 1, {threads} thread{'s' if threads > 1 else ''}; converted by litert-torch "
            f"{v['litert-torch']}")


class TfliteCache:
    """Converted models on disk, by key: ``<root>/<sha1(key, shape, converter)[:20]>.tflite``.

    Each file has a ``.json`` beside it with the key, the shape, the converter's MAC count and
    the conversion time.

    Args:
        root: the folder (default ``$NASFORGE_CACHE/tflite``).
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "tflite"

    def path(self, key: str, shape: Sequence[int]) -> Path:
        """The file of ``key`` at input ``shape`` (converter version in the hash)."""
        tag = f"{key}|{tuple(shape)}|{litert_versions()['litert-torch']}"
        return self.root / f"{hashlib.sha1(tag.encode()).hexdigest()[:20]}.tflite"

    def get(self, key: str, shape: Sequence[int]) -> Path | None:
        """The cached file, or None."""
        p = self.path(key, shape)
        return p if p.is_file() and p.stat().st_size > 0 else None

    def put(self, key: str, shape: Sequence[int], conv: Converted) -> Path:
        """Store ``conv`` (atomically: a killed run leaves no torn file)."""
        import json

        p = self.path(key, shape)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(conv.content)
        p.with_suffix(".json").write_text(json.dumps(
            {"key": key, "shape": list(shape), "converter_macs": conv.macs,
             "convert_s": round(conv.seconds, 3), **litert_versions()}, sort_keys=True))
        os.replace(tmp, p)
        return p

    def macs(self, key: str, shape: Sequence[int]) -> int | None:
        """The converter's MAC count recorded for ``key``, or None."""
        from nasforge.structured import load_structured

        meta = self.path(key, shape).with_suffix(".json")
        if not meta.is_file():
            return None
        got: Any = load_structured(meta, "converter metadata", kind="json").get("converter_macs")
        return int(got) if got is not None else None


def _convert_job(module: nn.Module, shape: tuple[int, ...], name: str) -> Converted:
    torch.set_num_threads(1)
    return convert_module(module, shape, name=name)


@dataclass
class ConvertStats:
    """What :func:`convert_many` did: files converted and found, conversion wall time."""

    converted: int = 0
    cached: int = 0
    seconds: float = 0.0


def convert_many(jobs: Sequence[tuple[str, nn.Module, tuple[int, ...]]], cache: TfliteCache,
                 *, workers: int = 1, stats: ConvertStats | None = None) -> list[Path]:
    """Convert what ``cache`` lacks of ``jobs`` (``(key, module, shape)``), ``workers`` at once.

    Args:
        jobs: what to convert; the key names the file and, on failure, the block.
        cache: where files go and are found.
        workers: processes converting at once (1: in this process).
        stats: counters to add to (converted, cached, seconds).

    Returns:
        The file of each job, in order.

    Raises:
        InvalidInputError: a conversion failed (the message names the key).
    """
    stats = stats if stats is not None else ConvertStats()
    todo = [(k, m, s) for k, m, s in jobs if cache.get(k, s) is None]
    stats.cached += len(jobs) - len(todo)
    t0 = time.perf_counter()
    if todo and workers > 1 and len(todo) > 1:
        ctx = get_context("spawn")  # torch and the converter are not fork-safe
        try:
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as ex:
                futs = [ex.submit(_convert_job, m, s, k) for k, m, s in todo]
                for (k, _, s), f in zip(todo, futs, strict=True):
                    cache.put(k, s, f.result())
        except BrokenProcessPool:
            raise InvalidInputError(
                f"a conversion process died while converting {len(todo)} model(s) (out of "
                "memory, or a caller without an `if __name__ == '__main__':` guard); rerun "
                "with --jobs 1") from None
    else:
        for k, m, s in todo:
            cache.put(k, s, convert_module(m, s, name=k))
    stats.converted += len(todo)
    stats.seconds += time.perf_counter() - t0
    if todo:
        logger.debug("converted %d model(s) to TFLite in %.1f s (%d cached)", len(todo),
                     time.perf_counter() - t0, stats.cached)
    out = []
    for k, _, s in jobs:
        p = cache.get(k, s)
        if p is None:  # pragma: no cover - put() just wrote it
            raise InvalidInputError(f"converted file of {k} vanished from {cache.root}")
        out.append(p)
    return out
