"""SynthMUSIC generation: the plan of a data set, one clip at a time, written to disk.

:func:`generate` plans the clips (kind, classes, split), makes each one (score, audio, scene)
and writes, under ``out_dir``::

    synth.json                    manifest: generation settings, class -> GM program, counts
    videos/<clip_id>.mp4          the clip as a real H.264 + AAC video (for `tribert prepare` /
                                  `tribert separate`, exactly like a downloaded video)
    videos/train|val|test.json    MUSIC-style indexes of those videos with their labels
                                  (`tribert prepare OUT/videos/test.json --out ...`)
    train|val|test/<clip_id>/     prepared-clip folders (tribert.data.clip): meta.json,
                                  frames/*.jpg, audio.wav, stems/<i>.wav, pose.npy

Everything is deterministic from ``seed``: the plan (kind, classes, split of clip ``i``) depends
only on (seed, i), never on the number of clips, and each clip's content is drawn from its own
generator seeded with (seed, i), so parallel workers, serial runs and resumed runs give the
same clips. Generation is resumable (finished clips are skipped) and atomic per clip.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from tribert.config import MUSIC21_CLASSES
from tribert.data.clip import (AUDIO, FRAMES, POSE, STEMS, ClipMeta, frame_name, is_clip, write_meta,
                               write_wav)
from tribert.data.synth.audio import Renderer, default_soundfont, mix_stems, soundfont_digest
from tribert.data.synth.scene import render_scene
from tribert.data.synth.score import INSTRUMENTS, Note, compose, random_song
from tribert.data.prepare import check_splits
from tribert.errors import TribertError
from tribert.io import atomic_dir, atomic_write_json, check_out_dir, read_json

KINDS = ("solo", "duet", "same_class_duet")
SPLITS = ("train", "val", "test")
MANIFEST = "synth.json"
VIDEOS = "videos"
GENERATOR_VERSION = 1  # bump when the same seed would give different clips

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides what the clips look and sound like (stored in ``synth.json``)."""

    seed: int = 0
    duration: float = 6.0  # seconds per clip
    fps: float = 8.0  # frame rate of frames/ and of the MP4 (VideoConfig.fps)
    frame_size: int = 224  # square frames (VideoConfig.frame_size)
    sample_rate: int = 11025  # audio.wav / stems (AudioConfig.sample_rate)
    classes: tuple[str, ...] = MUSIC21_CLASSES
    kinds: tuple[float, float, float] = (0.60, 0.25, 0.15)  # solo, duet, same-class duet
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, val, test
    soundfont: str = ""  # path of the .sf2 ("" = TimGM6mb from pretty_midi)
    supersample: int = 2  # draw at 2x and downscale (smooth edges)
    jpeg_quality: int = 90
    mp4: bool = True  # also write videos/<id>.mp4

    def identity(self, soundfont_sha: str) -> dict:
        """The settings that must match for a resumed run to continue the same data set."""
        return {"generator": "synthmusic", "version": GENERATOR_VERSION, "seed": self.seed,
                "duration": self.duration, "fps": self.fps, "frame_size": self.frame_size,
                "sample_rate": self.sample_rate, "classes": list(self.classes), "kinds": list(self.kinds),
                "splits": list(self.splits), "soundfont_sha": soundfont_sha, "supersample": self.supersample,
                "jpeg_quality": self.jpeg_quality}


@dataclass(frozen=True)
class ClipPlan:
    """What clip ``index`` is: its id, kind, performers' classes (left to right) and split."""

    index: int
    id: str
    kind: str
    labels: tuple[str, ...]
    split: str


@dataclass
class SynthSummary:
    """What :func:`generate` did."""

    out_dir: str
    generated: int
    skipped: int
    seconds: float
    clips_per_second: float
    splits: dict[str, int]  # clips per split in the data set after this run
    kinds: dict[str, int]
    classes: dict[str, int]  # performers per class
    timings: dict[str, float] = field(default_factory=dict)  # mean seconds per generated clip, by stage


# --------------------------------------------------------------------------------------------
# The plan: kind, classes and split of every clip, prefix-stable
# --------------------------------------------------------------------------------------------

