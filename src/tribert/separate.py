"""Separate real recordings with a trained checkpoint: the Python API behind ``tribert separate``.

    from tribert.separate import Separator
    sep = Separator.from_checkpoint("runs/.../checkpoints/last.ckpt")
    result = sep.separate(["violin.mp4", "flute.mp4"])        # mix two videos, then separate
    result = sep.separate(["duet.mp4"])                       # the two performers of a duet
    result = sep.separate(["a.mp4", "b.mp4"], mixture="song.wav")  # a given recording, videos as cues
    result.write("out/")                                      # WAVs, MP4s and a figure

Inputs are video files (any container FFmpeg reads) or prepared clip folders (frames, audio and
pose as ``tribert prepare`` / ``tribert synth`` write them). A video file is prepared exactly as
training videos are (see :func:`load_video`), so the model sees what it saw in training. Long
recordings are processed in consecutive windows of the model's crop length; each window sees the
frames at its centre and the pose over its span. With a ``mixture`` recording the videos are only
visual and pose cues and need no audio track. Every input is checked before any heavy work.

Pose of a video file comes from mediapipe (``pose="mediapipe"``): the whole frame of each video
when there are several (solos), left and right halves of a single video (a duet). With
``pose="none"``, or when nobody is found, the pose stream gets confidence-0 input (no person
visible): the model still runs, on vision and audio.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tribert.data.clip import Clip, is_clip, write_wav
from tribert.data.mixing import frame_window, model_frames, pose_window
from tribert.data.prepare import FRAME_SIZE
from tribert.errors import MediaError, TribertError

POSE_CHOICES = ("mediapipe", "none")


@dataclass
class VideoInput:
    """One video as the separator needs it: frames at ``fps``, mono audio, pose in pixels."""

    name: str
    frames: np.ndarray  # uint8 [T, H, W, 3]
    audio: np.ndarray  # float32 [N] at the model's sample rate
    pose: np.ndarray  # float32 [Tp, P, 68, 3] at pose_fps, x/y in pixels of ``frames``
    fps: float
    pose_fps: float
    path: str = ""


@dataclass
class SeparationResult:
    """Separated sources of one mixture. ``stems[i]`` float32 [L]; ``names[i]`` says which source."""

    mixture: np.ndarray
    stems: list[np.ndarray]
    names: list[str]
    sample_rate: int
    videos: list[VideoInput]
    source_video: list[int]  # which video each stem belongs to
    masks: list[np.ndarray] = field(default_factory=list)  # first window's warped mask per stem [F, T]
    attention: list[np.ndarray] = field(default_factory=list)  # per video [h, w] localisation map

    def write(self, out_dir: str | Path, figure: bool = True) -> list[Path]:
        """Write ``<name>.wav`` per stem, ``<name>.mp4`` (its video with the separated audio), the
        mixture WAV and ``separation.png``; returns the written paths."""
        from tribert.media import write_mp4

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "mixture.wav"]
        write_wav(written[0], self.mixture, self.sample_rate)
        for stem, name, v in zip(self.stems, self.names, self.source_video):
            video = self.videos[v]
            write_wav(out / f"{name}.wav", stem, self.sample_rate)
            n_frames = max(1, min(len(video.frames), int(len(stem) / self.sample_rate * video.fps)))
            write_mp4(out / f"{name}.mp4", video.frames[:n_frames], video.fps, stem, self.sample_rate)
            written += [out / f"{name}.wav", out / f"{name}.mp4"]
        if figure:
            written.append(self.figure(out / "separation.png"))
        return written

    def figure(self, path: str | Path) -> Path:
        """Mixture spectrogram, predicted masks and the visual localisation heat map(s)."""
        from matplotlib.figure import Figure  # no pyplot: no process-wide backend or figure registry

        from tribert.io import atomic_path

        cols = 1 + len(self.masks) + len(self.attention)
        fig = Figure(figsize=(3.2 * cols, 3.2))
        axes = fig.subplots(1, cols)
        axes = np.atleast_1d(axes)
        spec = np.abs(np.fft.rfft(np.lib.stride_tricks.sliding_window_view(
            self.mixture[: self.sample_rate * 6], 1022)[::256] * np.hanning(1022), axis=-1)).T
        axes[0].imshow(np.log(spec + 1e-6), origin="lower", aspect="auto", cmap="magma")
        axes[0].set_title("mixture (linear STFT)")
        for ax, mask, name in zip(axes[1:], self.masks, self.names):
            ax.imshow(mask, origin="lower", aspect="auto", cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"mask: {name}")
        for ax, att, video in zip(axes[1 + len(self.masks):], self.attention, self.videos):
            frame = video.frames[len(video.frames) // 2]
            ax.imshow(frame)
            heat = np.asarray(torch.nn.functional.interpolate(
                torch.from_numpy(att)[None, None], size=frame.shape[:2], mode="bilinear")[0, 0])
            ax.imshow(heat, alpha=0.5, cmap="jet")
            ax.set_title(f"where: {video.name}")
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=80)
        return Path(path)


def load_video(path: str | Path, sample_rate: int, fps: float, pose: str = "mediapipe", persons: int = 1,
               max_persons: int = 2, audio_required: bool = True,
               frame_size: int | None = FRAME_SIZE) -> VideoInput:
    """A video file or a prepared clip folder -> VideoInput, as training data sees it.

    A video file goes through ``prepare`` (into a temporary folder) exactly as training videos do:
    frames streamed at ``fps`` and stored with the shorter side ``frame_size`` (JPEG), pose detected
    on those frames (``persons`` 1: the whole frame, a solo; 2: left and right halves, a duet),
    16-bit audio. Only the stored frames stay in memory, never the video at its own resolution.
    ``audio_required=False`` accepts a video without audio (a silent track: visual cues only).
    """
    from tribert.data.indexes import IndexEntry, safe_id
    from tribert.data.prepare import PrepareOptions, prepare_clip

    path = Path(path)
    if path.is_dir() and is_clip(path):
        return _from_clip(Clip(path), sample_rate, max_persons)
    with tempfile.TemporaryDirectory(prefix="tribert-separate-") as tmp:
        entry = IndexEntry(id=safe_id(path.stem), path=path, source=str(path))
        opts = PrepareOptions(fps=fps, frame_size=frame_size, pose=pose, pose_fps=fps, sample_rate=sample_rate,
                              min_duration=1.0 / fps, persons=persons, audio_required=audio_required)
        result = prepare_clip(entry, tmp, opts)
        if result.status != "prepared":
            raise MediaError(result.reason, path)
        video = _from_clip(Clip(Path(tmp) / entry.id), sample_rate, max_persons)
    video.name, video.path = path.stem, str(path)
    return video


def _from_clip(clip: Clip, sample_rate: int, max_persons: int) -> VideoInput:
    if clip.meta.sample_rate != sample_rate:
        raise TribertError(f"clip audio is {clip.meta.sample_rate} Hz, the model wants {sample_rate} Hz", clip.dir)
    return VideoInput(clip.meta.id, clip.frames(), clip.audio(), clip.pose(max_persons), clip.meta.fps,
                      clip.meta.pose_fps, str(clip.dir))


def check_video(path: str | Path, audio_required: bool = True) -> None:
    """Cheap checks of one input (no decoding): a readable video file with the tracks it needs,
    or a prepared clip folder. Raises a one-line MediaError / TribertError naming the file."""
    from tribert import media

    path = Path(path)
    if path.is_dir() and is_clip(path):
        Clip(path)  # reads meta.json
        return
    info = media.probe(path)
    if not info.has_video:
        raise MediaError("no video track", path)
    if audio_required and not info.has_audio:
        raise MediaError("no audio track (give a mixture recording, --mixture, to use this video "
                         "only as visual and pose cues)", path)


class Separator:
    """A trained separator (TriBERT or a baseline) ready for inference on CPU or GPU."""

    def __init__(self, system, device: str | torch.device = "cpu"):
        self.system = system.to(device).eval()
        self.config = system.config
        self.device = torch.device(device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> "Separator":
        from tribert.engine.checkpoint import load_system

        return cls(load_system(path), device)

    # --- model inputs for one window ------------------------------------------------------------
    def _frames(self, video: VideoInput, centre_s: float) -> torch.Tensor:
        """K frames around ``centre_s`` -> [K, 3, S, S], resized as the training data set does."""
        v = self.config.video
        idx = frame_window(centre_s, video.fps, v.num_frames, len(video.frames))
        return torch.from_numpy(model_frames(video.frames[idx], v.frame_size))

    def _pose(self, video: VideoInput, start_s: float, dur_s: float) -> torch.Tensor:
        h, w = video.frames.shape[1:3]
        return torch.from_numpy(pose_window(video.pose, video.pose_fps, start_s, dur_s,
                                            self.config.video.pose_frames, w, h))  # [P, Tp, 68, 3]

    def window_inputs(self, inputs: list[VideoInput], start_s: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The visual inputs of the window starting at ``start_s``: frames [V, K, 3, S, S] around its
        centre and pose [V, P, Tp, 68, 3] over its span (what a training item holds per video)."""
        dur = self.config.audio.crop_samples / self.config.audio.sample_rate
        frames = torch.stack([self._frames(x, start_s + dur / 2) for x in inputs])
        poses = torch.stack([self._pose(x, start_s, dur) for x in inputs])
        return frames, poses

    # --- separation -----------------------------------------------------------------------------
    @torch.no_grad()
    def separate(self, videos: list, mixture: str | Path | np.ndarray | None = None,
                 pose: str = "mediapipe") -> SeparationResult:
        """Separate. ``videos``: paths (or VideoInput). One video alone is taken as a duet (its two
        performers); two or more videos give one source each. ``mixture``: a recording to separate
        instead of the (1/N-scaled) sum of the videos' own audio."""
        a, v = self.config.audio, self.config.video
        if not videos:
            raise TribertError("give at least one video")
        if pose not in POSE_CHOICES:
            raise TribertError(f"pose must be one of {', '.join(POSE_CHOICES)}, got {pose!r}")
        # Every input is checked before the heavy work (decoding frames, pose detection).
        files = [x for x in videos if not isinstance(x, VideoInput)]
        for x in files:
            check_video(x, audio_required=mixture is None)
        mix = None
        if isinstance(mixture, np.ndarray):
            mix = mixture.astype(np.float32).reshape(-1)
        elif mixture is not None:
            from tribert import media

            mix = media.read_audio(mixture, sample_rate=a.sample_rate)
        if pose == "mediapipe" and any(not (Path(x).is_dir() and is_clip(x)) for x in files):
            from tribert.data.pose_detect import require_mediapipe

            require_mediapipe()
        duet = len(videos) == 1  # one video: its two performers (half frames); else one solo each
        inputs = [x if isinstance(x, VideoInput) else
                  load_video(x, a.sample_rate, v.fps, pose, persons=2 if duet else 1, max_persons=v.max_persons,
                             audio_required=mixture is None) for x in videos]
        if mix is None:
            length = min(len(x.audio) for x in inputs)
            mix = sum(x.audio[:length] for x in inputs) / len(inputs)
        objects = [[0, 1]] if duet else [[-1] for _ in inputs]
        names = ([f"{inputs[0].name}_person{j}" for j in (0, 1)] if duet
                 else [f"{x.name}" for x in inputs])
        source_video = [0, 0] if duet else list(range(len(inputs)))
        return self._run(mix, inputs, objects, names, source_video)

    def _run(self, mix: np.ndarray, inputs: list[VideoInput], objects: list[list[int]], names: list[str],
             source_video: list[int]) -> SeparationResult:
        a = self.config.audio
        L, sr = a.crop_samples, a.sample_rate
        fe = self.system.frontend
        n_win = max(1, int(np.ceil(len(mix) / L)))
        padded = np.zeros(n_win * L, np.float32)
        padded[:len(mix)] = mix
        stems = [np.zeros_like(padded) for _ in names]
        first_masks, attention = [], []
        s_max = max(len(o) for o in objects)
        obj = torch.tensor([o + [-1] * (s_max - len(o)) for o in objects], device=self.device)  # [V, S]
        for w in range(n_win):
            seg = torch.from_numpy(padded[w * L:(w + 1) * L]).to(self.device)[None]  # [1, L]
            mag, spec = fe.magnitude(seg)
            logmag = fe.log(mag).expand(len(inputs), -1, -1, -1)  # [V, 1, F, T]
            frames, poses = self.window_inputs(inputs, w * L / sr)
            frames, poses = frames.to(self.device), poses.to(self.device)
            out = self.system.model(frames=frames, pose=poses, mix_logmag=logmag, objects=obj,
                                    labels=None, source_labels=None)
            masks = torch.sigmoid(out.mask_logits.float())  # [V, S, 1, F, T], soft as in evaluation
            k = 0
            for vi, o in enumerate(objects):
                for si in range(len(o)):
                    wav = fe.apply_mask(masks[vi, si][None], spec, L)[0]
                    stems[k][w * L:(w + 1) * L] = wav.cpu().numpy()
                    if w == 0:
                        first_masks.append(masks[vi, si, 0].cpu().numpy())
                    k += 1
            att = getattr(out, "visual_attention", None)
            if w == 0 and att is not None:
                top = out.visual_top_classes[:, att.shape[1] // 2, 0]  # [V] top class of the middle frame
                for vi in range(len(inputs)):
                    m = att[vi, att.shape[1] // 2, top[vi]].float()
                    m = (m - m.min()) / (m.max() - m.min() + 1e-8)
                    attention.append(m.cpu().numpy())
        n = len(mix)
        return SeparationResult(mix, [s[:n] for s in stems], names, sr, inputs, source_video,
                                first_masks, attention)
