"""Bowed strings: violin, erhu, cello.

The fretting (left) hand slides along the neck with the pitch and its fingers press on each
note; the bow (right) hand draws the bow through a contact point, changing direction on every
note (:meth:`~tribert.data.synth.rig.Rig.bow_pos`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tribert.data.synth.geometry import Frame2D, ellipse_pts, rotate, unit
from tribert.data.synth.rig import Rig, fret_curl
from tribert.skeleton import INDEX


@dataclass(frozen=True)
class BowStroke:
    """How the right arm draws the bow: the wrist moves along ``direction`` (from the contact
    point towards the frog) at ``reach`` + ``travel`` * bow position (in [-1, 1]) from the
    contact point; the bow lies along the same line."""

    direction: tuple[float, float]
    reach: float  # wrist distance from the contact point at mid-bow
    travel: float  # how far the wrist moves either way at the ends of the bow
    hand_angle: float  # direction of the bow hand (radians)
    length: float  # bow length, frog to tip


BOW_STROKES = {
    # The violin's bow crosses the strings from the image left, rising towards the chin.
    "violin": BowStroke((-0.94, 0.34), 0.47, 0.3, float(np.arctan2(-0.34, 0.94) + 0.9), 0.95),
    "erhu": BowStroke((-1.0, 0.06), 0.47, 0.3, 0.5, 0.9),
    "cello": BowStroke((-1.0, 0.05), 0.38, 0.24, 0.6, 0.95),
}


def _bow(r: Rig, hand: np.ndarray, direction: np.ndarray, length: float) -> None:
    """A bow held at the frog in ``hand`` [T, 2], lying along ``direction`` [T, 2]."""
    tip = hand + direction * length
    frog = hand - direction * 0.04
    normal = rotate(direction, np.pi / 2) * 0.018
    r.line(8, (235, 228, 205), 0.012, frog + normal, tip + normal)  # hair
    r.line(8, (70, 40, 20), 0.022, frog, tip)  # stick


def _bow_arm(r: Rig, contact: np.ndarray, stroke: BowStroke) -> None:
    """The right arm bows through ``contact`` ([T, 2] or [2]); the bow is drawn once the wrist
    is solved (it hangs from the wrist, not from the target)."""
    T = r.T
    bow = r.bow_pos()
    direction = unit(np.broadcast_to(np.array(stroke.direction), (T, 2)))
    r.targets["right"] = contact + direction * (stroke.reach + stroke.travel * bow)[:, None]
    r.hand_angle["right"] = np.full(T, stroke.hand_angle)
    r.curl["right"] = np.full((T, 5), 0.6)
    r.after.append(lambda kp: _bow(r, kp[:, INDEX["right_wrist"]], -direction, stroke.length))


def rig_violin(r: Rig) -> None:
    T = r.T
    r.head_tilt = r.head_tilt + 0.28  # chin on the instrument (towards the performer's left)
    bob = 0.04 * np.sin(2 * np.pi * 0.3 * r.t) + 0.05 * r.pulse(tau=0.2)
    fr = Frame2D(r.held((0.14, -0.15)), 0.18 + 0.15 * bob, T)  # u: chin rest -> scroll
    r.poly(4, r.col, fr(ellipse_pts(0.14, 0, 0.12, 0.105)), outline=(60, 25, 10))
    r.poly(4, r.col, fr(ellipse_pts(0.33, 0, 0.095, 0.085)), outline=(60, 25, 10))
    r.line(4, r.col2, 0.035, fr((0.12, 0)), fr((0.64, 0)))  # fingerboard and neck
    r.poly(4, (60, 25, 10), fr(ellipse_pts(0.67, 0, 0.035, 0.03, 8)))  # scroll
    p = r.pitch_pos()
    r.targets["left"] = fr.point(0.62 - 0.22 * p, 0.07)
    r.hand_angle["left"] = fr.axis(-np.pi / 2 - 0.5)
    r.curl["left"] = fret_curl(r)
    r.elbow_pref["left"] = np.array([0.2, 1.0])
    r.elbow_pref["right"] = np.array([-1.0, 0.2])  # the bow arm is raised to the shoulder
    _bow_arm(r, fr.point(0.2, 0.0), BOW_STROKES["violin"])


def rig_erhu(r: Rig) -> None:
    T = r.T
    r.posture = "sit"
    r.poly(4, (15, 15, 15), ellipse_pts(0.22, 0.97, 0.085, 0.07, 6))  # hexagonal sound box
    r.poly(4, r.col2, ellipse_pts(0.22, 0.97, 0.06, 0.05, 12))  # snake-skin face
    r.line(4, r.col, 0.035, (0.22, 0.93), (0.2, -0.5))  # neck
    r.line(4, r.col, 0.05, (0.19, -0.44), (0.25, -0.44))  # pegs
    r.line(4, r.col, 0.05, (0.18, -0.36), (0.24, -0.36))
    p = r.pitch_pos()
    r.targets["left"] = np.stack([np.full(T, 0.34), -0.2 + 0.6 * p], -1)
    r.hand_angle["left"] = np.full(T, np.pi + 0.25)
    r.curl["left"] = fret_curl(r)
    r.elbow_pref["left"] = np.array([1.0, 0.4])
    _bow_arm(r, np.array([0.21, 0.82]), BOW_STROKES["erhu"])


def rig_cello(r: Rig) -> None:
    T = r.T
    r.posture = "sit"
    r.line(4, (40, 40, 40), 0.02, (0.02, 1.5), (-0.01, 2.17))  # end pin
    r.poly(4, r.col, ellipse_pts(0.02, 1.3, 0.31, 0.34), outline=(50, 20, 5))
    r.poly(4, r.col, ellipse_pts(0.03, 0.82, 0.25, 0.24), outline=(50, 20, 5))
    r.line(4, r.col2, 0.06, (0.02, 1.2), (0.06, -0.1))  # fingerboard/neck
    r.poly(4, (50, 20, 5), ellipse_pts(0.07, -0.15, 0.05, 0.06, 8))  # scroll
    r.line(4, (30, 15, 5), 0.015, (-0.09, 0.98), (-0.07, 1.2))  # f-holes
    r.line(4, (30, 15, 5), 0.015, (0.13, 0.98), (0.12, 1.2))
    p = r.pitch_pos()
    r.targets["left"] = np.stack([0.2 + 0.03 * p, 0.0 + 0.7 * p], -1)
    r.hand_angle["left"] = np.full(T, np.pi - 0.15)
    r.curl["left"] = fret_curl(r)
    r.elbow_pref["left"] = np.array([1.0, 0.0])
    _bow_arm(r, np.array([0.03, 1.06]), BOW_STROKES["cello"])
