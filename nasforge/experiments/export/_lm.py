"""Export of language models (``elastic_lm``, ``hat_*``): ONNX, TorchScript, ``.tflite``.

The vision path (:func:`~nasforge.experiments.export.export_model`) traces one float image
input; a language model takes token ids, and HAT two sequences, so this module writes and
checks them with the same steps (plan, reference, write, run the file back, verdict) and the
same :class:`~nasforge.experiments.export.ExportResult` and YAML config:

* ``elastic_lm``: the full-sequence causal forward ``tokens (1, T) int64 -> logits (1, T, V)``,
  ``T`` = the arch's context length (or ``seq_len``).
* ``hat_*``: the teacher-forced SubTransformer forward ``src (1, S), tgt_in (1, T) int64 ->
  logits (1, T, V)``, ``S``/``T`` = the task's dummy-sentence lengths (30, IWSLT 23) or
  ``seq_len``. The incremental decode loop is not exported: its KV cache is a Python object and
  the sequence grows per step; a deployment runs the exported forward per step (or re-exports
  ``encode`` / one decoder step). This choice is the contract the numerical check holds.

Shapes are fixed at export (as for vision: one deployment shape). The written file runs on its
runtime (onnxruntime CPUExecutionProvider, ``torch.jit.load``, the LiteRT interpreter) on fixed
seeded token ids and its logits are compared with PyTorch's (``atol + rtol * max|logit|``).
A model litert-torch cannot convert raises :class:`~nasforge.errors.IncompatibleComponentsError`
in one line naming the converter's error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge._extras import import_optional
from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.experiments.export.checks import max_abs_diff
from nasforge.experiments.export.checks import median_latency_ms
from nasforge.experiments.export.checks import positive
from nasforge.experiments.export.checks import torch_threads
from nasforge.experiments.export.config import append_verification
from nasforge.experiments.export.config import write_arch_config
from nasforge.experiments.export.result import ExportResult
from nasforge.experiments.export.result import ExportVerificationError
from nasforge.experiments.export.result import export_name
from nasforge.experiments.export.result import safe_stem

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["LANGUAGE_FORMATS", "export_language_model", "is_language_arch", "language_inputs",
           "language_twin"]

#: formats a language model exports to, and their file suffixes.
LANGUAGE_FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "tflite": ".tflite"}

Inputs = dict[str, torch.Tensor]
Run = Callable[[dict[str, np.ndarray]], np.ndarray]


def is_language_arch(arch: Arch) -> bool:
    """Whether ``arch`` is an ``elastic_lm`` or ``hat_*`` architecture."""
    from nasforge.search_spaces._elastic_lm import ElasticLMArch
    from nasforge.search_spaces._hat import HATArch

    return isinstance(arch, ElasticLMArch | HATArch)


def language_twin(space: SearchSpace, arch: Arch, vocab: int | None = None) -> nn.Module:
    """A randomly initialised static model of ``arch`` (vocabulary: ``vocab`` or the space's;
    HAT: the target vocabulary, the source one is the space's)."""
    from nasforge.search_spaces._elastic_lm import ElasticLMArch
    from nasforge.supernet.static._hat import StaticHAT
    from nasforge.supernet.static._lm import StaticLM

    s: Any = space
    if isinstance(arch, ElasticLMArch):
        return StaticLM(vocab or s.vocab_size, arch.embed_dim, tuple(arch.ffn_embed_dim),
                        tuple(arch.self_attention_heads), s.head_dim, arch.context_length)
    top = s.max_arch()
    tgt = vocab or s.tgt_vocab
    src = tgt if s.cfg.shared_embeddings else s.src_vocab
    return StaticHAT(arch, src, tgt, s.cfg.qkv_dim,
                     max(top.encoder_embed_dim, top.decoder_embed_dim), s.cfg.max_positions,
                     s.cfg.shared_embeddings)


def language_inputs(model: nn.Module, arch: Arch, space: SearchSpace, seq_len: int | None,
                    seed: int = 0) -> Inputs:
    """Fixed token ids for tracing and checking (a seeded private generator).

    Returns:
        ``{"tokens": (1, T)}`` for the LM; ``{"src": (1, S), "tgt_in": (1, T)}`` for HAT.
    """
    from nasforge.supernet.static._hat import HATForward

    g = torch.Generator().manual_seed(seed)
    s: Any = space
    vocab = _vocab(model)
    if not isinstance(model, HATForward):
        t = seq_len or arch.context_length  # type: ignore[attr-defined]
        return {"tokens": torch.randint(0, vocab, (1, t), generator=g)}
    src_vocab = int(getattr(model, "src_vocab", 0) or _src_vocab(model, vocab))
    return {"src": torch.randint(4, src_vocab, (1, seq_len or s.cfg.src_len), generator=g),
            "tgt_in": torch.randint(4, vocab, (1, seq_len or s.cfg.tgt_len), generator=g)}


def _vocab(model: nn.Module) -> int:
    for name in ("embed_out", "head", "embed"):
        m = getattr(model, name, None)
        if isinstance(m, nn.Embedding):
            return m.num_embeddings
        if isinstance(m, nn.Linear):
            return m.out_features
    raise InvalidInputError(f"{type(model).__name__} is not a language model of nasforge")


def _src_vocab(model: nn.Module, vocab: int) -> int:
    table = getattr(model, "encoder_embed", None)
    return table.num_embeddings if isinstance(table, nn.Embedding) else vocab


def export_language_model(
    model: nn.Module, arch: Arch, space: SearchSpace, fmt: str, out_dir: str | Path, *,
    seq_len: int | None = None, name: str | None = None, tolerance: float = 1e-4,
    rtol: float = 1e-5, runs: int = 30, threads: int = 1, opset: int = 17, seed: int = 0,
    strict: bool = True, extra: dict[str, Any] | None = None,
) -> ExportResult:
    """Write a language model in ``fmt`` with its YAML config, check the file, time it.

    Args:
        model: a static twin of ``arch`` (``supernet.extract(arch)`` or :func:`language_twin`).
        arch: its architecture; space: the space it belongs to.
        fmt: ``onnx``, ``torchscript`` or ``tflite``.
        out_dir: folder for the files (created).
        seq_len: sequence length of the exported forward (default: see the module docstring).
        name: file stem (default: :func:`~nasforge.experiments.export.export_name`).
        tolerance, rtol: allowed max abs diff ``tolerance + rtol * max|logit|``.
        runs: timed runs (median reported); threads: intra-op threads; opset: ONNX opset.
        seed: seed of the fixed token ids.
        strict: raise :class:`ExportVerificationError` on a mismatch.
        extra: more keys for the YAML config.

    Raises:
        InvalidInputError: an unknown format for language models, bad numbers.
        IncompatibleComponentsError: the converter cannot convert the model (one line).
        ExportVerificationError: ``strict`` and the outputs differ.
    """
    if fmt not in LANGUAGE_FORMATS:
        raise InvalidInputError(f"a language model exports to {', '.join(LANGUAGE_FORMATS)}, "
                                f"not {fmt!r}")
    space.validate(arch)
    for key, value in (("runs", runs), ("threads", threads)):
        positive(key, value)
    if seq_len is not None:
        positive("seq_len", seq_len)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = safe_stem(name or export_name(arch, None, None, None))
    path, config_path = out / f"{stem}{LANGUAGE_FORMATS[fmt]}", out / f"{stem}.yaml"
    was_training = model.training
    model.eval()
    try:
        with torch_threads(threads):
            inputs = language_inputs(model, arch, space, seq_len, seed)
            with torch.inference_mode():
                ref = model(*inputs.values()).numpy()
            runtime = _WRITERS[fmt](model, inputs, path, opset)
            run = _LOADERS[fmt](path, threads)
            arrays = {k: v.numpy() for k, v in inputs.items()}
            diff = max_abs_diff(run(arrays), ref)
            latency = median_latency_ms(lambda _x: run(arrays), np.zeros(1), runs=runs)
    finally:
        model.train(was_training)
    config = {"format": fmt, "model_file": path.name,
              "inputs": {k: list(v.shape) for k, v in inputs.items()},
              **({"opset": opset} if fmt == "onnx" else {}), **(extra or {})}
    result = ExportResult(
        model_path=path, config_path=config_path, fmt=fmt, space=space.name,
        arch_id=arch.arch_id, num_classes=int(ref.shape[-1]),
        input_size=int(next(reversed(inputs.values())).shape[1]), max_abs_diff=diff,
        atol=tolerance, rtol=rtol, output_scale=float(abs(ref).max()), latency_ms=latency,
        runs=runs, threads=threads, runtime=runtime,
        inputs=", ".join(f"{k} {tuple(v.shape)}" for k, v in inputs.items()))
    _report(result, arch, config, strict)
    return result


def _report(result: ExportResult, arch: Arch, config: dict[str, Any], strict: bool) -> None:
    """Write the YAML config and its verification block; a mismatch raises when ``strict``."""
    write_arch_config(result.config_path, arch, result.num_classes, result.input_size, config)
    append_verification(result.config_path, result)
    if strict and not result.ok:
        raise ExportVerificationError(
            f"{result.model_path}: exported logits differ from PyTorch's by "
            f"{result.max_abs_diff:.3e} > tolerance {result.tolerance:.3e}; the file is kept "
            "for inspection")


def _write_onnx(model: nn.Module, inputs: Inputs, path: Path, opset: int) -> str:
    onnx = import_optional("onnx", extra="onnx", feature="ONNX export")
    ort = import_optional("onnxruntime", extra="onnx", feature="checking an ONNX export")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, tuple(inputs.values()), str(path), dynamo=False,
                          opset_version=opset, input_names=list(inputs),
                          output_names=["logits"], do_constant_folding=True)
    onnx.checker.check_model(str(path))
    return f"onnxruntime {ort.__version__} CPUExecutionProvider"


