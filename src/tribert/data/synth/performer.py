"""One performer: rig the class from the notes, solve the body, dress it.

:func:`build_performer` runs the class's rig (:data:`tribert.data.synth.rigs.RIGS`), then
solves the skeleton for every frame: the template torso, head and legs move with the rig's
sway, tilt, nod, breathing and knee lifts; two-bone IK places elbows and wrists on the rig's
wrist targets; the parametric hand sets the 21 points of each hand. Last, the body's own shapes
(clothes, skin, stool) join the instrument shapes the rig drew.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tribert.data.synth.body import (HAND_START, HEAD, HEAD_CENTRE, LEGS, SIDES, TORSO, Look, arm_ik, body_shapes,
                                     hand_points)
from tribert.data.synth.geometry import Shape, rotate
from tribert.data.synth.rig import Rig
from tribert.data.synth.rigs import RIGS
from tribert.data.synth.score import Note
from tribert.skeleton import INDEX, NUM_HAND, NUM_KEYPOINTS


@dataclass
class Performer:
    """A solved performer in person units: keypoints and shapes for every frame."""

    cls: str
    keypoints: np.ndarray  # [T, 68, 2]
    shapes: list[Shape]
    posture: str
    head_centre: np.ndarray  # [T, 2]
    head_angle: np.ndarray  # [T]

    def bbox(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) over all frames, keypoints and shapes."""
        allp = np.concatenate([self.keypoints.reshape(-1, 2)] + [s.pts.reshape(-1, 2) for s in self.shapes])
        y0 = min(allp[:, 1].min(), self.head_centre[:, 1].min() - 0.3)
        return float(allp[:, 0].min()), float(y0), float(allp[:, 0].max()), float(allp[:, 1].max())


def build_performer(cls: str, notes: list[Note], t: np.ndarray, rng: np.random.Generator, look: Look) -> Performer:
    """Rig, solve and dress one performer.

    Args:
        cls: class name; notes: what they play; t: frame times [T] (seconds).
    Returns:
        the :class:`Performer` in person units (neck of the rest pose at the origin).
    """
    r = Rig(cls, notes, t, rng)
    RIGS[cls](r)
    T = r.T
    kp = np.zeros((T, NUM_KEYPOINTS, 2))
    legs = LEGS[r.posture]
    sit = r.posture == "sit"
    # Torso and head move with the sway; hips follow a little when standing.
    for name, p in TORSO.items():
        w = 1.0 if name in ("neck", "left_shoulder", "right_shoulder") else (0.0 if sit else 0.4)
        kp[:, INDEX[name]] = np.asarray(p) + w * r.sway
    for name in ("left_shoulder", "right_shoulder"):
        kp[:, INDEX[name], 1] += r.shoulder_dy
    neck = kp[:, INDEX["neck"]]
    head_angle = r.head_tilt
    for name, p in HEAD.items():
        kp[:, INDEX[name]] = neck + rotate(np.broadcast_to(np.asarray(p), (T, 2)), head_angle) + \
            np.stack([np.zeros(T), r.head_dy], -1)
    head_centre = neck + rotate(np.broadcast_to(np.asarray(HEAD_CENTRE), (T, 2)), head_angle) + \
        np.stack([np.zeros(T), r.head_dy], -1)
    for name, p in legs.items():
        w = 0.0 if sit or "knee" not in name else 0.15
        kp[:, INDEX[name]] = np.asarray(p) + w * r.sway
    for side in SIDES:  # kick pedal / foot tap: knee up, foot lifts a little
        kp[:, INDEX[f"{side}_knee"], 1] -= r.knee_lift[side]
        for part in ("ankle", "big_toe", "small_toe", "heel"):
            kp[:, INDEX[f"{side}_{part}"], 1] -= 0.3 * r.knee_lift[side]
    for side in SIDES:
        sh = kp[:, INDEX[f"{side}_shoulder"]]
        tgt = r.targets.get(side)
        if tgt is None:  # hanging arm
            tgt = sh + np.array([0.12 if side == "left" else -0.12, 1.0])
        elbow, wrist = arm_ik(sh, np.broadcast_to(tgt, (T, 2)), r.elbow_pref[side])
        kp[:, INDEX[f"{side}_elbow"]] = elbow
        kp[:, INDEX[f"{side}_wrist"]] = wrist
        ang = r.hand_angle[side]
        if ang is None:
            fore = wrist - elbow
            ang = np.arctan2(fore[:, 1], fore[:, 0]) + r.hand_bend[side]
        hand = hand_points(wrist, np.broadcast_to(ang, (T,)), r.thumb[side], r.curl[side])
        s0 = HAND_START[side]
        kp[:, s0:s0 + NUM_HAND] = hand
    for fn in r.after:
        fn(kp)
    shapes = body_shapes(r.posture, kp, head_centre, head_angle, look) + r.shapes
    return Performer(cls, kp, shapes, r.posture, head_centre, np.asarray(head_angle, float) * np.ones(T))


__all__ = ["Performer", "build_performer"]
