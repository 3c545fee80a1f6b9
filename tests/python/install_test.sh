#!/usr/bin/env bash
# make install-python into a fresh user site ($PYTHONUSERBASE), then `import siamrec` from another
# folder without PYTHONPATH: the installed copy (with its libsiamrec) must load and work.
set -euo pipefail
BUILD=$1 SRC=$2
base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT
export PYTHONUSERBASE=$base
unset PYTHONPATH VIRTUAL_ENV
bash "$SRC/scripts/install-python.sh" "$BUILD"
cd "$base"
/usr/bin/python3 - "$base" <<'PY'
import sys, numpy as np
import siamrec
assert siamrec.__file__.startswith(sys.argv[1]), siamrec.__file__
ds = siamrec.Dataset.from_arrays(np.arange(50) % 10, np.arange(50) % 7)
assert (ds.n_users, ds.n_items, ds.size) == (10, 7, 50)
m = siamrec.Model({"model": {"type": "pop"}})
m.fit(ds, progress=False)
items, scores = m.recommend([0, 1], k=3)
assert items.shape == (2, 3)
print("installed siamrec works from", siamrec.__file__)
PY
