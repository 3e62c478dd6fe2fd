"""The actions the synthesizer knows, each a function of a random generator that returns
a Segment: joint angles over time plus what the body does as a whole (turning, leaving
the ground). Feet are not placed here: synth.py plants whichever foot is lowest, so
steps move the body and planted feet do not slide.

Parameters are drawn per clip (speed, amplitude, counts, side, duration) and recorded,
so captions can name them and tests can check them.
"""

from dataclasses import dataclass, field

import numpy as np

from retarget.humanml3d import FPS
from retarget.rotation import quat_identity, quat_mul
from retarget.skeleton import JOINT_COUNT, JOINT_INDEX

from . import pose

# Bumped when an action's motion changes, recorded in corpus.json beside the captions'
# version. 2: arms raised forward rise (before, the wrist stayed at the hip).
MOTION_VERSION = 2

G = 9.81
ARMS_DOWN = np.radians(-72.0)
TOES_DOWN = np.radians(25.0)  # the foot bone's pitch when the sole is flat
LEFT, RIGHT = 1, -1
SIDE_NAMES = {LEFT: "left", RIGHT: "right"}


@dataclass
class Segment:
    action: str
    params: dict
    angles: dict  # name -> (T,) radians; see Body.rotations for the names
    turn: np.ndarray  # (T,) heading change per frame, radians (positive: to the left)
    lift: np.ndarray  # (T,) height of a ballistic flight above standing, metres
    drift: np.ndarray  # (T,) forward speed while airborne, metres per frame
    drift_side: np.ndarray = field(default=None)  # (T,) leftward speed while airborne
    # (T,) what carries the body: +1 left foot, -1 right foot, 0 whichever foot is lowest,
    # +2 / -2 the left / right knee (crawling)
    support: np.ndarray = field(default=None)
    # (T,) height of the floor under the lowest foot, metres (stairs); later segments of a
    # clip start from where this one ends.
    rise: np.ndarray = field(default=None)

    @property
    def frames(self) -> int:
        return len(self.turn)


ANGLE_NAMES = ("hip_l", "hip_r", "abd_l", "abd_r", "knee_l", "knee_r", "toe_l", "toe_r", "spine", "spine_bend",
               "spine_twist", "neck", "neck_yaw", "elev_l", "elev_r", "fwd_l", "fwd_r", "elbow_l", "elbow_r",
               "raise_l", "raise_r",
               # The pelvis itself (pitch forward, roll to the left, yaw to the left), which
               # tilts the legs with it, and each whole leg's turn about the pelvis's vertical
               # (to the left), which swivels knee and foot together.
               "pelvis_pitch", "pelvis_roll", "pelvis_yaw", "leg_yaw_l", "leg_yaw_r")


# Standing at rest: arms down by the sides, elbows a little bent, everything else zero.
NEUTRAL = {name: 0.0 for name in ANGLE_NAMES} | {"elev_l": ARMS_DOWN, "elev_r": ARMS_DOWN,
                                                 "elbow_l": np.radians(10), "elbow_r": np.radians(10)}


def new_segment(action: str, params: dict, seconds: float) -> tuple[Segment, np.ndarray]:
    frames = max(2, int(round(seconds * FPS)))
    angles = {name: np.full(frames, NEUTRAL[name]) for name in ANGLE_NAMES}
    zeros = np.zeros(frames)
    segment = Segment(action, params, angles, zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy(),
                      np.zeros(frames, dtype=np.int8), zeros.copy())
    return segment, np.arange(frames) / FPS


