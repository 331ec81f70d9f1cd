#!/usr/bin/env bash
# Every GPU check in one run (about 5 minutes on an H100), for a lent GPU machine or your own:
#   bash benchmarks/gpu_check.sh OUTDIR
# 1. the CUDA tests, 2. the speed benchmark with its ablation, 3. the full-profile smoke run.
set -uo pipefail
out=${1:-benchmarks/results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 - <<'PY' | tee "$out/gpu_env.txt"
import torch, platform
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("gpu", torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())
PY
status=0
echo "== 1. CUDA tests"
python3 -m pytest -q -m gpu -p no:cacheprovider --ignore=tests/test_book.py --ignore=tests/test_colab_flow.py tests 2>&1 | tee "$out/gpu_tests.txt" || status=1
echo "== 2. speed benchmark"
python3 -m reslib.bench --models resnet20 --steps 150 --ablation --out "$out/bench_resnet20.json" || status=1
python3 -m reslib.bench --models resnet56 --steps 150 --out "$out/bench_resnet56.json" || status=1
echo "== 3. full-profile smoke run (synthetic CIFAR-shaped data: the GPU machine has no network)"
[ "${SKIP_SMOKE:-0}" = 1 ] || python3 benchmarks/full_profile_smoke.py --epochs 2 --out "$out/full_profile_smoke.json" || status=1
exit $status
