#!/usr/bin/env bash
# Run the search-side benchmarks on two checkouts of nasforge side by side, alternating, so that
# both see the same machine state (a refactor's "same results, equal or better speed" check).
#
#   bash benchmarks/compare_trees.sh OLD_CHECKOUT NEW_CHECKOUT [OUT_DIR]
#
# e.g. `git worktree add --detach /tmp/old <rev>` for OLD_CHECKOUT. Writes one JSON per
# benchmark, tree and round into OUT_DIR (default ./compare_out) and the wall time of
# nb201_strategies per tree; compare the `best` / result fields and the timings.
set -u
old=$(cd "$1" && pwd); new=$(cd "$2" && pwd); out=$(mkdir -p "${3:-compare_out}" && cd "${3:-compare_out}" && pwd)
for round in 1 2; do
  for tree in "$old" "$new"; do
    tag=$(basename "$tree")
    (cd "$tree" && export PYTHONPATH="$tree" OMP_NUM_THREADS=1 &&
      python benchmarks/search_speed.py --repeat 2 > "$out/search_speed_${tag}_$round.json" &&
      python benchmarks/space_ops.py --n 20000 > "$out/space_ops_${tag}_$round.json" &&
      python benchmarks/latency_predict.py --n 1000 > "$out/latency_predict_${tag}_$round.json")
  done
done
for tree in "$old" "$new"; do
  tag=$(basename "$tree")
  (cd "$tree" && export PYTHONPATH="$tree" OMP_NUM_THREADS=1 &&
    /usr/bin/time -f "%e s wall %U s user" -o "$out/nb201_${tag}.time" \
      python benchmarks/nb201_strategies.py --seeds 3 > "$out/nb201_${tag}.json")
done
echo "wrote $out"
