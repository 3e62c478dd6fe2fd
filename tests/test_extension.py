"""The extension, built and validated with Blender's own tool, installed into a
temporary user resource folder and enabled in real Blender: every version users run
(harness/blender_versions.txt)."""

import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

from harness import extension as addon_build
from harness.blender import BLENDERS, MAIN, RESULT_MARKER, run_in_blender

REPO = Path(__file__).resolve().parent.parent


def test_zip_holds_the_addon_and_the_motion_core_only(extension_zip):
    names = zipfile.ZipFile(extension_zip).namelist()
    assert {"blender_manifest.toml", "__init__.py", "retarget/__init__.py", "retarget/humanml3d.py"} <= set(names)
    assert not [n for n in names if n.startswith(("server/", "tests/")) or n.endswith(("build.py", ".pyc"))]


INSTALL = f"""
import json, os, sys
import bpy
zip_path, user_dir = sys.argv[1], sys.argv[2]
result = {{"version": bpy.app.version_string}}
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
module = "bl_ext.user_default.motiongpt"
result["enabled"] = module in bpy.context.preferences.addons
prefs = bpy.context.preferences.addons[module].preferences
result["server_url"] = prefs.server_url
result["timeout"] = prefs.request_timeout
import importlib
skeleton = importlib.import_module(module + ".retarget.skeleton")
result["joint_count"] = len(skeleton.JOINT_NAMES)
result["installed_under_user_dir"] = os.path.realpath(skeleton.__file__).startswith(os.path.realpath(user_dir))
bpy.ops.preferences.addon_disable(module=module)
result["disabled"] = module not in bpy.context.preferences.addons
print("{RESULT_MARKER}" + json.dumps(result))
"""


def test_the_main_environment_has_the_listed_blender():
    """pyproject.toml pins the main environment's bpy; the version list names the same wheel."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert MAIN.requirement in declared["dev"] and MAIN.requirement in declared["blender"]
    assert sorted(b.version for b in BLENDERS) == ["4.2", "4.5", "5.0", "5.3"]


@pytest.mark.parametrize("blender", BLENDERS, ids=lambda b: b.version)
def test_each_blenders_own_tool_validates_the_zip(blender, extension_zip):
    """The zip was built by the main environment's tool; every Blender's own validator accepts it."""
    blender.require()
    process = subprocess.run([blender.python, str(blender.extension_tool()), "validate", str(extension_zip)],
                             capture_output=True, text=True)
    assert process.returncode == 0, process.stdout + process.stderr


@pytest.mark.parametrize("blender", BLENDERS, ids=lambda b: b.version)
def test_installs_and_enables_in_blender(blender, extension_zip, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    result = run_in_blender(INSTALL, str(extension_zip), str(user), env={"BLENDER_USER_RESOURCES": str(user)},
                            blender=blender)
    assert result.pop("version").startswith(blender.version + ".")
    assert result == {
        "enabled": True,
        "server_url": "http://127.0.0.1:8765",
        "timeout": 30.0,
        "joint_count": 22,
        "installed_under_user_dir": True,
        "disabled": True,
    }


@pytest.mark.parametrize(
    "broken,expected",
    [
        (('tagline = "Text to animation on your own rig with a local MotionGPT model"', 'tagline = "Text to animation."'), "tagline"),
        (('id = "motiongpt"', 'id = "motion-gpt"'), "id"),
        (('tagline = "Text to animation on your own rig with a local MotionGPT model"', 'tagline = "' + "x" * 65 + '"'), "tagline"),
        (('blender_version_min = "4.2.0"', 'blender_version_min = "four"'), "blender_version_min"),
    ],
)
def test_invalid_manifest_is_refused_by_blenders_validator(broken, expected, tmp_path):
    manifest = (REPO / "blender_manifest.toml").read_text()
    assert broken[0] in manifest
    with pytest.raises(RuntimeError, match=expected):
        addon_build.build_extension(tmp_path, manifest_text=manifest.replace(broken[0], broken[1]))
