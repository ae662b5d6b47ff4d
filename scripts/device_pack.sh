#!/usr/bin/env bash
# Prepares the one script a session with a lent GPU machine runs (issue 8's real-GPU half):
# that machine has no Rust, so everything is built here and packed into .device/ (ignored),
# which the device call carries. Then, with the device tool:
#
#   bash scripts/device_pack.sh
#   run(command="bash scripts/device_run.sh", carry=[".device"], timeout_s=540)
#
# .device/ holds: the lqf binary, the GPU test executables and the burn/CPU peer bench
# (stripped, xz-packed), the Vulkan loader's .deb for the x86-64 machine, the Flowers-5 set
# for a few-shot run, and the path the test executables were compiled in (they read their data
# from CARGO_MANIFEST_DIR; device_run.sh links that path to the checkout there).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/datasets}
# The suites that exercise the GPU kernels; the rest (CLI, images, shaders' validation) test
# host code that does not change with the adapter. Their size is what the 64 MiB carry allows.
TESTS=${TESTS:-"kernels derivatives kfac lqf golden influence baselines model_file"}

grep -qx '/.device/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo '/.device/' >> .git/info/exclude; }
[ -d .device ] && chmod -R u+w .device
rm -rf .device && mkdir -p .device/bin .device/gl .device/data

cargo build --release --quiet
cp target/release/lqf .device/bin/lqf
# The test executables, named by suite: cargo prints each one's path as JSON.
cargo test --release --no-run --message-format=json --quiet |
  python3 -c '
import json, shutil, sys
want = set(sys.argv[1].split())
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in want and "test" in m["target"]["kind"]:
        shutil.copy(m["executable"], ".device/bin/test-" + m["target"]["name"])
' "$TESTS"
for t in $TESTS; do [ -x ".device/bin/test-$t" ] || { echo "test executable for $t not built" >&2; exit 1; }; done
cargo build --release --quiet --manifest-path benches/peers/Cargo.toml
cp benches/peers/target/release/lqf-bench-peers .device/bin/peers
strip .device/bin/*
tar -C .device -cJf .device/bin.tar.xz bin && rm -rf .device/bin
pwd > .device/manifest_dir

# The Vulkan loader for the x86-64 machine (device/README.md's recipe; its GL libraries are not needed).
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/lqf-amd64'
mkdir -p /tmp/lqf-amd64/partial
apt-get $o update -qq
(cd .device/gl && apt-get $o download -qq libvulkan1)
[ -d "$DATA/flowers5" ] && cp -r --no-preserve=mode "$DATA/flowers5" .device/data/

tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
carry=$(du -sb .device | cut -f1)
echo "working tree $((tree / 1048576)) MiB + .device $((carry / 1048576)) MiB (limit 64 MiB)"
[ $((tree + carry)) -lt $((64 * 1048576)) ] || { echo "too large to carry: drop suites from TESTS" >&2; exit 1; }
