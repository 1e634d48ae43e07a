"""HAT's SubTransformer spaces: exact size, canonical inactive layers, HAT's features and
counting rules, the HAT YAML round trip and bad input at the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces import HATArch
from nasforge.search_spaces import HATSpace
from nasforge.search_spaces import get_space
from nasforge.search_spaces._hat import HAT_FEATURE_NAMES
from nasforge.search_spaces._hat import HATCfg
from nasforge.search_spaces._hat_io import arch_from_hat_config
from nasforge.search_spaces._hat_io import arch_to_hat_config
from nasforge.search_spaces._hat_io import hat_config_to_yaml
from nasforge.search_spaces._transformer_blocks import decode_flops
from nasforge.search_spaces._transformer_blocks import encoder_flops
from nasforge.search_spaces.io import parse_text

HAT_CSV_DIR = Path("../shared/data/hat_latency")
HAT_NAMES = ("hat_wmt14ende", "hat_wmt14enfr", "hat_wmt19ende", "hat_iwslt14deen")

# A SubTransformer in HAT's YAML layout (the structure of configs/<task>/subtransformer/*.yml);
# its values are those of the published WMT'14 En-De Xeon@137.9ms model, a held-out check of
# the counting rules against HAT's README (30.47 M params, 1.87 GFLOPs), never fitted on.
HAT_YAML = """\
encoder-embed-dim-subtransformer: 512
decoder-embed-dim-subtransformer: 512

encoder-ffn-embed-dim-all-subtransformer: [3072, 3072, 3072, 3072, 3072, 3072]
decoder-ffn-embed-dim-all-subtransformer: [3072, 1024, 1024, 1024, 1024, 1024]

encoder-layer-num-subtransformer: 6
decoder-layer-num-subtransformer: 1

encoder-self-attention-heads-all-subtransformer: [4, 8, 8, 8, 8, 8]
decoder-self-attention-heads-all-subtransformer: [8, 4, 4, 4, 4, 4]
decoder-ende-attention-heads-all-subtransformer: [8, 4, 4, 4, 4, 4]

