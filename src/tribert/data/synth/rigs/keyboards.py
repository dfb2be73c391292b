"""Keyboards: piano and accordion.

Piano: each note is a hit of one hand (the left below middle C) on its key, chords as one hit.
Accordion: the bellows open and close like a bow (the direction turns on each melody note), the
right hand's fingers press the treble keys of the melody, the left hand the bass buttons.
"""

from __future__ import annotations

import numpy as np

from tribert.data.synth.body import SIDES
from tribert.data.synth.geometry import rect_pts
from tribert.data.synth.rig import Rig, board_hits


def rig_piano(r: Rig) -> None:
    T = r.T
    r.posture = "sit"
    x0, x1, y0 = -1.2, 1.2, 0.95
    r.poly(4, r.col, rect_pts(x0 - 0.05, y0 - 0.08, x1 + 0.05, 2.17))  # case in front of the player
    r.poly(4, r.col2, rect_pts(x0, y0, x1, y0 + 0.12))  # white keys
    for xk in np.arange(x0 + 0.05, x1, 0.085):  # key gaps and black keys
        r.line(4, (120, 120, 120), 0.005, (xk, y0), (xk, y0 + 0.12))
    for i, xk in enumerate(np.arange(x0 + 0.09, x1 - 0.05, 0.085)):
        if i % 7 not in (2, 6):
            r.line(4, (10, 10, 10), 0.035, (xk, y0), (xk, y0 + 0.07))
    r.line(4, (60, 60, 60), 0.03, (x0 - 0.05, y0 + 0.17), (x1 + 0.05, y0 + 0.17))
    split = 60  # the composer's split: left hand below middle C
    kx = lambda p: 1.0 - 2.0 * (np.asarray(p) - r.lo) / (r.hi - r.lo)  # low notes at the player's left
    ky = lambda p: np.full(np.shape(p), y0 + 0.04)
    lifts = board_hits(r, kx, ky, lambda i: "left" if r.pitch[i] < split else "right",
                        {"left": (0.55, y0 + 0.04), "right": (-0.45, y0 + 0.04)}, 0.22, 0.12)
    for side in SIDES:
        r.hand_angle[side] = np.full(T, np.pi / 2 + (0.25 if side == "left" else -0.25))
        r.curl[side] = np.full((T, 5), 0.35) + 0.35 * lifts[side][:, None]
    r.elbow_pref = {"left": np.array([1.0, 0.3]), "right": np.array([-1.0, 0.3])}


def rig_accordion(r: Rig) -> None:
    T = r.T
    # Bellows open and close like a bow: the direction turns on each melody note.
    b = r.bow_pos(full=1.6)
    open_ = 0.09 + 0.07 * b  # extra width of the bellows [T]
    yt, yb = 0.22, 0.88
    kb = r.held((-0.36, 0.0))  # treble keyboard side (performer's right)
    r.poly(4, r.col, np.stack([kb + (-0.06, yt), kb + (0.08, yt), kb + (0.08, yb), kb + (-0.06, yb)], 1))
    r.poly(4, r.col2, np.stack([kb + (-0.04, yt + 0.03), kb + (0.02, yt + 0.03), kb + (0.02, yb - 0.03),
                                kb + (-0.04, yb - 0.03)], 1))
    for k in range(8):
        yy = yt + 0.05 + k * 0.075
        r.line(4, (20, 20, 20), 0.02, kb + (-0.04, yy), kb + (-0.01, yy))
    right_edge = kb[:, 0] + 0.08
    left_edge = right_edge + 0.38 + open_  # bass box moves with the bellows
    n_folds = 7
    for k in range(n_folds):  # folds of the bellows
        xa = right_edge + (left_edge - right_edge) * k / n_folds
        xb = right_edge + (left_edge - right_edge) * (k + 1) / n_folds
        col = (30, 30, 30) if k % 2 else (200, 200, 200)
        y = kb[:, 1]
        r.poly(4, col, np.stack([np.stack([xa, y + yt + 0.03], -1), np.stack([xb, y + yt + 0.03], -1),
                                 np.stack([xb, y + yb - 0.03], -1), np.stack([xa, y + yb - 0.03], -1)], 1))
    y = kb[:, 1]
    box = [np.stack([left_edge, y + yt], -1), np.stack([left_edge + 0.16, y + yt], -1),
           np.stack([left_edge + 0.16, y + yb], -1), np.stack([left_edge, y + yb], -1)]
    r.poly(4, r.col, np.stack(box, 1))
    split = 57
    mel = r.pitch >= split
    p = r.pitch_pos(mask=mel, lo=split)
    r.targets["right"] = np.stack([kb[:, 0] - 0.12, y + yt + 0.08 + 0.5 * (1 - p)], -1)
    r.hand_angle["right"] = np.full(T, 0.15)
    r.curl["right"] = np.full((T, 5), 0.3) + 0.4 * np.clip(r.pulse(r.on[mel], 0.07), 0, 1)[:, None]
    r.targets["left"] = np.stack([left_edge + 0.2, y + 0.55], -1)
    r.hand_angle["left"] = np.full(T, np.pi - 0.2)
    r.curl["left"] = np.full((T, 5), 0.3) + 0.4 * np.clip(r.pulse(r.on[~mel], 0.07), 0, 1)[:, None]
    r.elbow_pref = {"left": np.array([1.0, 0.5]), "right": np.array([-1.0, 0.5])}
