"""Percussion: xylophone, drum kit, congas.

Every hit is a :meth:`~tribert.data.synth.rig.Rig.striker` trajectory: the hand (with its
mallet or stick) rises while it travels to the next target and comes down on it at the onset.
Which hand plays a note follows the instrument (the nearer mallet, the kit piece's side, the
drum); on fast repeats the other hand takes over, as players alternate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tribert.data.synth.body import SIDES
from tribert.data.synth.geometry import ellipse_pts, rect_pts, rotate
from tribert.data.synth.rig import Rig, board_hits
from tribert.data.synth.score import CONGA_LOW, CONGA_MUTE_HI, HAT_CLOSED, HAT_OPEN, KICK, KICK2, SNARE, TOMS
from tribert.skeleton import INDEX


def _alternate_fast_repeats(hands: np.ndarray, onsets: np.ndarray, min_gap: float) -> None:
    """In place: a hand that played less than ``min_gap`` seconds ago hands the next hit to the
    other hand (entries other than "left"/"right", e.g. the kick foot, are left alone)."""
    for i in range(1, len(hands)):
        if hands[i] in SIDES:
            prev = [j for j in range(i) if hands[j] == hands[i]]
            if prev and onsets[i] - onsets[prev[-1]] < min_gap:
                hands[i] = "left" if hands[i] == "right" else "right"


def rig_xylophone(r: Rig) -> None:
    T = r.T
    x0, x1, y0 = -1.05, 1.05, 0.98
    n = 15
    r.line(1, (50, 50, 55), 0.035, (x0 + 0.1, y0 + 0.2), (x0 + 0.1, 2.75))  # stand
    r.line(1, (50, 50, 55), 0.035, (x1 - 0.1, y0 + 0.2), (x1 - 0.1, 2.75))
    r.poly(4, r.col2, rect_pts(x0, y0 + 0.03, x1, y0 + 0.2))  # frame
    w = (x1 - x0) / n
    for i in range(n):  # bars: the low (long) ones at the player's left (image right)
        xa = x1 - (i + 1) * w + 0.01
        h = 0.26 - 0.12 * i / (n - 1)
        r.poly(4, r.col, rect_pts(xa, y0 - h / 2 + 0.1, xa + w - 0.02, y0 + h / 2 + 0.1),
               outline=tuple(int(c * 0.6) for c in r.col))
    bx = lambda p: x1 - ((np.asarray(p) - r.lo) / (r.hi - r.lo) * (n - 1) + 0.5) * w
    by = lambda p: np.full(np.shape(p), y0 + 0.02)
    state = {"left": 0.5, "right": -0.5, "prev": ""}  # last x of each mallet, last hand used

    def hand_for(i: int) -> str:  # the nearer mallet plays; the hands alternate on fast notes
        x = float(bx(r.pitch[i]))
        side = "left" if abs(x - state["left"]) < abs(x - state["right"]) else "right"
        if i > 0 and r.on[i] - r.on[i - 1] < 0.2 and state["prev"] == side:
            side = "right" if side == "left" else "left"
        state[side], state["prev"] = x, side
        return side

    lifts = board_hits(r, bx, lambda p: by(p) - 0.3, hand_for, {"left": (0.45, 0.7), "right": (-0.45, 0.7)},
                       0.3, 0.28)
    # A mallet points down and a little inwards on the hit and flicks up and outwards
    # (away from the body) while the hand rises.
    mallet_dir = {}
    for side in SIDES:
        sgn = 1 if side == "left" else -1
        ang = np.pi / 2 + sgn * 0.3 - sgn * 1.4 * lifts[side]
        mallet_dir[side] = np.stack([np.cos(ang), np.sin(ang)], -1)  # [T, 2]
        r.hand_angle[side] = ang
        r.curl[side] = np.full((T, 5), 0.75)
    r.elbow_pref = {"left": np.array([1.0, 0.6]), "right": np.array([-1.0, 0.6])}

    def mallets(kp: np.ndarray) -> None:
        for side in SIDES:
            w_ = kp[:, INDEX[f"{side}_wrist"]]
            tip = w_ + mallet_dir[side] * 0.36
            r.line(8, (200, 180, 140), 0.018, w_, tip)
            r.poly(8, (190, 40, 60), tip[:, None] + ellipse_pts(0, 0, 0.04, 0.04, 8)[None])

    r.after.append(mallets)


@dataclass(frozen=True)
class KitPiece:
    """A drum or cymbal of the kit, seen from the front: the top is an ellipse."""

    centre: tuple[float, float]  # centre of the top, person units
    rx: float
    ry: float
    hand: str  # the hand that plays it (fast fills hand hits over to the other one)


DRUM_KIT = {
    "hat": KitPiece((-0.66, 0.72), 0.2, 0.035, "right"), "snare": KitPiece((0.42, 1.0), 0.2, 0.065, "left"),
    "tom1": KitPiece((-0.17, 0.86), 0.15, 0.055, "right"), "tom2": KitPiece((0.17, 0.84), 0.15, 0.055, "left"),
    "floor": KitPiece((0.75, 1.18), 0.2, 0.065, "left"),
}
# GM drum key -> kit piece; the low toms (and anything else) go to the floor tom.
KIT_PIECE_OF_KEY = {HAT_CLOSED: "hat", HAT_OPEN: "hat", SNARE: "snare", TOMS[0]: "tom1", TOMS[1]: "tom1",
                    TOMS[2]: "tom2", TOMS[3]: "tom2"}
CONGA_DRUMS = {"hi": ((-0.3, 1.0), 0.19), "lo": ((0.32, 1.05), 0.22)}  # drum -> (centre of the head, radius)


def rig_drum(r: Rig) -> None:
    T = r.T
    r.posture = "sit"
    shell, metal = r.col, r.col2
    r.line(1, (90, 90, 90), 0.02, (-0.66, 0.72), (-0.66, 2.17))  # hi-hat stand
    r.line(1, (90, 90, 90), 0.02, (-0.8, 0.28), (-0.85, 2.17))  # crash stand
    r.poly(1, metal, ellipse_pts(-0.8, 0.28, 0.24, 0.04, 16))  # crash cymbal
    for name, piece in DRUM_KIT.items():
        (cx, cy), rx, ry = piece.centre, piece.rx, piece.ry
        if name == "hat":
            r.poly(4, metal, ellipse_pts(cx, cy, rx, ry, 16))
            r.poly(4, metal, ellipse_pts(cx, cy + 0.04, rx, ry, 16))
            continue
        depth = 0.3 if name == "floor" else 0.16
        r.poly(4, shell, rect_pts(cx - rx, cy, cx + rx, cy + depth))
        r.poly(4, shell, ellipse_pts(cx, cy + depth, rx, ry, 14))
        r.poly(4, (235, 235, 230), ellipse_pts(cx, cy, rx, ry, 16), outline=(120, 120, 120))
    r.poly(4, shell, ellipse_pts(0.0, 1.65, 0.47, 0.47, 28))  # bass drum
    r.poly(4, (240, 240, 235), ellipse_pts(0.0, 1.65, 0.41, 0.41, 28))
    r.line(4, shell, 0.06, (-0.25, 1.72), (0.25, 1.72))  # logo stripe
    pieces = [KIT_PIECE_OF_KEY.get(int(k), "floor") for k in r.pitch]
    kick = np.isin(r.pitch, (KICK, KICK2))
    hands = np.array(["foot" if kick[i] else DRUM_KIT[p].hand for i, p in enumerate(pieces)], dtype=object)
    _alternate_fast_repeats(hands, r.on, 0.11)  # fast fills
    for side in SIDES:
        m = hands == side
        tgt = np.array([DRUM_KIT[pieces[i]].centre for i in np.flatnonzero(m)], float).reshape(-1, 2)
        t_u, first = np.unique(r.on[m], return_index=True)
        pos, lift = r.striker(t_u, tgt[first], np.array(DRUM_KIT["hat" if side == "right" else "snare"].centre),
                              rise=0.25)
        r.targets[side] = pos + np.stack([np.zeros(T) + (0.1 if side == "right" else -0.1), -0.3 - 0.25 * lift], -1)
        sgn = 1 if side == "left" else -1
        r.hand_angle[side] = np.pi / 2 + sgn * 0.5 + sgn * 0.9 * lift
        r.curl[side] = np.full((T, 5), 0.8)
        r.knee_lift[side] = np.zeros(T)

        def sticks(kp: np.ndarray, side: str = side, lift: np.ndarray = lift, sgn: int = sgn) -> None:
            w_ = kp[:, INDEX[f"{side}_wrist"]]
            d = rotate(np.broadcast_to(np.array([0.0, 1.0]), (T, 2)), -sgn * 0.35 + sgn * 1.3 * lift)
            r.line(8, (225, 200, 150), 0.022, w_ - d * 0.05, w_ + d * 0.42)

        r.after.append(sticks)
    r.elbow_pref = {"left": np.array([0.6, 1.0]), "right": np.array([-0.6, 1.0])}
    _, lift_kick = r.striker(np.unique(r.on[kick]), np.zeros((len(np.unique(r.on[kick])), 2)), np.zeros(2), rise=0.2)
    r.knee_lift["right"] = 0.12 * lift_kick  # the kick pedal foot


def rig_congas(r: Rig) -> None:
    T = r.T
    for (cx, cy), rx in CONGA_DRUMS.values():
        body = np.array([(cx - rx, cy), (cx - rx - 0.06, cy + 0.6), (cx - rx + 0.03, 2.72), (cx + rx - 0.03, 2.72),
                         (cx + rx + 0.06, cy + 0.6), (cx + rx, cy)])
        r.poly(4, r.col, body, outline=tuple(int(c * 0.55) for c in r.col))
        for yy in (cy + 0.08, cy + 1.4):
            r.line(4, (70, 70, 70), 0.025, (cx - rx - 0.02, yy), (cx + rx + 0.02, yy))
        r.poly(4, r.col2, ellipse_pts(cx, cy, rx, 0.06, 18), outline=(90, 70, 40))
    drum_of = np.where(r.pitch == CONGA_LOW, "lo", "hi")
    hands = np.where(drum_of == "hi", "right", "left").astype(object)
    _alternate_fast_repeats(hands, r.on, 0.2)
    for side in SIDES:
        m = hands == side
        sgn = 1 if side == "left" else -1
        tgt = np.array([CONGA_DRUMS[d][0] for d in drum_of[m]], float).reshape(-1, 2) + np.array([0.06 * sgn, -0.02])
        t_u, first = np.unique(r.on[m], return_index=True)
        pos, lift = r.striker(t_u, tgt[first], np.array(CONGA_DRUMS["lo" if side == "left" else "hi"][0]), rise=0.25)
        r.targets[side] = pos + np.stack([np.zeros(T), -0.1 - 0.3 * lift], -1)
        r.hand_angle[side] = np.full(T, np.pi / 2 - sgn * 0.25)
        # Open tones are played with a flat hand; muted tones with the fingers held together.
        muted = r.pulse(r.on[m][r.pitch[m] == CONGA_MUTE_HI], tau=0.1)
        r.curl[side] = (0.1 + 0.3 * np.clip(muted, 0, 1))[:, None] * np.ones(5)
    r.elbow_pref = {"left": np.array([1.0, 0.2]), "right": np.array([-1.0, 0.2])}
