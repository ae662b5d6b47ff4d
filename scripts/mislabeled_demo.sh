#!/usr/bin/env bash
# The mislabeled-photo demonstration of docs/RESULTS.md (issue 7), end to end:
#   bash scripts/mislabeled_demo.sh [OUT_DIR]
# builds the 250-photo EuroSAT set listed in docs/results/mislabeled-250.txt (one SeaLake photo
# filed under Forest), trains LQF on it (depth 1, λ 0.5, 40 CG iterations), explains the ten
# SeaLake test photos, forgets the mislabeled photo (--compare also retrains from scratch) and
# predicts the test photos again. About an hour on a 2-core CPU driver; minutes on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/datasets/eurosat}
OUT=${1:-/tmp/lqf-mislabeled}
mkdir -p "$OUT"
grep -v '^#' docs/results/mislabeled-250.txt | while read -r dst _ src; do
  mkdir -p "$OUT/set/$(dirname "$dst")"
  cp "$DATA/$src" "$OUT/set/$dst"
done
cargo build --release --quiet
LQF=target/release/lqf
$LQF train --data "$OUT/set" --out "$OUT/model.lqf" --depth 1 --weight-decay 0.5 --iterations 40
$LQF predict --model "$OUT/model.lqf" --data "$OUT/set" --explain 5 --influence-cg 0 --json "$OUT"/set/test/SeaLake/*.jpg > "$OUT/explain.json"
$LQF forget --model "$OUT/model.lqf" --data "$OUT/set" --image "$OUT/set/train/Forest/zz_mislabeled_SeaLake.jpg" --out "$OUT/forgot.lqf" --compare
$LQF predict --model "$OUT/forgot.lqf" --json "$OUT"/set/test/SeaLake/*.jpg > "$OUT/after.json"
echo "explanations: $OUT/explain.json; predictions after forgetting: $OUT/after.json" >&2
