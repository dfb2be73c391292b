"""Plucked strings: the guitar family (acoustic guitar, ukulele, banjo, electric bass, pipa) and
the guzheng.

The guitar family shares one rig whose geometry is a :class:`Lute` table entry: the fretting
(left) hand slides along the neck with the pitch, the picking (right) hand strokes across the
strings on every onset. The guzheng lies on a stand: the right hand plucks the string of each
note, the left hand presses the strings beyond the bridges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tribert.data.synth.geometry import Colour, Frame2D, ellipse_pts, rect_pts
from tribert.data.synth.rig import Rig, board_hits, fret_curl


@dataclass(frozen=True)
class Lute:
    """A plucked/strummed string instrument held across the body (guitar family), in the
    instrument's own frame: u along the neck (towards the head), v across it."""

    origin: tuple[float, float]  # body centre, person units
    angle: float  # direction of the neck (radians)
    scale: float
    body: str  # "figure8", "round", "solid", "pear"
    neck_end: float  # local u of the head
    strum: float  # amplitude of the picking hand's stroke (local units)
    hand_v: float  # where the picking hand hovers (local v)
    neck: Colour = (74, 44, 20)  # fingerboard colour
    posture: str = "stand"
    left_elbow: tuple[float, float] = (0.3, 1.0)  # the side each elbow bends to
    right_elbow: tuple[float, float] = (-0.8, 0.6)


LUTES = {
    "acoustic_guitar": Lute((-0.15, 0.92), -0.35, 1.0, "figure8", 1.02, 0.28, -0.3, posture="sit"),
    "ukulele": Lute((-0.08, 0.58), -0.4, 0.6, "figure8", 0.95, 0.3, -0.32),
    "banjo": Lute((-0.08, 0.85), -0.5, 0.95, "round", 1.15, 0.15, -0.2, (110, 70, 35)),
    "electric_bass": Lute((-0.1, 0.95), -0.3, 1.0, "solid", 1.3, 0.12, -0.12, (225, 190, 130)),
    # The pipa stands upright on the lap: both elbows point out to the sides.
    "pipa": Lute((0.04, 0.92), -1.35, 1.0, "pear", 0.95, 0.18, -0.2, posture="sit", left_elbow=(1.0, 0.3),
                 right_elbow=(-1.0, 0.5)),
}


