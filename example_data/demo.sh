#!/usr/bin/env bash
# The main job on the bundled example data: prepare -> train -> adapt -> predict -> evaluate.
# Usage: bash example_data/demo.sh [OUT_DIR]   (run by `make demo`)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-demo_out}"
mkdir -p "$out"
genome="$here/genome/hg38_chr20_0-3000000.fa"
synth="$here/synth"

echo "== prepare: BEDPE + genome -> HDF5" >&2
epcli prepare "$synth/train_cells.bedpe" --genome "$genome" -o "$out/train.h5" --force
