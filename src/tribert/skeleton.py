"""The 68-keypoint whole-body skeleton used for pose everywhere in tribert.

Layout: 26 body points in the Halpe-26 order, then 21 left-hand points, then 21
right-hand points (each hand in the usual wrist, thumb 1-4, index 1-4, middle 1-4, ring 1-4,
pinky 1-4 order shared by Halpe-136, OpenPose and MediaPipe). A pose array is
``[T, persons, 68, 3]`` holding (x, y, confidence) with x, y in pixels of the stored frames;
confidence 0 means "not detected" and the x, y of such a point carry no meaning.
"""

from __future__ import annotations

BODY = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "head", "neck", "hip",
    "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe", "left_heel", "right_heel",
]
HAND = [
    "wrist",
    "thumb1", "thumb2", "thumb3", "thumb4",
    "index1", "index2", "index3", "index4",
    "middle1", "middle2", "middle3", "middle4",
    "ring1", "ring2", "ring3", "ring4",
    "pinky1", "pinky2", "pinky3", "pinky4",
]
NUM_BODY = len(BODY)  # 26
NUM_HAND = len(HAND)  # 21
LEFT_HAND_START = NUM_BODY  # 26
RIGHT_HAND_START = NUM_BODY + NUM_HAND  # 47
NUM_KEYPOINTS = NUM_BODY + 2 * NUM_HAND  # 68

KEYPOINTS = BODY + [f"left_hand_{n}" for n in HAND] + [f"right_hand_{n}" for n in HAND]
INDEX = {name: i for i, name in enumerate(KEYPOINTS)}

_BODY_EDGES = [
    ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear"),
    ("nose", "head"), ("nose", "neck"), ("neck", "left_shoulder"), ("neck", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("neck", "hip"), ("hip", "left_hip"), ("hip", "right_hip"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("left_ankle", "left_big_toe"), ("left_ankle", "left_small_toe"), ("left_ankle", "left_heel"),
    ("right_ankle", "right_big_toe"), ("right_ankle", "right_small_toe"), ("right_ankle", "right_heel"),
]
# Within one hand, by index into HAND: each finger is a chain from the wrist.
_HAND_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
               (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18),
               (18, 19), (19, 20)]


def _edges() -> list[tuple[int, int]]:
    edges = [(INDEX[a], INDEX[b]) for a, b in _BODY_EDGES]
    for start in (LEFT_HAND_START, RIGHT_HAND_START):
        edges += [(start + a, start + b) for a, b in _HAND_EDGES]
    # The hands hang off the body: each hand's wrist point is linked to the body's wrist.
    edges.append((INDEX["left_wrist"], LEFT_HAND_START))
    edges.append((INDEX["right_wrist"], RIGHT_HAND_START))
    return edges


EDGES: list[tuple[int, int]] = _edges()  # undirected, 67 edges: a tree over the 68 points
CENTER = INDEX["neck"]  # the root used by the ST-GCN spatial partition strategy

assert len(KEYPOINTS) == NUM_KEYPOINTS == 68
assert len(EDGES) == NUM_KEYPOINTS - 1
