#!/usr/bin/env bash
# Build the page's wasm module into web/pkg (what index.html loads).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --lib --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --out-dir web/pkg target/wasm32-unknown-unknown/release/lqf.wasm
