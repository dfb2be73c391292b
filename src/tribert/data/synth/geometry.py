"""Plane geometry of the drawn performers: rotations, outlines, moving frames, drawn shapes.

Everything is vectorised over frames. Coordinates are *person units* (1 unit = neck-to-hip
length), x to the right of the image and y down, so a positive angle turns clockwise on screen.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

Colour = tuple[int, int, int]


def rgb(hex_: str) -> Colour:
    """A hex colour "#rrggbb" as (r, g, b)."""
    return tuple(int(hex_[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def hsv(h: float, s: float, v: float) -> Colour:
    """An 8-bit RGB colour from hue, saturation, value in [0, 1]."""
    return tuple(int(255 * x) for x in colorsys.hsv_to_rgb(h, s, v))  # type: ignore[return-value]


def rotate(v: np.ndarray, a: np.ndarray | float) -> np.ndarray:
    """Rotate vectors v [..., 2] by angle a (broadcast over the leading dims), y down."""
    c, s = np.cos(a), np.sin(a)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], axis=-1)


def unit(v: np.ndarray) -> np.ndarray:
    """Vectors [..., 2] scaled to length 1 (a zero vector stays zero)."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, and an S-curve with zero slope at both ends in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def ellipse_pts(cu: float, cv: float, ru: float, rv: float, n: int = 20, a0: float = 0.0,
                a1: float = 2 * np.pi) -> np.ndarray:
    """Points of an ellipse (arc) in local coordinates. [n, 2]"""
    a = np.linspace(a0, a1, n, endpoint=(a1 - a0) < 2 * np.pi - 1e-6)
    return np.stack([cu + ru * np.cos(a), cv + rv * np.sin(a)], axis=-1)


def rect_pts(u0: float, v0: float, u1: float, v1: float) -> np.ndarray:
    """The four corners of an axis-aligned rectangle in local coordinates. [4, 2]"""
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
            return self.origin + rotate(p, self.angle)
        if p.ndim == 2:  # static polygon [K, 2] -> [T, K, 2]
            p = np.broadcast_to(p, (self.T,) + p.shape)
        return self.origin[:, None] + rotate(p, self.angle[:, None])

    def point(self, u: np.ndarray | float, v: np.ndarray | float) -> np.ndarray:
        """A point whose local coordinates may change per frame. u, v: [T] or scalars -> [T, 2]"""
        uv = np.stack(np.broadcast_arrays(np.asarray(u, float), np.asarray(v, float)), axis=-1) * self.scale
        uv = np.broadcast_to(uv, (self.T, 2))
        return self.origin + rotate(uv, self.angle)

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


__all__ = ["Colour", "rgb", "hsv", "rotate", "unit", "smoothstep", "ellipse_pts", "rect_pts", "Frame2D", "Shape"]
