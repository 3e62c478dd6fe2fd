"""Actions in place: sitting on a chair and getting up, picking things up, pushing and
pulling, everyday gestures, exercises, sport swings and dances. Same conventions as
actions.py; feet are planted by synth.py.

Arm angles, as pose.shoulder composes them: `elev` lifts the arm from the T-pose in the
body's frontal plane (ARMS_DOWN hangs it), then `fwd` swings it about the vertical. So an
arm with fwd = 90 degrees lies in the sagittal plane, where `elev` is its angle above the
forward horizontal (-90 straight down, below -90 behind the body): the plane for
underhand swings.
"""

import numpy as np

from retarget.rotation import quat_rotate
from retarget.skeleton import (
    BONE_LENGTHS,
    JOINT_INDEX,
    PELVIS_GROUP_OFFSETS,
    REST_OFFSETS,
)

from . import (
    actions_move as move,  # (used inside functions: either module may load first)
)
from . import pose
from .actions import (
    ACTIONS,
    ARMS_DOWN,
    LEFT,
    RIGHT,
    SIDE_NAMES,
    TOES_DOWN,
    _arm,
    raise_guard,
    _side,
    draw_size,
    draw_tempo,
    new_segment,
)

LEG = "l", "r"


def _leg(side: int) -> str:
    return "l" if side == LEFT else "r"


def _count(rng, low=1, high=5) -> int:
    return int(rng.integers(low, high + 1))


def _arm_to(a, side, weight, fwd=None, elev=None, elbow=None):
    """Blend one arm's angles towards a pose given in degrees (weight 0..1)."""
    for name, degrees in (("fwd", fwd), ("elev", elev), ("elbow", elbow)):
        if degrees is not None:
            curve = _arm(a, side, name)
            curve[:] += (np.radians(degrees) - curve) * weight


