#!/usr/bin/env bash
# Installs the built Python package (BUILD/python/siamrec + libsiamrec) into the active Python:
# the virtualenv's site-packages when $VIRTUAL_ENV is set, else the user site of Debian's python3
# (~/.local/lib/python3.11/site-packages, or under $PYTHONUSERBASE). Offline: nothing is downloaded.
# Usage: scripts/install-python.sh [BUILD_DIR]   (make install-python)
set -euo pipefail
BUILD=${1:-build}
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -n "${VIRTUAL_ENV:-}" ]; then PY=$VIRTUAL_ENV/bin/python
else PY=/usr/bin/python3
fi
src=$BUILD/python/siamrec
if ! ls "$src"/_core.*.so >/dev/null 2>&1; then
  echo "install-python: $src/_core*.so is not built (run make build first)" >&2; exit 1
fi
lib=$(ls "$BUILD"/libsiamrec.so.[0-9]* 2>/dev/null | head -1 || true)
[ -n "$lib" ] || { echo "install-python: $BUILD/libsiamrec.so.* is not built" >&2; exit 1; }
if [ -n "${VIRTUAL_ENV:-}" ] && [ -z "${PYTHON:-}" ]; then
  site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
else
  site=$("$PY" -c 'import site; print(site.getusersitepackages())')
fi
want=$(basename "$(ls "$src"/_core.*.so)" | sed 's/^_core\.\(cpython-[0-9]*\).*/\1/')
have=$("$PY" -c 'import sys; print("cpython-%d%d" % sys.version_info[:2])')
if [ "$want" != "$have" ]; then
  echo "install-python: the module is built for $want but $PY is $have; build and install with Debian's /usr/bin/python3 (a venv: /usr/bin/python3 -m venv --system-site-packages)" >&2
  exit 1
fi
dest=$site/siamrec
tmp=$site/.siamrec.installing.$$
rm -rf "$tmp"
mkdir -p "$tmp"
cp "$src"/*.py "$src"/*.pyi "$src"/py.typed "$src"/_core.*.so "$tmp"/
cp "$lib" "$tmp/$(basename "${lib%.so.*}").so.$(echo "$lib" | sed 's/.*\.so\.\([0-9]*\).*/\1/')"
rm -rf "$dest"
mv "$tmp" "$dest"
cd /
"$PY" -c 'import siamrec, sys; print("install-python: siamrec %s installed in %s (%s)" % (siamrec.__version__, siamrec.__path__[0], sys.executable))'
