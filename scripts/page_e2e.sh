#!/usr/bin/env bash
# The page end to end in headless Chromium (WebGPU on SwiftShader without a GPU): build the
# wasm, serve the repository, drive index.html through its data-testid hooks with Playwright
# (tests/page/e2e.mjs), then check that the model the page exported predicts the same with the
# native CLI. Screenshots and the exported model land in target/page-e2e/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build_web.sh
(cd tests/page && npm ci --no-audit --no-fund --loglevel=error)
out=target/page-e2e
rm -rf "$out" && mkdir -p "$out"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
PAGE_URL="http://127.0.0.1:$port/" OUT="$out" node tests/page/e2e.mjs

echo "== the page's exported model with the native CLI"
cargo build --release --bin lqf
target/release/lqf predict --model "$out/model.lqf" --json web/samples/eurosat/test/Forest/Forest_1154.jpg >"$out/native.json"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
page = json.load(open(f"{out}/result.json"))
native = json.load(open(f"{out}/native.json"))[0]["top"]
kappa = page["kappa"]
top = max(native, key=lambda t: t["score"])["class"]
assert top == page["class"], f"native predicts {top}, the page {page['class']}"
for t in native:
    browser = next(s["score"] for s in page["scores"] if s["class"] == t["class"]) * kappa
    # Same model and preprocessing; only the JPEG decoders differ (the browser's vs image-rs).
    assert abs(browser - t["score"]) < 0.25, f"{t['class']}: native {t['score']:.4f}, page {browser:.4f}"
worst = max(abs(next(s["score"] for s in page["scores"] if s["class"] == t["class"]) * kappa - t["score"]) for t in native)
print(f"native lqf predict agrees with the page: {top}; native logits " + ", ".join(f"{t['class']} {t['score']:.3f}" for t in native) + f"; largest difference {worst:.3f} (the page shows 2 decimals of score/κ)")
PY
