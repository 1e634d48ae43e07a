"""Training recipes: the dataclasses that decide a supernet run, and their YAML files.

A recipe (:class:`Recipe`) has four sections, each a frozen dataclass: ``data`` (the spec),
``loader`` (:class:`~nasforge.data.LoaderConfig`: workers, crops, RandAugment, unreadable
images), ``sampler`` / ``sampler_options`` and ``train`` (:class:`TrainConfig`: steps or epochs,
global batch, optimizer, lr and its batch-scaling rule, warm-up, schedule, label smoothing, EMA,
clipping, mixup/cutmix, distillation, elastic resolution, checkpoint cadence).

``nas train --config RECIPE.yaml`` reads one (:func:`load_recipe`); flags override single keys
(:func:`apply_overrides`, dotted paths); ``--print-config`` shows the resolved recipe
(:meth:`Recipe.to_yaml`). Shipped recipes live in ``nasforge/supernet/training/recipes/`` and are
named
by file stem (:func:`recipe_path`): ``quick`` (the default of ``nas train`` and of the quick
supernet of ``nas search``), ``elasticvit_imagenet`` and ``attentivenas_imagenet`` (values from
the papers' repositories, cited in each file).

A bad key or a value of the wrong type raises :class:`~nasforge.errors.InvalidInputError`
naming the key path: ``recipe key 'train.lr': expected a number, got 'fast' (str)``.

Example:
    >>> r = apply_overrides(Recipe(), {"train.lr": 0.01, "loader.workers": 0})
    >>> r.train.lr, r.loader.workers
    (0.01, 0)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml

from nasforge.data import LoaderConfig
from nasforge.data import MixSpec
from nasforge.errors import InvalidInputError
from nasforge.supernet.training.losses import DISTILL_LOSSES

__all__ = [
    "DEFAULT_RECIPE",
    "RECIPES_DIR",
    "Recipe",
    "TrainConfig",
    "apply_overrides",
    "load_recipe",
    "recipe_from_dict",
    "recipe_path",
]

RECIPES_DIR = Path(__file__).with_name("recipes")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a supernet training run (the recipe's ``train`` section).

    Attributes:
        steps: optimizer steps.
        epochs: when set, ``steps`` is derived from it and the training split's size
            (:func:`~nasforge.supernet.training.train_supernet` does it).
        batch_size: global batch size (all ranks together).
        lr: peak learning rate (at ``lr_base_batch`` when that is set).
        lr_base_batch: linear batch-scaling rule: the peak lr is ``lr * batch_size /
            lr_base_batch`` (Goyal et al.); ``None`` uses ``lr`` as given.
        min_lr_ratio: final learning rate as a share of ``lr`` (cosine schedule).
        warmup_steps: linear warm-up steps.
        warmup_epochs: when set, ``warmup_steps`` is derived from it (like ``epochs``).
        weight_decay: decay of conv/linear weights (none on norms, biases, attention biases).
        optimizer: ``adamw`` or ``sgd``.
        momentum: SGD momentum.
        grad_clip: max global gradient norm; ``None`` disables clipping.
        label_smoothing: label smoothing of the CE on labels.
        distill: distillation loss of non-teacher subnets: ``alpha`` (AlphaNet), ``kd``, ``none``.
        ema_decay: EMA of the weights; ``None`` disables it.
        seed: seed of the batches, the sampler (set by the caller) and torch's generator.
        checkpoint_every: steps between checkpoints (and log flushes); ``None``: by time
            (``checkpoint_minutes``) and at the end only.
        checkpoint_minutes: minutes between checkpoints, on top of ``checkpoint_every``
            (``None``: by steps only); ``nas train --ckpt-every 5m`` sets it.
        checkpoint_every_epochs: epochs between checkpoints, on top of ``checkpoint_every``.
        keep_last: numbered checkpoints ``step-NNNNNNN.ckpt`` kept beside ``last.ckpt``
            (0 keeps none).
        val_every_epochs: validate the min and max subnets every N epochs (``None``: never).
        augment: training augmentation (random crops / flips; shifts on the in-memory sets).
        mixup: mixup alpha (0: off), applied to the batch on the compute device.
        cutmix: cutmix alpha (0: off).
        mix_prob: probability that a batch is mixed when mixup or cutmix is on.
        input_size: side of the images the data yields; with a ``resolution_scale`` each
            subnet is resized from it to its own proxy resolution.
        resolution_scale: elastic resolution: an arch of resolution r trains and is scored at
            ``round(r * scale)`` px (1.0 on ImageNet; 1/8 for the quick supernet on
            ``digits``); ``None`` trains every subnet at ``input_size``.
    """

    steps: int = 160
    epochs: int | None = None
    batch_size: int = 32
    lr: float = 1e-3
    lr_base_batch: int | None = None
    min_lr_ratio: float = 0.02
    warmup_steps: int = 10
    warmup_epochs: int | None = None
    weight_decay: float = 0.05
    optimizer: str = "adamw"
    momentum: float = 0.9
    grad_clip: float | None = 1.0
    label_smoothing: float = 0.1
    distill: str = "alpha"
    ema_decay: float | None = None
    seed: int = 0
    checkpoint_every: int | None = 50
    checkpoint_every_epochs: int | None = None
    keep_last: int = 0
    val_every_epochs: int | None = None
    augment: bool = True
    mixup: float = 0.0
    cutmix: float = 0.0
    mix_prob: float = 1.0
    input_size: int = 32
    resolution_scale: float | None = None
    checkpoint_minutes: float | None = None
    precision: str = "fp32"
    micro_batches: int = 1
    dropout: float | None = None
    channels_last: bool = False

    def __post_init__(self) -> None:
        for key, value, ok, allowed in _RULES:
            v = getattr(self, key)
            if v is None and value:
                continue
            if not ok(v):
                raise InvalidInputError(f"train.{key} = {v!r} is out of range: allowed "
                                        f"{allowed}")
        if self.distill != "none" and self.distill not in DISTILL_LOSSES:
            raise InvalidInputError(DISTILL_LOSSES.unknown_message(self.distill) + ", none")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise InvalidInputError(f"train.precision = {self.precision!r} is unknown: allowed "
                                    "fp32, bf16, fp16")
        if self.batch_size % self.micro_batches:
            raise InvalidInputError(f"train.micro_batches = {self.micro_batches} must divide "
                                    f"train.batch_size = {self.batch_size}")

    @property
    def peak_lr(self) -> float:
        """``lr`` after the batch-scaling rule."""
        if self.lr_base_batch is None:
            return self.lr
        return self.lr * self.batch_size / self.lr_base_batch

    @property
    def mix(self) -> MixSpec:
        return MixSpec(self.mixup, self.cutmix, self.mix_prob)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (stored in checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`InvalidInputError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(data) - names)
        if extra:
            raise InvalidInputError(f"unknown training option(s) {extra}; known: {sorted(names)}")
        return cls(**data)




def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _int_at_least(lo: int) -> Any:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _in(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> Any:
    def ok(v: Any) -> bool:
        return (_finite(v) and (v > lo if lo_open else v >= lo)
                and (v < hi if hi_open else v <= hi))
    return ok


#: (key, None allowed, check, what is allowed): the ranges of :class:`TrainConfig`'s numbers,
#: checked at construction so recipe files, ``--set`` and ``nas train`` flags share them.
_RULES: tuple[tuple[str, bool, Any, str], ...] = (
    ("steps", False, _int_at_least(1), "an integer >= 1"),
    ("epochs", True, _int_at_least(1), "an integer >= 1 or null"),
    ("batch_size", False, _int_at_least(1), "an integer >= 1"),
    ("lr", False, _in(0.0, 1e3, lo_open=True), "a finite number in (0, 1000]"),
    ("lr_base_batch", True, _int_at_least(1), "an integer >= 1 or null"),
    ("min_lr_ratio", False, _in(0.0, 1.0), "a number in [0, 1]"),
    ("warmup_steps", False, _int_at_least(0), "an integer >= 0"),
    ("warmup_epochs", True, _int_at_least(0), "an integer >= 0 or null"),
    ("weight_decay", False, _in(0.0, 1e3), "a finite number >= 0"),
    ("momentum", False, _in(0.0, 1.0, hi_open=True), "a number in [0, 1)"),
    ("grad_clip", True, _in(0.0, math.inf, lo_open=True, hi_open=True),
     "a finite number > 0 or null"),
    ("label_smoothing", False, _in(0.0, 1.0, hi_open=True), "a number in [0, 1)"),
    ("ema_decay", True, _in(0.0, 1.0, lo_open=True, hi_open=True),
     "a number in (0, 1) or null"),
    ("seed", False, lambda v: isinstance(v, int) and 0 <= v < 2**32,
     "an integer in [0, 2**32)"),
    ("checkpoint_every", True, _int_at_least(1), "an integer >= 1 or null"),
    ("checkpoint_every_epochs", True, _int_at_least(1), "an integer >= 1 or null"),
    ("checkpoint_minutes", True, _in(0.0, 1e6, lo_open=True), "a number of minutes > 0 or null"),
    ("keep_last", False, _int_at_least(0), "an integer >= 0"),
    ("val_every_epochs", True, _int_at_least(1), "an integer >= 1 or null"),
    ("mixup", False, _in(0.0, 1e3), "a finite number >= 0"),
    ("cutmix", False, _in(0.0, 1e3), "a finite number >= 0"),
    ("mix_prob", False, _in(0.0, 1.0), "a number in [0, 1]"),
    ("input_size", False, lambda v: isinstance(v, int) and 8 <= v <= 4096,
     "an integer in [8, 4096]"),
    ("resolution_scale", True, _in(0.0, 4.0, lo_open=True), "a number in (0, 4] or null"),
    ("micro_batches", False, _int_at_least(1), "an integer >= 1"),
    ("dropout", True, _in(0.0, 1.0, hi_open=True), "a number in [0, 1) or null"),
)


def _default_sampler_options() -> dict[str, Any]:
    from nasforge.supernet.training.samplers import SAMPLERS

    return dict(SAMPLERS.get(_DEFAULT_SAMPLER).recipe_options)


_DEFAULT_SAMPLER = "performance_aware"


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a supernet training run besides the space.

    Attributes:
        data: dataset spec (``digits``, ``imagefolder:PATH``, ``webdataset:PATTERN``, ...).
        loader: the streaming pipeline's workers and augmentation.
        sampler: registered sampler name.
        sampler_options: constructor options of the sampler.
        train: hyper-parameters.
    """

    data: str = "digits"
    loader: LoaderConfig = field(default_factory=lambda: LoaderConfig(val_fraction=0.1))
    sampler: str = _DEFAULT_SAMPLER
    sampler_options: Mapping[str, Any] = field(default_factory=_default_sampler_options)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(resolution_scale=0.125,
                                                                   channels_last=True))

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-able dict (tuples as lists)."""
        return {"data": self.data, "loader": _plain(dataclasses.asdict(self.loader)),
                "sampler": self.sampler, "sampler_options": _plain(dict(self.sampler_options)),
                "train": _plain(self.train.to_dict())}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


#: The default of ``nas train`` and of the quick supernet (``recipes/quick.yaml`` holds the same
#: values): ``elasticvit`` on ``digits`` at 32 px, every subnet at resolution / 8 px.
DEFAULT_RECIPE = Recipe()


# ---- checked construction from plain data ----------------------------------------------------
def _type_name(tp: Any) -> str:
    names = {int: "an integer", float: "a number", bool: "true/false", str: "a string"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """``value`` checked against the annotation ``tp`` (int, float, bool, str, X | None,
    tuple[...], Mapping)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, path)
            except InvalidInputError as e:
                errors.append(e)
        raise errors[0]
    bad = InvalidInputError(f"recipe key {path!r}: expected {_type_name(tp)}, got {value!r} "
                            f"({type(value).__name__})")
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise InvalidInputError(f"recipe key {path!r}: expected a list of {len(args)} "
                                    f"values, got {value!r}")
        return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(
            zip(value, args, strict=True)))
    if origin in (Mapping, dict) or tp in (dict, Mapping):
        if not isinstance(value, dict):
            raise InvalidInputError(f"recipe key {path!r}: expected a mapping, got {value!r}")
        return dict(value)
    return value


def _build(cls: Any, data: Any, path: str) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise InvalidInputError(f"recipe key {path!r}: expected a mapping of "
                                f"{cls.__name__} options, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        full = f"{path}.{key}" if path else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
            hint = f"; did you mean {(path + '.' if path else '') + close[0]!r}?" if close else ""
            raise InvalidInputError(f"unknown recipe key {full!r}{hint} (known in "
                                    f"{path or 'the top level'}: {', '.join(names)})")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, full)
        else:
            kwargs[key] = _coerce(value, tp, full)
    try:
        return cls(**kwargs)
    except InvalidInputError as e:
        raise InvalidInputError(f"recipe section {path or 'top level'!r}: {e}") from None


def recipe_from_dict(data: Mapping[str, Any]) -> Recipe:
    """A :class:`Recipe` from plain data; sections left out keep their defaults.

    Raises:
        InvalidInputError: an unknown key or a value of the wrong type (the key path named).
    """
    out: Recipe = _build(Recipe, dict(data), "")
    return out


def recipe_path(name_or_path: str | Path) -> Path:
    """A shipped recipe by name (``quick``, ``elasticvit_imagenet``, ...) or a file path.

    Raises:
        InvalidInputError: neither a shipped recipe nor an existing file.
    """
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    shipped = RECIPES_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = sorted(f.stem for f in RECIPES_DIR.glob("*.yaml"))
    raise InvalidInputError(f"recipe {str(name_or_path)!r} is neither a file nor a shipped "
                            f"recipe ({', '.join(names)})")


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Read a recipe YAML file (or a shipped recipe by name).

    Raises:
        InvalidInputError: unreadable YAML, an unknown key, a value of the wrong type.
    """
    from nasforge.validation import parse_structured
    from nasforge.validation import read_text

    path = recipe_path(name_or_path)
    # UTF-8, no duplicate keys, bounded nesting: the checks every input file gets
    data = parse_structured(read_text(path, "recipe"), str(path), kind="yaml") or {}
    if not isinstance(data, dict):
        raise InvalidInputError(f"recipe {path} must be a mapping of sections (data, loader, "
                                "sampler, sampler_options, train)")
    return recipe_from_dict(data)


def apply_overrides(recipe: Recipe, overrides: Mapping[str, Any]) -> Recipe:
    """``recipe`` with dotted keys replaced (``{"train.lr": 0.1, "data": "digits"}``).

    Raises:
        InvalidInputError: an unknown key path or a value of the wrong type.
    """
    data = recipe.to_dict()
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                raise InvalidInputError(f"unknown recipe key {dotted!r}")
            node = child
        node[leaf] = value
    return recipe_from_dict(data)
