#!/usr/bin/env bash
# Runs on the lent GPU machine (see scripts/device_pack.sh), in the checkout's copy there, and
# leaves its figures under $OUT: `lqf bench`, PyTorch doing the same work on the same GPU
# (benches/torch/bench.py) and the comparison table, the burn/CPU peers, the GPU test suites on
# the real Vulkan driver, and a few-shot run on Flowers-5, in that order of importance. Each step
# has its own time limit and all of them one deadline (DEADLINE seconds, under the call's
# timeout_s), so a step that hangs costs its limit and the figures already made come back.
set -uo pipefail
OUT=${OUT:-/tmp/lqf-out}
DEADLINE=${DEADLINE:-500}
mkdir -p "$OUT"
log() { echo "== $(date +%T) ${SECONDS}s $*" | tee -a "$OUT/steps.log"; }
# limit SECONDS NAME: sets L to min(SECONDS, time to the deadline) and logs the step, or fails
# (the step is skipped) when under 20 s are left. Steps run as `limit 120 x && timeout $L cmd`.
limit() {
  L=$1
  local left=$((DEADLINE - SECONDS))
  [ "$left" -lt "$L" ] && L=$left
  if [ "$L" -lt 20 ]; then log "skipped $2: deadline"; return 1; fi
  log "$2 (limit ${L}s)"
}

export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/lqf-xdg}
mkdir -p "$XDG_RUNTIME_DIR"
for f in .device/gl/*.deb; do dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
tar -C .device -xJf .device/bin.tar.xz
B=.device/bin
# The test executables read their data from the directory they were compiled in.
dir=$(cat .device/manifest_dir)
if [ "$dir" != "$PWD" ] && [ ! -e "$dir" ]; then mkdir -p "$(dirname "$dir")" && ln -s "$PWD" "$dir"; fi
mkdir -p target/release && cp "$B/lqf" target/release/lqf
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"

# status: logs how a step ended when it did not end well (timeout's 124 is the limit).
status() { local rc=$?; [ "$rc" -eq 0 ] || log "ended with status $rc"; }
limit 30 info && { timeout $L "$B/lqf" info 2>&1 | tee -a "$OUT/steps.log"; status; }
limit 120 bench && { timeout $L "$B/lqf" bench --reps 5 --json > "$OUT/lqf.json" 2>> "$OUT/steps.log"; status; }
limit 150 torch && { PYTHONUNBUFFERED=1 timeout $L python3 benches/torch/bench.py --reps 5 --json > "$OUT/torch.json" 2>> "$OUT/steps.log"; status; }
if [ -s "$OUT/lqf.json" ] && [ -s "$OUT/torch.json" ]; then
  python3 scripts/bench_compare.py "$OUT/lqf.json" "$OUT/torch.json" > "$OUT/compare.md" && cat "$OUT/compare.md"
fi
limit 90 peers && { timeout $L "$B/peers" --reps 5 > "$OUT/peers.txt" 2>&1; status; }
limit 60 selftest && { timeout $L "$B/lqf" selftest 2>&1 | tail -20 | tee -a "$OUT/steps.log"; status; }
for t in "$B"/test-*; do
  limit 90 "$(basename "$t")" && { timeout $L "$t" --test-threads 4 2>&1 | grep -E '^test result|FAILED|panicked|failed' | tee -a "$OUT/steps.log"; status; }
done
if [ -d .device/data/flowers5 ]; then
  # The protocol of scripts/results.sh (40 CG iterations, 30 epochs), seed 0 only.
  limit 120 "fewshot depth 1" && { timeout $L "$B/lqf" fewshot --data .device/data/flowers5 --shots 5 --seeds 0 --methods probe,lqf,finetune --lrs 0.003 --iterations 40 --epochs 30 --json > "$OUT/fewshot-d1.json" 2>> "$OUT/steps.log"; status; }
  limit 180 "fewshot depth 17" && { timeout $L "$B/lqf" fewshot --data .device/data/flowers5 --depth 17 --shots 5 --seeds 0 --methods lqf --iterations 40 --json > "$OUT/fewshot-d17.json" 2>> "$OUT/steps.log"; status; }
fi
log "done"
