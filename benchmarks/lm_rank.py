"""Does the quick ``elastic_lm`` supernet rank subnets as stand-alone training does?

Trains (or reuses, cached) the quick LM supernet of ``nas search --space elastic_lm`` on the
embedded corpus, then ``nas rank`` of it against each subnet trained alone for ``STEPS`` steps
on the same windows (``SUBNETS`` subnets stratified by FLOPs, one torch thread). Both score the
same validation windows at each subnet's own context, in nats per token (lower is better).
Prints the rank report as JSON (tau, Spearman, top-k overlap, every subnet's two losses).

    python benchmarks/lm_rank.py [SUBNETS] [STEPS]
"""

from __future__ import annotations

import json
import sys

from nasforge.evaluation import EvalSettings
from nasforge.experiments.rank import RankConfig
from nasforge.experiments.rank import run_rank


def main(n: int, steps: int) -> dict[str, object]:
    cfg = RankConfig("elastic_lm", "supernet", "standalone", supernet="quick", n=n,
                     steps=steps, settings=EvalSettings(accelerator="cpu"), threads=1)
    return run_rank(cfg, progress=False).to_dict()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(main(*(args + [8, 150][len(args):])), indent=1))
