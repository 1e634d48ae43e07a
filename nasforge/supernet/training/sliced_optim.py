"""Slice gradients: a subnet's gradient kept at the size of the slice it used.

A supernet's parameters are max-size tensors and a subnet reads prefix slices (and centre-crops)
of them. Autograd's slice backward turns each slice's gradient into a zero-filled max-size
tensor, and a stock optimizer then walks every element of every max-size tensor — for a small
subnet that costs more than its own convolutions' backward (``benchmarks/supernet_overhead.py``).

With a :class:`SliceGrads` store enabled on a supernet
(:meth:`nasforge.supernet.base.Supernet.enable_slice_grads`), the dynamic ops take their slices
through :func:`nasforge.supernet.ops.take` as leaf views handed out by the store, so the
slice-sized gradient is collected by the store instead of landing in ``param.grad``. Then:

* :meth:`SliceGrads.gather` gives, per parameter, the bounding box of the slices used since the
  last ``zero_grad`` and the summed gradient over that box (a single slice's gradient is kept
  as is, without a copy);
* :class:`SlicedSGD` and :class:`SlicedAdamW` are ``torch.optim.SGD``/``AdamW`` whose ``step``
  updates each parameter over its box only (and whole parameters with an ordinary ``.grad`` as
  usual), and :func:`clip_grad_norm_` clips by the global norm over both kinds.

Semantics ("lazy", as TensorFlow's LazyAdam and PyTorch's ``SparseAdam``): inside the box every
element gets exactly the stock update (bitwise — the same ops in the same order as torch's
single-tensor path); outside it nothing changes — no weight decay and no momentum drift for
weights the step's subnets did not use. The gradient there is zero, so only those two terms
differ from the stock optimizer, and both would otherwise keep moving inactive channels. Adam's
bias correction uses the parameter's step count (incremented whenever it is stepped). Without a
store the classes are the stock optimizers, state-dict format included.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any
from typing import ClassVar

import torch

__all__ = [
    "Region",
    "SliceGrads",
    "SlicedAdamW",
    "SlicedSGD",
    "clip_grad_norm_",
    "gradients",
]

#: One ``slice(start, stop)`` per dimension of a parameter.
Region = tuple[slice, ...]


class SliceGrads:
    """Slice-sized gradients of parameters, accumulated since the last :meth:`clear`.

    :meth:`take` (called by :func:`nasforge.supernet.ops.take`) hands out each slice as a leaf
    view of the parameter — it shares the parameter's storage and version counter, so it sees
    every update and autograd catches in-place changes between forward and backward — and
    autograd accumulates the slice's gradient into that leaf's ``.grad`` (in C++, without the
    max-size zero-filled tensor of a slice backward). The slice-aware optimizers read the
    gradients with :meth:`gather` and clear them in ``zero_grad``.
    """

    def __init__(self) -> None:
        # id(param) -> (param, [(region, grad), ...])
        self._grads: dict[int, tuple[torch.Tensor, list[tuple[Region, torch.Tensor]]]] = {}
        self._seen: set[int] = set()
        self._leaves: list[tuple[torch.Tensor, Region, torch.Tensor]] = []

    def take(self, param: torch.Tensor, region: Region) -> torch.Tensor:
        """A leaf view ``param[region]`` whose gradient this store collects."""
        leaf = param.detach()[region].requires_grad_()
        self._leaves.append((param, region, leaf))
        return leaf

    def _collect(self) -> None:
        """Move the gradients autograd left on the handed-out leaves into the store."""
        if not self._leaves:
            return
        leaves, self._leaves = self._leaves, []
        for param, region, leaf in leaves:
            if leaf.grad is not None:
                self.add(param, region, leaf.grad)

    def add(self, param: torch.Tensor, region: Region, grad: torch.Tensor) -> None:
        """Record ``grad`` (shape of ``param[region]``) as a gradient of ``param``.

        ``region`` holds integer ``slice(start, stop)`` objects (step 1) for the leading
        dimensions; the others are whole.
        """
        if len(region) < param.dim():
            region = region + tuple(slice(0, n) for n in param.shape[len(region):])
        if id(grad) in self._seen or not grad.is_contiguous():
            # one tensor handed to two slices, or a transposed / expanded one: own a row-major
            # copy (clipping and all-reduce write in place; the update reads row-major)
            grad = grad.clone(memory_format=torch.contiguous_format)
        self._seen.add(id(grad))
        entry = self._grads.get(id(param))
        if entry is None:
            self._grads[id(param)] = (param, [(region, grad)])
        else:
            entry[1].append((region, grad))

    def gather(self, param: torch.Tensor) -> tuple[Region, torch.Tensor] | None:
        """``(box, gradient over box)`` of ``param``, or ``None`` if it has no slice gradient.

        Gradients of different slices are summed into their bounding box (stored back, so
        in-place changes to the result — clipping, all-reduce — persist until ``step``).
        """
        self._collect()
        entry = self._grads.get(id(param))
        if entry is None:
            return None
        parts = entry[1]
        if len(parts) > 1:
            box = tuple(slice(min(r[d].start for r, _ in parts), max(r[d].stop for r, _ in parts))
                        for d in range(param.dim()))
            total = param.new_zeros([s.stop - s.start for s in box])
            for region, g in parts:
                total[tuple(slice(r.start - b.start, r.stop - b.start)
                            for r, b in zip(region, box, strict=True))].add_(g)
            parts[:] = [(box, total)]
        return parts[0]

    def pop(self, param: torch.Tensor) -> None:
        """Drop ``param``'s slice gradients."""
        self._grads.pop(id(param), None)

    def __len__(self) -> int:
        self._collect()
        return len(self._grads)

    def clear(self) -> None:
        """Drop every gradient (and forget the leaves handed out)."""
        self._grads.clear()
        self._seen.clear()
        self._leaves.clear()

    def full_grad(self, param: torch.Tensor) -> torch.Tensor | None:
        """The max-size gradient this store implies for ``param`` (zeros outside the box), or
        ``None``; for inspection and tests, not for the training path."""
        found = self.gather(param)
        if found is None:
            return None
        box, g = found
        full = torch.zeros_like(param)
        full[box] = g
        return full

    def __deepcopy__(self, memo: dict[int, Any]) -> SliceGrads:
        return SliceGrads()  # gradients are transient: a copied model starts with none


