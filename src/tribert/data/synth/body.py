"""The performer's body: the skeleton template, two-bone arms, the parametric hand, the look.

A performer is a 68-keypoint skeleton (:mod:`tribert.skeleton`: 26 body points + 21 per hand) in
*person units*: 1 unit = neck-to-hip length, neck at the origin, x to the right of the image,
y down. The performer faces the camera, so their left side is on the image's right. The torso,
head and legs come from a fixed template (standing or seated); elbows and wrists come from
:func:`arm_ik`, the fingers from :func:`hand_points`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tribert.data.synth.geometry import Colour, Shape, ellipse_pts, hsv, rect_pts, rotate, unit
from tribert.skeleton import INDEX, LEFT_HAND_START, NUM_HAND, RIGHT_HAND_START

SIDES = ("left", "right")  # the performer's own left / right
HAND_START = {"left": LEFT_HAND_START, "right": RIGHT_HAND_START}

UPPER_ARM, FOREARM = 0.58, 0.52  # person units
HAND_SIZE = 0.43  # hand length (wrist to middle tip) is ~0.75 * HAND_SIZE

# Template body points (person units, neck at the origin). Elbows and wrists come from the IK.
HEAD = {"nose": (0.0, -0.40), "left_eye": (0.07, -0.47), "right_eye": (-0.07, -0.47),
        "left_ear": (0.175, -0.43), "right_ear": (-0.175, -0.43), "head": (0.0, -0.73)}
HEAD_CENTRE = (0.0, -0.45)  # centre of the drawn head ellipse (moves with the head points)
TORSO = {"neck": (0.0, 0.0), "left_shoulder": (0.36, 0.05), "right_shoulder": (-0.36, 0.05),
         "left_hip": (0.19, 1.0), "right_hip": (-0.19, 1.0), "hip": (0.0, 1.0)}
LEGS = {
    "stand": {"left_knee": (0.2, 1.85), "right_knee": (-0.2, 1.85), "left_ankle": (0.21, 2.65),
              "right_ankle": (-0.21, 2.65), "left_big_toe": (0.15, 2.77), "right_big_toe": (-0.15, 2.77),
              "left_small_toe": (0.28, 2.75), "right_small_toe": (-0.28, 2.75),
              "left_heel": (0.21, 2.71), "right_heel": (-0.21, 2.71)},
    # Seated, seen from the front: the thighs point at the camera, so the knees sit just below
    # and outside the hips and the shins hang straight down.
    "sit": {"left_knee": (0.33, 1.27), "right_knee": (-0.33, 1.27), "left_ankle": (0.35, 2.05),
            "right_ankle": (-0.35, 2.05), "left_big_toe": (0.29, 2.16), "right_big_toe": (-0.29, 2.16),
            "left_small_toe": (0.42, 2.14), "right_small_toe": (-0.42, 2.14),
            "left_heel": (0.35, 2.1), "right_heel": (-0.35, 2.1)},
}
FLOOR = {"stand": 2.78, "sit": 2.17}  # y of the floor under the feet


def arm_ik(shoulder: np.ndarray, target: np.ndarray, pref: np.ndarray,
           l1: float = UPPER_ARM, l2: float = FOREARM) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone IK. shoulder, target: [T, 2]; pref: [2] the side the elbow bends to.

    Returns (elbow [T, 2], wrist [T, 2]); an unreachable target is pulled in along the line.
    """
    d = target - shoulder
    dist = np.linalg.norm(d, axis=-1)
    reach = np.clip(dist, abs(l1 - l2) + 1e-3, l1 + l2 - 1e-3)
    u = unit(d)
    wrist = shoulder + u * reach[:, None]
    cos_a = np.clip((l1 ** 2 + reach ** 2 - l2 ** 2) / (2 * l1 * reach), -1, 1)
    a = np.arccos(cos_a)
    e1 = shoulder + l1 * rotate(u, a)
    e2 = shoulder + l1 * rotate(u, -a)
    pick = ((e1 - shoulder) @ pref) >= ((e2 - shoulder) @ pref)
    return np.where(pick[:, None], e1, e2), wrist


