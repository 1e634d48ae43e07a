"""What an architecture is: spaces, architectures, blocks, FLOPs and params.

Importing this package registers the built-in spaces: ``elasticvit``, ``elasticvit_efficient``,
``ofa_mbv3``, ``ofa_mbv3_w12``, ``nasbench201``, ``nasbench201_net``, the language spaces
``hat_wmt14ende``, ``hat_wmt14enfr``, ``hat_wmt19ende``, ``hat_iwslt14deen`` and ``elastic_lm``.
A variant of a space comes from options of :func:`get_space`, and its ``.name`` is the
registered name:

Example:
    >>> get_space("elasticvit", num_classes=10).name
    'elasticvit'
"""

from __future__ import annotations

from nasforge.search_spaces import _elastic_lm  # noqa: F401  (registers the spaces)
from nasforge.search_spaces import _elasticvit  # noqa: F401  (registers the spaces)
from nasforge.search_spaces import _hat  # noqa: F401  (registers the spaces)
from nasforge.search_spaces import _nasbench201  # noqa: F401  (registers the spaces)
from nasforge.search_spaces import _nasbench201_net  # noqa: F401  (registers the spaces)
from nasforge.search_spaces import _ofa_mbv3  # noqa: F401  (registers the spaces)
from nasforge.search_spaces._arch_text import ArchText
from nasforge.search_spaces._arch_text import RowText
from nasforge.search_spaces._elastic_lm import ElasticLMArch
from nasforge.search_spaces._elastic_lm import ElasticLMSpace
from nasforge.search_spaces._elasticvit import ElasticViTArch
from nasforge.search_spaces._elasticvit import ElasticViTSpace
from nasforge.search_spaces._hat import HATArch
from nasforge.search_spaces._hat import HATSpace
from nasforge.search_spaces._nasbench201 import NB201Space
from nasforge.search_spaces._nasbench201_cell import NB201Arch
from nasforge.search_spaces._nasbench201_cell import arch_from_nb201_str
from nasforge.search_spaces._nasbench201_cell import canonical_id
from nasforge.search_spaces._nasbench201_net import NB201NetArch
from nasforge.search_spaces._nasbench201_net import NB201NetSpace
from nasforge.search_spaces._ofa_mbv3 import OFAArch
from nasforge.search_spaces._ofa_mbv3 import OFAMobileNetV3Space
from nasforge.search_spaces._ofa_mbv3_io import arch_from_ofa_config
from nasforge.search_spaces._ofa_mbv3_io import arch_to_ofa_config
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.base import SearchSpace
from nasforge.search_spaces.block import Block
from nasforge.search_spaces.block import block_flops
from nasforge.search_spaces.block import block_params
from nasforge.search_spaces.choice import Choice
from nasforge.search_spaces.choice_space import ChoiceSpace
from nasforge.search_spaces.codec import IndexCodec
from nasforge.search_spaces.registry import SPACES
from nasforge.search_spaces.registry import get_space
from nasforge.search_spaces.registry import register_space

__all__ = [
    "SPACES",
    "Arch",
    "ArchText",
    "Block",
    "Choice",
    "ChoiceSpace",
    "ElasticLMArch",
    "ElasticLMSpace",
    "ElasticViTArch",
    "ElasticViTSpace",
    "HATArch",
    "HATSpace",
    "IndexCodec",
    "NB201Arch",
    "NB201NetArch",
    "NB201NetSpace",
    "NB201Space",
    "OFAArch",
    "OFAMobileNetV3Space",
    "RowText",
    "SearchSpace",
    "arch_from_nb201_str",
    "arch_from_ofa_config",
    "arch_to_ofa_config",
    "block_flops",
    "block_params",
    "canonical_id",
    "get_space",
    "register_space",
]
