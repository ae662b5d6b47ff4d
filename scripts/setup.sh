#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs to build, test and serve the project. Idempotent:
# each step is skipped when what it installs is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || need_apt+=(mesa-vulkan-drivers libvulkan1 libegl1 libegl-mesa0 libgl1-mesa-dri)
command -v python3 >/dev/null || need_apt+=(python3)
# Node.js drives the page test (Playwright); Debian 12's is new enough.
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# rustfmt: scripts/test.sh checks the formatting first (rustfmt.toml). Listed first, not piped
# into grep -q: under pipefail an early grep exit can fail the pipeline.
grep -q '^rustfmt' <<<"$(rustup component list --installed)" || rustup component add rustfmt

installed_targets=$(rustup target list --installed)
for t in wasm32-unknown-unknown aarch64-apple-darwin; do
  grep -qx "$t" <<<"$installed_targets" || rustup target add "$t"
done

# wasm-bindgen's CLI must match the library version in Cargo.lock exactly.
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wb_version" ]; then
  echo "setup: cargo install wasm-bindgen-cli $wb_version"
  # Not --locked: the CLI's own lockfile pins a crate version the registry no longer serves.
  cargo install -q wasm-bindgen-cli --version "$wb_version"
fi

# lavapipe warns without a runtime dir.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/lqf-xdg}"
mkdir -m700 -p "$XDG_RUNTIME_DIR"
