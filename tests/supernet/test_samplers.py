from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from nasforge.errors import InvalidInputError
from nasforge.errors import UnknownNameError
from nasforge.search_spaces import get_space
from nasforge.supernet.training.samplers import SAMPLERS
from nasforge.supernet.training.samplers import ComplexityAwareSampler
from nasforge.supernet.training.samplers import PerformanceAwareSampler
from nasforge.supernet.training.samplers import create_sampler
from nasforge.supernet.training.samplers import default_levels
from nasforge.supernet.training.samplers import width_depth_preference

SPACE = get_space("elasticvit")
SMALL = {"levels": [77, 110, 170], "pool_size": 6}
OPTIONS = {
    "uniform": {},
    "sandwich": {},
    "complexity_aware": SMALL,
    "performance_aware": {**SMALL, "bank_size": 4},
}


def _make(name: str, seed: int = 0, **kw: object):
    return create_sampler(name, SPACE, np.random.default_rng(seed), **{**OPTIONS[name], **kw})


def _run(sampler, steps: int) -> list[list[str]]:
    out = []
    for step in range(steps):
        sampler.set_progress(step, steps)
        plan = sampler.sample()
        for i, item in enumerate(plan):
            sampler.feedback(item.arch, 1.0 + 0.1 * i + 0.01 * step)
        out.append([f"{item.role}:{item.arch.arch_id}" for item in plan])
    return out


def test_registry_lists_the_four_rules_and_suggests_close_names() -> None:
    assert SAMPLERS.list() == ["complexity_aware", "performance_aware", "sandwich", "subnet",
                              "uniform"]
    with pytest.raises(UnknownNameError, match="did you mean 'sandwich'"):
        create_sampler("sandwhich", SPACE, np.random.default_rng(0))


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_same_seed_same_plans_and_valid_archs(name: str) -> None:
    a, b = _run(_make(name), 12), _run(_make(name), 12)
    assert a == b
    assert _run(_make(name, seed=1), 12) != a
    for item in _make(name).sample():
        SPACE.validate(item.arch)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_state_dict_is_json_and_resumes_the_same_sequence(name: str) -> None:
    s = _make(name)
    _run(s, 5)
    state = json.loads(json.dumps(s.state_dict()))
    expected = _run(s, 8)
    fresh = _make(name, seed=123)
    fresh.load_state_dict(state)
    assert _run(fresh, 8) == expected


def test_sandwich_order_is_max_random_min() -> None:
    plan = _make("sandwich", num_random=3).sample()
    assert [p.role for p in plan] == ["max", "random", "random", "random", "min"]
    assert plan[0].arch == SPACE.max_arch() and plan[-1].arch == SPACE.min_arch()


def test_complexity_aware_walks_one_level_at_a_time_inside_the_band() -> None:
    s: ComplexityAwareSampler = _make("complexity_aware", levels=[77, 110, 170, 250],
                                      num_subnets=3)
    levels = []
    for _ in range(40):
        plan = s.sample()
        assert plan[0].role == "max"
        level = plan[1].level
        levels.append(level)
        t = s.levels[level]
        drawn = [p for p in plan if p.role in ("random", "level_min")]
        for p in drawn:
            assert t <= s.mflops(p.arch) <= t + s.bound
        assert s.mflops(plan[-1].arch) == min(s.mflops(a) for a in s.pools[level])
    assert max(abs(a - b) for a, b in itertools.pairwise(levels)) <= 1
    assert len(set(levels)) == 4  # the walk visits every level


def test_default_levels_cover_the_space_range_ascending() -> None:
    lv = default_levels(SPACE)
    lo, hi = SPACE.flops(SPACE.min_arch()) / 1e6, SPACE.flops(SPACE.max_arch()) / 1e6
    assert lv == sorted(lv) and len(lv) == 8
    assert lo < lv[0] and lv[-1] < hi
    assert 60 <= lv[0] <= 110 and 900 <= lv[-1] <= 1300  # near ElasticViT's 100..1200


def test_level_outside_the_space_range_is_a_clear_error() -> None:
    s = create_sampler("complexity_aware", SPACE, np.random.default_rng(0), levels=[5.0])
    with pytest.raises(ValueError, match="no elasticvit subnet can have FLOPs"):
        s.sample()


def test_performance_aware_fills_banks_and_then_exploits_them() -> None:
    s: PerformanceAwareSampler = _make("performance_aware", levels=[77], bank_size=4,
                                       bank_prob=1.0, num_subnets=1)
    for i in range(30):
        plan = s.sample()
        for p in plan:
            s.feedback(p.arch, float(i))
    assert 2 < len(s.banks[0]) <= 4
    roles = {p.role for _ in range(5) for p in s.sample()}
    assert "bank" in roles and "random" not in roles
    best = max(s.banks[0], key=lambda item: item[1])
    assert best[1] == max(score for _, score in s.banks[0])


def test_bank_keeps_the_best_scores() -> None:
    s: PerformanceAwareSampler = _make("performance_aware", levels=[77], bank_size=2,
                                       bank_prob=0.0, num_subnets=1, pool_size=10)
    seen: list[tuple[str, float]] = []
    for i in range(12):
        for p in s.sample():
            if p.role == "random":
                loss = float((i * 7) % 5)
                if p.arch.arch_id not in {a for a, _ in seen}:
                    seen.append((p.arch.arch_id, loss))
                s.feedback(p.arch, loss)
    assert len(s.banks[0]) == 2
    assert all(score <= 0 for _, score in s.banks[0])


def test_bank_probability_grows_over_training() -> None:
    s: PerformanceAwareSampler = _make("performance_aware", bank_prob=0.2,
                                       bank_prob_increment=0.15, increments=2)
    probs = []
    for step in (0, 40, 80, 99):
        s.set_progress(step, 100)
        probs.append(s.bank_prob)
    assert probs == pytest.approx([0.2, 0.35, 0.5, 0.5])


def test_width_preference_favours_width_over_depth() -> None:
    anchor = SPACE.min_arch()
    wider = anchor.replace(widths=(*anchor.widths[:3], 96, 160, 288, 320))
    deeper = anchor.replace(depths=(*anchor.depths[:3], 5, 6, 6, 6))
    assert width_depth_preference(SPACE, wider, anchor) < 0
    assert width_depth_preference(SPACE, deeper, anchor) > 0


def test_loading_another_samplers_state_raises() -> None:
    state = _make("uniform").state_dict()
    with pytest.raises(InvalidInputError, match="cannot be loaded"):
        _make("sandwich").load_state_dict(state)