def _counts(fractions: Sequence[float], block: int) -> list[int]:
    """Integer counts per category in a block (largest remainder), summing to ``block``."""
    f = np.asarray(fractions, float)
    if not np.isfinite(f).all() or (f < 0).any() or not 0 < f.sum() < np.inf:  # NaN passes "< 0" and "<= 0"
        raise TribertError(f"fractions must be finite, >= 0 and with a positive sum, got {list(fractions)}")
    raw = f / f.sum() * block
    out = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - out), kind="stable")[: block - out.sum()]:
        out[i] += 1
    return out.tolist()


def _block_stream(names: Sequence[str], counts: list[int], seed: int, salt: int) -> Iterator[str]:
    """Endless stream: each block holds every name ``count`` times, shuffled by (seed, salt, block)."""
    base = [n for n, c in zip(names, counts) for _ in range(c)]
    block = 0
    while True:
        rng = np.random.default_rng([seed, salt, block])
        yield from (base[i] for i in rng.permutation(len(base)))
        block += 1


def plan_clips(n: int, seed: int, classes: Sequence[str] = MUSIC21_CLASSES,
               kinds: Sequence[float] = (0.6, 0.25, 0.15), splits: Sequence[float] = (0.8, 0.1, 0.1)) -> list[ClipPlan]:
    """Plan ``n`` clips. Clip ``i``'s plan depends on (seed, i) only, not on ``n``.

    Kinds come in shuffled blocks of 20 clips with the given proportions, splits in shuffled
    blocks of 10, and classes are dealt from shuffled decks of all classes, so classes stay
    balanced (every class appears as often as any other, within one deck). A duet takes two
    different classes from the deck; a same-class duet takes one class for both performers
    (with a single class, duets are all same-class duets).
    """
    classes = list(classes)
    unknown = [c for c in classes if c not in INSTRUMENTS]
    if unknown:
        raise TribertError(f"unknown class {unknown[0]!r} (known: {', '.join(MUSIC21_CLASSES)})")
    if not classes:
        raise TribertError("no classes to generate")
    kind_counts = _counts(kinds, 20)
    if len(set(classes)) < 2:  # one class: a duet can only be a same-class duet
        kind_counts = [kind_counts[0], 0, kind_counts[1] + kind_counts[2]]
    kind_stream = _block_stream(KINDS, kind_counts, seed, 1)
    split_stream = _block_stream(SPLITS, _counts(splits, 10), seed, 2)
    deck: deque[str] = deque()
    deck_no = 0

    def draw(exclude: str | None = None) -> str:
        nonlocal deck_no
        while True:
            for i, c in enumerate(deck):
                if c != exclude:
                    del deck[i]
                    return c
            rng = np.random.default_rng([seed, 3, deck_no])
            deck.extend(classes[j] for j in rng.permutation(len(classes)))
            deck_no += 1

    plans = []
    for i in range(n):
        kind = next(kind_stream)
        first = draw()
        labels = (first,) if kind == "solo" else (first, first) if kind == "same_class_duet" else (first, draw(first))
        plans.append(ClipPlan(i, f"{i:06d}_{'-'.join(labels)}", kind, labels, next(split_stream)))
    return plans


# --------------------------------------------------------------------------------------------
# One clip
# --------------------------------------------------------------------------------------------

@dataclass
class ClipData:
    """A generated clip in memory (what :func:`write_clip` stores)."""

    plan: ClipPlan
    frames: np.ndarray  # uint8 [T, H, W, 3]
    audio: np.ndarray  # float32 [N]
    stems: list[np.ndarray]  # float32 [N] per performer, left to right; sum = audio
    pose: np.ndarray  # float32 [T, P, 68, 3] with detector-like noise (as saved)
    pose_clean: np.ndarray  # float32 [T, P, 68, 2] exact keypoints
    notes: list[list[Note]]  # per performer
    extra: dict
    timings: dict