def rotations(angles: dict) -> np.ndarray:
    """Local joint rotations (T, 22, 4) from named angle curves."""
    a = angles
    frames = len(a["hip_l"])
    q = quat_identity((frames, JOINT_COUNT))
    j = JOINT_INDEX
    q[:, j["pelvis"]] = pose.spine(a["pelvis_pitch"], a["pelvis_roll"], a["pelvis_yaw"])
    q[:, j["left_hip"]] = quat_mul(pose.yaw(a["leg_yaw_l"]), pose.hip(LEFT, a["hip_l"], a["abd_l"]))
    q[:, j["right_hip"]] = quat_mul(pose.yaw(a["leg_yaw_r"]), pose.hip(RIGHT, a["hip_r"], a["abd_r"]))
    q[:, j["left_knee"]] = pose.knee(a["knee_l"])
    q[:, j["right_knee"]] = pose.knee(a["knee_r"])
    # Ankles keep the sole level whatever the thigh and shin do, plus the toe curve
    # (toe-off, pointed toes in the air). A pelvis pitched forward swings the legs back.
    q[:, j["left_ankle"]] = pose.ankle(TOES_DOWN + a["hip_l"] - a["knee_l"] + a["toe_l"] - a["pelvis_pitch"])
    q[:, j["right_ankle"]] = pose.ankle(TOES_DOWN + a["hip_r"] - a["knee_r"] + a["toe_r"] - a["pelvis_pitch"])
    for name in ("spine1", "spine2", "spine3"):
        q[:, j[name]] = pose.spine(a["spine"] / 3, a["spine_bend"] / 3, a["spine_twist"] / 3)
    q[:, j["neck"]] = pose.spine(a["neck"] / 2, 0.0, a["neck_yaw"] / 2)
    q[:, j["head"]] = pose.spine(a["neck"] / 2, 0.0, a["neck_yaw"] / 2)
    q[:, j["left_shoulder"]] = pose.shoulder(LEFT, a["elev_l"], a["fwd_l"])
    q[:, j["right_shoulder"]] = pose.shoulder(RIGHT, a["elev_r"], a["fwd_r"])
    q[:, j["left_elbow"]] = pose.elbow(LEFT, a["elbow_l"], a["raise_l"])
    q[:, j["right_elbow"]] = pose.elbow(RIGHT, a["elbow_r"], a["raise_r"])
    return q


# Modifiers of repeated and sized movements, recorded as params "speed" and "size".
TEMPOS = {"slowly": 0.7, "normally": 1.0, "quickly": 1.35}
SIZES = {"small": 0.6, "normal": 1.0, "big": 1.4}


def draw_tempo(rng, low: float, high: float) -> tuple[float, str]:
    """A repetition rate (per second) around the middle of [low, high], scaled by a tempo
    word (slowly, normally, quickly), and the word."""
    word = str(rng.choice(list(TEMPOS), p=[0.25, 0.5, 0.25]))
    return (low + high) / 2 * TEMPOS[word] * rng.uniform(0.93, 1.07), word


def draw_size(rng) -> tuple[float, str]:
    """An amplitude factor (small, normal, big movements) and its word."""
    word = str(rng.choice(list(SIZES), p=[0.25, 0.5, 0.25]))
    return SIZES[word] * rng.uniform(0.93, 1.07), word


def _side(rng, names=("left", "right")):
    return LEFT if rng.random() < 0.5 else RIGHT


# --- locomotion ----------------------------------------------------------------------

GAITS = {  # cadence (strides/s), hip swing, knee in swing, arm swing, lean, elbow
    "walk": (0.9, 24, 60, 18, 3, 15),
    "jog": (1.3, 30, 85, 28, 8, 70),
    "run": (1.5, 38, 105, 38, 12, 85),
}


# How a mood changes a gait: cadence, stride and arm-swing factors, then a posture held
# throughout (degrees: spine lean, head down, knee and hip bend, arms forward, elbows) and
# a bounce (the pelvis rising off bent knees once a step).
MOOD_FIELDS = ("cadence", "stride", "arms", "spine", "neck", "knees", "hips", "fwd", "elbow", "bounce")
STYLES = {mood: dict(zip(MOOD_FIELDS, values, strict=True)) for mood, values in {
    #          cadence stride arms spine neck knees hips fwd elbow bounce
    "tired":    (0.8,  0.8,   0.45, 14,  12,   6,   0,   0,  -5,   0),
    "happy":    (1.1,  1.1,   1.6,  -3,  -8,   0,   0,  10,  35,   1),
    "angry":    (1.2,  1.15,  1.3,   7,   5,   0,   0,   5,  45,   0),
    "cautious": (0.7,  0.6,   0.3,  15,   5,  45,  30,  25,  45,   0),
}.items()}