def gradients(params: Iterable[torch.Tensor], grads: SliceGrads | None = None
              ) -> Iterator[tuple[torch.Tensor, Region | None, torch.Tensor]]:
    """``(param, box, gradient)`` for each parameter with a gradient.

    A slice gradient from ``grads`` comes with its box; an ordinary ``param.grad`` with box
    ``None`` (whole). A parameter with both gets the slice gradient added into ``.grad``.
    """
    for p in params:
        found = None if grads is None else grads.gather(p)
        if p.grad is not None:
            if p.grad.is_sparse:
                raise ValueError("slice-aware optimizers do not support sparse gradients")
            if found is not None and grads is not None:
                p.grad[found[0]].add_(found[1])
                grads.pop(p)
            yield p, None, p.grad
        elif found is not None:
            yield p, found[0], found[1]


class _Sliced:
    """Mixin: the store, the refusal of unsupported options, and ``zero_grad``."""

    #: options the ``step`` implements only at these (torch's default) values
    _ONLY: ClassVar[dict[str, Any]] = {}
    slice_grads: SliceGrads | None
    param_groups: list[dict[str, Any]]

    def __init__(self, params: Iterable[Any], slice_grads: SliceGrads | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("foreach", False)
        super().__init__(params, **kwargs)  # type: ignore[call-arg]
        self.slice_grads = slice_grads
        for group in self.param_groups:
            for key, stock in self._ONLY.items():
                if group.get(key, stock) != stock:
                    raise ValueError(f"{type(self).__name__} supports {key}={stock!r} only, "
                                     f"got {group[key]!r}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """``torch.optim.Optimizer.zero_grad`` plus dropping the slice gradients."""
        super().zero_grad(set_to_none)  # type: ignore[misc]
        if self.slice_grads is not None:
            self.slice_grads.clear()


class SlicedSGD(_Sliced, torch.optim.SGD):
    """``torch.optim.SGD`` that steps slice gradients over their boxes (module docstring).

    Args:
        params: parameters or parameter groups.
        slice_grads: the supernet's :class:`SliceGrads`; ``None`` gives plain SGD.
        **kwargs: ``torch.optim.SGD`` options (``lr``, ``momentum``, ``nesterov``,
            ``weight_decay``; ``dampening``, ``maximize`` and sparse gradients are not
            supported).
    """

    _ONLY: ClassVar[dict[str, Any]] = {"dampening": 0, "maximize": False,
                                       "differentiable": False}

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One SGD step: torch's single-tensor ops, applied to a group's tensors at once
        (``torch._foreach_*``: one call per op instead of one per parameter; on CPU the same
        per-tensor kernels run, so the result is bitwise that of the single-tensor path)."""
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            lr, wd = float(group["lr"]), float(group["weight_decay"])
            momentum, nesterov = float(group["momentum"]), bool(group["nesterov"])
            pvs, grads, bufs = [], [], []
            for p, box, grad in gradients(group["params"], self.slice_grads):
                pvs.append(p if box is None else p[box])
                grads.append(grad)
                if momentum:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:  # zeros: momentum * 0 + g == g, torch's first step
                        buf = state["momentum_buffer"] = torch.zeros_like(
                            p, memory_format=torch.preserve_format)
                    bufs.append(buf if box is None else buf[box])
            if not pvs:
                continue
            if wd:
                grads = list(torch._foreach_add(grads, pvs, alpha=wd))
            if momentum:
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, grads)
                grads = (list(torch._foreach_add(grads, bufs, alpha=momentum)) if nesterov
                         else bufs)
            torch._foreach_add_(pvs, grads, alpha=-lr)
        return loss


class SlicedAdamW(_Sliced, torch.optim.AdamW):
    """``torch.optim.AdamW`` that steps slice gradients over their boxes (module docstring).

    Args:
        params: parameters or parameter groups.
        slice_grads: the supernet's :class:`SliceGrads`; ``None`` gives plain AdamW.
        **kwargs: ``torch.optim.AdamW`` options (``lr``, ``betas``, ``eps``,
            ``weight_decay``; ``amsgrad``, ``maximize``, ``capturable`` and ``fused`` are not
            supported).
    """

    _ONLY: ClassVar[dict[str, Any]] = {"amsgrad": False, "maximize": False, "capturable": False,
                                       "differentiable": False, "fused": None}

    def __init__(self, params: Iterable[Any], slice_grads: SliceGrads | None = None,
                 **kwargs: Any) -> None:
        super().__init__(params, slice_grads, **kwargs)
        # id(step tensor) -> (that tensor, its value): the bias corrections need the count as
        # a number, and reading the tensor per parameter per step is a host read each
        self._counts: dict[int, tuple[torch.Tensor, float]] = {}

    def _count(self, step_t: torch.Tensor) -> float:
        """``step_t += 1`` and its new value, read from the tensor only when not known (a new
        tensor, e.g. after ``load_state_dict``; the state's step tensors are this optimizer's
        own: one shared with another optimizer's state would be counted by both)."""
        step_t += 1
        known = self._counts.get(id(step_t))
        value = known[1] + 1.0 if known is not None and known[0] is step_t else float(
            step_t.item())
        self._counts[id(step_t)] = (step_t, value)
        return value

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One AdamW step: torch's single-tensor ops, applied to a group's tensors at once
        (``torch._foreach_*``; bitwise the single-tensor result on CPU, see
        :meth:`SlicedSGD.step`)."""
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            lr, wd, eps = float(group["lr"]), float(group["weight_decay"]), float(group["eps"])
            beta1, beta2 = (float(b) for b in group["betas"])
            pvs, grads, ms, vs, c1, c2 = [], [], [], [], [], []
            for p, box, grad in gradients(group["params"], self.slice_grads):
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0, dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(
                        p, memory_format=torch.preserve_format)
                pv, m, v = p, state["exp_avg"], state["exp_avg_sq"]
                if box is not None:
                    pv, m, v = pv[box], m[box], v[box]
                step = self._count(state["step"])
                pvs.append(pv)
                grads.append(grad)
                ms.append(m)
                vs.append(v)
                c1.append(-lr / (1 - beta1**step))
                c2.append((1 - beta2**step) ** 0.5)
            if not pvs:
                continue
            if wd:
                torch._foreach_mul_(pvs, 1 - lr * wd)
            torch._foreach_lerp_(ms, grads, 1 - beta1)
            torch._foreach_mul_(vs, beta2)
            torch._foreach_addcmul_(vs, grads, grads, value=1 - beta2)
            denom = torch._foreach_sqrt(vs)
            torch._foreach_div_(denom, c2)
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(pvs, ms, denom, c1)
        return loss


def clip_grad_norm_(params: Iterable[torch.Tensor], max_norm: float,
                    slice_grads: SliceGrads | None = None) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` (L2, ``foreach=False``) over ordinary and slice
    gradients (:func:`gradients`); outside the boxes gradients are zero, so the norm is the
    max-size one up to summation order.

    Returns:
        The global norm before clipping (a 0-d tensor).
    """
    grads = [g for _, _, g in gradients(params, slice_grads)]
    if not grads:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    torch._foreach_mul_(grads, coef)
    return total
