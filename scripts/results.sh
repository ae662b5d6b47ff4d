#!/usr/bin/env bash
# The few-shot accuracy protocol of docs/RESULTS.md (issue 8), resumable: each configuration
# writes docs/results/<set>-<backbone>-d<depth>-k<shots>-s<seeds>-<config>.json once and is skipped after that;
# then scripts/results_tables.py turns every JSON there into docs/results/tables.md and the
# robustness plot docs/results/robustness.svg.
#
#   bash scripts/results.sh                 # the whole protocol (days on a CPU driver)
#   SETS=flowers5 SHOTS=5 DEPTHS=1 bash scripts/results.sh   # a subset
#
# Environment: DATA (../shared/datasets), SETS, SHOTS, SEEDS, DEPTHS ("1 3 all"), BACKBONES,
# CONFIGS (which of: main finetune finetune_small finetune_large nokfac nokfac_small nokfac_scaled alpha0 sgd sgd_small sgd_scaled ce
# auto lambdaX, e.g. lambda0.01), FT_LRS, FT_SMALL_LRS, FT_LARGE_LRS, SGD_LRS, SGD_SMALL_LRS, NOKFAC_SMALL_LRS, CE_LRS, SCALED_LRS, LQF (a built binary: skips the build),
# ITERS, EPOCHS.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/datasets}
SETS=${SETS:-"eurosat dtd10 flowers5"}
SHOTS=${SHOTS:-5,10,25}
SEEDS=${SEEDS:-0,1,2}
DEPTHS=${DEPTHS:-"1 3 all"}
BACKBONES=${BACKBONES:-mobilenet_v2}
CONFIGS=${CONFIGS:-"main finetune finetune_small nokfac nokfac_small alpha0 sgd sgd_small sgd_scaled ce auto"}
FT_LRS=${FT_LRS:-0.003,0.01,0.03}
# Fine-tuning was best at the grid's lowest rate on every set: one step of 3× below it.
FT_SMALL_LRS=${FT_SMALL_LRS:-0.001}
# Where a grid's highest rate came out best (EfficientNet-Lite0 on Flowers-5, grid
# 0.001–0.01): one step of 3× above it.
FT_LARGE_LRS=${FT_LARGE_LRS:-0.03}
SGD_LRS=${SGD_LRS:-0.1,0.3,1}
# Below 2(1 + μ)/λ_max(M⁻¹H) ≈ 2e-3 (examples/kfac_scale.rs), where K-FAC SGD is stable at depth 1.
SGD_SMALL_LRS=${SGD_SMALL_LRS:-0.0001,0.0003,0.001}
# Plain SGD diverges at SGD_LRS (no K-FAC to scale the step); this grid is its honest one.
NOKFAC_SMALL_LRS=${NOKFAC_SMALL_LRS:-0.0001,0.001,0.01}
# Cross-entropy's K-FAC SGD diverges at 0.5 like MSE's: the same stable grid.
CE_LRS=${CE_LRS:-0.0001,0.0003,0.001}
# Curvature-scaled rates (sgd_scaled, nokfac_scaled): a 10× range below the bound of 3.
SCALED_LRS=${SCALED_LRS:-0.1,0.3,1}
ITERS=${ITERS:-40}
EPOCHS=${EPOCHS:-30}
OUT=docs/results
mkdir -p "$OUT"
if [ -z "${LQF:-}" ]; then
  cargo build --release --quiet
  LQF=target/release/lqf
fi