def draw_style(rng, share: float = 0.4) -> str:
    """A mood for a locomotion clip, or "" (no particular mood) for the rest."""
    return str(rng.choice(list(STYLES))) if rng.random() < share else ""


def gait(segment: Segment, t, kind: str, rng, direction: int = 1, speed_scale: float = 1.0, amplitude: float = 1.0,
         lateral: int = 0, start_stop: bool = False, style: str = "", arms: bool = True):
    """Steps: hips swing in counter-phase, the swinging knee lifts (early in the swing,
    straight again at heel-strike), arms swing against the legs, the pelvis bobs through
    the knees. direction -1 walks backwards;
    lateral +-1 side-steps instead (to the left / right). style: a key of STYLES; arms
    False leaves the arms to the caller (carrying). Returns each leg's swing lift, 0 while
    planted rising to 1 mid-swing, for actions that lift a leg higher."""
    cadence, swing, knee_lift, arm, lean, elbow = GAITS[kind]
    cadence *= speed_scale
    a = segment.angles
    ramp = pose.envelope(t, t[-1] + 1 / FPS, 0.5) if start_stop else np.ones_like(t)
    if style:
        mood = STYLES[style]
        cadence *= mood["cadence"]
        amplitude *= mood["stride"]
        arm *= mood["arms"]
        for leg in ("l", "r"):
            a[f"knee_{leg}"] += np.radians(mood["knees"]) * ramp
            a[f"hip_{leg}"] += np.radians(mood["hips"]) * ramp
            a[f"fwd_{leg}"] += np.radians(mood["fwd"]) * ramp
            a[f"elbow_{leg}"] += np.radians(mood["elbow"]) * ramp
        a["spine"] += np.radians(mood["spine"]) * ramp
        a["neck"] += np.radians(mood["neck"]) * ramp
        if mood["bounce"]:
            # Twice a stride (once a step) the knees give a little and straighten: a spring in the step.
            bounce = 0.5 - 0.5 * np.cos(4 * np.pi * cadence * t)
            a["knee_l"] += np.radians(10) * bounce * ramp
            a["knee_r"] += np.radians(10) * bounce * ramp
            a["hip_l"] += np.radians(5) * bounce * ramp
            a["hip_r"] += np.radians(5) * bounce * ramp
    phase = 2 * np.pi * (cadence * t + rng.random())
    s = np.sin(phase)
    # Swing progress of each leg, 0 at toe-off to 1 at heel-strike (the half cycle in
    # which the hip moves in the travel direction); -1 while the leg is planted.
    progress_l = np.mod(phase + np.pi / 2, 2 * np.pi) / np.pi
    progress_r = np.mod(phase + 3 * np.pi / 2, 2 * np.pi) / np.pi
    progress_l = np.where(progress_l <= 1, progress_l, -1.0)
    progress_r = np.where(progress_r <= 1, progress_r, -1.0)
    # The knee folds early in the swing and is straight again before the foot lands,
    # so the foot reaches forward and touches down slowly; toes push off, then lift.
    lift_l = np.where(progress_l >= 0, np.sin(np.pi * np.clip(progress_l, 0, 1) ** 0.6) ** 2, 0.0)
    lift_r = np.where(progress_r >= 0, np.sin(np.pi * np.clip(progress_r, 0, 1) ** 0.6) ** 2, 0.0)
    # The gait knows which foot carries the body: the one not swinging.
    segment.support[:] = np.where(ramp > 0.05, np.where(progress_l >= 0, RIGHT, LEFT), 0)
    toe_l = pose.bump(progress_l, -0.05, 0.3) - 0.8 * pose.bump(progress_l, 0.3, 1.0)
    toe_r = pose.bump(progress_r, -0.05, 0.3) - 0.8 * pose.bump(progress_r, 0.3, 1.0)
    if lateral:
        width = np.radians(22 * amplitude) * ramp
        lead, trail = (("abd_l", "abd_r") if lateral == LEFT else ("abd_r", "abd_l"))
        # The leading leg opens during its own swing (the left's when c > 0, the right's
        # when c < 0), the trailing one closes in its swing.
        opening = s if lateral == LEFT else -s
        a[lead] += width * (0.5 + 0.5 * opening)
        a[trail] += width * (-0.3 + 0.3 * opening)
        a[trail] = np.maximum(a[trail], -np.radians(3))
        lift_lead, lift_trail = (lift_l, lift_r) if lateral == LEFT else (lift_r, lift_l)
        a["knee_l" if lateral == LEFT else "knee_r"] += np.radians(55) * lift_lead * ramp
        a["knee_r" if lateral == LEFT else "knee_l"] += np.radians(55) * lift_trail * ramp
        # Toes up through the swing, so a stepping foot clears the floor from its first frame.
        a["toe_l"] -= np.radians(20) * np.where(progress_l >= 0, np.sin(np.pi * np.clip(progress_l, 0, 1)), 0.0) * ramp
        a["toe_r"] -= np.radians(20) * np.where(progress_r >= 0, np.sin(np.pi * np.clip(progress_r, 0, 1)), 0.0) * ramp
        return lift_l, lift_r
    hip = np.radians(swing * amplitude) * ramp * direction
    a["hip_l"] += hip * s
    a["hip_r"] -= hip * s
    a["knee_l"] += np.radians(knee_lift) * lift_l * ramp + np.radians(8)
    a["knee_r"] += np.radians(knee_lift) * lift_r * ramp + np.radians(8)
    a["toe_l"] += np.radians(15) * toe_l * ramp
    a["toe_r"] += np.radians(15) * toe_r * ramp
    if arms:
        arm_swing = np.radians(arm * amplitude) * ramp
        a["fwd_l"] -= arm_swing * s * direction
        a["fwd_r"] += arm_swing * s * direction
        a["elbow_l"] += np.radians(elbow) * ramp
        a["elbow_r"] += np.radians(elbow) * ramp
    a["spine"] += np.radians(lean) * ramp * direction
    a["spine_twist"] += np.radians(4 * amplitude) * s * ramp
    return lift_l * ramp, lift_r * ramp


