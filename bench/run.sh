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
# LightGCN epochs before/after (fixed-width product, negatives scored in place), and one GRU layer.
/usr/bin/python3 bench/bench_graph.py --build "$BUILD"
echo
"$BUILD/bench/bench_gru" --reps 30
echo
# Engines: LibTorch, fused (per-example and mini-batch, 1 and 2 threads) and the PyTorch reference
# (../shared/bench/torch_ref.py, needs python3-torch), interleaved in one command.
REF=${SIAMREC_TORCH_REF:-../shared/bench/torch_ref.py}
if [ -f "$REF" ]; then bash scripts/install-deps.sh bench >/dev/null; else REF=none; fi
"$BUILD/bench/bench_engines" --epochs 3 --rounds 5 --torch-ref "$REF"
echo
# What share of item-row updates would move cache lines between cores at 2-64 threads (a model).
/usr/bin/python3 bench/contention.py
# Serving and ANN need a trained ML-1M model: train one (fused engine, ~2 min) unless given.
MODEL=${SIAMREC_BENCH_MODEL:-}
if [ -z "$MODEL" ]; then
  MODEL=$(mktemp -d)/ncf.model
  "$BUILD/siamrec" -q train --config examples/configs/ml1m-ncf-cml.yaml --out "$MODEL" --no-eval
fi
echo
# siamrec serve in its own process under wrk (installed by the bench group of install-deps.sh).
bash scripts/install-deps.sh bench >/dev/null
"$BUILD/bench/bench_serve" "$MODEL" --duration 10 --connections 1,4,16,64
echo
"$BUILD/bench/bench_ann" "$MODEL" --items 1000000 --queries 300
echo
# Python against the CLI: fit (ml100k-cml, NCF Hogwild), recommend for every user, embedding views.
/usr/bin/python3 bench/bench_python.py --build "$BUILD" --rounds 3
echo
# Sequence towers: seconds per epoch before/after (and the PyTorch SASRec when SIAMREC_PMIXER
# points at pmixer/SASRec.pytorch's python/ folder and SIAMREC_PMIXER_DATA at a folder made by
# `bench/sasrec_reference.py prepare --dataset ml-100k`).
if [ -n "${SIAMREC_PMIXER:-}" ]; then
  /usr/bin/python3 bench/bench_sequence.py --build "$BUILD" --pmixer "$SIAMREC_PMIXER" --ref-dir "$SIAMREC_PMIXER_DATA"
else
  /usr/bin/python3 bench/bench_sequence.py --build "$BUILD"
fi
echo
# Convergence against LightFM WARP on the NCF training set of ML-1M (issue 21): both curves in one
# run. SIAMREC_LIGHTFM points at a LightFM source checkout (github.com/lyst/lightfm; its shipped C
# file is built in place with Debian's python3-numpy/scipy, never vendored here).
if [ -n "${SIAMREC_LIGHTFM:-}" ]; then
  /usr/bin/python3 bench/bench_lightfm.py --build "$BUILD" --lightfm-src "$SIAMREC_LIGHTFM" --lfm-epochs 30
fi
echo
# siamrec tune: one trial at a time against tune.parallel 2 (forked trials), the same trials.
/usr/bin/python3 bench/bench_tune.py --build "$BUILD" --rounds 2
