"""MediaPipe Holistic -> 68-keypoint layout: the mapping itself, and detection on a real photo."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from tribert.data import pose_detect as pd
from tribert.errors import TribertError
from tribert.skeleton import INDEX, LEFT_HAND_START, RIGHT_HAND_START


def landmarks(points):
    return SimpleNamespace(landmark=[SimpleNamespace(x=x, y=y, visibility=v) for x, y, v in points])


def test_mapping_without_mediapipe():
    """A fake Holistic result: copied, derived and hand points land where they should."""
    body = [(0.0, 0.0, 0.0)] * 33
    body = list(body)
    set_ = {0: (0.50, 0.20, 0.9), 2: (0.55, 0.18, 0.8), 5: (0.45, 0.18, 0.7),
            9: (0.53, 0.24, 0.9), 10: (0.47, 0.24, 0.9),
            11: (0.70, 0.40, 0.9), 12: (0.30, 0.40, 0.6), 23: (0.60, 0.80, 0.4), 24: (0.40, 0.80, 0.5),
            15: (0.75, 0.70, 0.3), 31: (0.62, 0.99, 0.2)}
    for k, v in set_.items():
        body[k] = v
    hand = [(0.7 + 0.001 * i, 0.7, 0.0) for i in range(21)]
    result = SimpleNamespace(pose_landmarks=landmarks(body), left_hand_landmarks=landmarks(hand),
                             right_hand_landmarks=None)
    kp = pd.holistic_to_68(result, width=200, height=100)  # [68, 3]
    assert kp.shape == (68, 3)
    np.testing.assert_allclose(kp[INDEX["nose"]], [100, 20, 0.9], atol=1e-4)
    np.testing.assert_allclose(kp[INDEX["left_shoulder"]], [140, 40, 0.9], atol=1e-4)
    np.testing.assert_allclose(kp[INDEX["neck"]], [100, 40, 0.6], atol=1e-4)  # midpoint, min conf
    np.testing.assert_allclose(kp[INDEX["hip"]], [100, 80, 0.4], atol=1e-4)
    np.testing.assert_allclose(kp[INDEX["left_big_toe"]], [124, 99, 0.2], atol=1e-4)
    np.testing.assert_allclose(kp[INDEX["left_small_toe"]], kp[INDEX["left_big_toe"]])
    head = kp[INDEX["head"]]
    assert head[1] < kp[INDEX["left_eye"], 1] and abs(head[0] - 100) < 1e-3 and head[2] == pytest.approx(0.7)
    # hands: found -> confidence 1, pixels; missing -> confidence 0
    np.testing.assert_allclose(kp[LEFT_HAND_START:LEFT_HAND_START + 21, 2], 1.0)
    assert kp[LEFT_HAND_START + 20, 0] == pytest.approx(200 * 0.72)
    assert kp[RIGHT_HAND_START:RIGHT_HAND_START + 21, 2].max() == 0
    empty = pd.holistic_to_68(SimpleNamespace(pose_landmarks=None, left_hand_landmarks=None,
                                              right_hand_landmarks=None), 200, 100)
    assert empty[:, 2].max() == 0


def test_regions():
    assert pd.person_regions(400, 1) == [(0, 400)]
    (l0, l1), (r0, r1) = pd.person_regions(400, 2)
    assert l0 == 0 and r1 == 400 and l1 == 220 and r0 == 180  # 55% each, overlapping in the middle
    with pytest.raises(ValueError):
        pd.person_regions(400, 3)


def test_missing_mediapipe_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    assert not pd.mediapipe_available()
    with pytest.raises(TribertError) as info:
        pd.require_mediapipe()
    msg = str(info.value)
    assert "pip install --no-deps mediapipe==0.10.21" in msg and "--no-pose" in msg and "\n" not in msg


@pytest.fixture(scope="module")
def astronaut():
    pytest.importorskip("mediapipe", reason="mediapipe is not installed (optional pose extra)")
    from skimage import data

    return data.astronaut()  # [512, 512, 3]: a person, face at about x 175-280, y 55-190


def test_astronaut_photo(astronaut):
    kp = pd.detect_image(astronaut)[0]  # [68, 3]
    p = {n: kp[INDEX[n]] for n in ("nose", "left_eye", "right_eye", "left_shoulder", "right_shoulder",
                                   "left_wrist", "right_wrist", "neck", "head")}
    for name in ("nose", "left_shoulder", "right_shoulder", "left_wrist", "right_wrist"):
        assert p[name][2] > 0, name
        assert 0 <= p[name][0] < 512 and 0 <= p[name][1] < 512, name
    nose, ls, rs = p["nose"], p["left_shoulder"], p["right_shoulder"]
    assert 175 < nose[0] < 280 and 90 < nose[1] < 170  # in the face
    assert p["left_eye"][1] < nose[1] and p["right_eye"][1] < nose[1]  # eyes above the nose
    assert p["head"][1] < p["left_eye"][1] and p["head"][1] > 0  # top of the head above the eyes
    # She faces the camera: her left shoulder is on the image's right, her right on the left,
    # both well below the nose and roughly symmetric about it.
    assert rs[0] < nose[0] < ls[0]
    assert ls[1] > nose[1] + 60 and rs[1] > nose[1] + 60
    assert abs((ls[0] - nose[0]) - (nose[0] - rs[0])) < 0.5 * (ls[0] - rs[0])
    assert rs[0] < p["neck"][0] < ls[0]
    # Arms hang down to the bottom of the photo: wrists below the shoulders.
    assert p["left_wrist"][1] > ls[1] and p["right_wrist"][1] > rs[1]


def test_duet_regions_find_two_people(astronaut):
    """Two photos side by side: person 0 is found in the left half, person 1 in the right half."""
    pair = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)  # [512, 1024, 3]
    kp = pd.detect_image(pair, persons=2)  # [2, 68, 3]
    nose = kp[:, INDEX["nose"]]
    assert (nose[:, 2] > 0.5).all()
    assert 175 < nose[0, 0] < 280  # the left photo's face
    assert 1024 - 280 < nose[1, 0] < 1024 - 175  # the mirrored face in the right photo
