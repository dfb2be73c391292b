"""The rig: note-driven motion signals and the body/hand controls of one performer.

A class's rig function (:mod:`tribert.data.synth.rigs`) fills a :class:`Rig` from the notes:

1. *Signals* of the notes, continuous in time and sampled at the frame times: bow position
   (direction flips on every note), pluck/strum pulses, strike trajectories (raise before and
   hit on each onset), pitch position (fretting hand along the neck, mallet along the bars),
   wind fingering, breathing and body sway.
2. *Controls* the body solver reads (:func:`tribert.data.synth.performer.build_performer`):
   posture, wrist targets, hand angles, finger curls, elbow sides, knee lifts; and the drawn
   instrument shapes, all in person units (:mod:`tribert.data.synth.body`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tribert.data.synth.body import SIDES
from tribert.data.synth.geometry import Colour, Shape, rgb, smoothstep
from tribert.data.synth.score import INSTRUMENTS, Note

# Each class keeps its own colours (instrument body, detail), so the picture tells classes apart.
INSTRUMENT_COLOURS: dict[str, tuple[Colour, Colour]] = {
    "accordion": (rgb("#c0282d"), rgb("#f2f2f2")), "acoustic_guitar": (rgb("#d9a45b"), rgb("#4a2c14")),
    "bagpipe": (rgb("#2e6b3a"), rgb("#b3202a")), "banjo": (rgb("#eeeeea"), rgb("#8c8c8c")),
    "bassoon": (rgb("#8a3b1e"), rgb("#c8c8c8")), "cello": (rgb("#7a3412"), rgb("#1a1a1a")),
    "clarinet": (rgb("#1c1c1c"), rgb("#d0d0d8")), "congas": (rgb("#c46a2b"), rgb("#e8d7b0")),
    "drum": (rgb("#2456b8"), rgb("#e6c34a")), "electric_bass": (rgb("#d12f6b"), rgb("#f5f5f5")),
    "erhu": (rgb("#3b2416"), rgb("#e0cf9a")), "flute": (rgb("#cfd3dc"), rgb("#7d828c")),
    "guzheng": (rgb("#8f2b1d"), rgb("#f0e6c8")), "piano": (rgb("#141414"), rgb("#fafafa")),
    "pipa": (rgb("#e0b874"), rgb("#6b3b18")), "saxophone": (rgb("#e0ad2c"), rgb("#8a6410")),
    "trumpet": (rgb("#f2c23a"), rgb("#9a7412")), "tuba": (rgb("#d9a736"), rgb("#6e5010")),
    "ukulele": (rgb("#f08c28"), rgb("#5a3210")), "violin": (rgb("#a8441c"), rgb("#1a1a1a")),
    "xylophone": (rgb("#b5651d"), rgb("#3a3a44")),
}


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
        frac = smoothstep((self.t - uniq[np.clip(k, 0, None)]) / glide)
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
        frac = np.where(has_next, smoothstep(1 - to_next / np.maximum(move, 1e-6)), 0.0)
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
# Hand motions shared by several instrument families
# --------------------------------------------------------------------------------------------

def fret_curl(r: Rig, base: float = 0.45, depth: float = 0.4) -> np.ndarray:
    """Fretting fingers (bowed and plucked strings) press on each note. [T, 5]"""
    p = r.pulse(tau=0.06)
    c = np.full((r.T, 5), base)
    c[:, 1:] += depth * np.clip(p, 0, 1)[:, None] * np.array([1.0, 0.7, 0.5, 0.3])
    return c


def board_hits(r: Rig, x_of: Callable[[np.ndarray], np.ndarray], y_of: Callable[[np.ndarray], np.ndarray],
               split: Callable[[int], str], rest: dict[str, tuple[float, float]], rise: float,
               height: float) -> dict[str, np.ndarray]:
    """Two hands hitting targets on a board (keys, strings, bars): assign each note to a hand,
    run a striker per hand.

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


__all__ = ["Rig", "INSTRUMENT_COLOURS", "fret_curl", "board_hits"]
