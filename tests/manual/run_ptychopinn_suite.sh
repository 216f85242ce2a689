#!/usr/bin/env bash
# Run four of PtychoPINN's own test files, unchanged, against ptyfast.
#
# Usage: tests/manual/run_ptychopinn_suite.sh PTYCHOPINN_CHECKOUT [PYTHON]
#
#   PTYCHOPINN_CHECKOUT  a checkout (or any directory) holding PtychoPINN's tests/ folder
#   PYTHON               the interpreter with ptyfast and pytest installed
#                        (default: .venv/bin/python of this repository, else python3)
#
# The test files insert their checkout's root into sys.path, which would import the real
# `ptycho` package. So they are copied into a temporary directory whose root holds a tiny
# `ptycho` package instead: an alias that serves every `ptycho.X` import from `ptyfast.X`.
# Nothing in the checkout is modified. Extra arguments after PYTHON go to pytest.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
checkout=$1
here=$(cd "$(dirname "$0")/../.." && pwd)
python=${2:-}
if [[ -z $python ]]; then
    if [[ -x $here/.venv/bin/python ]]; then python=$here/.venv/bin/python; else python=python3; fi
fi
if [[ $python == */* ]]; then python=$(realpath -s "$python"); fi  # absolute; a venv link kept
shift $(( $# >= 2 ? 2 : 1 ))

files=(test_raw_data_grouping.py test_coordinate_grouping.py test_oversampling.py
       test_scaling_regression.py)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tests" "$tmp/ptycho"
for f in "${files[@]}"; do
    if [[ ! -f $checkout/tests/$f ]]; then
        echo "error: $checkout/tests/$f not found (is $checkout a PtychoPINN checkout?)" >&2
        exit 2
    fi
    cp "$checkout/tests/$f" "$tmp/tests/"
done

cat > "$tmp/ptycho/__init__.py" <<'PY'
"""Alias package: `import ptycho.X` gives `ptyfast.X` (the same module object)."""
import importlib
import importlib.abc
import importlib.util
import sys

import ptyfast


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("ptycho."):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("ptyfast" + spec.name[len("ptycho"):])

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Alias())
sys.modules[__name__] = ptyfast
PY

cd "$tmp"
# No pytest.ini of ours, no cache in the checkout; -p no:cacheprovider keeps $tmp clean too.
exec "$python" -m pytest -q -p no:cacheprovider --rootdir="$tmp" "$tmp/tests" "$@"
