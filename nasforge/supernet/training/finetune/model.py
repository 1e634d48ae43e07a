"""The static model a fine-tuning run writes, and reading it back (``nas export --model``).

Layout of the folder (``nas finetune --out DIR``): ``DIR/model.safetensors`` (the static twin's
``state_dict``) and ``DIR/model.json``: ``format``, ``space``, ``arch`` (its plain dict),
``arch_id``, ``num_classes``, ``resolution`` (deployment), ``input_size`` (the side it was
trained and scored at), ``data`` (the run's data: ``spec``, ``input_size``,
``resolution_scale``, ``seed``, ``loader``, enough to rebuild the calibration and validation
images), and the run's figures (``top1``, ``inherited_top1``, ...). No pickle: the weights are
safetensors, the rest JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError

if TYPE_CHECKING:
    from torch import nn

    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["MODEL_FORMAT", "StaticModel", "read_static_model", "write_static_model"]

#: the ``format`` value of ``model.json``
MODEL_FORMAT = "nasforge-static-model/1"
WEIGHTS_NAME = "model.safetensors"
META_NAME = "model.json"


@dataclass(frozen=True)
class StaticModel:
    """A static model read back from a fine-tuning folder.

    Attributes:
        model: the static twin, weights loaded strictly, in eval mode on CPU.
        arch: its architecture.
        space: its search space.
        meta: the whole ``model.json``.
    """

    model: nn.Module
    arch: Arch
    space: SearchSpace
    meta: dict[str, Any]

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    def open_data(self, spec: str | None = None) -> Any:
        """The run's data source (or ``spec``) at the run's size, scale, seed and split."""
        from nasforge.supernet.checkpoint import RunConfig

        d = self.meta["data"]
        run = RunConfig(self.space.name, self.num_classes, str(d["spec"]), int(d["input_size"]),
                        None if d["resolution_scale"] is None else float(d["resolution_scale"]),
                        int(d["seed"]), dict(d.get("loader") or {}))
        return run.open_data(spec)


def write_static_model(out: Path, model: nn.Module, arch: Arch, num_classes: int,
                       info: dict[str, Any]) -> Path:
    """Write ``model`` (the static twin of ``arch``) as ``out/model.safetensors`` +
    ``out/model.json`` (``info`` adds ``data``, ``input_size`` and the figures).

    Returns:
        The path of ``model.json``.
    """
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_NAME))
    meta = {"format": MODEL_FORMAT, "space": arch.space, "arch": arch.to_dict(),
            "arch_id": arch.arch_id, "num_classes": int(num_classes),
            "resolution": getattr(arch, "resolution", None), **info}
    path = out / META_NAME
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_static_model(folder: str | Path) -> StaticModel:
    """Read a folder written by :func:`write_static_model` (``nas finetune --out``).

    Raises:
        InvalidInputError: no ``model.json`` / ``model.safetensors`` there, or a malformed one.
        IncompatibleComponentsError: the weights do not fit the recorded architecture.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from nasforge.search_spaces import get_space
    from nasforge.supernet.static import build_static

    folder = Path(folder)
    meta_path, weights = folder / META_NAME, folder / WEIGHTS_NAME
    if not meta_path.is_file() or not weights.is_file():
        raise InvalidInputError(f"--model {folder}: expected {META_NAME} and {WEIGHTS_NAME} "
                                "there (the --out folder of nas finetune)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != MODEL_FORMAT:
            raise InvalidInputError(f"{meta_path}: format {meta.get('format')!r}, expected "
                                    f"{MODEL_FORMAT!r}")
        space = get_space(str(meta["space"]))
        arch = space.arch_from_dict(meta["arch"])
        num_classes = int(meta["num_classes"])
    except (ValueError, KeyError, TypeError) as e:
        if isinstance(e, InvalidInputError):
            raise
        raise InvalidInputError(f"{meta_path} is malformed: {e!r}") from None
    model = build_static(space, arch, num_classes=num_classes)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise InvalidInputError(f"{weights} is not a readable safetensors file: {e}") from None
    own = model.state_dict()
    if set(own) != set(state) or any(own[k].shape != state[k].shape for k in own):
        raise IncompatibleComponentsError(f"{weights} does not hold the weights of subnet "
                                          f"{arch.arch_id} of {space.name} ({num_classes} "
                                          "classes) that model.json names")
    model.load_state_dict(state, strict=True)
    return StaticModel(model.eval(), arch, space, meta)