# -1: the last encoder layer, 1: the last two, 2: the last three
decoder-arbitrary-ende-attn-all-subtransformer: [1, -1, -1, -1, -1, -1]
"""


@pytest.mark.parametrize("name", HAT_NAMES)
def test_size_is_hats_closed_form(name: str) -> None:
    space = get_space(name)
    iwslt = name == "hat_iwslt14deen"
    ffn, heads = 3, 2  # options per layer, both task families
    enc = (ffn * heads) ** 6  # 6 encoder layers, each FFN x heads
    dec = sum((ffn * heads * heads * 3) ** d for d in range(1, 7))  # FFN, 2 heads, arbitrary
    assert space.size() == 2 * 2 * enc * dec
    assert space.cfg.src_len == (23 if iwslt else 30)


def test_size_equals_enumeration_on_a_shrunken_config() -> None:
    cfg = HATCfg("tiny", embed_dims=(512, 640), ffn_dims=(1024, 2048), heads=(4,),
                 encoder_layers=(2, 3), decoder_layers=(1, 2), arbitrary_ende_attn=(-1, 1))
    space = HATSpace("hat_wmt14ende", cfg=cfg)
    rows = space.enumerate_indices(1 << 16)
    assert rows is not None
    distinct = {a.arch_id for a in space.from_indices(rows)}
    assert len(distinct) == len(rows) == space.size() == 4 * (2**2 + 2**3) * (4 + 4**2)


def test_canonical_form_stores_active_layers_only() -> None:
    space = get_space("hat_wmt14ende")
    rng = np.random.default_rng(3)
    idx = space.sample_indices(rng, 200)
    archs = space.from_indices(idx)
    for a, row in zip(archs, idx, strict=True):
        assert isinstance(a, HATArch)
        assert len(a.decoder_ffn_embed_dim) == a.decoder_layer_num
        assert len(a.decoder_arbitrary_ende_attn) == a.decoder_layer_num
        assert len(a.encoder_ffn_embed_dim) == a.encoder_layer_num == 6
        assert space.to_indices([a])[0].tolist() == row.tolist()
    enc = space.encode_many(archs)
    assert np.array_equal(enc, np.stack([space.encode(a) for a in archs]))
    names = space.encoding_names()
    shallow = next(a for a in archs if a.decoder_layer_num < 6)
    e = space.encode(shallow)
    assert e[names.index(f"decoder_ffn_embed_dim[{shallow.decoder_layer_num}]")] == 0.0
    assert {len(a.decoder_ffn_embed_dim) for a in archs} == set(range(1, 7))


def test_hat_features_follow_hats_averaging() -> None:
    space = get_space("hat_wmt14ende")
    a = arch_from_hat_config(space, parse_text(HAT_YAML))
    f = space.hat_features(a)
    assert f.tolist() == [512, 6, 3072, 44 / 6, 512, 1, 3072, 8, 8, 2]
    b = space.max_arch().replace(decoder_arbitrary_ende_attn=(-1, 1, 2, 2, 1, -1))
    assert space.hat_features(b)[-1] == pytest.approx((1 + 2 + 3 + 3 + 2 + 1) / 6)
    many = space.hat_features_many([a, b])
    assert many.shape == (2, 10) and np.array_equal(many[0], f)


@pytest.mark.skipif(not HAT_CSV_DIR.is_dir(), reason="needs ../shared/data/hat_latency")
def test_feature_columns_are_the_csv_columns() -> None:
    for path in sorted(HAT_CSV_DIR.glob("*.csv")):
        with path.open() as fh:
            reader = csv.reader(fh)
            header = next(reader)
            row = [float(x) for x in next(reader)]
        assert tuple(header[:10]) == HAT_FEATURE_NAMES, path.name
        task = "hat_" + path.name.split("_")[0]
        space = get_space(task)
        assert row[0] in space.cfg.embed_dims and row[4] in space.cfg.embed_dims
        assert row[5] in space.cfg.decoder_layers


def test_published_subtransformer_matches_hats_readme() -> None:
    space = get_space("hat_wmt14ende")
    a = arch_from_hat_config(space, parse_text(HAT_YAML))
    assert a.decoder_layer_num == 1 and a.decoder_ffn_embed_dim == (3072,)  # HAT reads [:n]
    assert round(space.params_reference(a) / 1e6, 2) == 30.47
    assert round(2 * space.flops_reference(a) / 1e9, 2) == 1.87


def _param_count(e: int, d: int, enc_ffn: list[int], dec_ffn: list[int], vocab: int,
                 shared: bool, q: int = 512, tgt_vocab: int | None = None) -> int:
    """HAT's SubTransformer weights written out independently of the block rules."""
    attn = lambda qd, kd: qd * q + 2 * kd * q + 3 * q + q * qd + qd + 2 * qd  # noqa: E731
    ffn = lambda m, f: 2 * m * f + f + m + 2 * m  # noqa: E731
    total = sum(attn(e, e) + ffn(e, f) for f in enc_ffn)
    total += sum(attn(d, d) + attn(d, e) + ffn(d, f) for f in dec_ffn)
    if shared:
        return total + vocab * max(e, d)
    tv = vocab if tgt_vocab is None else tgt_vocab
    return total + vocab * e + 2 * tv * d


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_params_equal_an_independent_closed_form(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for name in HAT_NAMES:
        space = get_space(name)
        a = space.sample(rng)
        c = space.cfg
        expect = _param_count(a.encoder_embed_dim, a.decoder_embed_dim,
                              list(a.encoder_ffn_embed_dim), list(a.decoder_ffn_embed_dim),
                              c.src_vocab, c.shared_embeddings, c.qkv_dim, c.tgt_vocab)
        assert space.params(a) == expect, name


def test_flops_closed_form_and_lengths() -> None:
    space = get_space("hat_wmt14ende")
    a = space.min_arch()  # e = d = 512, ffn 1024, one decoder layer attending 1 encoder layer
    s = t = 30
    q, e, f, v = 512, 512, 1024, 32768
    enc = 6 * (4 * s * e * q + 2 * s * s * q + 2 * s * e * f)
    dec = 4 * t * e * q + 2 * t * t * q + 2 * t * e * q + 2 * s * e * q + 2 * t * s * q
    dec += 2 * t * e * f
    assert space.flops_reference(a) == enc + dec
    assert space.flops(a) == enc + dec + t * e * v
    longer = space.blocks_for(a, src_len=60, tgt_len=10)
    assert sum(b.hw_in for b in longer if b.kind == "tf_ffn" and b.stage == "decoder") == 10


def test_hat_yaml_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in HAT_NAMES:
        space = get_space(name)
        for a in [space.min_arch(), space.max_arch(), *(space.sample(rng) for _ in range(10))]:
            text = hat_config_to_yaml(a)  # type: ignore[arg-type]
            data = parse_text(text)
            assert set(data) == set(arch_to_hat_config(a))  # type: ignore[arg-type]
            assert arch_from_hat_config(space, data) == a  # type: ignore[arg-type]
    # through the CLI: import HAT's YAML, export it back
    src = tmp_path / "sub.yml"
    src.write_text(HAT_YAML)
    ours, back = tmp_path / "ours.yaml", tmp_path / "back.yml"
    assert run_app(app, ["arch", "import", "--from", "hat", str(src), "--space",
                         "hat_wmt14ende", "-o", str(ours)]) == 0
    assert run_app(app, ["arch", "export", "--to", "hat", str(ours), "-o", str(back)]) == 0
    space = get_space("hat_wmt14ende")
    assert arch_from_hat_config(space, parse_text(back.read_text())) == arch_from_hat_config(
        space, parse_text(HAT_YAML))


def test_bad_hat_configs_name_the_rule() -> None:
    space = get_space("hat_wmt14ende")
    good = parse_text(HAT_YAML)
    with pytest.raises(InvalidInputError, match="decoder-layer-num-subtransformer"):
        arch_from_hat_config(space, {k: v for k, v in good.items()
                                     if k != "decoder-layer-num-subtransformer"})
    with pytest.raises(InvalidInputError, match="holds 1 values"):
        arch_from_hat_config(space, {**good, "decoder-layer-num-subtransformer": 2,
                                     "decoder-ffn-embed-dim-all-subtransformer": [1024]})
    with pytest.raises(InvalidArchitectureError, match=r"decoder_layer_num = 7 .*1\.\.6"):
        arch_from_hat_config(space, {**good, "decoder-layer-num-subtransformer": 7,
                                     **{k: [v[0]] * 7 for k, v in good.items()
                                        if k.startswith("decoder") and isinstance(v, list)}})
    with pytest.raises(InvalidArchitectureError, match=r"decoder_arbitrary_ende_attn\[0\] = 3"):
        arch_from_hat_config(space, {**good, "decoder-arbitrary-ende-attn-all-subtransformer": [3]})


def test_arch_with_too_many_decoder_layers_is_one_line_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = get_space("hat_wmt14ende").max_arch().to_dict()
    d["decoder_layer_num"] = 8
    for k in ("decoder_ffn_embed_dim", "decoder_self_attention_heads",
              "decoder_ende_attention_heads", "decoder_arbitrary_ende_attn"):
        d[k] = d[k] + d[k][:2]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(d))
    assert run_app(app, ["arch", "describe", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "decoder_layer_num = 8" in err and "allowed" in err
    # a per-layer list that disagrees with the depth
    d = get_space("hat_wmt14ende").max_arch().to_dict()
    d["decoder_layer_num"] = 3
    with pytest.raises(InvalidArchitectureError, match=r"one value per layer \(decoder_layer_num"):
        get_space("hat_wmt14ende").arch_from_dict(d)


def test_a_variant_that_cannot_be_built_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="attend up to 3 encoder layers"):
        HATSpace("hat_wmt14ende", cfg=HATCfg("tiny", encoder_layers=(2,)))
    with pytest.raises(InvalidInputError, match="heads must divide qkv_dim = 512"):
        HATSpace("hat_wmt14ende", cfg=HATCfg("tiny", heads=(3, 4)))


def test_encoder_once_plus_cached_steps_is_the_generation_cost() -> None:
    space = get_space("hat_iwslt14deen")
    rng = np.random.default_rng(9)
    for a in [space.max_arch(), space.sample(rng)]:
        blocks = space.blocks(a)
        t = space.cfg.tgt_len
        gen = encoder_flops(blocks) + decode_flops(blocks, 0, t)
        self_attn = [b for b in blocks if b.kind == "tf_self_attn" and b.stage == "decoder"]
        cross = [b for b in blocks if b.kind == "tf_cross_attn"]
        saved = sum(2 * b.mid * (t * t - t * (t + 1) // 2) for b in self_attn)
        assert len(cross) == a.decoder_layer_num
        assert gen == space.flops(a) - saved
        per_step = decode_flops(blocks, 5, 1)
        assert decode_flops(blocks, 5, 2) - per_step == decode_flops(blocks, 6, 1) > per_step


def test_iwslt_subtransformer_matches_hats_readme() -> None:
    # the published IWSLT'14 De-En TITAN Xp@45.6ms model: 16.82 M params, 0.78 GFLOPs (README)
    space = get_space("hat_iwslt14deen")
    a = space.arch_from_dict({
        "encoder_embed_dim": 512, "decoder_embed_dim": 512, "encoder_layer_num": 6,
        "decoder_layer_num": 1, "encoder_ffn_embed_dim": [1024] * 6,
        "encoder_self_attention_heads": [4, 4, 2, 4, 4, 4], "decoder_ffn_embed_dim": [2048],
        "decoder_self_attention_heads": [4], "decoder_ende_attention_heads": [4],
        "decoder_arbitrary_ende_attn": [-1]})
    assert round(space.params_reference(a) / 1e6, 2) == 16.82
    assert round(2 * space.flops_reference(a) / 1e9, 2) == 0.78


def test_hat_import_needs_a_hat_space(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "sub.yml"
    src.write_text(HAT_YAML)
    for extra in ([], ["--space", "elastic_lm"]):
        assert run_app(app, ["arch", "import", "--from", "hat", str(src), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--space" in err and "hat_iwslt14deen" in err, err
    ours = tmp_path / "lm.yaml"
    ours.write_text(get_space("elastic_lm").min_arch().to_yaml())
    assert run_app(app, ["arch", "export", "--to", "hat", str(ours)]) == 2
    assert "HAT SubTransformers" in capsys.readouterr().err
