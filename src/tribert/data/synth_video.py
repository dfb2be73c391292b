"""SynthMUSIC video: drawn performers whose motion is driven by the notes they play.

A performer is a 68-keypoint skeleton (:mod:`tribert.skeleton`: 26 body points + 21 per hand)
holding a class-specific instrument drawing. Everything is computed as a continuous function of
time and sampled at the frame times, vectorised over frames:

1. *Signals* from the notes: bow position (direction flips on every note), pluck/strum pulses,
   strike lift (raise before and hit on each onset), pitch position (fretting hand along the
   neck, mallet along the bars), finger patterns for the winds, breathing and body sway.
2. A *rig* per class (:data:`RIGS`) turns the signals into wrist targets, hand angles, finger
   curls and instrument shapes, in *person units* (1 unit = neck-to-hip length, neck at the
   origin, x to the right of the image, y down; the performer faces the camera, so their left
   side is on the image's right).
3. The body is *solved*: two-bone IK for the arms, a parametric 21-point hand, head tilt/nod.
4. The *scene* places one or two performers (left to right), adds a cluttered background and
   camera jitter, draws every frame with Pillow (supersampled for smooth edges) and returns the
   ground-truth keypoints in pixels of the frames, plus a detector-like noisy copy.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tribert.data.synth_audio import (CONGA_LOW, CONGA_MUTE_HI, HAT_CLOSED, HAT_OPEN, INSTRUMENTS,
                                      KICK, KICK2, SNARE, Note)
from tribert.skeleton import INDEX, LEFT_HAND_START, NUM_HAND, NUM_KEYPOINTS, RIGHT_HAND_START

SIDES = ("left", "right")  # the performer's own left / right
_K = INDEX  # keypoint name -> index
_HAND_START = {"left": LEFT_HAND_START, "right": RIGHT_HAND_START}

UPPER_ARM, FOREARM = 0.58, 0.52  # person units
HAND_SIZE = 0.43  # hand length (wrist to middle tip) is ~0.75 * HAND_SIZE

# Template body points (person units, neck at the origin). Elbows and wrists come from the IK.
_HEAD = {"nose": (0.0, -0.40), "left_eye": (0.07, -0.47), "right_eye": (-0.07, -0.47),
         "left_ear": (0.175, -0.43), "right_ear": (-0.175, -0.43), "head": (0.0, -0.73)}
HEAD_CENTRE = (0.0, -0.45)  # centre of the drawn head ellipse (moves with the head points)
_TORSO = {"neck": (0.0, 0.0), "left_shoulder": (0.36, 0.05), "right_shoulder": (-0.36, 0.05),
          "left_hip": (0.19, 1.0), "right_hip": (-0.19, 1.0), "hip": (0.0, 1.0)}
_LEGS = {
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

Colour = tuple[int, int, int]


def _rgb(hex_: str) -> Colour:
    return tuple(int(hex_[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


# Each class keeps its own colours (instrument body, detail), so the picture tells classes apart.
INSTRUMENT_COLOURS: dict[str, tuple[Colour, Colour]] = {
    "accordion": (_rgb("#c0282d"), _rgb("#f2f2f2")), "acoustic_guitar": (_rgb("#d9a45b"), _rgb("#4a2c14")),
    "bagpipe": (_rgb("#2e6b3a"), _rgb("#b3202a")), "banjo": (_rgb("#eeeeea"), _rgb("#8c8c8c")),
    "bassoon": (_rgb("#8a3b1e"), _rgb("#c8c8c8")), "cello": (_rgb("#7a3412"), _rgb("#1a1a1a")),
    "clarinet": (_rgb("#1c1c1c"), _rgb("#d0d0d8")), "congas": (_rgb("#c46a2b"), _rgb("#e8d7b0")),
    "drum": (_rgb("#2456b8"), _rgb("#e6c34a")), "electric_bass": (_rgb("#d12f6b"), _rgb("#f5f5f5")),
    "erhu": (_rgb("#3b2416"), _rgb("#e0cf9a")), "flute": (_rgb("#cfd3dc"), _rgb("#7d828c")),
    "guzheng": (_rgb("#8f2b1d"), _rgb("#f0e6c8")), "piano": (_rgb("#141414"), _rgb("#fafafa")),
    "pipa": (_rgb("#e0b874"), _rgb("#6b3b18")), "saxophone": (_rgb("#e0ad2c"), _rgb("#8a6410")),
    "trumpet": (_rgb("#f2c23a"), _rgb("#9a7412")), "tuba": (_rgb("#d9a736"), _rgb("#6e5010")),
    "ukulele": (_rgb("#f08c28"), _rgb("#5a3210")), "violin": (_rgb("#a8441c"), _rgb("#1a1a1a")),
    "xylophone": (_rgb("#b5651d"), _rgb("#3a3a44")),
}


# --------------------------------------------------------------------------------------------
# Small geometry helpers (vectorised over frames)
# --------------------------------------------------------------------------------------------

def _rot(v: np.ndarray, a: np.ndarray | float) -> np.ndarray:
    """Rotate vectors v [..., 2] by angle a (broadcast over the leading dims), y down."""
    c, s = np.cos(a), np.sin(a)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], axis=-1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def ellipse_pts(cu: float, cv: float, ru: float, rv: float, n: int = 20, a0: float = 0.0,
                a1: float = 2 * np.pi) -> np.ndarray:
    """Points of an ellipse (arc) in local coordinates. [n, 2]"""
    a = np.linspace(a0, a1, n, endpoint=(a1 - a0) < 2 * np.pi - 1e-6)
    return np.stack([cu + ru * np.cos(a), cv + rv * np.sin(a)], axis=-1)


def rect_pts(u0: float, v0: float, u1: float, v1: float) -> np.ndarray:
    return np.array([(u0, v0), (u1, v0), (u1, v1), (u0, v1)], float)


class Frame2D:
    """A moving 2-D coordinate frame: local (u, v) -> person units, per frame.

    Args:
        origin: [T, 2] or [2]; angle: [T] or scalar (direction of the u axis; v is u turned
        by +90 degrees, i.e. clockwise on screen); scale: local unit length.
    """

    def __init__(self, origin: np.ndarray, angle: np.ndarray | float, T: int, scale: float = 1.0):
        self.origin = np.broadcast_to(np.asarray(origin, float), (T, 2))
        self.angle = np.broadcast_to(np.asarray(angle, float), (T,))
        self.scale, self.T = scale, T

    def __call__(self, pts: np.ndarray | tuple) -> np.ndarray:
        """Local points: one point [2] -> [T, 2]; a polygon [K, 2] -> [T, K, 2]; a moving polygon
        [T, K, 2] -> [T, K, 2] (person units). Points whose local position changes per frame:
        :meth:`point`."""
        p = np.asarray(pts, float) * self.scale
        if p.ndim == 1:  # one point -> [T, 2]
            p = np.broadcast_to(p, (self.T, 2))
            return self.origin + _rot(p, self.angle)
        if p.ndim == 2:  # static polygon [K, 2] -> [T, K, 2]
            p = np.broadcast_to(p, (self.T,) + p.shape)
        return self.origin[:, None] + _rot(p, self.angle[:, None])

    def point(self, u: np.ndarray | float, v: np.ndarray | float) -> np.ndarray:
        """A point whose local coordinates may change per frame. u, v: [T] or scalars -> [T, 2]"""
        uv = np.stack(np.broadcast_arrays(np.asarray(u, float), np.asarray(v, float)), axis=-1) * self.scale
        uv = np.broadcast_to(uv, (self.T, 2))
        return self.origin + _rot(uv, self.angle)

    def axis(self, k: float = 0.0) -> np.ndarray:
        """Direction of the u axis turned by k radians. [T]"""
        return self.angle + k


@dataclass
class Shape:
    """One drawn primitive of a performer, in person units for every frame.

    ``kind`` is "poly" (filled polygon) or "line" (polyline of ``width`` person units).
    ``layer`` orders drawing: 0 chair, 1 behind the body, 2 legs, 3 torso/head, 4 instrument,
    5 upper arms, 6 forearms, 7 hands, 8 things held in the hands (bows, sticks, mallets).
    """

    layer: int
    kind: str
    colour: Colour
    pts: np.ndarray  # [T, K, 2]
    width: float = 0.0
    outline: Colour | None = None


# --------------------------------------------------------------------------------------------
# The rig: note-driven signals and body/hand controls for one performer
# --------------------------------------------------------------------------------------------

class Rig:
    """Per-performer controls, filled by a class rig function, then solved into keypoints.

    Args:
        cls: class name; notes: the performer's notes; t: frame times in seconds [T];
        rng: random generator (the clip's).
    """

    def __init__(self, cls: str, notes: list[Note], t: np.ndarray, rng: np.random.Generator):
        self.cls, self.t, self.T, self.rng = cls, np.asarray(t, float), len(t), rng
        arr = np.array([tuple(n) for n in notes], float).reshape(-1, 4)  # [N, 4]
        order = np.argsort(arr[:, 0], kind="stable")
        self.on, self.off, self.pitch, self.vel = arr[order].T  # each [N]
        inst = INSTRUMENTS[cls]
        self.lo, self.hi = inst.low, inst.high
        T = self.T
        self.posture = "stand"
        base, detail = INSTRUMENT_COLOURS[cls]
        k = rng.uniform(0.88, 1.1)  # a little per-clip variation of the instrument's shade
        self.col = tuple(int(np.clip(c * k, 0, 255)) for c in base)
        self.col2 = detail
        # Upper-body sway: slow, random phases; winds/sax sway more.
        f = rng.uniform(0.15, 0.45, 2)
        ph = rng.uniform(0, 2 * np.pi, 2)
        amp = rng.uniform(0.01, 0.035)
        self.sway = np.stack([amp * np.sin(2 * np.pi * f[0] * self.t + ph[0]),
                              0.4 * amp * np.sin(2 * np.pi * f[1] * self.t + ph[1])], axis=-1)  # [T, 2]
        self.head_tilt = 0.04 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * self.t + rng.uniform(0, 6.3))
        self.head_dy = 0.015 * self.pulse(tau=0.15)  # a small nod on the notes
        self.shoulder_dy = np.zeros(T)  # breathing lifts the shoulders (negative = up)
        self.targets: dict[str, np.ndarray] = {}
        self.hand_angle: dict[str, np.ndarray | None] = {"left": None, "right": None}
        self.hand_bend = {"left": 0.0, "right": 0.0}  # added to the forearm direction when no angle
        self.curl = {s: np.full((T, 5), 0.35) for s in SIDES}
        self.elbow_pref = {"left": np.array([0.8, 0.6]), "right": np.array([-0.8, 0.6])}
        self.thumb = {"left": 1.0, "right": -1.0}
        self.knee_lift = {s: np.zeros(T) for s in SIDES}
        self.shapes: list[Shape] = []
        self.after: list[Callable[[np.ndarray], None]] = []  # shape builders that need the solved keypoints

    # ---- shape helpers -------------------------------------------------------------------
    def poly(self, layer: int, colour: Colour, pts: np.ndarray, outline: Colour | None = None) -> None:
        pts = np.asarray(pts, float)
        if pts.ndim == 2:
            pts = np.broadcast_to(pts, (self.T,) + pts.shape)
        self.shapes.append(Shape(layer, "poly", tuple(colour), pts, 0.0, outline))

    def line(self, layer: int, colour: Colour, width: float, *pts: np.ndarray) -> None:
        """A polyline through points given as [T, 2] or [2] each, or one [T, K, 2] array."""
        if len(pts) == 1 and np.asarray(pts[0]).ndim == 3:
            arr = np.asarray(pts[0], float)
        else:
            arr = np.stack([np.broadcast_to(np.asarray(p, float), (self.T, 2)) for p in pts], axis=1)
        self.shapes.append(Shape(layer, "line", tuple(colour), arr, width))

    def held(self, p: np.ndarray | tuple) -> np.ndarray:
        """A point that moves with the upper body (held instruments). [T, 2]"""
        return np.broadcast_to(np.asarray(p, float), (self.T, 2)) + self.sway

    # ---- note-driven signals (continuous in time, sampled at the frame times) -------------
    def pulse(self, onsets: np.ndarray | None = None, tau: float = 0.09) -> np.ndarray:
        """Sum of alpha-shaped pulses s*exp(1-s), s = (t - onset)/tau, peaking 1 at tau. [T]"""
        on = self.on if onsets is None else onsets
        if len(on) == 0:
            return np.zeros(self.T)
        s = (self.t[:, None] - on[None, :]) / tau  # [T, N]
        v = np.where(s >= 0, s * np.exp(1 - np.minimum(s, 50)), 0.0)
        return np.clip(v.sum(1), 0.0, 1.3)

    def pitch_pos(self, glide: float = 0.07, lo: float | None = None, hi: float | None = None,
                  mask: np.ndarray | None = None) -> np.ndarray:
        """Pitch of the latest note (chords: their mean), 0 = bottom of the range, 1 = top;
        glides to each new note over ``glide`` seconds. [T]"""
        lo = self.lo if lo is None else lo
        hi = self.hi if hi is None else hi
        on, pitch = (self.on, self.pitch) if mask is None else (self.on[mask], self.pitch[mask])
        if len(on) == 0:
            return np.full(self.T, 0.5)
        uniq, inv = np.unique(on, return_inverse=True)
        level = np.bincount(inv, pitch) / np.bincount(inv)  # mean pitch per onset
        level = np.clip((level - lo) / max(hi - lo, 1), 0, 1)
        k = np.searchsorted(uniq, self.t, side="right") - 1  # latest onset <= t
        cur = level[np.clip(k, 0, None)]
        prev = level[np.clip(k - 1, 0, None)]
        frac = _smoothstep((self.t - uniq[np.clip(k, 0, None)]) / glide)
        out = prev + (cur - prev) * frac
        return np.where(k < 0, level[0], out)

    def bow_pos(self, full: float = 0.9) -> np.ndarray:
        """Bow position in [-1, 1]: each note draws the bow the other way (down-bow / up-bow),
        by a length growing with the note's duration (a full bow takes ``full`` seconds);
        the bow rests between notes. [T]"""
        starts, ends = [], []
        pos, direction = float(self.rng.uniform(-0.8, 0.8)), 1.0 if self.rng.random() < 0.5 else -1.0
        for a, b in zip(self.on, self.off):
            travel = 2.0 * min(1.0, (b - a) / full)
            if not -1.0 <= pos + direction * travel <= 1.0:
                travel = min(travel, 1.0 + (pos if direction < 0 else -pos))
            starts.append(pos)
            pos = pos + direction * travel
            ends.append(pos)
            direction = -direction
        if not starts:
            return np.zeros(self.T)
        starts, ends = np.array(starts), np.array(ends)
        k = np.searchsorted(self.on, self.t, side="right") - 1
        kc = np.clip(k, 0, None)
        dur = np.maximum(self.off[kc] - self.on[kc], 1e-3)
        prog = np.clip((self.t - self.on[kc]) / dur, 0, 1)
        prog = prog * prog * (3 - 2 * prog) * 0.3 + prog * 0.7  # mostly even speed, soft ends
        return np.where(k < 0, starts[0], starts[kc] + (ends[kc] - starts[kc]) * prog)

    def striker(self, hit_t: np.ndarray, hit_xy: np.ndarray, rest: np.ndarray, rise: float = 0.3,
                rest_after: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        """Trajectory of a hand that hits targets: it travels to each target while rising and
        comes down on it at the onset.

        Args:
            hit_t: hit times [H] (sorted); hit_xy: the target of each hit [H, 2];
            rest: where the hand waits before the first hit [2].

        Returns:
            (pos [T, 2] the point above which the hand is, lift [T] in [0, 1]: 0 on the hit).
        """
        T = self.T
        if len(hit_t) == 0:
            return np.broadcast_to(rest, (T, 2)).copy(), np.zeros(T)
        tgt = np.concatenate([np.asarray(rest, float)[None], hit_xy], axis=0)  # [H+1, 2]
        times = np.concatenate([[hit_t[0] - 10.0], hit_t])  # [H+1]
        k = np.searchsorted(times, self.t, side="right") - 1  # last hit <= t (0 = the rest)
        k = np.clip(k, 0, len(times) - 1)
        nxt = np.clip(k + 1, 0, len(times) - 1)
        has_next = (k + 1) < len(times)
        gap = np.where(has_next, times[nxt] - times[k], np.inf)
        move = np.minimum(rise, gap)
        to_next = np.where(has_next, times[nxt] - self.t, np.inf)  # time left to the next hit
        frac = np.where(has_next, _smoothstep(1 - to_next / np.maximum(move, 1e-6)), 0.0)
        pos = tgt[k] + (tgt[nxt] - tgt[k]) * frac[:, None]
        lift = np.where(to_next < move, np.sin(np.pi * np.clip(to_next / np.maximum(move, 1e-6), 0, 1)), 0.0)
        # After a long pause the hand sinks back a little (not exactly onto the drum).
        idle = np.clip((self.t - times[k] - rest_after) / 0.5, 0, 1) * (to_next > move)
        lift = np.maximum(lift, 0.15 * idle)
        return pos, lift

    def fingering(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Wind fingering: how many of the six tone holes are closed follows the pitch inside the
        octave (more closed = lower), upper fingers first. [T, 6] in {0..1}, smoothed."""
        pos = self.pitch_pos(glide=0.04, mask=mask)
        rel = (pos * (self.hi - self.lo)) % 12 / 12.0  # place within the octave
        closed = np.round(6 * (1 - rel))  # [T]
        holes = (np.arange(6)[None, :] < closed[:, None]).astype(float)
        active = self.envelope() > 0  # fingers rest on the keys when not playing
        return np.where(active[:, None], holes, 0.5)

    def envelope(self) -> np.ndarray:
        """1 while some note sounds, else 0. [T]"""
        if len(self.on) == 0:
            return np.zeros(self.T)
        inside = (self.t[:, None] >= self.on[None, :]) & (self.t[:, None] < self.off[None, :])
        return inside.any(1).astype(float)

    def breath(self) -> np.ndarray:
        """Breathing for winds: an inhale (shoulders up) just before each phrase. [T] in [0, 1]"""
        if len(self.on) == 0:
            return np.zeros(self.T)
        gaps = np.concatenate([[np.inf], self.on[1:] - self.off[:-1]])
        starts = self.on[gaps > 0.12]
        s = (starts[None, :] - self.t[:, None]) / 0.35  # [T, P]: 1 = 0.35 s before a phrase
        return np.clip(np.where((s > -0.3) & (s < 1.0), np.cos(np.pi / 2 * (s - 0.35) / 0.65), 0).max(1), 0, 1)


# --------------------------------------------------------------------------------------------
# Class rigs. Each sets posture, wrist targets, hand angles, curls and instrument shapes.
# --------------------------------------------------------------------------------------------

def _fret_curl(r: Rig, base: float = 0.45, depth: float = 0.4) -> np.ndarray:
    """Fretting fingers press on each note. [T, 5]"""
    p = r.pulse(tau=0.06)
    c = np.full((r.T, 5), base)
    c[:, 1:] += depth * np.clip(p, 0, 1)[:, None] * np.array([1.0, 0.7, 0.5, 0.3])
    return c


def _wind_curls(r: Rig) -> None:
    """Both hands close tone holes: left hand the upper three, right hand the lower three."""
    holes = r.fingering()  # [T, 6]
    for side, cols in (("left", slice(0, 3)), ("right", slice(3, 6))):
        c = np.full((r.T, 5), 0.25)
        c[:, 1:4] = 0.15 + 0.6 * holes[:, cols]
        r.curl[side] = c


def _bow(r: Rig, hand: np.ndarray, direction: np.ndarray, length: float) -> None:
    """A bow held at the frog in ``hand`` [T, 2], lying along ``direction`` [T, 2]."""
    tip = hand + direction * length
    frog = hand - direction * 0.04
    normal = _rot(direction, np.pi / 2) * 0.018
    r.line(8, (235, 228, 205), 0.012, frog + normal, tip + normal)  # hair
    r.line(8, (70, 40, 20), 0.022, frog, tip)  # stick


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
    r.curl["left"] = _fret_curl(r)
    r.elbow_pref["left"] = np.array([0.2, 1.0])
    bow = r.bow_pos()
    contact = fr.point(0.2, 0.0)
    bdir = _unit(np.broadcast_to(np.array([-0.94, 0.34]), (T, 2)))
    r.targets["right"] = contact + bdir * (0.47 + 0.3 * bow)[:, None]
    r.hand_angle["right"] = np.full(T, np.arctan2(-0.34, 0.94) + 0.9)
    r.elbow_pref["right"] = np.array([-1.0, 0.2])
    r.curl["right"] = np.full((T, 5), 0.6)
    r.after.append(lambda kp: _bow(r, kp[:, _K["right_wrist"]], -bdir, 0.95))


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
    r.curl["left"] = _fret_curl(r)
    r.elbow_pref["left"] = np.array([1.0, 0.4])
    bow = r.bow_pos()
    contact = np.array([0.21, 0.82])
    bdir = _unit(np.array([-1.0, 0.06]))
    r.targets["right"] = contact + bdir[None] * (0.47 + 0.3 * bow)[:, None]
    r.hand_angle["right"] = np.full(T, 0.5)
    r.curl["right"] = np.full((T, 5), 0.6)
    r.after.append(lambda kp: _bow(r, kp[:, _K["right_wrist"]], np.broadcast_to(-bdir, (T, 2)), 0.9))


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
    r.curl["left"] = _fret_curl(r)
    r.elbow_pref["left"] = np.array([1.0, 0.0])
    bow = r.bow_pos()
    contact = np.array([0.03, 1.06])
    bdir = _unit(np.array([-1.0, 0.05]))
    r.targets["right"] = contact + bdir[None] * (0.38 + 0.24 * bow)[:, None]
    r.hand_angle["right"] = np.full(T, 0.6)
    r.curl["right"] = np.full((T, 5), 0.6)
    r.after.append(lambda kp: _bow(r, kp[:, _K["right_wrist"]], np.broadcast_to(-bdir, (T, 2)), 0.95))


@dataclass
class _Lute:
    """A plucked/strummed string instrument held across the body (guitar family)."""

    origin: tuple[float, float]  # body centre, person units
    angle: float  # direction of the neck (radians)
    scale: float
    body: str  # "figure8", "round", "solid", "pear"
    neck_end: float  # local u of the head
    strum: float  # amplitude of the picking hand's stroke (local units)
    hand_v: float  # where the picking hand hovers (local v)
    neck: Colour = (74, 44, 20)  # fingerboard colour


def _lute(r: Rig, spec: _Lute) -> None:
    T = r.T
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
    r.curl["left"] = _fret_curl(r)
    r.elbow_pref["left"] = np.array([0.3, 1.0])
    # Picking hand: a stroke across the strings on every onset.
    stroke = r.pulse(tau=0.08)
    r.targets["right"] = fr.point(0.05, spec.hand_v + spec.strum * stroke)
    r.hand_angle["right"] = fr.axis(np.pi / 2 - 0.3)
    r.curl["right"] = np.full((T, 5), 0.5) + 0.25 * np.clip(stroke, 0, 1)[:, None]


def rig_acoustic_guitar(r: Rig) -> None:
    r.posture = "sit"
    _lute(r, _Lute((-0.15, 0.92), -0.35, 1.0, "figure8", 1.02, 0.28, -0.3))


def rig_ukulele(r: Rig) -> None:
    _lute(r, _Lute((-0.08, 0.58), -0.4, 0.6, "figure8", 0.95, 0.3, -0.32))


def rig_banjo(r: Rig) -> None:
    _lute(r, _Lute((-0.08, 0.85), -0.5, 0.95, "round", 1.15, 0.15, -0.2, (110, 70, 35)))


def rig_electric_bass(r: Rig) -> None:
    _lute(r, _Lute((-0.1, 0.95), -0.3, 1.0, "solid", 1.3, 0.12, -0.12, (225, 190, 130)))


def rig_pipa(r: Rig) -> None:
    r.posture = "sit"
    _lute(r, _Lute((0.04, 0.92), -1.35, 1.0, "pear", 0.95, 0.18, -0.2))
    r.elbow_pref["left"] = np.array([1.0, 0.3])
    r.elbow_pref["right"] = np.array([-1.0, 0.5])


def _board_hits(r: Rig, x_of: Callable[[np.ndarray], np.ndarray], y_of: Callable[[np.ndarray], np.ndarray],
                split: Callable[[int], str], rest: dict[str, tuple[float, float]], rise: float,
                height: float) -> dict[str, np.ndarray]:
    """Two hands hitting targets: assign each note to a hand, run a striker per hand.

    Returns each hand's lift [T] and sets its wrist target (target point raised by ``height``).
    """
    xy = np.stack([x_of(r.pitch), y_of(r.pitch)], -1)  # [N, 2] target of each note
    lifts = {}
    hand_of = np.array([split(i) for i in range(len(r.on))], dtype=object)
    for side in SIDES:
        m = hand_of == side
        # A chord is one hit per onset, aimed at the chord's centre.
        t_u, inv = np.unique(r.on[m], return_inverse=True)  # [H], [n]
        n_per = np.maximum(np.bincount(inv, minlength=len(t_u)), 1)
        centre = np.stack([np.bincount(inv, xy[m, j], minlength=len(t_u)) / n_per for j in range(2)], -1)
        pos, lift = r.striker(t_u, centre.reshape(-1, 2), np.array(rest[side]), rise=rise)
        r.targets[side] = pos - np.stack([np.zeros(r.T), height * lift], -1)
        lifts[side] = lift
    return lifts


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
    lifts = _board_hits(r, kx, ky, lambda i: "left" if r.pitch[i] < split else "right",
                        {"left": (0.55, y0 + 0.04), "right": (-0.45, y0 + 0.04)}, 0.22, 0.12)
    for side in SIDES:
        r.hand_angle[side] = np.full(T, np.pi / 2 + (0.25 if side == "left" else -0.25))
        r.curl[side] = np.full((T, 5), 0.35) + 0.35 * lifts[side][:, None]
    r.elbow_pref = {"left": np.array([1.0, 0.3]), "right": np.array([-1.0, 0.3])}


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
    lifts = _board_hits(r, sx, sy, lambda i: "right", {"left": (0.6, 1.0), "right": (-0.45, 1.0)}, 0.2, 0.1)
    # The left hand presses the strings beyond the bridges, following the pitch, vibrato on long notes.
    p = r.pitch_pos()
    vib = 0.015 * np.sin(2 * np.pi * 5 * r.t) * r.envelope()
    r.targets["left"] = np.stack([np.full(T, 0.62), bot - 0.05 - 0.2 * p + vib], -1)
    r.hand_angle["left"] = np.full(T, np.pi / 2 + 0.4)
    r.hand_angle["right"] = np.full(T, np.pi / 2 - 0.4)
    r.curl["right"] = np.full((T, 5), 0.4) + 0.4 * lifts["right"][:, None]
    r.curl["left"] = np.full((T, 5), 0.3)


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

    lifts = _board_hits(r, bx, lambda p: by(p) - 0.3, hand_for, {"left": (0.45, 0.7), "right": (-0.45, 0.7)},
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
            w_ = kp[:, _K[f"{side}_wrist"]]
            tip = w_ + mallet_dir[side] * 0.36
            r.line(8, (200, 180, 140), 0.018, w_, tip)
            r.poly(8, (190, 40, 60), tip[:, None] + ellipse_pts(0, 0, 0.04, 0.04, 8)[None])

    r.after.append(mallets)


_DRUM_POS = {  # kit piece -> (centre, rx, ry, playing hand)
    "hat": ((-0.66, 0.72), 0.2, 0.035, "right"), "snare": ((0.42, 1.0), 0.2, 0.065, "left"),
    "tom1": ((-0.17, 0.86), 0.15, 0.055, "right"), "tom2": ((0.17, 0.84), 0.15, 0.055, "left"),
    "floor": ((0.75, 1.18), 0.2, 0.065, "left"),
}


def _drum_piece(key: int) -> str:
    if key in (HAT_CLOSED, HAT_OPEN):
        return "hat"
    if key == SNARE:
        return "snare"
    if key in (50, 48):
        return "tom1"
    if key in (47, 45):
        return "tom2"
    return "floor"


def rig_drum(r: Rig) -> None:
    T = r.T
    r.posture = "sit"
    shell, metal = r.col, r.col2
    r.line(1, (90, 90, 90), 0.02, (-0.66, 0.72), (-0.66, 2.17))  # hi-hat stand
    r.line(1, (90, 90, 90), 0.02, (-0.8, 0.28), (-0.85, 2.17))  # crash stand
    r.poly(1, metal, ellipse_pts(-0.8, 0.28, 0.24, 0.04, 16))  # crash cymbal
    for name, ((cx, cy), rx, ry, _) in _DRUM_POS.items():
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
    pieces = [_drum_piece(int(k)) for k in r.pitch]
    kick = np.isin(r.pitch, (KICK, KICK2))
    hands = np.array(["foot" if kick[i] else _DRUM_POS[p][3] for i, p in enumerate(pieces)], dtype=object)
    # Fast fills: a hand that just played hands the next hit to the other one.
    for i in range(1, len(hands)):
        if hands[i] in SIDES:
            prev = [j for j in range(i) if hands[j] == hands[i]]
            if prev and r.on[i] - r.on[prev[-1]] < 0.11:
                hands[i] = "left" if hands[i] == "right" else "right"
    for side in SIDES:
        m = hands == side
        tgt = np.array([_DRUM_POS[pieces[i]][0] for i in np.flatnonzero(m)], float).reshape(-1, 2)
        t_u, first = np.unique(r.on[m], return_index=True)
        pos, lift = r.striker(t_u, tgt[first], np.array(_DRUM_POS["hat" if side == "right" else "snare"][0]),
                              rise=0.25)
        r.targets[side] = pos + np.stack([np.zeros(T) + (0.1 if side == "right" else -0.1), -0.3 - 0.25 * lift], -1)
        sgn = 1 if side == "left" else -1
        r.hand_angle[side] = np.pi / 2 + sgn * 0.5 + sgn * 0.9 * lift
        r.curl[side] = np.full((T, 5), 0.8)
        r.knee_lift[side] = np.zeros(T)

        def sticks(kp: np.ndarray, side: str = side, lift: np.ndarray = lift, sgn: int = sgn) -> None:
            w_ = kp[:, _K[f"{side}_wrist"]]
            d = _rot(np.broadcast_to(np.array([0.0, 1.0]), (T, 2)), -sgn * 0.35 + sgn * 1.3 * lift)
            r.line(8, (225, 200, 150), 0.022, w_ - d * 0.05, w_ + d * 0.42)

        r.after.append(sticks)
    r.elbow_pref = {"left": np.array([0.6, 1.0]), "right": np.array([-0.6, 1.0])}
    _, lift_kick = r.striker(np.unique(r.on[kick]), np.zeros((len(np.unique(r.on[kick])), 2)), np.zeros(2), rise=0.2)
    r.knee_lift["right"] = 0.12 * lift_kick  # the kick pedal foot


def rig_congas(r: Rig) -> None:
    T = r.T
    drums = {"hi": ((-0.3, 1.0), 0.19), "lo": ((0.32, 1.05), 0.22)}
    for (cx, cy), rx in drums.values():
        body = np.array([(cx - rx, cy), (cx - rx - 0.06, cy + 0.6), (cx - rx + 0.03, 2.72), (cx + rx - 0.03, 2.72),
                         (cx + rx + 0.06, cy + 0.6), (cx + rx, cy)])
        r.poly(4, r.col, body, outline=tuple(int(c * 0.55) for c in r.col))
        for yy in (cy + 0.08, cy + 1.4):
            r.line(4, (70, 70, 70), 0.025, (cx - rx - 0.02, yy), (cx + rx + 0.02, yy))
        r.poly(4, r.col2, ellipse_pts(cx, cy, rx, 0.06, 18), outline=(90, 70, 40))
    drum_of = np.where(r.pitch == CONGA_LOW, "lo", "hi")
    hands = np.where(drum_of == "hi", "right", "left").astype(object)
    for i in range(1, len(hands)):  # quick repeats on one drum alternate hands
        prev = [j for j in range(i) if hands[j] == hands[i]]
        if prev and r.on[i] - r.on[prev[-1]] < 0.2:
            hands[i] = "left" if hands[i] == "right" else "right"
    for side in SIDES:
        m = hands == side
        sgn = 1 if side == "left" else -1
        tgt = np.array([drums[d][0] for d in drum_of[m]], float).reshape(-1, 2) + np.array([0.06 * sgn, -0.02])
        t_u, first = np.unique(r.on[m], return_index=True)
        pos, lift = r.striker(t_u, tgt[first], np.array(drums["lo" if side == "left" else "hi"][0]), rise=0.25)
        r.targets[side] = pos + np.stack([np.zeros(T), -0.1 - 0.3 * lift], -1)
        r.hand_angle[side] = np.full(T, np.pi / 2 - sgn * 0.25)
        # Open tones are played with a flat hand; muted tones with the fingers held together.
        muted = r.pulse(r.on[m][r.pitch[m] == CONGA_MUTE_HI], tau=0.1)
        r.curl[side] = (0.1 + 0.3 * np.clip(muted, 0, 1))[:, None] * np.ones(5)
    r.elbow_pref = {"left": np.array([1.0, 0.2]), "right": np.array([-1.0, 0.2])}


def _tube(r: Rig, a: np.ndarray, b: np.ndarray, width: float, colour: Colour, rings: Colour | None = None,
          layer: int = 4, n_rings: int = 4) -> None:
    r.line(layer, colour, width, a, b)
    if rings is not None:
        for k in range(1, n_rings + 1):
            c = a + (b - a) * (k / (n_rings + 1))
            d = _rot(_unit(b - a), np.pi / 2) * width * 0.55
            r.line(layer, rings, width * 0.35, c - d, c + d)


def _wind_common(r: Rig) -> None:
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
    valves = r.fingering()[:, :3]  # three valves
    r.targets["right"] = fr.point(0.27, -0.36)
    r.hand_angle["right"] = fr.axis(np.pi / 2 + 0.1)
    c = np.full((T, 5), 0.2)
    c[:, 1:4] = 0.15 + 0.55 * valves
    r.curl["right"] = c
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
    r.poly(4, r.col2, fr(_rot(ellipse_pts(0, 0, 0.3, 0.07, 20), 0.05) + np.array([0.52, -1.1])))
    r.line(4, r.col, 0.03, r.held((0.0, -0.3)), r.held((-0.12, -0.15)), fr((-0.25, -0.3)))  # lead pipe
    for k in range(4):
        r.poly(4, (200, 200, 200), fr(rect_pts(-0.42 + 0.06 * k, -0.18, -0.38 + 0.06 * k, 0.02)))
    valves = r.fingering()[:, :4]
    r.targets["right"] = fr((-0.3, -0.25))
    r.hand_angle["right"] = np.full(T, np.pi / 2 - 0.1)
    c = np.full((T, 5), 0.2)
    c[:, 1:5] = 0.15 + 0.55 * valves
    r.curl["right"] = c
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


RIGS: dict[str, Callable[[Rig], None]] = {
    "accordion": rig_accordion, "acoustic_guitar": rig_acoustic_guitar, "bagpipe": rig_bagpipe,
    "banjo": rig_banjo, "bassoon": rig_bassoon, "cello": rig_cello, "clarinet": rig_clarinet,
    "congas": rig_congas, "drum": rig_drum, "electric_bass": rig_electric_bass, "erhu": rig_erhu,
    "flute": rig_flute, "guzheng": rig_guzheng, "piano": rig_piano, "pipa": rig_pipa,
    "saxophone": rig_saxophone, "trumpet": rig_trumpet, "tuba": rig_tuba, "ukulele": rig_ukulele,
    "violin": rig_violin, "xylophone": rig_xylophone,
}
assert set(RIGS) == set(INSTRUMENTS)


# --------------------------------------------------------------------------------------------
# Solving the body: arms (IK), hands, head, legs
# --------------------------------------------------------------------------------------------

def arm_ik(shoulder: np.ndarray, target: np.ndarray, pref: np.ndarray,
           l1: float = UPPER_ARM, l2: float = FOREARM) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone IK. shoulder, target: [T, 2]; pref: [2] the side the elbow bends to.

    Returns (elbow [T, 2], wrist [T, 2]); an unreachable target is pulled in along the line.
    """
    d = target - shoulder
    dist = np.linalg.norm(d, axis=-1)
    reach = np.clip(dist, abs(l1 - l2) + 1e-3, l1 + l2 - 1e-3)
    u = _unit(d)
    wrist = shoulder + u * reach[:, None]
    cos_a = np.clip((l1 ** 2 + reach ** 2 - l2 ** 2) / (2 * l1 * reach), -1, 1)
    a = np.arccos(cos_a)
    e1 = shoulder + l1 * _rot(u, a)
    e2 = shoulder + l1 * _rot(u, -a)
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
    return wrist[:, None] + _rot(pts * size, angle[:, None])


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

        def hsv(h: float, s: float, v: float) -> Colour:
            return tuple(int(255 * x) for x in colorsys.hsv_to_rgb(h, s, v))  # type: ignore[return-value]

        return Look(skin=skins[int(rng.integers(len(skins)))], hair=hairs[int(rng.integers(len(hairs)))],
                    shirt=hsv(rng.random(), rng.uniform(0.2, 0.85), rng.uniform(0.3, 0.95)),
                    trousers=hsv(rng.random(), rng.uniform(0.1, 0.5), rng.uniform(0.12, 0.45)),
                    shoes=hsv(rng.random(), rng.uniform(0, 0.3), rng.uniform(0.05, 0.3)),
                    long_sleeves=bool(rng.random() < 0.5))


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
    legs = _LEGS[r.posture]
    sit = r.posture == "sit"
    # Torso and head move with the sway; hips follow a little when standing.
    for name, p in _TORSO.items():
        w = 1.0 if name in ("neck", "left_shoulder", "right_shoulder") else (0.0 if sit else 0.4)
        kp[:, _K[name]] = np.asarray(p) + w * r.sway
    for name in ("left_shoulder", "right_shoulder"):
        kp[:, _K[name], 1] += r.shoulder_dy
    neck = kp[:, _K["neck"]]
    head_angle = r.head_tilt
    for name, p in _HEAD.items():
        kp[:, _K[name]] = neck + _rot(np.broadcast_to(np.asarray(p), (T, 2)), head_angle) + \
            np.stack([np.zeros(T), r.head_dy], -1)
    head_centre = neck + _rot(np.broadcast_to(np.asarray(HEAD_CENTRE), (T, 2)), head_angle) + \
        np.stack([np.zeros(T), r.head_dy], -1)
    for name, p in legs.items():
        w = 0.0 if sit or "knee" not in name else 0.15
        kp[:, _K[name]] = np.asarray(p) + w * r.sway
    for side in SIDES:  # kick pedal / foot tap: knee up, foot lifts a little
        kp[:, _K[f"{side}_knee"], 1] -= r.knee_lift[side]
        for part in ("ankle", "big_toe", "small_toe", "heel"):
            kp[:, _K[f"{side}_{part}"], 1] -= 0.3 * r.knee_lift[side]
    for side in SIDES:
        sh = kp[:, _K[f"{side}_shoulder"]]
        tgt = r.targets.get(side)
        if tgt is None:  # hanging arm
            tgt = sh + np.array([0.12 if side == "left" else -0.12, 1.0])
        elbow, wrist = arm_ik(sh, np.broadcast_to(tgt, (T, 2)), r.elbow_pref[side])
        kp[:, _K[f"{side}_elbow"]] = elbow
        kp[:, _K[f"{side}_wrist"]] = wrist
        ang = r.hand_angle[side]
        if ang is None:
            fore = wrist - elbow
            ang = np.arctan2(fore[:, 1], fore[:, 0]) + r.hand_bend[side]
        hand = hand_points(wrist, np.broadcast_to(ang, (T,)), r.thumb[side], r.curl[side])
        s0 = _HAND_START[side]
        kp[:, s0:s0 + NUM_HAND] = hand
    for fn in r.after:
        fn(kp)
    shapes = _body_shapes(r, kp, head_centre, head_angle, look) + r.shapes
    return Performer(cls, kp, shapes, r.posture, head_centre, np.asarray(head_angle, float) * np.ones(T))


def _body_shapes(r: Rig, kp: np.ndarray, head_c: np.ndarray, head_a: np.ndarray, look: Look) -> list[Shape]:
    T = r.T
    out: list[Shape] = []

    def P(name: str) -> np.ndarray:
        return kp[:, _K[name]]

    def line(layer: int, colour: Colour, width: float, *names: str) -> None:
        out.append(Shape(layer, "line", colour, np.stack([P(n) for n in names], 1), width))

    if r.posture == "sit":  # a stool
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
    hair = head_c[:, None] + _rot(ellipse_pts(0, -0.025, 0.2, 0.28, 18)[None], head_a[:, None])
    face = head_c[:, None] + _rot(ellipse_pts(0, 0.03, 0.175, 0.235, 18)[None], head_a[:, None])
    out.append(Shape(3, "poly", look.hair, hair))
    out.append(Shape(3, "poly", look.skin, face))
    for eye in ("left_eye", "right_eye"):
        out.append(Shape(3, "line", (30, 20, 20), np.stack([P(eye) - (0.015, 0), P(eye) + (0.015, 0)], 1), 0.035))
    mouth = P("nose") + _rot(np.broadcast_to(np.array([0.0, 0.09]), (T, 2)), head_a)
    out.append(Shape(3, "line", (150, 60, 60), np.stack([mouth - (0.04, 0), mouth + (0.04, 0)], 1), 0.02))
    for side in SIDES:
        line(5, look.shirt, 0.15, f"{side}_shoulder", f"{side}_elbow")
        line(6, look.shirt if look.long_sleeves else look.skin, 0.115, f"{side}_elbow", f"{side}_wrist")
        s0 = _HAND_START[side]
        hand = kp[:, s0:s0 + NUM_HAND]
        out.append(Shape(7, "poly", look.skin, hand[:, [0, 2, 5, 17]]))  # palm
        for f in range(5):
            chain = hand[:, [0 if f else 1] + list(range(1 + 4 * f, 5 + 4 * f))] if f else hand[:, 1:5]
            out.append(Shape(7, "line", look.skin, chain, 0.04))
    return out


# --------------------------------------------------------------------------------------------
# Scene: placement, background, camera, drawing, pose
# --------------------------------------------------------------------------------------------

@dataclass
class SceneResult:
    """frames uint8 [T, H, W, 3]; pose float32 [T, P, 68, 3] noisy (as saved);
    pose_clean float32 [T, P, 68, 2] exact keypoints in pixels."""

    frames: np.ndarray
    pose: np.ndarray
    pose_clean: np.ndarray
    timings: dict = field(default_factory=dict)


def _background(rng: np.random.Generator, w: int, h: int, floor_y: float, ss: int):
    """A wall, a floor and random clutter, with a little sensor noise. PIL image of [h, w]."""
    from PIL import Image, ImageDraw

    def hsv(hh: float, s: float, v: float) -> Colour:
        return tuple(int(255 * x) for x in colorsys.hsv_to_rgb(hh, s, v))  # type: ignore[return-value]

    wall = hsv(rng.random(), rng.uniform(0.05, 0.5), rng.uniform(0.35, 0.9))
    floor = hsv(rng.random(), rng.uniform(0.1, 0.5), rng.uniform(0.2, 0.6))
    im = Image.new("RGB", (w, h), wall)
    d = ImageDraw.Draw(im)
    fy = int(np.clip(floor_y, 0, h))
    if fy < h:  # the floor is out of the picture in close shots
        d.rectangle([0, fy, w, h], fill=floor)
    for _ in range(int(rng.integers(3, 11))):  # clutter: frames, lamps, plants, posters
        col = hsv(rng.random(), rng.uniform(0.1, 0.9), rng.uniform(0.15, 0.95))
        kind = int(rng.integers(4))
        x, y = rng.uniform(0, w), rng.uniform(0, fy * 1.05)
        sx, sy = rng.uniform(0.04, 0.25) * w, rng.uniform(0.04, 0.3) * h
        if kind == 0:
            d.rectangle([x, y, x + sx, y + sy], fill=col, outline=hsv(rng.random(), 0.3, 0.3), width=max(1, ss))
        elif kind == 1:
            d.ellipse([x, y, x + sx, y + sy], fill=col)
        elif kind == 2:
            d.line([x, y, x + rng.uniform(-1, 1) * sx, y + sy], fill=col, width=int(rng.integers(1, 5)) * ss)
        else:
            pts = [(x + rng.uniform(-1, 1) * sx, y + rng.uniform(-1, 1) * sy) for _ in range(3)]
            d.polygon(pts, fill=col)
    arr = np.asarray(im, dtype=np.int16) + rng.normal(0, 3.0, (h, w, 1)).astype(np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _place(performers: list[Performer], rng: np.random.Generator, W: int, H: int) -> list[tuple[float, float, float]]:
    """Pick (scale px/unit, x offset, y offset) per performer: left to right, inside the frame.

    The group is scaled to fit its width and height with a random margin, then shifted randomly
    inside the slack; duets get a random gap between the two performers.
    """
    boxes = [p.bbox() for p in performers]
    widths = [b[2] - b[0] for b in boxes]
    gap_units = 0.15 if len(performers) > 1 else 0.0
    total_w = sum(widths) + gap_units
    top = min(b[1] for b in boxes)
    heights = [b[3] - top for b in boxes]
    fit = min(0.96 * W / total_w, 0.98 * H / max(heights))
    # Solos: sometimes a closer shot that crops the feet (as in many real videos).
    zoom = rng.uniform(0.78, 1.0) if len(performers) > 1 else rng.uniform(0.8, 1.25)
    s = fit * zoom
    group_w = total_w * s
    x = rng.uniform(min(0.0, W - group_w), max(0.0, W - group_w)) if group_w < W else (W - group_w) / 2
    y_slack = H - max(heights) * s
    y_top = rng.uniform(0.02 * H, max(0.02 * H, y_slack - 0.01 * H)) if y_slack > 0.03 * H else 0.02 * H
    out = []
    for b, wd in zip(boxes, widths):
        out.append((s, x - b[0] * s, y_top - top * s))
        x += wd * s + gap_units * s
    return out


def detector_noise(kp: np.ndarray, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Make exact keypoints look like a pose detector's output.

    Gaussian jitter of a few pixels (more on the hands), random confidences, random drop-outs and
    occasional whole missing hands (a few frames long). Points outside the frame, and dropped
    points, get confidence 0 and x = y = 0.

    Args:
        kp: [T, P, 68, 2] pixels. Returns: float32 [T, P, 68, 3].
    """
    T, P = kp.shape[:2]
    sigma = rng.uniform(0.6, 2.0)
    scale = np.ones(NUM_KEYPOINTS)
    scale[LEFT_HAND_START:] = 1.4
    xy = kp + rng.normal(0, 1, kp.shape) * sigma * scale[None, None, :, None]
    conf = np.clip(rng.beta(6, 1.6, (T, P, NUM_KEYPOINTS)), 0.05, 1.0)
    conf[..., LEFT_HAND_START:] *= rng.uniform(0.7, 1.0)
    conf[rng.random((T, P, NUM_KEYPOINTS)) < rng.uniform(0.01, 0.05)] = 0.0
    for p in range(P):  # missing hands: bursts of a few frames
        for s0 in (LEFT_HAND_START, RIGHT_HAND_START):
            t = 0
            while t < T:
                if rng.random() < 0.04:
                    n = int(rng.integers(1, 6))
                    conf[t:t + n, p, s0:s0 + NUM_HAND] = 0.0
                    t += n
                t += 1
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)
    conf = np.where(inside, conf, 0.0)
    xy = np.where(conf[..., None] > 0, xy, 0.0)
    return np.concatenate([xy, conf[..., None]], -1).astype(np.float32)


def render_scene(parts: list[tuple[str, list[Note]]], duration: float, rng: np.random.Generator, fps: float = 8.0,
                 size: int = 224, supersample: int = 2) -> SceneResult:
    """Draw a clip.

    Args:
        parts: (class, notes) per performer, in the left-to-right order wanted in the frame.
        duration: seconds; frames are at t = i / fps for i < round(duration * fps).
        rng: the clip's random generator.
        size: frame width = height in pixels.
        supersample: drawing resolution factor (2 = draw at 2x and downscale: smooth edges).

    Returns:
        :class:`SceneResult` with frames [T, size, size, 3], noisy pose [T, P, 68, 3] and exact
        pose [T, P, 68, 2] (pixels of the frames).
    """
    import time

    from PIL import Image, ImageDraw

    tic = time.perf_counter()
    T = int(round(duration * fps))
    t = np.arange(T) / fps
    performers = [build_performer(cls, notes, t, rng, Look.random(rng)) for cls, notes in parts]
    W = H = int(size)
    placement = _place(performers, rng, W, H)
    # Camera: a slow drift plus hand-held shake, in pixels; the whole picture moves together.
    ph = rng.uniform(0, 2 * np.pi, 4)
    amp = rng.uniform(0.3, 2.5)
    cam = np.stack([amp * (np.sin(2 * np.pi * 0.7 * t + ph[0]) + 0.5 * np.sin(2 * np.pi * 1.9 * t + ph[1])),
                    amp * (np.sin(2 * np.pi * 0.5 * t + ph[2]) + 0.5 * np.sin(2 * np.pi * 2.3 * t + ph[3]))], -1)
    cam += np.linspace(0, 1, T)[:, None] * rng.uniform(-4, 4, 2)  # slow pan
    ss = int(supersample)
    margin = 8
    cam_ss = np.round(cam * ss).astype(int)  # integer shifts of the supersampled canvas
    cam = cam_ss / ss
    floor_units = max(FLOOR[p.posture] for p in performers)
    floor_y = (placement[0][2] + floor_units * placement[0][0] - 0.1 * placement[0][0] + margin) * ss
    bg = _background(rng, (W + 2 * margin) * ss, (H + 2 * margin) * ss, floor_y, ss)
    # Pixel coordinates of every shape and keypoint: px = offset + scale * units - camera.
    layers = []
    kps = []
    for i, (perf, (s, ox, oy)) in enumerate(zip(performers, placement)):
        off = np.array([ox, oy])
        kps.append(off + s * perf.keypoints - cam[:, None])
        for sh in perf.shapes:
            px = (off + s * sh.pts - cam[:, None]) * ss + (ss - 1) / 2  # [T, K, 2] canvas pixels
            wpx = max(1, int(round(sh.width * s * ss))) if sh.kind == "line" else 0
            layers.append((sh.layer, i, sh.kind, sh.colour, px.reshape(T, -1), wpx, sh.outline))
    layers.sort(key=lambda x: (x[0], x[1]))  # by layer, then performer: stable within a layer
    pose_clean = np.stack(kps, 1).astype(np.float32)  # [T, P, 68, 2]
    tic_draw = time.perf_counter()
    frames = np.empty((T, H, W, 3), np.uint8)
    for f in range(T):
        cx, cy = margin * ss + cam_ss[f]
        im = bg.crop((int(cx), int(cy), int(cx) + W * ss, int(cy) + H * ss))
        d = ImageDraw.Draw(im)
        for _, _, kind, colour, px, wpx, outline in layers:
            xy = px[f].tolist()
            if kind == "poly":
                d.polygon(xy, fill=colour, outline=outline)
            else:
                # Round joints only where they show: thick limbs, not 1-3 px fingers (2x faster).
                d.line(xy, fill=colour, width=wpx, joint="curve" if wpx > 3 else None)
        if ss > 1:
            im = im.reduce(ss)
        frames[f] = np.asarray(im)
    tic_pose = time.perf_counter()
    pose = detector_noise(pose_clean.astype(np.float64), rng, W, H)
    return SceneResult(frames, pose, pose_clean, {"rig": tic_draw - tic, "draw": tic_pose - tic_draw,
                                                  "pose": time.perf_counter() - tic_pose})


__all__ = ["render_scene", "build_performer", "detector_noise", "hand_points", "arm_ik", "Rig", "RIGS", "Performer",
           "Look", "SceneResult", "INSTRUMENT_COLOURS"]
