"""Separate real recordings with a trained checkpoint: the Python API behind ``tribert separate``.

    from tribert.separate import Separator
    sep = Separator.from_checkpoint("runs/.../checkpoints/last.ckpt")
    result = sep.separate(["violin.mp4", "flute.mp4"])        # mix two videos, then separate
    result = sep.separate(["duet.mp4"])                       # the two performers of a duet
    result = sep.separate(["a.mp4", "b.mp4"], mixture="song.wav")  # a given recording, videos as cues
    result.write("out/")                                      # WAVs, MP4s and a figure

Inputs are video files (any container FFmpeg reads) or prepared clip folders (frames, audio and
pose as ``tribert prepare`` / ``tribert synth`` write them). A video file is prepared exactly as
training videos are (see :func:`load_video`), so a model trained on prepared videos sees what
it saw in training (one trained on SynthMUSIC's exact skeletons does not: MediaPipe's pose differs,
and separation falls to about the mixture; a note says so, README "Separating videos"). Long
recordings are processed in half-overlapping windows of the model's crop length, joined by
overlap-add; each window sees the frames at its centre and the pose over its span. With a
``mixture`` recording the videos are only visual and pose cues and need no audio track. Every
input is checked before any heavy work.

Pose of a video file comes from mediapipe (``pose="mediapipe"``): the whole frame of each video
when there are several (solos), left and right halves of a single video (a duet). With
``pose="none"`` (video files only: a prepared clip folder brings its stored pose), or when nobody
is found, the pose stream gets confidence-0 input (no person visible): the model still runs, on
vision and audio, as well as its training taught it to without pose (``data.pose_missing``; a
model that always had pose can do little without it).

Modules: ``inputs`` (decoding, pose, input checks), ``windows`` (windowed inference and
overlap-add), ``output`` (the result, written as WAV / MP4 / figure); this one holds ``Separator``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from tribert.data.clip import Clip, is_clip
from tribert.data.indexes import free_name
from tribert.device import resolve_device
from tribert.errors import TribertError
from tribert.separate.inputs import POSE_CHOICES, VideoInput, check_inputs, check_video, load_video
from tribert.separate.output import SeparationResult, check_outputs
from tribert.separate.windows import separate_windows


class Separator:
    """A trained separator (TriBERT or a baseline) ready for inference on CPU or GPU."""

    def __init__(self, system, device: str | torch.device = "cpu"):
        self.device = resolve_device(device)  # "cpu", "cuda[:N]" or "auto"
        self.system = system.to(self.device).eval()
        self.config = system.config

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> "Separator":
        """A Separator of the model in ``path``: a training checkpoint (its weight average, where it
        kept one) or a ``tribert export`` file, read with ``weights_only=True``. ``device``: "cpu",
        "cuda", "cuda:N" or "auto". A bad file or device is a one-line ``TribertError``."""
        from tribert.engine.checkpoint import load_system

        resolve_device(device)  # before the checkpoint is read
        return cls(load_system(path), device)

    # --- separation -----------------------------------------------------------------------------
    @torch.no_grad()
    def separate(self, videos, mixture: str | Path | np.ndarray | torch.Tensor | None = None,
                 pose: str = "mediapipe", mixture_rate: int | None = None,
                 progress: bool = False) -> SeparationResult:
        """Separate. ``videos``: a list of paths (or VideoInput); one path alone may be given as is.
        One video alone is taken as a duet (its two performers); two or more videos give one source
        each. ``mixture``: a recording to separate instead of the (1/N-scaled) sum of the videos'
        own audio: a file FFmpeg reads, or samples (numpy or torch; mono [N], or [channels, N] /
        [N, channels] with up to 8 channels, averaged; integer PCM is scaled to [-1, 1]) at
        ``mixture_rate`` Hz (default: the model's rate, ``config.audio.sample_rate``). ``progress``:
        bars over the frames being decoded and the windows being separated, on a terminal."""
        a, v = self.config.audio, self.config.video
        if self.config.model.kind == "audio_only":
            raise TribertError("the audio_only baseline separates given each source's true class (a control for "
                               "evaluation), which separation has no input for: use TriBERT, sound_of_pixels "
                               "or music_gesture")
        videos = _video_list(videos)
        if not videos:
            raise TribertError("give at least one video")
        if pose not in POSE_CHOICES:
            raise TribertError(f"pose must be one of {', '.join(POSE_CHOICES)}, got {pose!r}")
        check_inputs(videos, mixture)  # before the heavy work (decoding frames, pose detection)
        files = [x for x in videos if not isinstance(x, VideoInput)]
        mix = None
        if isinstance(mixture, (list, tuple)):
            mixture = np.asarray(mixture)
        if isinstance(mixture, (np.ndarray, torch.Tensor)):
            mix = mixture_samples(mixture, a.sample_rate if mixture_rate is None else mixture_rate, a.sample_rate)
        elif mixture is not None and not isinstance(mixture, (str, Path)):
            raise TribertError(f"mixture must be a file path or samples (numpy, torch or a list), got "
                               f"{type(mixture).__name__}")
        elif mixture is not None:
            from tribert import media

            mix = media.read_audio(mixture, sample_rate=a.sample_rate)
        if pose == "mediapipe" and any(not (Path(x).is_dir() and is_clip(x)) for x in files):
            from tribert.data.pose_detect import require_mediapipe

            require_mediapipe()
        duet = len(videos) == 1  # one video: its two performers (half frames); else one solo each
        inputs = [x if isinstance(x, VideoInput) else
                  load_video(x, a.sample_rate, v.fps, pose, persons=2 if duet else 1, max_persons=v.max_persons,
                             audio_required=mixture is None, progress=progress) for x in videos]
        if mix is None and (silent := next((x for x in inputs if not len(x.audio)), None)) is not None:
            raise TribertError("no audio samples to separate (give a mixture recording, mixture=)",
                               silent.path or silent.name)
        notes = length_notes(inputs, mix, a.sample_rate, a.crop_samples) + self.pose_notes(inputs)
        if mix is None:
            length = min(len(x.audio) for x in inputs)
            mix = sum(x.audio[:length] for x in inputs) / len(inputs)
        objects = [[0, 1]] if duet else [[-1] for _ in inputs]
        source_video = [0, 0] if duet else list(range(len(inputs)))
        result = self._run(mix, inputs, objects, source_names(inputs), source_video, progress)
        result.mixture_path = str(mixture) if isinstance(mixture, (str, Path)) else ""
        result.notes = notes
        return result

    def pose_notes(self, inputs: list[VideoInput]) -> list[str]:
        """A note when these inputs bring pose of a kind the checkpoint never trained on: the pose
        stream then sees another distribution (benchmarks/separate_from_video.py, ten SynthMUSIC test
        pairs: a checkpoint trained on the generator's skeletons gives 11.39 dB per stem from the
        clip folders and 1.76 from the MP4s with MediaPipe pose; one trained on MediaPipe pose of
        the same clips' MP4s 4.72 and 7.79; the mixture 0.08). A checkpoint trained on exact pose
        with a detector's errors added (``data.pose_augment``) has seen a detector's kind of pose."""
        trained = self.system.hparams.get("train_pose_sources") or {}
        if not trained or self.config.model.kind not in ("tribert", "music_gesture"):
            return []
        given = sorted({x.pose_source for x in inputs if x.pose_source})  # "": a VideoInput made by hand
        withheld = self.config.data.pose_missing > 0  # trained with some clips' pose withheld: "none" seen
        detector_like = self.config.data.pose_augment > 0  # ... or with a detector's errors: any detector seen
        unseen = [g for g in given if g not in trained and not (g == "none" and withheld)
                  and not (g != "none" and detector_like)]
        if not unseen:
            return []
        seen = ", ".join(f"{_pose_kind(k)} ({n} clips)" for k, n in sorted(trained.items()))
        if unseen == ["none"] and detector_like:
            # A detector's errors lose the performer in some frames, never in all: no pose costs
            # less than to a plain checkpoint (SynthMUSIC MP4s, 30 pairs: 5.7-7.0 dB per stem
            # against 7.2-7.8 with MediaPipe's pose and 3.4 for a checkpoint trained without errors).
            return [f"this checkpoint trained on {seen} with a detector's errors added, never without "
                    f"pose; these inputs bring none, and separation is likely to be a little lower than with "
                    f"pose (train with data.pose_missing for videos without pose)"]
        return [f"this checkpoint trained on {seen}; these inputs bring {' and '.join(map(_pose_kind, unseen))}, "
                f"which it never saw, and separation can fall to about the mixture's quality: give prepared clip "
                f"folders with the training's kind of pose, or train on clips prepared as these are (or, on "
                f"exact pose, with a detector's errors added: data.pose_augment)"]

    def _run(self, mix: np.ndarray, inputs: list[VideoInput], objects: list[list[int]], names: list[str],
             source_video: list[int], progress: bool = False) -> SeparationResult:
        run = separate_windows(self.system.model, self.system.frontend, self.config, mix, inputs, objects,
                               self.device, progress=progress)
        return SeparationResult(mix, list(run.stems), names, self.config.audio.sample_rate, inputs, source_video,
                                run.masks, run.attention, run.mixture_logmag)


def _pose_kind(source: str) -> str:
    """A clip's ``pose_source`` in words: "mediapipe pose", "no pose"."""
    return "no pose" if source == "none" else f"{source} pose"


def _video_list(videos) -> list:
    """``videos`` as a list of Paths and VideoInputs: one path alone, any iterable of them (a
    generator too), str / bytes / os.PathLike paths; anything else is a one-line error."""
    def one(x):
        if isinstance(x, VideoInput):
            return x
        if isinstance(x, (str, bytes, os.PathLike)):
            return Path(os.fsdecode(x))
        raise TribertError(f"each video must be a file or clip folder path, or a VideoInput; got {x!r}")

    if isinstance(videos, (str, bytes, os.PathLike, VideoInput)):
        return [one(videos)]
    try:
        return [one(x) for x in videos]
    except TypeError:
        raise TribertError(f"videos must be a path or a list of paths, got {type(videos).__name__}") from None


def mixture_samples(samples: np.ndarray | torch.Tensor, rate: int, model_rate: int) -> np.ndarray:
    """A mixture given as samples -> mono float32 [N] at the model's rate, or a one-line error."""
    x = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
    if np.issubdtype(x.dtype, np.unsignedinteger):  # unsigned PCM (8-bit WAV): silence at mid-range
        half = float(np.iinfo(x.dtype).max) / 2 + 0.5
        x = (x.astype(np.float64) - half) / half
    elif np.issubdtype(x.dtype, np.integer):
        x = x / float(np.iinfo(x.dtype).max + 1)  # integer PCM, e.g. int16 -> [-1, 1)
    elif not np.issubdtype(x.dtype, np.floating):
        raise TribertError(f"the mixture must hold numbers, got {x.dtype}")
    if x.ndim == 2 and min(x.shape) <= 8:  # channels first or last: the shorter axis
        x = x.mean(axis=0 if x.shape[0] <= x.shape[1] else 1)
    elif x.ndim != 1:
        raise TribertError(f"the mixture must be mono [N] or [channels, N] samples, got shape {tuple(x.shape)}")
    x = x.astype(np.float32)
    if len(x) == 0:
        raise TribertError("the mixture holds no samples")
    if not np.isfinite(x).all():
        raise TribertError("the mixture holds NaN or infinite samples")
    if isinstance(rate, float) and rate.is_integer():
        rate = int(rate)
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate < 1000:
        raise TribertError(f"mixture_rate must be a whole sample rate in Hz (>= 1000), got {rate!r}")
    peak = float(np.abs(x).max())
    if peak > 1.0:  # a WAV holds [-1, 1]: the written mixture would be clipped, the stems scaled wrong
        raise TribertError(f"float samples must lie in [-1, 1]; these reach {peak:.4g} (integer PCM as floats? "
                           f"divide by 32768; or scale the mixture down)")
    if rate != model_rate:
        from tribert.audio import resample

        x = resample(x, rate, model_rate)
    return x


def source_names(videos: list) -> list[str]:
    """The name of each source ``Separator.separate`` makes of ``videos`` (paths or VideoInput),
    the stem of its output files: one video gives its two performers, several one source each.
    Known before anything is decoded; no two alike, and never ``mixture`` (the mixture's file)."""
    stems = [v.name if isinstance(v, VideoInput) else
             (Clip(v).meta.id if Path(v).is_dir() and is_clip(v) else Path(v).stem) for v in videos]
    stems = [stem.lstrip(".") or "video" for stem in stems]  # .take.mp4: its stems not hidden files
    if len(stems) == 1:
        return [f"{stems[0]}_person{j}" for j in (0, 1)]
    names: list[str] = []
    for stem in stems:  # violin/take.mp4 and cello/take.mp4: take, take-2
        names.append(free_name(stem, {"mixture", *names}))
    return names


def length_notes(inputs: list[VideoInput], mixture: np.ndarray | None, sample_rate: int, window: int) -> list[str]:
    """What the user should know about lengths: inputs more than a second apart, and a sound to
    separate under a sixth of the model's ``window`` (samples), which separates worse."""
    shortest = min(len(x.frames) / x.fps for x in inputs)
    audio = [len(x.audio) / sample_rate for x in inputs]
    notes = []
    if mixture is not None:
        seconds = len(mixture) / sample_rate
        if seconds > shortest + 1.0:
            notes.append(f"the mixture is {seconds:.1f} s long, the shortest video {shortest:.1f} s: past "
                         f"{shortest:.1f} s the videos give the model no new frames or pose")
    else:
        seconds = min(audio)
        if max(audio) > min(audio) + 1.0:
            notes.append(f"the videos' audio is {min(audio):.1f} to {max(audio):.1f} s long: they are mixed and "
                         f"separated over the shortest, {min(audio):.1f} s")
        elif min(audio) > shortest + 1.0:
            notes.append(f"the audio is {min(audio):.1f} s long, the shortest video's picture {shortest:.1f} s: "
                         f"past {shortest:.1f} s the videos give the model no new frames or pose")
    if seconds < window / sample_rate / 6:  # under 0.5 s for 3-s windows (benchmarks/input_length.py)
        what = "mixture" if mixture is not None else "sound to separate"
        notes.append(f"the {what} is only {seconds:.2f} s long: it is looped to fill the {window / sample_rate:.1f}-s "
                     f"window the model hears, and so short a piece separates worse (README, \"Separating videos\")")
    return notes


__all__ = ["Separator", "SeparationResult", "VideoInput", "load_video", "check_inputs", "check_video",
           "check_outputs", "source_names", "POSE_CHOICES"]
