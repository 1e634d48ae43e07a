"""Supernets of the ElasticViT spaces: builders for their block kinds and one spec per space.

Papers:
    ElasticViT: Conflict-aware Supernet Training for Deploying Fast Vision Transformer on
    Diverse Mobile Devices, https://arxiv.org/abs/2303.09730
    Neural Architecture Search on Efficient Transformers and Beyond,
    https://arxiv.org/abs/2207.13955

Both spaces share one generic :class:`~nasforge.supernet.base.Supernet`; they differ only in
their :class:`~nasforge.supernet.base.SupernetSpec` row: ``elasticvit_efficient`` supports the
``linear`` and ``window`` attention kinds on the same q/k/v/dw/proj weights.
"""

from __future__ import annotations

from nasforge.search_spaces._elasticvit import ATTENTION_KINDS
from nasforge.search_spaces._elasticvit import WINDOW
from nasforge.supernet.base import SupernetSpec
from nasforge.supernet.base import register_dynamic_builder
from nasforge.supernet.layers import DynamicConvLayer
from nasforge.supernet.layers import DynamicElasticViTHead
from nasforge.supernet.layers import DynamicFFN
from nasforge.supernet.layers import DynamicMBConv
from nasforge.supernet.layers_attention import DynamicAttention
from nasforge.supernet.registry import register_supernet

__all__: list[str] = []


# every dynamic layer class is its own builder: ``cls(max_block, spec)``
register_dynamic_builder("firstconv")(DynamicConvLayer)
register_dynamic_builder("mbconv", "transds")(DynamicMBConv)
register_dynamic_builder("attention")(DynamicAttention)
register_dynamic_builder("ffn")(DynamicFFN)
register_dynamic_builder("head")(DynamicElasticViTHead)


register_supernet("elasticvit", SupernetSpec(
    attention_kinds=("softmax",), window=WINDOW,
    description="ElasticViT supernet (softmax attention)",
))
register_supernet("elasticvit_efficient", SupernetSpec(
    attention_kinds=ATTENTION_KINDS, window=WINDOW,
    description="ElasticViT supernet; softmax/linear/window attention share q/k/v/dw/proj",
))
