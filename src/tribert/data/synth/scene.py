"""The scene: performers placed in the picture, a cluttered room, a hand-held camera, drawing.

:func:`stage_scene` builds the performers of a clip (:mod:`tribert.data.synth.performer`),
places them left to right inside the frame and moves a hand-held camera: this gives the exact
keypoints in pixels without drawing anything. :func:`render_scene` then draws every frame with
Pillow (supersampled for smooth edges) over a random background and adds detector-like noise
to a copy of the keypoints (:mod:`tribert.data.synth.noise`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from tribert.data.synth.body import FLOOR, Look
from tribert.data.synth.geometry import hsv
from tribert.data.synth.noise import detector_noise
from tribert.data.synth.performer import Performer, build_performer
from tribert.data.synth.score import Note


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


def place(performers: list[Performer], rng: np.random.Generator, W: int, H: int) -> list[tuple[float, float, float]]:
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


@dataclass
class Stage:
    """A clip's performers placed in the picture, before anything is drawn.

    ``placement[i]`` is performer i's (pixels per person unit, x offset, y offset); ``camera``
    [T, 2] is the picture's shift in pixels, on the grid of the supersampled canvas
    (``camera_ss`` [T, 2] int: the same shift in canvas pixels).
    """

    t: np.ndarray  # frame times [T]
    size: int
    supersample: int
    performers: list[Performer]
    placement: list[tuple[float, float, float]]
    camera: np.ndarray
    camera_ss: np.ndarray

    def pixels(self, i: int, pts: np.ndarray) -> np.ndarray:
        """Performer i's points [T, ..., 2] in person units -> pixels of the frames."""
        s, ox, oy = self.placement[i]
        cam = self.camera.reshape((len(self.t),) + (1,) * (pts.ndim - 2) + (2,))
        return np.array([ox, oy]) + s * pts - cam

    def pose_clean(self) -> np.ndarray:
        """The exact keypoints in pixels. float32 [T, P, 68, 2]"""
        return np.stack([self.pixels(i, p.keypoints) for i, p in enumerate(self.performers)], 1).astype(np.float32)


def stage_scene(parts: list[tuple[str, list[Note]]], duration: float, rng: np.random.Generator, fps: float = 8.0,
                size: int = 224, supersample: int = 2) -> Stage:
    """Build, place and film the performers of a clip (arguments: :func:`render_scene`).

    Draws from ``rng`` exactly what :func:`render_scene` draws before the background, so a
    clip's pose can be computed without drawing its frames.
    """
    T = int(round(duration * fps))
    t = np.arange(T) / fps
    performers = [build_performer(cls, notes, t, rng, Look.random(rng)) for cls, notes in parts]
    placement = place(performers, rng, int(size), int(size))
    # Camera: a slow drift plus hand-held shake, in pixels; the whole picture moves together.
    ph = rng.uniform(0, 2 * np.pi, 4)
    amp = rng.uniform(0.3, 2.5)
    cam = np.stack([amp * (np.sin(2 * np.pi * 0.7 * t + ph[0]) + 0.5 * np.sin(2 * np.pi * 1.9 * t + ph[1])),
                    amp * (np.sin(2 * np.pi * 0.5 * t + ph[2]) + 0.5 * np.sin(2 * np.pi * 2.3 * t + ph[3]))], -1)
    cam += np.linspace(0, 1, T)[:, None] * rng.uniform(-4, 4, 2)  # slow pan
    ss = int(supersample)
    cam_ss = np.round(cam * ss).astype(int)  # integer shifts of the supersampled canvas
    return Stage(t, int(size), ss, performers, placement, cam_ss / ss, cam_ss)


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
    from PIL import ImageDraw

    tic = time.perf_counter()
    stage = stage_scene(parts, duration, rng, fps, size, supersample)
    T, W, H, ss = len(stage.t), stage.size, stage.size, stage.supersample
    margin = 8  # the background is larger than the frame by this many pixels on every side (camera shake)
    scale0, _, y0 = stage.placement[0]
    floor_units = max(FLOOR[p.posture] for p in stage.performers)
    floor_y = (y0 + floor_units * scale0 - 0.1 * scale0 + margin) * ss
    bg = _background(rng, (W + 2 * margin) * ss, (H + 2 * margin) * ss, floor_y, ss)
    # Canvas pixel coordinates of every shape, drawn by layer, then performer (stable within a layer).
    layers = []
    for i, (perf, (s, _, _)) in enumerate(zip(stage.performers, stage.placement)):
        for sh in perf.shapes:
            px = stage.pixels(i, sh.pts) * ss + (ss - 1) / 2  # [T, K, 2] canvas pixels
            wpx = max(1, int(round(sh.width * s * ss))) if sh.kind == "line" else 0
            layers.append((sh.layer, i, sh.kind, sh.colour, px.reshape(T, -1), wpx, sh.outline))
    layers.sort(key=lambda x: (x[0], x[1]))
    pose_clean = stage.pose_clean()
    tic_draw = time.perf_counter()
    frames = np.empty((T, H, W, 3), np.uint8)
    for f in range(T):
        cx, cy = margin * ss + stage.camera_ss[f]
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


__all__ = ["render_scene", "stage_scene", "Stage", "SceneResult", "place"]