def rig_lute(r: Rig) -> None:
    """Any instrument of :data:`LUTES` (the table holds its geometry)."""
    T = r.T
    spec = LUTES[r.cls]
    r.posture = spec.posture
    fr = Frame2D(r.held(spec.origin), spec.angle, T, spec.scale)
    dark = tuple(int(c * 0.45) for c in r.col)
    if spec.body == "figure8":
        r.poly(4, r.col, fr(ellipse_pts(-0.05, 0, 0.25, 0.23)), outline=dark)
        r.poly(4, r.col, fr(ellipse_pts(0.22, 0, 0.19, 0.17)), outline=dark)
        r.poly(4, (25, 15, 10), fr(ellipse_pts(0.12, 0, 0.065, 0.065, 12)))
        neck0 = 0.36
    elif spec.body == "round":  # banjo: white head in a metal rim
        r.poly(4, r.col2, fr(ellipse_pts(0, 0, 0.25, 0.25)))
        r.poly(4, r.col, fr(ellipse_pts(0, 0, 0.21, 0.21)))
        neck0 = 0.22
    elif spec.body == "solid":  # electric bass: offset double cutaway
        r.poly(4, r.col, fr(np.concatenate([ellipse_pts(-0.02, 0.03, 0.26, 0.2, 14, 0.3, 5.0),
                                            ellipse_pts(0.2, -0.02, 0.12, 0.1, 8, 4.2, 7.5)])), outline=dark)
        r.poly(4, r.col2, fr(rect_pts(-0.05, -0.08, 0.1, 0.08)))
        r.line(4, (30, 30, 30), 0.03, fr((0.0, -0.09)), fr((0.0, 0.09)))  # pickup
        neck0 = 0.25
    else:  # pear (pipa)
        r.poly(4, r.col, fr(np.concatenate([ellipse_pts(-0.05, 0, 0.3, 0.22, 14, np.pi / 2, 3 * np.pi / 2),
                                            np.array([(0.35, -0.06), (0.35, 0.06)])])), outline=dark)
        neck0 = 0.35
    r.line(4, spec.neck, 0.055, fr((neck0, 0)), fr((spec.neck_end, 0)))
    r.poly(4, spec.neck, fr(rect_pts(spec.neck_end, -0.05, spec.neck_end + 0.13, 0.05)))
    for v in (-0.02, 0.02):  # strings
        r.line(4, (215, 215, 200), 0.006, fr((-0.18, v)), fr((spec.neck_end, v * 0.6)))
    # Fretting hand slides along the neck with the pitch; fingers press on each note.
    p = r.pitch_pos()
    span = spec.neck_end - neck0
    r.targets["left"] = fr.point(spec.neck_end - 0.1 - 0.75 * span * p, 0.07)
    r.hand_angle["left"] = fr.axis(-np.pi / 2 - 0.3)
    r.curl["left"] = fret_curl(r)
    r.elbow_pref["left"] = np.array(spec.left_elbow)
    # Picking hand: a stroke across the strings on every onset.
    stroke = r.pulse(tau=0.08)
    r.targets["right"] = fr.point(0.05, spec.hand_v + spec.strum * stroke)
    r.hand_angle["right"] = fr.axis(np.pi / 2 - 0.3)
    r.curl["right"] = np.full((T, 5), 0.5) + 0.25 * np.clip(stroke, 0, 1)[:, None]
    r.elbow_pref["right"] = np.array(spec.right_elbow)


def rig_guzheng(r: Rig) -> None:
    T = r.T
    r.posture = "sit"
    x0, x1 = -1.1, 1.15
    top, bot = 0.86, 1.14
    r.line(1, (60, 40, 25), 0.04, (x0 + 0.15, bot), (x0 + 0.12, 2.17))  # stand legs
    r.line(1, (60, 40, 25), 0.04, (x1 - 0.15, bot), (x1 - 0.12, 2.17))
    r.poly(4, r.col, np.array([(x0, top + 0.03), (x1, top), (x1 + 0.02, bot), (x0 - 0.02, bot + 0.03)]),
           outline=tuple(int(c * 0.5) for c in r.col))
    for k in range(7):  # strings from near (low) to far (high), bridges on a diagonal
        yy = bot - 0.03 - k * (bot - top - 0.06) / 6
        r.line(4, r.col2, 0.006, (x0 + 0.05, yy), (x1 - 0.05, yy - 0.02))
        bx = 0.05 + 0.09 * k
        r.poly(4, (250, 250, 245), rect_pts(bx - 0.015, yy - 0.02, bx + 0.015, yy + 0.012))
    sy = lambda p: bot - 0.04 - (bot - top - 0.08) * (np.asarray(p) - r.lo) / (r.hi - r.lo)
    sx = lambda p: np.full(np.shape(p), -0.45)
    lifts = board_hits(r, sx, sy, lambda i: "right", {"left": (0.6, 1.0), "right": (-0.45, 1.0)}, 0.2, 0.1)
    # The left hand presses the strings beyond the bridges, following the pitch, vibrato on long notes.
    p = r.pitch_pos()
    vib = 0.015 * np.sin(2 * np.pi * 5 * r.t) * r.envelope()
    r.targets["left"] = np.stack([np.full(T, 0.62), bot - 0.05 - 0.2 * p + vib], -1)
    r.hand_angle["left"] = np.full(T, np.pi / 2 + 0.4)
    r.hand_angle["right"] = np.full(T, np.pi / 2 - 0.4)
    r.curl["right"] = np.full((T, 5), 0.4) + 0.4 * lifts["right"][:, None]
    r.curl["left"] = np.full((T, 5), 0.3)
