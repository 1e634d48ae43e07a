"""FLOPs (MACs) and params from blocks equal a count over the built torch module.

The counter is PyTorch's own ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per MAC;
it counts convolutions, matmuls and linear layers, not element-wise ops), applied to
``build_static(space, arch)`` at the arch's resolution: the min, max and 20 random archs of every
vision space.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nasforge.search_spaces import SPACES
from nasforge.search_spaces import get_space
from nasforge.supernet.static import build_static

VISION = [n for n in SPACES.list()
          if get_space(n).has_model and get_space(n).modality == "image"]


def _count(model: torch.nn.Module, resolution: int, device: str = "cpu") -> int:
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(torch.zeros(1, 3, resolution, resolution, device=device))
    return fc.get_total_flops() // 2


@pytest.mark.parametrize("name", VISION)
def test_blocks_equal_torch_count(name: str) -> None:
    torch.manual_seed(0)
    space = get_space(name)
    rng = np.random.default_rng(2024)
    archs = [space.min_arch(), space.max_arch(), *(space.sample(rng) for _ in range(20))]
    for i, arch in enumerate(archs):
        # min and max run for real; the 20 random archs on the "meta" device, where torch
        # dispatches every op with shapes only (the counter sees the same calls, no arithmetic)
        device = "cpu" if i < 2 else "meta"
        with torch.device(device):
            model = build_static(space, arch).eval()
        res = arch.resolution  # type: ignore[attr-defined]
        assert _count(model, res, device) == space.flops(arch), arch
        assert sum(p.numel() for p in model.parameters()) == space.params(arch), arch


@pytest.mark.parametrize("name", VISION)
def test_model_runs_at_every_resolution_of_the_space(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(5)
    res_choices = next(c.options[0] for c in space.choices() if c.field == "resolution")  # type: ignore[attr-defined]
    for r in [*sorted(set(res_choices))[:: max(1, len(res_choices) // 4)], max(res_choices)]:
        arch = space.sample(rng).replace(resolution=r)
        space.validate(arch)
        out = build_static(space, arch, num_classes=7).eval()(torch.randn(2, 3, r, r))
        assert out.shape == (2, 7)
        assert torch.isfinite(out).all()
