#!/usr/bin/env bash
# The 7B path through the product's own commands on one GPU (issue 14). Two parts, one device call each:
#   scripts/gpu_run.sh train      # qmind train sft (4-bit QLoRA), benchmarks/training.py, qmind train grpo (trl, graph)
#   scripts/gpu_run.sh generate   # qmind generate + the generator as a worker calls it, benchmarks/generation.py
# Each part builds the Qwen2.5-7B-shaped random checkpoint once (save_pretrained) and writes its figures to
# $OUT (default ./gpu-out): the commands' JSON, the checkpoints' config.yaml, and results.json (the summary).
# On the lent GPU machine, missing packages come as wheels in $WHEELS (default .whl/; docs/training.md, "GPU runs").
set -uo pipefail
part=${1:?usage: scripts/gpu_run.sh train|generate}
OUT=${OUT:-$PWD/gpu-out}      # results.json, log.txt, gpu.txt, raw.tar.gz (the device returns at most 8 files)
WORK=${WORK:-/tmp/qmind-gpu}
RES=$WORK/res                 # every command's own output; summarised into $OUT/results.json
mkdir -p "$OUT" "$WORK" "$RES"
export PYTHONUNBUFFERED=1 TRL_EXPERIMENTAL_SILENCE=1 TOKENIZERS_PARALLELISM=false
WHEELS=${WHEELS:-.whl}
if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
PY=${PY:-python3}
qmind() { "$PY" -m scheduler.cli "$@"; }
log() { echo "=== $(date +%T) $*" | tee -a "$OUT/log.txt"; tar -czf "$OUT/raw.tar.gz" -C "$RES" . 2>/dev/null; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/gpu.txt" 2>&1
"$PY" -c 'import torch, transformers, peft; print(torch.__version__, transformers.__version__, peft.__version__)' \
  >>"$OUT/gpu.txt" 2>&1

log "checkpoint"
"$PY" benchmarks/gpu_product.py checkpoint "$WORK/q7b" --adapter "$WORK/adapter" >"$RES/checkpoint.json" \
  2>>"$OUT/log.txt" || { log "checkpoint failed"; exit 1; }

if [ "$part" = train ]; then
  log "sft data"
  "$PY" benchmarks/gpu_product.py sft-data "$WORK/sft.jsonl" --rows 600 >"$RES/sft_data.json" 2>>"$OUT/log.txt"
  log "qmind train sft"
  timeout 190 "$PY" -m scheduler.cli train sft --data "$WORK/sft.jsonl" --model "$WORK/q7b" --max-steps "${SFT_STEPS:-3}" \
    --dataloader-workers 0 --save-steps 1000 --no-register --checkpoints "$WORK/ck_sft" --trainer-dir "$WORK/tr" \
    --json >"$RES/sft.json" 2>>"$OUT/log.txt" && cp "$WORK"/ck_sft/quantum-mind-v1/config.yaml "$RES/sft_config.yaml"
  log "benchmarks/training.py"
  timeout 120 "$PY" benchmarks/training.py --modes qlora --steps 3 --warmup 1 --json >"$RES/bench_training.json" \
    2>>"$OUT/log.txt"
  log "grpo export"
  qmind export grpo --no-store --fresh-prompts --goals tfim-8 --repeat 4 --out "$WORK/grpo.jsonl" --json \
    >"$RES/grpo_export.json" 2>>"$OUT/log.txt"
  for engine in trl graph; do
    log "qmind train grpo --rollout $engine"
    timeout 110 "$PY" -m scheduler.cli train grpo --data "$WORK/grpo.jsonl" --model "$WORK/q7b" --max-steps 1 \
      --max-completion-length "${GRPO_TOKENS:-256}" --reward-workers 4 --rollout $engine --no-register \
      --checkpoints "$WORK/ck_$engine" --trainer-dir "$WORK/tr" --json >"$RES/grpo_$engine.json" 2>>"$OUT/log.txt" \
      && cp "$WORK/ck_$engine/quantum-mind-v1/config.yaml" "$RES/grpo_$engine.yaml"
  done
else
  export QMIND_GEN_DTYPE=bfloat16 QMIND_GEN_COMPILE=${QMIND_GEN_COMPILE:-false}
  log "qmind generate (one process: load + capture + one batch)"
  timeout 150 "$PY" -m scheduler.cli generate --goal tfim-8 --generator transformers --model "$WORK/q7b" \
    --adapter "$WORK/adapter" --max-new-tokens 256 --json >"$RES/gen_cli.json" 2>>"$OUT/log.txt"
  log "generator as a worker calls it"
  timeout 200 "$PY" benchmarks/gpu_product.py generate --model "$WORK/q7b" --adapter "$WORK/adapter" \
    --prompts 1 16 --repeats 2 >"$RES/gen_product.json" 2>>"$OUT/log.txt"
  prompt_tokens=$("$PY" -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().splitlines()[-1])["runs"];
print(round(sum(sum(x["prompt_tokens"]) for x in r)/sum(len(x["prompt_tokens"]) for x in r)))' "$RES/gen_product.json")
  log "benchmarks/generation.py (prompt tokens $prompt_tokens)"
  flags="--engines graph --lora-modes merged unmerged"
  [ "$QMIND_GEN_COMPILE" = true ] && flags="$flags --compile"
  timeout 200 "$PY" benchmarks/generation.py $flags --prompt-tokens "${prompt_tokens:-320}" --new-tokens 256 \
    --bandwidth 4.8e12 --json >"$RES/gen_benchmark.json" 2>>"$OUT/log.txt"
fi
log "summary"
cp "$OUT/gpu.txt" "$RES/"
"$PY" benchmarks/gpu_product.py summary "$RES" >"$OUT/results.json" 2>>"$OUT/log.txt"
tar -czf "$OUT/raw.tar.gz" -C "$RES" .
nvidia-smi --query-gpu=memory.used --format=csv,noheader >>"$OUT/gpu.txt" 2>&1
tail -c 3000 "$OUT/results.json"; echo; tail -5 "$OUT/log.txt"
