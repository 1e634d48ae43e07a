"""Optuna samplers (TPE, NSGA-II) behind the ask/tell interface, with Optuna RDB storage.

Papers:
    Optuna: A Next-generation Hyperparameter Optimization Framework, T. Akiba et al.,
    https://arxiv.org/abs/1907.10902
    Algorithms for Hyper-Parameter Optimization (TPE), J. Bergstra et al., NeurIPS 2011
    A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II, Deb et al. 2002,
    https://doi.org/10.1109/4235.996017

Each column of the space's index codec (a :class:`~nasforge.search_spaces.base.ChoiceSpace`
decision, named by ``index_names()``) is a ``CategoricalDistribution`` over its option values.
A study given a storage (:class:`~nasforge.strategies.storage.url.StorageURL`) is shared by
workers and resumed (``load_if_exists``); every completed trial stores the arch
(``nasforge_arch``, canonical JSON) and every objective value (``nasforge_values``) as user
attributes, which :meth:`OptunaStrategy.resumed_history` reads
back, and ``optuna-dashboard`` can show. Bound violations are recorded with
``Trial.set_constraint`` (Optuna 5), which TPE and NSGA-II use for constrained sampling.
Proposals breaking a cross-field rule or a cheap bound are told as ``FAIL`` (attribute
``nasforge_rejected``) and do not count as evaluations.

Run by :func:`~nasforge.strategies.run_search` with a storage, every candidate is also a
trial of the search's own study (like every strategy's); when that search resumes,
:meth:`OptunaStrategy.load_state_dict` replays the told candidates into this strategy's
(in-memory) study and restores the sampler's random states (stored with the strategy state
after every round: Optuna does not persist them), so a search killed (SIGINT, SIGTERM,
``kill -9``) and resumed proposes what the uninterrupted search proposes: TPE and random
exactly. NSGA-II also keys its generations on trial numbers, which the replay (without the
rejected proposals) does not keep, so a resumed NSGA-II search continues validly from the same
candidates but may propose others.

Limits: with a strategy storage of its own (``storage=``), a trial asked by a process that was
killed before its ``tell`` stays ``RUNNING`` in that storage (its evaluation, if any, is lost).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import numpy as np
import optuna

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.strategies.base import BaseStrategy
from nasforge.strategies.base import register_strategy
from nasforge.strategies.base import require_choice_space
from nasforge.strategies.storage.url import StorageURL
from nasforge.strategies.storage.url import route_optuna_logs

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.strategies.objectives import SearchObjectives

__all__ = ["OptunaStrategy"]

_ARCH = "nasforge_arch"
_VALUES = "nasforge_values"


@register_strategy("optuna")
class OptunaStrategy(BaseStrategy):
    """Search with an Optuna sampler.

    Args:
        space: a ChoiceSpace.
        objectives: single mode optimises the primary objective, Pareto mode the
            ``objectives.pareto_names`` (multi-objective study).
        seed: sampler seed.
        sampler: ``tpe``, ``nsga2``, ``random`` or an Optuna sampler instance.
        storage: a storage URL or SQLite file path (see
            :class:`~nasforge.strategies.storage.url.StorageURL`) or None (in memory).
        study_name: the study name in the storage.
        load_if_exists: resume an existing study of that name.
        batch_size: trials asked per round.
        population_size: NSGA-II population.
        n_startup_trials: TPE's random start-up trials.
        mode: ``single`` or ``pareto`` (default ``objectives.mode``).
        max_rejections: see :class:`BaseStrategy`.

    Raises:
        IncompatibleComponentsError: ``space`` is not a ChoiceSpace.
        InvalidInputError: an unknown sampler name.
    """

    def __init__(self, space: SearchSpace, objectives: SearchObjectives, *, seed: int = 0,
                 sampler: str | optuna.samplers.BaseSampler = "tpe", storage: str | None = None,
                 study_name: str = "nasforge", load_if_exists: bool = True, batch_size: int = 1,
                 population_size: int = 50, n_startup_trials: int = 10,
                 mode: Literal["single", "pareto"] | None = None,
                 max_rejections: int = 10_000) -> None:
        super().__init__(space, objectives, seed=seed, max_rejections=max_rejections)
        self._codec = require_choice_space(space, type(self).__name__)  # = space
        self.distributions = {
            label: optuna.distributions.CategoricalDistribution(options) for label, options in
            zip(self._codec.index_names(), self._codec.index_options(), strict=True)}
        self.mode = mode or objectives.mode
        self.targets = ([objectives.primary_index] if self.mode == "single"
                        else list(objectives.pareto_index))
        directions = [objectives.objectives[j].direction for j in self.targets]
        if isinstance(sampler, str):
            if sampler == "tpe":
                smp: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(
                    seed=seed, n_startup_trials=n_startup_trials, multivariate=True)
            elif sampler == "nsga2":
                smp = optuna.samplers.NSGAIISampler(population_size=population_size, seed=seed)
            elif sampler == "random":
                smp = optuna.samplers.RandomSampler(seed=seed)
            else:
                raise InvalidInputError(
                    f"unknown optuna sampler {sampler!r}; use 'tpe', 'nsga2', 'random' or pass "
                    "an optuna.samplers.BaseSampler")
        else:
            smp = sampler
        self.sampler_name = sampler if isinstance(sampler, str) else type(sampler).__name__
        self.storage_url = storage
        route_optuna_logs()
        self.study = optuna.create_study(
            storage=None if storage is None else StorageURL.parse(storage).open(), sampler=smp,
            study_name=study_name, directions=directions, load_if_exists=load_if_exists)
        self._batch = batch_size
        self._pending: list[optuna.trial.Trial] = []
        #: what was told, for the replay on resume: arch id -> index among distinct tells,
        #: ``[position, index]`` of each repeat, and the count of tells
        self._told_ids: dict[str, int] = {}
        self._repeats: list[list[int]] = []
        self._n_told = 0

    @property
    def batch_size(self) -> int:
        return self._batch

    def _reject(self, trial: optuna.trial.Trial, why: str) -> None:
        trial.set_user_attr("nasforge_rejected", why)
        self.study.tell(trial, state=optuna.trial.TrialState.FAIL)

    def ask(self, n: int) -> list[Arch]:
        out: list[Arch] = []
        rejected = 0
        while len(out) < n:
            trials, rows = [], []
            for _ in range(n - len(out)):
                trial = self.study.ask(dict(self.distributions))
                row = self._codec.values_to_indices(
                    [[trial.params[label] for label in self.distributions]])
                if not self._codec.valid_rows(row)[0]:
                    self._reject(trial, "breaks a cross-field rule of the space")
                    rejected += 1
                    continue
                trials.append(trial)
                rows.append(row)
            matrix = (np.concatenate(rows) if rows
                      else np.zeros((0, self._codec.num_choices()), dtype=np.int64))
            archs = self._codec.from_indices(matrix, check=False)
            ok = self.objectives.cheap_feasible_indices(self._codec, matrix).tolist()
            for trial, a, good in zip(trials, archs, ok, strict=True):
                if good:
                    self._pending.append(trial)
                    out.append(a)
                    rejected = 0
                else:
                    self._reject(trial, "violates a cheap bound")
                    rejected += 1
            if rejected >= self.max_rejections:
                raise InvalidInputError(
                    f"optuna: {self.max_rejections} proposals in a row were rejected; relax the "
                    "cheap bounds")
        return out

    def _tell(self, archs: list[Arch], values: np.ndarray) -> None:
        for a, v in zip(archs, values, strict=True):
            trial = self._pending.pop(0)
            self._record_told(a)
            for key, viol in self._constraints(v).items():  # Optuna 5: feasible when <= 0
                trial.set_constraint(key.removeprefix("constraints:"), viol)
            trial.set_user_attr(_ARCH, a.to_json())
            trial.set_user_attr(_VALUES, [None if not np.isfinite(x) else float(x) for x in v])
            target = [float(v[j]) for j in self.targets]
            if all(np.isfinite(target)):
                self.study.tell(trial, target if len(target) > 1 else target[0])
            else:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)

    def load_state_dict(self, state: dict[str, Any], history_archs: Sequence[Arch],
                        history_values: np.ndarray) -> None:
        """Restore the state and replay the told candidates into an empty study (as completed
        trials with their params, target values and constraints), in the order they were
        told, repeats included."""
        super().load_state_dict(state, history_archs, history_values)
        if not history_archs or self.study.get_trials(deepcopy=False):
            return
        archs, values = self._told_sequence(list(history_archs), self.history_values,
                                            state.get("extra", {}))
        rows = self._codec.to_indices(archs)
        options = self._codec.index_options()
        trials = []
        for a, row, v in zip(archs, rows, values, strict=True):
            self._record_told(a)
            params = {label: options[j][int(i)] for j, (label, i) in
                      enumerate(zip(self.distributions, row.tolist(), strict=True))}
            target = [float(v[j]) for j in self.targets]
            if not all(np.isfinite(target)):
                continue
            trials.append(optuna.trial.create_trial(
                params=params, distributions=dict(self.distributions), values=target,
                user_attrs={_ARCH: a.to_json()}, system_attrs=self._constraints(v)))
        self.study.add_trials(trials)

    def _told_sequence(self, archs: list[Arch], values: np.ndarray, extra: dict[str, Any]
                       ) -> tuple[list[Arch], np.ndarray]:
        """Every told arch in tell order: the distinct ``archs`` (first tells) with the
        repeats stored by :meth:`_state` put back at their positions. Without them, or when
        the distinct archs differ from what the state counted (candidates of other workers,
        a ``dedupe_key`` coarser than the arch), the distinct archs alone (a valid
        continuation, not the same trajectory)."""
        told, repeats = extra.get("told"), extra.get("repeats")
        if not isinstance(told, int) or not isinstance(repeats, list) or (
                told - len(repeats) != len(archs)):
            return archs, values
        where = {int(pos): int(j) for pos, j in repeats}
        if any(j >= len(archs) for j in where.values()):
            return archs, values
        order, nxt = [], 0
        for pos in range(told):
            if pos in where:
                order.append(where[pos])
            else:
                order.append(nxt)
                nxt += 1
        return [archs[i] for i in order], values[order]

    def _record_told(self, arch: Arch) -> None:
        """Count a told arch: a repeat of an arch told before is kept for :meth:`_state`."""
        j = self._told_ids.get(arch.arch_id)
        if j is None:
            self._told_ids[arch.arch_id] = len(self._told_ids)
        else:
            self._repeats.append([self._n_told, j])
        self._n_told += 1

    def _state(self) -> dict[str, Any]:
        """The sampler's random states, so a resume draws what an uninterrupted run draws,
        and the told archs that repeat an earlier one, so the replay tells what was told."""
        return {"sampler_rngs": [_rng_to_json(r) for r in _sampler_rngs(self.study.sampler)],
                "told": self._n_told, "repeats": [list(r) for r in self._repeats]}

    def _load_state(self, extra: dict[str, Any]) -> None:
        saved = extra.get("sampler_rngs")
        if saved is None:  # a state written before the sampler's was stored
            return
        rngs = _sampler_rngs(self.study.sampler)
        if len(rngs) != len(saved):
            raise IncompatibleComponentsError(
                f"the stored optuna sampler state holds {len(saved)} random states, the "
                f"sampler {self.sampler_name!r} has {len(rngs)}; resume with the sampler that "
                "wrote it or start a new study")
        for rng, state in zip(rngs, saved, strict=True):
            rng.set_state((str(state[0]), np.asarray(state[1], dtype=np.uint32),
                           int(state[2]), int(state[3]), float(state[4])))

    def _constraints(self, v: np.ndarray) -> dict[str, float]:
        """The system attributes ``Trial.set_constraint`` writes for values ``v``."""
        out = {}
        for j, o in enumerate(self.objectives.objectives):
            if o.bound is not None:
                viol = float(o.bound.violation(np.array([v[j]]))[0])
                out[f"constraints:{o.name}"] = viol if np.isfinite(viol) else 1e30
        return out

    def resumed_history(self) -> tuple[list[Arch], np.ndarray]:
        archs, rows = [], []
        for t in self.study.get_trials(deepcopy=False):
            if _ARCH in t.user_attrs and _VALUES in t.user_attrs and t.state.is_finished():
                archs.append(self.space.arch_from_dict(json.loads(t.user_attrs[_ARCH])))
                rows.append([np.nan if x is None else float(x) for x in t.user_attrs[_VALUES]])
        return archs, np.asarray(rows, dtype=np.float64).reshape(len(archs), len(self.objectives))

    def _settings(self) -> dict[str, Any]:
        return {"sampler": self.sampler_name, "storage": self.storage_url,
                "study_name": self.study.study_name, "mode": self.mode,
                "batch_size": self._batch}


def _sampler_rngs(sampler: object, depth: int = 3) -> list[np.random.RandomState]:
    """The random states a sampler draws from (its own, its random sampler's, its operators'),
    in attribute-name order; each ``LazyRandomState`` is made concrete."""
    from optuna.samplers._lazy_random_state import LazyRandomState

    out: list[np.random.RandomState] = []
    seen: set[int] = set()

    def walk(obj: object, left: int) -> None:
        for _, value in sorted(vars(obj).items()):
            if isinstance(value, LazyRandomState):
                value = value.rng
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, np.random.RandomState):
                out.append(value)
            elif left > 0 and type(value).__module__.startswith("optuna.") and hasattr(
                    value, "__dict__") and not isinstance(value, type):
                walk(value, left - 1)

    walk(sampler, depth)
    return out


def _rng_to_json(rng: np.random.RandomState) -> list[Any]:
    name, keys, pos, has_gauss, gauss = rng.get_state(legacy=True)
    return [name, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(gauss)]
