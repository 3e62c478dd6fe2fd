#!/usr/bin/env bash
# The project's two entry points. Both set up ./.venv first (idempotent, quick when
# nothing changed), then:
#   bash run.sh demo   runs the main job (headless Blender scene written to out/demo)
#   bash run.sh test   runs the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

find_python() {
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            echo "$candidate"
            return
        fi
    done
    echo "run.sh: Python 3.11 is required (the bpy wheel exists only for 3.11); set PYTHON=/path/to/python3.11" >&2
    exit 1
}

setup() {
    if [ ! -x .venv/bin/python ]; then
        "$(find_python)" -m venv .venv
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
    # Blender 4.2 LTS as a module, in its own environment inside .venv: the tests run
    # the extension on it as well as on the 5.0 wheel the main environment has.
    if [ ! -f .venv/blender-4.2/.ready ]; then
        rm -rf .venv/blender-4.2
        .venv/bin/python -m venv .venv/blender-4.2
        .venv/blender-4.2/bin/python -m pip install --quiet --disable-pip-version-check "bpy==4.2.0"
        touch .venv/blender-4.2/.ready
    fi
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
