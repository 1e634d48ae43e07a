"""Zero-cost proxies: accuracy signals from randomly initialised networks (no training).

Importing this package registers ``synflow`` (data-free), ``jacob_cov``, ``snip`` and
``grad_norm`` in :data:`PROXIES`.

Example:
    >>> import numpy as np
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("nasbench201_net")
    >>> archs = [space.max_arch(), space.min_arch()]
    >>> s = score_archs(space, archs, get_proxy("synflow"), seed=0)
    >>> bool(s[0] > s[1])
    True
"""

from __future__ import annotations

from nasforge.proxies._grad_norm import GradNormProxy
from nasforge.proxies._jacob_cov import JacobCovProxy
from nasforge.proxies._snip import SnipProxy
from nasforge.proxies._synflow import SynflowProxy
from nasforge.proxies.base import PROXIES
from nasforge.proxies.base import BaseProxy
from nasforge.proxies.base import Batch
from nasforge.proxies.base import check_proxy_inputs
from nasforge.proxies.base import get_proxy
from nasforge.proxies.base import prunable_weights
from nasforge.proxies.base import register_proxy
from nasforge.proxies.base import score_archs

__all__ = [
    "PROXIES",
    "BaseProxy",
    "Batch",
    "GradNormProxy",
    "JacobCovProxy",
    "SnipProxy",
    "SynflowProxy",
    "check_proxy_inputs",
    "get_proxy",
    "prunable_weights",
    "register_proxy",
    "score_archs",
]
