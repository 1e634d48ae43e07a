"""Multi-layer perceptron (torch), a small deep ensemble; saved as safetensors + JSON.

Each member is an MLP with ReLU on standardised features and targets, trained with Adam on
mini-batches. Members differ only in their initialisation and batch order, both drawn from a
``torch.Generator`` seeded by ``seed`` (no global RNG). With ``n_models > 1`` the predictive
``std`` is the spread of the members (deep ensembles, https://arxiv.org/abs/1612.01474).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save_file
from torch import nn

from nasforge.errors import InvalidInputError
from nasforge.predictors.base import BasePredictor
from nasforge.predictors.base import NotFittedError
from nasforge.predictors.base import Prediction
from nasforge.predictors.registry import register_predictor

__all__ = ["MLPPredictor"]

_WEIGHTS_FILE = "weights.safetensors"


def _make_net(d: int, hidden: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    prev = d
    for h in hidden:
        layers += [nn.Linear(prev, h), nn.ReLU()]
        prev = h
    layers.append(nn.Linear(prev, 1))
    return nn.Sequential(*layers)


def _init(net: nn.Sequential, gen: torch.Generator) -> None:
    """nn.Linear's default initialisation, drawn from ``gen``."""
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=gen)
                bound = 1.0 / math.sqrt(m.in_features)
                m.bias.uniform_(-bound, bound, generator=gen)


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
        self.nets_: list[nn.Sequential] | None = None
        self.scalers_: dict[str, list[float]] | None = None

    def get_config(self) -> dict[str, Any]:
        return {
            "hidden": list(self.hidden),
            "n_models": self.n_models,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
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
        yt = torch.from_numpy((y - y.mean()) / y_sd).to(torch.float32)[:, None]
        gen = torch.Generator().manual_seed(self.seed)
        n = xt.shape[0]
        nets = []
        for _ in range(self.n_models):
            net = _make_net(X.shape[1], self.hidden)
            _init(net, gen)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            net.train()
            for _ in range(self.epochs):
                order = torch.randperm(n, generator=gen)
                for start in range(0, n, self.batch_size):
                    idx = order[start:start + self.batch_size]
                    loss = nn.functional.mse_loss(net(xt[idx]), yt[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            net.eval()
            nets.append(net)
        self.nets_ = nets

    def _predict(self, X: np.ndarray) -> Prediction:
        if self.nets_ is None or self.scalers_ is None:
            raise NotFittedError("mlp predictor is not fitted; call fit(X, y) first")
        xt = self._scaled(X)
        with torch.no_grad():
            out = torch.stack([net(xt)[:, 0] for net in self.nets_]).double().numpy()
        out = out * self.scalers_["y_scale"][0] + self.scalers_["y_mean"][0]  # (models, m)
        std = out.std(axis=0) if self.n_models > 1 else None
        return Prediction(mean=out.mean(axis=0), std=std)

    # ---- persistence ---------------------------------------------------------------------
    def _save_state(self, path: Path) -> dict[str, Any]:
        if self.nets_ is None or self.scalers_ is None:
            raise NotFittedError("mlp predictor is not fitted; call fit(X, y) first")
        tensors = {f"m{k}.{name}": p.detach().contiguous()
                   for k, net in enumerate(self.nets_) for name, p in net.state_dict().items()}
        save_file(tensors, str(path / _WEIGHTS_FILE))
        return {"weights_file": _WEIGHTS_FILE, "scalers": self.scalers_}

    def _load_state(self, path: Path, meta: dict[str, Any]) -> None:
        tensors = load_file(str(path / meta.get("weights_file", _WEIGHTS_FILE)))
        self.scalers_ = {k: [float(v) for v in vals] for k, vals in meta["scalers"].items()}
        d = len(self.scalers_["x_mean"])
        nets = []
        for k in range(self.n_models):
            net = _make_net(d, self.hidden)
            prefix = f"m{k}."
            net.load_state_dict({n[len(prefix):]: t for n, t in tensors.items()
                                 if n.startswith(prefix)})
            net.eval()
            nets.append(net)
        self.nets_ = nets
