"""Crawling on hands and knees: getting down onto all fours over planted toes, crawling
forward knee over knee with the opposite hand, and getting back up.

The legs and arms are solved to where the knees and hands are placed (the hands by a
small Newton solve of the arm's own forward kinematics), so every planted knee, toe and
hand stays put; the stance knee carries the body (Segment.support +-2).
"""

import numpy as np

from retarget.humanml3d import FPS
from retarget.rotation import quat_conj, quat_mul, quat_rotate
from retarget.skeleton import BONE_LENGTHS, JOINT_INDEX

from . import (
    actions_body as body,  # (used inside functions: any of these modules may load first)
)
from . import actions_move as move
from . import pose
from .actions import ACTIONS, LEFT, RIGHT, TOES_DOWN, new_segment, rotations

J = JOINT_INDEX
LEG = {LEFT: "l", RIGHT: "r"}
FOOT = {LEFT: BONE_LENGTHS[J["left_foot"]], RIGHT: BONE_LENGTHS[J["right_foot"]]}
HEEL_UP = np.radians(70)  # the foot's pitch on all fours: toes tucked under, heel up
KNEE_HEIGHT = 0.02  # the knee joint over the floor when kneeling
HAND_HEIGHT = 0.045  # the wrist joint over the floor with the palm flat
HIP_BELOW = 0.083989  # the hip joints below the pelvis joint (rest pose)
HIP_BEHIND = 0.025005


def _moves(t, starts, duration, amounts):
    """A coordinate that moves by amounts[k] during [starts[k], starts[k] + duration]
    (smoothly), and its swing progress (0..1 inside a move, 0 outside)."""
    value, swing = np.zeros_like(t), np.zeros_like(t)
    for start, amount in zip(starts, amounts):
        s = np.clip((t - start) / duration, 0, 1)
        value += amount * pose.smoothstep(s)
        swing = np.where((s > 0) & (s < 1), s, swing)
    return value, swing