for set in $SETS; do
  for backbone in $BACKBONES; do
    for depth in $DEPTHS; do
      for config in $CONFIGS; do
        # A CG configuration at a cap other than the default is its own file and method name,
        # so it neither collides with nor is mistaken for the default's.
        cap="" suffix=""
        case $config in main|alpha0|auto|lambda*)
          if [ "$ITERS" != 40 ]; then cap=", CG ≤ $ITERS" suffix="_iters$ITERS"; fi ;;
        esac
        case $config in
          # At another CG cap the probes are unchanged: only LQF runs, named by its cap.
          main) if [ -n "$cap" ]; then args=(--methods lqf --iterations "$ITERS" --tag "${cap#, }"); else args=(--methods probe,logistic,lqf --iterations "$ITERS"); fi ;;
          finetune) args=(--methods finetune --lrs "$FT_LRS" --epochs "$EPOCHS") ;;
          finetune_small) args=(--methods finetune --lrs "$FT_SMALL_LRS" --epochs "$EPOCHS") ;;
          finetune_large) args=(--methods finetune --lrs "$FT_LARGE_LRS" --epochs "$EPOCHS") ;;
          # The paper's ablations: plain SGD without K-FAC (same epochs and learning rates as
          # the K-FAC SGD below), and α = 0 (plain ReLU6 in the linearized blocks).
          nokfac) args=(--methods lqf --solver sgd --lr-scale absolute --kfac false --lrs "$SGD_LRS" --epochs "$EPOCHS" --tag "SGD, no K-FAC") ;;
          nokfac_small) args=(--methods lqf --solver sgd --lr-scale absolute --kfac false --lrs "$NOKFAC_SMALL_LRS" --epochs "$EPOCHS" --tag "SGD, no K-FAC") ;;
          # The paper's third ablation: the linearized model with cross-entropy instead of MSE
          # (not quadratic: K-FAC SGD with the softmax curvature).
          ce) args=(--methods lqf --loss cross-entropy --solver sgd --lr-scale absolute --lrs "$CE_LRS" --epochs "$EPOCHS" --tag "cross-entropy") ;;
          alpha0) args=(--methods lqf --alpha 0 --iterations "$ITERS" --tag "α=0$cap") ;;
          sgd) args=(--methods lqf --solver sgd --lr-scale absolute --lrs "$SGD_LRS" --epochs "$EPOCHS" --tag "SGD+K-FAC") ;;
          # λ chosen on a held-out fold of the training photos (the largest λ of 1e-4…100 within
          # one standard error of the lowest held-out MSE) instead of fixed at 1e-3.
          auto) args=(--methods lqf --weight-decay auto --iterations "$ITERS" --tag "λ held-out$cap") ;;
          # A fixed λ other than 1e-3, named in the config: lambda0.01, lambda0.1, …
          lambda*) args=(--methods lqf --weight-decay "${config#lambda}" --iterations "$ITERS" --tag "λ ${config#lambda}$cap") ;;
          sgd_small) args=(--methods lqf --solver sgd --lr-scale absolute --lrs "$SGD_SMALL_LRS" --epochs "$EPOCHS" --tag "SGD+K-FAC") ;;
          # The rate as a fraction of the stiffest direction's step (--lr-scale curvature, the
          # CLI's and the page's default since 2026-12-07): every rate below 2(1 + μ) = 3 is stable.
          sgd_scaled) args=(--methods lqf --solver sgd --lr-scale curvature --lrs "$SCALED_LRS" --epochs "$EPOCHS" --tag "SGD+K-FAC, scaled lr") ;;
          nokfac_scaled) args=(--methods lqf --solver sgd --lr-scale curvature --kfac false --lrs "$SCALED_LRS" --epochs "$EPOCHS" --tag "SGD, no K-FAC, scaled lr") ;;
          *) echo "unknown config $config" >&2; exit 2 ;;
        esac
        out="$OUT/$set-$backbone-d$depth-k${SHOTS//,/_}-s${SEEDS//,/_}-$config$suffix.json"
        [ -s "$out" ] && continue
        echo "== $set $backbone depth $depth $config" >&2
        "$LQF" fewshot --data "$DATA/$set" --backbone "$backbone" --depth "$depth" --shots "$SHOTS" --seeds "$SEEDS" --json "${args[@]}" > "$out.part"
        mv "$out.part" "$out"
      done
    done
  done
done
python3 scripts/results_tables.py "$OUT" README.md
