"""Zero-cost proxies: an accuracy signal from a randomly initialised network, with no training.

Paper:
    Zero-Cost Proxies for Lightweight NAS, https://arxiv.org/abs/2101.08134

A proxy scores one network: :meth:`BaseProxy.score` takes a freshly built, randomly initialised
``nn.Module`` (it may change it: take its absolute values, cast it to double; callers pass a
network they will throw away) and, when :attr:`BaseProxy.needs_data` is set, one labelled batch.
Larger scores predict higher accuracy. Proxies register by name in :data:`PROXIES`
(:func:`register_proxy`); :func:`score_archs` builds each architecture's network from one seed
and scores it at the architecture's own resolution.

Call protocol: ``PROXIES.get(name)()`` -> ``proxy.score(model, batch)``; or
``score_archs(space, archs, proxy, seed=..., batch=...)`` for many architectures.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.progress import ProgressBar
from nasforge.registry import Registry
from nasforge.supernet.static import build_static

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = [
    "PROXIES",
    "BaseProxy",
    "Batch",
    "check_proxy_inputs",
    "get_proxy",
    "prunable_weights",
    "register_proxy",
    "score_archs",
]

#: ``(x, y)``: (B, 3, H, W) float images and (B,) int64 labels.
Batch = tuple[torch.Tensor, torch.Tensor]


class BaseProxy(abc.ABC):
    """Base of every zero-cost proxy.

    Attributes:
        name: registered name (``synflow``, ``jacob_cov``, ...).
        needs_data: whether :meth:`score` needs a batch (``synflow`` does not).
    """

    name: ClassVar[str] = ""
    needs_data: ClassVar[bool] = True

    @abc.abstractmethod
    def score(self, model: nn.Module, batch: Batch | None) -> float:
        """The proxy's score of ``model`` (larger predicts higher accuracy).

        Args:
            model: a randomly initialised network, (B, 3, H, W) -> (B, classes); the proxy may
                modify it.
            batch: one labelled batch at the network's resolution, or None for a data-free
                proxy.

        Returns:
            The score; NaN where the proxy is undefined (e.g. an output that ignores the input).
        """


#: proxy name -> class.
PROXIES: Registry[type[BaseProxy]] = Registry("zero-cost proxy")


def register_proxy(name: str) -> Callable[[type[BaseProxy]], type[BaseProxy]]:
    """Class decorator: register a proxy under ``name`` (sets its ``name``)."""

    def deco(cls: type[BaseProxy]) -> type[BaseProxy]:
        cls.name = name
        PROXIES.add(name, cls)
        return cls

    return deco


def get_proxy(name: str) -> BaseProxy:
    """A proxy by name; an unknown name raises ``UnknownNameError`` listing the known ones."""
    return PROXIES.get(name)()


def prunable_weights(model: nn.Module) -> list[torch.Tensor]:
    """The parameters of two or more dimensions: the convolution and linear weights (also the
    max-size ones of a supernet's dynamic ops), the tensors proxies sum over."""
    return [p for p in model.parameters() if p.dim() >= 2]


def check_proxy_inputs(space: SearchSpace, proxy: BaseProxy, batch: Batch | None) -> None:
    """Raise when ``proxy`` cannot score architectures of ``space`` with ``batch``.

    Raises:
        IncompatibleComponentsError: ``space`` is tabular (no network to score).
        InvalidInputError: the proxy needs data and ``batch`` is None, or the batch is malformed.
    """
    if not space.has_model:
        raise IncompatibleComponentsError(
            f"zero-cost proxy {proxy.name!r} needs a network, but space {space.name!r} is "
            "tabular (no model); use a network space (e.g. nasbench201_net for NB201 cells) or "
            "take accuracy from --benchmark"
        )
    if proxy.needs_data and batch is None:
        data_free = ", ".join(n for n in PROXIES.list() if not PROXIES.get(n).needs_data)
        raise InvalidInputError(
            f"zero-cost proxy {proxy.name!r} needs one batch of data, but none was given; pass "
            f"--data (e.g. --data digits) or use a data-free proxy ({data_free})"
        )
    if batch is not None:
        x, y = batch
        if x.dim() != 4 or x.shape[1] != 3 or y.shape != (x.shape[0],):
            raise InvalidInputError(
                f"a proxy batch is (x: (B, 3, H, W), y: (B,)), got x {tuple(x.shape)}, "
                f"y {tuple(y.shape)}"
            )


def _at(batch: Batch | None, resolution: int) -> Batch | None:
    if batch is None or batch[0].shape[-1] == resolution:
        return batch
    x = F.interpolate(batch[0], size=(resolution, resolution), mode="bilinear",
                      align_corners=False)
    return x, batch[1]


def score_archs(space: SearchSpace, archs: Sequence[Arch], proxy: BaseProxy, *, seed: int = 0,
                batch: Batch | None = None, num_classes: int | None = None,
                progress: bool = False) -> np.ndarray:
    """Score each architecture's randomly initialised network with ``proxy``.

    Every network is initialised from the same ``seed`` (in a forked RNG: the global torch RNG
    is left as it was), so a score is a function of (architecture, seed, batch). The batch is
    resized (bilinear) to each architecture's ``resolution`` where it differs.

    Args:
        space: a network space (``has_model``).
        archs: architectures of ``space``.
        proxy: the proxy.
        seed: initialisation seed.
        batch: one labelled batch, required when ``proxy.needs_data``; labels must be below
            the classifier width.
        num_classes: classifier width (default: the space's).
        progress: report progress through :class:`~nasforge.progress.ProgressBar`.

    Returns:
        float64 scores, shape ``(len(archs),)``.

    Raises:
        IncompatibleComponentsError: ``space`` is tabular.
        InvalidInputError: a data proxy without a batch; labels outside the classifier.
    """
    check_proxy_inputs(space, proxy, batch)
    classes = num_classes if num_classes is not None else getattr(space, "num_classes", None)
    if batch is not None and classes is not None and int(batch[1].max()) >= classes:
        raise InvalidInputError(
            f"proxy batch labels reach {int(batch[1].max())}, but the classifier has {classes} "
            "classes; pass num_classes to match the data"
        )
    out = np.empty(len(archs), dtype=np.float64)
    with ProgressBar(f"zero-cost {proxy.name}", total=len(archs), enabled=progress) as bar:
        for i, arch in enumerate(archs):
            res = int(getattr(arch, "resolution", 0)) or None
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = build_static(space, arch, num_classes=classes)
            b = _at(batch, res) if res is not None else batch
            out[i] = proxy.score(model, b)
            bar.advance()
    return out
