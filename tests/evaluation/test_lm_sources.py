"""Language-model accuracy sources: validation loss / perplexity of a text supernet (minimised),
greedy BLEU with and without the KV cache, stand-alone LM loss, and ``nas rank`` over them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.data import open_data
from nasforge.data import split_pair_batch
from nasforge.evaluation import resolve
from nasforge.evaluation._lm import BLEUObjective
from nasforge.evaluation._lm import LMLossObjective
from nasforge.evaluation._lm import LMStandaloneLoss
from nasforge.evaluation._lm import greedy_decode
from nasforge.experiments.rank import rank_agreement
from nasforge.search_spaces import get_space
from nasforge.search_spaces.arch import Arch
from nasforge.strategies.objectives import Objective
from nasforge.supernet import build_supernet
from nasforge.supernet.training.recipe import TrainConfig
from nasforge.supernet.training.samplers import create_sampler
from nasforge.supernet.training.task import lm_loss
from nasforge.supernet.training.trainer import SupernetTrainer
from tests._one_thread import _one_thread  # noqa: F401  (autouse fixture)


def _corpus(folder: Path) -> Path:
    rng = np.random.default_rng(1)
    words = ["for", "in", "range", "if", "else", "print", "(", ")", ":", "\n"]
    path = folder / "c.txt"
    path.write_text(" ".join(words[i] for i in rng.integers(0, len(words), 6000)),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lm_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A text supernet of ``elastic_lm`` trained 3 steps (a real checkpoint)."""
    folder = tmp_path_factory.mktemp("lm")
    space = get_space("elastic_lm")
    data = open_data(f"text:{_corpus(folder)}", 64, 0)
    torch.manual_seed(0)
    net = build_supernet(space, data.num_classes)
    cfg = TrainConfig(steps=3, batch_size=4, lr=3e-3, warmup_steps=1, input_size=64,
                      label_smoothing=0.0, distill="kd", augment=False)
    SupernetTrainer(net, create_sampler("sandwich", space, np.random.default_rng(0)), data,
                    cfg, folder / "run").fit()
    return folder / "run" / "last.ckpt"


def test_supernet_source_of_a_text_checkpoint_is_a_minimised_loss(lm_ckpt: Path) -> None:
    space = get_space("elastic_lm")
    obj = resolve(f"supernet:{lm_ckpt}", space, name="accuracy")
    assert isinstance(obj, LMLossObjective) and obj.direction == "minimize"
    archs = [space.max_arch(), space.min_arch()]
    v = obj.evaluate_many(archs)
    assert np.all(np.isfinite(v)) and np.all(v > 0)
    # the same number as reading the split directly at the arch's own context
    obj.supernet.set_active(space.min_arch())
    direct = lm_loss(obj.supernet, obj.data, batch_size=obj.batch_size,
                     max_batches=obj.val_batches, size=64)[0]
    assert v[1] == pytest.approx(direct, rel=1e-6)
    prov = obj.provenance()
    assert 0 < prov["val_windows"] <= obj.data.num_val and "lower is better" in prov["kind"]
    ppl = LMLossObjective(obj.supernet, obj.data, metric="ppl", val_batches=obj.val_batches)
    assert ppl.evaluate_many(archs) == pytest.approx(np.exp(v), rel=1e-6)


class _NegatedLoss(Objective):
    """``-loss`` of a loss source, maximised: the same ranking written the other way round."""

    def __init__(self, loss: LMLossObjective) -> None:
        super().__init__("neg_loss", "maximize", cheap=False)
        self.loss = loss

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        return -np.asarray(self.loss.evaluate_many(archs))


def test_rank_reads_a_loss_by_its_direction(lm_ckpt: Path) -> None:
    space = get_space("elastic_lm")
    loss = resolve(f"supernet:{lm_ckpt}", space, name="loss")
    report = rank_agreement(space, loss, _NegatedLoss(loss), n=5, seed=0, top_k=2)
    assert report.kendall_tau == pytest.approx(1.0) and report.top_k_overlap == 1.0


@pytest.mark.slow
def test_standalone_lm_loss_ranks_against_the_supernet(lm_ckpt: Path) -> None:
    space = get_space("elastic_lm")
    sa = resolve("standalone", space, name="standalone", supernet=str(lm_ckpt), steps=2)
    assert isinstance(sa, LMStandaloneLoss) and sa.direction == "minimize"
    sn = resolve(f"supernet:{lm_ckpt}", space, name="supernet")
    report = rank_agreement(space, sn, sa, n=3, seed=0)
    assert report.n == 3 and -1.0 <= report.kendall_tau <= 1.0
    assert all(math.isfinite(x) for x in report.b_values)


@pytest.fixture(scope="module")
def hat(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tsv = tmp_path_factory.mktemp("pairs") / "p.tsv"
    tsv.write_text("".join(f"x{i} y z\tz y x{i}\n" for i in range(20)), encoding="utf-8")
    data = open_data(f"textpairs:{tsv}", 8, 0)
    space = get_space("hat_iwslt14deen")
    torch.manual_seed(0)
    net = build_supernet(space, data.num_classes).eval()
    net.set_active(space.min_arch())
    return net, data


def test_greedy_decoding_with_the_kv_cache_equals_the_full_decoder(hat) -> None:  # type: ignore[no-untyped-def]
    net, data = hat
    x, _ = next(data.val_batches(2))
    src, _ = split_pair_batch(x)
    tok = data.tokenizer
    cached = greedy_decode(net, src, tok.bos, tok.eos, 6)

    class _NoCache(torch.nn.Module):  # the same model seen without its incremental API
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.net(s, t)  # type: ignore[no-any-return]

    full = greedy_decode(_NoCache(), src, tok.bos, tok.eos, 6)
    assert cached == full and all(len(r) <= 6 for r in cached)


def test_bleu_of_a_subnet_is_a_percentage(hat) -> None:  # type: ignore[no-untyped-def]
    net, data = hat
    obj = BLEUObjective(net, data, sentences=2, batch_size=2)
    v = obj.evaluate_many([net.space.min_arch()])
    assert obj.direction == "maximize" and 0.0 <= float(v[0]) <= 100.0
    assert obj.provenance()["sentences"] == 2


def test_bleu_refuses_language_model_text(tmp_path: Path) -> None:
    from nasforge.errors import InvalidInputError

    data = open_data(f"text:{_corpus(tmp_path)}", 16, 0)
    with pytest.raises(InvalidInputError, match="pairs"):
        BLEUObjective(torch.nn.Linear(1, 1), data)


def test_quick_means_the_embedded_corpus_for_elastic_lm_and_a_proxy_for_hat() -> None:
    from nasforge.evaluation._checkpoints import data_of
    from nasforge.evaluation._lm import CapacityProxy
    from nasforge.supernet.training.quick import quick_recipe

    lm = get_space("elastic_lm")
    assert quick_recipe(lm).data == "pystdlib" and data_of("quick", lm)[:2] == ("pystdlib", 256)
    hat = get_space("hat_wmt14ende")
    obj = resolve("quick", hat, name="accuracy")
    assert isinstance(obj, CapacityProxy) and obj.direction == "maximize" and obj.cheap
    small, big = hat.min_arch(), hat.max_arch()
    v = obj.evaluate_many([small, big])
    assert v[0] < v[1] and v[1] == pytest.approx(math.log10(hat.params(big)))
    assert "no training" in obj.provenance()["kind"]
