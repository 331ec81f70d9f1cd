#!/usr/bin/env bash
# Every GPU check in one run, for a lent GPU machine (no network, no Jupyter) or your own:
#   bash benchmarks/gpu_check.sh OUTDIR [CHAPTER.ipynb ...]
# STAGES picks what runs; the default, "tests bench chapters", keeps to TOTAL_S=480 seconds, a
# lease's 8 minutes (each stage has its own limit, in seconds, overridable):
#   tests     TESTS_S=120     the CUDA tests (pytest -m gpu)
#   bench     BENCH_S=120     the speed benchmark, ResNet-20 at batch 512: a short run's and a
#                             long run's default path and the tutorial baseline
#                             (python -m reslib.bench); ABLATION=1 adds each technique removed
#   chapters  CHAPTERS_S      the full profile of the chapters named, JOBS (default 3) at once
#                             on the one GPU (benchmarks/full_profile.py, stand-in data where a
#                             download is impossible); chapters not started in time are recorded.
#                             Default: what TOTAL_S leaves (at least 230 s after tests and bench)
#   sweep     SWEEP_S=90      not by default: tf32 vs bf16 on the default path, small and large
# Wheels in .whl/ (e.g. mnist1d, missing on the lent machines; .whl/ is git-ignored, so carry
# it to the machine) are installed first.
set -uo pipefail
SECONDS=0  # bash counts from here: the chapters get what the stages before them left
out=${1:-benchmarks/results}
shift || true
chapters=("$@")
stages=${STAGES:-tests bench chapters}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
python3 - <<'PY' | tee "$out/gpu_env.txt"
import torch, platform
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0))
else:
    print("no CUDA device: the GPU checks below will skip or measure the CPU")
PY
status=0
has() { [[ " $stages " == *" $1 "* ]]; }
if has tests; then
  echo "== CUDA tests"
  # tests/conftest.py leaves out the book's test modules where Jupyter or Sphinx is missing; a
  # module that still cannot be imported is reported without stopping the rest
  timeout "${TESTS_S:-120}" python3 -m pytest -q -m gpu -p no:cacheprovider \
    --continue-on-collection-errors \
    --ignore=tests/test_book.py --ignore=tests/test_colab_flow.py tests 2>&1 \
    | tee "$out/gpu_tests.txt" || status=1
fi
if has bench; then
  echo "== speed benchmark (alone on the GPU)"
  timeout "${BENCH_S:-120}" python3 -m reslib.bench --models resnet20 --steps 100 --repeats 2 \
    ${ABLATION:+--ablation} --out "$out/bench_resnet20.json" || status=1
fi
if has sweep; then
  echo "== precision sweep"
  timeout "${SWEEP_S:-90}" python3 -m reslib.bench --sweep --models resnet110 resnet50 \
    --batch-size 256 --steps 40 --repeats 1 --out "$out/bench_sweep.json" || status=1
fi
if has chapters && [ ${#chapters[@]} -gt 0 ]; then
  jobs=${JOBS:-3}
  echo "== full profile of ${#chapters[@]} chapters, $jobs at once (stand-in data without a network)"
  # full_profile.py keeps to the total itself, so that no chapter outlives it unrecorded
  python3 benchmarks/full_profile.py "${chapters[@]}" --jobs "$jobs" \
    --total "${CHAPTERS_S:-$((${TOTAL_S:-480} - SECONDS - 10))}" --out "$out/full_profile.json" \
    --logs /tmp/full_profile_logs || status=1
  tar czf "$out/full_profile_logs.tgz" -C /tmp full_profile_logs
fi
exit $status
