#!/usr/bin/env bash
# The 7B path through the product's own commands on one GPU (issue 14), in one process tree:
#   scripts/gpu_run.sh [STEP ...]     # default: sft grpo-trl grpo-graph generate bench-training bench-generation cli
# builds the Qwen2.5-7B-shaped random checkpoint (+ a rank-32 adapter) once with save_pretrained, then runs
#   sft               qmind train sft, 4-bit QLoRA (the seed's r 32, seq 2048, packing, batch 2 x accumulation 8)
#   grpo-trl          qmind train grpo --rollout trl   (one step; TRL's own generate)
#   grpo-graph        qmind train grpo --rollout graph (one step; the CUDA-graph decoder through rollout_func)
#   generate          the transformers generator as a GPU worker's task calls it: 1 and 16 prompts x 3
#   bench-training    benchmarks/training.py --modes qlora (same GPU, same run)
#   bench-generation  benchmarks/generation.py, graph engine, merged and unmerged, the product's prompt length
#   learning          benchmarks/learning.py (base -> SFT -> GRPO x2), resumable across calls
#   gpu-worker        a GPU Celery worker + a CPU worker on Redis serving qmind discover --generator transformers
#   cli               qmind generate --generator transformers --model DIR --adapter DIR (a cold process)
# Every step has a time limit inside BUDGET_S (default 560 s), so the summary always gets written.
# Figures go to $OUT (default ./gpu-out): results.json (summary), log.txt, gpu.txt, raw.tar.gz (each command's own
# output and the checkpoints' config.yaml). Missing packages come as wheels in $WHEELS (default .whl/).
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
WORK=${WORK:-/tmp/qmind-gpu}
RES=$WORK/res
BUDGET_S=${BUDGET_S:-560}
mkdir -p "$OUT" "$WORK" "$RES"
export PYTHONUNBUFFERED=1 TRL_EXPERIMENTAL_SILENCE=1 TOKENIZERS_PARALLELISM=false
export QMIND_GEN_DTYPE=${QMIND_GEN_DTYPE:-bfloat16} QMIND_GEN_COMPILE=${QMIND_GEN_COMPILE:-false}
WHEELS=${WHEELS:-.whl}
export PYTHONPATH=$PWD
if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
PY=${PY:-python3}
log() { echo "=== $(date +%T) [${SECONDS}s] $*" | tee -a "$OUT/log.txt"; tar -czf "$OUT/raw.tar.gz" -C "$RES" . 2>/dev/null; }
# run LIMIT OUTFILE CMD...: at most LIMIT seconds, and never past the budget
run() {
  local limit=$1 out=$2 left; shift 2
  left=$((BUDGET_S - SECONDS - 20))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 30 ]; then log "skipped (budget): $*"; return 1; fi
  log "(${limit}s max) $*"
  timeout "$limit" "$@" >"$RES/$out" 2>>"$OUT/log.txt"
  local rc=$?; [ $rc -ne 0 ] && log "exit $rc: $*"; return $rc
}
Q="$PY -m scheduler.cli"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c 'import importlib
for name in ("torch", "transformers", "peft", "trl", "datasets", "bitsandbytes", "pyarrow", "qiskit"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as exc:
        print(name, "NOT IMPORTABLE:", exc)'
} >"$RES/gpu.txt" 2>&1
cp "$RES/gpu.txt" "$OUT/gpu.txt"

