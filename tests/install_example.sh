#!/usr/bin/env bash
# Installs siamrec into a temporary prefix, builds examples/cpp against the installed package twice
# (CMake find_package and pkg-config), runs it on MovieLens-100K, and checks that it prints the same
# NDCG@10 as the installed command line on the same config.
#   install_example.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
data=${SIAMREC_DATA_DIR:-}
if [ -z "$data" ] || [ ! -f "$data/ml-100k/u.data" ]; then
  if [ "${SIAMREC_REQUIRE_DATA:-0}" = 1 ]; then echo "FAIL: ml-100k not found in SIAMREC_DATA_DIR='$data'"; exit 1; fi
  echo "SKIP: ml-100k not found (set SIAMREC_DATA_DIR)"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
test -f "$tmp/prefix/include/siamrec/siamrec.h"
test -f "$tmp/prefix/lib/cmake/siamrec/siamrecConfig.cmake"
test -f "$tmp/prefix/lib/pkgconfig/siamrec.pc"
# The public headers include neither LibTorch nor any internal header.
if grep -rEn '#include [<"](torch|ATen|c10|util|data|models|train|eval)/' "$tmp/prefix/include/siamrec"; then
  echo "FAIL: a public header includes an internal or LibTorch header"; exit 1
fi
# A sanitized build (make asan-test) installs an instrumented library: its users are built with
# the same sanitizer, as a user of such a build would (the runtime must come first).
san_flags=""
if [ -n "${SIAMREC_SANITIZE:-}" ]; then san_flags="-fsanitize=$SIAMREC_SANITIZE"; fi
# 1. CMake package.
cmake -S "$src/examples/cpp" -B "$tmp/ex" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="$san_flags" > "$tmp/cfg.log"
cmake --build "$tmp/ex" > "$tmp/build.log"
# 2. pkg-config.
PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --exists siamrec
# shellcheck disable=SC2046
g++ -O1 $san_flags -o "$tmp/quickstart_pc" "$src/examples/cpp/quickstart.cc" $(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --cflags --libs siamrec)
cd "$tmp"
export OPENBLAS_NUM_THREADS=1
"$tmp/ex/quickstart" > api.out
"$tmp/quickstart_pc" > api_pc.out
cat api.out
grep -q "saved and loaded: same recommendations" api.out
api=$(awk '$1 == "ndcg@10" {print $2}' api.out)
api_pc=$(awk '$1 == "ndcg@10" {print $2}' api_pc.out)
"$tmp/prefix/bin/siamrec" train --set data.dataset=ml-100k --set split.type=fixed --set split.name=ua \
  --set model.type=itemknn --set eval.k=10 --out "$tmp/cli.model" --json "$tmp/cli.json" -q > /dev/null 2> cli.err
cli=$(python3 -c "import json,sys; print(repr(json.load(open('$tmp/cli.json'))['metrics']['ndcg@10']))")
echo "NDCG@10: API (CMake package) $api, API (pkg-config) $api_pc, installed CLI $cli"
python3 - "$api" "$api_pc" "$cli" <<'PY'
import sys
a, b, c = map(float, sys.argv[1:])
ok = abs(a - c) < 1e-5 and abs(b - c) < 1e-5 and c > 0.1
print("PASS" if ok else "FAIL: the API and the CLI disagree")
sys.exit(0 if ok else 1)
PY
