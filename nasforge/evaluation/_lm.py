"""Language-model accuracy sources: validation loss / perplexity, and BLEU for translation.

- :class:`LMLossObjective`: the inherited subnet's mean per-token cross-entropy (nats) on the
  validation split of the text it was trained on (``lm``: next token at the subnet's own
  context length; ``seq2seq``: teacher-forced target tokens, padding skipped). Lower is better:
  the objective's direction is ``minimize``, which every strategy, the Pareto front and the best
  pick read (``metric="ppl"`` reports ``exp(loss)`` instead, also minimised). LayerNorm needs no
  recalibration, so a subnet is scored by activating it and reading the split.
- :class:`BLEUObjective`: corpus BLEU (sacrebleu, its default 13a tokenisation) of greedy
  decoding on the validation pairs, maximised. Decoding runs the model's incremental API with
  its KV cache when it has one (``encode`` + ``decode_step``), else re-runs the decoder on the
  growing prefix (the same tokens, slower).
- :class:`LMStandaloneLoss`: the stand-alone reference of ``nas rank``: each subnet's own
  randomly initialised model (the supernet's ``extract`` of a freshly seeded supernet) trained
  alone on the same text for ``steps`` steps, then its validation loss.
- :class:`CapacityProxy`: what ``quick`` means for the ``hat_*`` spaces. A HAT SuperTransformer
  (71-92M parameters) cannot be trained on a laptop CPU in minutes (one sandwich step of batch
  8 took over a minute on the 2-core machine here), so with no ``--supernet`` the search ranks
  SubTransformers by ``log10`` of their parameter count: an honest, training-free proxy (in
  HAT's results a larger SubTransformer reaches a lower loss at the same training) that makes
  the search return the largest SubTransformer within the latency budget. Its provenance says
  so; a real source is ``--supernet`` of ``nas train --space hat_* --data textpairs:PATH``.

Every source memoises per ``arch_id`` and records in :meth:`provenance` the data, its
provenance (corpus, Python version, tokenizer) and how many tokens scored each subnet.

Example:
    >>> import math
    >>> round(LMLossObjective.to_metric(math.log(10.0), "ppl"), 6)
    10.0
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.evaluation.base import AccuracyObjective
from nasforge.progress import ProgressBar
from nasforge.strategies.objectives import ArchMemo

if TYPE_CHECKING:
    import torch

    from nasforge.data import BaseImageSource
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["BLEUObjective", "CapacityProxy", "LMLossObjective", "LMStandaloneLoss",
           "greedy_decode", "train_lm_standalone"]

logger = logging.getLogger(__name__)

_METRICS = ("loss", "ppl")


def _check_text(data: BaseImageSource, who: str) -> None:
    if getattr(data, "task", "image") not in ("lm", "seq2seq"):
        raise InvalidInputError(f"{who} scores text; data {data.name!r} is {data.task!r} data "
                                "(use a supernet trained on text:, pystdlib, textpairs: or "
                                "pystdlib-pairs)")


class LMLossObjective(AccuracyObjective):
    """Validation loss (or perplexity) of inherited subnets (see the module docstring).

    Args:
        supernet: a trained text supernet (``set_active``, ``forward``; ``space``).
        data: the text source it was trained on.
        batch_size: validation windows / pairs per batch.
        val_batches: score this many validation batches (``None``: the whole split).
        device: compute device.
        metric: ``loss`` (nats per token) or ``ppl`` (``exp(loss)``).
        checkpoint: where the supernet came from (provenance).
        upper: feasibility bound (``--set`` style constraints on the loss).
        name: column name.

    Raises:
        InvalidInputError: image data, or an unknown metric.
    """

    metric_label = "loss"
    batched = True

    def __init__(self, supernet: torch.nn.Module, data: BaseImageSource, *, batch_size: int = 32,
                 val_batches: int | None = 16, device: str = "cpu", metric: str = "loss",
                 checkpoint: str | Path | None = None, upper: float | None = None,
                 name: str = "accuracy") -> None:
        _check_text(data, "LMLossObjective")
        if metric not in _METRICS:
            raise InvalidInputError(f"LM metric must be one of {', '.join(_METRICS)}, got "
                                    f"{metric!r}")
        super().__init__(name, "minimize", upper=upper, cheap=False)
        self.supernet, self.data = supernet, data
        self.batch_size, self.val_batches = batch_size, val_batches
        self.device, self.metric_name = device, metric
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.tokens = 0
        self._memo: ArchMemo[str] = ArchMemo()

    @property
    def metric(self) -> str:
        return self.metric_name

    @staticmethod
    def to_metric(loss: float, metric: str) -> float:
        """``loss`` as the reported metric (``ppl``: ``exp(loss)``)."""
        return math.exp(loss) if metric == "ppl" else loss

    def _score(self, archs: Sequence[Arch], todo: list[int]) -> list[float]:
        from nasforge.supernet.training.task import lm_loss
        from nasforge.supernet.training.task import task_for

        task = task_for(self.data)
        out = []
        for i in todo:
            self.supernet.set_active(archs[i])  # type: ignore[operator]
            loss, self.tokens = lm_loss(self.supernet, self.data, batch_size=self.batch_size,
                                        max_batches=self.val_batches, device=self.device,
                                        size=task.size(archs[i], self.data))
            if not math.isfinite(loss):
                raise InvalidInputError(f"supernet {self.checkpoint or '(in memory)'} gave a "
                                        f"non-finite loss for {archs[i].arch_id}")
            out.append(self.to_metric(loss, self.metric_name))
        return out

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        archs = list(archs)
        return self._memo.lookup([a.arch_id for a in archs],
                                 lambda todo: self._score(archs, todo))

    def provenance(self) -> dict[str, Any]:
        return {"kind": f"supernet validation {self.metric_name} (nats/token; lower is better)"
                if self.metric_name == "loss" else
                "supernet validation perplexity (lower is better)",
                "checkpoint": self.checkpoint, "data": self.data.name,
                "data_provenance": dict(getattr(self.data, "provenance", {})),
                "batch_size": self.batch_size, "val_batches": self.val_batches,
                # each subnet reads these windows at its own context (pairs: these pairs)
                "val_windows": self.data.num_val if self.val_batches is None else
                min(self.data.num_val, self.val_batches * self.batch_size)}


def greedy_decode(model: Any, src: torch.Tensor, bos: int, eos: int, max_len: int
                  ) -> list[list[int]]:
    """Greedy translations of ``src`` (B, S): token ids up to (not including) ``eos``.

    Uses ``model.encode(src)`` and ``model.decode_step(tokens, memory, cache)`` with
    ``model.new_cache()`` when the model has them (one new token per step, KV cache), else
    ``model(src, prefix)`` on the growing prefix.
    """
    import torch

    b = src.shape[0]
    tokens = torch.full((b, 1), bos, dtype=torch.long, device=src.device)
    done = torch.zeros(b, dtype=torch.bool, device=src.device)
    step = _incremental(model, src)
    with torch.no_grad():
        for _ in range(max_len):
            logits = step(tokens)
            nxt = logits[:, -1].argmax(dim=-1)
            nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
            done |= nxt == eos
            if bool(done.all()):
                break
    out = []
    for row in tokens[:, 1:].tolist():
        out.append(row[:row.index(eos)] if eos in row else row)
    return out


def _incremental(model: Any, src: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``step(tokens so far) -> logits`` with the KV cache when the model has one."""
    if all(hasattr(model, n) for n in ("encode", "decode_step", "new_cache")):
        memory = model.encode(src)
        cache = model.new_cache()
        seen = [0]

        def cached(tokens: torch.Tensor) -> torch.Tensor:
            new = tokens[:, seen[0]:]
            seen[0] = tokens.shape[1]
            return model.decode_step(new, memory, cache)

        return cached
    return lambda tokens: model(src, tokens)


