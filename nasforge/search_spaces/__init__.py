"""What an architecture is: spaces, architectures, blocks, FLOPs and params.

Importing this package registers the built-in spaces: ``elasticvit``, ``elasticvit_efficient``,
``ofa_mbv3``, ``ofa_mbv3_w12`` and ``nasbench201``.
"""

from __future__ import annotations

from nasforge.search_spaces import _elasticvit  # noqa: F401  (registers the spaces)
from nasforge.search_spaces._elasticvit import ElasticViTArch
from nasforge.search_spaces._elasticvit import ElasticViTSpace
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.base import Choice
from nasforge.search_spaces.base import ChoiceSpace
from nasforge.search_spaces.base import SearchSpace
from nasforge.search_spaces.block import Block
from nasforge.search_spaces.block import block_flops
from nasforge.search_spaces.block import block_params
from nasforge.search_spaces.registry import SPACES
from nasforge.search_spaces.registry import get_space
from nasforge.search_spaces.registry import register_space

__all__ = [
    "SPACES",
    "Arch",
    "Block",
    "Choice",
    "ChoiceSpace",
    "ElasticViTArch",
    "ElasticViTSpace",
    "SearchSpace",
    "block_flops",
    "block_params",
    "get_space",
    "register_space",
]
