"""Locomotion beyond plain walking: gaits with a character (march, tiptoe, sneak, limp,
carry, stumble), paths (zigzag, diagonal), stairs and stepping over things, spins, and
jumps in every direction. Same conventions as actions.py: each action is a function of
(rng, seconds) returning a Segment; synth.py plants the feet.
"""

import numpy as np

from retarget.skeleton import BONE_LENGTHS, JOINT_INDEX, PELVIS_GROUP_OFFSETS

from . import pose
from .actions import (
    ACTIONS,
    ARMS_DOWN,
    LEFT,
    RIGHT,
    SIDE_NAMES,
    SPEEDS,
    TOES_DOWN,
    G,
    Segment,
    _arm,
    _jumps,
    _side,
    draw_style,
    gait,
    new_segment,
)

_J = JOINT_INDEX
THIGH = {LEFT: BONE_LENGTHS[_J["left_knee"]], RIGHT: BONE_LENGTHS[_J["right_knee"]]}
SHIN = {LEFT: BONE_LENGTHS[_J["left_ankle"]], RIGHT: BONE_LENGTHS[_J["right_ankle"]]}
# How far the ankle sits above the floor when the sole is flat (the toe joint touches).
ANKLE_HEIGHT = {LEFT: BONE_LENGTHS[_J["left_foot"]] * np.sin(TOES_DOWN),
                RIGHT: BONE_LENGTHS[_J["right_foot"]] * np.sin(TOES_DOWN)}
HIP_BELOW_PELVIS = -PELVIS_GROUP_OFFSETS[1][1]
LEG = "l", "r"


def _leg(side: int) -> str:
    return "l" if side == LEFT else "r"


def leg_ik(side: int, forward, down) -> tuple[np.ndarray, np.ndarray]:
    """Hip and knee flexion (radians) that put the ankle `forward` and `down` metres from
    the hip joint in the leg's sagittal plane, the knee bending forward."""
    thigh, shin = THIGH[side], SHIN[side]
    reach = np.clip(np.hypot(forward, down), 0.05, 0.999 * (thigh + shin))
    interior = np.arccos(np.clip((thigh ** 2 + shin ** 2 - reach ** 2) / (2 * thigh * shin), -1, 1))
    toward_ankle = np.arctan2(forward, down)
    thigh_ahead = np.arccos(np.clip((thigh ** 2 + reach ** 2 - shin ** 2) / (2 * thigh * reach), -1, 1))
    return toward_ankle + thigh_ahead, np.pi - interior


# --- gaits with a character --------------------------------------------------------------

def march(rng, seconds):
    """High knees, stiff straight arms swinging high, upright."""
    segment, t = new_segment("march", {"speed": str(rng.choice(list(SPEEDS)))}, max(seconds, 2.5))
    scale = SPEEDS[segment.params["speed"]]
    a = segment.angles
    lift_l, lift_r = gait(segment, t, "walk", rng, 1, 0.95 * scale, amplitude=0.8, arms=False)
    # The knee leads and the thigh follows, so a foot leaves the floor upwards, not scuffing forward.
    a["hip_l"] += np.radians(70) * lift_l ** 1.5
    a["hip_r"] += np.radians(70) * lift_r ** 1.5
    a["knee_l"] += np.radians(60) * np.sqrt(lift_l)
    a["knee_r"] += np.radians(60) * np.sqrt(lift_r)
    a["toe_l"] += np.radians(15) * lift_l
    a["toe_r"] += np.radians(15) * lift_r
    # Arms straight, each swinging forward with the opposite knee.
    for side, lift in ((LEFT, lift_r), (RIGHT, lift_l)):
        _arm(a, side, "elev")[:] += np.radians(10)
        _arm(a, side, "fwd")[:] += np.radians(55) * lift - np.radians(10)
        _arm(a, side, "elbow")[:] -= np.radians(8)
    a["spine"] -= np.radians(4)
    return segment


def tiptoe(rng, seconds):
    """On the balls of the feet, heels up, short quick steps, arms a little out."""
    segment, t = new_segment("tiptoe", {}, max(seconds, 2.5))
    a = segment.angles
    gait(segment, t, "walk", rng, 1, 1.1, amplitude=0.55, arms=False)
    for leg in LEG:
        a[f"toe_{leg}"] += np.radians(30)
    for side in (LEFT, RIGHT):
        _arm(a, side, "elev")[:] += np.radians(25)
        _arm(a, side, "elbow")[:] += np.radians(40)
    a["neck"] += np.radians(8)
    return segment


