#!/usr/bin/env bash
# Every GPU check in one run, for a lent GPU machine (no network, no Jupyter) or your own:
#   bash benchmarks/gpu_check.sh OUTDIR [CHAPTER.ipynb ...]
# STAGES picks what runs (default: all four, about 8 minutes on an H200):
#   tests     the CUDA tests (pytest -m gpu)
#   bench     the speed benchmark: ResNet-20 at batch 512, the default path, its ablation and
#             the tutorial baseline (python -m reslib.bench --ablation)
#   sweep     the precision policy's evidence: tf32 vs bf16 on the default path for a small
#             and a large model
#   chapters  the full profile of the chapters named, all at once on the one GPU
#             (benchmarks/full_profile.py; stand-in data where a download is impossible)
# Wheels in .whl/ (e.g. mnist1d, missing on the lent machines) are installed first.
set -uo pipefail
out=${1:-benchmarks/results}
shift || true
chapters=("$@")
stages=${STAGES:-tests bench sweep chapters}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
python3 - <<'PY' | tee "$out/gpu_env.txt"
import torch, platform
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("gpu", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0))
PY
status=0
has() { [[ " $stages " == *" $1 "* ]]; }
if has tests; then
  echo "== CUDA tests"
  # a test module that imports a package the GPU machine lacks (docutils) must not stop the rest
  timeout "${TESTS_S:-150}" python3 -m pytest -q -m gpu -p no:cacheprovider \
    --continue-on-collection-errors \
    --ignore=tests/test_book.py --ignore=tests/test_colab_flow.py tests 2>&1 \
    | tee "$out/gpu_tests.txt" || status=1
fi
if has bench; then
  echo "== speed benchmark (alone on the GPU)"
  timeout "${BENCH_S:-200}" python3 -m reslib.bench --models resnet20 --steps 100 --repeats 2 \
    --ablation --out "$out/bench_resnet20.json" || status=1
fi
if has sweep; then
  echo "== precision sweep"
  timeout "${SWEEP_S:-90}" python3 -m reslib.bench --sweep --models resnet110 resnet50 \
    --batch-size 256 --steps 40 --repeats 1 --out "$out/bench_sweep.json" || status=1
fi
if has chapters && [ ${#chapters[@]} -gt 0 ]; then
  echo "== full profile of ${#chapters[@]} chapters, at once (stand-in data without a network)"
  timeout "${CHAPTERS_S:-300}" python3 benchmarks/full_profile.py "${chapters[@]}" \
    --jobs "${#chapters[@]}" --timeout "${CHAPTER_S:-280}" --out "$out/full_profile.json" \
    --logs /tmp/full_profile_logs || status=1
  tar czf "$out/full_profile_logs.tgz" -C /tmp full_profile_logs
fi
exit $status
