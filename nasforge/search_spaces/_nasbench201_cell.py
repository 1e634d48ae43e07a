"""The NAS-Bench-201 cell: its ops and edges, the ``arch_str`` format, the cell as a graph.

Paper:
    NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search,
    https://arxiv.org/abs/2001.00326

A cell is a DAG of 4 nodes (0 = input, 3 = output); every node ``i`` sums one op applied to
each earlier node ``j < i``, so a cell has 6 edges, each one of
``{none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3}`` (5^6 = 15,625 cells). Edges
are kept in the standard order of the ``arch_str``::

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|     i.e.  1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2

The cell is also a :class:`networkx.DiGraph` (:func:`cell_graph`). That graph finds degenerate
cells (:func:`is_degenerate`: no input-to-output path through non-``none`` edges), prunes edges
that lie on no such path (:func:`prune`), and gives a canonical form (:func:`canonical_arch`,
:func:`canonical_id`) so that isomorphic cells are evaluated once. The space over these cells
is :class:`~nasforge.search_spaces._nasbench201.NB201Space`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import networkx as nx

from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces.arch import Arch

__all__ = [
    "NB201_EDGES",
    "NB201_OPS",
    "NB201_PATHS",
    "NB201Arch",
    "arch_from_nb201_str",
    "arch_to_nb201_str",
    "canonical_arch",
    "canonical_id",
    "cell_graph",
    "is_degenerate",
    "live_edges",
    "prune",
    "unique_str",
]

#: The space the cells belong to (the tabular space).
SPACE_NAME = "nasbench201"
#: The op set, in NAS-Bench-201's order.
NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                              "avg_pool_3x3")
#: The 6 edges as (to_node, from_node), in ``arch_str`` order.
NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
#: The 4 input-to-output paths, each as the indices of its edges (0->3, 0->1->3, 0->2->3,
#: 0->1->2->3).
NB201_PATHS: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
PATH_NAMES = ("0-3", "0-1-3", "0-2-3", "0-1-2-3")
INPUT, OUTPUT, NUM_NODES = 0, 3, 4
_EDGE_INDEX = {e: i for i, e in enumerate(NB201_EDGES)}

@dataclass(frozen=True)
class NB201Arch(Arch):
    """A NAS-Bench-201 cell.

    Attributes:
        edges: the 6 edge ops in the standard order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2.

    Example:
        >>> a = NB201Arch.from_arch_str(
        ...     "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
        ...     "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
        >>> a.edges[2]
        'avg_pool_3x3'
        >>> NB201Arch.from_arch_str(a.to_arch_str()) == a
        True
    """

    edges: tuple[str, ...] = ()

    def to_arch_str(self) -> str:
        """The standard NAS-Bench-201 ``arch_str``."""
        return arch_to_nb201_str(self)

    @classmethod
    def from_arch_str(cls, text: str) -> NB201Arch:
        """Parse and validate a standard ``arch_str`` (see :func:`arch_from_nb201_str`)."""
        return arch_from_nb201_str(text)


# ---- the nb201 exchange format ---------------------------------------------------------------
def arch_to_nb201_str(arch: NB201Arch) -> str:
    """The standard ``arch_str`` of ``arch``: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
    e = arch.edges
    groups = ([0], [1, 2], [3, 4, 5])
    return "+".join(
        "|" + "|".join(f"{e[k]}~{NB201_EDGES[k][1]}" for k in g) + "|" for g in groups
    )


def arch_from_nb201_str(text: str) -> NB201Arch:
    """Parse a NAS-Bench-201 ``arch_str`` into a validated :class:`NB201Arch`.

    Within a node the inputs may be listed in any order; each earlier node must appear once.

    Args:
        text: e.g. ``"|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|"``
            ``"nor_conv_3x3~1|skip_connect~2|"``; surrounding whitespace is ignored.

    Returns:
        The cell, ``space="nasbench201"``.

    Raises:
        InvalidInputError: the text is malformed; the message names the offending token.
        InvalidArchitectureError: an op is not in the op set; the message names the edge, the op
            and the allowed set.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"an nb201 arch_str must be a string, got {type(text).__name__}")
    fmt = "'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'"
    s = text.strip()
    groups = s.split("+")
    if len(groups) != NUM_NODES - 1:
        raise InvalidInputError(
            f"an nb201 arch_str has {NUM_NODES - 1} node groups joined by '+' ({fmt}), got "
            f"{len(groups)} in {s!r}"
        )
    edges: list[str | None] = [None] * len(NB201_EDGES)
    for node, group in enumerate(groups, start=1):
        if len(group) < 2 or not group.startswith("|") or not group.endswith("|"):
            raise InvalidInputError(
                f"nb201 arch_str: node {node} group {group!r} must start and end with '|' "
                f"(format {fmt})"
            )
        tokens = group[1:-1].split("|")
        if len(tokens) != node:
            raise InvalidInputError(
                f"nb201 arch_str: node {node} takes {node} input(s) (nodes 0..{node - 1}), but "
                f"group {group!r} has {len(tokens)} token(s)"
            )
        seen: set[int] = set()
        for tok in tokens:
            op, sep, src = tok.rpartition("~")
            if not sep or not op or not src.isdigit():
                raise InvalidInputError(
                    f"nb201 arch_str: token {tok!r} of node {node} must be 'op~input' with an "
                    f"integer input, e.g. 'nor_conv_3x3~0'"
                )
            j = int(src)
            if j >= node or j in seen:
                why = "is listed twice" if j in seen else f"is not an earlier node (0..{node - 1})"
                raise InvalidInputError(
                    f"nb201 arch_str: token {tok!r} of node {node}: input {j} {why}; node "
                    f"{node} takes each of nodes 0..{node - 1} exactly once"
                )
            seen.add(j)
            if op not in NB201_OPS:
                raise InvalidArchitectureError(
                    f"{SPACE_NAME}: edge {node}<-{j} (token {tok!r}): op {op!r} is not allowed; "
                    f"allowed: {{{', '.join(NB201_OPS)}}}"
                )
            edges[_EDGE_INDEX[(node, j)]] = op
    return NB201Arch(space=SPACE_NAME, edges=tuple(e for e in edges if e is not None))


# ---- the cell as a graph ---------------------------------------------------------------------
def cell_graph(arch: NB201Arch, keep_none: bool = False) -> nx.DiGraph:
    """The cell as a DiGraph on nodes 0..3 with an ``op`` attribute per edge.

    Args:
        arch: the cell.
        keep_none: keep ``none`` edges (they carry nothing); by default they are left out.

    Returns:
        A graph whose nodes carry ``role`` (``input``, ``inner``, ``output``) and whose edges
        ``j -> i`` carry ``op`` and ``index`` (the position in :attr:`NB201Arch.edges`).
    """
    g = nx.DiGraph()
    for n in range(NUM_NODES):
        g.add_node(n, role="input" if n == INPUT else "output" if n == OUTPUT else "inner")
    for k, ((i, j), op) in enumerate(zip(NB201_EDGES, arch.edges, strict=True)):
        if keep_none or op != "none":
            g.add_edge(j, i, op=op, index=k)
    return g


@lru_cache(maxsize=1 << 15)
def _live(edges: tuple[str, ...]) -> tuple[bool, ...]:
    g = cell_graph(NB201Arch(space=SPACE_NAME, edges=edges))
    from_in = nx.descendants(g, INPUT) | {INPUT}
    to_out = nx.ancestors(g, OUTPUT) | {OUTPUT}
    return tuple(
        op != "none" and j in from_in and i in to_out
        for (i, j), op in zip(NB201_EDGES, edges, strict=True)
    )


def live_edges(arch: NB201Arch) -> tuple[bool, ...]:
    """Per edge: whether it lies on an input-to-output path of non-``none`` edges."""
    return _live(tuple(arch.edges))


def is_degenerate(arch: NB201Arch) -> bool:
    """True when no path of non-``none`` edges joins input and output (the output is constant)."""
    return not any(live_edges(arch))


def prune(arch: NB201Arch) -> NB201Arch:
    """The same cell with every edge that lies on no input-to-output path set to ``none``.

    Such an edge either feeds a node that never reaches the output, or reads a node that the
    input never reaches (a zero tensor), so it cannot change the cell's output. A degenerate cell
    prunes to all-``none``.
    """
    live = live_edges(arch)
    return NB201Arch(space=arch.space,
                     edges=tuple(op if ok else "none" for op, ok in zip(arch.edges, live,
                                                                          strict=True)))


def _relabel(edges: tuple[str, ...], perm: dict[int, int]) -> tuple[str, ...] | None:
    """Edge ops after renaming nodes by ``perm``; None when an edge would point backwards."""
    out = ["none"] * len(NB201_EDGES)
    for (i, j), op in zip(NB201_EDGES, edges, strict=True):
        if op == "none":
            continue
        k = _EDGE_INDEX.get((perm[i], perm[j]))
        if k is None:  # maps to i <- j with j >= i: not a cell
            return None
        out[k] = op
    return tuple(out)


@lru_cache(maxsize=1 << 15)
def _canonical(edges: tuple[str, ...]) -> tuple[str, ...]:
    pruned = tuple(op if ok else "none" for op, ok in zip(edges, _live(edges), strict=True))
    inner = [n for n in range(NUM_NODES) if n not in (INPUT, OUTPUT)]
    best: tuple[str, ...] | None = None
    best_key: str | None = None
    for order in itertools.permutations(inner):
        perm = {INPUT: INPUT, OUTPUT: OUTPUT, **dict(zip(inner, order, strict=True))}
        cand = _relabel(pruned, perm)
        if cand is None:
            continue
        key = arch_to_nb201_str(NB201Arch(space=SPACE_NAME, edges=cand))
        if best_key is None or key < best_key:
            best, best_key = cand, key
    if best is None:  # pragma: no cover - the identity is always a valid relabelling
        raise RuntimeError("no valid relabelling of a cell")
    return best


def canonical_arch(arch: NB201Arch) -> NB201Arch:
    """The canonical member of ``arch``'s isomorphism class.

    The cell is pruned (:func:`prune`), then every renaming of the inner nodes 1, 2 that keeps
    the input, the output and the edge directions (``j -> i`` only for ``j < i``) is tried; the
    one with the smallest ``arch_str`` wins. Nodes 1 and 2 are therefore interchangeable exactly
    when the pruned cell has no live ``2<-1`` edge. Two cells have the same canonical form iff
    their pruned graphs are isomorphic with input, output and edge ops preserved.
    """
    return NB201Arch(space=arch.space, edges=_canonical(tuple(arch.edges)))


def canonical_id(arch: NB201Arch) -> str:
    """The ``arch_id`` of :func:`canonical_arch`: equal for isomorphic cells, so a cache keyed on
    it evaluates each class once."""
    return canonical_arch(arch).arch_id


def unique_str(arch: NB201Arch) -> str:
    """NAS-Bench-201's functional identity of a cell (``CellStructure.to_unique_str(True)``).

    Coarser than :func:`canonical_id`: it also treats ``skip_connect`` as the identity and sums
    as commutative, so cells computing the same expression share it (6,466 classes over the
    15,625 cells, as in the paper; graph isomorphism gives 8,765).

    Example:
        >>> unique_str(NB201Arch.from_arch_str(
        ...     "|skip_connect~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|"))
        '#+#+(0)@nor_conv_3x3'
    """
    nodes = {INPUT: str(INPUT)}
    for i in range(1, NUM_NODES):
        terms = []
        for (to, j), op in zip(NB201_EDGES, arch.edges, strict=True):
            if to != i:
                continue
            if op == "none" or nodes[j] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(nodes[j])
            else:
                terms.append(f"({nodes[j]})@{op}")
        nodes[i] = "+".join(sorted(terms))
    return nodes[OUTPUT]
