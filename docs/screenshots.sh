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
# page and window height: guide pages are long, so their figures and tables
# are in the picture.
pages=(
    "index 1800"
    "generated/skae.AutoencoderTransformer 1800"
    "generated/skae.AutoencoderAnomalyDetector 1800"
    "generated/skae.AutoencoderRegressor 1800"
    "generated/skae.AutoencoderEnsembleDetector 1800"
    "anomaly_detection 2400"
    "auto_examples/variants/plot_denoising 2600"
    "auto_examples/plot_displays 5000"
    "api 1800"
    "persistence 2400"
    "plotting 2400"
    "variational 9000"
    "variants/denoising 5200"
)
for entry in "${pages[@]}"; do
    read -r page height <<< "$entry"
    "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --window-size="1400,$height" \
        --screenshot="$out/${page//\//_}.png" "file://$html/$page.html" 2>/dev/null
done
ls "$out"
