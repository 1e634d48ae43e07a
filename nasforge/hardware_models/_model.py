"""The block-sum latency model: table entries, then regressors, then the analytical estimate.

For each block of ``space.blocks(arch)`` the device's key scheme gives a key; its latency is

1. the measured table entry (provenance ``measured``), else
2. the per-family regressor (``predicted``), else
3. the analytical estimate calibrated on the device's measured entries (``predicted``), else
4. :class:`~nasforge.errors.MissingLatencyError` -- never a silent zero.

Devices nasforge profiles itself (``cpu-local``) key blocks by their own fields
(``keying="block"``, :mod:`~nasforge.hardware_models._blockkeys`) and carry the fusion rule of
their runtime (:class:`~nasforge.hardware_models._fusion.Fusion`): every block's number becomes
``scale * ms + per_block_ms + per_mparam_ms * (its weights in millions)`` (so :meth:`explain`
rows still sum to the blocks' part) and
:meth:`predict` adds ``per_network_ms`` once per network.

A derived device multiplies every number by its documented factor (provenance ``derived``).
Whole-network latency is the sum over blocks. :meth:`BlockSumLatencyModel.predict_many` caches
per key and per segment (stage) of the key scheme, so the hot path is a few dict lookups and a
sum per architecture. A space whose index rows name their blocks
(:meth:`~nasforge.search_spaces.codec.IndexCodec.segment_codes`, e.g. ``ofa_mbv3``) is served
by :meth:`BlockSumLatencyModel.predict_indices` instead: one value per block code, gathered
and summed over a whole index matrix in numpy, equal to the per-architecture sum bit for bit
(same terms, same order).
"""

from __future__ import annotations

from collections.abc import Hashable
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from nasforge.errors import InvalidArchitectureError
from nasforge.errors import MissingLatencyError
from nasforge.hardware_models._blockkeys import block_from_key
from nasforge.hardware_models._blockkeys import block_key_scheme
from nasforge.hardware_models._blockkeys import is_block_key
from nasforge.hardware_models._fusion import Fusion
from nasforge.hardware_models._indexed import column_sums
from nasforge.hardware_models._indexed import segment_codes
from nasforge.hardware_models._indexed import sum_columns
from nasforge.hardware_models._keys import get_key_scheme
from nasforge.hardware_models._keys import key_family
from nasforge.hardware_models.base import BlockLatency
from nasforge.hardware_models.base import LatencyModel
from nasforge.hardware_models.base import Provenance
from nasforge.search_spaces.block import block_params
from nasforge.search_spaces.registry import get_space

if TYPE_CHECKING:
    from nasforge.hardware_models._analytic import AnalyticEstimator
    from nasforge.hardware_models._keys import KeyScheme
    from nasforge.hardware_models._lut import LatencyTable
    from nasforge.hardware_models._profile import DeviceProfile
    from nasforge.hardware_models._regressor import BlockRegressors
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.search_spaces.block import Block

__all__ = ["BlockSumLatencyModel"]