class BLEUObjective(AccuracyObjective):
    """Corpus BLEU of greedy decoding on the validation pairs (see the module docstring).

    Args:
        supernet: a trained ``seq2seq`` supernet.
        data: the pairs it was trained on.
        sentences: score the first this many validation pairs.
        batch_size: pairs decoded at once.
        device: compute device.
        checkpoint: provenance.
        name: column name.
    """

    metric_label = "bleu"
    batched = True

    def __init__(self, supernet: torch.nn.Module, data: BaseImageSource, *, sentences: int = 64,
                 batch_size: int = 32, device: str = "cpu",
                 checkpoint: str | Path | None = None, name: str = "accuracy") -> None:
        _check_text(data, "BLEUObjective")
        if data.task != "seq2seq":
            raise InvalidInputError(f"BLEU needs source/target pairs; {data.name!r} is "
                                    "language-model text (score it by loss)")
        super().__init__(name, "maximize", cheap=False)
        self.supernet, self.data = supernet, data
        self.sentences, self.batch_size, self.device = sentences, batch_size, device
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self._memo: ArchMemo[str] = ArchMemo()

    def bleu(self, model: Any) -> float:
        """BLEU of ``model`` (a supernet with a subnet active, or a static twin)."""
        from nasforge._extras import import_optional
        from nasforge.data import split_pair_batch

        sacrebleu = import_optional("sacrebleu", extra="text", feature="BLEU")

        tok = self.data.tokenizer  # type: ignore[attr-defined]
        hyps: list[str] = []
        refs: list[str] = []
        model.eval()
        for x, y in self.data.val_batches(self.batch_size):
            src, _ = split_pair_batch(x.to(self.device))
            for ids in greedy_decode(model, src, tok.bos, tok.eos, self.data.input_size):
                hyps.append(tok.decode(ids))
            refs.extend(tok.decode([t for t in row if t >= 0]) for row in y.tolist())
            if len(hyps) >= self.sentences:
                break
        n = min(len(hyps), self.sentences)
        return float(sacrebleu.corpus_bleu(hyps[:n], [refs[:n]]).score)

    def _score(self, archs: Sequence[Arch], todo: list[int]) -> list[float]:
        out = []
        for i in todo:
            self.supernet.set_active(archs[i])  # type: ignore[operator]
            out.append(self.bleu(self.supernet))
        return out

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        archs = list(archs)
        return self._memo.lookup([a.arch_id for a in archs],
                                 lambda todo: self._score(archs, todo))

    def provenance(self) -> dict[str, Any]:
        return {"kind": "supernet greedy BLEU (sacrebleu corpus_bleu, 13a)",
                "checkpoint": self.checkpoint, "data": self.data.name,
                "data_provenance": dict(getattr(self.data, "provenance", {})),
                "sentences": self.sentences}