def arm_reach(side: int, target: np.ndarray, iterations: int = 10) -> np.ndarray:
    """(elev, fwd, elbow, raise) radians, (T, 4), putting the wrist at `target` (T, 3)
    given from the shoulder joint in the collar's frame. Damped least-squares steps on
    the arm's forward kinematics, every frame at once; the forearm's raise is the fourth
    freedom (the elbow's bending plane is otherwise fixed by the upper arm's direction)."""
    name = "left" if side == LEFT else "right"
    upper, fore = REST_OFFSETS[JOINT_INDEX[f"{name}_elbow"]], REST_OFFSETS[JOINT_INDEX[f"{name}_wrist"]]

    def wrist(x):
        forearm = pose.elbow(side, x[:, 2], x[:, 3])
        return quat_rotate(pose.shoulder(side, x[:, 0], x[:, 1]), upper + quat_rotate(forearm, fore))

    # Out of reach, aim at the nearest reachable point; start from the straight arm
    # pointing at it (shoulder(side, elev, fwd) turns the T-pose arm to
    # (side cos e cos f, sin e, cos e sin f)), elbow a little bent.
    length = np.linalg.norm(upper) + np.linalg.norm(fore)
    distance = np.linalg.norm(target, axis=-1, keepdims=True)
    target = target * np.minimum(1.0, 0.995 * length / np.maximum(distance, 1e-6))
    direction = target / np.maximum(np.linalg.norm(target, axis=-1, keepdims=True), 1e-6)
    x = np.stack([np.arcsin(np.clip(direction[:, 1], -1, 1)), np.arctan2(direction[:, 2], side * direction[:, 0]),
                  np.full(len(target), 0.2), np.zeros(len(target))], axis=-1)

    def solve(x, steps):
        for _ in range(steps):
            error = wrist(x) - target
            jacobian = np.stack([(wrist(x + d) - wrist(x)) / 1e-6 for d in np.eye(4) * 1e-6], axis=-1)  # (T, 3, 4)
            transposed = np.swapaxes(jacobian, 1, 2)
            step = np.linalg.solve(transposed @ jacobian + 1e-3 * np.eye(4), transposed @ error[..., None])[..., 0]
            x = x - np.clip(step, -0.25, 0.25)  # small steps: no jumping to another branch
            x[:, 2] = np.clip(x[:, 2], 0.0, 2.5)  # elbows bend one way
            x[:, 3] = np.clip(x[:, 3], -1.2, 1.2)
        return x

    # The wrist leaves the elbow a circle of places; frames solved apart may pick far apart
    # ones. Smoothing the solution over time and solving again from there keeps
    # neighbouring frames on one branch.
    x = solve(x, iterations)
    kernel = np.hanning(9)[1:-1] / np.hanning(9)[1:-1].sum()
    for _ in range(2):
        padded = np.pad(np.unwrap(x, axis=0), ((3, 3), (0, 0)), mode="edge")
        smooth = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(4)], axis=-1)
        x = solve(smooth, iterations // 2)
    return x


def _grip(a, side_of_bat: int, grip: np.ndarray, weight: np.ndarray) -> None:
    """Both hands on one handle: each arm solved (arm_reach) to the grip, a point (T, 3) in
    the upper chest's frame (spine3: x left, y up, z forward), the bat-side hand 4 cm
    below the other; blended in by weight."""
    for side in (LEFT, RIGHT):
        name = "left" if side == LEFT else "right"
        shoulder = REST_OFFSETS[JOINT_INDEX[f"{name}_collar"]] + REST_OFFSETS[JOINT_INDEX[f"{name}_shoulder"]]
        hand = grip + np.array([0.0, -0.04 if side == side_of_bat else 0.0, 0.0])
        solved = arm_reach(side, hand - shoulder)
        for column, angle in enumerate(("elev", "fwd", "elbow", "raise")):
            curve = _arm(a, side, angle)
            curve[:] += (solved[:, column] - curve) * weight


# --- chairs and the floor -----------------------------------------------------------------

SEATED = {"hip": 90.0, "knee": 95.0}  # thighs level on the seat, shins near vertical


def _seated_pose(a, seated, lean):
    """seated 0 standing .. 1 on the chair; lean: forward lean of the trunk 0..1 (the body
    tips its weight over the feet while the thighs are off the seat)."""
    for leg in LEG:
        a[f"hip_{leg}"] += np.radians(SEATED["hip"]) * seated
        a[f"knee_{leg}"] += np.radians(SEATED["knee"]) * seated
    a["spine"] += np.radians(35) * lean + np.radians(5) * seated
    a["neck"] -= np.radians(15) * lean
    for side in (LEFT, RIGHT):
        # Hands forward for balance on the way, then resting on the thighs.
        _arm(a, side, "fwd")[:] += np.radians(50) * np.maximum(lean, seated)
        _arm(a, side, "elev")[:] += np.radians(25) * lean
        _arm(a, side, "elbow")[:] += np.radians(30) * seated


def sit_down(rng, seconds):
    """Sitting down on a chair behind: the hips go back and down over planted feet, the
    trunk leans forward to keep the weight over the feet until the seat takes it; the
    chair then carries the pelvis at seat height."""
    lower = rng.uniform(1.2, 1.8)
    segment, t = new_segment("sit_down", {}, max(seconds, 0.3 + lower + 1.2))
    seated = pose.smoothstep((t - 0.3) / lower)
    lean = pose.bump(t, 0.2, 0.3 + lower + 0.3)
    _seated_pose(segment.angles, seated, lean)
    segment.params["seated_from"] = round(0.3 + lower, 2)
    return segment


def stand_up(rng, seconds):
    """Getting up from a chair: lean forward over the feet, push up, stand."""
    rise = rng.uniform(1.2, 1.8)
    segment, t = new_segment("stand_up", {}, max(seconds, 0.8 + rise + 0.6))
    seated = 1 - pose.smoothstep((t - 0.8) / rise)
    lean = pose.bump(t, 0.3, 0.8 + rise * 0.9)
    _seated_pose(segment.angles, seated, lean)
    segment.params["seated_until"] = 0.8
    return segment


def _keyframes(u, times, values) -> np.ndarray:
    """A curve through (time, value) keys, easing in and out of each."""
    out = np.full_like(u, float(values[0]))
    for (t0, v0), (t1, v1) in zip(zip(times, values), zip(times[1:], values[1:])):
        out = np.where(u >= t0, v0 + (v1 - v0) * pose.smoothstep((u - t0) / (t1 - t0)), out)
    return out


# Lying down on the back, as keys over the motion (0 standing, 1 lying): the pelvis (its
# height, how far behind the ankles, its pitch), trunk and head, arms. The feet never move:
# the body squats, sits back onto the floor with the knees up, then rolls back to lie.
_LIE_KEYS = (0.0, 0.3, 0.6, 1.0)
_LIE = {
    "height": (None, 0.58, 0.13, 0.11),  # None: standing, legs straight
    "behind": (-0.025, 0.22, 0.55, 0.6),
    "pitch": (0.0, 0.0, -15.0, -85.0),
    "spine": (0.0, 40.0, 15.0, -3.0),
    "neck": (0.0, -10.0, 5.0, -20.0),  # lying, the head tips back to rest on the floor
    "arms_forward": (0.0, 1.0, 0.0, 0.0),
}


def _floor_pose(segment, t, u) -> None:
    """Angles for progress u along the _LIE keys (0 standing, 0.6 sitting on the floor,
    1 lying), the feet planted where they stand."""
    a = segment.angles
    standing = move.ANKLE_HEIGHT[LEFT] + 0.999 * (move.THIGH[LEFT] + move.SHIN[LEFT]) - PELVIS_GROUP_OFFSETS[1][1]
    heights = (standing,) + _LIE["height"][1:]
    pelvis_height = _keyframes(u, _LIE_KEYS, heights)
    behind = _keyframes(u, _LIE_KEYS, _LIE["behind"])
    pitch = np.radians(_keyframes(u, _LIE_KEYS, _LIE["pitch"]))
    a["pelvis_pitch"] = pitch
    for side, joint in ((LEFT, 1), (RIGHT, 2)):
        _, offset_y, offset_z = PELVIS_GROUP_OFFSETS[joint]
        # The hip joint turns with the pelvis; the legs reach from it to the planted ankle,
        # solved in the pelvis's own frame.
        hip_y = pelvis_height + offset_y * np.cos(pitch) - offset_z * np.sin(pitch)
        hip_z = -behind + offset_y * np.sin(pitch) + offset_z * np.cos(pitch)
        up, ahead = move.ANKLE_HEIGHT[side] - hip_y, -hip_z
        down_in_pelvis = -(up * np.cos(pitch) + ahead * np.sin(pitch))
        ahead_in_pelvis = -up * np.sin(pitch) + ahead * np.cos(pitch)
        hip, knee = move.leg_ik(side, ahead_in_pelvis, down_in_pelvis)
        a[f"hip_{_leg(side)}"] = hip
        a[f"knee_{_leg(side)}"] = knee
    segment.support[:] = LEFT
    a["spine"] += np.radians(_keyframes(u, _LIE_KEYS, _LIE["spine"]))
    a["neck"] += np.radians(_keyframes(u, _LIE_KEYS, _LIE["neck"]))
    reach = _keyframes(u, _LIE_KEYS, _LIE["arms_forward"])
    for side in (LEFT, RIGHT):
        _arm_to(a, side, reach, fwd=70, elev=-20, elbow=20)  # forward for balance while squatting


def _lie(rng, down: bool, fall: bool = False):
    """Down (or, reversed, up) through the _LIE keys; a fall goes down in about 1.5 s,
    the arms flung up and forward, the back rounding as it lands."""
    motion = rng.uniform(1.4, 1.7) if fall else rng.uniform(3.0, 4.0)
    segment, t = new_segment("fall_down" if fall else "lie_down" if down else "get_up", {},
                             0.3 + motion + (1.2 if fall else 0.8))
    u = np.clip((t - 0.3) / motion, 0, 1) if down else 1 - np.clip((t - 0.5) / motion, 0, 1)
    _floor_pose(segment, t, u)
    if fall:
        a = segment.angles
        flail = pose.bump(t, 0.3, 0.3 + motion + 0.4)
        for side in (LEFT, RIGHT):
            _arm_to(a, side, flail, fwd=60, elev=40, elbow=30)
        a["spine"] += np.radians(20) * pose.bump(t, 0.3 + 0.5 * motion, 0.3 + motion + 0.5)
        a["neck"] += np.radians(25) * pose.bump(t, 0.3 + 0.5 * motion, 0.3 + motion + 0.6)  # chin tucked
    return segment


def sit_on_floor(rng, seconds):
    """Sitting down on the floor (knees up, feet planted), a moment seated, and back up."""
    down = rng.uniform(2.0, 2.6)
    rest = rng.uniform(0.8, 1.5)
    segment, t = new_segment("sit_on_floor", {}, 0.3 + 2 * down + rest + 0.3)
    sitting = 0.6  # the _LIE keys' seated pose
    u = sitting * (pose.smoothstep((t - 0.3) / down) - pose.smoothstep((t - 0.3 - down - rest) / down))
    _floor_pose(segment, t, u)
    segment.params["seated"] = [round(0.3 + down, 2), round(0.3 + down + rest, 2)]
    return segment


def lie_down(rng, seconds):
    """Lying down on the back (knees up, feet planted): squat, sit back onto the floor, roll back."""
    return _lie(rng, down=True)


def fall_down(rng, seconds):
    """Losing balance backwards: the knees give, the body drops onto the seat and rolls
    onto the back, arms flung forward; it stays down."""
    return _lie(rng, down=True, fall=True)


def get_up(rng, seconds):
    """Getting up from lying on the back: sit up, then rise over the feet to standing."""
    return _lie(rng, down=False)


def kneel(rng, seconds):
    """Going down on one knee and back up: the other foot steps forward, the body lowers
    until the kneeling knee touches the floor behind, its toes planted and the heel up,
    then rises and steps back. Feet are placed and the legs solved to reach them."""
    side = _side(rng)  # the knee that goes down
    front = -side
    step = rng.uniform(0.5, 0.6)  # how far forward the front ankle goes
    down_time, hold = rng.uniform(1.6, 2.0), rng.uniform(0.8, 1.4)
    segment, t = new_segment("kneel", {"knee": SIDE_NAMES[side]}, 0.3 + 2 * down_time + hold + 0.3)
    a = segment.angles
    u = pose.smoothstep((t - 0.3) / down_time) - pose.smoothstep((t - 0.3 - down_time - hold) / down_time)
    # The kneeling pose: toes where they stood, the foot pitched 70 degrees (heel up), the
    # knee 2 cm off the floor a shin's length ahead, the thigh upright over it.
    foot = BONE_LENGTHS[JOINT_INDEX["left_foot" if side == LEFT else "right_foot"]]
    toe_ahead = foot * np.cos(TOES_DOWN)  # from the standing ankle
    heel_up = np.radians(70)
    knelt_ankle = np.array([toe_ahead - foot * np.cos(heel_up), foot * np.sin(heel_up)])  # (ahead, up)
    knee_up = 0.02
    knelt_knee_ahead = knelt_ankle[0] + np.sqrt(move.SHIN[side] ** 2 - (knelt_ankle[1] - knee_up) ** 2)
    _, hip_down, hip_back = PELVIS_GROUP_OFFSETS[1 if side == LEFT else 2]
    knelt_pelvis = (knelt_knee_ahead - hip_back, knee_up + move.THIGH[side] - hip_down)  # (ahead, height)
    standing_height = move.ANKLE_HEIGHT[LEFT] + 0.999 * (move.THIGH[LEFT] + move.SHIN[LEFT]) - hip_down
    # Pelvis: over the feet, then half way along the step (low enough for both legs to
    # reach), then down over the kneeling knee.
    keys = (0.0, 0.35, 1.0)
    pelvis_ahead = _keyframes(u, keys, (-hip_back, step / 2 - hip_back, knelt_pelvis[0]))
    pelvis_height = _keyframes(u, keys, (standing_height, standing_height - 0.12, knelt_pelvis[1]))
    pitch = np.radians(_keyframes(u, keys, (0.0, 25.0, 70.0)))  # the back foot's pitch beyond flat
    ankle = {
        front: (step * pose.smoothstep(u / 0.35), move.ANKLE_HEIGHT[front] + 0.08 * pose.bump(u, 0.0, 0.35)),
        side: (toe_ahead - foot * np.cos(TOES_DOWN + pitch * pose.smoothstep((u - 0.3) / 0.7)),
               foot * np.sin(TOES_DOWN + pitch * pose.smoothstep((u - 0.3) / 0.7))),
    }
    for leg_side, joint in ((LEFT, 1), (RIGHT, 2)):
        hip_ahead = pelvis_ahead + PELVIS_GROUP_OFFSETS[joint][2]
        hip_height = pelvis_height + PELVIS_GROUP_OFFSETS[joint][1]
        ahead, up = ankle[leg_side]
        hip, knee = move.leg_ik(leg_side, ahead - hip_ahead, hip_height - up)
        a[f"hip_{_leg(leg_side)}"] = hip
        a[f"knee_{_leg(leg_side)}"] = knee
    a[f"toe_{_leg(side)}"] = pitch * pose.smoothstep((u - 0.3) / 0.7)  # heel up, toes on the floor
    segment.support[:] = side  # its toes never move
    a["spine"] += np.radians(8) * u
    for arm in (LEFT, RIGHT):
        _arm(a, arm, "fwd")[:] += np.radians(25) * u
    _arm(a, front, "elbow")[:] += np.radians(40) * u  # the hand resting on the front knee
    return segment


def pick_up(rng, seconds):
    """Squatting and bending to pick something up from the floor in front, then standing
    with it held in front."""
    hand = str(rng.choice(["left", "right", "both"]))
    segment, t = new_segment("pick_up", {"hand": hand}, max(seconds, 3.5))
    a = segment.angles
    down = pose.bump(t, 0.3, 2.5)
    holding = pose.smoothstep((t - 1.4) / 0.6) * pose.envelope(t, t[-1], 0.4)
    # Knees bent, pelvis tipped forward over the thighs, back bent: the trunk pitches 75 degrees.
    a["pelvis_pitch"] += np.radians(30) * down
    for leg in LEG:
        a[f"hip_{leg}"] += np.radians(115) * down
        a[f"knee_{leg}"] += np.radians(115) * down
    a["spine"] += np.radians(45) * down
    a["neck"] -= np.radians(10) * down
    sides = {"left": [LEFT], "right": [RIGHT], "both": [LEFT, RIGHT]}[hand]
    for side in sides:
        # Hanging straight down to the floor (75 - 90 degrees from the trunk's forward),
        # then bringing the thing up to the belly.
        # (The arm turns into the sagittal plane early, so it does not swing out sideways.)
        _arm_to(a, side, np.minimum(1, 3 * np.maximum(down, holding)), fwd=90)
        _arm_to(a, side, down, elev=-15, elbow=5)
        _arm_to(a, side, holding * (1 - down), elev=-40, elbow=80)
    return segment


# --- pushing and pulling --------------------------------------------------------------------

def push(rng, seconds):
    """Pushing something heavy: hands at the chest, arms extend forward, the body leans in."""
    count = _count(rng, 1, 3)
    segment, t = new_segment("push", {"count": count}, 0.6 + 1.4 * count + 0.4)
    a = segment.angles
    ready = pose.envelope(t, t[-1], 0.5)
    out = sum(pose.bump(t, 0.6 + 1.4 * k, 0.6 + 1.4 * k + 1.2) for k in range(count))
    for side in (LEFT, RIGHT):
        # Hands at the chest, then arms straight out in front.
        _arm_to(a, side, ready, fwd=50, elev=-10, elbow=100)
        _arm_to(a, side, out, fwd=90, elbow=8)
    a["spine"] += np.radians(10) * ready + np.radians(15) * out
    for leg in LEG:
        a[f"knee_{leg}"] += np.radians(15) * ready
        a[f"hip_{leg}"] += np.radians(8) * ready
    return segment


def pull(rng, seconds):
    """Pulling a rope or a door: arms reach forward, then draw back to the body as the trunk
    leans back."""
    count = _count(rng, 1, 3)
    segment, t = new_segment("pull", {"count": count}, 0.6 + 1.4 * count + 0.4)
    a = segment.angles
    ready = pose.envelope(t, t[-1], 0.5)
    drawn = sum(pose.bump(t, 0.6 + 1.4 * k, 0.6 + 1.4 * k + 1.2) for k in range(count))
    for side in (LEFT, RIGHT):
        _arm(a, side, "fwd")[:] += np.radians(85) * ready - np.radians(15) * drawn
        _arm(a, side, "elev")[:] += (np.radians(-15) - ARMS_DOWN) * ready
        _arm(a, side, "elbow")[:] += np.radians(5) * ready + np.radians(110) * drawn
    a["spine"] += np.radians(10) * ready - np.radians(22) * drawn
    for leg in LEG:
        a[f"knee_{leg}"] += np.radians(20) * ready
        a[f"hip_{leg}"] += np.radians(10) * ready
    return segment


# --- gestures -------------------------------------------------------------------------------

def drink(rng, seconds):
    """Bringing a cup to the mouth with one hand, head tipping back to drink."""
    side = _side(rng)
    segment, t = new_segment("drink", {"hand": SIDE_NAMES[side]}, max(seconds, 3.0))
    a = segment.angles
    up = pose.envelope(t, t[-1], 0.7)
    sip = pose.bump(t, 0.8, t[-1] - 0.6)
    _arm_to(a, side, up, fwd=70, elev=20, elbow=130)  # the hand at the mouth
    _arm(a, side, "elev")[:] += np.radians(15) * sip
    a["neck"] -= np.radians(20) * sip
    return segment


def phone_call(rng, seconds):
    """Holding a phone to the ear."""
    side = _side(rng)
    segment, t = new_segment("phone_call", {"hand": SIDE_NAMES[side]}, max(seconds, 3.0))
    a = segment.angles
    up = pose.envelope(t, t[-1], 0.7)
    _arm_to(a, side, up, fwd=60, elev=85, elbow=140)  # the hand at the ear
    a["neck"] += np.radians(8) * up
    a["spine_bend"] += side * np.radians(4) * up
    return segment


def nod(rng, seconds):
    count = _count(rng, 2, 5)
    rate, speed = draw_tempo(rng, 1.5, 2.2)
    amplitude, size = draw_size(rng)
    segment, t = new_segment("nod", {"count": count, "speed": speed, "size": size}, 0.4 + count / rate + 0.4)
    nods = 0.5 - 0.5 * np.cos(2 * np.pi * rate * np.clip(t - 0.4, 0, count / rate))
    segment.angles["neck"] += np.radians(28) * amplitude * nods
    return segment


def shake_head(rng, seconds):
    count = _count(rng, 2, 5)
    rate, speed = draw_tempo(rng, 1.5, 2.5)
    segment, t = new_segment("shake_head", {"count": count, "speed": speed}, 0.4 + count / rate + 0.4)
    shakes = np.sin(2 * np.pi * rate * np.clip(t - 0.4, 0, count / rate))
    segment.angles["neck_yaw"] += np.radians(35) * shakes
    return segment


def hands_on_hips(rng, seconds):
    """Standing with the hands on the hips, elbows out."""
    segment, t = new_segment("hands_on_hips", {}, max(seconds, 3.0))
    a = segment.angles
    placed = pose.envelope(t, t[-1], 0.6)
    for side in (LEFT, RIGHT):
        _arm_to(a, side, placed, fwd=-8, elev=-47, elbow=0)
        _arm(a, side, "raise")[:] += np.radians(-88) * placed  # the forearm folds in to the hip
    a["spine"] -= np.radians(3) * placed
    return segment


def salute(rng, seconds):
    """A military salute: the hand's edge to the brow, held, then down."""
    side = _side(rng)
    segment, t = new_segment("salute", {"hand": SIDE_NAMES[side]}, max(seconds, 2.5))
    a = segment.angles
    up = pose.envelope(t, t[-1], 0.45)
    _arm_to(a, side, up, fwd=30, elev=82, elbow=130)
    a["spine"] -= np.radians(3) * up  # standing to attention
    a["neck"] -= np.radians(4) * up
    return segment


def cross_arms(rng, seconds):
    segment, t = new_segment("cross_arms", {}, max(seconds, 3.0))
    a = segment.angles
    folded = pose.envelope(t, t[-1], 0.7)
    # Each hand to the other elbow, forearms level across the chest, the right one below.
    _arm_to(a, LEFT, folded, fwd=110, elev=-30, elbow=60)
    _arm_to(a, RIGHT, folded, fwd=105, elev=-42, elbow=62)
    a["spine"] -= np.radians(4) * folded
    return segment


def balance(rng, seconds):
    """Standing on one leg (the named one), the other knee up, arms out to the sides."""
    side = _side(rng)
    free = _leg(-side)
    segment, t = new_segment("balance", {"side": SIDE_NAMES[side]}, max(seconds, 3.0))
    a = segment.angles
    up = pose.envelope(t, t[-1], 0.6)
    # The knee bends first, so the foot leaves the floor upwards rather than sliding forward on it.
    a[f"hip_{free}"] += np.radians(rng.uniform(40, 70)) * up ** 2
    a[f"knee_{free}"] += np.radians(rng.uniform(60, 90)) * np.sqrt(up)
    wobble = np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    a["spine_bend"] += np.radians(3) * wobble * up
    for arm in (LEFT, RIGHT):
        _arm(a, arm, "elev")[:] += np.radians(65) * up + np.radians(6) * arm * wobble * up
    segment.support[:] = np.where(up > 0.02, side, 0)
    return segment


# --- exercises ------------------------------------------------------------------------------

def arm_circles(rng, seconds):
    count = _count(rng, 2, 5)
    rate, speed = draw_tempo(rng, 0.8, 1.5)
    amplitude, size = draw_size(rng)
    forward = rng.random() < 0.5
    segment, t = new_segment("arm_circles", {"count": count, "how": "forward" if forward else "backward",
                                             "speed": speed, "size": size}, 0.7 + count / rate + 0.6)
    a = segment.angles
    out = pose.envelope(t, t[-1], 0.6)
    angle = 2 * np.pi * rate * np.clip(t - 0.6, 0, count / rate) * (1 if forward else -1)
    radius = np.radians(27 * amplitude) * pose.bump(t, 0.5, 0.7 + count / rate)
    for side in (LEFT, RIGHT):
        _arm(a, side, "elev")[:] += -ARMS_DOWN * out + radius * np.sin(angle)
        _arm(a, side, "fwd")[:] += radius * np.cos(angle) - radius
    return segment


def toe_touch(rng, seconds):
    """Bending at the hips, legs straight, to touch the toes, and back up."""
    count = _count(rng, 1, 3)
    segment, t = new_segment("toe_touch", {"count": count}, 0.4 + 2.4 * count + 0.3)
    a = segment.angles
    down = sum(pose.bump(t, 0.3 + 2.4 * k, 0.3 + 2.4 * k + 2.2) for k in range(count))
    # The pelvis tips forward over straight legs, the hips flexing 10 degrees more than it
    # tips so the legs lean back a little and the seat goes back over the heels (balance).
    a["pelvis_pitch"] += np.radians(85) * down
    for leg in LEG:
        a[f"hip_{leg}"] += np.radians(95) * down
    a["spine"] += np.radians(50) * down
    a["neck"] += np.radians(10) * down
    for side in (LEFT, RIGHT):
        # Down from the shoulders towards the toes: the trunk is pitched 135 degrees, so 45
        # above its forward would hang straight down; 25 reaches back to the feet.
        _arm_to(a, side, np.minimum(1, 3 * down), fwd=90)
        _arm_to(a, side, down, elev=25, elbow=0)
    return segment


def torso_twist(rng, seconds):
    """Trunk twists left and right, elbows up and out, hips still."""
    count = _count(rng, 2, 4)
    rate, speed = draw_tempo(rng, 0.6, 0.9)
    segment, t = new_segment("torso_twist", {"count": count, "speed": speed}, 0.8 + count / rate + 0.6)
    a = segment.angles
    ready = pose.envelope(t, t[-1], 0.6)
    twist = np.sin(2 * np.pi * rate * np.clip(t - 0.7, 0, count / rate))
    a["spine_twist"] += np.radians(45) * twist
    a["neck_yaw"] += np.radians(15) * twist
    for side in (LEFT, RIGHT):
        _arm(a, side, "elev")[:] += -ARMS_DOWN * ready
        _arm(a, side, "fwd")[:] += np.radians(40) * ready
        _arm(a, side, "elbow")[:] += np.radians(120) * ready
    return segment


# --- sport -------------------------------------------------------------------------------------

def throw_underhand(rng, seconds):
    """An underhand toss: the arm swings back low, then forward and up to release at hip
    height in front."""
    side = _side(rng)
    segment, t = new_segment("throw_underhand", {"hand": SIDE_NAMES[side]}, max(seconds, 2.5))
    a = segment.angles
    in_plane = pose.envelope(t, t[-1], 0.3)  # the arm turns into the sagittal plane
    back = pose.bump(t, 0.3, 1.3)
    through = pose.bump(t, 1.0, 1.9)
    # Elevation in the sagittal plane: hanging (-90), back (-140), forward and up (-10).
    _arm(a, side, "fwd")[:] += np.radians(90) * in_plane
    _arm(a, side, "elev")[:] += (np.radians(-90) - ARMS_DOWN) * in_plane - np.radians(50) * back + np.radians(80) * through
    a["spine"] += np.radians(15) * back
    a["spine_twist"] += side * np.radians(15) * back - side * np.radians(10) * through
    for leg in LEG:
        a[f"knee_{leg}"] += np.radians(20) * back
        a[f"hip_{leg}"] += np.radians(12) * back
    return segment


def _swing_timing(t, start, wind, strike, finish):
    """Backswing 0->1 by `wind`, through to -1 at `finish` fastest at `strike`, as a twist."""
    backswing = pose.smoothstep((t - start) / (wind - start))
    through = pose.smoothstep((t - wind) / (finish - wind))
    return backswing - 2 * through


def swing_bat(rng, seconds):
    """A baseball swing, two hands together: load back over the rear shoulder, stride,
    rotate the trunk through, hands sweeping level around the front to the follow-through."""
    side = _side(rng)  # the bat's side: right-handed hitters load over the right shoulder
    segment, t = new_segment("swing_bat", {"hand": SIDE_NAMES[side]}, max(seconds, 2.6))
    a = segment.angles
    stance = pose.envelope(t, t[-1], 0.4)
    swing = _swing_timing(t, 0.3, 1.2, 1.45, 1.7) * pose.envelope(t, t[-1], 0.5)
    # Trunk: turned towards the bat's side while loading, round past the front after.
    a["spine_twist"] += side * np.radians(55) * swing
    a["spine"] += np.radians(12) * stance
    for leg in LEG:
        a[f"knee_{leg}"] += np.radians(20) * stance
        a[f"hip_{leg}"] += np.radians(15) * stance
    # The hands together on the bat (in the chest's frame, turning with it): in front of
    # the chest, up by the bat-side shoulder, level round the front at contact, up by the
    # other shoulder at the finish.
    keys = (0.3, 1.2, 1.45, 1.7)
    grip = np.stack([_keyframes(t, keys, (side * 0.05, side * 0.05, 0.0, -side * 0.05)),
                     _keyframes(t, keys, (0.0, 0.22, -0.2, 0.18)),
                     _keyframes(t, keys, (0.25, 0.15, 0.3, 0.15))], axis=-1)
    _grip(a, side, grip, pose.envelope(t, t[-1], 0.9))  # (slower out of the finish than the stance)
    return segment


def swing_racket(rng, seconds):
    """A tennis forehand with one hand: the arm takes the racket back, the trunk turns,
    the arm swings forward and across, finishing high over the other shoulder."""
    side = _side(rng)
    segment, t = new_segment("swing_racket", {"hand": SIDE_NAMES[side]}, max(seconds, 2.5))
    a = segment.angles
    ready = pose.envelope(t, t[-1], 0.4)
    swing = _swing_timing(t, 0.3, 1.1, 1.35, 1.6) * pose.envelope(t, t[-1], 0.5)
    back, through = np.clip(swing, 0, 1), np.clip(-swing, 0, 1)
    a["spine_twist"] += side * np.radians(35) * swing
    a["spine"] += np.radians(10) * ready
    for leg in LEG:
        a[f"knee_{leg}"] += np.radians(20) * ready
        a[f"hip_{leg}"] += np.radians(12) * ready
    _arm(a, side, "elev")[:] += (np.radians(-20) - ARMS_DOWN) * ready + np.radians(40) * through
    _arm(a, side, "fwd")[:] += np.radians(30) * ready - np.radians(60) * back + np.radians(90) * through
    _arm(a, side, "elbow")[:] += np.radians(20) * ready + np.radians(50) * through
    # The free hand points out in front while the racket is back (balance and aim).
    _arm(a, -side, "fwd")[:] += np.radians(70) * back
    _arm(a, -side, "elev")[:] += (np.radians(-15) - ARMS_DOWN) * back
    return segment


def golf_swing(rng, seconds):
    """Address bent over the ball, arms hanging together; backswing turning the shoulders
    with the hands going up past the rear shoulder, downswing through the ball, finish
    high on the other side."""
    side = _side(rng)  # right-handed golfers swing back to the right
    segment, t = new_segment("golf_swing", {"hand": SIDE_NAMES[side]}, max(seconds, 3.2))
    a = segment.angles
    address = pose.envelope(t, t[-1], 0.5)
    swing = _swing_timing(t, 0.5, 1.6, 1.9, 2.3) * pose.envelope(t, t[-1], 0.6)
    back = np.clip(swing, 0, 1)
    a["pelvis_pitch"] += np.radians(35) * address
    for leg in LEG:
        a[f"hip_{leg}"] += np.radians(43) * address
        a[f"knee_{leg}"] += np.radians(18) * address
    a["spine"] += np.radians(15) * address
    a["spine_twist"] += side * np.radians(70) * swing
    a["neck_yaw"] -= side * np.radians(55) * back  # eyes stay on the ball
    # The hands together on the club (in the chest's frame): hanging to the ball, up past
    # the rear shoulder, down through the ball, up past the other shoulder.
    keys = (0.5, 1.6, 1.95, 2.3)
    grip = np.stack([_keyframes(t, keys, (0.0, side * 0.22, 0.0, -side * 0.22)),
                     _keyframes(t, keys, (-0.3, 0.28, -0.3, 0.28)),
                     _keyframes(t, keys, (0.17, 0.2, 0.17, 0.2))], axis=-1)
    _grip(a, side, grip, pose.envelope(t, t[-1], 0.9))
    return segment


def boxing_combo(rng, seconds):
    """Jab (lead hand), cross (rear hand), hook (lead hand, swung round level), in a boxing
    stance: the named side is the lead hand."""
    lead = _side(rng)
    rounds = _count(rng, 1, 2)
    segment, t = new_segment("boxing_combo", {"hand": SIDE_NAMES[lead], "count": rounds}, 0.7 + 1.6 * rounds + 0.6)
    a = segment.angles
    guard = pose.envelope(t, t[-1], 0.4)
    raise_guard(a, guard)
    for leg in LEG:
        a[f"knee_{leg}"] += np.radians(15) * guard
        a[f"hip_{leg}"] += np.radians(10) * guard
    for k in range(rounds):
        t0 = 0.6 + 1.6 * k
        jab, cross, hook = pose.bump(t, t0, t0 + 0.4), pose.bump(t, t0 + 0.45, t0 + 0.9), pose.bump(t, t0 + 0.95, t0 + 1.5)
        for side, strike in ((lead, jab), (-lead, cross)):
            _arm(a, side, "fwd")[:] += np.radians(30) * strike
            _arm(a, side, "elev")[:] += np.radians(12) * strike
            _arm(a, side, "elbow")[:] -= np.radians(110) * strike
        a["spine_twist"] += lead * np.radians(25) * cross - lead * np.radians(30) * hook - lead * np.radians(10) * jab
        _arm(a, lead, "elev")[:] += np.radians(35) * hook
        _arm(a, lead, "elbow")[:] -= np.radians(20) * hook
        _arm(a, lead, "fwd")[:] += np.radians(35) * hook
    return segment


def jump_rope(rng, seconds):
    """Skipping rope: small quick two-footed hops on the balls of the feet, hands low at
    the sides turning the rope with small wrist circles."""
    count = _count(rng, 3, 8)
    height = rng.uniform(0.04, 0.07)
    flight = 2 * np.sqrt(2 * height / 9.81)
    cycle = flight + rng.uniform(0.22, 0.3)
    segment, t = new_segment("jump_rope", {"count": count}, 0.6 + count * cycle + 0.5)
    a = segment.angles
    on = pose.envelope(t, t[-1], 0.4)
    for k in range(count):
        takeoff = 0.6 + k * cycle
        tau = np.clip(t - takeoff, 0, flight)
        segment.lift += np.where((t >= takeoff) & (t < takeoff + flight), 9.81 / 2 * tau * (flight - tau), 0.0)
        give = pose.bump(t, takeoff + flight - 0.02, takeoff + cycle + 0.02)  # knees soak up each landing
        for leg in LEG:
            a[f"knee_{leg}"] += np.radians(20) * give
            a[f"hip_{leg}"] += np.radians(10) * give
    turning = 2 * np.pi * (t - 0.6) / cycle
    for leg in LEG:
        a[f"toe_{leg}"] += np.radians(15) * on  # on the balls of the feet
        a[f"knee_{leg}"] += np.radians(5) * on
    for side in (LEFT, RIGHT):
        _arm_to(a, side, on, fwd=25, elev=-55, elbow=55)
        _arm(a, side, "fwd")[:] += np.radians(8) * np.sin(turning) * on
        _arm(a, side, "elev")[:] += np.radians(8) * np.cos(turning) * on
    return segment


# --- dances -------------------------------------------------------------------------------------

def dance_groove(rng, seconds):
    """A side-to-side groove: weight rocking from foot to foot on the beat, knees bouncing
    twice a cycle, arms swinging across, head bobbing."""
    beat = rng.uniform(1.6, 2.2)  # beats per second
    segment, t = new_segment("dance_groove", {"speed": "quickly" if beat > 2.0 else "normally"}, max(seconds, 3.0))
    a = segment.angles
    on = pose.envelope(t, t[-1], 0.4)
    rock = np.sin(np.pi * beat * t) * on  # one side per beat
    bounce = (0.5 - 0.5 * np.cos(2 * np.pi * beat * t)) * on
    # The hips sway out over one foot, then the other: the pelvis rolls and both legs lean
    # with it (feet planted), the trunk bending back to upright.
    a["pelvis_roll"] += np.radians(6) * rock
    a["abd_l"] -= np.radians(6) * rock
    a["abd_r"] += np.radians(6) * rock
    a["spine_bend"] -= np.radians(10) * rock
    for leg in LEG:
        a[f"knee_{leg}"] += np.radians(22) * bounce + np.radians(8) * on
        a[f"hip_{leg}"] += np.radians(11) * bounce + np.radians(4) * on
    a["neck"] += np.radians(8) * bounce
    for side in (LEFT, RIGHT):
        _arm(a, side, "fwd")[:] += np.radians(35) * on + np.radians(30) * side * rock
        _arm(a, side, "elev")[:] += np.radians(35) * on + np.radians(20) * bounce
        _arm(a, side, "elbow")[:] += np.radians(70) * on
    return segment


def dance_twist(rng, seconds):
    """The twist: knees bent, hips swivelling one way while the shoulders go the other,
    each foot pivoting on its ball (toes planted, heels swinging) with the hips. The feet
    are placed and the legs solved to reach them (move.leg_ik with the leg's turn and tilt), so
    the balls of the feet stay put."""
    rate, speed = draw_tempo(rng, 1.2, 1.8)
    segment, t = new_segment("dance_twist", {"speed": speed}, max(seconds, 3.0))
    a = segment.angles
    on = pose.envelope(t, t[-1], 0.4)
    swivel = np.sin(2 * np.pi * rate * t) * on
    hips_turn = np.radians(30) * swivel
    feet_turn = 0.6 * hips_turn  # the feet swivel less than the hips
    dip = 0.5 + 0.5 * np.sin(2 * np.pi * 0.3 * t)
    hip_height = 0.995 * (move.THIGH[LEFT] + move.SHIN[LEFT]) - (0.06 + 0.05 * dip) * on  # knees bent, lower now and then
    foot = BONE_LENGTHS[JOINT_INDEX["left_foot"]] * np.cos(TOES_DOWN)  # ankle to toe, horizontally
    a["pelvis_yaw"] = hips_turn
    for side, joint in ((LEFT, 1), (RIGHT, 2)):
        offset_x, _, offset_z = PELVIS_GROUP_OFFSETS[joint]
        # Where the hip joint is (from the pelvis, which stays over the same spot) and where
        # the ankle must be for the toe to stay on its spot, standing, while the foot turns.
        hip_x = offset_x * np.cos(hips_turn) + offset_z * np.sin(hips_turn)
        hip_z = -offset_x * np.sin(hips_turn) + offset_z * np.cos(hips_turn)
        toe_x, toe_z = offset_x, offset_z + foot
        ankle_x, ankle_z = toe_x - foot * np.sin(feet_turn), toe_z - foot * np.cos(feet_turn)
        across, forward = ankle_x - hip_x, ankle_z - hip_z
        # Into the leg's own frame (turned with the foot): sideways tilt, then flexion in its plane.
        leg_across = across * np.cos(feet_turn) - forward * np.sin(feet_turn)
        leg_forward = across * np.sin(feet_turn) + forward * np.cos(feet_turn)
        down = hip_height - move.ANKLE_HEIGHT[side]
        hip, knee = move.leg_ik(side, leg_forward, np.hypot(leg_across, down))
        a[f"hip_{_leg(side)}"] = hip
        a[f"knee_{_leg(side)}"] = knee
        a[f"abd_{_leg(side)}"] = side * np.arctan2(leg_across, down)
        a[f"leg_yaw_{_leg(side)}"] = feet_turn - hips_turn
    segment.support[:] = LEFT
    a["spine_twist"] -= np.radians(55) * swivel  # shoulders against the hips
    a["spine"] += np.radians(10) * on
    for side in (LEFT, RIGHT):
        _arm(a, side, "fwd")[:] += np.radians(40) * on - np.radians(25) * swivel
        _arm(a, side, "elev")[:] += np.radians(45) * on
        _arm(a, side, "elbow")[:] += np.radians(90) * on
    return segment


def salsa(rng, seconds):
    """The salsa basic: forward with one foot and back to centre, back with the other foot
    and back to centre, on counts 1-2-3, 5-6-7, hips swaying. Feet are placed and the legs
    solved to reach them (move.leg_ik), so every planted foot stays put while the weight moves."""
    beat = rng.uniform(0.28, 0.36)  # seconds per count
    cycles = _count(rng, 1, 2)
    lead = _side(rng)
    segment, t = new_segment("salsa", {"count": cycles, "side": SIDE_NAMES[lead]}, 0.4 + 8 * beat * cycles + 0.4)
    a = segment.angles
    stride = 0.28
    # Where each foot is (forward of its start) and where the hips are, count by count.
    local = np.clip((t - 0.4) / beat, 0, 8 * cycles)
    count_in_bar = np.mod(local, 8.0)
    forward_foot = np.interp(count_in_bar, [0, 0.6, 1, 2, 2.6, 3, 8], [0, stride, stride, stride, 0, 0, 0])
    back_foot = np.interp(count_in_bar, [0, 4, 4.6, 5, 6, 6.6, 7, 8], [0, 0, -stride, -stride, -stride, 0, 0, 0])
    hips = np.interp(count_in_bar, [0, 1, 2, 3, 4, 5, 6, 7, 8], [0, 0.6, 0.1, 0, 0, -0.6, -0.1, 0, 0]) * stride
    on = pose.envelope(t, t[-1], 0.3)
    ahead = {lead: forward_foot * on, -lead: back_foot * on}
    # A stepping foot is off the floor only while it travels.
    lifted = {lead: pose.bump(count_in_bar, 0.0, 0.6) + pose.bump(count_in_bar, 2.0, 2.6),
              -lead: pose.bump(count_in_bar, 4.0, 4.6) + pose.bump(count_in_bar, 6.0, 6.6)}
    hip_height = 0.8 - 0.04 * on  # knees soft
    for side in (LEFT, RIGHT):
        hip, knee = move.leg_ik(side, ahead[side] - hips * on, hip_height - 0.06 * on * lifted[side])
        a[f"hip_{_leg(side)}"] = hip
        a[f"knee_{_leg(side)}"] = knee
    # A foot is stepping while lifted and on the frame it lands (that move must not push the
    # body). (bump is a hair above zero past its end: sin(pi) is not exactly 0.)
    moving = {side: lifted[side] > 1e-6 for side in (LEFT, RIGHT)}
    for side in (LEFT, RIGHT):
        moving[side][1:] |= moving[side][:-1]
    stepping = moving[LEFT] | moving[RIGHT]
    segment.support[:] = np.where(moving[LEFT], RIGHT, np.where(moving[RIGHT], LEFT, 0))
    segment.support[~stepping] = lead
    sway = np.sin(np.pi * local) * on
    a["pelvis_roll"] += np.radians(5) * sway
    a["abd_l"] -= np.radians(5) * sway
    a["abd_r"] += np.radians(5) * sway
    a["spine_bend"] -= np.radians(7) * sway
    for side in (LEFT, RIGHT):
        _arm(a, side, "fwd")[:] += np.radians(50) * on
        _arm(a, side, "elev")[:] += np.radians(40) * on
        _arm(a, side, "elbow")[:] += np.radians(80) * on + np.radians(15) * side * sway
    return segment


BODY_ACTIONS = {
    "sit_down": sit_down, "stand_up": stand_up, "sit_on_floor": sit_on_floor, "lie_down": lie_down, "get_up": get_up,
    "fall_down": fall_down, "kneel": kneel, "pick_up": pick_up, "push": push, "pull": pull,
    "drink": drink, "phone_call": phone_call, "nod": nod, "shake_head": shake_head, "cross_arms": cross_arms,
    "hands_on_hips": hands_on_hips, "salute": salute, "balance": balance,
    "arm_circles": arm_circles, "toe_touch": toe_touch, "torso_twist": torso_twist, "jump_rope": jump_rope,
    "throw_underhand": throw_underhand, "swing_bat": swing_bat, "swing_racket": swing_racket, "golf_swing": golf_swing,
    "boxing_combo": boxing_combo, "dance_groove": dance_groove, "dance_twist": dance_twist, "salsa": salsa,
}
ACTIONS.update(BODY_ACTIONS)
