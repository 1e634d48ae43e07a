"""Static PyTorch models built from blocks: the twins that supernet extraction fills.

:func:`build_static` turns ``space.blocks(arch)`` into a plain ``nn.Sequential``-like
:class:`BlockNet` (or the network registered for the space, e.g. ``nasbench201_net``'s cell
DAG), one module per block, through a registry of block builders keyed by block kind. A new
block kind registers its builder with :func:`register_block_builder`, a space whose blocks do
not run in sequence its network with :func:`register_static_builder`.

Example:
    >>> from nasforge.search_spaces import get_space
    >>> STATIC_BUILDERS.list()
    ['nasbench201_net']
    >>> space = get_space("nasbench201_net")
    >>> type(build_static(space, space.min_arch())).__name__
    'NB201Network'
"""

from __future__ import annotations

from nasforge.supernet.static import _elasticvit  # noqa: F401  (registers the builders)
from nasforge.supernet.static import _nb201  # noqa: F401  (registers the nb201_* builders)
from nasforge.supernet.static import _ofa  # noqa: F401  (registers the ofa_* builders)
from nasforge.supernet.static.base import BLOCK_BUILDERS
from nasforge.supernet.static.base import STATIC_BUILDERS
from nasforge.supernet.static.base import BlockNet
from nasforge.supernet.static.base import build_block
from nasforge.supernet.static.base import build_static
from nasforge.supernet.static.base import register_block_builder
from nasforge.supernet.static.base import register_static_builder

__all__ = [
    "BLOCK_BUILDERS",
    "STATIC_BUILDERS",
    "BlockNet",
    "build_block",
    "build_static",
    "register_block_builder",
    "register_static_builder",
]