class BlockSumLatencyModel(LatencyModel):
    """Latency = sum over blocks of table entry / regressor / analytical estimate.

    Args:
        profile: the device profile.
        table: measured entries, or None.
        regressors: per-family regressors, or None.
        analytic: the calibrated analytical estimate, or None.
        factor: multiplier applied to every number (derived devices; 1.0 otherwise).
        derived_from: the base device of a derived device ("" otherwise).
        keying: ``space`` (the space's registered key scheme, e.g. nn-Meter's) or ``block``
            (block-shape keys, for devices nasforge profiled).
        fusion: the runtime's fusion rule (None: the plain block sum).
        table_source: how measured entries are labelled in :meth:`explain` (where and with
            what they were measured, e.g. ``table (LiteRT ... on <CPU>)``).
    """

    def __init__(
        self,
        profile: DeviceProfile,
        *,
        table: LatencyTable | None = None,
        regressors: BlockRegressors | None = None,
        analytic: AnalyticEstimator | None = None,
        factor: float = 1.0,
        derived_from: str = "",
        keying: str = "space",
        fusion: Fusion | None = None,
        table_source: str = "table",
    ) -> None:
        if keying not in ("space", "block"):
            raise ValueError(f"`keying` must be 'space' or 'block', but got {keying=}")
        self.profile = profile
        self.table = table
        self.regressors = regressors
        self.analytic = analytic
        self.factor = float(factor)
        self.derived_from = derived_from
        self.keying = keying
        self.fusion = fusion if fusion is not None else Fusion()
        self.table_source = table_source
        self._get_scheme = block_key_scheme if keying == "block" else get_key_scheme
        self._means: dict[str, float] = table.means if table is not None else {}
        self._keys: dict[str, tuple[float, Provenance, str]] = {}
        self._segments: dict[str, dict[Hashable, float]] = {}
        self._code_ms: dict[SearchSpace, np.ndarray] = {}  # per space: ms per block code

    # ---- key resolution ------------------------------------------------------------------
    def lookup(self, keys: Sequence[str]) -> list[tuple[float, Provenance, str]]:
        """``(ms, provenance, source)`` of each key (cached).

        Raises:
            MissingLatencyError: a key with no entry, regressor or calibrated estimate.
        """
        new = [k for k in dict.fromkeys(keys) if k not in self._keys]
        if new:
            self._resolve(new)
        return [self._keys[k] for k in keys]

    def _resolve(self, keys: list[str]) -> None:
        derived = self.factor != 1.0 or bool(self.derived_from)
        tag = f" x {self.factor:g} ({self.derived_from})" if derived else ""
        fuse = self.fusion
        if fuse.n_networks:
            tag += " + fusion"

        def put(k: str, ms: float, prov: Provenance, src: str) -> None:
            if not np.isfinite(ms) or ms <= 0:
                raise MissingLatencyError(
                    f"{self.name}: {src} gave a non-positive or non-finite latency {ms!r} for "
                    f"key {k!r}; the table or regressor is broken, refit or re-import it")
            self._keys[k] = (fuse.block(ms * self.factor, self._mparams(k)),
                             "derived" if derived else prov, src + tag)

        rest: list[str] = []
        for k in keys:
            ms = self._means.get(k)
            if ms is not None:
                put(k, ms, "measured", self.table_source)
            else:
                rest.append(k)
        if rest and self.regressors is not None:
            by_reg = [k for k in rest if self.regressors.has(key_family(k))]
            if by_reg:
                for k, ms in zip(by_reg, self.regressors.predict(by_reg).tolist(), strict=True):
                    put(k, ms, "predicted", "regressor")
                done = set(by_reg)
                rest = [k for k in rest if k not in done]
        if rest:
            if self.analytic is None:
                raise MissingLatencyError(
                    f"{self.name}: no latency for key {rest[0]!r} (family "
                    f"{key_family(rest[0])!r}): the device has no table entry and no regressor "
                    "for it; import a table that holds it (nas hw import) or profile the device "
                    "(nas profile)")
            for k, ms in zip(rest, self.analytic.predict(rest).tolist(), strict=True):
                err = self.analytic.calibration_error(key_family(k))
                put(k, ms, "predicted", f"analytic (calib. err {err:.1%})")

    def _mparams(self, key: str) -> float:
        """Weights (millions) of the block ``key`` names, when the fusion rule charges them.

        Raises:
            MissingLatencyError: the rule has a weights term but ``key`` is no block-shape key.
        """
        if not self.fusion.per_mparam_ms:
            return 0.0
        if not is_block_key(key):
            raise MissingLatencyError(
                f"{self.name}: its fusion rule charges blocks by their weights, but key {key!r} "
                "is not a block-shape key; re-profile the device (nas profile)")
        return block_params(block_from_key(key)) / 1e6

    # ---- the contract ---------------------------------------------------------------------
    def _scheme(self, arch: Arch) -> tuple[SearchSpace, KeyScheme]:
        return get_space(arch.space), self._get_scheme(arch.space)

    def keys(self, arch: Arch) -> list[str]:
        """The latency keys of ``arch``'s blocks."""
        space, scheme = self._scheme(arch)
        return scheme.keys(space.blocks(arch))

    def explain(self, arch: Arch) -> list[BlockLatency]:
        space, scheme = self._scheme(arch)
        blocks = space.blocks(arch)
        keys = scheme.keys(blocks)
        return [BlockLatency(b, k, ms, prov, src) for b, k, (ms, prov, src) in
                zip(blocks, keys, self.lookup(keys), strict=True)]

    def predict_many(self, archs: Sequence[Arch]) -> np.ndarray:
        if archs and all(a.space == archs[0].space for a in archs):
            space = get_space(archs[0].space)
            if self._indexed(space):
                try:
                    idx = space.to_indices(archs)  # type: ignore[attr-defined]
                except InvalidArchitectureError:  # a value outside the registered options
                    idx = None
                if idx is not None:
                    return self.predict_indices(space, idx)  # type: ignore[return-value]
        return self._predict_each(archs)

    def _indexed(self, space: SearchSpace) -> bool:
        """Whether :meth:`predict_indices` serves ``space`` (segment codes exist)."""
        scheme = self._get_scheme(space.name)
        if scheme.segment_of_stage:
            return bool(scheme.segment_columns) and hasattr(space, "index_names")
        return bool(getattr(space, "num_segment_codes", lambda: 0)())

    def predict_indices(self, space: SearchSpace, matrix: np.ndarray) -> np.ndarray | None:
        """:meth:`predict_many` of the rows of an index matrix of ``space`` (bitwise equal), or
        None when neither the key scheme nor the space offers segment codes
        (:mod:`~nasforge.hardware_models._indexed`).

        Args:
            space: a ChoiceSpace whose rows ``matrix`` holds.
            matrix: (n, num_choices) option indices of valid (repaired) rows.

        Returns:
            float64 array of shape (n,), or None.

        Raises:
            MissingLatencyError: a block with no entry, regressor or calibrated estimate.
        """
        sc = segment_codes(space, self._get_scheme(space.name), matrix)
        if sc is None:
            return None
        ms = self._code_ms.get(space)
        if ms is None or len(ms) != sc.size:
            ms = self._code_ms[space] = np.full(sc.size, np.nan)
        present = sc.codes >= 0
        safe = np.where(present, sc.codes, 0)
        vals = np.where(present, ms[safe], 0.0)
        missing = np.isnan(vals).any(axis=1)
        if missing.any():
            self._fill_codes(space, np.asarray(matrix)[missing], sc.codes[missing], sc.by_stage,
                             ms)
            vals = np.where(present, ms[safe], 0.0)
        out = sum_columns(vals)
        return out + self.fusion.per_network_ms if self.fusion.per_network_ms else out

    def _fill_codes(self, space: SearchSpace, matrix: np.ndarray, codes: np.ndarray,
                    by_stage: dict[str, int] | None, ms: np.ndarray) -> None:
        """Compute the codes of ``codes`` not in ``ms`` yet: one architecture per row that
        brings a new code is built, keyed and summed per column.

        Raises:
            MissingLatencyError: a row whose blocks do not fit its codes (a hook is wrong).
        """
        rows: list[int] = []  # the rows that bring a code not known or planned yet
        planned: set[int] = set()
        unknown = np.isnan(ms)
        for r, cells in enumerate(codes.tolist()):
            new_cells = [c for c in cells if c >= 0 and unknown[c] and c not in planned]
            if new_cells:
                planned.update(new_cells)
                rows.append(r)
        todo: list[tuple[np.ndarray, list[Block], list[str]]] = []
        archs = space.from_indices(matrix[rows], check=False)  # type: ignore[attr-defined]
        for r, arch in zip(rows, archs, strict=True):
            reg_space, scheme = self._scheme(arch)
            blocks = reg_space.blocks(arch)
            todo.append((codes[r], blocks, scheme.keys(blocks)))
        new = list(dict.fromkeys(k for _, _, keys in todo for k in keys if k not in self._keys))
        if new:
            self._resolve(new)
        for cells, blocks, keys in todo:
            sums = column_sums(cells, blocks, [self._keys[k][0] for k in keys], by_stage)
            if sums is None:
                raise MissingLatencyError(
                    f"space {space.name!r}: the segment codes of a row do not fit its "
                    f"{len(blocks)} blocks; its segment_codes hook or its key scheme's "
                    "segment_columns is wrong")
            for j, v in sums.items():
                ms[cells[j]] = v

    def _predict_each(self, archs: Sequence[Arch]) -> np.ndarray:
        """:meth:`predict_many` one architecture at a time (cached per segment)."""
        out = np.empty(len(archs), dtype=np.float64)
        last_space = ""
        segments = None
        get = None
        pending: list[int] = []
        for i, a in enumerate(archs):
            if a.space != last_space:
                last_space = a.space
                segments = self._get_scheme(a.space).segments
                get = self._segments.setdefault(a.space, {}).__getitem__
            segs = segments(a) or (a,)  # type: ignore[misc]
            try:
                out[i] = sum(map(get, segs))  # type: ignore[arg-type]
            except KeyError:
                pending.append(i)
        if pending:
            self._fill([archs[i] for i in pending])
            for i in pending:
                a = archs[i]
                cache = self._segments[a.space]
                out[i] = sum(cache[s] for s in self._get_scheme(a.space).segments(a) or (a,))
        return out + self.fusion.per_network_ms if self.fusion.per_network_ms else out

    def _fill(self, archs: Sequence[Arch]) -> None:
        """Compute and cache the segment latencies of ``archs`` (batched key resolution).

        Only architectures that bring a segment not yet cached or planned are decomposed.
        """
        todo: list[tuple[Arch, KeyScheme, tuple[Hashable, ...] | None, list[str], list[str]]]
        todo = []
        planned: set[tuple[str, Hashable]] = set()
        new_keys: dict[str, None] = {}
        for a in archs:
            space, scheme = self._scheme(a)
            cache = self._segments.setdefault(a.space, {})
            segs = scheme.segments(a)
            ids = segs if segs is not None else (a,)
            if all(s in cache or (a.space, s) in planned for s in ids):
                continue
            planned.update((a.space, s) for s in ids)
            blocks = space.blocks(a)
            keys = scheme.keys(blocks)
            todo.append((a, scheme, segs, keys, [b.stage for b in blocks]))
            for k in keys:
                if k not in self._keys:
                    new_keys[k] = None
        if new_keys:
            self._resolve(list(new_keys))
        for a, scheme, segs, keys, stages in todo:
            cache = self._segments[a.space]
            if segs is None:
                cache[a] = sum(self._keys[k][0] for k in keys)
                continue
            sums = [0.0] * len(segs)
            for k, st in zip(keys, stages, strict=True):
                j = scheme.segment_of_stage.get(st)
                if j is None:
                    raise MissingLatencyError(
                        f"block stage {st!r} has no segment in the {scheme.name} key scheme "
                        f"({', '.join(scheme.segment_of_stage)}); it does not fit space "
                        f"{a.space!r}")
                sums[j] += self._keys[k][0]
            for s, v in zip(segs, sums, strict=True):
                cache[s] = v
