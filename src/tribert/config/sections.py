"""The three data-side sections of a run configuration: ``audio``, ``video``, ``data``.

Defaults are the paper's; see :mod:`tribert.config` for where every value of a run comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

# The 21 MUSIC21 classes in the order used for label indices.
MUSIC21_CLASSES = (
    "accordion", "acoustic_guitar", "bagpipe", "banjo", "bassoon", "cello", "clarinet", "congas",
    "drum", "electric_bass", "erhu", "flute", "guzheng", "piano", "pipa", "saxophone", "trumpet",
    "tuba", "ukulele", "violin", "xylophone",
)
# The 11 classes of the original MUSIC data set (a subset of MUSIC21).
MUSIC11_CLASSES = (
    "accordion", "acoustic_guitar", "cello", "clarinet", "erhu", "flute", "saxophone", "trumpet",
    "tuba", "violin", "xylophone",
)


@dataclass
class AudioConfig:
    """Audio front-end. Defaults are the paper's."""

    sample_rate: int = 11025  # Hz, everything is resampled to this
    crop_samples: int = 65535  # ~5.94 s; 65535 samples -> 256 STFT frames with hop 256
    n_fft: int = 1022  # -> 512 frequency bins
    win_length: int = 1022  # Hann window
    hop_length: int = 256
    warp_bins: int = 256  # rows of the log-frequency spectrogram the networks see
    log_eps: float = 1e-10  # network input is log(mag + log_eps)
    warp_base: float = 21.0  # the authors' grid: row y in [-1,1] reads (base**((y+1)/2) - 11)/10
    mask_threshold: float = 0.5  # binary target: source > threshold * mixture magnitude
    eval_samples: int = 65280  # samples scored by bss_eval

    @property
    def freq_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def frames(self) -> int:
        """STFT frames of a crop (torch.stft with center=True)."""
        return 1 + self.crop_samples // self.hop_length


@dataclass
class VideoConfig:
    """Frames and pose as the models see them."""

    fps: float = 8.0  # frames are stored at this rate by `tribert prepare`
    frame_size: int = 224  # square frames given to the visual net
    num_frames: int = 3  # consecutive frames per video sample (paper: 3)
    max_persons: int = 2  # pose persons per video (paper: 2)
    pose_frames: int = 256  # T of the ST-GCN (paper: 256); pose is resampled to T over the crop
    # Training frames only: resize to (1 + crop_margin) x frame_size, take a random frame_size crop
    # and flip half the videos left-right, the same crop and flip for a video's K frames (the
    # authors' code: Resize(1.1 x size), RandomCrop, RandomHorizontalFlip). 0 turns it off.
    crop_margin: float = 0.1
    flip: bool = True


@dataclass
class DataConfig:
    """The mix-and-separate data set."""

    train_dir: str = ""  # prepared clip folders (or a SynthMUSIC root with a split)
    val_dir: str = ""
    test_dir: str = ""
    num_mix: int = 2  # N videos per mixture
    gain_min: float = 0.5  # random per-source gain in training ...
    gain_max: float = 1.5
    divide_by_n: bool = True  # ... and the mixture divided by N (the authors' code)
    mask: str = "binary"  # "binary" (paper) or "ratio"
    use_stems: bool = True  # a duet with ground-truth stems counts as two sources
    # Training draws a clip that contributes two or more sources (a duet with stems) this many
    # times as often as a solo; 1 = every clip alike. Evaluation mixtures are not affected.
    duet_weight: float = 1.0
    # Training only: the probability that a mixture's other videos are drawn among the clips that
    # share an instrument with its first one (two players of one instrument in different videos:
    # only their movement tells them apart); 0 = every mixture drawn at random.
    same_class_mix: float = 0.0
    # The fraction of clips whose pose is withheld (every keypoint at confidence 0, as where a
    # detector finds nobody), in training and evaluation alike. Which clips is fixed by the clip id
    # (``pose_withheld``), so every run and every split withholds the same ones. Not in the paper: a
    # stand-in for real videos, where the detector often misses the performer, to measure what
    # a model does when pose cannot name the instrument. 0 = every clip keeps its pose.
    pose_missing: float = 0.0
    # Training only: the probability that a training clip's pose window is given a real detector's
    # kind of errors (``tribert.data.pose_augment.detector_like``: most hands lost, frames without
    # the performer, shifted and jittered points, a detector's confidences). Not in the paper: lets a
    # model trained on SynthMUSIC's exact skeletons separate videos whose pose MediaPipe detected.
    pose_augment: float = 0.0
    # Training reads the frozen ST-GCN's features stored ahead by ``tribert pose-features`` instead
    # of running it at every step, and its crops start on the store's grid (the paper trained on
    # stored st-gcn features). Needs model.pose_frozen; evaluation still runs the ST-GCN.
    stored_pose: bool = False
    classes: tuple[str, ...] = MUSIC21_CLASSES
    num_workers: int = 0
    # Keep each clip's audio, pose and resized frames in memory after the first read (per loader
    # process): about 1 MB per 6-s clip at 64 x 64, 5 MB at 224 x 224. For data sets that fit in RAM.
    cache_clips: bool = False
    seed: int = 0

    def validate(self) -> None:
        """Raise a one-line ConfigError for a value no data set can use."""
        from tribert.errors import ConfigError

        if not self.duet_weight > 0:
            raise ConfigError(f"data.duet_weight must be > 0, got {self.duet_weight}")
        if not 0 <= self.same_class_mix <= 1:
            raise ConfigError(f"data.same_class_mix must be in [0, 1], got {self.same_class_mix}")
        if not 0 <= self.pose_missing <= 1:
            raise ConfigError(f"data.pose_missing must be in [0, 1], got {self.pose_missing}")
        if not 0 <= self.pose_augment <= 1:
            raise ConfigError(f"data.pose_augment must be in [0, 1], got {self.pose_augment}")
        if self.mask not in ("binary", "ratio"):
            raise ConfigError(f"data.mask must be 'binary' or 'ratio', got {self.mask!r}")
        if self.num_mix < 1:
            raise ConfigError(f"data.num_mix must be >= 1, got {self.num_mix}")
        if not 0 <= self.gain_min <= self.gain_max:
            raise ConfigError(f"data.gain_min and gain_max must satisfy 0 <= gain_min <= gain_max, "
                              f"got {self.gain_min} and {self.gain_max}")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {self.num_workers}")
        twice = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if twice:  # a class twice would be two class ids: the heads' outputs would split it
            raise ConfigError(f"data.classes lists {', '.join(map(repr, twice))} more than once")


__all__ = ["AudioConfig", "VideoConfig", "DataConfig", "MUSIC21_CLASSES", "MUSIC11_CLASSES"]
