"""ArchText: the template writes exactly ``to_json``'s text, or declines."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nasforge.search_spaces import SPACES
from nasforge.search_spaces import ArchText
from nasforge.search_spaces import ChoiceSpace
from nasforge.search_spaces import RowText
from nasforge.search_spaces import get_space

#: the spaces whose archs have one fixed JSON shape (the others drop inactive slots)
FIXED_SHAPE = {"elasticvit", "elasticvit_efficient", "nasbench201", "nasbench201_net",
               "ofa_mbv3", "ofa_mbv3_w12"}


@pytest.mark.parametrize("name", SPACES.list())
def test_the_template_writes_to_json_or_declines(name: str) -> None:
    space = get_space(name)
    assert isinstance(space, ChoiceSpace)
    encoder = ArchText(space)
    assert encoder.applies == (name in FIXED_SHAPE)
    rng = np.random.default_rng(0)
    archs = space.from_indices(space.sample_indices(rng, 300))
    archs += [space.min_arch(), space.max_arch()]
    got = [encoder(a) for a in archs]
    if encoder.applies:
        assert got == [a.to_json() for a in archs]
    else:
        assert got == [None] * len(archs)


@pytest.mark.parametrize("name", sorted(FIXED_SHAPE))
def test_a_value_of_another_type_or_an_arch_of_another_space_is_declined(name: str) -> None:
    space = get_space(name)
    assert isinstance(space, ChoiceSpace)
    encoder = ArchText(space)
    arch = space.max_arch()
    field = next(f.name for f in dataclasses.fields(arch) if f.name != "space")
    value = getattr(arch, field)
    # a bool where an int is expected, or a tuple shortened by one: to_json's text differs
    # from what the template would write, so the template must not write it
    odd = (True, *value[1:]) if isinstance(value, tuple) else (value,)
    short = tuple(value[:-1]) if isinstance(value, tuple) else [value]
    for bad in (odd, short):
        changed = dataclasses.replace(arch, **{field: bad})
        assert encoder(changed) is None
    assert encoder(dataclasses.replace(arch, space="another")) is None
    other = get_space("hat_wmt14ende").max_arch()
    assert encoder(other) is None


def test_the_json_text_is_kept_on_the_arch_once_written() -> None:
    from nasforge.search_spaces.arch import JSON_TEXT
    from nasforge.search_spaces.arch import canonical_json
    from nasforge.strategies.storage.claims import arch_json_and_id

    space = get_space("ofa_mbv3_w12")
    assert isinstance(space, ChoiceSpace)
    a, b = space.from_indices(space.sample_indices(np.random.default_rng(3), 2))
    text, aid = arch_json_and_id(a, ArchText(space))  # written by the template, kept
    assert a.__dict__[JSON_TEXT] == text == canonical_json(a.to_dict())
    assert a.to_json() is text and a.arch_id == aid
    assert JSON_TEXT not in b.__dict__
    assert b.to_json() == canonical_json(b.to_dict()) == b.__dict__[JSON_TEXT]
    other = 160 if b.resolution != 160 else 176  # a copy with another field: its own text
    changed = dataclasses.replace(b, resolution=other)
    assert f'"resolution":{other}' in changed.to_json() and changed.to_json() != b.to_json()


@pytest.mark.parametrize("name", SPACES.list())
def test_a_built_arch_keeps_its_row_and_both_paths_agree(name: str) -> None:
    """``from_indices`` keeps each built arch's row key (where the row is the only one of its
    values): ``to_indices`` and the template read it back, and both give what the arch's
    values give (a copy without the key, written from its values)."""
    space = get_space(name)
    assert isinstance(space, ChoiceSpace)
    encoder = ArchText(space)
    rows = space.repair_indices(space.sample_indices(np.random.default_rng(1), 200),
                                np.random.default_rng(2))
    archs = space.from_indices(rows, check=False)
    copies = [dataclasses.replace(a) for a in archs]  # same values, no kept row
    attr = space.row_attr
    assert (attr is not None) == (name in FIXED_SHAPE)
    if attr is None:
        return
    assert all(attr in a.__dict__ for a in archs) and not any(attr in c.__dict__ for c in copies)
    assert np.array_equal(space.to_indices(archs), space.to_indices(copies))
    assert [encoder(a) for a in archs] == [encoder(c) for c in copies] == [
        c.to_json() for c in copies]



@pytest.mark.parametrize("name", ["ofa_mbv3", "ofa_mbv3_w12"])
def test_a_kept_row_is_read_by_its_own_space_only(name: str) -> None:
    """Another instance of the space (here with fewer resolutions: other option indices)
    reads the arch's values, not the row the first instance kept."""
    space = get_space(name)
    assert isinstance(space, ChoiceSpace)
    cfg = space.cfg  # type: ignore[attr-defined]
    other = get_space(name, cfg=dataclasses.replace(cfg, resolutions=cfg.resolutions[-2:]))
    assert isinstance(other, ChoiceSpace) and other.row_attr != space.row_attr
    rows = space.sample_indices(np.random.default_rng(4), 50)
    rows[:, space.index_names().index("resolution")] = len(cfg.resolutions) - 1
    archs = space.from_indices(rows, check=False)
    got = other.to_indices(archs)
    assert not np.array_equal(got, rows)  # the resolution has another index there
    assert np.array_equal(got, other.to_indices([dataclasses.replace(a) for a in archs]))


@pytest.mark.parametrize("name", SPACES.list())
def test_a_row_format_writes_every_row_s_json_with_no_space(name: str) -> None:
    """The row format, through JSON and back, writes the canonical JSON of each arch's row
    key (what a stored candidate row is read back as); spaces whose archs keep no row key
    have none."""
    import json

    space = get_space(name)
    assert isinstance(space, ChoiceSpace)
    encoder = ArchText(space)
    fmt = encoder.row_format
    assert (fmt is not None) == (name in FIXED_SHAPE)
    rows = space.repair_indices(space.sample_indices(np.random.default_rng(3), 100),
                                np.random.default_rng(4))
    archs = space.from_indices(rows, check=False)
    if fmt is None:
        assert all(encoder.row_key(a) is None for a in archs)
        return
    stored = RowText(json.loads(json.dumps(fmt)))
    keys = [encoder.row_key(a) for a in archs]
    assert all(isinstance(k, bytes) for k in keys)
    assert [stored.checked_text(k) for k in keys] == [  # type: ignore[arg-type]
        dataclasses.replace(a).to_json() for a in archs]
    assert encoder.row_key(dataclasses.replace(archs[0])) is None  # built otherwise


def test_a_key_or_a_format_that_does_not_fit_is_refused() -> None:
    space = get_space("nasbench201")
    assert isinstance(space, ChoiceSpace)
    fmt = ArchText(space).row_format
    assert fmt is not None
    rows = RowText(fmt)
    key = ArchText(space).row_key(space.from_indices(space.sample_indices(
        np.random.default_rng(0), 1))[0])
    assert key is not None
    with pytest.raises(ValueError, match="not a row of 6 indices of 1 bytes"):
        rows.checked_text(key + b"\x00")
    with pytest.raises(ValueError, match="an index out of its column's options"):
        rows.checked_text(b"\x05" + key[1:])  # 5 options: 0..4
    with pytest.raises(ValueError, match="not a row format"):
        RowText({**fmt, "columns": fmt["columns"][1:]})
    with pytest.raises(ValueError, match="not a row format"):
        RowText({"pieces": []})
