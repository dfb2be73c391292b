"""Winds: flute, clarinet, saxophone, trumpet, tuba, bassoon, bagpipe.

The fingers follow the pitch (:meth:`~tribert.data.synth.rig.Rig.fingering`: how many tone
holes or valves are closed), the shoulders rise with a breath before each phrase, and the
instrument moves with the body (and, for some, with the loudness).
"""

from __future__ import annotations

import numpy as np

from tribert.data.synth.geometry import Colour, Frame2D, ellipse_pts, rect_pts, rotate, unit
from tribert.data.synth.rig import Rig


def _wind_curls(r: Rig) -> None:
    """Both hands close tone holes: left hand the upper three, right hand the lower three."""
    holes = r.fingering()  # [T, 6]
    for side, cols in (("left", slice(0, 3)), ("right", slice(3, 6))):
        c = np.full((r.T, 5), 0.25)
        c[:, 1:4] = 0.15 + 0.6 * holes[:, cols]
        r.curl[side] = c


def _tube(r: Rig, a: np.ndarray, b: np.ndarray, width: float, colour: Colour, rings: Colour | None = None,
          layer: int = 4, n_rings: int = 4) -> None:
    """A straight tube from ``a`` to ``b`` ([T, 2] each), with ``n_rings`` key rings across it."""
    r.line(layer, colour, width, a, b)
    if rings is not None:
        for k in range(1, n_rings + 1):
            c = a + (b - a) * (k / (n_rings + 1))
            d = rotate(unit(b - a), np.pi / 2) * width * 0.55
            r.line(layer, rings, width * 0.35, c - d, c + d)


def _valve_curl(r: Rig, n_valves: int) -> np.ndarray:
    """Brass: the right hand's fingers from the index on press one valve each. [T, 5]"""
    valves = r.fingering()[:, :n_valves]
    c = np.full((r.T, 5), 0.2)
    c[:, 1:1 + n_valves] = 0.15 + 0.55 * valves
    return c


def _wind_common(r: Rig) -> None:
    """Breathing (shoulders and head rise before a phrase) and tone-hole fingering."""
    br = r.breath()
    r.shoulder_dy = -0.05 * br
    r.head_dy = r.head_dy - 0.02 * br
    _wind_curls(r)


def rig_flute(r: Rig) -> None:
    T = r.T
    _wind_common(r)
    tilt = 0.1 + 0.05 * np.sin(2 * np.pi * 0.25 * r.t) + 0.03 * r.pulse(tau=0.25)
    fr = Frame2D(r.held((0.0, -0.3)), np.pi - tilt, T)  # u axis towards the image left
    _tube(r, fr((-0.12, 0)), fr((1.0, 0)), 0.045, r.col, r.col2, n_rings=8)
    # u points to the image left, so v points up: the hands hold the flute from below,
    # fingers over it.
    r.targets["left"] = fr.point(0.3, -0.2)
    r.targets["right"] = fr.point(0.72, -0.2)
    r.hand_angle["left"] = np.full(T, -np.pi / 2 - 0.35)
    r.hand_angle["right"] = np.full(T, -np.pi / 2 - 0.15)
    r.thumb = {"left": -1.0, "right": 1.0}
    r.elbow_pref = {"left": np.array([0.4, 1.0]), "right": np.array([-0.6, 1.0])}


def rig_clarinet(r: Rig) -> None:
    T = r.T
    length, width = 1.05, 0.055
    _wind_common(r)
    lift = 0.18 * np.convolve(r.envelope() * np.interp(r.t, r.on, r.vel / 127.0) if len(r.on) else np.zeros(T),
                              np.ones(3) / 3, mode="same")
    fr = Frame2D(r.held((0.0, -0.3)), 1.45 - lift, T)  # down from the mouth; the bell rises when loud
    _tube(r, fr((0, 0)), fr((length, 0)), width, r.col, r.col2, n_rings=5)
    r.poly(4, r.col, fr(np.array([(length - 0.12, -width / 2), (length + 0.02, -0.085), (length + 0.02, 0.085),
                                  (length - 0.12, width / 2)])))
    r.targets["left"] = fr.point(0.3 * length, -0.09)
    r.targets["right"] = fr.point(0.66 * length, 0.09)
    r.hand_angle["left"] = fr.axis(np.pi / 2 + 0.2)  # across the tube
    r.hand_angle["right"] = fr.axis(-np.pi / 2 - 0.2)
    r.elbow_pref = {"left": np.array([1.0, 0.5]), "right": np.array([-1.0, 0.5])}


