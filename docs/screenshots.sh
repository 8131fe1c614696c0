#!/usr/bin/env bash
# Screenshots of the built site (after `make docs` or `make docs-ci`) with
# headless Chromium: the home page, each estimator's API page, a gallery
# example and a guide page. Usage: docs/screenshots.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")"
html="$PWD/_build/html"
out="${1:-_build/screenshots}"
mkdir -p "$out"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome)"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
pages=(
    index
    generated/skae.AutoencoderTransformer
    generated/skae.AutoencoderAnomalyDetector
    generated/skae.AutoencoderRegressor
    auto_examples/variants/plot_denoising
    variational
    "variational#figures"
    "variants/denoising#measured"
)
for page in "${pages[@]}"; do
    path="${page%%#*}"          # page[#anchor]: the anchor scrolls the page
    anchor="${page#"$path"}"
    name="${page//[\/#]/_}"
    "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --window-size=1400,1800 \
        --screenshot="$out/$name.png" "file://$html/$path.html$anchor" 2>/dev/null
done
ls "$out"