SPEEDS = {"slowly": 0.75, "normally": 1.0, "quickly": 1.2}
STEP_SIZES = {"small": 0.65, "normal": 1.0, "big": 1.3}


def walk(rng, seconds):
    kind = rng.choice(["walk", "walk", "jog", "run"])
    speed = rng.choice(list(SPEEDS)) if kind == "walk" else "normally"
    scale = SPEEDS[speed] * rng.uniform(0.92, 1.08)
    direction = 1 if kind != "walk" or rng.random() < 0.8 else -1
    style = draw_style(rng) if kind == "walk" else ""
    steps = str(rng.choice(list(STEP_SIZES), p=[0.2, 0.6, 0.2])) if kind == "walk" else "normal"
    segment, t = new_segment(kind if direction == 1 else "walk_backward",
                             {"gait": kind, "speed": speed, "direction": "forward" if direction == 1 else "backward",
                              "style": style, "steps": steps}, seconds)
    gait(segment, t, kind, rng, direction, scale, amplitude=scale * STEP_SIZES[steps], style=style)
    return segment


def start_stop(rng, seconds):
    segment, t = new_segment("start_stop", {"gait": "walk"}, max(seconds, 3.0))
    gait(segment, t, "walk", rng, 1, 1.0, start_stop=True)
    return segment


def side_step(rng, seconds):
    side = _side(rng)
    style = draw_style(rng, 0.25)
    segment, t = new_segment("side_step", {"side": SIDE_NAMES[side], "style": style}, seconds)
    gait(segment, t, "walk", rng, lateral=side, speed_scale=rng.uniform(0.8, 1.1), style=style)
    return segment


