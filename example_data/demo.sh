#!/usr/bin/env bash
# The main job on the bundled example data (semi-synthetic labels on real hg38 sequence):
#   prepare -> train -> adapt -> predict -> evaluate, then print the per-cell table.
# Usage: bash example_data/demo.sh [OUT_DIR]      (what `make demo` runs)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-demo_out}"
mkdir -p "$out"
genome="$here/genome/hg38_chr20_0-3000000.fa"
synth="$here/synth"

# Rows of the genome region a file belongs to (column 13 'split'), header kept.
region() { awk -v want="$2" -F'\t' '/^#/ { if (!h++) print; next } $13 == want' "$1"; }

echo "== 1/5 prepare: training cells T1-T5, training region only" >&2
for c in T1 T2 T3 T4 T5; do region "$synth/$c.bedpe" train; done | awk '!/^#/ || !h++' \
  > "$out/train.bedpe"
epcli prepare "$out/train.bedpe" --genome "$genome" -o "$out/train.h5" --force

echo "== 2/5 train: PRISM, validation on held-out cell T5 and a held-out genome block" >&2
epcli train "$out/train.h5" -o "$out/model" --config "$here/demo_config.json" \
  --val-cells T5 --force

for c in U1 U2; do
  echo "== 3/5 adapt: unseen cell $c from 64 labeled pairs of its training region" >&2
  region "$synth/$c.bedpe" train > "$out/$c.support.bedpe"
  region "$synth/$c.bedpe" test > "$out/$c.test.bedpe"
  epcli adapt "$out/model" "$out/$c.support.bedpe" --genome "$genome" --shots 64 \
    -o "$out/$c.proto" --force
  echo "== 4/5 predict: $c's test region (pairs never seen in training), adapted" >&2
  epcli predict "$out/$c.test.bedpe" --genome "$genome" --model "$out/model" \
    --prototype "$out/$c.proto" -o "$out/$c.scored.bedpe" --force
  # the same pairs scored zero-shot (no prototype), under the cell name "<cell>-zeroshot"
  epcli predict "$out/$c.test.bedpe" --genome "$genome" --model "$out/model" \
    --cell "$c-zeroshot" -o "$out/$c.zeroshot.bedpe" --force
done
# one file for evaluate: the first 17 columns (the adapted files also carry 'call')
for f in U1.scored U1.zeroshot U2.scored U2.zeroshot; do cut -f1-17 "$out/$f.bedpe"; done \
  | awk '!/^#/ || !h++' > "$out/scored.bedpe"

echo "== 5/5 evaluate: per-cell AUPR beside prevalence and the distance baseline" >&2
epcli evaluate "$out/scored.bedpe" -o "$out/per_cell.tsv" --bootstrap 500 --force
column -t -s $'\t' "$out/per_cell.tsv"
echo "outputs in $out/ (model card: $out/model/model_card.json)" >&2
