"""Keying: elasticvit blocks reproduce nn-Meter's keys; OFA blocks get OFA's keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nasforge.hardware_models import get_key_scheme
from nasforge.search_spaces import get_space


def test_floor_sizes_transds_and_se_only_in_c2() -> None:
    space = get_space("elasticvit")
    a = space.min_arch().replace(resolution=160)
    keys = get_key_scheme("elasticvit").keys(space.blocks(a))
    assert keys[0] == "firstconv_160_3_16_2_3"
    assert keys[1] == "conv_80_16_16_1_1_hard_swish_3_nose"  # stem: expand 1
    c1 = [k for k in keys if k.startswith("conv_80_16_16_3_2")]
    assert c1 == ["conv_80_16_16_3_2_hard_swish_3_nose"]  # stride-2 layer keyed by input size
    assert any(k.startswith("conv_40_16_16_3_2_hard_swish_3_se") for k in keys)  # C2 has SE
    assert [k for k in keys if k.startswith("transds")] == [
        "transds_20_16_48_2_6", "transds_10_48_80_1_6", "transds_10_80_144_2_6",
        "transds_5_144_160_2_6"]
    # r=160: the model's T4 map is 3x3 (ceil), the table's is 2x2 (floor)
    assert space.blocks(a)[-1].hw_in == 3
    assert keys[-1] == "mbpool_2_160_1984_6_hard_swish"


@pytest.mark.fidelity
def test_every_block_of_random_archs_hits_the_table(lut_path: Path) -> None:
    table = json.loads(lut_path.read_text())
    space, scheme = get_space("elasticvit"), get_key_scheme("elasticvit")
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(200)] + [space.min_arch(), space.max_arch()]
    missing = {k for a in archs for k in scheme.keys(space.blocks(a)) if k not in table}
    assert not missing


def test_ofa_keys() -> None:
    space = get_space("ofa_mbv3")
    a = space.max_arch()
    keys = get_key_scheme("ofa_mbv3").keys(space.blocks(a))
    assert keys[0] == "Conv-input:224x224x3-output:112x112x16"
    assert keys[1] == ("expanded_conv-input:112x112x16-output:112x112x16-expand:16-kernel:3-"
                       "stride:1-idskip:1-se:0-hs:0")
    assert keys[-4:] == ["Conv_1-input:7x7x160-output:7x7x960",
                         "AvgPool2D-input:7x7x960-output:1x1x960",
                         "Conv_2-input:1x1x960-output:1x1x1280",
                         "Logits-input:1x1x1280-output:1000"]
