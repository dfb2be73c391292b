"""The ideal binary mask through our front-end (warp -> inverse warp -> mixture phase -> iSTFT) on
two-instrument SynthMUSIC mixtures, scored with mir_eval, next to the same mask on the linear STFT."""

from __future__ import annotations

import pytest

from helpers import benchmark
from tribert.data.synth import generate

oracle_table = benchmark("frontend_oracle").oracle_table


@pytest.fixture(scope="module")
def solos(tmp_path_factory):
    root = tmp_path_factory.mktemp("oracle")
    generate(root, 8, seed=11, duration=6.0, workers=1, kinds=(1.0, 0.0, 0.0), splits=(0, 0, 1),
             frame_size=32, mp4=False, progress=False)
    return root / "test"


def test_ideal_binary_mask_through_the_front_end(solos):
    res = oracle_table(str(solos), mixtures=6, backend="mir_eval")
    mix, warped, linear = res["mixture"], res["IBM warped (front-end)"], res["IBM linear"]
    assert mix["mixtures"] == 6 and mix["skipped"] == 0
    assert abs(mix["sdr"]) < 3  # equal-level two-source mixtures: about 0 dB
    assert warped["sdr"] > mix["sdr"] + 10  # the front-end loses little of the oracle's gain ...
    cost = linear["sdr"] - warped["sdr"]
    assert 0 <= cost < 2.0, cost  # ... measured 0.8 dB on 40 mixtures (README)
    assert res["IRM warped (front-end)"]["sdr"] > mix["sdr"] + 10
