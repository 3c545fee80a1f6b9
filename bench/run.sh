#!/usr/bin/env bash
# Runs every benchmark and prints its table. Usage: bench/run.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build}
"$BUILD/bench/bench_scorer" --threads 2 --reps 7
