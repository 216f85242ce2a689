#!/usr/bin/env bash
# Run the installed-wheel tests (all but the TensorFlow and slow ones) on other CPython versions, each
# in a fresh venv, for every version whose interpreter is on this machine (on PATH, or under
# pyenv). Says which versions it tested and which it could not find; fails if a test fails.
#
# usage: .ci/test_pythons.sh WHEEL VERSION...
set -euo pipefail
wheel=$(realpath "$1")
shift
here=$(cd "$(dirname "$0")" && pwd)
# The wheel with the test extra's requirements but TensorFlow (its reference path is plain
# Python over TF, and TF is the slowest install): one requirement per line, from pyproject.toml.
requirements="$wheel[plot]
$(python3 - "$here/../pyproject.toml" <<'PY'
import sys, tomllib
test = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["test"]
print("\n".join(r for r in test if not r.startswith("tensorflow")))
PY
)"

find_python() {  # an interpreter that really is CPython $1, or nothing
    local v=$1 c
    local candidates=("python$v")
    if command -v pyenv >/dev/null; then
        candidates+=("$(pyenv root)"/versions/"$v".*/bin/python"$v")
    fi
    candidates+=("/usr/bin/python$v" "/usr/local/bin/python$v")
    for c in "${candidates[@]}"; do
        if [[ -x $(command -v "$c" 2>/dev/null) ]] &&
            "$c" -c "import sys, venv; assert sys.implementation.name == 'cpython' \
                and '%d.%d' % sys.version_info[:2] == '$v'" 2>/dev/null; then
            echo "$c"
            return
        fi
    done
}

tested=() missing=()
for v in "$@"; do
    py=$(find_python "$v")
    if [[ -z $py ]]; then
        missing+=("$v")
        continue
    fi
    echo "== CPython $v ($py): the installed wheel, tests not marked tf or slow"
    "$here/test_installed.sh" "$py" "build/venv-py$v" "$requirements" -m "not tf and not slow"
    tested+=("$("$py" -c 'import platform; print(platform.python_version())')")
done
echo "test_pythons: wheel tested on CPython ${tested[*]:-(none)}; not found here: ${missing[*]:-(none)}"