def turn(rng, seconds):
    side = _side(rng)
    degrees = float(rng.choice([30, 45, 60, 90, 90, 120, 135, 180, 180, 360]))
    seconds = max(seconds, degrees / 120.0 + 1.0)
    segment, t = new_segment("turn", {"side": SIDE_NAMES[side], "degrees": degrees}, seconds)
    # Stepping in place while the heading eases round by the full angle.
    progress = pose.smoothstep(t / t[-1])
    segment.turn[1:] = side * np.radians(degrees) * np.diff(progress)
    gait(segment, t, "walk", rng, 1, 1.1, amplitude=0.18)
    return segment


def circle(rng, seconds):
    side = _side(rng)
    radius = rng.uniform(1.0, 2.5)
    style = draw_style(rng, 0.25)
    segment, t = new_segment("circle", {"side": SIDE_NAMES[side], "radius": round(float(radius), 2), "style": style},
                             max(seconds, 4.0))
    gait(segment, t, "walk", rng, 1, 1.0, style=style)
    speed = 1.2  # metres per second of this gait, about
    segment.turn[:] = side * speed / radius / FPS
    return segment


# --- jumps -----------------------------------------------------------------------------

def _jumps(segment: Segment, t, rng, count: int, height: float, distance: float, one_leg: int = 0, jacks: bool = False):
    a = segment.angles
    flight = 2 * np.sqrt(2 * height / G)
    cycle = 0.55 + flight + 0.45
    start = 0.4
    flights = []
    for k in range(count):
        takeoff = start + k * cycle + 0.55
        land = takeoff + flight
        crouch = pose.bump(t, takeoff - 0.55, takeoff + 0.05) + pose.bump(t, land - 0.05, land + 0.45)
        air = (t >= takeoff) & (t < land)
        tau = np.clip(t - takeoff, 0, flight)
        segment.lift += np.where(air, G / 2 * tau * (flight - tau), 0.0)
        # Spread over the frames actually in the air, so the body covers the whole distance.
        segment.drift += np.where(air, distance / max(air.sum(), 1), 0.0)
        tuck = pose.bump(t, takeoff - 0.05, land + 0.05)  # legs in the air, smoothly in and out
        for leg in ("l", "r"):
            a[f"hip_{leg}"] += np.radians(45) * crouch + np.radians(12) * tuck
            a[f"knee_{leg}"] += np.radians(85) * crouch + np.radians(20) * tuck
            a[f"toe_{leg}"] += np.radians(30) * tuck
        a["spine"] += np.radians(25) * crouch
        swing = pose.bump(t, takeoff - 0.3, land + 0.2)
        flights.append((takeoff, land))
        if not jacks:
            a["fwd_l"] += np.radians(70) * swing - np.radians(35) * crouch
            a["fwd_r"] += np.radians(70) * swing - np.radians(35) * crouch
    if one_leg:
        held = "l" if one_leg == LEFT else "r"
        raised = pose.envelope(t, t[-1], 0.4)
        a[f"hip_{held}"] += np.radians(30) * raised
        a[f"knee_{held}"] += np.radians(80) * raised
    return flights


def jump(rng, seconds):
    count = int(rng.integers(1, 4))
    forward = rng.random() < 0.4
    size = str(rng.choice(list(SIZES), p=[0.25, 0.5, 0.25]))
    height = {"small": rng.uniform(0.1, 0.16), "normal": rng.uniform(0.18, 0.28), "big": rng.uniform(0.32, 0.42)}[size]
    distance = rng.uniform(0.5, 1.1) * (1.2 if size == "big" else 1.0) if forward else 0.0
    cycle = 0.55 + 2 * np.sqrt(2 * height / G) + 0.45
    segment, t = new_segment("jump", {"count": count, "direction": "forward" if forward else "in place",
                                      "height": round(float(height), 2), "size": size}, 0.8 + count * cycle + 0.3)
    _jumps(segment, t, rng, count, height, distance)
    return segment


