"""The preferences' Models box in real Blender (4.2, 5.0 and 5.3): the list
from `motiongpt models --json`, the licence, a download from a stand-in hub on
127.0.0.1 cancelled and continued, choosing a model, and the server the extension
started restarting with it. The box's drawing is checked against Blender's own
UILayout (tests/blender/panel_scene.py's stand-in layout)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.blender import BY_VERSION, MAIN, read_result
from harness.hub import StandInHub, release_repositories
from harness.models import small_model
from harness.server import free_port
from server.model.store import save_model_dir

pytestmark = [pytest.mark.blender, pytest.mark.server, pytest.mark.slow]

HERE = Path(__file__).parent / "blender"
INSTALL_STEP = "bpy.ops.extensions.package_install_files"


@pytest.fixture(scope="module")
def hub_files(tmp_path_factory):
    return release_repositories(tmp_path_factory.mktemp("release"))


# The oldest Blender the manifest allows, the main environment's, the newest.
@pytest.fixture(scope="module", params=[BY_VERSION["4.2"], MAIN, BY_VERSION["5.3"]], ids=lambda b: b.version)
def result(request, extension_zip, hub_files, tmp_path_factory):
    blender = request.param.require()
    folder = tmp_path_factory.mktemp(f"extension-models-{blender.version}")
    home = folder / "home"
    # A second installed model to switch between (the small test model, "test-small").
    save_model_dir(small_model(folder / "small"), home / "models" / "small-test")
    layout = (HERE / "panel_scene.py").read_text()
    assert INSTALL_STEP in layout
    script = layout.split(INSTALL_STEP)[0] + (HERE / "models_scene.py").read_text()
    (folder / "user").mkdir()
    with StandInHub(hub_files) as hub:
        hub.throttle["motiongpt_s3_h3d.tar"] = 4_000_000  # the first GET: slow enough to cancel
        url = f"http://127.0.0.1:{free_port()}"
        # Blender runs in its version's environment; the server program is the project's.
        process = subprocess.run(
            [blender.python, "-c", script, str(extension_zip), url, "-", sys.executable],
            capture_output=True, text=True, timeout=1200,
            env=dict(os.environ, BLENDER_USER_RESOURCES=str(folder / "user"), MOTIONGPT_HOME=str(home),
                     HF_ENDPOINT=hub.endpoint, HF_HOME=str(folder / "hf-home")))
        outcome = read_result(process)
        outcome["_ranges"] = hub.ranges("motiongpt_s3_h3d.tar")
    return outcome


def operators(calls) -> dict:
    return {call["operator"]: call.get("set", {}) for call in calls if call["call"] == "operator"}


def test_the_box_draws_with_this_blenders_layout(result):
    assert result["problems"] == []


def test_models_are_listed_with_a_download_button(result):
    states = result["states"]
    assert any("Refresh to list" in call.get("text", "") for call in states["before_refresh"]["calls"])
    refreshed = states["refreshed"]
    assert refreshed["error"] is None
    assert [m["name"] for m in refreshed["catalog"]["models"]["installed"]] == ["motiongpt-default", "small-test"]
    buttons = operators(refreshed["calls"])
    assert buttons["motiongpt.model_download"] == {"name": "motiongpt-release"}
    assert any(call.get("text") == "Download MotionGPT release" for call in refreshed["calls"])


def test_the_licence_comes_first_and_scripts_must_accept_it(result):
    states = result["states"]
    assert "NON-COMMERCIAL SCIENTIFIC" in states["licence"] and "AMASS" in states["licence"]
    assert "accept_licence=True" in states["not_accepted"]
    assert {"title", "confirm_text"} <= set(states["dialog"]["parameters"])
    drawn = [call["text"] for call in states["dialog"]["calls"] if call["call"] == "label"]
    assert drawn == states["licence"].splitlines()
    # Blender's Allow Online Access off: the extension downloads nothing.
    assert "Allow Online Access is off" in states["offline"]


def test_a_cancelled_download_stops_and_the_next_continues(result):
    cancelled = result["states"]["cancelled"]
    assert 0.0 < cancelled["progress"] < 1.0
    assert cancelled["done"] and cancelled["cancelled"] and cancelled["error"] is None
    assert cancelled["kept_bytes"] > 0
    # While it ran, the box showed its progress and a cancel button, and no second download.
    bar = next(call for call in cancelled["calls"] if call["call"] == "progress")
    assert bar["factor"] == pytest.approx(cancelled["progress"], abs=0.2)
    assert "motiongpt.model_download_cancel" in operators(cancelled["calls"])
    assert cancelled["download_poll"] is False
    ranges = result["_ranges"]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and int(ranges[1][6:-1]) > 0


def test_the_downloaded_model_is_listed_and_served_when_chosen(result):
    states = result["states"]
    downloaded = states["downloaded"]
    assert downloaded["error"] is None
    assert "motiongpt-release" in [m["name"] for m in downloaded["catalog"]["models"]["installed"]]
    assert downloaded["catalog"]["models"]["downloadable"] == []
    chosen = states["chosen"]
    assert chosen["error"] is None and chosen["server_model"] == "small-test"
    assert chosen["command"][-2:] == ["--model", "small-test"]
    assert states["started"]["error"] is None and states["started"]["model"] == "test-small"
    switched = states["switched"]
    assert switched["error"] is None and switched["server_model"] == "motiongpt-release"
    assert switched["model"].startswith("MotionGPT release") and switched["pid"] != states["started"]["pid"]
    assert states["stopped"] is None
