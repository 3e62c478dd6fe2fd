"""The ASF/AMC reader: forward kinematics against positions worked out by hand, a real
CMU trial (rigid bones, the rest pose is the sum of direction * length), and errors
that name the file and line."""

from pathlib import Path

import numpy as np
import pytest

from retarget.formats.asf import forward_kinematics, parse_amc, parse_asf, read_amc, read_asf

SOURCE = Path(__file__).resolve().parents[1] / "server" / "data" / "cmu" / "source"

# A root and two bones: "upper" points up (+Y), 2 units long, its frame C is the world's;
# "lower" hangs off its end pointing along +X, 1 unit long, with its frame C turned 90
# degrees about Z, and rotates only about its own X axis.
SMALL_ASF = """\
# a test skeleton
:version 1.10
:name TEST
:units
  mass 1.0
  length 0.5
  angle deg
:documentation
   written by the test
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name upper
     direction 0 1 0
     length 2
     axis 0 0 0 XYZ
    dof rx ry rz
    limits (-180.0 180.0)
           (-180.0 180.0)
           (-180.0 180.0)
  end
  begin
     id 2
     name lower
     direction 1 0 0
     length 1
     axis 0 0 90 XYZ
    dof rx
    limits (-180.0 180.0)
  end
:hierarchy
  begin
    root upper
    upper lower
  end
"""

SMALL_AMC = """\
#!OML:ASF test.asf
:FULLY-SPECIFIED
:DEGREES
1
root 1 2 3 0 0 0
upper 0 0 90
lower 90
2
root 0 0 0 90 0 0
upper 0 0 0
lower 0
3
root 0 0 0 0 0 0
upper 90 0 90
lower 0
"""


def _small():
    skeleton = parse_asf(SMALL_ASF, "test.asf")
    return skeleton, parse_amc(SMALL_AMC, skeleton, "test.amc")


def test_parses_units_root_bones_and_hierarchy():
    skeleton, motion = _small()
    assert skeleton.name == "TEST" and skeleton.length_unit == 0.5 and skeleton.angle_unit == "deg"
    assert skeleton.root_order == ("tx", "ty", "tz", "rx", "ry", "rz")
    assert skeleton.names == ["root", "upper", "lower"]
    assert skeleton.parents == {"upper": "root", "lower": "upper"}
    lower = skeleton.bone("lower")
    assert lower.dofs == ("rx",) and lower.limits == [(-180.0, 180.0)]
    assert np.allclose(lower.axis, [0, 0, np.pi / 2]) and lower.axis_order == "XYZ"
    assert skeleton.metres_per_unit() == pytest.approx(0.0254 / 0.5)
    assert list(motion.frame_numbers) == [1, 2, 3]
    assert np.allclose(motion.values["upper"][0], [0, 0, np.pi / 2])  # degrees -> radians
    assert np.allclose(motion.values["root"][0], [1, 2, 3, 0, 0, 0])  # translations stay


def test_forward_kinematics_matches_hand_computed_positions():
    skeleton, motion = _small()
    positions, rotations = forward_kinematics(skeleton, motion)
    expected = np.array([
        # Frame 1: upper turns 90 degrees about Z, so it points along -X: its end is the
        # root (1, 2, 3) + (-2, 0, 0). lower's rx of 90 degrees is about its own X axis,
        # which C turns onto world Y: C Rx C^-1 = Ry(90), taking +X to -Z; upper's Rz(90)
        # keeps -Z, so lower ends 1 unit along -Z.
        [[1, 2, 3], [-1, 2, 3], [-1, 2, 2]],
        # Frame 2: the root turns 90 degrees about X: upper (+Y) now points along +Z;
        # lower still points along +X.
        [[0, 0, 0], [0, 0, 2], [1, 0, 2]],
        # Frame 3: upper's "rx ry rz" = 90 0 90 applies X first, then Z: M = Rz Rx takes
        # +Y to +Z (Z first would give -X); lower's +X goes to Rz(90) Rx(90) +X = +Y.
        [[0, 0, 0], [0, 0, 2], [0, 1, 2]],
    ], dtype=np.float64)
    assert np.allclose(positions, expected, atol=1e-12)
    assert np.allclose(rotations @ np.swapaxes(rotations, -1, -2), np.eye(3), atol=1e-12)


def test_rest_pose_is_the_sum_of_direction_times_length():
    skeleton, _ = _small()
    rest, _ = forward_kinematics(skeleton)
    assert np.allclose(rest[0], [[0, 0, 0], [0, 2, 0], [1, 2, 0]])


