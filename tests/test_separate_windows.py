"""Long recordings: half-overlapping windows joined by overlap-add, no seam where windows meet."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tribert.config import Config
from tribert.engine.system import SeparationSystem
from tribert.separate import Separator, VideoInput
from tribert.separate.windows import crossfade, default_hop, overlap_add, window_starts

L = 1000  # window length of the unit cases
HOP = default_hop(L)  # 500


def test_windows_cover_the_recording_end_where_it_ends_and_one_window_is_enough_when_it_fits():
    assert window_starts(1, L, HOP) == [0] and window_starts(L, L, HOP) == [0]
    assert window_starts(L + 1, L, HOP) == [0, 1]  # the second window moved back to end at n
    assert window_starts(2 * L, L, HOP) == [0, 500, 1000]
    assert window_starts(2 * L + 1, L, HOP) == [0, 500, 1000, 1001]
    for n in (L + 1, 1777, 2 * L, 5 * L + 321):  # windows half a window apart, the last ending at n
        starts = window_starts(n, L, HOP)
        assert starts[-1] + L == n and all(b - a == HOP for a, b in zip(starts[:-2], starts[1:-1]))
        assert 0 < starts[-1] - starts[-2] <= HOP
    assert default_hop(1001) == 501  # no sample in three windows
    with pytest.raises(ValueError):
        window_starts(5000, L, 499)  # three windows would overlap
    np.testing.assert_array_equal(crossfade(L, HOP, False, False), np.ones(L))  # a lone window: weight 1


def test_the_weights_of_windows_a_hop_apart_sum_to_one_and_agreeing_windows_give_the_signal():
    rise, fall = crossfade(L, HOP, True, True)[:L - HOP], crossfade(L, HOP, True, True)[HOP:]
    np.testing.assert_allclose(rise + fall, 1.0, atol=1e-6)  # sin^2 + cos^2: the division changes nothing there
    for n in (3 * L, 3 * L + 123):  # windows that agree give back the signal itself, the moved last one too
        x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        starts = window_starts(n, L, HOP)
        np.testing.assert_allclose(overlap_add([x[s:s + L][None] for s in starts], starts, n, HOP)[0], x, atol=1e-5)


def test_windows_that_disagree_are_cross_faded_not_cut():
    """Window k says the source has gain g_k (alternating 0.1 / 0.9). Joined by hard cuts the output
    would jump by 0.8 where windows meet; cross-faded, its largest sample-to-sample step is the
    ramp's slope, pi / (2 x overlap) x 0.8 (0.0025 here), and it never leaves [0.1, 0.9]."""
    n = 4 * L
    starts = window_starts(n, L, HOP)
    gains = [0.1 if k % 2 == 0 else 0.9 for k in range(len(starts))]
    out = overlap_add([np.full((1, L), g, np.float32) for g in gains], starts, n, HOP)[0]
    steps = np.abs(np.diff(out))
    assert steps.max() <= 0.8 * np.pi / (2 * (L - HOP)) * 1.01, steps.max()
    assert out.min() >= 0.1 - 1e-6 and out.max() <= 0.9 + 1e-6
    for k, start in enumerate(starts[1:], 1):  # across each boundary the output moves from g_{k-1} to g_k
        assert abs(out[start] - gains[k - 1]) < 0.01 and abs(out[start + (L - HOP) - 1] - gains[k]) < 0.01
    # the last window moved back (n not on the hop grid): a weighted mean, no jump either
    n = 4 * L + 123
    starts = window_starts(n, L, HOP)
    gains = [0.1 if k % 2 == 0 else 0.9 for k in range(len(starts))]
    out = overlap_add([np.full((1, L), g, np.float32) for g in gains], starts, n, HOP)[0]
    assert np.abs(np.diff(out)).max() <= 0.8 * np.pi / (2 * (L - HOP)) * 1.01
    assert out.min() >= 0.1 - 1e-6 and out.max() <= 0.9 + 1e-6 and abs(out[-1] - gains[-1]) < 1e-6


def video(name: str, seconds: float, seed: int) -> VideoInput:
    rng = np.random.default_rng(seed)
    t = int(seconds * 8)
    pose = rng.uniform(0, 40, (t, 2, 68, 3)).astype(np.float32)
    pose[..., 2] = 1.0
    return VideoInput(name, rng.integers(0, 255, (t, 40, 48, 3), dtype=np.uint8),
                      np.zeros(int(seconds * 11025), np.float32), pose, 8.0, 8.0)