def sneak(rng, seconds):
    """Crouched, slow, small careful steps, arms up in front."""
    segment, t = new_segment("sneak", {}, max(seconds, 3.0))
    a = segment.angles
    gait(segment, t, "walk", rng, 1, 0.7, amplitude=0.6, arms=False)
    for leg in LEG:
        a[f"hip_{leg}"] += np.radians(45)
        a[f"knee_{leg}"] += np.radians(70)
        a[f"toe_{leg}"] += np.radians(10)
    a["spine"] += np.radians(20)
    for side in (LEFT, RIGHT):
        _arm(a, side, "fwd")[:] += np.radians(45)
        _arm(a, side, "elev")[:] += np.radians(40)
        _arm(a, side, "elbow")[:] += np.radians(70)
    return segment


def limp(rng, seconds):
    """One leg hurts (the named side): it swings stiff and short, the body leans over it
    while it carries the weight, and the other leg does the work."""
    side = _side(rng)
    hurt, good = _leg(side), _leg(-side)
    segment, t = new_segment("limp", {"side": SIDE_NAMES[side]}, max(seconds, 3.0))
    a = segment.angles
    lifts = dict(zip(LEG, gait(segment, t, "walk", rng, 1, 0.75, amplitude=0.8)))
    # The hurt knee bends little in its swing (most of the gait's knee lift taken back),
    # the toes pulled up so the stiff leg clears the floor.
    a[f"knee_{hurt}"] -= np.radians(38) * lifts[hurt]
    a[f"toe_{hurt}"] -= np.radians(12) * lifts[hurt] ** 0.3  # (early: no push-off on the sore foot)
    # The good leg lifts higher and the body dips over the good knee as it lands.
    a[f"knee_{good}"] += np.radians(15) * lifts[good]
    a[f"hip_{good}"] += np.radians(10) * lifts[good]
    hurt_stance = lifts[good]  # the hurt leg carries the body while the good one swings
    a["spine_bend"] += side * np.radians(12) * hurt_stance
    a["spine"] += np.radians(8)
    a["neck"] += np.radians(6)
    return segment


def carry(rng, seconds):
    """Walking with both arms in front holding something (a box)."""
    segment, t = new_segment("carry", {"speed": str(rng.choice(["slowly", "normally"]))}, max(seconds, 3.0))
    a = segment.angles
    gait(segment, t, "walk", rng, 1, 0.85 * SPEEDS[segment.params["speed"]], amplitude=0.85, arms=False)
    for side in (LEFT, RIGHT):
        _arm(a, side, "elev")[:] = ARMS_DOWN + np.radians(45)
        _arm(a, side, "fwd")[:] += np.radians(70)
        _arm(a, side, "elbow")[:] += np.radians(60)
    a["spine"] -= np.radians(6)  # leaning back against the load
    return segment


def stumble(rng, seconds):
    """Walking, the foot catches: the body pitches forward, knees give, arms fly out to
    catch the balance, then upright again and on."""
    segment, t = new_segment("stumble", {}, max(seconds, 3.5))
    a = segment.angles
    gait(segment, t, "walk", rng, 1, 1.0)
    trip = rng.uniform(1.0, t[-1] - 1.8)
    lurch = pose.bump(t, trip, trip + 1.2)
    a["spine"] += np.radians(38) * lurch
    a["neck"] -= np.radians(15) * lurch
    for leg in LEG:
        a[f"knee_{leg}"] += np.radians(18) * lurch
        a[f"hip_{leg}"] += np.radians(12) * lurch
    for side in (LEFT, RIGHT):
        _arm(a, side, "elev")[:] += np.radians(80) * lurch
        _arm(a, side, "fwd")[:] += np.radians(40) * lurch
    segment.params["trip"] = round(float(trip), 2)
    return segment


