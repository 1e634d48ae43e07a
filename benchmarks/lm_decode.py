"""Incremental decoding with the KV cache vs recomputing the prefix, supernet vs extracted twin.

For the ``elastic_lm`` min and max subnets (byte vocabulary), greedy generation of ``--new``
tokens after a ``--prompt``-token prompt, batch 1, is timed four ways side by side in one
process, interleaved (``--repeats`` rounds, medians): the active supernet and its extracted
static twin, each with the KV cache (one token per step) and without it (the whole prefix again
each step). Reported per subnet: ms per generated token of each, ``cache_speedup`` (recompute /
cached, per model) and ``supernet_over_twin`` (cached decode, the supernet's slicing overhead).
The generated tokens of all four agree (checked).

Run:
    python benchmarks/lm_decode.py --threads 1

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from nasforge.search_spaces import get_space
from nasforge.supernet import ElasticLMSupernet


def _generate(model: Callable[..., torch.Tensor], new_cache: Callable[[], object],
              prompt: torch.Tensor, new: int, cached: bool) -> torch.Tensor:
    """Greedy tokens (1, new) after ``prompt`` (1, P)."""
    out = []
    with torch.inference_mode():
        if cached:
            cache = new_cache()
            logits = model(prompt, cache=cache)
            for _ in range(new):
                tok = logits[:, -1:].argmax(-1)
                out.append(tok)
                logits = model(tok, cache=cache)
        else:
            seq = prompt
            for _ in range(new):
                tok = model(seq)[:, -1:].argmax(-1)
                out.append(tok)
                seq = torch.cat([seq, tok], dim=1)
    return torch.cat(out, dim=1)


def _bench(net: ElasticLMSupernet, arch: object, prompt: torch.Tensor, new: int,
           repeats: int) -> dict[str, float]:
    net.set_active(arch)  # type: ignore[arg-type]
    twin = net.extract(arch).eval()  # type: ignore[arg-type]
    runs = {
        "supernet_cached": (net, net.new_cache, True),
        "supernet_recompute": (net, net.new_cache, False),
        "twin_cached": (twin, twin.new_cache, True),
        "twin_recompute": (twin, twin.new_cache, False),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    tokens = {}
    for _ in range(repeats):
        for key, (model, cache, cached) in runs.items():
            t0 = time.perf_counter()
            tokens[key] = _generate(model, cache, prompt, new, cached)
            times[key].append((time.perf_counter() - t0) * 1e3 / new)
    first = next(iter(tokens.values()))
    assert all(torch.equal(first, t) for t in tokens.values()), "generations differ"
    ms = {k: statistics.median(v) for k, v in times.items()}
    return {
        **{f"{k}_ms_per_token": round(v, 4) for k, v in ms.items()},
        "cache_speedup_supernet": round(ms["supernet_recompute"] / ms["supernet_cached"], 3),
        "cache_speedup_twin": round(ms["twin_recompute"] / ms["twin_cached"], 3),
        "supernet_over_twin_cached": round(ms["supernet_cached"] / ms["twin_cached"], 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    space = get_space("elastic_lm")
    torch.manual_seed(0)
    net = ElasticLMSupernet(space, vocab_size=space.vocab_size).eval()  # type: ignore[attr-defined]
    prompt = torch.randint(0, 256, (1, args.prompt), generator=torch.Generator().manual_seed(0))
    result = {"space": "elastic_lm", "prompt": args.prompt, "new": args.new,
              "threads": args.threads, "repeats": args.repeats,
              "torch": torch.__version__}
    for tag, arch in (("min", space.min_arch()), ("max", space.max_arch())):
        result[tag] = _bench(net, arch, prompt, args.new, args.repeats)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
