"""Build the Blender extension zip with Blender's own extension tool.

The extension is addon/ (its package root) plus a copy of retarget/ inside it, and the
manifest from the repository root; nothing of server/ or tests/. The build and the
validation are done by `blender_ext.py`, the command line tool that ships inside the
bpy wheel, so the zip is exactly what Blender itself would build.

    python -m harness.extension --out dist
"""

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def blender_extension_tool() -> Path:
    """Path of blender_ext.py inside the installed bpy wheel (without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the bpy module is not installed: run `bash run.sh setup` first")
    root = Path(list(spec.submodule_search_locations)[0])
    found = sorted(root.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise RuntimeError(f"Blender's extension tool (blender_ext.py) is not in {root}")
    return found[-1]


def run_extension_tool(*args: str) -> str:
    process = subprocess.run([sys.executable, str(blender_extension_tool()), *args], capture_output=True, text=True)
    if process.returncode != 0:
        raise RuntimeError(f"blender_ext.py {args[0]} failed:\n{process.stdout}{process.stderr}")
    return process.stdout


def stage_extension(stage: Path, manifest_text: str | None = None) -> Path:
    """Lay out the extension's files in `stage` (which must not exist yet)."""
    shutil.copytree(REPO / "addon", stage, ignore=_IGNORE)
    shutil.copytree(REPO / "retarget", stage / "retarget", ignore=_IGNORE)
    manifest = manifest_text if manifest_text is not None else (REPO / "blender_manifest.toml").read_text()
    (stage / "blender_manifest.toml").write_text(manifest)
    return stage


def build_extension(output_dir, manifest_text: str | None = None) -> Path:
    """Stage, build and validate the extension; returns the zip's path."""
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        stage = stage_extension(Path(temporary) / "motiongpt", manifest_text)
        run_extension_tool("validate", str(stage))
        before = set(output_dir.glob("*.zip"))
        run_extension_tool("build", "--source-dir", str(stage), "--output-dir", str(output_dir))
    built = sorted(set(output_dir.glob("*.zip")) - before) or sorted(output_dir.glob("motiongpt-*.zip"))
    if not built:
        raise RuntimeError(f"blender_ext.py build wrote no zip into {output_dir}")
    run_extension_tool("validate", str(built[-1]))
    return built[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "dist"), help="folder for the zip (default: dist/)")
    args = parser.parse_args()
    try:
        print(build_extension(args.out))
    except RuntimeError as error:
        print(f"build: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
