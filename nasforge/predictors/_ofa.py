"""Once-for-All's pretrained ImageNet accuracy predictor for ``ofa_mbv3`` (w1.2), imported.

Paper:
    Once-for-All: Train One Network and Specialize it for Efficient Deployment,
    https://arxiv.org/abs/1908.09791

OFA's tutorial ships ``acc_predictor.pth``: the state dict of an MLP
``Linear(128, 400) - ReLU - Linear(400, 400) - ReLU - Linear(400, 400) - ReLU - Linear(400, 1)``
(keys ``0.*``, ``2.*``, ``4.*``, ``6.*``) whose output is the subnet's ImageNet top-1 (a
fraction). Its 128 inputs, as the tutorial's ``spec2feats`` defines them:

* 60 kernel columns: for each of the 20 MBConv blocks (5 stages x 4 slots) a one-hot of the
  kernel over (3, 5, 7) at columns ``3 * block + {0, 1, 2}``;
* 60 expand columns: the same for the expand ratio over (3, 4, 6), from column 60;
* 8 resolution columns from column 120: a one-hot at ``(r - 112) // 16`` (112, 128, ..., 224;
  a resolution between grid points falls into the bucket below it, as in OFA's code);
* a block beyond its stage's depth (slot >= depth) has all-zero kernel and expand columns.

:class:`OFAAccuracyPredictor` holds the MLP's tensors (saved as safetensors + JSON like every
predictor) and reads the space's own encoding (``space.encode_many``: the ``resolution``,
``depths[s]``, ``kernels[i]``, ``expands[i]`` columns), so ``nas search --space ofa_mbv3_w12
--predictor DIR`` uses it as any other predictor. It is imported, never fitted.
:func:`import_ofa_predictor` reads the ``.pth`` with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from safetensors.torch import save_file

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.predictors._mlp import _torch_threads
from nasforge.predictors.base import BasePredictor
from nasforge.predictors.base import Prediction
from nasforge.predictors.checks import check_tensors
from nasforge.predictors.registry import register_predictor
from nasforge.weights_only import load_weights_only

__all__ = ["OFA_SHAPES", "OFAAccuracyPredictor", "import_ofa_predictor", "ofa_features"]

_WEIGHTS_FILE = "weights.safetensors"
#: The state-dict keys and shapes of OFA's tutorial accuracy predictor.
OFA_SHAPES: dict[str, tuple[int, ...]] = {
    "0.weight": (400, 128), "0.bias": (400,),
    "2.weight": (400, 400), "2.bias": (400,),
    "4.weight": (400, 400), "4.bias": (400,),
    "6.weight": (1, 400), "6.bias": (1,),
}
N_BLOCKS, SLOTS = 20, 4
KERNELS, EXPANDS = (3, 5, 7), (3, 4, 6)
R_MIN, R_STEP, N_RES = 112, 16, 8
N_FEATURES = 2 * 3 * N_BLOCKS + N_RES  # 128


def _index(values: np.ndarray, options: tuple[int, ...], what: str) -> np.ndarray:
    out = np.full(values.shape, -1, dtype=np.int64)
    for i, v in enumerate(options):
        out[values == v] = i
    if (out < 0).any():
        bad = sorted({int(v) for v in values[out < 0]})
        raise InvalidInputError(f"OFA's predictor encodes {what} in {options}, got {bad}")
    return out


def ofa_features(resolution: np.ndarray, depths: np.ndarray, kernels: np.ndarray,
                 expands: np.ndarray) -> np.ndarray:
    """OFA's 128-d encoding of ``m`` subnets (the tutorial's ``spec2feats``, vectorised).

    Args:
        resolution: (m,) input sides, 112..239.
        depths: (m, 5) depth per stage, 1..4.
        kernels: (m, 20) kernel per block slot (slots beyond the depth are ignored).
        expands: (m, 20) expand ratio per block slot.

    Returns:
        (m, 128) float32 features.

    Raises:
        InvalidInputError: a value outside OFA's choices.
    """
    r = np.asarray(resolution, dtype=np.int64).reshape(-1)
    d = np.asarray(depths, dtype=np.int64).reshape(len(r), -1)
    k = np.asarray(kernels, dtype=np.int64).reshape(len(r), N_BLOCKS)
    e = np.asarray(expands, dtype=np.int64).reshape(len(r), N_BLOCKS)
    slot = np.arange(N_BLOCKS)
    live = (slot % SLOTS)[None, :] < d[:, slot // SLOTS]  # (m, 20)
    # slots beyond the depth are zeroed in OFA's code before the one-hot: any value goes there
    k_idx = _index(np.where(live, k, KERNELS[0]), KERNELS, "kernels")
    e_idx = _index(np.where(live, e, EXPANDS[0]), EXPANDS, "expand ratios")
    r_idx = (r - R_MIN) // R_STEP
    if ((r_idx < 0) | (r_idx >= N_RES)).any():
        raise InvalidInputError(
            f"OFA's predictor encodes resolutions {R_MIN}..{R_MIN + N_RES * R_STEP - 1}, got "
            f"{sorted({int(x) for x in r[(r_idx < 0) | (r_idx >= N_RES)]})}"
        )
    out = np.zeros((len(r), N_FEATURES), dtype=np.float32)
    rows, blocks = np.nonzero(live)
    out[rows, 3 * blocks + k_idx[rows, blocks]] = 1.0
    out[rows, 3 * N_BLOCKS + 3 * blocks + e_idx[rows, blocks]] = 1.0
    out[np.arange(len(r)), 6 * N_BLOCKS + r_idx] = 1.0
    return out


def check_ofa_state(state: Any, source: str) -> dict[str, torch.Tensor]:
    """``state`` as OFA's predictor tensors (float32), or one line naming the expected shapes.

    Raises:
        IncompatibleComponentsError: not a state dict of exactly :data:`OFA_SHAPES` of floats.
        InvalidInputError: a NaN or infinite weight or bias.
    """
    want = ", ".join(f"{k} {tuple(v)}" for k, v in OFA_SHAPES.items())
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise IncompatibleComponentsError(
            f"{source} is not OFA's accuracy predictor: expected a state dict of {want}, got "
            f"a {type(state).__name__}"
        )
    got = {str(k): tuple(v.shape) for k, v in state.items()}
    if got != OFA_SHAPES:
        have = ", ".join(f"{k} {v}" for k, v in got.items())
        raise IncompatibleComponentsError(
            f"{source} is not OFA's accuracy predictor (MLP 128-400-400-400-1): expected "
            f"{want}; got {have}"
        )
    if not all(v.is_floating_point() for v in state.values()):
        kinds = sorted({str(v.dtype) for v in state.values()})
        raise IncompatibleComponentsError(
            f"{source} is not OFA's accuracy predictor: its tensors are {kinds}, expected "
            "floating point")
    out = {str(k): v.detach().to(torch.float32).contiguous() for k, v in state.items()}
    check_tensors(source, out, OFA_SHAPES)  # after the cast: NaN or inf in any of them
    return out


@register_predictor("ofa")
class OFAAccuracyPredictor(BasePredictor):
    """OFA's pretrained accuracy MLP on a space's encoding (imported, not fitted).

    Args:
        feature_names: the space's ``encoding_names()`` (which columns hold ``resolution``,
            ``depths[s]``, ``kernels[i]`` and ``expands[i]``).
        space: the space name the predictor was imported for (informational).
        seed: unused (the predictor is deterministic); kept for the common constructor.
    """

    #: Imported with its weights, never fitted (the predictor contract's fit tests skip it).
    pretrained: ClassVar[bool] = True

    def __init__(self, feature_names: list[str] | None = None, space: str = "ofa_mbv3_w12",
                 seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.space = space
        self.fitted_space = space
        self.feature_names = list(feature_names or [])
        self._state: dict[str, torch.Tensor] | None = None
        if self.feature_names:
            self._cols = self._columns(self.feature_names)

    @staticmethod
    def _columns(names: list[str]) -> dict[str, np.ndarray]:
        pos = {n: i for i, n in enumerate(names)}
        wanted = {"resolution": ["resolution"],
                  "depths": [f"depths[{s}]" for s in range(N_BLOCKS // SLOTS)],
                  "kernels": [f"kernels[{i}]" for i in range(N_BLOCKS)],
                  "expands": [f"expands[{i}]" for i in range(N_BLOCKS)]}
        missing = [c for cols in wanted.values() for c in cols if c not in pos]
        if missing:
            raise IncompatibleComponentsError(
                f"OFA's predictor needs an ofa_mbv3 encoding (resolution, depths[0..4], "
                f"kernels[0..19], expands[0..19]); missing columns {missing[:4]}; import it for "
                "--space ofa_mbv3_w12 or ofa_mbv3"
            )
        return {k: np.array([pos[c] for c in cols]) for k, cols in wanted.items()}

    def get_config(self) -> dict[str, Any]:
        return {"feature_names": self.feature_names, "space": self.space, "seed": self.seed}

    def set_state(self, state: dict[str, torch.Tensor]) -> OFAAccuracyPredictor:
        """Install OFA's MLP tensors (checked against :data:`OFA_SHAPES`); returns ``self``."""
        self._state = check_ofa_state(state, "the given state")
        self.n_features_ = len(self.feature_names)
        return self

    def features(self, X: np.ndarray) -> np.ndarray:
        """OFA's (m, 128) encoding of rows of the space's encoding ``X: (m, d)``."""
        c = self._cols
        return ofa_features(X[:, c["resolution"][0]], X[:, c["depths"]], X[:, c["kernels"]],
                            X[:, c["expands"]])

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        raise IncompatibleComponentsError(
            "the 'ofa' predictor is OFA's pretrained MLP, imported with `nas predictor import "
            "--from ofa FILE --out DIR`; it cannot be fitted: use the 'mlp' predictor to train one"
        )

    def _predict(self, X: np.ndarray) -> Prediction:
        s = self._state
        if s is None:  # pragma: no cover - is_fitted guards
            raise IncompatibleComponentsError("OFA predictor has no weights")
        h = torch.from_numpy(self.features(X))
        # one generation (about 100 rows) is a few MFLOPs: on one thread, because idle
        # OpenMP workers of a busy machine spin and cost 10-100x (results are bitwise equal)
        with torch.no_grad(), _torch_threads(1):
            for i in (0, 2, 4):
                h = F.relu(F.linear(h, s[f"{i}.weight"], s[f"{i}.bias"]))
            out = F.linear(h, s["6.weight"], s["6.bias"])
        return Prediction(mean=out.reshape(-1).double().numpy(), std=None)

    def _save_state(self, path: Path) -> dict[str, Any]:
        if self._state is None:  # pragma: no cover - save requires fitted
            raise IncompatibleComponentsError("OFA predictor has no weights")
        save_file(self._state, str(path / _WEIGHTS_FILE))
        return {"weights": _WEIGHTS_FILE, "source": "once-for-all acc_predictor.pth"}

    def _load_state(self, path: Path, meta: dict[str, Any]) -> None:
        tensors = load_file(str(path / meta.get("weights", _WEIGHTS_FILE)))
        check_tensors(str(path), tensors, OFA_SHAPES)  # as saved: float32, finite
        self._state = check_ofa_state(tensors, str(path))


def import_ofa_predictor(file: str | Path, out: str | Path,
                         space: str = "ofa_mbv3_w12") -> Path:
    """Read OFA's ``acc_predictor.pth`` and save it as a nasforge predictor directory.

    Args:
        file: the ``.pth`` state dict (read with ``torch.load(weights_only=True)``: no pickled
            code runs).
        out: the directory to write (``predictor.json`` + ``weights.safetensors``).
        space: the space whose encoding the predictor will read (``ofa_mbv3_w12``/``ofa_mbv3``).

    Returns:
        The directory.

    Raises:
        InvalidInputError: ``file`` is missing or not a torch file.
        IncompatibleComponentsError: the file holds other shapes (the message names OFA's).
    """
    from nasforge.search_spaces import get_space

    p = Path(file)
    if not p.is_file():
        raise InvalidInputError(f"OFA predictor file {p} does not exist; pass acc_predictor.pth")
    state = check_ofa_state(load_weights_only(p), str(p))
    names = get_space(space).encoding_names()
    pred = OFAAccuracyPredictor(feature_names=names, space=space).set_state(state)
    return pred.save(out)

