#!/usr/bin/env bash
# On a lent GPU host (device tool), in the repo root, with .carry/ from ci/build_gpu_runtime.sh:
# record SCENARIO on pristine upstream, slim from that recording, serve the same scenario from the
# slimmed tree and compare. Everything worth keeping lands in $OUT (recording, verify report, logs,
# JIT caches for the next call). BUDGET_S bounds the whole script (the device allows 600 s a call).
set -uo pipefail
SCENARIO=${1:-dsv3_fp8_tp1}
OUT=${OUT:-/tmp/slim-out}; mkdir -p "$OUT/logs"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
mkdir -p /opt/rt/deps /opt/rt/up
tar -xJf .carry/deps.tar.xz -C /opt/rt/deps && tar -xJf .carry/sglang-upstream.tar.xz -C /opt/rt/up || exit 1
[ -f .carry/jit-cache.tar.xz ] && tar -xJf .carry/jit-cache.tar.xz -C "$HOME"
DEPS=/opt/rt/deps/site UP=/opt/rt/up/site
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader
save_caches() {
  (cd "$HOME" && tar -cf - --ignore-failed-read .cache/flashinfer .cache/tvm-ffi .triton .cache/deep_gemm 2>/dev/null | xz -6 -T0 > "$OUT/jit-cache.tar.xz")
  pkill -9 -f sglang.launch_server 2>/dev/null || true
}
trap save_caches EXIT
PYTHONPATH=$UP:$DEPS timeout "${RECORD_TIMEOUT:-420}" python3 -m slim record --scenario "$SCENARIO" --db "$OUT/db" --logs "$OUT/logs" || exit 2
python3 -m slim apply --upstream "$UP" --db "$OUT/db" --out /tmp/slim-tree || exit 3
PYTHONPATH=$DEPS timeout $(( ${BUDGET_S:-570} - SECONDS )) python3 -m slim verify --scenario "$SCENARIO" --db "$OUT/db" --tree /tmp/slim-tree --logs "$OUT/logs" || exit 4
