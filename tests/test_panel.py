"""The sidebar panel's draw() in every state it has (before the first status check,
server down, online access off, ready, a job running, a caption shown, the bone-map box
detected / stored / unmappable, no armature), on every Blender users run. Headless
Blender has no UI toolkit: tests/blender/panel_scene.py draws into a stand-in layout
that checks each call against that Blender's real UILayout RNA (functions, keywords,
icons, drawn properties, operators and their properties)."""

from pathlib import Path

import pytest

from harness.blender import BLENDERS, run_in_blender
from harness.rigs import BUILD_CODE, humanoid, to_json
from harness.server import Server

SCENE = (Path(__file__).parent / "blender" / "panel_scene.py").read_text()
JOINTS = 22


@pytest.fixture(scope="module")
def server(small_model_dir):
    running = Server(small_model_dir).wait_ready()
    yield running
    running.stop()


@pytest.fixture(scope="module", params=BLENDERS, ids=lambda b: b.version)
def drawn(request, extension_zip, server, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"panel-{request.param.version}")
    (folder / "user").mkdir()
    rig = folder / "rig.json"
    rig.write_text(to_json(humanoid("mixamo", seed=1)))
    result = run_in_blender(BUILD_CODE + SCENE, str(extension_zip), server.url, str(rig),
                            env={"BLENDER_USER_RESOURCES": str(folder / "user")}, blender=request.param)
    result["_server"] = server
    result["_blender"] = request.param
    return result


def labels(calls) -> list:
    return [c.get("text") for c in calls if c["call"] == "label"]


def operators(calls) -> list:
    return [c["operator"] for c in calls if c["call"] == "operator"]


def test_every_call_the_panel_makes_exists_in_this_blender(drawn):
    assert drawn["version"].startswith(drawn["_blender"].version + ".")
    assert drawn["problems"] == []
    drawn_properties = {(c["data"], c["property"]) for state in drawn["states"].values()
                        for c in state.get("calls", ()) if "property" in c}
    assert {("MotionGPTSettings", name) for name in ("prompt", "seconds", "samples", "seed", "foot_lock", "push_to_nla",
                                                     "steer", "export_format")} <= drawn_properties


def test_sub_panels_are_drawn_with_the_panel(drawn):
    """Panels inside the MotionGPT panel (the shot's prompt blocks) go through the same
    checks, in every state where they show (an armature is active)."""
    states = drawn["states"]
    assert "Shot" in drawn["sub_panels"]
    for name in drawn["sub_panels"]:
        assert {"call": "panel", "text": name} in states["bone_map_detected"]["calls"]
        assert {"call": "panel", "text": name} not in states["no_armature"]["calls"]


def test_every_state_draws_the_main_controls(drawn):
    for name, state in drawn["states"].items():
        if "calls" not in state:
            continue
        buttons = operators(state["calls"])
        assert {"motiongpt.generate", "motiongpt.inbetween", "motiongpt.continue_motion", "motiongpt.caption",
                "motiongpt.export"} <= set(buttons), name


def test_server_down_says_unreachable_and_offers_start(drawn):
    state = drawn["states"]["server_down"]
    assert state["status"]["thread"] and state["status"]["state"] == "unreachable"
    assert "not reachable" in state["status"]["detail"]
    assert "Server: unreachable" in labels(state["calls"])
    assert "motiongpt.server_start" in operators(state["calls"])
    assert drawn["states"]["before_any_check"]["status"]["state"] == "unknown"


def test_online_access_off_asks_nothing_and_the_operators_refuse_alike(drawn):
    """The panel's status uses the operators' client: with Blender's Allow Online Access
    off, an address beyond loopback is neither asked for its status nor sent a job."""
    offline = drawn["states"]["offline"]
    assert offline["online_access"] is False
    assert offline["status"]["thread"] is False and offline["status"]["state"] == "offline"
    assert "online access is off" in offline["status"]["detail"]
    assert "online access is off" in offline["generate"]
    assert "Server: not asked (online access is off)" in labels(offline["calls"])
    assert "motiongpt.server_start" not in operators(offline["calls"])
    online = drawn["states"]["online"]
    assert online["online_access"] is True
    assert online["status"]["thread"] and online["status"]["state"] == "unreachable"


def test_ready_shows_the_model(drawn):
    state = drawn["states"]["ready"]
    assert state["status"] == {"thread": True, "state": "ready", "detail": drawn["_server"].health["model"]}
    assert f"Server: ready ({drawn['_server'].health['model']})" in labels(state["calls"])
    assert not {"motiongpt.server_start", "motiongpt.server_stop"} & set(operators(state["calls"]))


def test_a_running_job_shows_its_progress_and_cancel(drawn):
    calls = drawn["states"]["job_running"]["calls"]
    assert [(c["factor"], c["text"]) for c in calls if c["call"] == "progress"] == [(0.4, "Generate: 40%")]
    assert "motiongpt.cancel" in operators(calls)
    assert "motiongpt.cancel" not in operators(drawn["states"]["ready"]["calls"])


def test_a_caption_is_shown_once_written(drawn):
    shown = [c for c in drawn["states"]["caption_shown"]["calls"] if c.get("icon") == "INFO"]
    assert [c["text"] for c in shown] == ["a person waves with both hands"]
    assert not [c for c in drawn["states"]["ready"]["calls"] if c.get("icon") == "INFO"]


def test_the_bone_map_box(drawn):
    states = drawn["states"]
    detected = states["bone_map_detected"]["calls"]
    assert "Bone map of Mixamo (detected)" in labels(detected)
    buttons = [c for c in detected if c.get("operator") == "motiongpt.map_bone"]
    assert len(buttons) == JOINTS
    assert {c["set"]["joint"]: c["text"] for c in buttons} == states["bone_map_detected"]["map"]
    stored = states["bone_map_stored"]
    assert stored["stored"] and "Bone map of Mixamo (stored)" in labels(stored["calls"])
    assert "motiongpt.bone_map_detect" in operators(stored["calls"])
    unmappable = [c for c in states["bone_map_unmappable"]["calls"] if c.get("icon") == "ERROR" and c["call"] == "label"]
    assert len(unmappable) == 1 and "no bone found" in unmappable[0]["text"]
    assert not [c for c in states["no_armature"]["calls"] if c.get("operator") == "motiongpt.map_bone"]
    assert not [t for t in labels(states["no_armature"]["calls"]) if t and t.startswith("Bone map")]

