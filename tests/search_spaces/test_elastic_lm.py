"""``elastic_lm``: exact size, nested FFN widths, closed-form params/FLOPs, decode-step costs
and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.errors import InvalidArchitectureError
from nasforge.search_spaces import ElasticLMArch
from nasforge.search_spaces import get_space
from nasforge.search_spaces._transformer_blocks import decode_step_flops
from nasforge.search_spaces.block import block_flops


def test_size_is_the_closed_form() -> None:
    space = get_space("elastic_lm")
    per_layer = 4 * 2  # FFN widths x heads
    assert space.size() == 3 * 3 * sum(per_layer**d for d in (2, 3, 4))  # embed, context, depth


def test_size_equals_the_distinct_archs_of_the_index_grid() -> None:
    space = get_space("elastic_lm")
    grid = np.indices(tuple(space.index_sizes().tolist())).reshape(space.num_choices(), -1).T
    archs = space.from_indices(space.repair_indices(grid))
    assert len({a.arch_id for a in archs}) == space.size()
    # every row is valid (inactive columns are don't-cares); enumeration keeps canonical ones
    assert space.valid_rows(grid).all()
    rows = space.enumerate_indices(10**6)
    assert rows is not None and len(rows) == space.size() < len(grid)
    assert len({a.arch_id for a in space.from_indices(rows)}) == space.size()
    assert space.enumerate_indices(space.size() - 1) is None


def test_ffn_widths_are_matformers_nested_fractions() -> None:
    space = get_space("elastic_lm")
    widths = space.index_options()[space.columns("ffn_embed_dim").start]
    top = max(widths)
    assert top == 4 * max(space.index_options()[space.columns("embed_dim").start])
    assert [top // w for w in widths] == [8, 4, 2, 1]


def _params(a: ElasticLMArch, vocab: int) -> int:
    e = a.embed_dim
    total = vocab * e + a.context_length * e + 2 * e  # tied table, positions, final LN
    for f, h in zip(a.ffn_embed_dim, a.self_attention_heads, strict=True):
        w = 32 * h
        total += 3 * (e * w + w) + w * e + e + 2 * e  # attention + its LN
        total += e * f + f + f * e + e + 2 * e  # FFN + its LN
    return total


def _flops(a: ElasticLMArch, vocab: int) -> int:
    t, e = a.context_length, a.embed_dim
    total = t * e * vocab
    for f, h in zip(a.ffn_embed_dim, a.self_attention_heads, strict=True):
        w = 32 * h
        total += 4 * t * e * w + 2 * t * t * w + 2 * t * e * f
    return total


@pytest.mark.parametrize("vocab", [259, 1000])
def test_params_and_flops_equal_a_closed_form(vocab: int) -> None:
    space = get_space("elastic_lm", vocab_size=vocab)
    rng = np.random.default_rng(0)
    for a in [space.min_arch(), space.max_arch(), *(space.sample(rng) for _ in range(20))]:
        assert space.params(a) == _params(a, vocab)  # type: ignore[arg-type]
        assert space.flops(a) == _flops(a, vocab)  # type: ignore[arg-type]


def test_decode_steps_sum_to_the_cached_generation_cost() -> None:
    space = get_space("elastic_lm")
    a = space.max_arch()
    blocks = space.blocks(a)
    t = a.context_length
    steps = sum(decode_step_flops(b, p) for p in range(t) for b in blocks)
    full = sum(block_flops(b) for b in blocks)
    attn = [b for b in blocks if b.kind == "tf_self_attn"]
    # a full forward computes the T x T score matrix; the cached steps the triangle only
    saved = sum(2 * b.mid * (t * t - t * (t + 1) // 2) for b in attn)
    assert steps == full - saved


def test_too_many_layers_is_refused_naming_the_allowed_set(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = get_space("elastic_lm")
    d = space.max_arch().to_dict()
    d["layer_num"] = 6
    d["ffn_embed_dim"] = d["ffn_embed_dim"] + [512, 512]
    d["self_attention_heads"] = d["self_attention_heads"] + [4, 4]
    with pytest.raises(InvalidArchitectureError, match=r"layer_num = 6 is not allowed; allowed: "
                                                       r"\{2, 3, 4\}"):
        space.arch_from_dict(d)
    bad = tmp_path / "lm.yaml"
    bad.write_text(yaml.safe_dump(d))
    assert run_app(app, ["arch", "describe", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "layer_num = 6" in err, err
    d = space.max_arch().to_dict()
    d["ffn_embed_dim"] = [512, 300, 512, 512]
    with pytest.raises(InvalidArchitectureError, match=r"ffn_embed_dim\[1\] = 300"):
        space.arch_from_dict(d)
