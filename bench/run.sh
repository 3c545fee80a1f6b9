#!/usr/bin/env bash
# Runs every benchmark and prints its table. Usage: bench/run.sh [BUILD_DIR]
# Needs the data directory (SIAMREC_DATA_DIR) with ml-1m-implicit-lightgcn and ncf-ml-1m.
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
"$BUILD/bench/bench_scorer" --threads 2 --reps 7
echo
"$BUILD/bench/bench_gcn" --reps 15
echo
"$BUILD/bench/bench_engines" --epochs 1 | tee /tmp/siamrec-bench-engines.txt
# Against the PyTorch reference (../shared/bench/torch_ref.py), same loss/optimizer, 1 thread each.
REF=${SIAMREC_TORCH_REF:-../shared/bench/torch_ref.py}
if [ -f "$REF" ]; then
  bash scripts/install-deps.sh bench >/dev/null
  echo
  echo "PyTorch reference ($REF, triplet, d=64, batch 4096, Adagrad lr 0.05, 1 thread, 1 epoch):"
  ref=$(OMP_NUM_THREADS=1 /usr/bin/python3 "$REF" "$SIAMREC_DATA_DIR" --loss triplet --dim 64 --batch 4096 --epochs 1 --threads 1 2>/dev/null | tail -1)
  echo "  $ref"
  ours=$(awk '/d=64 fused engine, 1 thread/{print $7; exit}' /tmp/siamrec-bench-engines.txt)
  theirs=$(echo "$ref" | sed -n 's/.*triplets_per_s=\([0-9]*\).*/\1/p')
  awk -v a="$ours" -v b="$theirs" 'BEGIN{printf "  fused engine 1 thread: %.0f triplets/s = %.1fx the PyTorch reference (target >= 15x)\n", a, a/b}'
fi
# Serving and ANN need a trained ML-1M model: train one (fused engine, ~3.5 min) unless given.
MODEL=${SIAMREC_BENCH_MODEL:-}
if [ -z "$MODEL" ]; then
  MODEL=$(mktemp -d)/ncf.model
  "$BUILD/siamrec" -q train --config examples/configs/ml1m-ncf-cml.yaml --out "$MODEL" --no-eval
fi
echo
"$BUILD/bench/bench_serve" "$MODEL" --requests 20000 --concurrency 1,2,4
echo
"$BUILD/bench/bench_ann" "$MODEL" --items 1000000 --queries 300
