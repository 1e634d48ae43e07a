"""Latency tables: the three import formats and their error messages."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from nasforge.errors import InvalidInputError
from nasforge.hardware_models import LatencyEntry
from nasforge.hardware_models import LatencyTable
from nasforge.hardware_models import read_table

OFA_YAML = """\
Conv-input:224x224x3-output:112x112x24:
  count: 50
  mean: 1.5
  std: 0.1
expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:3-stride:2-idskip:0-se:0-hs:0:
  count: 50
  mean: 2.25
  std: 0.05
Logits-input:1x1x1280-output:1000: {count: 10, mean: 0.2, std: 0.01}
"""


def test_nnmeter_json(tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text('{"transffn_7_128_2_hard_swish_ln": 0.5, "mbpool_4_160_1984_6_hard_swish": 1}')
    t = read_table(p, "nnmeter-hybrid")
    assert t["mbpool_4_160_1984_6_hard_swish"].mean == 1.0
    assert math.isnan(t["transffn_7_128_2_hard_swish_ln"].std)


def test_ofa_yaml(tmp_path: Path) -> None:
    p = tmp_path / "t.yaml"
    p.write_text(OFA_YAML)
    t = read_table(p, "ofa-yaml")
    assert len(t) == 3
    e = t["expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:3-stride:2-idskip:0"
          "-se:0-hs:0"]
    assert (e.mean, e.std, e.count) == (2.25, 0.05, 50)


def test_csv_roundtrip_is_exact(tmp_path: Path) -> None:
    t = LatencyTable({"a_1": LatencyEntry(0.1 + 0.2, 0.01, 5), "b_2": LatencyEntry(3.0)})
    t.write_csv(tmp_path / "t.csv")
    back = read_table(tmp_path / "t.csv", "csv")
    assert back["a_1"] == t["a_1"]
    assert back["b_2"].mean == 3.0 and math.isnan(back["b_2"].std)


@pytest.mark.parametrize(("fmt", "text", "needle"), [
    ("nnmeter-hybrid", '{"conv_1": 1.0, "conv_2": "fast"}', "key 'conv_2'"),
    ("nnmeter-hybrid", '{"conv_1": 1.0, "conv_2": -3}', "key 'conv_2'"),
    ("nnmeter-hybrid", '{"conv_1": 1.0,\n "conv_2": }', "line 2"),
    ("ofa-yaml", "Conv-input:1x1x3-output:1x1x8: {count: 1, std: 0.1}\n", "'mean'"),
    ("csv", "key,mean_ms,std_ms,count\nconv_1,1.0,,\nconv_2,abc,,\n", "line 3"),
    ("csv", "key,mean_ms\nconv_1,1.0\nconv_1,2.0\n", "line 3"),
    ("csv", "name,ms\nconv_1,1.0\n", "line 1"),
])
def test_malformed_names_file_and_place(tmp_path: Path, fmt: str, text: str,
                                        needle: str) -> None:
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(InvalidInputError) as e:
        read_table(p, fmt)
    assert str(p) in str(e.value) and needle in str(e.value)


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="nnmeter-hybrid, ofa-yaml, csv"):
        read_table(tmp_path / "x", "tflite")
