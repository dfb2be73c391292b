"""``tribert prepare``: real videos -> prepared clip folders (frames, audio, pose, meta).

For every input video (see :mod:`tribert.data.indexes` for the kinds of input) one clip folder
is written in the layout of :mod:`tribert.data.clip`::

    <out>/<id>/frames/000000.jpg ...  RGB JPEG (quality 90) at ``fps`` (8), resized so that the
                                      *shorter* side is ``frame_size`` (224) with the aspect ratio
                                      kept (a 16:9 video gives 398x224); None keeps the size
    <out>/<id>/audio.wav              mono, 11025 Hz (soxr), 16-bit
    <out>/<id>/pose.npy               float32 [T, 2, 68, 3] at ``pose_fps`` (default ``fps``),
                                      pixels of the stored frames (MediaPipe; see pose_detect)
    <out>/<id>/meta.json              labels from the index / folder name, counts, source file

With ``splits`` (train, val, test fractions) each clip goes to ``<out>/train|val|test/<id>``
instead, the split drawn from a hash of the video's id (:func:`split_of`).

Guarantees:

- **Atomic**: a clip is built in a hidden temporary folder and renamed into place when complete
  (:func:`tribert.io.atomic_dir`); a failure or Ctrl-C leaves no half-written clip.
- **Resumable**: a folder with ``meta.json`` is finished and skipped; an existing folder is never
  overwritten or deleted (a non-empty folder without ``meta.json`` is reported, not touched).
- **Per-file errors**: a bad video (missing, unreadable, truncated, no audio or video track,
  shorter than ``min_duration``) fails with a one-line reason; the other videos still prepare.
- **Parallel**: ``workers`` processes, each reusing one MediaPipe detector.
- **Splits that never leak**: a video's split depends on its id and the seed alone, so a rerun, or
  a run with more videos, puts it where it was; a video already prepared in another split folder
  (after a change of fractions or seed), or at the top level by a run without splits (and the
  reverse), is skipped, never prepared twice.
- **One clip per video**: an existing clip is found by the file it was prepared from (its
  ``meta.json`` source), not by id alone, so a rerun whose ids differ (two files of one name met
  in one run get distinct ids) never prepares a video twice, and a new video whose id is taken by
  another file gets a free one (``<id>-2``) instead of being skipped.
- **Ctrl-C**: the workers stop at their next frame, discard the clips they were building and exit;
  further Ctrl-Cs wait for that (a second one that broke into the pool's closing hung it for ever).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import signal
import sys
import threading
import time
from contextlib import nullcontext
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from tribert.config import AudioConfig
from tribert.data.clip import (AUDIO, FRAMES, POSE, ClipMeta, frame_name, is_clip, list_clips, read_meta,
                               write_meta, write_wav)
from tribert.data.indexes import IndexEntry, free_name, label_notes, load_inputs
from tribert.errors import TribertError
from tribert.io import atomic_dir, check_out_dir
from tribert.progress import track
from tribert.skeleton import NUM_KEYPOINTS

POSE_CHOICES = ("mediapipe", "none")
MAX_PERSONS = 2  # pose.npy always holds 2 persons (a solo's second person has confidence 0)
SOP_FRAMES_FPS = 8.0  # Sound-of-Pixels preprocessing extracts frames at 8 fps
JPEG_QUALITY = 90
FRAME_SIZE = 224  # default shorter side of the stored frames (separation prepares videos the same way)
SPLITS = ("train", "val", "test")


def check_splits(splits) -> tuple[float, float, float]:
    """Train, val, test fractions: three finite numbers >= 0 with a positive sum (NaN and inf would
    slip past ``< 0`` and ``<= 0``: every comparison with NaN is False), or a one-line error."""
    try:
        fractions = tuple(float(x) for x in splits)
    except (TypeError, ValueError):
        fractions = ()
    if len(fractions) != 3 or not all(0 <= f < math.inf for f in fractions) or not 0 < sum(fractions) < math.inf:
        raise TribertError(f"splits must be three finite non-negative train, val, test fractions like "
                           f"0.8,0.1,0.1, got {splits!r}")
    return fractions


def split_of(clip_id: str, fractions: tuple[float, float, float], seed: int = 0) -> str:
    """The split ("train", "val" or "test") of the video ``clip_id``.

    A hash of the seed and the id, read as a number in [0, 1), against the cumulative fractions
    (normalised to sum to 1): the same video always gets the same split, whatever else is prepared
    with it, so a rerun or a larger set moves no video. The shares are the fractions on average
    (binomial: a set of n videos is within ~2/sqrt(n) of them).
    """
    digest = hashlib.sha256(f"{seed}:{clip_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    total = sum(fractions)
    edge = 0.0
    for name, fraction in zip(SPLITS, fractions):
        edge += fraction / total
        if u < edge:
            return name
    return [name for name, f in zip(SPLITS, fractions) if f > 0][-1]  # the sum rounded below u


@dataclass
class PrepareOptions:
    """Settings of one preparation run (picklable: sent to the worker processes)."""

    fps: float = 8.0
    frame_size: int | tuple[int, int] | None = FRAME_SIZE
    pose: str = "mediapipe"
    pose_fps: float = 8.0
    sample_rate: int = 11025
    min_duration: float = 65535 / 11025
    persons: int | None = None  # performer regions for pose (None: from the entry's labels)
    # False: the video's audio is not needed (separation of a given mixture): never decoded, and
    # a video without audio is accepted; the clip gets a silent track (visual and pose cues only)
    audio_required: bool = True
    # True (training data): audio that outlasts the picture by over a second is cut at the picture's
    # end, where a training crop would pair it with a frozen last frame. separate keeps it (and says so)
    cut_audio_to_picture: bool = True
    # True (separate): a transient bar over one video's frames on a terminal; a long video takes
    # minutes to decode and pose-detect. ``prepare`` has its own bar over the videos instead
    frame_progress: bool = False


MIN_FRAME_SIZE = 16  # pixels, the shorter side of a stored frame

# A video whose worker process died while it was prepared alone (each video in flight when a
# worker dies is retried alone, so this is the one at fault, or was killed twice).
WORKER_DIED = ("the worker process preparing this video alone stopped abruptly (a crash in a decoder, killed, or "
               "out of memory); the other videos went on")
# The note of a video prepared alone after a worker died with it in flight.
RETRIED_ALONE = "prepared again on its own after a worker process stopped abruptly while it was in flight"


@dataclass
class ClipResult:
    """Outcome of one input: status is "prepared", "skipped" (already done) or "failed"; ``reason``
    says why it failed, or what to know about it (a clip kept as prepared earlier, a cut audio track)."""

    id: str
    source: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    split: str | None = None  # where the clip is (with ``splits``)


@dataclass
class PrepareReport:
    """What a :func:`prepare` run did, one :class:`ClipResult` per input entry."""

    out_dir: str
    results: list[ClipResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the inputs as a whole (their labels)

    def _with(self, status: str) -> list[ClipResult]:
        return [r for r in self.results if r.status == status]

    @property
    def prepared(self) -> list[ClipResult]:
        return self._with("prepared")

    @property
    def skipped(self) -> list[ClipResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[ClipResult]:
        return self._with("failed")

    @property
    def ok(self) -> bool:
        return not self.failed


def _persons(labels: list[str]) -> int:
    """Performer regions to search: two for a duet (two labels), else the whole frame."""
    return 2 if len(labels) >= 2 else 1


def _iter_frames_dir(folder: Path, fps: float, size) -> Iterator[np.ndarray]:
    """Frames already extracted at 8 fps (Sound-of-Pixels layout), resampled to ``fps``, resized."""
    from PIL import Image

    from tribert.media import output_size

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise TribertError("no frames (.jpg/.png) in the frames folder", folder)
    n_out = int(np.floor(len(files) / SOP_FRAMES_FPS * fps + 1e-6))
    for i in range(max(n_out, 1)):
        src = files[min(int(round(i / fps * SOP_FRAMES_FPS)), len(files) - 1)]
        try:
            with Image.open(src) as im:
                im = im.convert("RGB")
                wh = output_size(im.width, im.height, size)
                if wh != im.size:
                    im = im.resize(wh, Image.BILINEAR)
                yield np.asarray(im)
        except OSError as err:
            raise TribertError(f"cannot read frame ({err})", src) from None


_STOP = None  # in a worker process: the parent's stop flag (a shared byte, 1 on Ctrl-C)


class Interrupted(Exception):
    """The parent asked the workers to stop (Ctrl-C): the clip being built is discarded."""


def _worker_init(stop) -> None:
    global _STOP
    # Ctrl-C reaches the whole process group; only the parent acts on it, and tells the workers
    # through ``stop`` (a worker killed by it mid-task leaves the pool waiting for ever).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _drop_clip)  # SIGTERM (timeout, SLURM) reaches the workers too
    _STOP = stop


def _drop_clip(signum, frame) -> None:
    raise Interrupted  # unwinds the clip being built: its temporary folder is removed


def _frames(entry: IndexEntry, fps: float, size) -> Iterator[np.ndarray]:
    from tribert.media import iter_video

    frames = iter_video(entry.path, fps=fps, size=size) if entry.path is not None else \
        _iter_frames_dir(entry.frames_dir, fps, size)
    for frame in frames:
        if _STOP is not None and _STOP.value:
            raise Interrupted
        yield frame


def _source(entry: IndexEntry) -> str:
    if entry.path is not None:
        return str(entry.path)
    if entry.audio_path is not None:
        return str(entry.audio_path)
    return entry.source or entry.id


def prepare_clip(entry: IndexEntry, out_dir: str | Path, opts: PrepareOptions,
                 split: str | None = None) -> ClipResult:
    """Prepare one entry into ``out_dir/<entry.id>`` (or skip it when already finished); ``split``
    is recorded in its meta.json.

    Returns a :class:`ClipResult`; user-fixable problems (bad files) are reported in it, never
    raised, so one bad video does not stop a batch.
    """
    from PIL import Image

    from tribert.media import probe, read_audio

    t_start = time.perf_counter()
    clip_dir = Path(out_dir) / entry.id
    note = ""  # what the user should know about a prepared clip
    src = _source(entry)

    def result(status: str, reason: str = "") -> ClipResult:
        return ClipResult(entry.id, src, status, reason, time.perf_counter() - t_start, split)

    if _STOP is not None and _STOP.value:
        raise Interrupted
    if is_clip(clip_dir):
        return result("skipped")
    if clip_dir.exists() and (not clip_dir.is_dir() or any(clip_dir.iterdir())):
        return result("failed", f"output {clip_dir} exists but is not a finished clip (no meta.json); "
                                "remove it to prepare this video again")
    try:
        # Where the media come from: a video file, or SoP-style extracted audio + frames.
        if entry.path is None:
            if entry.audio_path is None or entry.frames_dir is None or not entry.frames_dir.is_dir():
                where = f" under {entry.searched}" if entry.searched else ""
                frames = f", nor its frames folder {entry.frames_dir}" if entry.frames_dir else ""
                return result("failed", f"no video file {entry.id}.*{where}{frames}")
            audio_file = entry.audio_path
        else:
            info = probe(entry.path)  # cheap checks before decoding anything
            if not info.has_video:
                return result("failed", "no video track")
            if not info.has_audio and opts.audio_required:
                return result("failed", "no audio track")
            if 0 < info.duration < opts.min_duration:
                return result("failed", f"too short: {info.duration:.2f} s, the minimum is {opts.min_duration:.2f} s")
            audio_file = entry.path if info.has_audio and opts.audio_required else None

        # from the video's start: the two tracks of one file may start at different times
        start = info.video_start if entry.path is not None else None
        audio = None if audio_file is None else read_audio(audio_file, opts.sample_rate, start=start)  # [N]
        min_samples = int(round(opts.min_duration * opts.sample_rate))
        if audio is not None and len(audio) < min_samples:
            return result("failed", f"too short: {len(audio) / opts.sample_rate:.2f} s of audio, "
                                    f"the minimum is {opts.min_duration:.2f} s")

        persons = opts.persons or _persons(entry.labels)
        detector = None
        if opts.pose == "mediapipe":
            from tribert.data.pose_detect import get_detector

            detector = get_detector()
        pose_with_frames = detector is not None and opts.pose_fps == opts.fps

        # session: new tracking state, and the pose library's log lines silenced for the video
        with detector.session() if detector is not None else nullcontext(), atomic_dir(clip_dir) as tmp:
            (tmp / FRAMES).mkdir()
            poses: list[np.ndarray] = []
            n = 0
            height = width = 0
            expected = info.duration * opts.fps if entry.path is not None and info.duration > 0 else None
            frames = track(_frames(entry, opts.fps, opts.frame_size), f"decoding {src}", enabled=opts.frame_progress,
                           transient=True, total=expected)
            for n, frame in enumerate(frames, 1):  # [H, W, 3]
                height, width = frame.shape[:2]
                Image.fromarray(frame).save(tmp / FRAMES / frame_name(n - 1), quality=JPEG_QUALITY)
                if pose_with_frames:
                    poses.append(detector(frame, persons))  # [persons, 68, 3]
            if n == 0:
                raise TribertError("no video frames", src)
            if n / opts.fps < opts.min_duration - 1.0 / opts.fps:
                raise TribertError(f"too short: {n / opts.fps:.2f} s of video, the minimum is "
                                   f"{opts.min_duration:.2f} s", src)
            if detector is not None and not pose_with_frames:  # pose at its own rate
                detector.reset()
                poses = [detector(f, persons) for f in _frames(entry, opts.pose_fps, opts.frame_size)]
            if audio is None:  # a cue-only video: silence as long as its frames
                audio = np.zeros(int(round(n / opts.fps * opts.sample_rate)), np.float32)
            picture_s, audio_s = n / opts.fps, len(audio) / opts.sample_rate
            if opts.cut_audio_to_picture and audio_s > picture_s + 1.0:
                audio = audio[:round(picture_s * opts.sample_rate)]
                note = f"its audio ({audio_s:.2f} s) outlasts its picture ({picture_s:.2f} s): cut at {picture_s:.2f} s"
            elif audio_s + 1.0 < picture_s:
                note = f"its picture ({picture_s:.2f} s) outlasts its audio ({audio_s:.2f} s)"
            if detector is not None:
                pose = np.zeros((len(poses), MAX_PERSONS, NUM_KEYPOINTS, 3), np.float32)
                pose[:, :persons] = np.stack(poses)  # [T, persons, 68, 3]
                np.save(tmp / POSE, pose)
            write_wav(tmp / AUDIO, audio, opts.sample_rate)
            meta = ClipMeta(
                id=entry.id, labels=list(entry.labels), fps=float(opts.fps), sample_rate=opts.sample_rate,
                num_frames=n, num_samples=len(audio), width=width, height=height,
                pose_fps=float(opts.pose_fps if detector is not None else opts.fps),
                pose_source="mediapipe" if detector is not None else "none",
                source=src, split=split,
                extra={"pose_persons": persons if detector else 0, "index": entry.source},
            )
            write_meta(tmp, meta)  # last: meta.json marks a finished clip
    except TribertError as err:
        return result("failed", err.reason if err.path == src else str(err))
    except OSError as err:  # e.g. disk full, permission denied on the output folder
        if is_clip(clip_dir):  # another run finished this clip meanwhile (rename refused)
            return result("skipped")
        return result("failed", f"{type(err).__name__}: {err}")
    return result("prepared", note)


def prepare(inputs: str | Path | list[str | Path], out_dir: str | Path, *, video_root: str | Path | None = None,
            fps: float = 8.0, frame_size: int | tuple[int, int] | None = FRAME_SIZE, pose: str = "mediapipe",
            pose_fps: float | None = None, workers: int = 0, min_duration: float | None = None,
            audio: AudioConfig | None = None, splits: tuple[float, float, float] | None = None,
            seed: int = 0, progress: bool = True) -> PrepareReport:
    """Prepare videos (files, folders, MUSIC JSON or Sound-of-Pixels CSV indexes) into clip folders.

    Args:
        inputs: video files, folders of videos (recursive), ``.json`` / ``.csv`` index files (a
            list, or one of them).
        out_dir: folder that receives one clip folder per video.
        video_root: where the ids of index files are looked up (default: the index's folder).
        fps: stored frame rate (paper: 8).
        frame_size: shorter side of the stored frames in pixels (aspect kept), (W, H), or None.
        pose: "mediapipe" (needs the mediapipe package) or "none".
        pose_fps: pose rate (default: ``fps``, detected on the stored frames).
        workers: worker processes; 0 = one per CPU core, 1 = in this process.
        min_duration: shortest usable video in seconds (default: one training crop,
            ``audio.crop_samples / audio.sample_rate`` = 5.94 s).
        audio: audio settings (sample rate, crop length); default AudioConfig().
        splits: train, val, test fractions: clips go to ``out_dir/train|val|test`` by
            :func:`split_of` (None: all into ``out_dir``).
        seed: the seed of the split assignment.
        progress: show a progress bar.

    Returns:
        A :class:`PrepareReport` (prepared / skipped / failed, with one-line reasons).

    Raises:
        TribertError: bad arguments, a malformed index file, or pose="mediapipe" without MediaPipe
            (checked before anything is prepared).
    """
    audio = audio or AudioConfig()
    if isinstance(inputs, (str, Path)):  # one path given as is (a str would be read letter by letter)
        inputs = [inputs]
    if pose not in POSE_CHOICES:
        raise TribertError(f"pose must be one of {', '.join(POSE_CHOICES)}, got {pose!r}")
    if not 0 < fps < math.inf or not (pose_fps is None or 0 < pose_fps < math.inf):
        raise TribertError(f"fps and pose_fps must be finite numbers > 0, got {fps} and {pose_fps}")
    if min_duration is not None and not 0 < min_duration < math.inf:
        raise TribertError(f"min_duration must be a finite number of seconds > 0, got {min_duration}")
    if splits is not None:
        splits = check_splits(splits)
    if workers < 0:
        raise TribertError(f"--workers must be >= 0 (0: one per CPU core), got {workers}")
    try:
        from tribert.media import output_size

        smallest = min(output_size(MIN_FRAME_SIZE, MIN_FRAME_SIZE, frame_size))
    except (TypeError, ValueError):
        raise TribertError(f"frame_size must be a positive int, (W, H) or None, got {frame_size!r}") from None
    if smallest < MIN_FRAME_SIZE:  # stored frames this small carry nothing the visual network can use
        raise TribertError(f"frame_size must be at least {MIN_FRAME_SIZE} pixels (0 / None: the video's own size), "
                           f"got {frame_size!r}")
    if pose == "mediapipe":
        from tribert.data.pose_detect import require_mediapipe

        require_mediapipe()
    opts = PrepareOptions(
        fps=float(fps), frame_size=frame_size, pose=pose,
        pose_fps=float(pose_fps if pose_fps is not None else fps), sample_rate=audio.sample_rate,
        min_duration=float(min_duration if min_duration is not None else audio.crop_samples / audio.sample_rate),
    )
    entries = load_inputs(list(inputs), video_root)
    if not entries:
        raise TribertError(f"no videos found in {', '.join(str(i) for i in inputs)}")
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    # the folders this call makes (split folders, OUT, missing parents): removed again if nothing is prepared
    made = [p for p in ([out_dir / s for s in SPLITS] + [out_dir, *out_dir.parents]) if not p.exists()]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TribertError(f"cannot make the output folder ({err.strerror})", out_dir) from None
    report = PrepareReport(out_dir=str(out_dir), notes=label_notes(entries))

    # Where each video is already prepared, if anywhere: found by the file it came from, or by its
    # id where the file a clip came from is gone; a new video whose id another file's clip holds
    # gets a free one. Then each video's split folder ("": out_dir itself).
    prepared = _prepared_clips(out_dir, ("", *SPLITS))  # with or without --splits before: never twice
    by_file = {key: cid for cid, (_, key, _) in prepared.items() if key is not None}
    prepared_folded = {cid.casefold() for cid in prepared}
    taken = set(prepared) | {e.id for e in entries}
    split: dict[str, str] = {}
    order: dict[str, int] = {}
    todo = []
    for i, e in enumerate(entries):
        key = _file_key(e.path or e.audio_path)  # None: no media file found for the entry
        done_id = by_file.get(key) if key is not None else None
        if done_id is None and e.id in prepared and (key is None or prepared[e.id][1] is None):
            done_id = e.id
        if done_id is not None:
            done_in, _, meta = prepared[done_id]
            want = "" if splits is None else split_of(e.id, splits, seed)
            notes = [] if (done_id, done_in) == (e.id, want) else [f"already prepared as {Path(done_in) / done_id} (kept there)"]
            if meta is not None and (meta.fps != opts.fps or (meta.pose_source == "none") != (opts.pose == "none")):
                pose_was = "without pose" if meta.pose_source == "none" else "with pose"
                notes.append(f"kept as prepared earlier, at {meta.fps:g} fps {pose_was} (remove "
                             f"{out_dir / done_in / done_id} to prepare it with these settings)")
            note = "; ".join(notes)
            order[done_id] = i
            report.results.append(ClipResult(done_id, _source(e), "skipped", note, split=done_in or None))
            continue
        if e.id.casefold() in prepared_folded:  # the id is another file's clip (or is, but for case)
            e.id = free_name(e.id, taken)
            taken.add(e.id)
        split[e.id] = "" if splits is None else split_of(e.id, splits, seed)
        order[e.id] = i
        todo.append(e)
    workers = (os.cpu_count() or 1) if workers <= 0 else workers
    workers = max(1, min(workers, len(todo)))

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("prepare"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[last]}"))
    with Progress(*columns, disable=not progress or not todo, transient=False) as bar:
        task = bar.add_task("prepare", total=len(todo), last="")

        def done(r: ClipResult) -> None:
            report.results.append(r)
            bar.update(task, advance=1, last=f"{r.status}: {r.id}")

        if workers == 1:
            for e in todo:
                done(prepare_clip(e, out_dir / split[e.id], opts, split[e.id] or None))
        else:
            import multiprocessing as mp

            # spawn: MediaPipe/torch threads do not survive fork; each worker loads them once.
            context = mp.get_context("spawn")
            # a shared byte, set by one store: an Event's set() takes a lock and several steps, and a
            # second Ctrl-C landing in them left it unset (workers then went on through every video)
            stop = context.RawValue("b", 0)

            def run(pool, e):
                return pool.submit(prepare_clip, e, out_dir / split[e.id], opts, split[e.id] or None)

            def drop(e):  # the clip a dead worker was building
                for tmp in (out_dir / split[e.id]).glob(f".{e.id}.tmp-*"):
                    shutil.rmtree(tmp, ignore_errors=True)

            # The Ctrl-C handling wraps every pool, so each closes (its workers stopped) inside it. A
            # worker that dies (a decoder's crash, killed, out of memory) breaks its whole pool: the
            # videos in flight are retried one by one, each in a pool of its own, so a video that
            # crashes its worker fails alone, named; the rest go on in a fresh pool.
            with _stop_on_ctrl_c(stop):
                queue = list(todo)
                while queue:
                    in_flight, queue = _pool_round(queue, workers, run, done, context, stop)
                    for e in in_flight:
                        drop(e)
                        died, unstarted = _pool_round([e], 1, run, lambda r: done(_retried(r)), context, stop)
                        if died or unstarted:
                            drop(e)
                            done(ClipResult(e.id, _source(e), "failed", WORKER_DIED, split=split[e.id] or None))
    report.results.sort(key=lambda r: order.get(r.id, len(order)))
    if not report.prepared:  # every video failed: no empty folders of this call left
        for folder in made:  # innermost first
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return report


def _pool_round(entries: list, workers: int, run, done, context, stop) -> tuple[list, list]:
    """Prepare ``entries`` in one pool of ``workers`` processes, passing each result to ``done``.
    At most ``workers`` videos are in flight, so a worker's death leaves only those unfinished.
    Returns (the videos in flight when a worker died, the videos not started); ([], []) when the
    pool finished them all."""
    pending, running, orphans, broke = list(entries), {}, [], False
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init,
                             initargs=(stop,)) as pool:
        try:
            while running or (pending and not broke):
                while pending and len(running) < workers and not broke:
                    try:
                        running[run(pool, pending[0])] = pending[0]
                        pending.pop(0)
                    except BrokenProcessPool:  # it broke since the last wait
                        broke = True
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    e = running.pop(f)
                    try:
                        done(f.result())
                    except BrokenProcessPool:
                        orphans.append(e)
                        broke = True
        except BaseException:  # Ctrl-C: the workers drop their clips; the pool then closes
            stop.value = 1
            for f in running:
                f.cancel()
            raise
    return orphans, pending if broke else []


def _retried(r: ClipResult) -> ClipResult:
    if r.status == "prepared":
        r.reason = "; ".join(x for x in (RETRIED_ALONE, r.reason) if x)
    return r


@contextlib.contextmanager
def _stop_on_ctrl_c(stop):
    """While the pool works and closes, the first Ctrl-C sets ``stop`` in the signal handler
    itself and raises KeyboardInterrupt; later ones are ignored until the pool has closed. Set only
    in the ``except`` block, a second Ctrl-C landing before it left it unset (the workers went on
    through every remaining video); and a second Ctrl-C that broke into the pool's closing left
    its workers waiting for ever for the word to exit (the process never ended). The workers
    stop at their next frame, so the wait is short. Only where Ctrl-C raises KeyboardInterrupt
    (the main thread, not ignored); the caller's handler is back afterwards."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def stopping(signum, frame):
        print("stopping: the workers are dropping the clips they were building", file=sys.stderr, flush=True)

    def request(signum, frame):
        stop.value = 1
        signal.signal(signal.SIGINT, stopping)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, request)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _file_key(path: str | Path | None) -> tuple[int, int] | None:
    """Which file ``path`` names (device, inode), so that two spellings of one path compare
    equal; None where it names no file."""
    try:
        st = os.stat(path) if path else None
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino) if st is not None else None


def _prepared_clips(out_dir: Path, folders: tuple[str, ...]) -> dict[str, tuple[str, tuple[int, int] | None, ClipMeta | None]]:
    """The finished clips in ``out_dir/<folder>``: id -> (folder, the file it was prepared from, as
    :func:`_file_key`, and its meta; None where that file is gone or the meta.json is unreadable)."""
    found: dict[str, tuple[str, tuple[int, int] | None, ClipMeta | None]] = {}
    for folder in folders:
        root = out_dir / folder
        for clip in list_clips(root) if root.is_dir() else ():
            if clip.name in found:
                continue
            try:
                meta = read_meta(clip)
            except TribertError:
                meta = None
            found[clip.name] = (folder, _file_key(meta.source if meta else None), meta)
    return found
