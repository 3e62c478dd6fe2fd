"""What many test files share: the extension built once per session with Blender's
own tool, a small real model, and the markers that sort tests into lanes.

    bash run.sh test                       everything (what CI runs)
    bash run.sh test -m "not slow"         the fast lane: no training runs, no fuzzing or
                                           load against a server, no full demo
    bash run.sh test tests/test_contract.py::test_prompt_refuses_an_unknown_task   one test
"""

import pytest

# Test files that start Blender (the bpy module in a subprocess), a model server, or run
# for minutes; marked here so each file need not repeat it.
BLENDER = {"test_body.py", "test_demo.py", "test_extension.py", "test_formats.py", "test_operators.py",
           "test_panel.py", "test_real_rigs.py", "test_retarget_blender.py"}
SERVER = {"test_demo.py", "test_operators.py", "test_panel.py", "test_server.py", "test_server_fuzz.py",
          "test_server_hardening.py", "test_server_load.py"}
SLOW = {"test_demo.py", "test_eval.py", "test_train.py", "test_server_fuzz.py", "test_server_load.py",
        "test_default_model.py", "test_operators.py"}


def pytest_configure(config):
    config.addinivalue_line("markers", "blender: runs real Blender (the bpy module) in a subprocess")
    config.addinivalue_line("markers", "server: starts a real model server on 127.0.0.1")
    config.addinivalue_line("markers", "slow: takes minutes (training, fuzzing, load, the demo); left out of the fast lane")


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.path.name
        for marker, files in (("blender", BLENDER), ("server", SERVER), ("slow", SLOW)):
            if name in files:
                item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory):
    """The extension zip, built and validated by Blender's extension tool, once."""
    from harness.extension import build_extension

    return build_extension(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """A small MotionGPT with the real architecture and tokenizer and fresh weights."""
    from harness.models import small_model as build

    return build(tmp_path_factory.mktemp("small-model"))


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory):
    """That small model saved as a model directory, for the servers the tests start."""
    from server.model.store import save_model_dir
    from harness.models import small_model as build

    folder = tmp_path_factory.mktemp("small-model-dir")
    return save_model_dir(build(folder), folder / "model")