def rig_saxophone(r: Rig) -> None:
    T = r.T
    _wind_common(r)
    r.sway = r.sway * 2.0  # saxophonists move
    swing = 0.08 * np.sin(2 * np.pi * 0.35 * r.t + r.rng.uniform(0, 6)) + 0.06 * r.pulse(tau=0.3)
    fr = Frame2D(r.held((0.0, -0.3)), swing, T)
    path = np.array([(0.0, 0.0), (-0.06, 0.08), (-0.12, 0.26), (-0.2, 0.65), (-0.22, 0.98), (-0.12, 1.1),
                     (0.0, 1.04), (0.08, 0.9)])
    r.line(4, r.col, 0.045, fr(path[:3]))
    r.line(4, r.col, 0.1, fr(path[2:]))
    r.poly(4, r.col, fr(np.array([(0.02, 0.95), (0.2, 0.68), (0.02, 0.62), (0.06, 0.8)])))
    r.poly(4, r.col2, fr(ellipse_pts(0.11, 0.65, 0.1, 0.05, 12)))  # bell opening
    for k in range(5):
        r.poly(4, (250, 235, 180), fr(ellipse_pts(-0.13 - 0.02 * k, 0.35 + 0.12 * k, 0.02, 0.02, 6)))
    r.targets["left"] = fr.point(-0.04, 0.3)
    r.targets["right"] = fr.point(-0.12, 0.72)
    r.hand_angle["left"] = fr.axis(np.pi - 0.2)
    r.hand_angle["right"] = fr.axis(0.1)
    r.elbow_pref = {"left": np.array([1.0, 0.5]), "right": np.array([-1.0, 0.4])}


def rig_trumpet(r: Rig) -> None:
    T = r.T
    _wind_common(r)
    loud = np.interp(r.t, r.on, r.vel / 127.0) * r.envelope() if len(r.on) else np.zeros(T)
    fr = Frame2D(r.held((0.0, -0.3)), np.pi - 0.3 + 0.15 * loud, T)  # down to the image left, rises when loud
    # u points to the image left, v up: the valve casing hangs below the lead pipe; the right
    # hand's fingers press the valves from below, the left hand holds the bell pipe.
    _tube(r, fr((0, 0)), fr((0.6, 0)), 0.03, r.col)
    r.poly(4, r.col, fr(rect_pts(0.18, -0.03, 0.36, -0.13)))  # valve casing
    r.poly(4, r.col, fr(np.array([(0.5, -0.035), (0.75, -0.13), (0.75, 0.13), (0.5, 0.035)])))  # bell
    r.poly(4, r.col2, fr(ellipse_pts(0.75, 0, 0.04, 0.13, 14)))
    r.line(4, r.col, 0.025, fr((0.2, -0.13)), fr((0.45, -0.15)), fr((0.5, -0.03)))
    r.targets["right"] = fr.point(0.27, -0.36)
    r.hand_angle["right"] = fr.axis(np.pi / 2 + 0.1)
    r.curl["right"] = _valve_curl(r, 3)
    r.targets["left"] = fr.point(0.45, -0.3)
    r.hand_angle["left"] = fr.axis(np.pi / 2 - 0.3)
    r.curl["left"] = np.full((T, 5), 0.7)
    r.elbow_pref = {"left": np.array([1.0, 0.8]), "right": np.array([-1.0, 0.5])}


