"""The predictor contract: ``fit(X, y)``, ``predict(X) -> Prediction``, ``save`` / ``load``.

Call protocol (every predictor):

1. Construct with hyper-parameters as keyword arguments, including ``seed`` (the only source of
   randomness; two predictors built with the same arguments and fitted on the same data predict
   the same numbers).
2. ``fit(X, y)`` with ``X: (n, d)`` float features (e.g. ``SearchSpace.encode_many``) and
   ``y: (n,)`` targets; it returns ``self``. Fitting again starts from scratch.
3. ``predict(X)`` with ``X: (m, d)`` returns a :class:`Prediction` with ``mean: (m,)`` and
   ``std: (m,)`` where the model has an uncertainty, else ``None``.
4. ``save(path)`` writes a directory in a version-stable, pickle-free format (XGBoost JSON,
   safetensors + JSON, plain JSON / ``.npz`` arrays); ``BasePredictor.load(path)`` (or
   ``ConcretePredictor.load(path)``) restores a predictor whose predictions equal the saved one's.

Subclasses implement ``_fit``, ``_predict``, ``_save_state`` and ``_load_state``; input checks,
the fitted flag and the manifest (``predictor.json``) are handled here.

Example:
    >>> import tempfile
    >>> from nasforge.predictors import GBDTPredictor
    >>> X = np.random.default_rng(0).random((40, 3)); y = X.sum(axis=1)
    >>> model = GBDTPredictor(n_estimators=20).fit(X, y)
    >>> again = BasePredictor.load(model.save(tempfile.mkdtemp()))
    >>> type(again).__name__, bool((again.predict(X).mean == model.predict(X).mean).all())
    ('GBDTPredictor', True)
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import ClassVar
from typing import TypeVar

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.errors import NasforgeError
from nasforge.validation import check_inside
from nasforge.validation import parse_structured
from nasforge.validation import read_text

__all__ = ["MANIFEST", "BasePredictor", "NotFittedError", "Prediction"]

#: Name of the manifest file every saved predictor directory holds.
MANIFEST = "predictor.json"
FORMAT_VERSION = 1

P = TypeVar("P", bound="BasePredictor")


class NotFittedError(NasforgeError, RuntimeError):
    """``predict`` or ``save`` was called before ``fit``."""


@dataclass(frozen=True)
class Prediction:
    """What a predictor returns.

    Attributes:
        mean: (m,) predicted values.
        std: (m,) predictive standard deviation, or ``None`` when the model has none.
    """

    mean: np.ndarray
    std: np.ndarray | None = None


class BasePredictor(abc.ABC):
    """Base class of every predictor (see the module docstring for the call protocol).

    Args:
        seed: seeds every random choice the model makes.
    """

    #: Registered name, set by :func:`~nasforge.predictors.registry.register_predictor`.
    name: ClassVar[str] = ""

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.n_features_: int | None = None
        #: The search space the predictor was fitted for (recorded by :meth:`save`).
        self.fitted_space: str | None = None

    # ---- to implement ----------------------------------------------------------------------
    @abc.abstractmethod
    def get_config(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON-able) that rebuild an unfitted twin."""

    @abc.abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit on checked ``X: (n, d)`` float64 and ``y: (n,)`` float64."""

    @abc.abstractmethod
    def _predict(self, X: np.ndarray) -> Prediction:
        """Predict on checked ``X: (m, d)`` float64."""

    @abc.abstractmethod
    def _save_state(self, path: Path) -> dict[str, Any]:
        """Write the fitted state into directory ``path``; return JSON-able extra metadata."""

    @abc.abstractmethod
    def _load_state(self, path: Path, meta: dict[str, Any]) -> None:
        """Restore the fitted state written by :meth:`_save_state` (``meta`` is its return)."""

    # ---- the public protocol ---------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run."""
        return self.n_features_ is not None

    def fit(self: P, X: np.ndarray, y: np.ndarray) -> P:
        """Fit the model.

        Args:
            X: (n, d) features.
            y: (n,) targets.

        Returns:
            ``self``.

        Raises:
            InvalidInputError: shapes disagree, fewer than 2 rows, or non-finite values.
        """
        Xc = _as_matrix(X, "X")
        yc = np.asarray(y, dtype=np.float64)
        if yc.ndim != 1 or yc.shape[0] != Xc.shape[0]:
            raise InvalidInputError(
                f"y must have shape (n,) with n = len(X) = {Xc.shape[0]}, got shape {yc.shape}; "
                "pass one target per row of X"
            )
        if Xc.shape[0] < 2:
            raise InvalidInputError(f"fit needs at least 2 rows, got {Xc.shape[0]}")
        if not np.all(np.isfinite(yc)):
            raise InvalidInputError("y contains NaN or inf; drop those rows before fitting")
        self._fit(Xc, yc)
        self.n_features_ = Xc.shape[1]
        return self

    def predict(self, X: np.ndarray) -> Prediction:
        """Predict.

        Args:
            X: (m, d) features, ``d`` as in :meth:`fit`.

        Returns:
            :class:`Prediction` with ``mean: (m,)`` and ``std: (m,)`` or ``None``.

        Raises:
            NotFittedError: :meth:`fit` has not run.
            InvalidInputError: ``X`` is not 2-D with ``d`` columns, or has non-finite values.
        """
        Xc = self._check_predict_input(X)
        return self._predict(Xc)

    def save(self, path: str | Path, space: str | None = None) -> Path:
        """Write the fitted predictor into directory ``path`` (created if missing).

        Args:
            path: the directory.
            space: the search space the features encode (default :attr:`fitted_space`);
                recorded in the manifest, so that a search on another space refuses it.

        Returns:
            The directory.

        Raises:
            NotFittedError: nothing to save yet.
        """
        self._require_fitted("save")
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        state = self._save_state(out)
        manifest = {
            "predictor": self.name,
            "format_version": FORMAT_VERSION,
            "config": self.get_config(),
            "n_features": self.n_features_,
            "state": state,
        }
        space = space or self.fitted_space
        if space is not None:
            manifest["space"] = self.fitted_space = str(space)
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        return out

    @classmethod
    def load(cls: type[P], path: str | Path) -> P:
        """Restore a predictor saved by :meth:`save`.

        Called on :class:`BasePredictor`, the class is looked up by the saved name; called on a
        concrete class, the saved name must match it.

        Raises:
            InvalidInputError: ``path`` holds no readable manifest.
            IncompatibleComponentsError: the file is of another predictor or format version.
        """
        p = Path(path)
        if not p.is_dir():
            raise InvalidInputError(
                f"{p} is not a saved predictor folder ({'a file' if p.exists() else 'missing'}); "
                "give the folder predictor.save(path) wrote")
        try:
            meta = parse_structured(read_text(p / MANIFEST, "predictor manifest"),
                                    str(p / MANIFEST), kind="json")
        except InvalidInputError as e:
            raise InvalidInputError(f"{p} is not a saved predictor: {e}") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("predictor"), str) or (
                not isinstance(meta.get("config"), dict)):
            raise InvalidInputError(
                f"{p / MANIFEST} must be a JSON object with a 'predictor' name and a 'config' "
                "mapping; save one with predictor.save(path)")
        name, config = meta["predictor"], meta["config"]
        if meta.get("format_version") != FORMAT_VERSION:
            raise IncompatibleComponentsError(
                f"{p}: predictor format_version {meta.get('format_version')!r}, this nasforge "
                f"reads {FORMAT_VERSION}; re-save it with a matching version"
            )
        n_features = meta.get("n_features")
        if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
            raise InvalidInputError(
                f"{p / MANIFEST}: n_features must be an integer >= 1, got {n_features!r}")
        state = meta.get("state", {})
        if not isinstance(state, dict):
            raise InvalidInputError(f"{p / MANIFEST}: state must be a mapping, got {state!r}")
        for key, value in state.items():  # stored file names stay inside the folder
            if key.endswith("_file"):
                check_inside(p, value, f"{p / MANIFEST}: state.{key}")
        target: type[BasePredictor] = cls
        if cls is BasePredictor or getattr(cls, "name", "") == "":
            from nasforge.predictors.registry import PREDICTORS

            target = PREDICTORS.get(name)
        elif name != cls.name:
            raise IncompatibleComponentsError(
                f"{p} holds a {name!r} predictor, not {cls.name!r}; load it with "
                "BasePredictor.load(path)"
            )
        try:
            obj = target(**config)
        except TypeError as e:  # a key the predictor does not take
            raise InvalidInputError(f"{p / MANIFEST}: config does not fit a {name!r} predictor: "
                                    f"{e}") from None
        if not isinstance(obj, cls):  # a registered class that does not subclass the caller
            raise IncompatibleComponentsError(
                f"{p} holds a {name!r} predictor ({type(obj).__name__}), which is not a "
                f"{cls.__name__}; load it with BasePredictor.load(path)"
            )
        obj.n_features_ = n_features  # the shapes _load_state checks follow from it
        obj.fitted_space = _recorded_space(p, meta, obj.fitted_space)
        try:
            obj._load_state(p, state)
        except NasforgeError:
            raise
        except Exception as e:  # xgboost / safetensors / torch reading a damaged file
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise InvalidInputError(
                f"{p}: the {name!r} predictor's files are missing or damaged ({first[:200]}); "
                "re-save it with predictor.save(path)") from None
        return obj

    # ---- helpers -----------------------------------------------------------------------------
    def _require_fitted(self, what: str) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"{self.name or type(self).__name__} predictor is not fitted; call fit(X, y) "
                f"before {what}()"
            )

    def _check_predict_input(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted("predict")
        Xc = _as_matrix(X, "X")
        if Xc.shape[1] != self.n_features_:
            raise InvalidInputError(
                f"X has {Xc.shape[1]} columns but the predictor was fitted on {self.n_features_}; "
                "encode with the same space/encoding as at fit time"
            )
        return Xc

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _recorded_space(p: Path, meta: dict[str, Any], default: str | None) -> str | None:
    """The manifest's ``space`` (``default`` when it records none)."""
    space = meta.get("space", default)
    if space is not None and not isinstance(space, str):
        raise InvalidInputError(f"{p / MANIFEST}: space must be a space name, got {space!r}")
    return space


def _as_matrix(X: np.ndarray, what: str) -> np.ndarray:
    try:
        Xc = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"{what} must be a numeric (n, d) array: {e}") from None
    if Xc.ndim != 2:
        raise InvalidInputError(
            f"{what} must be 2-D (n, d), got shape {Xc.shape}; reshape a single row with "
            "x[None, :]"
        )
    if not np.all(np.isfinite(Xc)):
        raise InvalidInputError(f"{what} contains NaN or inf; encode every row with finite values")
    return Xc
