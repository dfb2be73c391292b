"""Separation of real video files: the model sees what training saw; inputs are checked first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tribert.data.clip import Clip
from tribert.data.mixing import MixDataset, MixSpec
from tribert.data.pose_detect import mediapipe_available
from tribert.data.prepare import prepare
from tribert.data.synth import generate
from tribert.config import Config
from tribert.engine.system import SeparationSystem
from tribert.separate import Separator

TINY = ["model.size=tiny", "audio.crop_samples=8191", "audio.warp_bins=32", "video.frame_size=32",
        "video.pose_frames=8"]
POSE = "mediapipe" if mediapipe_available() else "none"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """Two SynthMUSIC solos as real MP4s (H.264 + AAC), 96x96 frames, 2.5 s."""
    root = tmp_path_factory.mktemp("synth")
    generate(root, 2, seed=3, duration=2.5, workers=1, kinds=(1.0, 0.0, 0.0), splits=(1, 0, 0),
             frame_size=96, progress=False)
    return root, sorted((root / "videos").glob("*.mp4"))


def tiny_system() -> SeparationSystem:
    torch.manual_seed(0)
    return SeparationSystem(Config.load(overrides=TINY)).eval()


def model_inputs(sep: Separator, videos) -> dict:
    """What the model is given in the first window of ``sep.separate(videos)`` (windows go through
    the model in batches, window-major: the first forward's first V items are the first window)."""
    seen: dict = {}

    def record(module, args, kwargs):
        if not seen:
            seen.update({k: kwargs[k][:len(videos)].clone() for k in ("frames", "pose", "mix_logmag")})

    handle = sep.system.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        sep.separate(videos, pose=POSE)
    finally:
        handle.remove()
    return seen


def test_separator_inputs_equal_the_training_item_of_the_prepared_clip(synth, tmp_path):
    """For the same MP4s, what the separator feeds the model is what training feeds it from the
    clips ``tribert prepare`` made of them. Both go through one path (stream the frames at 8 fps,
    store them 224 px JPEG, detect pose on the stored frames, 16-bit audio; PIL-resize the stored
    frames to the model's size), so the codec losses (H.264, JPEG q90, 16-bit PCM) are the same on
    both sides: frames and pose must be equal, the spectrogram equal up to float summation order
    (1e-5). The separator before this fix read the video at its own size and resized it with
    torch bilinear: its frames differed by ~0.1 (normalised units) on average."""
    root, videos = synth
    system = tiny_system()
    cfg = system.config
    report = prepare(videos, tmp_path / "prepared", pose=POSE, workers=1, min_duration=1.0, progress=False)
    assert report.ok, [r.reason for r in report.failed]
    clips = [Clip(tmp_path / "prepared" / v.stem) for v in videos]
    spec = MixSpec("m", tuple(c.meta.id for c in clips), (0, 0), (1.0, 1.0))  # first window, gain 1
    item = MixDataset(clips, cfg.audio, cfg.video, cfg.data, mixtures=[spec])[0]

    seen = model_inputs(Separator(system), videos)
    assert seen["frames"].shape == item.frames[0].shape == (2, cfg.video.num_frames, 3, 32, 32)
    assert torch.equal(seen["frames"], item.frames[0])
    assert torch.equal(seen["pose"], item.pose[0])
    torch.testing.assert_close(seen["mix_logmag"][:1], item.mix_logmag, atol=1e-5, rtol=0)
    if POSE == "mediapipe":  # solos: one performer searched in the whole frame, as prepare does
        conf = seen["pose"][..., 2]  # [V, P, Tp, 68]
        assert conf[:, 0].max() > 0 and conf[:, 1].max() == 0


# --- separate --mixture with cue-only videos; inputs checked first; quiet pose library ------------

@pytest.fixture(scope="module")
def cue_inputs(synth, tmp_path_factory):
    """The two MP4s without their audio tracks, the mixture of their audio as a WAV, a checkpoint."""
    from tribert import media
    from tribert.data.clip import write_wav

    root, videos = synth
    folder = tmp_path_factory.mktemp("cues")
    silent = []
    for v in videos:
        silent.append(folder / f"{v.stem}_video_only.mp4")
        media.write_mp4(silent[-1], media.read_video(v, fps=8.0), 8.0)  # no audio track
    clips = [Clip(root / "train" / v.stem) for v in videos]
    write_wav(folder / "mixture.wav", sum(c.audio() for c in clips) / 2, 11025)
    system = tiny_system()
    torch.save({"state_dict": system.state_dict(), "hyper_parameters": {"config": system.config.to_dict()}},
               folder / "tiny.ckpt")
    return silent, folder / "mixture.wav", folder / "tiny.ckpt"


def test_partitioned_stems_add_up_to_the_mixture(synth):
    _, videos = synth
    torch.manual_seed(0)
    system = SeparationSystem(Config.load(overrides=[*TINY, "model.mask_sharing=partition"])).eval()
    result = Separator(system).separate(videos, pose=POSE)
    mix = result.mixture[:len(result.stems[0])]
    residual = sum(result.stems) - mix
    assert np.sqrt(np.mean(residual ** 2)) < 1e-3 * np.sqrt(np.mean(mix ** 2))
    # without the sharing the two stems are free, and do not add up
    free = Separator(tiny_system()).separate(videos, pose=POSE)
    assert np.sqrt(np.mean((sum(free.stems) - mix) ** 2)) > 0.05 * np.sqrt(np.mean(mix ** 2))


def test_cue_only_videos_separate_a_given_mixture(cue_inputs, tmp_path):
    from typer.testing import CliRunner

    from tribert.cli import app
    from tribert.data.clip import read_wav
    from tribert.errors import MediaError

    silent, mixture, ckpt = cue_inputs
    args = ["separate", *map(str, silent), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--no-pose"]
    res = CliRunner().invoke(app, args + ["--mixture", str(mixture)])
    assert res.exit_code == 0, res.output
    mix, _ = read_wav(mixture)
    for v in silent:
        stem, _ = read_wav(tmp_path / "out" / f"{v.stem}.wav")
        assert len(stem) == len(mix) and np.abs(stem).max() > 1e-3
    res = CliRunner().invoke(app, args)  # without a mixture the videos' own audio is needed
    assert isinstance(res.exception, MediaError), res.output
    assert str(silent[0]) in str(res.exception) and "no audio track" in str(res.exception)


def test_every_input_is_checked_before_pose_detection(cue_inputs, synth, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import tribert.data.pose_detect as pose_detect
    from tribert.cli import app
    from tribert.errors import CheckpointError, MediaError

    def no_detection(*args, **kwargs):
        raise AssertionError("pose detection started before the inputs were checked")

    monkeypatch.setattr(pose_detect, "get_detector", no_detection)
    silent, mixture, ckpt = cue_inputs
    _, videos = synth
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio")
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(ckpt.read_bytes()[:500])
    cases = [  # (videos, extra arguments, error type, text in the message)
        (videos, ["--checkpoint", str(ckpt), "--mixture", str(broken)], MediaError, str(broken)),
        (videos, ["--checkpoint", str(ckpt), "--mixture", str(tmp_path / "gone.wav")], MediaError, "file not found"),
        ([videos[0], tmp_path / "gone.mp4"], ["--checkpoint", str(ckpt)], MediaError, "gone.mp4: file not found"),
        (videos, ["--checkpoint", str(damaged)], CheckpointError, "not a readable checkpoint"),
    ]
    for inputs, extra, kind, text in cases:
        res = CliRunner().invoke(app, ["separate", *map(str, inputs), "--out", str(tmp_path / "out"), *extra])
        assert isinstance(res.exception, kind), (extra, res.output, res.exception)
        assert text in str(res.exception) and "\n" not in str(res.exception)
    with pytest.raises(MediaError, match="broken.wav"):  # the Python API checks the same way
        Separator(tiny_system()).separate(videos, mixture=broken)


@pytest.mark.skipif(POSE != "mediapipe", reason="mediapipe is not installed")
def test_pose_library_log_lines_are_silenced_and_ours_kept(cue_inputs, synth, tmp_path):
    import re
    import subprocess
    import sys

    _, _, ckpt = cue_inputs
    _, videos = synth
    proc = subprocess.run([sys.executable, "-m", "tribert.cli", "separate", *map(str, videos),
                           "--checkpoint", str(ckpt), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    native = [ln for ln in proc.stderr.splitlines() if re.match(r"[IWEF]\d{4} ", ln)]
    assert not native, native[:3]  # e.g. "W0000 ... inference_feedback_manager.cc:114] ..."
    assert proc.stdout.count("wrote ") == 6  # mixture, 2 x (WAV + MP4), figure


def test_the_pair_benchmark_scores_an_oracle_high_and_the_mixture_at_zero(tmp_path):
    from types import SimpleNamespace

    from helpers import benchmark, make_clip

    separate_pairs = benchmark("separate_pairs")

    pair = [make_clip(tmp_path, "a", ["violin"], [440.0]), make_clip(tmp_path, "b", ["flute"], [1250.0])]
    refs = np.stack([Clip(p).audio() / 2 for p in pair])
    crop = 4000

    class Fake:  # Separator's interface: stems of the clips' mean, or of the given mixture
        config = SimpleNamespace(audio=SimpleNamespace(crop_samples=crop))

        def __init__(self, oracle: bool):
            self.oracle = oracle

        def separate(self, videos, mixture=None):
            n = refs.shape[1] if mixture is None else len(mixture)
            stems = refs[:, :n] if self.oracle else np.stack([refs.sum(0)[:n]] * 2)
            return SimpleNamespace(stems=list(stems))

    oracle = separate_pairs.pair_gains(Fake(True), pair)
    assert set(oracle) == {"whole clip", "first crop, windowed", "first crop, one window"}
    assert all(len(g) == 2 and min(g) > 30 for g in oracle.values()), oracle
    unprocessed = separate_pairs.pair_gains(Fake(False), pair)
    assert all(abs(x) < 1e-3 for g in unprocessed.values() for x in g), unprocessed


def test_outputs_never_replace_inputs_and_never_share_a_name(cue_inputs, synth, tmp_path, monkeypatch):
    """--out in the videos' own folder would write <video>.mp4 over the video, and mixture.wav over
    a mixture of that name: refused in one line before the model is loaded, inputs untouched. Two
    videos of one file name (violin/take.mp4, cello/take.mp4) give two sources, take and take-2."""
    import shutil

    from typer.testing import CliRunner

    import tribert.separate as separate_module
    from tribert.cli import app
    from tribert.errors import TribertError

    silent, mixture, ckpt = cue_inputs
    _, videos = synth
    here = tmp_path / "here"
    here.mkdir()
    mine = [Path(shutil.copy(v, here / v.name)) for v in videos]
    my_mix = Path(shutil.copy(mixture, here / "mixture.wav"))
    before = {p: p.read_bytes() for p in (*mine, my_mix)}

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the outputs were checked")

    monkeypatch.setattr(separate_module.Separator, "from_checkpoint", no_model)
    for extra, victim in (([], mine[0]), (["--mixture", str(my_mix)], my_mix)):
        res = CliRunner().invoke(app, ["separate", *map(str, mine), "--checkpoint", str(ckpt), "--out", str(here),
                                       "--no-pose", *extra])
        assert isinstance(res.exception, TribertError), res.output
        assert str(res.exception).startswith(f"{victim}: the output") and "give another --out" in str(res.exception)
    assert all(p.read_bytes() == data for p, data in before.items())
    saved = tmp_path / "saved"  # a checkpoint kept under an output's name in --out (separation.png) was replaced
    saved.mkdir()
    kept = Path(shutil.copy(ckpt, saved / "separation.png"))
    res = CliRunner().invoke(app, ["separate", *map(str, videos), "--checkpoint", str(kept), "--out", str(saved),
                                   "--no-pose"])
    assert isinstance(res.exception, TribertError) and str(res.exception).startswith(f"{kept}: the output")
    assert kept.read_bytes() == Path(ckpt).read_bytes()
    afile = tmp_path / "afile.txt"
    afile.write_text("keep")
    res = CliRunner().invoke(app, ["separate", *map(str, mine), "--checkpoint", str(ckpt), "--out", str(afile / "x")])
    assert isinstance(res.exception, TribertError) and "is not a folder" in str(res.exception)
    assert afile.read_text() == "keep"
    taken = tmp_path / "taken"
    (taken / f"{mine[0].stem}.wav").mkdir(parents=True)  # a stem's name held by a folder: was a traceback after the work
    res = CliRunner().invoke(app, ["separate", *map(str, mine), "--checkpoint", str(ckpt), "--out", str(taken),
                                   "--no-pose"])
    assert isinstance(res.exception, TribertError) and "name is taken by a folder" in str(res.exception)
    assert str(res.exception).startswith(str(taken / f"{mine[0].stem}.wav"))
    monkeypatch.undo()
    res = CliRunner().invoke(app, ["separate", *map(str, mine), "--checkpoint", str(ckpt), "--out",
                                   str(tmp_path / "gpu"), "--no-pose", "--device", "gpu"])
    assert isinstance(res.exception, TribertError) and "device must be cpu, cuda, cuda:N or auto" in str(res.exception)
    # the same file name twice: two sources, two outputs each
    for folder in ("violin", "cello"):
        (tmp_path / folder).mkdir()
    pair = [shutil.copy(videos[0], tmp_path / "violin" / "take.mp4"), shutil.copy(videos[1], tmp_path / "cello" / "take.mp4")]
    result = Separator(tiny_system()).separate(pair, pose="none")
    assert result.names == ["take", "take-2"]
    written = result.write(tmp_path / "out", figure=False)
    assert len(set(written)) == len(written) == 5


def test_outputs_are_written_as_a_whole_set_or_not_at_all(synth, tmp_path, monkeypatch, caplog):
    """A Ctrl-C while the outputs are written left some of this run's files beside an earlier
    run's; now the earlier set stays whole, and no temporary file is left."""
    import tribert.media
    from tribert.errors import TribertError

    _, videos = synth
    sep = Separator(tiny_system())
    first = sep.separate(videos, pose="none")
    out = tmp_path / "out"
    first.write(out, figure=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = tribert.media.write_mp4
    calls = []

    def interrupted(*args, **kwargs):  # Ctrl-C as the second MP4 is written
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(tribert.media, "write_mp4", interrupted)
    second = sep.separate(videos[::-1], pose="none")
    with pytest.raises(KeyboardInterrupt):
        second.write(out, figure=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # as it was: no half set, no temporary
    monkeypatch.undo()
    # a duet separation of other sources into the same folder: its mixture.wav was replaced and the
    # earlier stems left beside the new ones; now refused, the folder as it was
    other = sep.separate([videos[0]], pose="none")
    with pytest.raises(TribertError, match="out: holds an earlier separation of other sources \\(.*wav"):
        other.write(out, figure=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    second.write(out, figure=False)  # the same sources again: replaced as a set
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    (out / "mixture.wav").unlink()  # other WAVs, no earlier separation: written beside them, named
    with caplog.at_level("WARNING", logger="tribert"):
        other.write(out, figure=False)
    assert "also holds 4 file(s) this separation did not write" in caplog.text


def test_a_separation_run_again_beside_its_input_video_replaces_its_own_outputs(synth, tmp_path):
    import shutil

    _, videos = synth
    out = tmp_path / "takes"
    out.mkdir()
    video = Path(shutil.copy(videos[0], out / "duet.mp4"))  # --out is the video's own folder
    sep = Separator(tiny_system())
    for _ in range(2):  # the second was refused: the input counted as an earlier separation's stem
        written = sep.separate([video], pose="none").write(out, figure=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(["duet.mp4", ".tribert-separation.json",
                                                            *(p.name for p in written)])
    assert video.read_bytes() == Path(videos[0]).read_bytes()


@pytest.mark.parametrize("taken", ["mixture.wav", "separation.png", "{stem}.wav", "{stem}.mp4"])
def test_a_file_no_separation_wrote_is_never_replaced(synth, tmp_path, taken):
    """A user's own mixture.wav (or a file with a stem's name) in --out was replaced without a
    word; only what an earlier separation wrote there (its manifest) may be replaced."""
    from tribert.errors import TribertError

    _, videos = synth
    result = Separator(tiny_system()).separate(videos, pose="none")
    out = tmp_path / "song"
    out.mkdir()
    mine = out / taken.format(stem=result.names[0])
    mine.write_bytes(b"the user's own recording")
    with pytest.raises(TribertError, match="taken by a file no separation wrote here") as err:
        result.write(out, figure=True)
    assert str(err.value).startswith(f"{mine}: ")
    assert sorted(p.name for p in out.iterdir()) == [mine.name] and mine.read_bytes() == b"the user's own recording"
    mine.unlink()
    for clips in (videos[0].parent.parent / "train" / videos[0].stem, videos[0].parent.parent / "train"):
        # a clip was written into; a folder of clips got stems among them
        with pytest.raises(TribertError, match="holds prepared clips: give the separated files a folder of their own"):
            result.write(clips)
    first = result.write(out, figure=True)  # then an earlier separation's own files are replaced
    assert result.write(out, figure=False) == first[:-1]  # its figure is left, and stays its own:
    assert result.write(out, figure=True) == first


def test_a_given_mixture_needs_nothing_of_the_videos_audio_and_lengths_are_noted(cue_inputs, synth):
    from tribert.data.clip import read_wav
    from tribert.errors import TribertError
    from tribert.separate import load_video

    _, mixture, _ = cue_inputs
    _, videos = synth
    cue = load_video(videos[0], 11025, 8.0, pose="none", audio_required=False)
    assert not np.any(cue.audio)  # never decoded (a damaged audio track cannot stop a cue)
    mix, _ = read_wav(mixture)
    sep = Separator(tiny_system())
    assert sep.separate(videos, mixture=mix, pose="none").notes == []  # the same length
    longer = sep.separate(videos, mixture=np.concatenate([mix, mix]), pose="none")
    assert len(longer.notes) == 1 and "the mixture is 5.0 s long, the shortest video 2.5 s" in longer.notes[0]
    # 20 ms: looped to fill the window (the tiny model's is 0.74 s); separated, with a note
    short = sep.separate(videos, mixture=mix[:220], pose="none")
    assert [len(x) for x in short.stems] == [220, 220] and np.isfinite(short.stems).all()
    assert short.notes == ["the mixture is only 0.02 s long: it is looped to fill the 0.7-s window the model hears, "
                           "and so short a piece separates worse (README, \"Separating videos\")"]
    assert sep.separate(videos, mixture=mix[:1366], pose="none").notes == []  # 0.124 s: just over a sixth
    bad = mix.copy()
    bad[7] = np.nan
    with pytest.raises(TribertError, match="NaN or infinite"):
        sep.separate(videos, mixture=bad, pose="none")


def test_a_video_given_twice_and_a_mixture_without_sound_are_refused_before_any_work(synth, tmp_path, monkeypatch):
    from tribert import media
    from tribert.errors import TribertError
    from tribert.separate import inputs

    monkeypatch.setattr(inputs, "load_video", lambda *a, **k: pytest.fail("decoded before the inputs were checked"))
    _, videos = synth
    sep = Separator(tiny_system())
    with pytest.raises(TribertError, match=r"given twice \(also as .*\): a video mixed with itself"):
        sep.separate([videos[0], videos[0].parent / ".." / videos[0].parent.name / videos[0].name], pose="none")
    silent = tmp_path / "silent.mp4"
    media.write_mp4(silent, np.zeros((8, 32, 32, 3), np.uint8), 8)
    with pytest.raises(TribertError, match="silent.mp4: no audio track: nothing to separate in this mixture"):
        sep.separate(videos, mixture=silent, pose="none")


def test_a_video_whose_sound_outlasts_its_picture_is_separated_whole_with_a_note(synth):
    from tribert.separate import VideoInput, load_video

    _, videos = synth
    full = load_video(videos[0], 11025, 8.0, pose="none")
    short = VideoInput("short", full.frames[:8], full.audio, full.pose, full.fps, full.pose_fps)  # 1 s of picture
    result = Separator(tiny_system()).separate([short, short], pose="none")
    assert result.notes == ["the audio is 2.5 s long, the shortest video's picture 1.0 s: past 1.0 s the videos "
                            "give the model no new frames or pose"]
    assert len(result.stems[0]) == len(full.audio)  # the user's sound is kept


def test_a_mixture_given_as_samples_is_read_as_a_mixture_file_would_be(cue_inputs, synth):
    from tribert.audio import resample
    from tribert.data.clip import read_wav
    from tribert.errors import TribertError

    _, mixture, _ = cue_inputs
    _, videos = synth
    mix, _ = read_wav(mixture)
    sep = Separator(tiny_system())
    mono = sep.separate(videos, mixture=mix, pose="none").stems
    for given in (np.stack([mix, mix]), np.stack([mix, mix], axis=1), torch.from_numpy(mix)):
        stems = sep.separate(videos, mixture=given, pose="none").stems  # stereo either way round, a tensor
        assert all(np.allclose(s, m, atol=1e-6) for s, m in zip(stems, mono))
    pcm = np.round(mix * 32767).astype(np.int16)  # as a WAV reader hands them over
    stems = sep.separate(videos, mixture=pcm, pose="none").stems
    assert all(np.abs(s - m).max() < 2e-3 for s, m in zip(stems, mono))  # not 32768x louder
    pcm8 = np.round(np.clip(mix, -1, 1) * 127.5 + 127.5).astype(np.uint8)  # 8-bit WAV: unsigned, silence at 128
    stems = sep.separate(videos, mixture=pcm8, pose="none").stems
    assert all(np.abs(s - m).max() < 2e-2 for s, m in zip(stems, mono))  # no +0.5 offset
    fast = sep.separate(videos, mixture=resample(mix, 11025, 22050), mixture_rate=22050, pose="none").stems
    assert abs(len(fast[0]) - len(mono[0])) <= 2  # at the model's rate, not twice as long
    for bad, message in [(np.zeros(0, np.float32), "no samples"), (np.zeros((2, 3, 100)), "mono"),
                         (np.array(["a", "b"]), "numbers")]:
        with pytest.raises(TribertError, match=message):
            sep.separate(videos, mixture=bad, pose="none")
    for rate in (10, 0, 22050.5, True):  # 0 was read as "the model's rate", 22050.5 accepted
        with pytest.raises(TribertError, match="mixture_rate"):
            sep.separate(videos, mixture=mix, mixture_rate=rate, pose="none")
    with pytest.raises(TribertError, match=r"must lie in \[-1, 1\]; these reach 9\d\d\d"):  # int16 scale as floats
        sep.separate(videos, mixture=mix / np.abs(mix).max() * 9830, pose="none")
    listed = sep.separate(videos, mixture=list(mix), pose="none").stems  # a plain list of samples
    assert all(np.array_equal(s, m) for s, m in zip(listed, mono))
    with pytest.raises(TribertError, match="mixture must be a file path or samples"):
        sep.separate(videos, mixture={"samples": mix}, pose="none")


def test_pose_of_a_kind_the_checkpoint_never_trained_on_is_noted(synth):
    """A SynthMUSIC checkpoint (ground-truth pose) given MP4s with no pose, or MediaPipe's, scores
    about the mixture: said in a note. Clip folders with the training's pose, or a checkpoint that
    does not say what it trained on, give none."""
    root, videos = synth
    system = tiny_system()
    sep = Separator(system)
    assert sep.separate(videos, pose="none").notes == []  # no record: nothing to compare
    system.hparams["train_pose_sources"] = {"ground_truth": 40}
    (note,) = sep.separate(videos, pose="none").notes
    assert "trained on ground_truth pose (40 clips); these inputs bring no pose, which it never saw" in note
    clips = [root / "train" / v.stem for v in videos]
    assert sep.separate(clips, pose="none").notes == []  # prepared clips carry their ground-truth pose
    # inputs decoded once and given as VideoInputs (as a benchmark does) carry their kind of pose too
    from tribert.separate.inputs import load_video

    a, v = system.config.audio, system.config.video
    decoded = [load_video(x, a.sample_rate, v.fps, "none", max_persons=v.max_persons) for x in videos]
    assert sep.separate(decoded).notes == [note]
    assert sep.separate([load_video(c, a.sample_rate, v.fps, max_persons=v.max_persons) for c in clips]).notes == []
    # MediaPipe's pose is noted too, unless the checkpoint trained with a detector's errors added to its pose
    import dataclasses

    detected = [dataclasses.replace(x, pose_source="mediapipe") for x in decoded]
    assert "these inputs bring mediapipe pose" in sep.separate(detected).notes[0]
    system.hparams["train_pose_sources"] = {"none": 9}  # trained without pose: said so in words
    assert "trained on no pose (9 clips); these inputs bring mediapipe pose," in sep.separate(detected).notes[0]
    system.hparams["train_pose_sources"] = {"ground_truth": 40}
    system.config.data.pose_augment = 0.5
    assert sep.separate(detected).notes == []
    (milder,) = sep.separate(decoded).notes  # "none" still unseen, but a lost performer was seen
    assert "with a detector's errors added, never without pose" in milder and "mixture's quality" not in milder
    system.config.data.pose_missing = 0.25  # ... and pose withheld in training: nothing left unseen
    assert sep.separate(decoded).notes == []


def test_one_video_may_be_given_as_a_path_instead_of_a_list(synth):
    _, videos = synth
    result = Separator(tiny_system()).separate(str(videos[0]), pose="none")
    assert result.names == [f"{videos[0].stem}_person0", f"{videos[0].stem}_person1"]
    # any iterable of paths (a generator), bytes paths; anything else one line, not a traceback
    from tribert.errors import TribertError

    sep = Separator(tiny_system())
    assert sep.separate((v for v in videos), pose="none").names == [v.stem for v in videos]
    assert sep.separate([bytes(videos[0]), str(videos[1])], pose="none").names == [v.stem for v in videos]
    for bad in ([videos[0], None], 3):
        with pytest.raises(TribertError, match="video"):
            sep.separate(bad, pose="none")


def test_progress_bars_cover_decoding_and_separating_and_change_nothing(synth, monkeypatch):
    """A long video takes minutes to decode and separate: with ``progress`` separate draws a bar
    over each video's frames (sized from its duration) and one over the windows (through
    ``tribert.progress.track``: on a terminal only). The stems are those of a run without bars."""
    import tribert.data.prepare
    import tribert.separate.windows
    from tribert.progress import track

    _, videos = synth
    sep = Separator(tiny_system())
    bars: list[tuple[str, float | None, int]] = []

    def spy(items, description, **kwargs):  # records the bars that are drawn (enabled)
        if kwargs.get("enabled", True):
            items = list(items)
            bars.append((description, kwargs.get("total"), len(items)))
        return track(items, description, **kwargs)

    monkeypatch.setattr(tribert.data.prepare, "track", spy)
    monkeypatch.setattr(tribert.separate.windows, "track", spy)
    quiet = sep.separate(videos, pose="none").stems
    assert bars == []
    shown = sep.separate(videos, pose="none", progress=True).stems
    assert [d for d, _, _ in bars] == [f"decoding {videos[0]}", f"decoding {videos[1]}", "separating"]
    for _, total, n in bars[:2]:
        assert n == 20 and total == pytest.approx(20, abs=1)  # 2.5 s at 8 fps
    assert all(np.array_equal(a, b) for a, b in zip(shown, quiet))


def test_a_device_torch_cannot_reach_is_one_line_before_the_checkpoint_is_read(tmp_path):
    from tribert.device import resolve_device
    from tribert.errors import TribertError

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(TribertError, match="device must be cpu, cuda, cuda:N or auto, got 'gpu'"):
        Separator.from_checkpoint(tmp_path / "missing.ckpt", device="gpu")
    with pytest.raises(TribertError, match=f"this machine has {torch.cuda.device_count()} CUDA GPU|sees no CUDA GPU"):
        Separator.from_checkpoint(tmp_path / "missing.ckpt", device="cuda:99")


def test_the_audio_only_control_is_refused_before_any_video_is_decoded(synth, monkeypatch):
    import tribert.separate as separate_module
    from tribert.errors import TribertError

    _, videos = synth
    torch.manual_seed(0)
    control = SeparationSystem(Config.load(overrides=TINY + ["model.kind=audio_only"])).eval()
    monkeypatch.setattr(separate_module, "load_video", lambda *a, **k: pytest.fail("decoded a video"))
    with pytest.raises(TribertError, match="audio_only baseline separates given each source's true class"):
        Separator(control).separate(videos, pose="none")