# Hand model (local u along the hand, v towards the thumb), in units of HAND_SIZE.
_FINGER_BASE = np.array([(0.38, 0.09), (0.40, 0.03), (0.38, -0.03), (0.35, -0.085)])  # index..pinky MCP
_FINGER_SEG = np.array([0.17, 0.11, 0.09])
_FINGER_SCALE = np.array([0.95, 1.05, 1.0, 0.8])
_FINGER_SPREAD = np.array([0.12, 0.03, -0.06, -0.16])
_THUMB = np.array([(0.08, 0.1), (0.18, 0.18), (0.27, 0.24), (0.35, 0.28)])
_THUMB_CURLED = np.array([(0.08, 0.09), (0.17, 0.14), (0.25, 0.12), (0.31, 0.07)])


def hand_points(wrist: np.ndarray, angle: np.ndarray, thumb: float, curl: np.ndarray,
                size: float = HAND_SIZE) -> np.ndarray:
    """The 21 hand keypoints (wrist, thumb 1-4, index 1-4, middle, ring, pinky) for every frame.

    Args:
        wrist: [T, 2]; angle: [T] direction from the wrist to the fingers; thumb: +1/-1 the side
        of the thumb (v axis = u turned +90 degrees); curl: [T, 5] 0 = straight .. 1 = fist
        (thumb, index, middle, ring, pinky). Curled fingers look shorter and bend towards the palm.
    Returns:
        [T, 21, 2]
    """
    T = len(wrist)
    pts = np.zeros((T, NUM_HAND, 2))
    c = np.clip(curl, 0, 1)
    th = _THUMB[None] + (_THUMB_CURLED - _THUMB)[None] * c[:, 0, None, None]  # [T, 4, 2]
    pts[:, 1:5] = th
    for f in range(4):
        cf = c[:, f + 1]  # [T]
        base = np.broadcast_to(_FINGER_BASE[f], (T, 2))
        direction = _FINGER_SPREAD[f] * (1 - cf) - 0.45 * cf  # bend towards the palm side
        pos = base.copy()
        pts[:, 5 + 4 * f] = pos
        for j, seg in enumerate(_FINGER_SEG):
            direction = direction - 0.35 * cf
            length = seg * _FINGER_SCALE[f] * (1 - 0.55 * cf)
            pos = pos + np.stack([np.cos(direction), np.sin(direction)], -1) * length[:, None]
            pts[:, 6 + 4 * f + j] = pos
    pts[..., 1] *= thumb
    return wrist[:, None] + rotate(pts * size, angle[:, None])


@dataclass
class Look:
    """A performer's clothes and skin."""

    skin: Colour
    hair: Colour
    shirt: Colour
    trousers: Colour
    shoes: Colour
    long_sleeves: bool

    @staticmethod
    def random(rng: np.random.Generator) -> "Look":
        skins = [(255, 224, 196), (241, 194, 150), (224, 172, 128), (198, 134, 90), (150, 98, 62), (105, 70, 45)]
        hairs = [(20, 15, 10), (60, 40, 25), (110, 70, 35), (200, 170, 110), (140, 140, 140), (30, 25, 25)]
        return Look(skin=skins[int(rng.integers(len(skins)))], hair=hairs[int(rng.integers(len(hairs)))],
                    shirt=hsv(rng.random(), rng.uniform(0.2, 0.85), rng.uniform(0.3, 0.95)),
                    trousers=hsv(rng.random(), rng.uniform(0.1, 0.5), rng.uniform(0.12, 0.45)),
                    shoes=hsv(rng.random(), rng.uniform(0, 0.3), rng.uniform(0.05, 0.3)),
                    long_sleeves=bool(rng.random() < 0.5))


