#!/usr/bin/env bash
# Installs siamrec's build and test dependencies from Debian 12 packages.
# Idempotent: packages already present are skipped; apt-get runs only when something is missing.
set -euo pipefail

PKGS=(
  build-essential cmake ccache pkg-config python3 clang-format
  libtorch-dev libopenblas-dev libgloo-dev libdnnl-dev
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcurl4-openssl-dev libarchive-dev libssl-dev zlib1g-dev libboost-dev libcpp-httplib-dev libhnswlib-dev libfaiss-dev
  libsndfile1-dev libfftw3-dev libstb-dev
  dataset-fashion-mnist
  pybind11-dev python3-dev python3-numpy python3-pytest python3-pandas python3-scipy python3-tqdm python3-matplotlib
  python3-lxml python3-html5lib chromium
)
# Extra groups selected by the caller, e.g. `install-deps.sh bench` for benchmark-only tools.
for group in "$@"; do
  case "$group" in
    bench) PKGS+=(python3-torch python3-numpy python3-scipy python3-yaml python3-dev python3-setuptools hyperfine wrk) ;;
    *) echo "install-deps.sh: unknown group '$group' (known: bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