def clip_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of clip ``index``: independent of worker, order and clip count."""
    return np.random.default_rng([int(seed), 0, int(index)])


def make_clip(plan: ClipPlan, cfg: SynthConfig, renderer: Renderer) -> ClipData:
    """Compose, render and draw one clip (nothing is written)."""

    tic = time.perf_counter()
    rng = clip_rng(cfg.seed, plan.index)
    song = random_song(rng)
    notes = [compose(cls, cfg.duration, rng, song) for cls in plan.labels]
    t_compose = time.perf_counter()
    raw = [renderer.render(cls, n, cfg.duration, cfg.sample_rate) for cls, n in zip(plan.labels, notes)]
    stems, audio = mix_stems(raw, rng)
    t_audio = time.perf_counter()
    scene = render_scene(list(zip(plan.labels, notes)), cfg.duration, rng, fps=cfg.fps, size=cfg.frame_size,
                         supersample=cfg.supersample)
    programs = [list(renderer.program(c)) for c in plan.labels]
    extra = {"generator": "synthmusic", "version": GENERATOR_VERSION, "seed": cfg.seed, "index": plan.index,
             "kind": plan.kind, "programs": programs, "bpm": round(song.bpm, 3), "tonic": song.tonic,
             "mode": song.mode, "notes": [[[round(x, 4) for x in nt[:2]] + list(nt[2:]) for nt in n] for n in notes]}
    timings = {"compose": t_compose - tic, "audio": t_audio - t_compose, **scene.timings}
    return ClipData(plan, scene.frames, audio, stems, scene.pose, scene.pose_clean, notes, extra, timings)


def video_path(out_dir: str | Path, clip_id: str) -> Path:
    return Path(out_dir) / VIDEOS / f"{clip_id}.mp4"


def clip_dir(out_dir: str | Path, plan: ClipPlan) -> Path:
    return Path(out_dir) / plan.split / plan.id


def write_clip(out_dir: str | Path, clip: ClipData, cfg: SynthConfig) -> dict:
    """Write the MP4 (first) and the prepared-clip folder (atomically). Returns timings."""
    from PIL import Image

    plan = clip.plan
    timings = {}
    tic = time.perf_counter()
    mp4 = video_path(out_dir, plan.id)
    if cfg.mp4 and not mp4.exists():
        from tribert.media import write_mp4

        write_mp4(mp4, clip.frames, cfg.fps, clip.audio, cfg.sample_rate)
    timings["mp4"] = time.perf_counter() - tic
    target = clip_dir(out_dir, plan)
    if is_clip(target):  # resumed run that only lacked the MP4
        return timings
    tic = time.perf_counter()
    with atomic_dir(target) as tmp:
        (tmp / FRAMES).mkdir()
        for i, frame in enumerate(clip.frames):
            Image.fromarray(frame).save(tmp / FRAMES / frame_name(i), quality=cfg.jpeg_quality)
        t_jpeg = time.perf_counter()
        write_wav(tmp / AUDIO, clip.audio, cfg.sample_rate)
        (tmp / STEMS).mkdir()
        for i, stem in enumerate(clip.stems):
            write_wav(tmp / STEMS / f"{i}.wav", stem, cfg.sample_rate)
        np.save(tmp / POSE, clip.pose)
        meta = ClipMeta(id=plan.id, labels=list(plan.labels), fps=cfg.fps, sample_rate=cfg.sample_rate,
                        num_frames=len(clip.frames), num_samples=len(clip.audio), pose_fps=cfg.fps,
                        pose_source="ground_truth", num_stems=len(clip.stems), split=plan.split,
                        source=f"{VIDEOS}/{plan.id}.mp4" if cfg.mp4 else None, extra=clip.extra)
        write_meta(tmp, meta)
    timings["jpeg"] = t_jpeg - tic
    timings["write"] = time.perf_counter() - t_jpeg
    return timings


def is_done(out_dir: str | Path, plan: ClipPlan, cfg: SynthConfig) -> bool:
    return is_clip(clip_dir(out_dir, plan)) and (not cfg.mp4 or video_path(out_dir, plan.id).is_file())


# --------------------------------------------------------------------------------------------
# Workers
# --------------------------------------------------------------------------------------------

_RENDERER: Renderer | None = None


def _init_worker(soundfont: str) -> None:
    global _RENDERER
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _RENDERER = Renderer(soundfont or None)


def _run_one(out_dir: str, plan: ClipPlan, cfg: SynthConfig) -> tuple[str, dict]:
    assert _RENDERER is not None, "worker not initialised"
    tic = time.perf_counter()
    clip = make_clip(plan, cfg, _RENDERER)
    timings = dict(clip.timings)
    timings.update(write_clip(out_dir, clip, cfg))
    timings["total"] = time.perf_counter() - tic
    return plan.id, timings


def _check_manifest(out_dir: Path, identity: dict) -> int:
    """Refuse to mix clips of different settings in one folder (resume must continue the same set).
    Returns how many clips an earlier, finished generation left there (0: none, or unfinished)."""
    path = out_dir / MANIFEST
    if not path.exists():
        # Generation writes the manifest before any clip, so a folder with files and no manifest
        # is someone else's: its videos/*.json, train/ ... must not be overwritten.
        if out_dir.is_dir() and any(out_dir.iterdir()):
            raise TribertError(f"this folder is not empty and holds no SynthMUSIC (no {MANIFEST}); "
                               f"give a new or empty --out folder", out_dir)
        return 0
    old = read_json(path, "SynthMUSIC manifest")
    for key, value in identity.items():
        if old.get(key) != value:
            raise TribertError(f"this folder holds SynthMUSIC made with {key}={old.get(key)!r}, not {value!r}; "
                               f"use the same settings to resume, or another --out folder", path)
    return old.get("clips") if isinstance(old.get("clips"), int) else 0


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def generate(out_dir: str | Path, clips: int, seed: int = 0, soundfont: str | Path | None = None,
             duration: float = 6.0, workers: int = 0, *, fps: float = 8.0, frame_size: int = 224,
             sample_rate: int = 11025, classes: Sequence[str] = MUSIC21_CLASSES,
             kinds: Sequence[float] = (0.6, 0.25, 0.15), splits: Sequence[float] = (0.8, 0.1, 0.1),
             supersample: int = 2, mp4: bool = True, progress: bool = True) -> SynthSummary:
    """Generate (or complete) a SynthMUSIC data set.

    Args:
        out_dir: root folder (created). Re-running with the same settings skips finished clips;
            a larger ``clips`` extends the set (clip ``i`` does not depend on ``clips``); a smaller
            one keeps the clips there (a warning says so).
        clips: number of clips.
        seed: the data set's seed.
        soundfont: a .sf2 bank; None = TimGM6mb shipped with pretty_midi.
        duration: seconds per clip.
        workers: processes (0 = one per CPU core, 1 = in this process).
        fps, frame_size, sample_rate: frame rate, square frame size and audio rate.
        classes: the classes to draw performers from (default: all 21 of MUSIC21); a str is
            comma-separated.
        kinds: fractions of solos, duets of two classes, same-class duets.
        splits: fractions of train / val / test clips.
        supersample: drawing resolution factor (1 = fastest, 2 = smooth edges).
        mp4: also write videos/<clip_id>.mp4 (H.264 + AAC).
        progress: show a progress bar.

    Returns:
        :class:`SynthSummary`.

    Raises:
        TribertError: bad arguments, an unreadable soundfont, or a folder made with other settings.
    """
    if clips < 1:
        raise TribertError(f"--clips must be >= 1, got {clips}")
    if seed < 0 or workers < 0:
        raise TribertError(f"--seed and --workers must be >= 0 (--workers 0: one per CPU core), got {seed} and {workers}")
    if not 0 < duration < math.inf or duration * fps < 1:
        raise TribertError(f"--duration must be a finite number of seconds giving at least one frame at {fps} fps, "
                           f"got {duration}")
    splits = check_splits(splits)
    if frame_size < 16:
        raise TribertError(f"--frame-size must be at least 16 pixels, got {frame_size}")
    if supersample < 1:
        raise TribertError(f"supersample must be >= 1, got {supersample}")
    if isinstance(classes, str):  # "violin,flute", as the CLI takes them (not letter by letter)
        classes = tuple(c.strip() for c in classes.split(",") if c.strip())
    sf_path = Path(soundfont) if soundfont is not None else default_soundfont()
    renderer = Renderer(sf_path)  # validates the file here, with a one-line error, before any work
    cfg = SynthConfig(seed=int(seed), duration=float(duration), fps=float(fps), frame_size=int(frame_size),
                      sample_rate=int(sample_rate), classes=tuple(classes), kinds=tuple(float(k) for k in kinds),
                      splits=tuple(float(s) for s in splits), soundfont=str(sf_path), supersample=int(supersample),
                      mp4=bool(mp4))
    out = Path(out_dir)
    check_out_dir(out)
    identity = cfg.identity(soundfont_digest(sf_path))
    held = _check_manifest(out, identity)
    if held > clips:  # clip i does not depend on the count: the set keeps its clips, and its indexes list them
        log.warning("%s already holds %d SynthMUSIC clips, more than --clips %d: they are kept (give a new --out "
                    "for a set of %d)", out, held, clips, clips)
        clips = held
    plans = plan_clips(clips, cfg.seed, cfg.classes, cfg.kinds, cfg.splits)
    out.mkdir(parents=True, exist_ok=True)
    programs = {c: list(renderer.program(c)) for c in cfg.classes}
    manifest = {**identity, "soundfont": sf_path.name, "programs": programs}
    atomic_write_json(out / MANIFEST, {**manifest, "clips": None})

    todo = [p for p in plans if not is_done(out, p, cfg)]
    n_workers = default_workers() if workers <= 0 else int(workers)
    n_workers = max(1, min(n_workers, len(todo)))
    tic = time.perf_counter()
    timings: list[dict] = []
    with _progress(progress, len(plans), len(plans) - len(todo)) as advance:
        if n_workers == 1:
            global _RENDERER
            _RENDERER = renderer
            for plan in todo:
                timings.append(_run_one(str(out), plan, cfg)[1])
                advance()
        elif todo:
            import multiprocessing as mp
            from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, as_completed, wait

            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
            with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(str(sf_path),)) as pool:
                futures = [pool.submit(_run_one, str(out), plan, cfg) for plan in todo]
                try:
                    for fut in as_completed(futures):
                        timings.append(fut.result()[1])
                        advance()
                except BaseException:
                    for f in futures:
                        f.cancel()
                    wait(futures, return_when=FIRST_EXCEPTION)
                    raise
    seconds = time.perf_counter() - tic
    done = [p for p in plans if is_done(out, p, cfg)]
    counts = {"splits": dict(Counter(p.split for p in done)), "kinds": dict(Counter(p.kind for p in done)),
              "classes": dict(Counter(c for p in done for c in p.labels))}
    if cfg.mp4:
        _write_indexes(out, done)
    atomic_write_json(out / MANIFEST, {**manifest, "clips": len(done), "clips_per_split": counts["splits"],
                                       "clips_per_kind": counts["kinds"], "performers_per_class": counts["classes"]})
    mean = {k: float(np.mean([t.get(k, 0.0) for t in timings])) for k in (timings[0] if timings else {})}
    return SynthSummary(out_dir=str(out), generated=len(timings), skipped=len(plans) - len(todo), seconds=seconds,
                        clips_per_second=len(timings) / seconds if timings and seconds > 0 else 0.0,
                        splits=counts["splits"], kinds=counts["kinds"], classes=counts["classes"], timings=mean)


def _write_indexes(out: Path, done: list[ClipPlan]) -> None:
    """videos/<split>.json: MUSIC-style indexes of the MP4s, so that
    ``tribert prepare OUT/videos/train.json`` keeps the labels (a duet's key lists its two
    classes left to right, as the MUSIC duet files do)."""
    for split in SPLITS:
        videos: dict[str, list[str]] = {}
        for p in done:
            if p.split == split:
                videos.setdefault(" ".join(p.labels), []).append(p.id)
        atomic_write_json(out / VIDEOS / f"{split}.json", {"videos": videos})


class _progress:
    """A rich progress bar (or nothing); ``with _progress(on, total, done) as advance: advance()``."""

    def __init__(self, enabled: bool, total: int, done: int):
        self.enabled, self.total, self.done = enabled, total, done

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.bar = Progress(TextColumn("SynthMUSIC"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TimeRemainingColumn())
        self.bar.start()
        task = self.bar.add_task("clips", total=self.total, completed=self.done)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.stop()


__all__ = ["generate", "plan_clips", "make_clip", "write_clip", "clip_rng", "SynthConfig", "SynthSummary",
           "ClipPlan", "ClipData", "KINDS", "SPLITS", "MANIFEST", "VIDEOS", "video_path", "clip_dir"]
