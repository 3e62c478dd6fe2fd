"""The main job (`bash run.sh demo`): the whole product, headless.

Starts the model server with the embedded default model on a free loopback port,
builds the Blender extension with Blender's own tool and installs it into a fresh
user folder, then, in headless Blender (demo/blender_scene.py): a Rigify human rig and
a Mixamo-named rig each get a motion generated from a prompt, a gap in the Mixamo rig's
action is filled by In-between, both actions are captioned, a third rig plays a
directed shot (three prompt blocks, the first a walk along a curve), and the results
are written to the output folder: scene.blend, BVH files, and Workbench filmstrips.

    .venv/bin/python demo/scene.py --out out/demo
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness.extension import build_extension
from harness.server import Server

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/demo", help="output folder")
    parser.add_argument("--model", help="a model directory to serve instead of the embedded default")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    extension = build_extension(out / "extension")
    server = Server(args.model, log_path=out / "server.log")
    try:
        server.wait_ready(timeout=180)
    except AssertionError as error:
        server.stop()
        raise SystemExit(f"demo: the server did not start: {error}") from None
    url = server.url
    print(f"server: {url}, model {server.health.get('model')!r}")
    try:
        user = out / "blender-user"  # Blender reads this before it starts: a fresh user folder
        user.mkdir()
        started = time.monotonic()
        process = subprocess.run([sys.executable, str(REPO / "demo" / "blender_scene.py"), str(extension), url, str(out)],
                                 capture_output=True, text=True, env=dict(os.environ, BLENDER_USER_RESOURCES=str(user)))
        lines = [line for line in process.stdout.splitlines() if line.startswith("DEMO-RESULT:")]
        if process.returncode != 0 or not lines:
            print(process.stdout[-3000:], process.stderr[-3000:], sep="\n", file=sys.stderr)
            print(f"demo: the Blender part failed (exit {process.returncode})", file=sys.stderr)
            return 1
        result = json.loads(lines[-1][len("DEMO-RESULT:"):])
        seconds = time.monotonic() - started
    finally:
        server.stop()

    shot, result = result["shot"], result["rigs"]
    for rig, done in result.items():
        print(f"{rig}: generated {done['action']!r} from {done['prompt']!r}")
        if "inbetween" in done:
            print(f"{rig}: in-between {done['inbetween']}")
        print(f"{rig}: caption of its action: {done['caption']!r}")
    print(f"Director: a shot of {len(shot['blocks'])} prompt blocks built into {shot['action']!r}:")
    for line in shot["blocks"]:
        print(f"  {line}")
    for line in shot["joins"]:
        print(f"  join {line}")
    for line in shot["path_error"]:
        print(f"  along the path: {line}")
    print(f"Blender part took {seconds:.1f} s. Written to {out}:")
    for name in ("scene.blend", "rigify_smpl.bvh", "mixamo.bvh", "filmstrip.png", "filmstrip_mixamo.png", "filmstrip_shot.png"):
        print(f"  {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
