"""Space variants through `get_space(name, **options)`; `.name` is the registered name."""

from __future__ import annotations

import pytest

from nasforge.errors import InvalidInputError
from nasforge.errors import UnknownNameError
from nasforge.search_spaces import SPACES
from nasforge.search_spaces import ElasticViTSpace
from nasforge.search_spaces import get_space


@pytest.mark.parametrize("name", [n for n in SPACES.list() if get_space(n).modality == "image"])
def test_registered_name_and_num_classes_option(name: str) -> None:
    space = get_space(name, num_classes=7)
    assert space.name == name
    assert space.num_classes == 7
    assert space.min_arch().space == name
    assert space.blocks(space.max_arch())[-1].classes == 7
    assert get_space(name, num_classes=7) is space  # same options: the shared instance
    assert get_space(name) is not space


@pytest.mark.parametrize(("name", "option", "value"), [
    ("elastic_lm", "vocab_size", 300), ("hat_iwslt14deen", "tgt_vocab", 7000)])
def test_text_spaces_take_their_vocabulary_as_an_option(name: str, option: str,
                                                        value: int) -> None:
    space = get_space(name, **{option: value})
    assert space.name == name and getattr(space, option) == value
    assert space.blocks(space.max_arch())[-1].classes == value
    assert get_space(name, **{option: value}) is space
    assert space.params(space.max_arch()) != get_space(name).params(get_space(name).max_arch())


def test_class_instances_carry_the_registered_name() -> None:
    assert ElasticViTSpace(num_classes=10).name == "elasticvit"
    assert ElasticViTSpace(num_classes=10).min_arch() == get_space("elasticvit").min_arch()


def test_unknown_option_and_unknown_name() -> None:
    with pytest.raises(InvalidInputError, match=r"has no option 'widht'.*num_classes"):
        get_space("elasticvit", widht=2)
    with pytest.raises(UnknownNameError, match="did you mean 'ofa_mbv3_w12'"):
        get_space("ofa_mbv3_w1", num_classes=10)