def hop(rng, seconds):
    side = _side(rng)
    count = int(rng.integers(2, 5))
    height = rng.uniform(0.08, 0.15)
    cycle = 0.55 + 2 * np.sqrt(2 * height / G) + 0.45
    segment, t = new_segment("hop", {"side": SIDE_NAMES[side], "count": count}, 0.8 + count * cycle + 0.3)
    _jumps(segment, t, rng, count, height, 0.0, one_leg=-side)  # hopping on the left leg holds the right up
    return segment


# --- upper body ------------------------------------------------------------------------

def _sides(rng, both_ok=True):
    choice = rng.choice(["left", "right", "both"] if both_ok else ["left", "right"])
    return choice, {"left": [LEFT], "right": [RIGHT], "both": [LEFT, RIGHT]}[choice]


def _arm(a, side, name):
    return a[f"{name}_{'l' if side == LEFT else 'r'}"]


def wave(rng, seconds):
    hand, sides = _sides(rng)
    count = int(rng.integers(2, 6))
    rate, speed = draw_tempo(rng, 1.5, 2.5)
    amplitude, size = draw_size(rng)
    seconds = max(seconds, count / rate + 1.4)
    segment, t = new_segment("wave", {"hand": hand, "count": count, "speed": speed, "size": size}, seconds)
    up = pose.envelope(t, t[-1], 0.6)
    waving = np.sin(2 * np.pi * rate * (t - 0.6)) * pose.bump(t, 0.4, 0.8 + count / rate)
    for side in sides:
        _arm(segment.angles, side, "elev")[:] += (np.radians(85) + np.radians(rng.uniform(-8, 8)) - ARMS_DOWN) * up
        _arm(segment.angles, side, "raise")[:] += np.radians(75) * up + np.radians(25) * amplitude * waving
        _arm(segment.angles, side, "fwd")[:] += np.radians(15) * up
    return segment


def raise_arms(rng, seconds):
    hand, sides = _sides(rng)
    forward = rng.random() < 0.4
    segment, t = new_segment("raise_arms", {"hand": hand, "how": "forward" if forward else "sideways"}, max(seconds, 2.5))
    up = pose.envelope(t, t[-1], 0.7)
    for side in sides:
        if forward:
            # Swung to the front (about the vertical axis) early, then lifted in the body's
            # sagittal plane to 70 degrees above level: "fwd" alone only turns a hanging
            # arm about itself (the wrist stayed at the hip before motion_version 2).
            _arm(segment.angles, side, "fwd")[:] += np.radians(90) * np.clip(2 * up, 0, 1)
            _arm(segment.angles, side, "elev")[:] += (np.radians(70) - ARMS_DOWN) * up
        else:
            _arm(segment.angles, side, "elev")[:] += (np.radians(160) - ARMS_DOWN) * up
    return segment


def raise_guard(a: dict, amount: np.ndarray) -> None:
    """A boxer's guard, both fists up in front of the chin, weighted by `amount` (T,)."""
    for side in (LEFT, RIGHT):
        _arm(a, side, "fwd")[:] += np.radians(60) * amount
        _arm(a, side, "elev")[:] += np.radians(50) * amount
        _arm(a, side, "elbow")[:] += np.radians(110) * amount


def punch(rng, seconds):
    hand, sides = _sides(rng, both_ok=False)
    count = int(rng.integers(1, 5))
    segment, t = new_segment("punch", {"hand": hand, "count": count}, 0.8 + 0.55 * count + 0.6)
    a = segment.angles
    guard = pose.envelope(t, t[-1], 0.4)
    raise_guard(a, guard)
    strikes = sum(pose.bump(t, 0.6 + 0.55 * k, 0.6 + 0.55 * k + 0.4) for k in range(count))
    side = sides[0]
    _arm(a, side, "fwd")[:] += np.radians(30) * strikes
    _arm(a, side, "elev")[:] += np.radians(12) * strikes
    _arm(a, side, "elbow")[:] -= np.radians(115) * strikes
    a["spine_twist"] += side * -np.radians(15) * strikes
    return segment


