"""Multi-layer perceptron (torch), a small deep ensemble; saved as safetensors + JSON.

Each member is an MLP with ReLU on standardised features and targets, trained with Adam on
mini-batches; the members train together as batched matrix products (``(k, B, d)``). Members
differ only in their initialisation and batch order, both drawn from a ``torch.Generator``
seeded by ``seed`` (no global RNG). With ``n_models > 1`` the predictive ``std`` is the spread of
the members (deep ensembles, https://arxiv.org/abs/1612.01474).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save_file

from nasforge.errors import InvalidInputError
from nasforge.predictors.base import BasePredictor
from nasforge.predictors.base import NotFittedError
from nasforge.predictors.base import Prediction
from nasforge.predictors.checks import check_tensors
from nasforge.predictors.checks import check_vector
from nasforge.predictors.registry import register_predictor

__all__ = ["MLPPredictor"]

_WEIGHTS_FILE = "weights.safetensors"


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run torch on ``n`` intra-op threads, restoring the caller's setting afterwards.

    Tiny MLPs are fastest on one thread; several threads on a busy machine spin-wait and make
    training 10-30x slower.
    """
    prev = torch.get_num_threads()
    if n == prev:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _init_params(d: int, hidden: tuple[int, ...], k: int, gen: torch.Generator
                 ) -> list[torch.Tensor]:
    """Weights (k, in, out) and biases (k, 1, out) per layer, nn.Linear's default init."""
    params: list[torch.Tensor] = []
    for fan_in, fan_out in itertools.pairwise((d, *hidden, 1)):
        bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) and the bias both give this
        w = (torch.rand(k, fan_in, fan_out, generator=gen) * 2 - 1) * bound
        b = (torch.rand(k, 1, fan_out, generator=gen) * 2 - 1) * bound
        params += [w.requires_grad_(), b.requires_grad_()]
    return params


def _forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Run all members: x (k, B, d) -> (k, B)."""
    h = x
    n_layers = len(params) // 2
    for i in range(n_layers):
        h = torch.baddbmm(params[2 * i + 1], h, params[2 * i])
        if i < n_layers - 1:
            h = torch.relu(h)
    return h[..., 0]


@register_predictor("mlp")
class MLPPredictor(BasePredictor):
    """An ensemble of MLP regressors.

    Args:
        hidden: widths of the hidden layers.
        n_models: ensemble members (``std`` is ``None`` for a single member).
        epochs: passes over the training set.
        batch_size: mini-batch size.
        lr: Adam learning rate.
        weight_decay: Adam L2 penalty.
        n_threads: torch intra-op threads during fit/predict (restored afterwards).
        seed: seeds initialisation and batch order.
    """

    def __init__(
        self,
        hidden: tuple[int, ...] | list[int] = (64, 64),
        n_models: int = 3,
        epochs: int = 150,
        batch_size: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        n_threads: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        hidden = tuple(int(h) for h in hidden)
        if not hidden or min(hidden) < 1 or n_models < 1 or epochs < 1 or batch_size < 1 or (
                lr <= 0):
            raise InvalidInputError(
                f"mlp needs non-empty positive hidden widths, n_models, epochs, batch_size >= 1 "
                f"and lr > 0, got {hidden=}, {n_models=}, {epochs=}, {batch_size=}, {lr=}"
            )
        self.hidden = hidden
        self.n_models = int(n_models)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.n_threads = max(1, int(n_threads))
        self.params_: list[torch.Tensor] | None = None
        self.scalers_: dict[str, list[float]] | None = None

    def get_config(self) -> dict[str, Any]:
        return {
            "hidden": list(self.hidden),
            "n_models": self.n_models,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "n_threads": self.n_threads,
            "seed": self.seed,
        }

    # ---- scaling ---------------------------------------------------------------------------
    def _scaled(self, X: np.ndarray) -> torch.Tensor:
        if self.scalers_ is None:
            raise NotFittedError("mlp predictor is not fitted; call fit(X, y) first")
        mu = np.asarray(self.scalers_["x_mean"])
        sd = np.asarray(self.scalers_["x_scale"])
        return torch.from_numpy((X - mu) / sd).to(torch.float32)

    # ---- fit / predict ---------------------------------------------------------------------
    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        sd = X.std(axis=0)
        y_sd = float(y.std()) or 1.0
        self.scalers_ = {"x_mean": X.mean(axis=0).tolist(),
                         "x_scale": np.where(sd > 0, sd, 1.0).tolist(),
                         "y_mean": [float(y.mean())], "y_scale": [y_sd]}
        xt = self._scaled(X)
        yt = torch.from_numpy((y - y.mean()) / y_sd).to(torch.float32)
        with _torch_threads(self.n_threads):
            self._train(xt, yt)

    def _train(self, xt: torch.Tensor, yt: torch.Tensor) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        k, n = self.n_models, xt.shape[0]
        params = _init_params(xt.shape[1], self.hidden, k, gen)
        opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        for _ in range(self.epochs):
            # an independent batch order per member: (k, n)
            order = torch.argsort(torch.rand(k, n, generator=gen), dim=1)
            for start in range(0, n, self.batch_size):
                idx = order[:, start:start + self.batch_size]
                loss = torch.mean((_forward(params, xt[idx]) - yt[idx]) ** 2) * k
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.params_ = [p.detach() for p in params]

    def _predict(self, X: np.ndarray) -> Prediction:
        if self.params_ is None or self.scalers_ is None:
            raise NotFittedError("mlp predictor is not fitted; call fit(X, y) first")
        xt = self._scaled(X)
        with torch.no_grad(), _torch_threads(self.n_threads):
            out = _forward(self.params_, xt.expand(self.n_models, -1, -1)).double().numpy()
        out = out * self.scalers_["y_scale"][0] + self.scalers_["y_mean"][0]  # (models, m)
        std = out.std(axis=0) if self.n_models > 1 else None
        return Prediction(mean=out.mean(axis=0), std=std)

    # ---- persistence ---------------------------------------------------------------------
    def _save_state(self, path: Path) -> dict[str, Any]:
        if self.params_ is None or self.scalers_ is None:
            raise NotFittedError("mlp predictor is not fitted; call fit(X, y) first")
        tensors = {f"layer{i // 2}.{'weight' if i % 2 == 0 else 'bias'}": p.contiguous()
                   for i, p in enumerate(self.params_)}
        save_file(tensors, str(path / _WEIGHTS_FILE))
        return {"weights_file": _WEIGHTS_FILE, "scalers": self.scalers_}

    def _load_state(self, path: Path, meta: dict[str, Any]) -> None:
        d = int(self.n_features_ or 0)
        k, widths = self.n_models, (d, *self.hidden, 1)
        want: dict[str, tuple[int, ...]] = {}
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
            want[f"layer{i}.weight"] = (k, fan_in, fan_out)
            want[f"layer{i}.bias"] = (k, 1, fan_out)
        tensors = load_file(str(path / meta.get("weights_file", _WEIGHTS_FILE)))
        check_tensors(str(path), tensors, want)
        scalers = meta.get("scalers")
        if not isinstance(scalers, dict):
            raise InvalidInputError(f"{path}: the manifest's state.scalers must be a mapping, "
                                    f"got {type(scalers).__name__}")
        self.scalers_ = {
            key: check_vector(str(path), f"scaler {key}", scalers.get(key), n,
                              positive=key.endswith("scale")).tolist()
            for key, n in (("x_mean", d), ("x_scale", d), ("y_mean", 1), ("y_scale", 1))}
        self.params_ = [tensors[name] for name in want]