def train_lm_standalone(model: torch.nn.Module, data: BaseImageSource, size: int, *, steps: int,
                        batch_size: int = 8, lr: float = 4e-3, seed: int = 0,
                        device: str = "cpu", val_batches: int | None = 16) -> float:
    """Train a text model from its current weights for ``steps`` AdamW steps (cosine, a tenth
    warm-up); return its validation loss (nats per token) at ``size`` (its context)."""
    import torch

    from nasforge.supernet.training.task import lm_loss
    from nasforge.supernet.training.task import task_for

    task = task_for(data)
    dev = torch.device(device)
    model.to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = steps // 10
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / (warm + 1) if s < warm
                                              else 0.5 * (1 + math.cos(math.pi * (s - warm)
                                                                       / max(1, steps - warm))))
    batches = data.train_batches(batch_size, seed=seed)
    for _, b in zip(range(steps), batches, strict=False):
        logits, y = task.loss_view(task.forward(model, b.x.to(dev), size), b.y.to(dev), size)
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return lm_loss(model, data, batch_size=32, max_batches=val_batches, device=dev,
                   size=size)[0]


class LMStandaloneLoss(AccuracyObjective):
    """Validation loss of each subnet trained alone from scratch (see the module docstring).

    Args:
        space: the LM space.
        data: the text source.
        steps: training steps per subnet.
        batch_size: windows per step.
        lr: AdamW peak learning rate.
        seed: initialisation seed and data order, the same for every subnet.
        device: compute device.
        name: column name.
        progress: report progress.
    """

    metric_label = "loss"
    batched = True

    def __init__(self, space: SearchSpace, data: BaseImageSource, *, steps: int = 100,
                 batch_size: int = 8, lr: float = 4e-3, seed: int = 0, device: str = "cpu",
                 name: str = "standalone", progress: bool = False) -> None:
        _check_text(data, "LMStandaloneLoss")
        if steps < 1:
            raise InvalidInputError(f"stand-alone training needs steps >= 1, got {steps=}")
        super().__init__(name, "minimize", cheap=False)
        self.space, self.data, self.steps = space, data, steps
        self.batch_size, self.lr, self.seed = batch_size, lr, seed
        self.device, self.progress = device, progress
        self._memo: ArchMemo[str] = ArchMemo()

    def _train(self, archs: Sequence[Arch], todo: list[int]) -> list[float]:
        import torch

        from nasforge.supernet.registry import build_supernet
        from nasforge.supernet.training.task import task_for

        task = task_for(self.data)
        out = []
        with ProgressBar(f"stand-alone training ({self.steps} steps each)", total=len(todo),
                         enabled=self.progress) as bar:
            for i in todo:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    model = build_supernet(self.space, self.data.num_classes).extract(archs[i])
                    size = task.size(archs[i], self.data)
                    out.append(train_lm_standalone(
                        model, self.data, size, steps=self.steps, batch_size=self.batch_size,
                        lr=self.lr, seed=self.seed, device=self.device))
                bar.advance()
        return out

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        archs = list(archs)
        return self._memo.lookup([a.arch_id for a in archs],
                                 lambda todo: self._train(archs, todo))

    def provenance(self) -> dict[str, Any]:
        return {"kind": "stand-alone validation loss (nats/token; lower is better)",
                "data": self.data.name, "steps": self.steps, "batch_size": self.batch_size,
                "lr": self.lr, "seed": self.seed}


class CapacityProxy(AccuracyObjective):
    """``log10(parameters)`` of each subnet, maximised: the training-free accuracy proxy of
    ``quick`` for spaces whose supernet is too large to train here (see the module docstring).

    Args:
        space: the search space (its analytic ``params``).
        name: column name.
    """

    metric_label = "log10_params"

    def __init__(self, space: SearchSpace, *, name: str = "accuracy") -> None:
        super().__init__(name, "maximize", cheap=True)
        self.space = space

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.log10(np.asarray([float(self.space.params(a)) for a in archs]))

    def provenance(self) -> dict[str, Any]:
        return {"kind": "proxy: log10(parameters), no training (a larger SubTransformer "
                        "reaches a lower loss); for a real source train a supernet: nas train "
                        f"--space {self.space.name} --data textpairs:PATH, then --supernet",
                "space": self.space.name}