def jog_in_place(rng, seconds):
    """Running on the spot: knees come up in turn and each foot lands where it left, arms
    pumping with bent elbows."""
    segment, t = new_segment("jog_in_place", {}, max(seconds, 2.5))
    a = segment.angles
    cadence = rng.uniform(1.2, 1.5)  # strides per second
    phase = 2 * np.pi * cadence * t
    # Each knee is up for two thirds of its half stride; both feet are down in between
    # (at least two frames), so the weight passes to a foot only once it has landed.
    lift_l = (np.clip(np.sin(phase) - 0.5, 0, None) / 0.5) ** 1.5 * pose.envelope(t, t[-1], 0.3)
    lift_r = (np.clip(-np.sin(phase) - 0.5, 0, None) / 0.5) ** 1.5 * pose.envelope(t, t[-1], 0.3)
    for leg, lift in (("l", lift_l), ("r", lift_r)):
        # The knee leads, so the foot leaves the floor upwards rather than scuffing forward.
        a[f"hip_{leg}"] += np.radians(65) * lift
        a[f"knee_{leg}"] += np.radians(95) * np.sqrt(lift) + np.radians(8)
        a[f"toe_{leg}"] += np.radians(20) * lift
    # A foot carries the body from the frame after it lands: the frame it lands on still
    # moves it, and that move must not push the body.
    up_l, up_r = lift_l > 0, lift_r > 0
    up_l[1:] |= up_l[:-1]
    up_r[1:] |= up_r[:-1]
    segment.support[:] = np.where(up_l, RIGHT, np.where(up_r, LEFT, 0))
    for side, lift in ((LEFT, lift_r - lift_l), (RIGHT, lift_l - lift_r)):
        _arm(a, side, "fwd")[:] += np.radians(35) * lift + np.radians(10)
        _arm(a, side, "elbow")[:] += np.radians(75)
    a["spine"] += np.radians(4)
    return segment


# --- paths -----------------------------------------------------------------------------

def zigzag(rng, seconds):
    """Walking forward while the heading swings left and right, legs of 1.2-2 s."""
    leg_seconds = rng.uniform(1.2, 2.0)
    angle = np.radians(rng.uniform(35, 50))
    style = draw_style(rng, 0.25)
    segment, t = new_segment("zigzag", {"style": style}, max(seconds, 3 * leg_seconds + 0.5))
    gait(segment, t, "walk", rng, 1, 1.0, style=style)
    # A smoothed square wave of heading: +angle, -angle, +angle ... starting to the left or right.
    first = _side(rng)
    heading = first * angle * np.tanh(3 * np.sin(np.pi * t / leg_seconds))
    segment.turn[1:] = np.diff(heading)
    segment.params.update(first=SIDE_NAMES[first], degrees=round(float(np.degrees(angle))))
    return segment


def walk_diagonal(rng, seconds):
    """Walking diagonally forward-left or forward-right: a 45 degree veer, then straight."""
    side = _side(rng)
    style = draw_style(rng, 0.25)
    segment, t = new_segment("walk_diagonal", {"side": SIDE_NAMES[side], "style": style}, max(seconds, 3.0))
    gait(segment, t, "walk", rng, 1, 1.0, style=style)
    segment.turn[1:] = side * np.radians(45) * np.diff(pose.smoothstep(t / 0.8))
    return segment


# --- stairs and obstacles ------------------------------------------------------------------

