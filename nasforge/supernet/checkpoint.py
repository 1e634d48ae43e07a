"""Supernet checkpoints: one safetensors file holding tensors and a JSON state.

Layout of ``DIR/last.ckpt`` (a plain safetensors file, readable by any safetensors reader):

* tensors ``model.<name>`` (weights and BN statistics), ``ema.<name>`` (when EMA is on),
  ``optim.<param index>.<key>`` (optimizer moments and step counters), ``rng.torch`` (the torch
  CPU generator state), ``rng.cuda.<device>`` (each CUDA generator, where CUDA is present);
* metadata key ``nasforge``: canonical JSON with ``format``, ``config`` (``space``,
  ``num_classes``, ``input_size``, data spec, sampler name and options, training config),
  ``step``, ``optimizer`` (param groups and non-tensor state), ``scheduler``, ``sampler`` (levels,
  pools, banks, RNG state), ``rng`` (numpy global and python ``random`` states), ``extra``
  (the data position ``[epoch, batch]`` and the unreadable-image count).

The ``config`` block is read in one place, :meth:`RunConfig.from_checkpoint` (data spec, input
size, resolution scale, seed, loader options): every reader (``nas eval``, the search's supernet
objective, export's BN calibration) should use it rather than probing the dict.

Nothing is pickled. Writes are atomic (temporary file, fsync, then ``os.replace``), so a run
killed while saving keeps its previous checkpoint; :func:`keep_numbered` keeps the last k
``step-NNNNNNN.ckpt`` copies.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors import safe_open
from safetensors.torch import save_file

from nasforge._paths import readable_file
from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.structured import check_text_depth
from nasforge.supernet.checkpoint_checks import check_metadata
from nasforge.supernet.checkpoint_checks import check_model_tensors
from nasforge.supernet.checkpoint_checks import check_tensors

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "RunConfig",
    "keep_numbered",
    "load_supernet",
    "python_rng_state",
    "read_checkpoint",
    "restore_global_rngs",
    "write_checkpoint",
]

#: /2: ``DynamicLinear`` stores its weight input-major (``weight_t``), see its docstring.
CHECKPOINT_FORMAT = "nasforge.supernet/2"
_META_KEY = "nasforge"
_REQUIRED = ("format", "config", "step")
_REQUIRED_CONFIG = ("space", "num_classes", "input_size")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read back: tensors by prefix and the JSON state.

    Attributes:
        path: the file.
        tensors: every tensor, by its full name.
        state: the JSON state (see the module docstring).
    """

    path: Path
    tensors: dict[str, torch.Tensor]
    state: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        return self.state["config"]

    @property
    def step(self) -> int:
        return int(self.state["step"])

    def group(self, prefix: str) -> dict[str, torch.Tensor]:
        """Tensors under ``prefix.`` with the prefix removed."""
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.tensors.items() if k.startswith(p)}


@dataclass(frozen=True)
class RunConfig:
    """The typed ``config`` block of a checkpoint: what a reader needs to rebuild the data.

    Attributes:
        space: search space name.
        num_classes: classes of the head.
        data: dataset spec the supernet was trained on (``digits``, ``imagefolder:PATH``, ...).
        input_size: side of the images the data yielded.
        resolution_scale: elastic-resolution proxy scale (``None``: one size for all subnets).
        seed: the training seed (also the seed of the data split).
        loader: the streaming pipeline's options (``LoaderConfig`` fields).
    """

    space: str
    num_classes: int
    data: str
    input_size: int
    resolution_scale: float | None
    seed: int
    loader: dict[str, Any]

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> RunConfig:
        """Read the block of ``ckpt`` (older checkpoints: ``digits``, no scale).

        Raises:
            InvalidInputError: a field of the wrong type.
        """
        cfg = ckpt.config
        train: dict[str, Any] = cfg.get("train") or {}
        if not isinstance(train, dict):
            train = {}
        data = cfg.get("data", "digits")
        if isinstance(data, dict):  # a mapping written by hand: {spec: ...}
            data = data.get("spec", data.get("name", "digits"))
        scale = cfg.get("resolution_scale", train.get("resolution_scale"))
        try:
            return cls(str(cfg["space"]), int(cfg["num_classes"]), str(data),
                       int(cfg["input_size"]), None if scale is None else float(scale),
                       int(train.get("seed", 0)), dict(cfg.get("loader") or {}))
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"checkpoint {ckpt.path} has a malformed config: {e}"
                                    ) from None

    def open_data(self, spec: str | None = None, *, workers: int | None = None) -> Any:
        """The data source of this run (or of ``spec``) at the run's size and scale."""
        import dataclasses as dc

        from nasforge.data import LoaderConfig
        from nasforge.data import open_data

        known = {f.name for f in dc.fields(LoaderConfig)}
        opts: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                for k, v in self.loader.items() if k in known}
        if workers is not None:
            opts["workers"] = workers
        return open_data(spec or self.data, self.input_size, self.seed,
                         loader=LoaderConfig(**opts), resolution_scale=self.resolution_scale)