def test_a_long_recording_starts_as_a_single_window_run_and_has_every_sample():
    torch.manual_seed(0)
    config = Config.load(None, ["model.size=tiny", "audio.crop_samples=8191", "audio.warp_bins=32",
                                "video.frame_size=32", "video.pose_frames=8"])
    sep = Separator(SeparationSystem(config).eval())
    crop = config.audio.crop_samples
    rng = np.random.default_rng(1)
    mix = (0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * crop) / 11025) + 0.05 * rng.standard_normal(3 * crop))
    videos = [video("a", 3 * crop / 11025 + 1, 0), video("b", 3 * crop / 11025 + 1, 1)]
    long = sep.separate(videos, mixture=mix.astype(np.float32), pose="none")
    short = sep.separate(videos, mixture=mix[:crop].astype(np.float32), pose="none")
    hop = default_hop(crop)
    for a, b in zip(long.stems, short.stems):
        assert a.shape == (3 * crop,) and b.shape == (crop,) and np.isfinite(a).all()
        # where the first window has weight 1, the long run is the single-window run
        np.testing.assert_allclose(a[:hop], b[:hop], atol=1e-6)
    assert long.mixture_logmag.shape == (32, config.audio.frames) and len(long.masks) == 2


def test_windows_batched_through_the_model_give_the_window_by_window_result():
    from tribert.separate.windows import separate_windows

    torch.manual_seed(0)
    config = Config.load(None, ["model.size=tiny", "audio.crop_samples=8191", "audio.warp_bins=32",
                                "video.frame_size=32", "video.pose_frames=8"])
    system = SeparationSystem(config).eval()
    crop = config.audio.crop_samples
    mix = np.random.default_rng(2).standard_normal(4 * crop).astype(np.float32) * 0.1  # 7 windows
    videos = [video("a", 4 * crop / 11025 + 1, 0), video("b", 4 * crop / 11025 + 1, 1)]
    with torch.no_grad():
        one = separate_windows(system.model, system.frontend, config, mix, videos, [[-1], [-1]],
                               torch.device("cpu"), batch_windows=1)
        batched = separate_windows(system.model, system.frontend, config, mix, videos, [[-1], [-1]],
                                   torch.device("cpu"), batch_windows=3)  # chunks of 3, 3 and 1
    np.testing.assert_allclose(batched.stems, one.stems, atol=1e-5)
    assert np.abs(one.stems).max() > 1e-3  # not a silent output that would match anything
    np.testing.assert_allclose(batched.masks, one.masks, atol=1e-6)
    assert len(batched.attention) == len(one.attention) == 2
    np.testing.assert_allclose(batched.attention, one.attention, atol=1e-5)


def test_the_model_never_hears_silence_a_short_recording_is_looped_with_its_pose():
    """No window of a recording off the hop grid or shorter than one window holds padding: every
    STFT frame the model hears has the recording's sound. A 0.37-s recording fills its 0.74-s
    window twice, its pose with it: the pose after the recording's end is its first pose again."""
    torch.manual_seed(0)
    config = Config.load(None, ["model.size=tiny", "audio.crop_samples=8191", "audio.warp_bins=32",
                                "video.frame_size=32", "video.pose_frames=8"])
    sep = Separator(SeparationSystem(config).eval())
    seen: list[dict] = []
    handle = sep.system.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append({k: kwargs[k].clone() for k in ("mix_logmag", "pose")}),
        with_kwargs=True)
    silence = float(np.log(config.audio.log_eps))
    noise = 0.1 * np.random.default_rng(3).standard_normal(3 * 8191).astype(np.float32)
    try:
        for n in (4096, 2 * 8191 + 77):
            seen.clear()
            seconds = n / 11025
            result = sep.separate([video("a", seconds, 0), video("b", seconds, 1)], mixture=noise[:n], pose="none")
            assert [len(x) for x in result.stems] == [n, n] and np.isfinite(result.stems).all()
            quietest = min(float(x["mix_logmag"].amax(dim=2).min()) for x in seen)  # per STFT frame, over bins
            assert quietest > silence + 5, (n, quietest, silence)
    finally:
        handle.remove()
    seen.clear()
    handle = sep.system.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append({"pose": kwargs["pose"].clone()}), with_kwargs=True)
    try:
        sep.separate([video("a", 4096 / 11025, 0), video("b", 4096 / 11025, 1)], mixture=noise[:4096], pose="none")
    finally:
        handle.remove()
    pose = seen[0]["pose"][0]  # the first video's window: [P, 8 steps over 0.74 s, 68, 3]
    assert torch.equal(pose[:, 4], pose[:, 0])  # 0.42 s: past the end, the recording's start again
    assert not torch.equal(pose[:, 4], pose[:, 3])  # not its last pose held


def test_a_video_input_without_audio_samples_is_refused_in_one_line():
    from tribert.errors import TribertError

    config = Config.load(None, ["model.size=tiny", "audio.crop_samples=8191", "audio.warp_bins=32",
                                "video.frame_size=32", "video.pose_frames=8"])
    sep = Separator(SeparationSystem(config).eval())
    empty = video("empty", 1.0, 0)
    empty.audio = np.zeros(0, np.float32)  # nothing to loop into a window
    with pytest.raises(TribertError, match="^empty: no audio samples to separate"):
        sep.separate([empty, video("b", 1.0, 1)], pose="none")