def _load_onnx(path: Path, threads: int) -> Run:
    ort = import_optional("onnxruntime", extra="onnx", feature="checking an ONNX export")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda arrays: sess.run(None, arrays)[0]


def _write_torchscript(model: nn.Module, inputs: Inputs, path: Path, opset: int) -> str:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, tuple(inputs.values()), check_trace=False)
        torch.jit.save(traced, str(path))
    return f"torch {torch.__version__} (TorchScript)"


def _load_torchscript(path: Path, threads: int) -> Run:
    loaded = torch.jit.load(str(path), map_location="cpu").eval()

    def run(arrays: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            out: np.ndarray = loaded(*(torch.from_numpy(a) for a in arrays.values())).numpy()
        return out

    return run


def _write_tflite(model: nn.Module, inputs: Inputs, path: Path, opset: int) -> str:
    from nasforge.hardware_models.profiling._litert import _quiet_converter
    from nasforge.hardware_models.profiling._litert import litert_versions
    from nasforge.hardware_models.profiling._litert import require_litert

    require_litert()
    try:
        with warnings.catch_warnings(), _quiet_converter(), torch.no_grad():
            warnings.simplefilter("ignore")
            import litert_torch

            edge = litert_torch.convert(model, tuple(inputs.values()))
            path.write_bytes(bytes(edge.model_content()))
    except Exception as e:  # the converter raises many kinds; one line, named
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise IncompatibleComponentsError(
            f"litert-torch {litert_versions()['litert-torch']} cannot convert this language "
            f"model to TFLite: {type(e).__name__}: {first}; export --format onnx or "
            "torchscript instead"
        ) from None
    return f"LiteRT {litert_versions()['ai-edge-litert']} (ai-edge-litert) interpreter, fp32"


def _load_tflite(path: Path, threads: int) -> Run:
    from ai_edge_litert.interpreter import Interpreter

    ip = Interpreter(model_content=path.read_bytes(), num_threads=threads)
    ip.allocate_tensors()
    ins, out = ip.get_input_details(), ip.get_output_details()[0]

    def run(arrays: dict[str, np.ndarray]) -> np.ndarray:
        for detail, a in zip(ins, arrays.values(), strict=True):
            ip.set_tensor(detail["index"], np.ascontiguousarray(a, dtype=detail["dtype"]))
        ip.invoke()
        return np.array(ip.get_tensor(out["index"]))

    return run


_WRITERS: dict[str, Callable[[nn.Module, Inputs, Path, int], str]] = {
    "onnx": _write_onnx, "torchscript": _write_torchscript, "tflite": _write_tflite}
_LOADERS: dict[str, Callable[[Path, int], Run]] = {
    "onnx": _load_onnx, "torchscript": _load_torchscript, "tflite": _load_tflite}
