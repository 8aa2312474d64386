#!/usr/bin/env bash
# One device call on a lent GPU host, run in the repo root with .carry/ (ci/build_gpu_runtime.sh):
#   bash ci/gpu_session.sh record SCENARIO...   record each on pristine upstream (needs sglang-upstream.tar.xz);
#                                               SLIM_TRACE_LINES=1 in front records executed lines too;
#                                               LANES=2: two at a time on the one GPU (the recordings say so)
#   bash ci/gpu_session.sh verify SCENARIO...   verify each on the slimmed tree: .carry/slim-tree.tar.xz
#                                               (`tar -C sglang -cJf .carry/slim-tree.tar.xz .`) or `slim apply` there;
#                                               LANES=2: two servers at a time on the one GPU (reports say so),
#                                               then what failed runs again alone
#   bash ci/gpu_session.sh both SCENARIO...     record all, then slim from every recording and verify all
#   bash ci/gpu_session.sh upstream-check SCEN... serve each from pristine upstream, untraced, against its reference
#                                               (slim verify --on-upstream; needs sglang-upstream.tar.xz): is a
#                                               difference the slimmed tree shows upstream's own on this host?
#   bash ci/gpu_session.sh bench                import time + peak RSS of the entry point, upstream vs slim
#   bash ci/gpu_session.sh serve-bench [SCEN]   serving throughput, start-up, RSS, GPU memory, install size: upstream
#                                               and slim interleaved, REPEATS starts each (CONFIGS=upstream,slim,
#                                               upstream_traced adds the tracer; NO_WARMUP=1 skips the unmeasured
#                                               first start), median and spread
#   bash ci/gpu_session.sh one-batch [SCEN]     fixed-batch prefill/decode throughput through upstream's bench_one_batch:
#                                               CONFIGS (upstream,slim,upstream_traced) interleaved, REPEATS (5) runs each
#   bash ci/gpu_session.sh cold-start [SCEN]    fresh-host start (empty HOME and inductor cache per start): upstream
#                                               cold vs slim with .carry/jit-cache.tar.xz installed as its bundle would
#   bash ci/gpu_session.sh faults [SCEN]        64 streams with seeded aborts/disconnects + malformed, unknown-model
#                                               and oversize requests (SEED), on upstream then slim; compared;
#                                               FAULTS_TIMEOUT_S (120): a request slower than that counts as hung
#   bash ci/gpu_session.sh fuzz SEED N SCEN...  N seeded random requests (slim verify --fuzz) to upstream then slim,
#                                               each scenario in turn with an equal share of what is left;
#                                               reports in db/fuzz/; FUZZ_DEADLINE_S (120): slower counts as a hang;
#                                               KITS=1: also upstream's kit tests on each server (slim verify --kits;
#                                               N may be 0: kits only), KITS_TIMEOUT_S (90) per test; the kits import
#                                               their clients (requests, openai, aiohttp) from the GPU image and
#                                               deps.tar.xz, so carry that rather than the pruned bundle
#                                               (and .carry/sglang-test.tar.xz: the kits are upstream's sglang/test)
#                                               FUZZ_TOGETHER=1 (no kits): upstream and slim served at once
# Results come back as $OUT/results.tar.xz (coverage_db additions + logs) and $OUT/jit-cache.tar.xz
# (JIT caches for the next call). BUDGET_S bounds the whole call; a scenario is not started
# with less than MIN_LEFT_S left.
set -uo pipefail
MODE=$1; shift
OUT=${OUT:-/tmp/slim-out}; RES=/tmp/slim-results
# AGAIN=1 in front of a second mode in the same device call: it reuses the unpacked runtime and
# tree and adds to the results. Otherwise start clean: a machine still warm from the previous call
# keeps its files.
[ "${AGAIN:-}" = 1 ] || rm -rf "$RES"
mkdir -p "$OUT" "$RES/logs"
BUDGET_S=${BUDGET_S:-570}; MIN_LEFT_S=${MIN_LEFT_S:-150}
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEPS=/opt/rt/deps/site UP=/opt/rt/up/site
mkdir -p /opt/rt/deps /opt/rt/up
. ci/bundle_runtime.sh || exit 1  # deps.tar.xz, or the slim bundle when carried
[ -f .carry/sglang-upstream.tar.xz ] && [ ! -d "$UP" ] && tar -xJf .carry/sglang-upstream.tar.xz -C /opt/rt/up
# upstream's sglang/test, carried apart: the test kits (KITS=1) and the operator tools the companions
# scenario records (send_one, run_eval, ...)
[ -f .carry/sglang-test.tar.xz ] && [ ! -d "$UP/sglang/test" ] && tar -xJf .carry/sglang-test.tar.xz -C /opt/rt/up
[ -f .carry/jit-cache.tar.xz ] && tar -xJf .carry/jit-cache.tar.xz -C "$HOME"
[ -d .carry/wheels ] && python3 -m pip install -q --no-index --no-deps --target /opt/rt/tools .carry/wheels/*.whl
export PYTHONPATH=/opt/rt/tools
# Line mode (SLIM_TRACE_LINES=1 on the call): lines of upstream sglang only, not of torch & co.
[ "${SLIM_TRACE_LINES:-}" = 1 ] && export SLIM_TRACE_INCLUDE=${SLIM_TRACE_INCLUDE:-$UP/sglang/}
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader
[ -d "$RES/db" ] || cp -r coverage_db "$RES/db"
# What is newer than this machine's first run is this session's: written.txt lists it for
# ci/collect_results.py (an AGAIN run lists the earlier runs' files again; filing them twice changes nothing).
[ -f "$RES/.call-start" ] || touch "$RES/.call-start"
finish() {
  pkill -9 -f sglang.launch_server 2>/dev/null
  (cd "$HOME" && tar -cf - --ignore-failed-read .cache/flashinfer .cache/tvm-ffi .triton .cache/deep_gemm 2>/dev/null | xz -6 -T0 > "$OUT/jit-cache.tar.xz")
  # what the cache cannot say itself (slim/jit_cache.py): the torch, CUDA and DeepGEMM it was built with
  PYTHONPATH=$DEPS python3 -c 'import json, sys; sys.path.append("."); from slim.jit_cache import runtime_facts
print(json.dumps(runtime_facts(["torch", "sgl-deep-gemm"])))' > "$OUT/jit-cache.tar.xz.key.json" || rm -f "$OUT/jit-cache.tar.xz.key.json"
  (cd "$RES" && find db -type f -newer .call-start | sort > written.txt && tar -cf - db logs written.txt | xz -6 -T0 > "$OUT/results.tar.xz")
}
trap finish EXIT
left() { echo $(( BUDGET_S - SECONDS )); }
run_scenarios() {  # $1 = record|verify, rest = scenarios
  local verb=$1; shift
  for s in "$@"; do
    if [ "$(left)" -lt "$MIN_LEFT_S" ]; then echo "SKIP $verb $s: $(left) s left"; continue; fi
    echo "== $verb $s ($(left) s left)"
    if [ "$verb" = record ]; then
      PYTHONPATH=$UP:$DEPS:/opt/rt/tools timeout $(( $(left) - 20 )) python3 -m slim record --scenario "$s" \
        --db "$RES/db" --logs "$RES/logs" || echo "FAILED record $s"
    else
      # The plan that made the carried tree (`slim plan --json .carry/plan.json`) maps a
      # failure to what deleted it; without one, verify computes the policy's plan from upstream.
      # The tree's own PLAN.json.gz serves as well (no 8 MB plan.json to carry).
      PLAN_ARGS=(--upstream "$UP"); [ -f /tmp/slim-tree/PLAN.json.gz ] && PLAN_ARGS=(--plan /tmp/slim-tree/PLAN.json.gz)
      [ -f .carry/plan.json ] && PLAN_ARGS=(--plan .carry/plan.json)
      PYTHONPATH=$DEPS:/opt/rt/tools timeout $(( $(left) - 20 )) python3 -m slim verify --scenario "$s" \
        --db "$RES/db" --tree /tmp/slim-tree --logs "$RES/logs" "${PLAN_ARGS[@]}" \
        || { echo "FAILED verify $s"; echo "$s" >> "$RES/failed-verify"; }
    fi
  done
}
run_lanes() {  # $1 = verb, rest = scenarios, dealt round-robin to LANES chains that share the GPU
  # (0.5.17 sizes the KV pool from the memory free when a server starts, so a second server fits
  # beside the first); lane k starts STAGGER_S*k s late so start-up memory probes rarely overlap
  local verb=$1; shift; local n=${LANES:-1} i=0 k; local -a lanes=()
  export SLIM_VERIFY_LANES=$n
  for s in "$@"; do lanes[i % n]+=" $s"; i=$(( i + 1 )); done
  rm -f "$RES/failed-$verb"  # a lane killed by its timeout leaves no new report: know the old ones by content
  find "$RES/db" -name '*.verify.json' -exec sha256sum {} + 2>/dev/null | cut -d' ' -f1 > "$RES/.reports-before"
  for (( k = 0; k < n; k++ )); do (sleep $(( k * ${STAGGER_S:-30} )); run_scenarios "$verb" ${lanes[k]}) & done
  wait
  # What failed beside another server runs again alone (a start-up memory race, or kernel
  # autotuning that timed its candidates under the other's load): that verdict is the one kept.
  if [ "$n" -gt 1 ] && [ -s "$RES/failed-$verb" ]; then
    local again s r; again=$(tr '\n' ' ' < "$RES/failed-$verb"); rm -f "$RES/failed-$verb"
    for s in $again; do  # the shared-GPU report stays as evidence beside the alone one
      r=$(ls -t "$RES/db/$s/"*.verify.json 2>/dev/null | head -1)
      [ -n "$r" ] && ! grep -qx "$(sha256sum "$r" | cut -d' ' -f1)" "$RES/.reports-before" && mkdir -p "$RES/db/benchmarks" \
        && cp "$r" "$RES/db/benchmarks/$s-lanes$n-$(date -u +%Y%m%dT%H%M).verify.json"
    done
    echo "== alone again: $again"; SLIM_VERIFY_LANES=1 run_scenarios "$verb" $again
  fi
}
slim_tree() {  # the committed tree itself when carried (verifies exactly those bytes), else regenerate it
  if [ -n "$BUNDLE" ]; then :  # the bundle's tree, unpacked by ci/bundle_runtime.sh
  elif [ "${AGAIN:-}" = 1 ] && [ -d /tmp/slim-tree ]; then :
  elif [ -f .carry/slim-tree.tar.xz ]; then rm -rf /tmp/slim-tree && mkdir -p /tmp/slim-tree && tar -xJf .carry/slim-tree.tar.xz -C /tmp/slim-tree
  else rm -rf /tmp/slim-tree; python3 -m slim apply --upstream "$UP" --db "$RES/db" --out /tmp/slim-tree || exit 3; fi
}
case "$MODE" in
  record) run_lanes record "$@" ;;  # LANES=2: two recordings at a time (each says "lanes": 2)
  verify) slim_tree; export SLIM_HEALTH_TIMEOUT=${SLIM_HEALTH_TIMEOUT:-300}  # warm caches: healthy in ~100 s
    run_lanes verify "$@" ;;
  bench) slim_tree  # side-by-side import cost of the server entry point, upstream vs slim
    GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr " " "_")
    python3 benchmarks/import_time.py --upstream "$UP" --slim /tmp/slim-tree/python --deps "$DEPS" \
      --repeats "${REPEATS:-3}" --out "$RES/db/benchmarks/import_time-$GPU.json" || echo "FAILED import_time" ;;
  serve-bench) slim_tree  # throughput, RSS, GPU memory, start-up, install size: upstream vs slim, interleaved
    GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr " " "_")
    timeout $(( $(left) - 20 )) python3 benchmarks/serving.py --scenario "${1:-dsv3_fp8_tp1}" --upstream "$UP" \
      --slim /tmp/slim-tree/python --deps "$DEPS" --logs "$RES/logs" --configs "${CONFIGS:-upstream,slim}" \
      --repeats "${REPEATS:-3}" --rounds "${ROUNDS:-2}" --budget-s $(( $(left) - 40 )) ${NO_WARMUP:+--no-warmup} \
      --out "$RES/db/benchmarks/serving-$GPU.json" || echo "FAILED serving benchmark" ;;
  one-batch) slim_tree  # fixed-batch prefill/decode throughput (upstream's bench_one_batch), interleaved
    GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr " " "_")
    timeout $(( $(left) - 20 )) python3 benchmarks/one_batch.py --scenario "${1:-dsv3_fp8_tp1}" --upstream "$UP" \
      --slim /tmp/slim-tree/python --deps "$DEPS" --logs "$RES/logs" \
      --configs "${CONFIGS:-upstream,slim,upstream_traced}" --repeats "${REPEATS:-5}" \
      --budget-s $(( $(left) - 40 )) --out "$RES/db/benchmarks/one_batch-$GPU.json" || echo "FAILED one-batch" ;;
  cold-start) slim_tree  # fresh-host start: upstream without JIT caches vs slim with its bundle's cache
    GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr " " "_")
    timeout $(( $(left) - 20 )) python3 benchmarks/cold_start.py --scenario "${1:-dsv3_fp8_tp1}" --upstream "$UP" \
      --slim /tmp/slim-tree/python --deps "$DEPS" --jit-cache .carry/jit-cache.tar.xz --logs "$RES/logs" \
      --configs "${CONFIGS:-upstream,slim_bundle}" --repeats "${REPEATS:-3}" --budget-s $(( $(left) - 40 )) \
      --out "$RES/db/benchmarks/cold_start-$GPU.json" || echo "FAILED cold-start" ;;
  faults) slim_tree  # load and faults, the same seeded schedule on upstream then on slim
    GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr " " "_")
    timeout $(( $(left) - 20 )) python3 benchmarks/load_faults.py serve --scenario "${1:-dsv3_fp8_tp1}" \
      --upstream "$UP" --slim /tmp/slim-tree/python --deps "$DEPS" --logs "$RES/logs" --seed "${SEED:-7}" \
      --budget-s $(( $(left) - 40 )) --timeout-s "${FAULTS_TIMEOUT_S:-120}" \
      --out "$RES/db/benchmarks/faults-${1:-dsv3_fp8_tp1}-$GPU.json" \
      || echo "FAILED faults (see PROBLEM lines)" ;;
  fuzz) slim_tree; export SLIM_HEALTH_TIMEOUT=${SLIM_HEALTH_TIMEOUT:-300}  # the same seeded requests, upstream then slim
    FSEED=${1:?usage: gpu_session.sh fuzz SEED N SCENARIO...}; FN=${2:?usage: gpu_session.sh fuzz SEED N SCENARIO...}
    shift 2; [ $# -gt 0 ] || set -- dsv3_fp8_tp1
    PLAN_ARGS=(--upstream "$UP"); [ -f .carry/plan.json ] && PLAN_ARGS+=(--plan .carry/plan.json)
    KITS_ARGS=(); [ "${KITS:-}" = 1 ] && KITS_ARGS=(--kits --kits-timeout-s "${KITS_TIMEOUT_S:-90}")
    n_left=$#
    for s in "$@"; do
      share=$(( ($(left) - 20) / n_left )); n_left=$(( n_left - 1 ))
      if [ "$share" -lt "$MIN_LEFT_S" ]; then echo "SKIP fuzz $s: $share s for it"; continue; fi
      echo "== fuzz $s seed $FSEED n $FN ($share s of $(left) s left)"
      PYTHONPATH=$DEPS:/opt/rt/tools timeout "$share" python3 -m slim verify --scenario "$s" --fuzz "$FN" \
        --seed "$FSEED" --tree /tmp/slim-tree --db "$RES/db" --logs "$RES/logs" "${PLAN_ARGS[@]}" \
        --fuzz-budget-s $(( share - 30 )) --fuzz-deadline-s "${FUZZ_DEADLINE_S:-120}" "${KITS_ARGS[@]}" \
        ${FUZZ_TOGETHER:+--fuzz-together} \
        || echo "FAILED fuzz $s"
    done ;;
  both) run_scenarios record "$@"; slim_tree; run_scenarios verify "$@" ;;
  upstream-check) export SLIM_HEALTH_TIMEOUT=${SLIM_HEALTH_TIMEOUT:-300}
    for s in "$@"; do  # reports in db/benchmarks/SCENARIO-upstream-TIME.verify.json
      if [ "$(left)" -lt "$MIN_LEFT_S" ]; then echo "SKIP upstream-check $s: $(left) s left"; continue; fi
      echo "== upstream-check $s ($(left) s left)"
      PYTHONPATH=$DEPS:/opt/rt/tools timeout $(( $(left) - 20 )) python3 -m slim verify --scenario "$s" --on-upstream \
        --upstream "$UP" --db "$RES/db" --logs "$RES/logs" || echo "FAILED upstream-check $s"
    done ;;
  *) echo "usage: gpu_session.sh record|verify|both|upstream-check|bench|serve-bench|one-batch|cold-start|faults|fuzz" \
       "SCENARIO..." >&2; exit 2 ;;
esac
