"""Contract test suites shared by every implementation of a plug-in kind.

A concrete test module subclasses a contract and supplies its fixture, parametrised over the
kind's registry, so a new plug-in is tested the moment it is registered::

    @pytest.fixture(params=SPACES.list())
    def space(request): return get_space(request.param)

    class TestSpaces(SpaceContract): pass
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.predictors.base import BasePredictor
from nasforge.predictors.base import NotFittedError
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.base import SearchSpace

__all__ = ["PredictorContract", "SpaceContract"]


class SpaceContract:
    """Every search space: sampling, mutation, crossover, validation, encoding, counting.

    Subclasses provide a ``space`` fixture returning a :class:`SearchSpace`.
    """

    N = 40

    def _archs(self, space: SearchSpace, seed: int = 0) -> list[Arch]:
        rng = np.random.default_rng(seed)
        return [space.min_arch(), space.max_arch()] + [space.sample(rng) for _ in range(self.N)]

    def test_sample_mutate_crossover_validate(self, space: SearchSpace) -> None:
        rng = np.random.default_rng(1)
        archs = self._archs(space)
        for a in archs:
            space.validate(a)
            space.validate(space.mutate(a, rng, prob=0.5))
        for a, b in itertools.pairwise(archs):
            space.validate(space.crossover(a, b, rng))

    def test_same_seed_same_archs(self, space: SearchSpace) -> None:
        a = [x.arch_id for x in self._archs(space, seed=7)]
        b = [x.arch_id for x in self._archs(space, seed=7)]
        c = [x.arch_id for x in self._archs(space, seed=8)]
        assert a == b
        assert a != c

    def test_round_trips_are_identities(self, space: SearchSpace) -> None:
        import yaml

        for a in self._archs(space):
            assert space.arch_from_dict(json.loads(a.to_json())) == a
            assert space.arch_from_dict(yaml.safe_load(a.to_yaml())) == a
            assert space.arch_from_dict(json.loads(a.to_json())).arch_id == a.arch_id

    def test_encode_fixed_length(self, space: SearchSpace) -> None:
        n = len(space.encoding_names())
        enc = space.encode_many(self._archs(space))
        assert enc.shape == (self.N + 2, n)
        assert np.isfinite(enc).all()

    def test_min_max_bracket_flops(self, space: SearchSpace) -> None:
        lo, hi = space.flops(space.min_arch()), space.flops(space.max_arch())
        assert 0 < lo < hi
        for a in self._archs(space):
            assert lo <= space.flops(a) <= hi
            assert space.params(a) > 0

    def test_out_of_space_value_names_field(self, space: SearchSpace) -> None:
        d = space.min_arch().to_dict()
        field = next(k for k in d if k != "space")
        v = d[field]
        d[field] = [999_999] * len(v) if isinstance(v, list) else 999_999
        with pytest.raises(InvalidArchitectureError, match=field):
            space.arch_from_dict(d)

    def test_size_and_choices(self, space: SearchSpace) -> None:
        assert space.size() >= 2
        assert space.num_choices() >= 1


def synthetic_regression(seed: int = 0, n: int = 240, d: int = 10
                         ) -> tuple[np.ndarray, np.ndarray]:
    """A small nonlinear problem shaped like an arch encoding: (n, d) features, (n,) targets.

    Half the columns are binary (one-hot-like), half small integers (op counts); the target has
    interactions and a little noise.
    """
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.integers(0, 2, (n, d // 2)), rng.integers(0, 4, (n, d - d // 2))],
                       axis=1).astype(np.float64)
    y = (2.0 * X[:, 0] * X[:, 1] + X[:, d // 2] - 0.4 * X[:, d // 2 + 1] ** 2
         + np.sin(X[:, d // 2 + 2]) + 0.5 * X[:, 2] + 0.1 * rng.standard_normal(n))
    return X, y


class PredictorContract:
    """Every predictor: learns, has the right shapes, saves/loads exactly, is seeded.

    Subclasses provide a ``predictor_factory`` fixture: ``seed -> unfitted BasePredictor``.
    """

    N_TRAIN = 180

    def _split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        X, y = synthetic_regression()
        n = self.N_TRAIN
        return X[:n], y[:n], X[n:], y[n:]

    def test_beats_trivial_baseline(self, predictor_factory: Callable[[int], BasePredictor]
                                    ) -> None:
        from scipy import stats

        Xtr, ytr, Xte, yte = self._split()
        pred = predictor_factory(0).fit(Xtr, ytr).predict(Xte).mean
        mse = float(np.mean((pred - yte) ** 2))
        baseline = float(np.mean((ytr.mean() - yte) ** 2))  # predict the training mean
        assert mse < 0.5 * baseline, (mse, baseline)
        assert stats.kendalltau(yte, pred).statistic > 0.5

    def test_prediction_shapes(self, predictor_factory: Callable[[int], BasePredictor]) -> None:
        Xtr, ytr, Xte, _ = self._split()
        p = predictor_factory(0).fit(Xtr, ytr).predict(Xte)
        assert p.mean.shape == (Xte.shape[0],)
        assert p.mean.dtype == np.float64
        if p.std is not None:
            assert p.std.shape == (Xte.shape[0],)
            assert (p.std >= 0).all()
        one = predictor_factory(0).fit(Xtr, ytr).predict(Xte[:1])
        assert one.mean.shape == (1,)

    def test_save_load_round_trip(self, predictor_factory: Callable[[int], BasePredictor],
                                  tmp_path: Path) -> None:
        Xtr, ytr, Xte, _ = self._split()
        model = predictor_factory(0).fit(Xtr, ytr)
        before = model.predict(Xte)
        model.save(tmp_path / "model")
        assert not [f for f in (tmp_path / "model").iterdir()
                    if f.suffix in (".pkl", ".pickle", ".joblib", ".pt")]
        for loader in (BasePredictor, type(model)):
            loaded = loader.load(tmp_path / "model")
            assert type(loaded) is type(model)
            after = loaded.predict(Xte)
            np.testing.assert_array_equal(after.mean, before.mean)
            if before.std is None:
                assert after.std is None
            else:
                assert after.std is not None
                np.testing.assert_array_equal(after.std, before.std)

    def test_same_seed_same_predictions(self, predictor_factory: Callable[[int], BasePredictor]
                                        ) -> None:
        Xtr, ytr, Xte, _ = self._split()
        a = predictor_factory(3).fit(Xtr, ytr).predict(Xte).mean
        b = predictor_factory(3).fit(Xtr, ytr).predict(Xte).mean
        np.testing.assert_array_equal(a, b)

    def test_errors(self, predictor_factory: Callable[[int], BasePredictor], tmp_path: Path
                    ) -> None:
        Xtr, ytr, Xte, _ = self._split()
        model = predictor_factory(0)
        with pytest.raises(NotFittedError, match="fit"):
            model.predict(Xte)
        with pytest.raises(NotFittedError):
            model.save(tmp_path / "nothing")
        with pytest.raises(InvalidInputError, match="shape"):
            model.fit(Xtr, ytr[:-1])
        model.fit(Xtr, ytr)
        with pytest.raises(InvalidInputError, match="columns"):
            model.predict(Xte[:, :-1])
        with pytest.raises(InvalidInputError, match="2-D"):
            model.predict(Xte[0])


# ---- strategies ------------------------------------------------------------------------------
__all__ += ["StrategyContract"]


def _synthetic_problem(seed: int = 0) -> tuple[object, object]:
    """NAS-Bench-201 with a seeded synthetic accuracy (expensive, maximised) and a synthetic
    latency (cheap, upper bound 60% of its range): both additive over (edge, op) weights."""
    from nasforge.search_spaces import get_space
    from nasforge.strategies import CallableObjective
    from nasforge.strategies import SearchObjectives

    space = get_space("nasbench201")
    rng = np.random.default_rng(seed)
    acc_w = rng.normal(size=(6, 5))
    lat_w = rng.uniform(0.5, 2.0, size=(6, 5))
    ops = {op: i for i, op in enumerate(("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                          "avg_pool_3x3"))}

    def table(w: np.ndarray) -> Callable[[Sequence[Arch]], np.ndarray]:
        def fn(archs: Sequence[Arch]) -> np.ndarray:
            idx = np.array([[ops[e] for e in a.edges] for a in archs])  # type: ignore[attr-defined]
            return w[np.arange(6), idx].sum(axis=1) if len(archs) else np.zeros(0)
        return fn

    lo, hi = lat_w.min(axis=1).sum(), lat_w.max(axis=1).sum()
    objectives = SearchObjectives([
        CallableObjective("acc", table(acc_w), "maximize", cheap=False),
        CallableObjective("lat", table(lat_w), "minimize", cheap=True,
                          upper=float(lo + 0.6 * (hi - lo))),
    ])
    return space, objectives


class StrategyContract:
    """Every strategy: valid archs, cheap bounds respected, deterministic, improves.

    Subclasses provide a ``make_strategy`` fixture: ``fn(space, objectives, seed) ->
    BaseStrategy`` (small settings so that a search of :attr:`BUDGET` takes seconds).
    """

    BUDGET = 48

    def _run(self, make_strategy: Callable[..., object], seed: int = 0) -> object:
        from nasforge.strategies import run_search

        space, objectives = _synthetic_problem()
        strategy = make_strategy(space, objectives, seed)
        return run_search(strategy, budget=self.BUDGET)  # type: ignore[arg-type]

    def test_valid_archs_within_cheap_bounds(self, make_strategy: Callable[..., object]) -> None:
        result = self._run(make_strategy)
        space, objectives = _synthetic_problem()
        assert result.n_evaluated == self.BUDGET, result.stopped  # type: ignore[attr-defined]
        for a in result.archs:  # type: ignore[attr-defined]
            space.validate(a)  # type: ignore[attr-defined]
        lat = result.candidates["lat"].to_numpy()  # type: ignore[attr-defined]
        upper = objectives["lat"].bound.upper  # type: ignore[index]
        assert (lat <= upper).all(), f"cheap bound violated: max {lat.max()} > {upper}"
        ids = result.candidates["arch_id"]  # type: ignore[attr-defined]
        assert ids.is_unique, "the driver evaluated an arch twice"

    def test_deterministic_for_a_seed(self, make_strategy: Callable[..., object]) -> None:
        a = self._run(make_strategy, seed=3).candidates  # type: ignore[attr-defined]
        b = self._run(make_strategy, seed=3).candidates  # type: ignore[attr-defined]
        assert a["arch_id"].tolist() == b["arch_id"].tolist()
        np.testing.assert_array_equal(a["acc"].to_numpy(), b["acc"].to_numpy())

    def test_improves_over_first_batch(self, make_strategy: Callable[..., object]) -> None:
        from nasforge.strategies import run_search

        space, objectives = _synthetic_problem()
        strategy = make_strategy(space, objectives, 0)
        first = strategy.batch_size  # type: ignore[attr-defined]
        result = run_search(strategy, budget=self.BUDGET)  # type: ignore[arg-type]
        scores = result.scores
        assert first < self.BUDGET
        assert scores[first:].max() > scores[:first].max(), (
            f"no improvement over the first batch of {first}: {scores[:first].max()} vs "
            f"{scores[first:].max()}")


# ---- supernets -------------------------------------------------------------------------------
__all__ += ["SupernetContract", "perturb_supernet"]


def perturb_supernet(net: object, seed: int = 0) -> None:
    """Give every 1-D parameter (norm affines, biases), every relative-position bias table
    (parameters named ``*_bias``) and every BatchNorm's running statistics seeded non-trivial
    values, so that a wrong slice or crop changes the output.

    Args:
        net: a ``torch.nn.Module`` (a supernet or a static model).
        seed: seed of the private generator.
    """
    import torch
    from torch.nn.modules.batchnorm import _BatchNorm

    g = torch.Generator().manual_seed(seed)
    module: torch.nn.Module = net  # type: ignore[assignment]
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1:
                p.add_(0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("_bias"):
                p.add_(torch.randn(p.shape, generator=g))
        for m in module.modules():
            if isinstance(m, _BatchNorm) and m.running_mean is not None and (
                    m.running_var is not None):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


class SupernetContract:
    """Every supernet: the active subnet equals its extracted static twin, costs agree with the
    space, forward slices without allocating parameters, slice-sized gradients equal autograd's
    max-size ones, and bad archs are rejected.

    Subclasses provide a ``supernet`` fixture returning a perturbed
    (:func:`perturb_supernet`) :class:`~nasforge.supernet.Supernet` built with
    ``num_classes == space.num_classes`` (so counted FLOPs equal ``space.flops``); a module
    scope keeps the suite fast. Outputs are compared on a small proxy input
    (:attr:`INPUT` px, batch 2); FLOPs are counted on the extracted model at the arch's
    resolution, batch 1.
    """

    INPUT = 32
    N_RANDOM = 5
    ATOL = 1e-5

    def _archs(self, space: SearchSpace) -> list[Arch]:
        rng = np.random.default_rng(0)
        return [space.min_arch(), space.max_arch()] + [space.sample(rng)
                                                        for _ in range(self.N_RANDOM)]

    def _input(self, batch: int = 2, seed: int = 0) -> Any:
        import torch

        g = torch.Generator().manual_seed(seed)
        return torch.randn(batch, 3, self.INPUT, self.INPUT, generator=g)

    def test_extract_matches_active_and_flops(self, supernet: object) -> None:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        net: torch.nn.Module = supernet.eval()  # type: ignore[attr-defined]
        space: SearchSpace = net.space  # type: ignore[assignment]
        x = self._input()
        outputs = []
        for arch in self._archs(space):
            net.set_active(arch)  # type: ignore[operator]
            twin = net.extract(arch).eval()  # type: ignore[operator]
            assert net.active_arch() == arch, "extract must not change the active subnet"  # type: ignore[operator]
            with torch.no_grad():
                y_net, y_twin = net(x), twin(x)
                diff = (y_net - y_twin).abs().max().item()
                assert diff <= self.ATOL, f"{space.name} {arch.arch_id}: max |diff| = {diff}"
                r = arch.resolution  # type: ignore[attr-defined]
                with FlopCounterMode(display=False) as counter:
                    twin(torch.zeros(1, 3, r, r))
            counted = counter.get_total_flops() // 2
            assert counted == space.flops(arch), (space.name, arch.arch_id, counted)
            outputs.append(y_net)
            del twin
        assert not torch.allclose(outputs[0], outputs[1]), "min and max subnets agree: trivial"

    def test_forward_slices_without_allocating_parameters(self, supernet: object) -> None:
        import torch

        net: torch.nn.Module = supernet.train()  # type: ignore[attr-defined]
        space: SearchSpace = net.space  # type: ignore[assignment]
        arch = space.sample(np.random.default_rng(1))
        net.set_active(arch)  # type: ignore[operator]
        params = dict(net.named_parameters())
        before = {n: (p.data_ptr(), tuple(p.shape)) for n, p in params.items()}
        net.zero_grad(set_to_none=True)
        try:
            net(self._input(seed=1)).square().mean().backward()
            after = {n: (p.data_ptr(), tuple(p.shape)) for n, p in net.named_parameters()}
            assert after == before, "forward/backward must not replace or allocate parameters"
            # the region each parameter's active slices cover: where the exported tensors
            # (views, or crops of them) depend on it
            exported = [v for i, block in net._plan(arch)  # type: ignore[operator]
                        for v in net.layers[i].export(block).values()  # type: ignore[index,union-attr]
                        if v.requires_grad]
            names = list(params)
            deps = torch.autograd.grad(sum(v.sum() for v in exported), [params[n] for n in names],
                                       allow_unused=True)
            masks = {n: (torch.zeros_like(params[n], dtype=torch.bool) if d is None else d != 0)
                     for n, d in zip(names, deps, strict=True)}
            active_layers = {i for i, _ in net._plan(arch)}  # type: ignore[operator]
            touched = 0
            for name, p in params.items():
                if p.grad is None:
                    continue
                outside = p.grad[~masks[name]]
                assert torch.count_nonzero(outside) == 0, f"gradient outside the slice: {name}"
                touched += int(torch.count_nonzero(p.grad[masks[name]]) > 0)
            assert touched > 0
            for name, _ in params.items():
                layer = int(name.split(".")[1])
                if layer not in active_layers:
                    assert params[name].grad is None, f"inactive layer got a gradient: {name}"
        finally:
            net.zero_grad(set_to_none=True)
            net.eval()

    def test_slice_gradients_equal_autograd_gradients(self, supernet: object) -> None:
        """A step of min, max and a random subnet: the slice-gradient store implies exactly the
        max-size gradients plain autograd accumulates (bitwise: same kernels, same order)."""
        import torch

        net: torch.nn.Module = supernet.train()  # type: ignore[attr-defined]
        space: SearchSpace = net.space  # type: ignore[assignment]
        archs = [space.max_arch(), space.sample(np.random.default_rng(3)), space.min_arch()]
        params = dict(net.named_parameters())
        state = {k: v.clone() for k, v in net.state_dict().items()}  # BN stats move in train

        def step() -> None:
            torch.manual_seed(0)  # dropout
            for i, arch in enumerate(archs):
                net.set_active(arch)  # type: ignore[operator]
                net(self._input(seed=i)).square().mean().backward()

        try:
            net.zero_grad(set_to_none=True)
            step()
            plain = {n: None if p.grad is None else p.grad.clone() for n, p in params.items()}
            net.zero_grad(set_to_none=True)
            net.load_state_dict(state)
            store = net.enable_slice_grads()  # type: ignore[operator]
            step()
            sliced = 0
            for name, p in params.items():
                got = store.full_grad(p)
                if got is None:
                    got = p.grad
                else:
                    sliced += 1
                    assert p.grad is None, f"{name}: sliced parameter also has a .grad"
                want = plain[name]
                assert (got is None) == (want is None), f"{name}: gradient presence differs"
                if want is not None:
                    assert torch.equal(got, want), f"{name}: max |diff| {(got - want).abs().max()}"
            assert sliced > 0, "no parameter went through the slice-gradient store"
        finally:
            net.disable_slice_grads()  # type: ignore[operator]
            net.zero_grad(set_to_none=True)
            net.load_state_dict(state)
            net.eval()

    def test_rejects_foreign_and_invalid_archs(self, supernet: object) -> None:
        import dataclasses

        from nasforge.errors import IncompatibleComponentsError
        from nasforge.search_spaces import SPACES
        from nasforge.search_spaces import get_space

        space: SearchSpace = supernet.space  # type: ignore[attr-defined]
        other = next(n for n in SPACES.list() if n != space.name)
        with pytest.raises(IncompatibleComponentsError, match=space.name):
            supernet.set_active(get_space(other).min_arch())  # type: ignore[attr-defined]
        bad = dataclasses.replace(space.min_arch(), resolution=7)  # type: ignore[type-var,call-arg]
        with pytest.raises(InvalidArchitectureError, match="resolution"):
            supernet.set_active(bad)  # type: ignore[attr-defined]
        with pytest.raises(InvalidArchitectureError, match="resolution"):
            supernet.extract(bad)  # type: ignore[attr-defined]

    def test_recalibrate_bn_matches_extracted_twin(self, supernet: object) -> None:
        import torch

        from nasforge.supernet import recalibrate_bn

        net: torch.nn.Module = supernet.eval()  # type: ignore[attr-defined]
        space: SearchSpace = net.space  # type: ignore[assignment]
        arch = space.min_arch()
        net.set_active(arch)  # type: ignore[operator]
        twin = net.extract(arch).eval()  # type: ignore[operator]
        batches = [self._input(batch=4, seed=s) for s in range(3)]
        recalibrate_bn(net, batches, num_batches=3)
        stats = [b.clone() for n, b in net.named_buffers() if n.endswith("running_mean")]
        recalibrate_bn(net, batches, num_batches=3)
        again = [b for n, b in net.named_buffers() if n.endswith("running_mean")]
        assert all(torch.equal(a, b) for a, b in zip(stats, again, strict=True))
        assert not net.training, "recalibrate_bn must restore the mode"
        recalibrate_bn(twin, batches, num_batches=3)
        x = self._input(seed=9)
        with torch.no_grad():
            diff = (net(x) - twin(x)).abs().max().item()
        assert diff <= self.ATOL, diff
        perturb_supernet(net, seed=1)  # leave non-trivial statistics for the next test

    def test_config(self, supernet: object) -> None:
        space: SearchSpace = supernet.space  # type: ignore[attr-defined]
        assert supernet.config() == {  # type: ignore[attr-defined]
            "space": space.name, "num_classes": supernet.num_classes}  # type: ignore[attr-defined]