def _stairs(rng, up: bool) -> Segment:
    """Step over step up (or down) a flight of stairs. The feet are placed tread by tread
    and the legs solved to reach them (leg_ik), so planted feet stay on their treads and
    the swinging foot clears each edge; the floor under the lowest foot (Segment.rise)
    carries the body up or down."""
    placements = int(rng.integers(3, 7))  # treads reached, one foot after the other
    rise = rng.uniform(0.13, 0.18) * (1 if up else -1)
    depth = rng.uniform(0.26, 0.32)
    period = rng.uniform(0.8, 1.0) if up else rng.uniform(0.7, 0.9)
    lead = _side(rng)
    moves = placements + 1  # the last brings the trailing foot onto the top (bottom) tread
    start = 0.4
    segment, t = new_segment("stairs_up" if up else "stairs_down",
                             {"steps": placements, "height": round(float(abs(rise)), 3), "depth": round(float(depth), 3),
                              "side": SIDE_NAMES[lead]}, start + moves * period + 0.4)
    swing_time = 0.7 * period
    sole = {LEFT: np.zeros_like(t), RIGHT: np.zeros_like(t)}  # world height of each sole
    ahead = {LEFT: np.zeros_like(t), RIGHT: np.zeros_like(t)}  # world forward position of each ankle
    swinging = {LEFT: np.zeros(len(t), bool), RIGHT: np.zeros(len(t), bool)}
    tread = {LEFT: 0, RIGHT: 0}
    for k in range(moves):
        mover = lead if k % 2 == 0 else -lead
        target = min(k + 1, placements)
        s = np.clip((t - start - k * period) / swing_time, 0.0, 1.0)
        if up:  # up first, then forward: clear the edge of the tread in between
            lift_clear = 0.07
            height = (target - tread[mover]) * rise + lift_clear
            climb = height * pose.smoothstep(s / 0.55) - lift_clear * pose.smoothstep((s - 0.55) / 0.45)
            travel = pose.smoothstep((s - 0.15) / 0.85)
        else:  # forward first, past the edge, then down
            climb = (target - tread[mover]) * rise * pose.smoothstep((s - 0.35) / 0.65) + 0.05 * pose.bump(s, 0.0, 0.7)
            travel = pose.smoothstep(s / 0.7)
        sole[mover] += np.where(t >= start + k * period, climb, 0.0)
        ahead[mover] += (target - tread[mover]) * depth * travel
        swinging[mover] |= (s > 0) & (s < 1)
        tread[mover] = target
    # The hips ride over the middle of the feet, lower (knees bent) in the middle of the flight.
    mean_sole = (sole[LEFT] + sole[RIGHT]) / 2
    hip_height = mean_sole + 0.995 * (THIGH[LEFT] + SHIN[LEFT]) - 0.11 * pose.envelope(t, t[-1], 0.6)
    hip_ahead = (ahead[LEFT] + ahead[RIGHT]) / 2 + (0.03 if up else -0.02)
    a = segment.angles
    for side in (LEFT, RIGHT):
        hip, knee = leg_ik(side, ahead[side] - hip_ahead, hip_height - (sole[side] + ANKLE_HEIGHT[side]))
        a[f"hip_{_leg(side)}"] = hip
        a[f"knee_{_leg(side)}"] = knee
    segment.support[:] = np.where(swinging[LEFT], RIGHT, LEFT)
    segment.rise[:] = np.minimum(sole[LEFT], sole[RIGHT])
    # The upper body: leaning into the climb (or upright and looking down going down), arms swinging a little.
    a["spine"] += np.radians(10 if up else 4) * pose.envelope(t, t[-1], 0.5)
    a["neck"] += np.radians(10 if up else 20) * pose.envelope(t, t[-1], 0.5)
    for side in (LEFT, RIGHT):
        _arm(a, side, "fwd")[:] += np.radians(15) * (ahead[-side] - ahead[side]) / depth
    return segment


def stairs_up(rng, seconds):
    return _stairs(rng, up=True)


def stairs_down(rng, seconds):
    return _stairs(rng, up=False)


def step_over(rng, seconds):
    """Walking up to an obstacle and stepping over it: one step in which the leading leg,
    then the trailing one, lifts the knee high."""
    segment, t = new_segment("step_over", {}, max(seconds, 4.0))
    a = segment.angles
    cadence = 0.7
    lift_l, lift_r = gait(segment, t, "walk", rng, 1, cadence / 0.9, amplitude=0.9)
    # The obstacle is crossed in the stride around the middle of the clip: each leg's swing there goes high.
    middle = t[-1] / 2
    over = pose.bump(t, middle - 0.75 / cadence, middle + 0.75 / cadence) ** 0.5
    for leg, lift in (("l", lift_l), ("r", lift_r)):
        # The thigh comes up in front (the swing lift peaks while the hip is still behind,
        # so the hip takes most of it: knee up, not the foot kicked up behind).
        high = over * lift
        a[f"hip_{leg}"] += np.radians(65) * high
        a[f"knee_{leg}"] += np.radians(45) * high
    a["spine"] += np.radians(10) * over
    a["neck"] += np.radians(15) * over
    for side in (LEFT, RIGHT):
        _arm(a, side, "elev")[:] += np.radians(25) * over  # arms out for balance
    return segment


# --- turning on the spot ----------------------------------------------------------------------

