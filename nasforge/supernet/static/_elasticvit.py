"""Static-module builders of the ElasticViT block kinds (``firstconv``, ``mbconv``,
``transds``, ``attention``, ``ffn``, ``head``)."""

from __future__ import annotations

from torch import nn

from nasforge.search_spaces.block import Block
from nasforge.supernet.static._layers import FFN
from nasforge.supernet.static._layers import Attention
from nasforge.supernet.static._layers import ConvBNAct
from nasforge.supernet.static._layers import ElasticViTHead
from nasforge.supernet.static._layers import MBConv
from nasforge.supernet.static.base import register_block_builder

__all__: list[str] = []


@register_block_builder("firstconv")
def _firstconv(b: Block) -> nn.Module:
    return ConvBNAct(b.cin, b.cout, b.kernel, b.stride, act=b.act)


@register_block_builder("mbconv")
@register_block_builder("transds")
def _mbconv(b: Block) -> nn.Module:
    return MBConv(b.cin, b.cout, b.mid, b.kernel, b.stride, b.expand, b.se_mid, b.act, b.shortcut)


@register_block_builder("attention")
def _attention(b: Block) -> nn.Module:
    return Attention(b.cin, b.heads, b.head_dim, b.v_scale, b.attn, b.window, b.bias_grid)


@register_block_builder("ffn")
def _ffn(b: Block) -> nn.Module:
    return FFN(b.cin, b.mid)


@register_block_builder("head")
def _head(b: Block) -> nn.Module:
    return ElasticViTHead(b.cin, b.mid, b.out_dim, b.classes)