def clap(rng, seconds):
    count = int(rng.integers(2, 7))
    rate, speed = draw_tempo(rng, 1.5, 2.5)
    segment, t = new_segment("clap", {"count": count, "speed": speed}, 1.2 + count / rate + 0.4)
    a = segment.angles
    up = pose.envelope(t, t[-1], 0.5)
    together = 0.5 - 0.5 * np.cos(2 * np.pi * rate * np.clip(t - 0.6, 0, count / rate))
    for side in (LEFT, RIGHT):
        _arm(a, side, "fwd")[:] += (np.radians(55) + np.radians(30) * together) * up
        _arm(a, side, "elev")[:] += np.radians(60) * up
        _arm(a, side, "elbow")[:] += np.radians(35) * up
    return segment


def throw(rng, seconds):
    hand, sides = _sides(rng, both_ok=False)
    side = sides[0]
    segment, t = new_segment("throw", {"hand": hand}, max(seconds, 2.5))
    a = segment.angles
    wind = pose.bump(t, 0.3, 1.3)
    release = pose.bump(t, 1.1, 1.7)
    _arm(a, side, "elev")[:] += np.radians(140) * wind + np.radians(110) * release
    _arm(a, side, "fwd")[:] += -np.radians(50) * wind + np.radians(110) * release
    _arm(a, side, "elbow")[:] += np.radians(80) * wind
    a["spine_twist"] += side * (np.radians(25) * wind - np.radians(25) * release)
    a["spine"] += np.radians(20) * release
    return segment


def reach_up(rng, seconds):
    hand, sides = _sides(rng)
    segment, t = new_segment("reach_up", {"hand": hand}, max(seconds, 2.5))
    up = pose.envelope(t, t[-1], 0.8)
    for side in sides:
        _arm(segment.angles, side, "elev")[:] += (np.radians(175) - ARMS_DOWN) * up
    for leg in ("l", "r"):
        segment.angles[f"toe_{leg}"] += np.radians(25) * up  # onto the toes
    return segment


def point(rng, seconds):
    hand, sides = _sides(rng, both_ok=False)
    segment, t = new_segment("point", {"hand": hand}, max(seconds, 2.0))
    up = pose.envelope(t, t[-1], 0.5)
    _arm(segment.angles, sides[0], "fwd")[:] += np.radians(85) * up
    _arm(segment.angles, sides[0], "elev")[:] += np.radians(75) * up
    _arm(segment.angles, sides[0], "elbow")[:] -= np.radians(10) * up
    return segment


# --- lower and whole body --------------------------------------------------------------

def kick(rng, seconds):
    hand, sides = _sides(rng, both_ok=False)
    leg = "l" if sides[0] == LEFT else "r"
    segment, t = new_segment("kick", {"leg": hand}, max(seconds, 2.0))
    a = segment.angles
    chamber = pose.bump(t, 0.4, 1.2)
    extend = pose.bump(t, 0.6, 1.1)
    a[f"hip_{leg}"] += np.radians(70) * chamber
    a[f"knee_{leg}"] += np.radians(90) * chamber - np.radians(80) * extend
    a[f"toe_{leg}"] += np.radians(30) * extend
    a["spine"] -= np.radians(10) * chamber
    for side in (LEFT, RIGHT):
        _arm(a, side, "fwd")[:] += np.radians(30) * chamber
    return segment


def squat(rng, seconds):
    count = int(rng.integers(1, 4))
    depth = rng.uniform(0.7, 1.0)
    segment, t = new_segment("squat", {"count": count}, 0.4 + 2.2 * count + 0.3)
    a = segment.angles
    down = sum(pose.bump(t, 0.3 + 2.2 * k, 0.3 + 2.2 * k + 2.0) for k in range(count)) * depth
    for leg in ("l", "r"):
        a[f"hip_{leg}"] += np.radians(95) * down
        a[f"knee_{leg}"] += np.radians(120) * down
    a["spine"] += np.radians(20) * down
    for side in (LEFT, RIGHT):
        _arm(a, side, "fwd")[:] += np.radians(80) * down
    return segment