def spin(rng, seconds):
    """A fast full turn (or two) on one foot, the other knee up, arms pulled in."""
    side = _side(rng)
    turns = 1 if rng.random() < 0.75 else 2
    spin_seconds = rng.uniform(0.6, 0.9) * turns
    segment, t = new_segment("spin", {"side": SIDE_NAMES[side], "degrees": 360 * turns}, 0.7 + spin_seconds + 0.6)
    a = segment.angles
    progress = pose.smoothstep((t - 0.55) / spin_seconds)
    segment.turn[1:] = side * 2 * np.pi * turns * np.diff(progress)
    # It pivots on the foot of the turning side (turning left on the left foot).
    free = _leg(-side)
    up = pose.bump(t, 0.3, 0.8 + spin_seconds)
    a[f"hip_{free}"] += np.radians(45) * up
    a[f"knee_{free}"] += np.radians(80) * up
    a[f"toe_{_leg(side)}"] += np.radians(15) * up  # onto the ball of the foot
    segment.support[:] = np.where(up > 0.05, side, 0)
    for arm in (LEFT, RIGHT):
        _arm(a, arm, "fwd")[:] += np.radians(60) * up
        _arm(a, arm, "elev")[:] += np.radians(55) * up
        _arm(a, arm, "elbow")[:] += np.radians(80) * up
    return segment


# --- jumps in every direction ----------------------------------------------------------------

def _jump_cycle(height: float) -> float:
    return 0.55 + 2 * np.sqrt(2 * height / G) + 0.45


def jump_over(rng, seconds):
    """A long forward jump over something, knees tucked up in the air."""
    height = rng.uniform(0.35, 0.5)
    distance = rng.uniform(1.0, 1.6)
    segment, t = new_segment("jump_over", {"height": round(float(height), 2), "distance": round(float(distance), 2)},
                             0.8 + _jump_cycle(height) + 0.3)
    ((takeoff, land),) = _jumps(segment, t, rng, 1, height, distance)
    tuck = pose.bump(t, takeoff, land)
    for leg in LEG:
        segment.angles[f"hip_{leg}"] += np.radians(50) * tuck
        segment.angles[f"knee_{leg}"] += np.radians(70) * tuck
    return segment


def jump_turn(rng, seconds):
    """A jump that turns in the air, a half or a whole turn, to the named side; the feet
    leave and land together, arms pulled in for the spin."""
    side = _side(rng)
    degrees = 180 if rng.random() < 0.65 else 360
    height = rng.uniform(0.3, 0.42) if degrees == 360 else rng.uniform(0.2, 0.32)
    segment, t = new_segment("jump_turn", {"side": SIDE_NAMES[side], "degrees": degrees, "height": round(float(height), 2)},
                             0.8 + _jump_cycle(height) + 0.3)
    _jumps(segment, t, rng, 1, height, 0.0)
    airborne = segment.lift > 0
    # The turn spread over the frames in the air: the heading changes only off the ground.
    segment.turn[airborne] = side * np.radians(degrees) / airborne.sum()
    tucked = pose.bump(t, t[airborne][0] - 0.1, t[airborne][-1] + 0.15)
    for arm in (LEFT, RIGHT):
        _arm(segment.angles, arm, "elbow")[:] += np.radians(90) * tucked
        _arm(segment.angles, arm, "elev")[:] += np.radians(40) * tucked
    return segment


def jump_backward(rng, seconds):
    count = int(rng.integers(1, 4))
    height = rng.uniform(0.12, 0.25)
    distance = rng.uniform(0.3, 0.6)
    segment, t = new_segment("jump_backward", {"count": count, "distance": round(float(distance), 2)},
                             0.8 + count * _jump_cycle(height) + 0.3)
    _jumps(segment, t, rng, count, height, -distance)
    return segment


def jump_sideways(rng, seconds):
    side = _side(rng)
    count = int(rng.integers(1, 4))
    height = rng.uniform(0.12, 0.25)
    distance = rng.uniform(0.3, 0.7)
    segment, t = new_segment("jump_sideways", {"side": SIDE_NAMES[side], "count": count,
                                               "distance": round(float(distance), 2)},
                             0.8 + count * _jump_cycle(height) + 0.3)
    _jumps(segment, t, rng, count, height, 0.0)
    airborne = segment.lift > 0
    segment.drift_side[airborne] = side * distance * count / airborne.sum()  # per frame in the air
    return segment