# the 7B-shaped checkpoint, once per machine (kept in $WORK while it stays warm); `learning` does not need it
checkpoint() {
  [ -f "$WORK/q7b/config.json" ] && [ -f "$WORK/adapter/adapter_config.json" ] && return 0
  run 120 checkpoint.json "$PY" benchmarks/gpu_product.py checkpoint "$WORK/q7b" --adapter "$WORK/adapter" \
    ${CHECKPOINT_FLAGS:-}  # CHECKPOINT_FLAGS=--tiny checks this script on CPU
}
steps=${*:-sft grpo-trl grpo-graph generate bench-training bench-generation cli}
for step in $steps; do
  case $step in learning | bench-training) ;; *) checkpoint || exit 1 ;; esac
  case $step in
  learning)
    # benchmarks/learning.py on the project's own gpu-size base; --resume continues a run cut off by the budget
    # in an earlier call on the same (still warm) machine. LEARNING_FLAGS adds or overrides options.
    run 900 learning.txt "$PY" benchmarks/learning.py --train-base gpu --base-budget 90 --out "$WORK/learn" \
      --resume ${LEARNING_FLAGS:-}
    for f in learning.json learning.png learning.partial.json; do
      [ -f "$WORK/learn/$f" ] && cp "$WORK/learn/$f" "$OUT/$f"; done ;;
  sft)
    run 60 sft_data.json "$PY" benchmarks/gpu_product.py sft-data "$WORK/sft.jsonl" --rows 600 &&
      run 170 sft.json $Q train sft --data "$WORK/sft.jsonl" --model "$WORK/q7b" --max-steps "${SFT_STEPS:-3}" \
        --dataloader-workers 0 --save-steps 1000 --no-register --checkpoints "$WORK/ck_sft" \
        --trainer-dir "$WORK/tr" --json &&
      cp "$WORK/ck_sft/quantum-mind-v1/config.yaml" "$RES/sft_config.yaml" ;;
  grpo-trl | grpo-graph)
    engine=${step#grpo-}
    [ -f "$WORK/grpo.jsonl" ] || run 60 grpo_export.json $Q export grpo --no-store --fresh-prompts \
      --goals tfim-8 --repeat 4 --out "$WORK/grpo.jsonl" --json
    run 110 "grpo_$engine.json" $Q train grpo --data "$WORK/grpo.jsonl" --model "$WORK/q7b" --max-steps 1 \
      --max-completion-length "${GRPO_TOKENS:-256}" --reward-workers 4 --rollout "$engine" --no-register \
      --checkpoints "$WORK/ck_$engine" --trainer-dir "$WORK/tr" --json &&
      cp "$WORK/ck_$engine/quantum-mind-v1/config.yaml" "$RES/grpo_$engine.yaml" ;;
  generate)
    run 90 gen_product.json "$PY" benchmarks/gpu_product.py generate --model "$WORK/q7b" --adapter "$WORK/adapter" \
      --prompts 1 16 --repeats 2 ;;
  bench-training)
    run 100 bench_training.json "$PY" benchmarks/training.py --modes qlora --steps 3 --warmup 1 --json ;;
  bench-generation)
    tokens=$("$PY" benchmarks/gpu_product.py prompt-tokens "$RES/gen_product.json" 2>/dev/null || echo 320)
    flags="--engines graph --lora-modes merged unmerged"
    [ "$QMIND_GEN_COMPILE" = true ] && flags="$flags --compile"
    run 100 gen_benchmark.json "$PY" benchmarks/generation.py $flags --prompt-tokens "$tokens" --new-tokens 256 \
      --bandwidth 4.8e12 --json ;;
  gpu-worker)
    # a GPU Celery worker (pinned to GPU 0) and a CPU worker on a local Redis serve a discovery with the transformers
    # generator: the path a user's GPU server runs. Redis comes as a binary in $REDIS_DIR (the device has none).
    R=${REDIS_DIR:-.redis}
    LD_LIBRARY_PATH=$R "$R/redis-server" --daemonize yes --port 6399 --save "" --appendonly no >/dev/null || {
      log "no redis-server in $R"; continue; }
    export QMIND_BROKER_URL=redis://127.0.0.1:6399/0 QMIND_DATABASE_URL=sqlite:///$WORK/gpu-worker.db
    export QMIND_GEN_MAX_NEW_TOKENS=${GEN_TOKENS:-256}
    $Q db upgrade >>"$OUT/log.txt" 2>&1
    $Q worker -Q gpu --gpu 0 -l warning >"$RES/gpu_worker.log" 2>&1 & gw=$!
    $Q worker -Q cpu -c 8 -l warning >"$RES/cpu_worker.log" 2>&1 & cw=$!
    run 240 gpu_discover.json $Q discover --goal tfim-8 --generator transformers --model "$WORK/q7b" \
      --adapter "$WORK/adapter" -n 2 -k 16 --no-baselines --report-dir "$WORK/reports" --json
    $Q sql "SELECT worker_host, iteration, count(*) AS batches, sum(completion_tokens) AS tokens, round(sum(seconds), 2) AS seconds, status FROM generation_batches GROUP BY worker_host, iteration, status" --json >"$RES/gpu_worker_batches.json" 2>>"$OUT/log.txt"
    $Q sql "SELECT status, count(*) AS n FROM evaluations GROUP BY status" --json >"$RES/gpu_worker_candidates.json" 2>>"$OUT/log.txt"
    kill $gw $cw 2>/dev/null; wait $gw $cw 2>/dev/null
    unset QMIND_BROKER_URL QMIND_DATABASE_URL QMIND_GEN_MAX_NEW_TOKENS ;;
  cli)
    run 80 gen_cli.json $Q generate --goal tfim-8 --generator transformers --model "$WORK/q7b" \
      --adapter "$WORK/adapter" --max-new-tokens 256 --json ;;
  *) log "unknown step $step" ;;
  esac
done
log "summary"
"$PY" benchmarks/gpu_product.py summary "$RES" >"$OUT/results.json" 2>>"$OUT/log.txt"
tar -czf "$OUT/raw.tar.gz" -C "$RES" .
tail -c 2500 "$OUT/results.json"; echo; grep "^===" "$OUT/log.txt" | tail -20