def rig_tuba(r: Rig) -> None:
    T = r.T
    r.posture = "sit"
    _wind_common(r)
    r.shoulder_dy = -0.07 * r.breath()
    rock = 0.03 * np.sin(2 * np.pi * 0.2 * r.t)
    fr = Frame2D(np.stack([np.zeros(T), 0.75 + rock], -1), 0.0, T)
    r.poly(4, r.col, fr(ellipse_pts(-0.05, 0.05, 0.33, 0.42)), outline=r.col2)
    r.poly(4, r.col2, fr(ellipse_pts(-0.05, 0.05, 0.17, 0.25)))
    # The bell rises past the player's left shoulder (image right), clear of the face.
    r.poly(4, r.col, fr(np.array([(0.02, -0.3), (0.22, -1.12), (0.82, -1.08), (0.3, -0.25)])), outline=r.col2)
    r.poly(4, r.col2, fr(rotate(ellipse_pts(0, 0, 0.3, 0.07, 20), 0.05) + np.array([0.52, -1.1])))
    r.line(4, r.col, 0.03, r.held((0.0, -0.3)), r.held((-0.12, -0.15)), fr((-0.25, -0.3)))  # lead pipe
    for k in range(4):
        r.poly(4, (200, 200, 200), fr(rect_pts(-0.42 + 0.06 * k, -0.18, -0.38 + 0.06 * k, 0.02)))
    r.targets["right"] = fr((-0.3, -0.25))
    r.hand_angle["right"] = np.full(T, np.pi / 2 - 0.1)
    r.curl["right"] = _valve_curl(r, 4)
    r.targets["left"] = fr((0.3, 0.1))
    r.hand_angle["left"] = np.full(T, np.pi - 0.3)
    r.curl["left"] = np.full((T, 5), 0.7)
    r.elbow_pref = {"left": np.array([1.0, 0.3]), "right": np.array([-1.0, 0.3])}


def rig_bassoon(r: Rig) -> None:
    T = r.T
    _wind_common(r)
    sway = 0.03 * np.sin(2 * np.pi * 0.2 * r.t)
    p0 = r.held((-0.3, 1.3))
    angle = np.arctan2(-2.15, 0.72) + sway
    fr = Frame2D(p0, angle, T)
    L = 2.25
    _tube(r, fr((0, 0)), fr((L, 0)), 0.085, r.col, None)
    r.line(4, (60, 30, 15), 0.1, fr((0, 0)), fr((0.45, 0)))  # boot joint
    r.poly(4, r.col2, fr(rect_pts(L - 0.03, -0.06, L + 0.02, 0.06)))  # bell ring
    r.line(4, r.col2, 0.018, fr((1.72, 0.02)), r.held((0.12, -0.35)), r.held((0.02, -0.3)))  # bocal
    r.targets["left"] = fr.point(1.3, -0.06)
    r.targets["right"] = fr.point(0.65, 0.06)
    r.hand_angle["left"] = fr.axis(np.pi / 2 + 0.3)
    r.hand_angle["right"] = fr.axis(-np.pi / 2)
    r.elbow_pref = {"left": np.array([1.0, 0.3]), "right": np.array([-1.0, 0.5])}


def rig_bagpipe(r: Rig) -> None:
    T = r.T
    _wind_common(r)
    squeeze = 0.5 + 0.5 * np.sin(2 * np.pi * 0.3 * r.t + r.rng.uniform(0, 6))  # arm squeezes the bag
    c = r.held((0.42, 0.38))
    for k, (dx, top) in enumerate(((0.5, -0.95), (0.68, -0.85), (0.85, -0.7))):  # drones over the shoulder
        r.line(1, (25, 25, 25), 0.04, c + (0.02 * k - 0.05, -0.05), r.held((dx, top)))
        r.line(1, (240, 235, 220), 0.05, r.held((dx, top)), r.held((dx + 0.01, top - 0.05)))
    bag = c[:, None] + ellipse_pts(0, 0, 0.27, 0.18, 18)[None] * np.stack([np.ones(T), 1 - 0.2 * squeeze], -1)[:, None]
    r.poly(4, r.col, bag)
    for k in (-0.1, 0.05):
        r.line(4, r.col2, 0.02, c + (-0.2, k), c + (0.2, k + 0.03))
    r.line(4, (25, 25, 25), 0.025, r.held((0.02, -0.3)), c + (-0.2, -0.08))  # blowpipe
    fr = Frame2D(r.held((0.05, 0.3)), np.pi / 2 - 0.04, T)
    _tube(r, fr((0, 0)), fr((0.7, 0)), 0.05, (25, 25, 25), (230, 225, 210), n_rings=2)
    r.targets["left"] = fr.point(0.22, 0.09) + np.stack([0.03 * squeeze, np.zeros(T)], -1)
    r.targets["right"] = fr.point(0.55, -0.09)
    r.hand_angle["left"] = np.full(T, np.pi - 0.1)
    r.hand_angle["right"] = np.full(T, 0.1)
    r.elbow_pref = {"left": np.array([1.0, -0.3]), "right": np.array([-1.0, 0.4])}
