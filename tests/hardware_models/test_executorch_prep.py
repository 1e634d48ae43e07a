"""Preparing a graph for the XNNPACK delegate: same numbers, one partition, nothing outside.

The tiny transformer pair (attention with a relative-position bias + FFN, as ElasticViT's)
lowers in a few seconds each way.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.hardware_models.profiling._executorch_prep import XnnpackLayerNorm
from nasforge.hardware_models.profiling._executorch_prep import xnnpack_ready
from nasforge.supernet.static._layers import FFN
from nasforge.supernet.static._layers import Attention
from nasforge.supernet.static._layers import ElasticViTHead


@pytest.mark.parametrize("affine", [True, False])
def test_xnnpack_layer_norm_matches_layer_norm(affine: bool) -> None:
    g = torch.Generator().manual_seed(0)
    ln = nn.LayerNorm(24, elementwise_affine=affine)
    if affine:
        with torch.no_grad():
            ln.weight.copy_(torch.randn(24, generator=g))
            ln.bias.copy_(torch.randn(24, generator=g))
    x = 3.0 + 5.0 * torch.randn(2, 7, 24, generator=g)
    torch.testing.assert_close(XnnpackLayerNorm(ln)(x), ln(x), atol=1e-5, rtol=1e-5)


def _tiny(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(Attention(16, 2, 8, 2, "softmax", bias_grid=4), FFN(16, 32),
                         ElasticViTHead(16, 24, 32, 5)).eval()


def test_xnnpack_ready_copies_and_keeps_the_state_dict() -> None:
    model = _tiny()
    ready = xnnpack_ready(model)
    assert ready is not model and isinstance(model[0].norm, nn.LayerNorm)
    assert isinstance(ready[0].norm, XnnpackLayerNorm) and isinstance(ready[1].norm,
                                                                      XnnpackLayerNorm)
    assert list(ready.state_dict()) == list(model.state_dict())
    x = torch.randn(1, 16, 4, 4)
    torch.testing.assert_close(ready(x), model(x), atol=1e-5, rtol=1e-5)
    conv = nn.Sequential(nn.Conv2d(3, 4, 3))
    assert xnnpack_ready(conv) is conv


def test_prepared_lowering_is_one_partition_with_the_same_logits() -> None:
    pytest.importorskip("executorch")
    from nasforge.hardware_models.profiling._executorch import lower_module
    from nasforge.hardware_models.profiling._executorch import method_call

    model = _tiny()
    x = torch.randn(1, 16, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x).numpy()
    raw = lower_module(model, (x,), prepare=False)
    prepared = lower_module(model, (x,))
    assert raw.outside.get("aten.native_layer_norm.default") == 2
    assert prepared.outside == {} and prepared.delegates == 1 < raw.delegates
    for low in (raw, prepared):
        _, run = method_call(low.content)
        assert float(np.abs(run(x.numpy()) - ref).max()) <= 1e-5
    assert isinstance(model[0].norm, nn.LayerNorm)  # the model itself is unchanged


def test_padded_window_attention_lowers_loads_and_matches() -> None:
    """Window attention on a padded map: at most 6-D tensors (XNNPACK), the mask a constant."""
    pytest.importorskip("executorch")
    from nasforge.hardware_models.profiling._executorch import lower_module
    from nasforge.hardware_models.profiling._executorch import method_call

    torch.manual_seed(0)
    block = Attention(16, 2, 8, 2, "window", window=3, bias_grid=3).eval()
    x = torch.randn(1, 16, 4, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = block(x).numpy()
    low = lower_module(block, (x,))
    assert low.outside == {} and low.delegates == 1
    _, run = method_call(low.content)
    assert float(np.abs(run(x.numpy()) - ref).max()) <= 1e-5