def test_real_cmu_trial_has_rigid_bones_and_its_rest_pose():
    skeleton = read_asf(SOURCE / "02.asf")
    motion = read_amc(SOURCE / "02_01.amc", skeleton)
    assert len(skeleton.bones) == 30 and len(motion.frame_numbers) == 343  # 2.86 s at 120 fps
    positions, _ = forward_kinematics(skeleton, motion)
    assert np.isfinite(positions).all()
    index = {name: k for k, name in enumerate(skeleton.names)}
    parents = [index[skeleton.parents[name]] for name in skeleton.names[1:]]
    lengths = np.linalg.norm(positions[:, 1:] - positions[:, parents], axis=-1)
    expected = np.array([skeleton.bone(name).length for name in skeleton.names[1:]])
    assert np.abs(lengths - expected).max() < 1e-9  # every frame, every bone
    rest, _ = forward_kinematics(skeleton)
    for name in skeleton.names[1:]:
        bone = skeleton.bone(name)
        offset = rest[0, index[name]] - rest[0, index[skeleton.parents[name]]]
        assert np.allclose(offset, bone.direction * bone.length, atol=1e-9)
    # The subject walks forward (+Z in CMU's axes) about 3 m at about 1 m/s, upright.
    root = positions[:, 0] * skeleton.metres_per_unit()
    assert 2.0 < root[-1, 2] - root[0, 2] < 4.0
    head_above_root = (positions[:, index["head"], 1] - positions[:, 0, 1]) * skeleton.metres_per_unit()
    assert (head_above_root > 0.5).all()


@pytest.mark.parametrize("change, message", [
    (("     length 2\n", "     length two\n"), "test.asf:20: length: not a number"),
    (("     axis 0 0 90 XYZ\n", "     axis 0 0 90\n"), "test.asf:32: axis is three angles and an order"),
    (("     axis 0 0 90 XYZ\n", "     axis 0 0 90 XXZ\n"), "test.asf:32: rotation order must use X, Y and Z"),
    (("    dof rx\n", "    dof rx l\n"), "test.asf:33: dof l is not supported"),
    (("  end\n  begin\n     id 2", "  begin\n     id 2"), "test.asf:26: 'begin' inside a bone block"),
    (("    upper lower\n", "    upper lowest\n"), "test.asf:39: hierarchy names an unknown bone: upper -> lowest"),
    (("   order TX TY TZ RX RY RZ\n", "   order TX TY TZ RX RY RQ\n"), "test.asf:11: root order"),
])
def test_malformed_asf_names_the_file_and_line(change, message):
    old, new = change
    assert old in SMALL_ASF
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_asf(SMALL_ASF.replace(old, new, 1), "test.asf")


@pytest.mark.parametrize("change, message", [
    (("upper 0 0 90\n", "upper 0 0\n"), "test.amc:6: bone upper needs 3 numbers, got 2"),
    (("lower 90\n", "lower ninety\n"), "test.amc:7: bone lower: not a number"),
    (("lower 90\n", "elbow 90\n"), "test.amc:7: unknown or unanimated bone 'elbow'"),
    (("lower 90\n2\n", "2\n"), "test.amc:7: frame 1 lacks lower"),
    (("lower 90\n", "lower 90\nlower 90\n"), "test.amc:8: bone lower twice in frame 1"),
    (("1\nroot", "root"), "test.amc:4: bone values before the first frame number"),
])
def test_malformed_amc_names_the_file_and_line(change, message):
    skeleton, _ = _small()
    old, new = change
    assert old in SMALL_AMC
    with pytest.raises(ValueError, match=message):
        parse_amc(SMALL_AMC.replace(old, new, 1), skeleton, "test.amc")


def test_hierarchy_errors_name_their_line():
    unlisted = SMALL_ASF.replace("    upper lower\n", "")
    with pytest.raises(ValueError, match="test.asf:27: bone lower is not in the hierarchy"):
        parse_asf(unlisted, "test.asf")
    cycle = SMALL_ASF.replace("    root upper\n    upper lower\n", "    lower upper\n    upper lower\n")
    with pytest.raises(ValueError, match="test.asf:39: bones not reachable from root"):
        parse_asf(cycle, "test.asf")


def test_an_amc_without_frames_is_an_error():
    skeleton, _ = _small()
    with pytest.raises(ValueError, match="test.amc:2: no frames"):
        parse_amc(":FULLY-SPECIFIED\n:DEGREES\n", skeleton, "test.amc")


def test_read_errors_carry_the_path(tmp_path):
    path = tmp_path / "broken.asf"
    path.write_text(SMALL_ASF.replace("     length 1\n", "     length -1\n"))
    with pytest.raises(ValueError, match=f"{path}:31: a bone length cannot be negative"):
        read_asf(path)
