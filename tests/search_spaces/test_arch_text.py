"""ArchText: the template writes exactly ``to_json``'s text, or declines."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nasforge.search_spaces import SPACES
from nasforge.search_spaces import ArchText
from nasforge.search_spaces import ChoiceSpace
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