def python_rng_state() -> list[Any]:
    """Python's ``random`` state as JSON-serialisable lists."""
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _numpy_global_state() -> list[Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return [kind, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(cached)]


def restore_global_rngs(state: dict[str, Any], torch_state: torch.Tensor | None,
                        cuda_states: dict[str, torch.Tensor] | None = None) -> None:
    """Restore the python, numpy-global, torch CPU and (where present) CUDA generators."""
    py = state.get("python")
    if py is not None:
        random.setstate((py[0], tuple(py[1]), py[2]))
    npg = state.get("numpy")
    if npg is not None:
        np.random.set_state((npg[0], np.asarray(npg[1], dtype=np.uint32), npg[2], npg[3],
                             npg[4]))
    if torch_state is not None:
        torch.set_rng_state(torch_state.to(torch.uint8))
    if cuda_states and torch.cuda.is_available():
        for idx, st in cuda_states.items():
            if int(idx) < torch.cuda.device_count():
                torch.cuda.set_rng_state(st.to(torch.uint8), int(idx))


def _optimizer_split(opt_state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for idx, st in opt_state["state"].items():
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": opt_state["param_groups"], "plain": plain}


def optimizer_state(ckpt: Checkpoint) -> dict[str, Any]:
    """Rebuild ``optimizer.state_dict()`` from a checkpoint."""
    meta = ckpt.state["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for name, t in ckpt.group("optim").items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = t
    for idx, extra in meta.get("plain", {}).items():
        state.setdefault(int(idx), {}).update(extra)
    return {"state": state, "param_groups": meta["param_groups"]}


def write_checkpoint(
    path: Path,
    *,
    model: torch.nn.Module,
    config: dict[str, Any],
    step: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    sampler_state: dict[str, Any] | None = None,
    ema_state: dict[str, torch.Tensor] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (see the module docstring for the layout).

    Args:
        path: the file to write (conventionally ``DIR/last.ckpt``).
        model: the supernet.
        config: must hold ``space``, ``num_classes`` and ``input_size``.
        step: optimizer steps done.
        optimizer: its moments go to tensors, its groups to JSON.
        scheduler: an LR scheduler with a JSON-serialisable ``state_dict``.
        sampler_state: the sampler's ``state_dict()``.
        ema_state: the EMA's tensors.
        extra: more JSON state (e.g. the last logged losses).

    Returns:
        ``path``.
    """
    missing = [k for k in _REQUIRED_CONFIG if k not in config]
    if missing:
        raise ValueError(f"checkpoint config lacks {missing}")
    tensors = {f"model.{k}": v.detach().cpu().contiguous()
               for k, v in model.state_dict().items()}
    if ema_state is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous()
                        for k, v in ema_state.items()})
    state: dict[str, Any] = {"format": CHECKPOINT_FORMAT, "config": config, "step": int(step)}
    if optimizer is not None:
        opt_tensors, opt_plain = _optimizer_split(optimizer.state_dict())
        tensors.update(opt_tensors)
        state["optimizer"] = opt_plain
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    if sampler_state is not None:
        state["sampler"] = sampler_state
    tensors["rng.torch"] = torch.get_rng_state().clone()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i in range(torch.cuda.device_count()):
            tensors[f"rng.cuda.{i}"] = torch.cuda.get_rng_state(i).cpu()
    state["rng"] = {"python": python_rng_state(), "numpy": _numpy_global_state()}
    if extra:
        state["extra"] = extra
    text = json.dumps(state, sort_keys=True, separators=(",", ":"), allow_nan=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={_META_KEY: text})
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def keep_numbered(last: Path, step: int, keep: int) -> Path:
    """Copy ``last`` to ``step-NNNNNNN.ckpt`` beside it and delete all but the newest ``keep``.

    Returns:
        The numbered copy.
    """
    last = Path(last)
    target = last.with_name(f"step-{int(step):07d}.ckpt")
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(last, tmp)
    os.replace(tmp, target)
    numbered = sorted(last.parent.glob("step-*.ckpt"))
    for old in numbered[:-keep] if keep > 0 else numbered:
        old.unlink(missing_ok=True)
    return target


def read_checkpoint(path: Path, expect_space: str | None = None) -> Checkpoint:
    """Read and check a checkpoint.

    Args:
        path: the checkpoint file (or a run folder holding ``last.ckpt``).
        expect_space: when given, the space the checkpoint must belong to.

    Raises:
        InvalidInputError: missing, unreadable, truncated or corrupted file, bad JSON, missing keys.
        IncompatibleComponentsError: the checkpoint belongs to another space.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "last.ckpt"
    readable_file(p, "checkpoint")  # missing, a folder, no permission: not "corrupted"
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(p), framework="pt") as f:
            state = _state_of(p, f.metadata() or {})
            if expect_space is not None and state["config"]["space"] != expect_space:
                space = state["config"]["space"]
                raise IncompatibleComponentsError(
                    f"checkpoint {p} is a supernet of space {space!r}, not {expect_space!r}; "
                    f"use --space {space} or another checkpoint")
            for k in f.keys():  # noqa: SIM118 - safe_open has no __iter__
                tensors[k] = f.get_tensor(k)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        if isinstance(e, InvalidInputError | IncompatibleComponentsError):
            raise
        raise InvalidInputError(
            f"checkpoint {p} is corrupted or truncated (not a readable safetensors file: {e})"
        ) from None
    if not any(k.startswith("model.") for k in tensors):
        raise InvalidInputError(f"checkpoint {p} holds no model weights")
    check_tensors(p, tensors)
    return Checkpoint(p, tensors, state)


def _state_of(p: Path, meta: dict[str, str]) -> dict[str, Any]:
    """The JSON state of checkpoint ``p`` from its safetensors metadata, checked (keys, format,
    numbers in range) before any tensor is read."""
    if _META_KEY not in meta:
        raise InvalidInputError(f"{p} is a safetensors file but not a nasforge checkpoint "
                                f"(no '{_META_KEY}' metadata)")
    check_text_depth(meta[_META_KEY], f"checkpoint {p} state")  # before json recurses
    try:
        state = json.loads(meta[_META_KEY])
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"checkpoint {p} has corrupted JSON state: {e.msg} at char "
                                f"{e.pos}") from None
    if not isinstance(state, dict):
        raise InvalidInputError(f"checkpoint {p} has corrupted JSON state (not a mapping)")
    missing = [k for k in _REQUIRED if k not in state]
    cfg = state.get("config")
    if isinstance(cfg, dict):
        missing += [f"config.{k}" for k in _REQUIRED_CONFIG if k not in cfg]
    elif "config" not in missing:
        missing.append("config (not a mapping)")
    if missing:
        raise InvalidInputError(f"checkpoint {p} lacks {', '.join(missing)}; it is incomplete "
                                "or was not written by nasforge")
    if state["format"] != CHECKPOINT_FORMAT:
        raise InvalidInputError(f"checkpoint {p} has format {state['format']!r}; this nasforge "
                                f"reads {CHECKPOINT_FORMAT!r}")
    check_metadata(p, state)
    return state


def load_model_state(model: torch.nn.Module, ckpt: Checkpoint, prefix: str = "model") -> None:
    """Load ``prefix.*`` tensors into ``model``.

    Raises:
        IncompatibleComponentsError: names or shapes differ from the model's.
    """
    state = ckpt.group(prefix)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or extra or bad:
        what = (f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra
                else f"shape mismatch at {bad[:3]}")
        raise IncompatibleComponentsError(
            f"checkpoint {ckpt.path} does not fit the {ckpt.config['space']} supernet with "
            f"{ckpt.config['num_classes']} classes ({what})"
        )
    check_model_tensors(ckpt.path, own, state)
    model.load_state_dict(state, strict=True)


def load_supernet(path: Path, expect_space: str | None = None, use_ema: bool = False
                  ) -> tuple[torch.nn.Module, Checkpoint]:
    """Rebuild a supernet from a checkpoint.

    Args:
        path: checkpoint file or run folder.
        expect_space: raise when the checkpoint is of another space.
        use_ema: load the EMA weights when the checkpoint has them.

    Returns:
        ``(supernet, checkpoint)``; the supernet is in eval mode on CPU.

    Raises:
        InvalidInputError, IncompatibleComponentsError: see :func:`read_checkpoint`.
    """
    from nasforge.search_spaces import get_space
    from nasforge.supernet.registry import build_supernet

    ckpt = read_checkpoint(path, expect_space=expect_space)
    space = get_space(str(ckpt.config["space"]))
    model = build_supernet(space, int(ckpt.config["num_classes"]))
    has_ema = any(k.startswith("ema.") for k in ckpt.tensors)
    load_model_state(model, ckpt, "ema" if use_ema and has_ema else "model")
    return model.eval(), ckpt
