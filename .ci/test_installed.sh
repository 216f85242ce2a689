#!/usr/bin/env bash
# Test a built wheel as users get it: a fresh virtual environment holding only the wheel and
# what REQUIREMENTS name, stubtest against the installed stubs, and the test suite run from a
# copy of tests/ outside the checkout, so that python/ is not importable (the installed_check
# plugin stops the run otherwise and prints where ptyfast came from).
#
# usage: .ci/test_installed.sh PYTHON VENV "REQUIREMENTS" [pytest arguments...]
#   REQUIREMENTS: pip requirement lines (one per line), e.g. "/abs/dist/ptyfast-...whl[test]";
#   they must include mypy and pytest
set -euo pipefail
python=$1 venv=$2 requirements=$3
shift 3
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=$(realpath -m "$venv")

"$python" -m venv --clear "$venv"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s\n' "$requirements" > "$work/requirements.txt"
"$venv/bin/python" -m pip install -q -r "$work/requirements.txt"
rm "$work/requirements.txt"
cp -r "$repo/tests" "$repo/README.md" "$repo/pyproject.toml" "$repo/.ci/installed_check.py" \
    "$work/"
cd "$work"
"$venv/bin/python" -m mypy.stubtest ptyfast._core
PTYFAST_SOURCE_TREE="$repo" "$venv/bin/python" -m pytest -p installed_check "$@"
