#!/usr/bin/env bash
# GPU checks of issue 11: the `gpu` tests, then the throughput benchmark (JSON).
# Run from the repository root on a CUDA machine:  bash benchmarks/gpu_checks.sh
# Writes $OUT/gpu_tests.txt and $OUT/gpu_throughput.json when OUT is set.
#
# Needs torch (CUDA), numpy, pyyaml, safetensors, pillow, pytest; not optuna, xgboost or ray.
# Test modules of other areas import those, so collecting `tests` on such a machine reports
# their import errors; --continue-on-collection-errors still runs every collected gpu test, and
# the exit status below is that of the gpu test files alone.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
out="${OUT:-}"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
python -m pytest -q -m gpu tests --continue-on-collection-errors -p no:cacheprovider \
    2>&1 | tee ${out:+"$out/gpu_tests_all.txt"} | tail -n 15
python -m pytest -q -m gpu tests/supernet/test_gpu.py -p no:cacheprovider -rs \
    2>&1 | tee ${out:+"$out/gpu_tests.txt"}
status=${PIPESTATUS[0]}
python benchmarks/gpu_throughput.py --batch 64 --resolution 224 ${out:+--out "$out/gpu_throughput.json"}
bench=$?
python benchmarks/gpu_throughput.py --batch 64 --resolution 224 --channels-last ${out:+--out "$out/gpu_throughput_channels_last.json"}
bench=$((bench + $?))
[ "$status" -eq 0 ] && [ "$bench" -eq 0 ]
