#!/usr/bin/env bash
# The main job on MovieLens-100K: dataset summary, then models trained and evaluated under the
# ua.base/ua.test full-ranking protocol, with accuracy and beyond-accuracy side by side.
set -euo pipefail
SIAMREC=${1:-build/siamrec}
cd "$(dirname "$0")/.."
if ! "$SIAMREC" -q info --dataset ml-100k >/dev/null 2>&1; then
  echo "ml-100k not found in the data directory; fetching the official archive"
  "$SIAMREC" fetch ml-100k
fi
OUT=${SIAMREC_DEMO_DIR:-$(mktemp -d)}
echo "== siamrec info --dataset ml-100k"
"$SIAMREC" info --dataset ml-100k
for cfg in ml100k-pop ml100k-itemknn; do
  echo
  echo "== siamrec train --config examples/configs/$cfg.yaml"
  "$SIAMREC" -q train --config "examples/configs/$cfg.yaml" --out "$OUT/$cfg.model" --json "$OUT/$cfg.json" 2>/dev/null
done
echo
echo "== siamrec compare (paired tests per user, Pop = A, ItemKNN = B)"
"$SIAMREC" compare "$OUT/ml100k-pop.json" "$OUT/ml100k-itemknn.json" --metrics ndcg@10,recall@10,novelty@10,arp@10
echo
echo "== siamrec recommend --model ml100k-itemknn --user 1 --k 10"
"$SIAMREC" recommend --model "$OUT/ml100k-itemknn.model" --user 1 --k 10
echo
echo "models and JSON results are in $OUT"
