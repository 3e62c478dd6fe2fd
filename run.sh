#!/usr/bin/env bash
# The project's two entry points. Both set up ./.venv first (idempotent, quick when
# nothing changed), then:
#   bash run.sh demo   runs the main job (headless Blender scene written to out/demo)
#   bash run.sh test   runs the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

# The first python of version $1 (e.g. 3.13): $PYTHON311 / $PYTHON313 (and $PYTHON for
# 3.11), pythonX.Y on PATH, pyenv's versions, python3. Prints nothing when there is none.
find_python() {
    local want=$1 variable="PYTHON${1/./}" candidate
    local candidates=("${!variable:-}")
    [ "$want" = 3.11 ] && candidates+=("${PYTHON:-}")
    candidates+=("python$want")
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$want".*/bin/python"$want"; do
        candidates+=("$candidate")
    done
    candidates+=(python3)
    for candidate in "${candidates[@]}"; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want'.split('.'))))" 2>/dev/null </dev/null; then
            echo "$candidate"
            return
        fi
    done
}

require_python() {
    local found
    found=$(find_python "$1")
    if [ -z "$found" ]; then
        echo "run.sh: $2 needs Python $1, which is not on this machine: install it (e.g. \`pyenv install $1\`," \
             "or your system's python$1 package) or set PYTHON${1/./}=/path/to/python$1" >&2
        exit 1
    fi
    echo "$found"
}

setup() {
    if [ ! -x .venv/bin/python ]; then
        local python
        python=$(require_python 3.11 "The project (the bpy wheel of its main environment)")
        "$python" -m venv .venv
    fi
    # Reinstall only when the dependency declaration changed.
    local want have
    want=$(cat pyproject.toml run.sh | sha256sum | cut -c1-16)
    have=$(cat .venv/.setup-stamp 2>/dev/null || true)
    if [ "$want" != "$have" ]; then
        local extra=()
        # This machine kind keeps the CPU torch wheel on disk; prefer it over the registry.
        [ -d /opt/wheels ] && extra+=(--find-links /opt/wheels)
        .venv/bin/python -m pip install --quiet --disable-pip-version-check "${extra[@]}" -e ".[dev]"
        echo "$want" > .venv/.setup-stamp
    fi
    # Every other Blender the tests run the extension on, each as a module in its own
    # environment inside .venv (harness/blender_versions.txt; the main one is .venv itself).
    # The .ready stamp holds the installed wheel, so a new pin reinstalls.
    local version requirement python_version environment python
    while read -r version requirement python_version environment; do
        [ "$environment" = .venv ] && continue
        [ "$(cat "$environment/.ready" 2>/dev/null || true)" = "$requirement" ] && continue
        if [ -x "$environment/bin/python" ] &&
            [ "bpy==$("$environment/bin/python" -c 'import importlib.metadata as m; print(m.version("bpy"))' 2>/dev/null </dev/null)" = "$requirement" ]; then
            echo "$requirement" > "$environment/.ready"  # installed before the stamp held the wheel
            continue
        fi
        python=$(require_python "$python_version" "Blender $version ($requirement)")
        echo "run.sh: installing Blender $version ($requirement, about 400 MB) into $environment" >&2
        rm -rf "$environment"
        "$python" -m venv "$environment" </dev/null
        "$environment/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement" </dev/null
        echo "$requirement" > "$environment/.ready"
    done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' harness/blender_versions.txt)
}

case "${1:-}" in
    demo)
        setup
        .venv/bin/python demo/scene.py --out out/demo
        ;;
    test)
        setup
        shift
        set +e
        .venv/bin/python -m pytest "$@"
        status=$?
        set -e
        if [ "$status" -eq 5 ]; then
            echo "run.sh: pytest collected no tests, but this project has tests: failing" >&2
            exit 1
        fi
        exit "$status"
        ;;
    setup)
        setup
        ;;
    *)
        echo "usage: bash run.sh {demo|test|setup}" >&2
        exit 2
        ;;
esac
