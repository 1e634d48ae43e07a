"""The predictor registry: ``@register_predictor("name")``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nasforge.registry import Registry

if TYPE_CHECKING:
    from nasforge.predictors.base import BasePredictor

__all__ = ["PREDICTORS", "register_predictor"]

#: name -> predictor class (constructed with keyword hyper-parameters, ``seed`` among them).
PREDICTORS: Registry[type[BasePredictor]] = Registry("predictor")


def register_predictor(name: str) -> Callable[[type[BasePredictor]], type[BasePredictor]]:
    """Class decorator: register a predictor class as ``name`` (sets ``cls.name``)."""

    def deco(cls: type[BasePredictor]) -> type[BasePredictor]:
        cls.name = name
        PREDICTORS.add(name, cls)
        return cls

    return deco