def jumping_jacks(rng, seconds):
    count = 2 * int(rng.integers(1, 4))  # jumps: open, close, open, close ...
    height = 0.12
    segment, t = new_segment("jumping_jacks", {"count": count // 2}, 0.8 + count * _jump_cycle(height) + 0.3)
    flights = _jumps(segment, t, rng, count, height, 0.0, jacks=True)
    a = segment.angles
    # Legs and arms open in one flight and close in the next: they change only in the
    # air, so both feet land where they then stay.
    spread = np.zeros_like(t)
    crouch = np.zeros_like(t)
    for k, (takeoff, land) in enumerate(flights):
        before, after = (0.0, 1.0) if k % 2 == 0 else (1.0, 0.0)
        spread = np.where(t >= takeoff, before + (after - before) * pose.smoothstep((t - takeoff) / (land - takeoff)), spread)
        crouch += pose.bump(t, takeoff - 0.55, takeoff + 0.05) + pose.bump(t, land - 0.05, land + 0.45)
    # The legs reach from the hips to feet straight below and out to the side, the hips
    # dropping into each crouch: solved, so feet on the floor stay where they landed.
    for side in (LEFT, RIGHT):
        across = 0.2 * spread
        down = 0.995 * (THIGH[side] + SHIN[side]) - 0.17 * crouch
        hip, knee = leg_ik(side, np.zeros_like(t), np.hypot(across, down))
        leg = _leg(side)
        a[f"hip_{leg}"] = hip
        a[f"knee_{leg}"] = knee
        a[f"abd_{leg}"] = np.arctan2(across, down)
        a[f"elev_{leg}"] += np.radians(150) * spread
    return segment


def skip(rng, seconds):
    """Skipping: step-hop on one foot, step-hop on the other, knee of the free leg high,
    arms swinging big. Each hop is a short flight carried forward."""
    count = int(rng.integers(2, 6))  # hops
    height = rng.uniform(0.06, 0.1)
    flight = 2 * np.sqrt(2 * height / G)
    hop_cycle = 0.55
    segment, t = new_segment("skip", {"count": count}, 0.5 + count * hop_cycle + 0.5)
    a = segment.angles
    speed = 1.3  # metres per second while skipping
    for k in range(count):
        takeoff = 0.5 + k * hop_cycle + hop_cycle - flight - 0.1
        land = takeoff + flight
        free = "r" if k % 2 == 0 else "l"
        planted = "l" if k % 2 == 0 else "r"
        air = (t >= takeoff) & (t < land)
        tau = np.clip(t - takeoff, 0, flight)
        segment.lift += np.where(air, G / 2 * tau * (flight - tau), 0.0)
        segment.drift += np.where(air, speed * hop_cycle * 0.5 / max(air.sum(), 1), 0.0)
        knee_up = pose.bump(t, 0.5 + k * hop_cycle - 0.1, 0.5 + (k + 1) * hop_cycle + 0.1)
        a[f"hip_{free}"] += np.radians(65) * knee_up
        a[f"knee_{free}"] += np.radians(90) * knee_up
        a[f"hip_{planted}"] -= np.radians(10) * knee_up
        a[f"knee_{planted}"] += np.radians(15) * pose.bump(t, takeoff - 0.2, takeoff + 0.05)
        # The arm opposite the raised knee swings forward and up.
        a[f"fwd_{planted}"] += np.radians(70) * knee_up
        a[f"fwd_{free}"] -= np.radians(25) * knee_up
        segment.support[:] = np.where((knee_up > 0.3) & ~air, LEFT if planted == "l" else RIGHT, segment.support)
    for leg in LEG:
        a[f"elbow_{leg}"] += np.radians(60)
    return segment


MOVE_ACTIONS = {
    "march": march, "tiptoe": tiptoe, "sneak": sneak, "limp": limp, "carry": carry, "stumble": stumble,
    "jog_in_place": jog_in_place, "zigzag": zigzag, "walk_diagonal": walk_diagonal,
    "stairs_up": stairs_up, "stairs_down": stairs_down, "step_over": step_over, "spin": spin,
    "jumping_jacks": jumping_jacks, "jump_over": jump_over, "jump_backward": jump_backward, "jump_turn": jump_turn,
    "jump_sideways": jump_sideways, "skip": skip,
}
ACTIONS.update(MOVE_ACTIONS)
