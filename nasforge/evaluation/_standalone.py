"""Stand-alone accuracy: each subnet trained from scratch for a few steps, then scored.

The reference a weight-sharing supernet is judged against (``nas rank --b standalone``): the
subnet's own randomly initialised static model (``build_static(space, arch)``), trained alone for
``steps`` AdamW steps (cosine schedule, a tenth of them warm-up) on the training split of the
data, at the subnet's own size ``data.eval_size(arch.resolution)`` (the size the supernet
trains and scores it at), then top-1 (%) on the validation split. Every subnet starts from the
same seed and reads the same batches, so a score is a function of (arch, data, steps, seed).

Example:
    >>> from nasforge.search_spaces import get_space
    >>> from nasforge.data import load_data
    >>> space = get_space("nasbench201_net")
    >>> data = load_data("synthetic:64", input_size=32, seed=0)
    >>> obj = StandaloneAccuracy(space, data, steps=1, batch_size=8)
    >>> acc = obj.evaluate_many([space.min_arch()])
    >>> bool(0.0 <= acc[0] <= 100.0)
    True
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.evaluation.base import AccuracyObjective
from nasforge.progress import ProgressBar
from nasforge.strategies.objectives import ArchMemo

if TYPE_CHECKING:
    import torch

    from nasforge.data import BaseImageSource
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["StandaloneAccuracy", "train_standalone"]

logger = logging.getLogger(__name__)


def train_standalone(model: torch.nn.Module, data: BaseImageSource, size: int, *, steps: int,
                     batch_size: int = 32, lr: float = 2e-3, weight_decay: float = 0.05,
                     seed: int = 0, device: str = "cpu") -> float:
    """Train ``model`` from its current weights for ``steps`` steps, return its top-1 (%).

    Args:
        model: a static model, (B, 3, size, size) -> (B, classes).
        data: training batches and the validation split.
        size: the side (px) every batch is resized to.
        steps: optimizer steps (>= 1).
        batch_size: images per step.
        lr: AdamW peak learning rate (cosine decay to 0, ``steps // 10`` warm-up steps).
        weight_decay: AdamW weight decay.
        seed: which training batches (the data order).
        device: compute device.

    Returns:
        Top-1 accuracy in percent on the validation split.
    """
    import torch
    import torch.nn.functional as F

    from nasforge.data import normalize
    from nasforge.data import resize_batch

    dev = torch.device(device)
    model.to(dev).train()
    # fused AdamW (and a foreach clip): the for-loop AdamW took ~30% of a CPU step of a small
    # elasticvit subnet (16 px, batch 32); clip + step measured 61 vs 186 ms for the smallest
    # of nas rank's 20 subnets, 130 vs 380 ms for the largest
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                            fused=dev.type in ("cpu", "cuda"))
    warm = steps // 10

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    mean, std = data.mean or (), data.std or ()
    batches = data.train_batches(batch_size, seed=seed)
    done = 0
    try:
        for b in batches:
            if not len(b.y):
                continue
            x = resize_batch(normalize(b.x, dev, mean, std), size)
            loss = F.cross_entropy(model(x), b.y.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0, foreach=True)
            opt.step()
            sched.step()
            done += 1
            if done >= steps:
                break
    finally:
        close = getattr(batches, "close", None)
        if callable(close):
            close()
    model.eval()
    correct = n = 0
    with torch.no_grad():
        for x, y in data.val_batches(256):
            xs = resize_batch(normalize(x, dev, mean, std), size)
            correct += int((model(xs).argmax(dim=1) == y.to(dev)).sum())
            n += len(y)
    return 100.0 * correct / max(n, 1)


class StandaloneAccuracy(AccuracyObjective):
    """Top-1 (%) of each subnet trained alone from scratch (see the module docstring).

    Scores are memoised per ``arch_id``.

    Args:
        space: a network space (``has_model``).
        data: the dataset (its ``num_classes`` sizes the classifier).
        steps: training steps per subnet (>= 1).
        batch_size: images per step.
        lr: AdamW peak learning rate.
        seed: initialisation seed and data order, the same for every subnet.
        device: compute device.
        name: column name.
        progress: report progress through :class:`~nasforge.progress.ProgressBar`.

    Raises:
        InvalidInputError: ``steps < 1``, or ``space`` has no model.
    """

    metric_label = "top1"
    batched = True

    def __init__(self, space: SearchSpace, data: BaseImageSource, *, steps: int = 100,
                 batch_size: int = 32, lr: float = 2e-3, seed: int = 0, device: str = "cpu",
                 name: str = "standalone", progress: bool = False) -> None:
        if steps < 1:
            raise InvalidInputError(f"stand-alone training needs steps >= 1, got {steps=}; "
                                    "pass --steps 1 or more")
        if not space.has_model:
            raise InvalidInputError(f"stand-alone training needs a network space, but space "
                                    f"{space.name!r} is tabular; use a network space")
        super().__init__(name, "maximize", cheap=False)
        self.space = space
        self.data = data
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.device = device
        self.progress = progress
        self._memo: ArchMemo[str] = ArchMemo()

    def _train(self, archs: Sequence[Arch], todo: list[int]) -> list[float]:
        import torch

        from nasforge.supernet.static import build_static

        out = []
        with ProgressBar(f"stand-alone training ({self.steps} steps each)", total=len(todo),
                         enabled=self.progress) as bar:
            for i in todo:
                arch = archs[i]
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    model = build_static(self.space, arch, num_classes=self.data.num_classes)
                    size = self.data.eval_size(getattr(arch, "resolution", None))
                    acc = train_standalone(model, self.data, size, steps=self.steps,
                                           batch_size=self.batch_size, lr=self.lr,
                                           seed=self.seed, device=self.device)
                logger.debug("stand-alone %s: %.2f%% after %d steps at %d px", arch.arch_id,
                             acc, self.steps, size)
                out.append(acc)
                bar.advance()
        return out

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        archs = list(archs)
        return self._memo.lookup([a.arch_id for a in archs],
                                 lambda todo: self._train(archs, todo))

    def provenance(self) -> dict[str, Any]:
        return {"kind": "stand-alone top-1 %", "data": self.data.name,
                "input_size": self.data.input_size,
                "resolution_scale": self.data.resolution_scale, "steps": self.steps,
                "batch_size": self.batch_size, "lr": self.lr, "seed": self.seed,
                "val_images": self.data.num_val}