def crawl(rng, seconds):
    """Down onto hands and knees, crawl forward, back up. The body pitch is chosen so the
    hands reach the floor just short of straight arms."""
    moves = int(rng.integers(4, 7))  # knee moves; the hands move with the opposite knee
    step_time = rng.uniform(0.55, 0.75)
    down = rng.uniform(1.4, 1.8)
    lead = LEFT if rng.random() < 0.5 else RIGHT
    crawling = moves * step_time + 0.3
    segment, t = new_segment("crawl", {"count": moves, "side": "left" if lead == LEFT else "right"},
                             0.3 + down + crawling + down + 0.3)
    a = segment.angles
    start, end = 0.3 + down, 0.3 + down + crawling  # on all fours between these
    # Progress of getting down (0 standing .. 1 on all fours) and back up.
    u = pose.smoothstep((t - 0.3) / down) - pose.smoothstep((t - end) / down)

    # --- the legs -----------------------------------------------------------------------
    # Kneeling: toes where they stood, heel up, knee on the floor a shin's length ahead,
    # thigh upright over it. Positions are (ahead, up) from the standing ankle.
    toe = {s: FOOT[s] * np.cos(TOES_DOWN) for s in (LEFT, RIGHT)}
    knelt_ankle = {s: np.array([toe[s] - FOOT[s] * np.cos(HEEL_UP), FOOT[s] * np.sin(HEEL_UP)]) for s in (LEFT, RIGHT)}
    shin_back = {s: np.sqrt(move.SHIN[s] ** 2 - (knelt_ankle[s][1] - KNEE_HEIGHT) ** 2) for s in (LEFT, RIGHT)}
    knee0 = max(knelt_ankle[s][0] + shin_back[s] for s in (LEFT, RIGHT))
    thigh = min(move.THIGH.values())
    pitch_all_fours = np.radians(_pitch_for_hands())
    pitch = pitch_all_fours * pose.smoothstep((u - 0.25) / 0.75)
    a["pelvis_pitch"] = pitch
    foot_pitch = TOES_DOWN + (HEEL_UP - TOES_DOWN) * pose.smoothstep((u - 0.2) / 0.8)
    # Knees on the floor leapfrog forward: the lead knee half a stride, then each a whole
    # stride past the other, the last closing up (like feet on stairs); hips ride midway.
    stride = 2 * thigh * np.sin(np.radians(13))
    order = [lead if k % 2 == 0 else -lead for k in range(moves)]
    amounts = [stride / 2 if k in (0, moves - 1) else stride for k in range(moves)]
    starts = [start + 0.15 + k * step_time for k in range(moves)]
    knee_ahead, knee_swing = {}, {}
    for s in (LEFT, RIGHT):
        mine = [k for k in range(moves) if order[k] == s]
        knee_ahead[s], knee_swing[s] = _moves(t, [starts[k] for k in mine], 0.8 * step_time, [amounts[k] for k in mine])
        knee_ahead[s] += knee0
    travel = (knee_ahead[LEFT] + knee_ahead[RIGHT]) / 2 - knee0
    hip_ahead_on_fours = knee0 + travel
    # Standing to kneeling: the hip joints from over the ankles to over the knees.
    standing = move.ANKLE_HEIGHT[LEFT] + 0.999 * (move.THIGH[LEFT] + move.SHIN[LEFT])
    hip_ahead = body._keyframes(u, (0.0, 0.5, 1.0), (0.0, 0.55 * knee0, knee0)) + travel
    for s in (LEFT, RIGHT):
        leg = LEG[s]
        # Getting down and up: legs solved from the hip joint to the ankle (toes planted).
        ankle_ahead = toe[s] - FOOT[s] * np.cos(foot_pitch)
        ankle_up = FOOT[s] * np.sin(foot_pitch)
        hip_up = body._keyframes(u, (0.0, 0.5, 1.0), (standing, 0.55, KNEE_HEIGHT + thigh))
        up_in_pelvis = ankle_up - hip_up
        ahead = ankle_ahead + travel - hip_ahead
        hip, knee = move.leg_ik(s, -up_in_pelvis * np.sin(pitch) + ahead * np.cos(pitch),
                           -(up_in_pelvis * np.cos(pitch) + ahead * np.sin(pitch)))
        # On all fours: the thigh swings about the hip over the knee; the shin lies back
        # along the floor, lifted a little while its knee swings (knee swung out so it
        # clears the floor).
        lifted = np.sin(np.pi * knee_swing[s]) ** 0.7  # up early, down late: the knee does not drag
        abduct = np.radians(20) * lifted
        offset = np.clip((knee_ahead[s] - hip_ahead_on_fours) / (thigh * np.cos(abduct)), -1, 1)
        thigh_angle = np.arcsin(offset)
        # (the shin's direction from straight down, forward positive: back and a little up)
        shin_angle = np.arctan2(-shin_back[s], KNEE_HEIGHT - knelt_ankle[s][1]) - np.radians(25) * lifted
        on_fours = (t >= start) & (t <= end)
        a[f"hip_{leg}"] = np.where(on_fours, thigh_angle + pitch, hip)
        a[f"knee_{leg}"] = np.where(on_fours, thigh_angle - shin_angle, knee)
        # (With the pelvis pitched forward, its own up axis points ahead: turning the leg
        # about it swings the upright thigh out to the side.)
        a[f"leg_yaw_{leg}"] = np.where(on_fours, s * abduct, 0.0)
        a[f"toe_{leg}"] = foot_pitch - TOES_DOWN
    swinging = {s: knee_swing[s] > 0 for s in (LEFT, RIGHT)}
    for s in (LEFT, RIGHT):
        swinging[s][1:] |= swinging[s][:-1]  # the frame it lands still moves it
    on_fours = (t >= start) & (t <= end)
    segment.support[:] = np.where(on_fours, np.where(swinging[LEFT], -2, 2), LEFT)
    a["neck"] -= np.radians(45) * pose.smoothstep((u - 0.4) / 0.6)  # looking ahead, not at the floor
    segment.params["on_all_fours"] = [round(start, 2), round(end, 2)]

    # --- the arms --------------------------------------------------------------------------
    # Where the shoulders go follows from the legs (solve once without the arms), then each
    # hand is placed under its shoulder and moves with the opposite knee.
    from .synth import place_on_ground  # (synth imports this module's registry)

    local, _, joints = place_on_ground(rotations(a), segment, 0.0)
    reach_weight = pose.smoothstep((u - 0.6) / 0.4)
    for s, name in ((LEFT, "left"), (RIGHT, "right")):
        shoulder = joints[:, J[f"{name}_shoulder"]]
        collar = local[:, 0]
        for joint in (J["spine1"], J["spine2"], J["spine3"], J[f"{name}_collar"]):
            collar = quat_mul(collar, local[:, joint])
        moved, swing = _moves(t, [starts[k] for k in range(moves) if order[k] == -s], 0.8 * step_time,
                              [amounts[k] for k in range(moves) if order[k] == -s])
        plant_frame = int(np.ceil(start * FPS))
        hand = np.stack([np.full_like(t, shoulder[plant_frame, 0]),
                         HAND_HEIGHT + 0.06 * pose.bump(swing, 0.0, 1.0),
                         shoulder[plant_frame, 2] + moved], axis=-1)
        # Getting down the hands reach for where they will be planted, getting up they
        # leave from where they were (the reach blends in and out of the arms hanging).
        solved = body.arm_reach(s, quat_rotate(quat_conj(collar), hand - shoulder))
        for column, angle in enumerate(("elev", "fwd", "elbow", "raise")):
            curve = a[f"{angle}_{LEG[s]}"]
            curve[:] += (solved[:, column] - curve) * reach_weight
    return segment


def _pitch_for_hands() -> float:
    """The pelvis pitch (degrees) at which, kneeling upright-thighed, the shoulders stand
    0.49 m over the wrists' height: arms nearly straight down to the floor."""
    from retarget.kinematics import forward_kinematics

    from .actions import ANGLE_NAMES, NEUTRAL

    candidates = np.arange(50.0, 90.0, 0.5)
    angles = {name: np.full(len(candidates), NEUTRAL[name]) for name in ANGLE_NAMES}
    angles["pelvis_pitch"] = np.radians(candidates)
    for leg in ("l", "r"):
        angles[f"hip_{leg}"] = np.radians(candidates)  # thighs upright
    angles["neck"] -= np.radians(45)
    joints = forward_kinematics(rotations(angles), np.zeros((len(candidates), 3)))
    above_knees = joints[:, J["left_shoulder"], 1] - joints[:, J["left_knee"], 1]
    height = above_knees + KNEE_HEIGHT - HAND_HEIGHT
    return float(candidates[np.argmin(np.abs(height - 0.49))])


CRAWL_ACTIONS = {"crawl": crawl}
ACTIONS.update(CRAWL_ACTIONS)
