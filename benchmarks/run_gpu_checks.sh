#!/usr/bin/env bash
# Every GPU check in one go, for the day a CUDA GPU is at hand (nothing here runs without one):
#   bash benchmarks/run_gpu_checks.sh [LOG_DIR]
# 1. tests/gpu: sync-free training steps (tiny configs, fp32 and bf16), one bf16 training step of each stage at
#    the APTOS configs with its peak memory, sampling at the APTOS config on CUDA in fp32 and bf16;
# 2. benchmarks/bench_gpu.py: inference seconds per volume at fp32, bf16 and fp16, then samples/s and peak memory
#    of both stages at the APTOS configs with each `speed:` setting on and off (the compiled cases last).
# Budget: at most 7 minutes on one GPU (time limits of 2, 1 and 4 minutes). The benchmark prints every row as
# soon as it is measured, so a part cut short still leaves its figures in LOG_DIR (default gpu_checks/<timestamp>).
set -uo pipefail
cd "$(dirname "$0")/.."
log_dir="${1:-gpu_checks/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$log_dir"
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

python -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "run_gpu_checks.sh needs a CUDA GPU")' \
  || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$log_dir/gpu.txt"

start=$SECONDS
timeout 120 python -m pytest tests/gpu -s -q -p no:cacheprovider 2>&1 | tee "$log_dir/tests_gpu.log"
tests_status=${PIPESTATUS[0]}
echo "tests/gpu: exit $tests_status after $((SECONDS - start)) s"

# inference first (short), then the training cases, the compiled ones last in each stage
for part in "infer:60" "dm ae:240"; do
  start=$SECONDS
  timeout "${part#*:}" python benchmarks/bench_gpu.py --steps 10 --stages ${part%:*} 2>&1 \
    | tee -a "$log_dir/bench_gpu.log"
  echo "bench_gpu.py --stages ${part%:*}: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s"
done
echo "logs in $log_dir"
exit "$tests_status"
