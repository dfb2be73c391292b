"""Whole-body pose from real frames with MediaPipe Holistic, in tribert's 68-keypoint layout.

MediaPipe Holistic (model complexity 1, the only model bundled in the wheel) returns, for *one*
person per image, 33 body landmarks and up to two 21-point hands. They map onto the 68 points of
:mod:`tribert.skeleton` as follows:

- Halpe-26 body points that MediaPipe has are copied (nose, eyes, ears, shoulders, elbows, wrists,
  hips, knees, ankles, heels; big toes <- ``*_FOOT_INDEX``). Confidence = landmark visibility.
- Derived points (confidence = the smallest confidence they are made from):
  ``neck`` = midpoint of the shoulders, ``hip`` = midpoint of the hips, ``head`` (top of the head)
  = eye midpoint + 1.7 x (eye midpoint - mouth midpoint) (eyes sit mid-head; eyes-to-mouth is
  about 0.3 head heights), ``*_small_toe`` = the foot-index point (MediaPipe has one toe point).
- Hands: the 21 points map one to one (same order); confidence 1.0 when Holistic finds the hand,
  0.0 when not. MediaPipe's left/right are the performer's own, as in Halpe.
- x, y are pixels of the image given; points of a person or hand not found have confidence 0.

Duets: Holistic sees one person per image, so a frame with ``persons=2`` is split into a left and
a right region (each 55% of the width, overlapping by 10% so a performer near the middle is not
cut), one detector per region; person 0 is the left region, person 1 the right (the clip
format's "left to right" order). ``persons=1`` runs on the whole frame.

Detectors are cached per process and per region (creating one takes a while) and run in video
mode (tracking from frame to frame, as Holistic recommends for video); :meth:`PoseDetector.reset`
clears the tracking state between videos.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterable, Iterator

import numpy as np

from tribert.errors import TribertError
from tribert.skeleton import INDEX, LEFT_HAND_START, NUM_HAND, NUM_KEYPOINTS, RIGHT_HAND_START

INSTALL_HINT = ("pip install --no-deps mediapipe==0.10.21 && pip install absl-py attrs flatbuffers "
                "'protobuf<5' 'opencv-python-headless<4.12' matplotlib")

# Halpe-26 body point <- MediaPipe pose landmark index (mediapipe.solutions.pose.PoseLandmark).
_MP_BODY = {
    "nose": 0, "left_eye": 2, "right_eye": 5, "left_ear": 7, "right_ear": 8,
    "left_shoulder": 11, "right_shoulder": 12, "left_elbow": 13, "right_elbow": 14,
    "left_wrist": 15, "right_wrist": 16, "left_hip": 23, "right_hip": 24,
    "left_knee": 25, "right_knee": 26, "left_ankle": 27, "right_ankle": 28,
    "left_heel": 29, "right_heel": 30, "left_big_toe": 31, "right_big_toe": 32,
    "left_small_toe": 31, "right_small_toe": 32,  # MediaPipe has a single toe point per foot
}
_MP_MOUTH = (9, 10)
_HEAD_ABOVE_EYES = 1.7  # head top = eyes + 1.7 * (eyes - mouth)
_REGION_FRACTION = 0.55  # duet regions: left 0..55% and right 45..100% of the width


def mediapipe_available() -> bool:
    try:
        import mediapipe  # noqa: F401
    except Exception:  # ImportError, or a broken install (protobuf / numpy mismatch)
        return False
    return True


def require_mediapipe() -> None:
    """Raise a TribertError saying how to install MediaPipe when it cannot be imported."""
    try:
        import mediapipe  # noqa: F401
    except Exception as err:
        raise TribertError(f"pose detection needs MediaPipe, which cannot be imported ({type(err).__name__}: "
                           f"{err}). Install it with: {INSTALL_HINT} -- or prepare without pose "
                           "(--no-pose / pose='none')") from None


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence MediaPipe's C++ log lines (written straight to file descriptor 2; its absl logging
    ignores GLOG_minloglevel / TF_CPP_MIN_LOG_LEVEL). Python's own messages written meanwhile are
    lost too, so the window holds only detector work."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _points(landmarks, width: int, height: int) -> np.ndarray:
    """MediaPipe landmark list -> float32 [N, 3] (x px, y px, visibility)."""
    return np.array([(p.x * width, p.y * height, getattr(p, "visibility", 1.0))
                     for p in landmarks.landmark], dtype=np.float32)


def holistic_to_68(result, width: int, height: int) -> np.ndarray:
    """Map one Holistic result on a ``width`` x ``height`` image to float32 [68, 3].

    Args:
        result: the object returned by ``Holistic.process`` (pose_landmarks, left_hand_landmarks,
            right_hand_landmarks; any may be None).
        width, height: size of the image that was processed, to turn normalised coordinates
            into pixels.
    """
    out = np.zeros((NUM_KEYPOINTS, 3), np.float32)  # confidence 0 = not detected
    if result.pose_landmarks is not None:
        body = _points(result.pose_landmarks, width, height)  # [33, 3]
        body[:, 2] = np.clip(body[:, 2], 0.0, 1.0)
        for name, k in _MP_BODY.items():
            out[INDEX[name]] = body[k]

        def derived(name: str, xy: np.ndarray, *conf_from: int) -> None:
            out[INDEX[name], :2] = xy
            out[INDEX[name], 2] = min(body[k, 2] for k in conf_from)

        derived("neck", (body[11, :2] + body[12, :2]) / 2, 11, 12)
        derived("hip", (body[23, :2] + body[24, :2]) / 2, 23, 24)
        eyes = (body[2, :2] + body[5, :2]) / 2
        mouth = (body[_MP_MOUTH[0], :2] + body[_MP_MOUTH[1], :2]) / 2
        derived("head", eyes + _HEAD_ABOVE_EYES * (eyes - mouth), 2, 5, *_MP_MOUTH)
    for hand, start in ((result.left_hand_landmarks, LEFT_HAND_START),
                        (result.right_hand_landmarks, RIGHT_HAND_START)):
        if hand is not None:
            pts = _points(hand, width, height)  # [21, 3]
            out[start:start + NUM_HAND, :2] = pts[:NUM_HAND, :2]
            out[start:start + NUM_HAND, 2] = 1.0
    return out


def person_regions(width: int, persons: int) -> list[tuple[int, int]]:
    """Column ranges [x0, x1) searched for each person: the whole frame, or left/right regions."""
    if persons == 1:
        return [(0, width)]
    if persons == 2:
        cut = int(round(width * _REGION_FRACTION))
        return [(0, cut), (width - cut, width)]
    raise ValueError(f"persons must be 1 or 2, got {persons}")


class PoseDetector:
    """MediaPipe Holistic on whole frames (solo) or left/right regions (duets) -> [persons, 68, 3].

    Args:
        static_image_mode: False (default) tracks from frame to frame, for the frames of one
            video in order; True treats every image independently (single photos).
        model_complexity: Holistic model size; 1 is the only model bundled with the wheel.
        min_detection_confidence: Holistic's threshold for a person to count as found.
    """

    def __init__(self, static_image_mode: bool = False, model_complexity: int = 1,
                 min_detection_confidence: float = 0.5):
        require_mediapipe()
        self.kwargs = dict(static_image_mode=static_image_mode, model_complexity=model_complexity,
                           min_detection_confidence=min_detection_confidence)
        self._holistic: dict[int, object] = {}  # one Holistic per person region (own tracking state)

    def _get(self, region: int):
        if region not in self._holistic:
            from mediapipe.python.solutions import holistic

            with _quiet_stderr():
                self._holistic[region] = holistic.Holistic(**self.kwargs)
        return self._holistic[region]

    @contextmanager
    def session(self) -> Iterator["PoseDetector"]:
        """Detect in one video: tracking starts afresh, and the library's log lines stay silenced
        while it works. Its graph threads log when a graph (re)starts, after ``reset`` has
        returned, so the restart and the frames that wait for it share one silenced window."""
        with _quiet_stderr():
            self.reset()
            yield self

    def reset(self) -> None:
        """Forget tracking state (call between videos)."""
        with _quiet_stderr():
            for h in self._holistic.values():
                h.reset()

    def close(self) -> None:
        with _quiet_stderr():
            for h in self._holistic.values():
                h.close()
        self._holistic.clear()

    def __call__(self, image: np.ndarray, persons: int = 1) -> np.ndarray:
        """Pose of up to ``persons`` performers in one RGB image.

        Args:
            image: uint8 [H, W, 3] RGB.
            persons: 1 (whole frame) or 2 (left and right regions, left first).

        Returns:
            float32 [persons, 68, 3]: x, y in pixels of ``image``, confidence (0 = not found).
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
        h, w = image.shape[:2]
        out = np.zeros((persons, NUM_KEYPOINTS, 3), np.float32)
        for p, (x0, x1) in enumerate(person_regions(w, persons)):
            crop = np.ascontiguousarray(image[:, x0:x1])  # [H, x1 - x0, 3]
            with _quiet_stderr():
                result = self._get(p).process(crop)
            kp = holistic_to_68(result, x1 - x0, h)  # [68, 3]
            kp[:, 0] += x0  # back to full-frame pixels
            out[p] = kp
        return out

    def video(self, frames: Iterable[np.ndarray], persons: int = 1) -> np.ndarray:
        """Pose of every frame of one video, in order: float32 [T, persons, 68, 3]."""
        with self.session():
            poses = [self(f, persons) for f in frames]
        if not poses:
            return np.zeros((0, persons, NUM_KEYPOINTS, 3), np.float32)
        return np.stack(poses)


_CACHE: dict[tuple, PoseDetector] = {}


def get_detector(static_image_mode: bool = False) -> PoseDetector:
    """The process-wide detector (created on first use, then reused: creation is slow)."""
    key = (static_image_mode,)
    if key not in _CACHE:
        _CACHE[key] = PoseDetector(static_image_mode=static_image_mode)
    return _CACHE[key]


def detect_image(image: np.ndarray, persons: int = 1) -> np.ndarray:
    """Pose in a single photo (static-image mode): float32 [persons, 68, 3]."""
    return get_detector(static_image_mode=True)(image, persons)