def crouch(rng, seconds):
    segment, t = new_segment("crouch", {}, max(seconds, 3.0))
    low = pose.envelope(t, t[-1], 0.8)
    for leg in ("l", "r"):
        segment.angles[f"hip_{leg}"] += np.radians(70) * low
        segment.angles[f"knee_{leg}"] += np.radians(95) * low
    segment.angles["spine"] += np.radians(35) * low
    return segment


def lunge(rng, seconds):
    hand, sides = _sides(rng, both_ok=False)
    front, back = ("l", "r") if sides[0] == LEFT else ("r", "l")
    segment, t = new_segment("lunge", {"leg": hand}, max(seconds, 3.0))
    low = pose.envelope(t, t[-1], 0.9)
    segment.angles[f"hip_{front}"] += np.radians(70) * low
    segment.angles[f"knee_{front}"] += np.radians(85) * low
    segment.angles[f"hip_{back}"] -= np.radians(25) * low
    segment.angles[f"knee_{back}"] += np.radians(75) * low
    return segment


def bow(rng, seconds):
    depth = rng.uniform(40, 75)
    segment, t = new_segment("bow", {"depth": round(float(depth))}, max(seconds, 2.5))
    down = pose.bump(t, 0.3, t[-1] - 0.2)
    segment.angles["spine"] += np.radians(depth) * down
    for leg in ("l", "r"):
        segment.angles[f"hip_{leg}"] += np.radians(depth * 0.3) * down
    segment.angles["neck"] += np.radians(15) * down
    return segment


def stretch(rng, seconds):
    segment, t = new_segment("stretch", {}, max(seconds, 4.0))
    up = pose.bump(t, 0.3, t[-1] / 2)
    side = pose.bump(t, t[-1] / 2 - 0.2, t[-1] - 0.2)
    bend = LEFT if rng.random() < 0.5 else RIGHT
    for arm in (LEFT, RIGHT):
        _arm(segment.angles, arm, "elev")[:] += (np.radians(170) - ARMS_DOWN) * np.maximum(up, side)
    segment.angles["spine"] -= np.radians(10) * up
    segment.angles["spine_bend"] += bend * np.radians(30) * side
    return segment


# --- idle --------------------------------------------------------------------------------

def stand(rng, seconds):
    segment, t = new_segment("stand", {}, seconds)
    sway = np.sin(2 * np.pi * 0.25 * t + rng.random() * 6)
    segment.angles["spine_bend"] += np.radians(1.5) * sway
    return segment


def look_around(rng, seconds):
    segment, t = new_segment("look_around", {}, max(seconds, 3.0))
    segment.angles["neck_yaw"] += np.radians(rng.uniform(50, 70)) * np.sin(2 * np.pi * t / t[-1]) * pose.envelope(t, t[-1], 0.5)
    segment.angles["spine_twist"] += np.radians(15) * np.sin(2 * np.pi * t / t[-1]) * pose.envelope(t, t[-1], 0.5)
    return segment


def shift_weight(rng, seconds):
    segment, t = new_segment("shift_weight", {}, max(seconds, 3.0))
    shift = np.sin(2 * np.pi * 0.4 * t) * pose.envelope(t, t[-1], 0.5)
    segment.angles["abd_l"] += np.radians(6) * shift
    segment.angles["abd_r"] -= np.radians(6) * shift
    segment.angles["spine_bend"] -= np.radians(6) * shift
    return segment


ACTIONS = {
    "walk": walk, "start_stop": start_stop, "side_step": side_step, "turn": turn, "circle": circle,
    "jump": jump, "hop": hop,
    "wave": wave, "raise_arms": raise_arms, "punch": punch, "clap": clap, "throw": throw, "reach_up": reach_up,
    "point": point,
    "kick": kick, "squat": squat, "crouch": crouch, "lunge": lunge, "bow": bow,
    "stretch": stretch,
    "stand": stand, "look_around": look_around, "shift_weight": shift_weight,
}

# More actions live in their own modules, which add theirs to ACTIONS as they load. They
# take only names defined above, so any import order works.
from . import actions_body, actions_crawl, actions_move  # noqa: E402, F401  (imported to register)
