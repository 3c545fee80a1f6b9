#!/usr/bin/env bash
# The main job on MovieLens-100K: dataset summary; the CML Siamese model (user-item triplet
# network) trained and evaluated under the ua.base/ua.test full-ranking protocol next to the Pop
# and ItemKNN baselines (accuracy and beyond-accuracy); paired significance tests; a user's top-10
# with titles; the movies most similar to Toy Story; the HTML report of the three runs.
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
for cfg in ml100k-pop ml100k-itemknn ml100k-cml; do
  echo
  echo "== siamrec train --config examples/configs/$cfg.yaml"
  start=$(date +%s)
  log=()
  if [ "$cfg" = ml100k-cml ]; then log=(--log "$OUT/$cfg.log.jsonl"); fi
  "$SIAMREC" -q train --config "examples/configs/$cfg.yaml" --out "$OUT/$cfg.model" --json "$OUT/$cfg.json" \
    "${log[@]}" 2>/dev/null
  echo "(trained and evaluated in $(( $(date +%s) - start )) s)"
done
echo
echo "== siamrec compare: Pop (A) vs CML (B), paired over users"
"$SIAMREC" compare "$OUT/ml100k-pop.json" "$OUT/ml100k-cml.json" --metrics ndcg@10,recall@10,novelty@10,pop_lift@10
echo
echo "== siamrec compare: ItemKNN (A) vs CML (B)"
"$SIAMREC" compare "$OUT/ml100k-itemknn.json" "$OUT/ml100k-cml.json" --metrics ndcg@10,recall@10,novelty@10,pop_lift@10
echo
echo "== siamrec recommend --model ml100k-cml --user 1 --k 10"
"$SIAMREC" recommend --model "$OUT/ml100k-cml.model" --user 1 --k 10
echo
echo "== siamrec similar --model ml100k-cml --item 1 --k 5   (item 1 = Toy Story)"
"$SIAMREC" similar --model "$OUT/ml100k-cml.model" --item 1 --k 5
echo
echo "== siamrec report: Pop, ItemKNN and CML with CML's training log and embedding map"
"$SIAMREC" -q report "$OUT/ml100k-pop.json" "$OUT/ml100k-itemknn.json" "$OUT/ml100k-cml.json" \
  --labels Pop,ItemKNN,CML --log "$OUT/ml100k-cml.log.jsonl" --log-labels CML --model "$OUT/ml100k-cml.model" \
  --title "siamrec demo: MovieLens-100K ua" --out "$OUT/report.html"
echo "models and JSON results are in $OUT"
echo "report: $OUT/report.html"
