"""Weight-shared supernets: dynamic ops, set_active/extract, BN recalibration.

Importing this package registers the supernets of ``elasticvit``, ``elasticvit_efficient``,
``ofa_mbv3``, ``ofa_mbv3_w12`` and ``nasbench201_net`` (one :class:`SupernetSpec` row each in
:data:`SUPERNETS`), and the language supernets of ``elastic_lm`` and the ``hat_*`` spaces
(:class:`ElasticLMSupernet`, :class:`HATSupernet`; ``num_classes`` is their vocabulary).
"""

from __future__ import annotations

# ---- supernet core: ops, layers, Supernet, registry, BN (owner: supernet core) ---------------
from nasforge.supernet import _elastic_lm  # noqa: F401  (registers the elastic_lm supernet)
from nasforge.supernet import _elasticvit  # noqa: F401  (registers builders and specs)
from nasforge.supernet import _hat  # noqa: F401  (registers the hat_* supernets)
from nasforge.supernet import _nb201  # noqa: F401  (registers builders and specs)
from nasforge.supernet import _ofa  # noqa: F401  (registers builders and specs)
from nasforge.supernet._elastic_lm import ElasticLMSupernet
from nasforge.supernet._hat import HATSupernet
from nasforge.supernet._transformer import TransformerSupernet
from nasforge.supernet.base import DYNAMIC_BUILDERS
from nasforge.supernet.base import DynamicLayer
from nasforge.supernet.base import NoActiveSubnetError
from nasforge.supernet.base import Supernet
from nasforge.supernet.base import SupernetSpec
from nasforge.supernet.base import register_dynamic_builder
from nasforge.supernet.bn import recalibrate_bn
from nasforge.supernet.kv_cache import KVCache
from nasforge.supernet.registry import SUPERNETS
from nasforge.supernet.registry import build_supernet
from nasforge.supernet.registry import register_supernet
from nasforge.supernet.static._hat import EncoderOut
from nasforge.supernet.static._hat import StaticHAT
from nasforge.supernet.static._lm import StaticLM

# ---- end supernet core -------------------------------------------------------------------------

__all__ = [
    # ---- supernet core (and language supernets) ----
    "DYNAMIC_BUILDERS",
    "SUPERNETS",
    "DynamicLayer",
    "ElasticLMSupernet",
    "EncoderOut",
    "HATSupernet",
    "KVCache",
    "NoActiveSubnetError",
    "StaticHAT",
    "StaticLM",
    "Supernet",
    "SupernetSpec",
    "TransformerSupernet",
    "build_supernet",
    "recalibrate_bn",
    "register_dynamic_builder",
    "register_supernet",
    # ---- end supernet core ----
]

# ---- supernet training: samplers, losses, trainer, checkpoints (owner: training) -------------
from nasforge.supernet.checkpoint import RunConfig
from nasforge.supernet.checkpoint import load_supernet
from nasforge.supernet.checkpoint import read_checkpoint
from nasforge.supernet.evaluate import SubnetAccuracy
from nasforge.supernet.evaluate import evaluate_subnet
from nasforge.supernet.training.quick import train_quick_supernet
from nasforge.supernet.training.recipe import DEFAULT_RECIPE
from nasforge.supernet.training.recipe import Recipe
from nasforge.supernet.training.recipe import load_recipe
from nasforge.supernet.training.samplers import SAMPLERS
from nasforge.supernet.training.samplers import BaseSampler
from nasforge.supernet.training.samplers import create_sampler
from nasforge.supernet.training.sliced_optim import SlicedAdamW
from nasforge.supernet.training.sliced_optim import SlicedSGD
from nasforge.supernet.training.sliced_optim import SliceGrads
from nasforge.supernet.training.train import train_supernet
from nasforge.supernet.training.trainer import SupernetTrainer
from nasforge.supernet.training.trainer import TrainConfig

__all__ += [
    "DEFAULT_RECIPE",
    "SAMPLERS",
    "BaseSampler",
    "Recipe",
    "RunConfig",
    "SliceGrads",
    "SlicedAdamW",
    "SlicedSGD",
    "SubnetAccuracy",
    "SupernetTrainer",
    "TrainConfig",
    "create_sampler",
    "evaluate_subnet",
    "load_recipe",
    "load_supernet",
    "read_checkpoint",
    "train_quick_supernet",
    "train_supernet",
]
# ---- end supernet training ---------------------------------------------------------------------