def body_shapes(posture: str, kp: np.ndarray, head_c: np.ndarray, head_a: np.ndarray, look: Look) -> list[Shape]:
    """The drawn body of a solved performer: stool (seated), legs, shoes, torso, head, arms, hands.

    Args:
        posture: "stand" or "sit"; kp: keypoints [T, 68, 2]; head_c, head_a: head centre [T, 2]
        and tilt [T]; look: clothes and skin.
    """
    T = len(kp)
    out: list[Shape] = []

    def P(name: str) -> np.ndarray:
        return kp[:, INDEX[name]]

    def line(layer: int, colour: Colour, width: float, *names: str) -> None:
        out.append(Shape(layer, "line", colour, np.stack([P(n) for n in names], 1), width))

    if posture == "sit":  # a stool
        out.append(Shape(0, "poly", (70, 50, 35), np.broadcast_to(rect_pts(-0.42, 1.02, 0.42, 1.12), (T, 4, 2))))
        for x in (-0.36, 0.36):
            leg = np.array([(x, 1.1), (x * 1.05, 2.17)])
            out.append(Shape(0, "line", (55, 40, 30), np.broadcast_to(leg, (T, 2, 2)), 0.04))
    for side in SIDES:
        line(2, look.trousers, 0.19, f"{side}_hip", f"{side}_knee", f"{side}_ankle")
        foot = np.stack([P(f"{side}_ankle") + (0, -0.03), P(f"{side}_small_toe"), P(f"{side}_big_toe"),
                         P(f"{side}_heel")], 1)
        out.append(Shape(2, "poly", look.shoes, foot))
    torso = np.stack([P("right_shoulder") + (-0.05, -0.03), P("left_shoulder") + (0.05, -0.03),
                      P("left_hip") + (0.07, 0.06), P("right_hip") + (-0.07, 0.06)], 1)
    out.append(Shape(3, "poly", look.shirt, torso))
    out.append(Shape(3, "line", look.skin, np.stack([P("neck") + (0, 0.02), head_c], 1), 0.13))
    hair = head_c[:, None] + rotate(ellipse_pts(0, -0.025, 0.2, 0.28, 18)[None], head_a[:, None])
    face = head_c[:, None] + rotate(ellipse_pts(0, 0.03, 0.175, 0.235, 18)[None], head_a[:, None])
    out.append(Shape(3, "poly", look.hair, hair))
    out.append(Shape(3, "poly", look.skin, face))
    for eye in ("left_eye", "right_eye"):
        out.append(Shape(3, "line", (30, 20, 20), np.stack([P(eye) - (0.015, 0), P(eye) + (0.015, 0)], 1), 0.035))
    mouth = P("nose") + rotate(np.broadcast_to(np.array([0.0, 0.09]), (T, 2)), head_a)
    out.append(Shape(3, "line", (150, 60, 60), np.stack([mouth - (0.04, 0), mouth + (0.04, 0)], 1), 0.02))
    for side in SIDES:
        line(5, look.shirt, 0.15, f"{side}_shoulder", f"{side}_elbow")
        line(6, look.shirt if look.long_sleeves else look.skin, 0.115, f"{side}_elbow", f"{side}_wrist")
        s0 = HAND_START[side]
        hand = kp[:, s0:s0 + NUM_HAND]
        out.append(Shape(7, "poly", look.skin, hand[:, [0, 2, 5, 17]]))  # palm
        for f in range(5):
            chain = hand[:, [0 if f else 1] + list(range(1 + 4 * f, 5 + 4 * f))] if f else hand[:, 1:5]
            out.append(Shape(7, "line", look.skin, chain, 0.04))
    return out


__all__ = ["SIDES", "HAND_START", "UPPER_ARM", "FOREARM", "HAND_SIZE", "HEAD", "HEAD_CENTRE", "TORSO", "LEGS", "FLOOR",
           "arm_ik", "hand_points", "Look", "body_shapes"]
