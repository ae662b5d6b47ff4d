#!/usr/bin/env bash
# Build the wasm module and serve the page on http://127.0.0.1:8080 (PORT to change it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
bash scripts/build_web.sh
port="${PORT:-8080}"
echo "serving http://127.0.0.1:$port/ (Ctrl-C to stop); open it in a browser with WebGPU"
exec python3 -m http.server "$port" --bind 127.0.0.1
