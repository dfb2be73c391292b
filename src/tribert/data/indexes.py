"""Readers for the data set index files, and resolution of their entries to local video files.

Three kinds of input name the videos to prepare:

- MUSIC / MUSIC21 JSON index: ``{"videos": {instrument: [youtube_id, ...]}}``; duet files key a
  pair as ``"instrA instrB"`` (the entry's labels are then both names, in that order).
- Sound-of-Pixels CSV index: ``audio_path,frames_dir,num_frames`` per line (paths as the SoP
  preprocessing wrote them, e.g. ``./data/audio/violin/abc.mp3,./data/frames/violin/abc.mp4,1580``;
  the id is the audio file's stem, the label its parent folder when that is a known class).
- Any folder of videos, searched recursively: the label is the parent folder's name when it is a
  known class (or several known classes joined by spaces or '+'), else unknown (no labels).

Index entries only name YouTube ids; :func:`resolve` finds the local files under a video root:
``<root>/<label>/<id>.<ext>``, ``<root>/<id>.<ext>``, or any media file below the root whose stem
is the id.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from tribert.config import MUSIC21_CLASSES
from tribert.errors import TribertError
from tribert.io import read_json

# File name endings taken as videos when scanning folders / resolving ids.
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".flv", ".mpg", ".mpeg", ".3gp", ".ts")
KNOWN_CLASSES = frozenset(MUSIC21_CLASSES)


@dataclass
class IndexEntry:
    """One video to prepare.

    Attributes:
        id: clip id (YouTube id, or a file stem); also the prepared clip folder's name.
        labels: one class name per performer ([] when unknown).
        path: the local video file, once resolved (None: not found).
        audio_path, frames_dir: Sound-of-Pixels CSV entries (already extracted audio and 8 fps
            frames); used when no video file is found for the id.
        num_frames: the frame count the CSV declares.
        source: the index file or folder the entry came from.
        searched: the video root searched in vain for the id (None: not searched, or found).
    """

    id: str
    labels: list[str] = field(default_factory=list)
    path: Path | None = None
    audio_path: Path | None = None
    frames_dir: Path | None = None
    num_frames: int | None = None
    source: str | None = None
    searched: Path | None = None


def safe_id(name: str) -> str:
    """A string usable as a folder name on every system: letters and digits of any script, '.',
    '_' and '-' (a run of anything else becomes '_'), never starting with '.'. NFC-normalised, so
    'ä' typed on Linux and 'ä' from a macOS file name (stored decomposed) give one id; names in
    other scripts keep their names ('日本.mp4' -> '日本', as ``tribert separate`` names it)."""
    s = re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", name)).strip("_")
    s = s.lstrip(".")
    return s or "clip"


def labels_from_folder(name: str) -> list[str]:
    """Known class names in a folder name ('violin', 'cello violin', 'flute+violin'), else []."""
    if name in KNOWN_CLASSES:
        return [name]
    parts = [p for p in re.split(r"[\s+]+", name) if p]
    if len(parts) > 1 and all(p in KNOWN_CLASSES for p in parts):
        return parts
    return []


def label_notes(entries: list[IndexEntry]) -> list[str]:
    """What a user should hear about the entries' labels before training on them: videos with no
    class (a folder name that is no MUSIC-21 class, e.g. misspelt) and labels outside MUSIC-21
    (fine for one's own classes, if the recipe's ``data.classes`` lists them)."""
    def counted(counts: dict[str, int]) -> str:
        return ", ".join(f"{name!r} ({n})" for name, n in sorted(counts.items()))

    notes = []
    folders: dict[str, int] = {}
    for e in entries:
        if not e.labels and e.path is not None:
            folders[str(e.path.parent)] = folders.get(str(e.path.parent), 0) + 1
    if folders:
        notes.append(f"{sum(folders.values())} video(s) without a class, in folders not named after a "
                     f"MUSIC-21 class ({counted(folders)}): prepared unlabelled (fine to separate; training "
                     f"needs labels). For MUSIC-21 instruments name each folder after its class (violin/, or "
                     f"'flute violin/' for a duet); for others list the videos in a MUSIC-style JSON index "
                     f"({{\"videos\": {{\"sitar\": [ids]}}}}) and the classes in the recipe's data.classes")
    others: dict[str, int] = {}
    for e in entries:
        for label in e.labels:
            if label not in KNOWN_CLASSES:
                others[label] = others.get(label, 0) + 1
    if others:
        notes.append(f"labels outside the 21 MUSIC-21 classes: {counted(others)}; training reads them only "
                     f"if the recipe's data.classes lists them")
    return notes


def read_music_json(path: str | Path) -> list[IndexEntry]:
    """Read a MUSIC / MUSIC21 JSON index (solo or duet) -> entries in file order.

    Raises:
        TribertError: missing file, invalid JSON, or not the ``{"videos": {key: [ids]}}`` shape.
    """
    path = Path(path)
    if not path.is_file():
        raise TribertError("index file not found", path)
    data = read_json(path, "JSON index", expect_object=False)
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, dict):
        raise TribertError('a MUSIC index must look like {"videos": {"instrument": ["youtube_id", ...]}}', path)
    entries: list[IndexEntry] = []
    seen: set[str] = set()
    for key, ids in videos.items():
        labels = str(key).split()
        if not labels:
            raise TribertError(f"empty instrument key {key!r}", path)
        if not isinstance(ids, list) or not all(isinstance(i, str) and i.strip() for i in ids):
            raise TribertError(f"videos[{key!r}] must be a list of YouTube id strings", path)
        for vid in ids:
            vid = vid.strip()
            if vid in seen:  # listed twice (e.g. under two keys): keep the first
                continue
            seen.add(vid)
            entries.append(IndexEntry(id=safe_id(vid), labels=labels, source=str(path)))
    return entries


def read_sop_csv(path: str | Path) -> list[IndexEntry]:
    """Read a Sound-of-Pixels CSV index (``audio_path,frames_dir,num_frames`` per line).

    Relative paths are taken relative to the CSV's folder. Blank lines are skipped.

    Raises:
        TribertError: missing file, or a line that is not three fields with an integer count
            (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise TribertError("index file not found", path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise TribertError(f"not a text CSV index ({err})", path) from None
    entries: list[IndexEntry] = []
    seen: set[str] = set()
    for lineno, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 3:
            raise TribertError(f"line {lineno}: expected audio_path,frames_dir,num_frames, got {len(row)} fields", path)
        audio, frames, count = (c.strip() for c in row)
        try:
            num = int(count)
        except ValueError:
            raise TribertError(f"line {lineno}: num_frames {count!r} is not an integer", path) from None
        if not audio or not frames or num < 0:
            raise TribertError(f"line {lineno}: empty path or negative frame count", path)
        audio_path = _relative_to(Path(audio), path.parent)
        vid = safe_id(Path(audio).stem)
        if vid in seen:
            continue
        seen.add(vid)
        entries.append(IndexEntry(id=vid, labels=labels_from_folder(Path(audio).parent.name),
                                  audio_path=audio_path, frames_dir=_relative_to(Path(frames), path.parent),
                                  num_frames=num, source=str(path)))
    if not entries:
        raise TribertError("CSV index has no entries", path)
    return entries


def _relative_to(p: Path, base: Path) -> Path:
    return p if p.is_absolute() else base / p


def _is_video(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")


def find_videos(root: str | Path) -> list[Path]:
    """Media files below ``root`` (recursive, sorted; hidden files and folders skipped)."""
    root = Path(root)
    return sorted(p for p in root.rglob("*")
                  if _is_video(p) and not any(part.startswith(".") for part in p.relative_to(root).parts))


def scan_folder(root: str | Path) -> list[IndexEntry]:
    """Every video below ``root`` -> entries; label from the parent folder when it is a class.

    The id is the file stem; when two files share a stem, their ids are their paths relative to
    ``root`` joined with '__' (so clip folders never collide).
    """
    root = Path(root)
    if not root.is_dir():
        raise TribertError("video folder not found", root)
    videos = find_videos(root)
    stems: dict[str, int] = {}
    for v in videos:
        stems[v.stem] = stems.get(v.stem, 0) + 1
    entries = []
    for v in videos:
        rel = v.relative_to(root).with_suffix("")
        vid = v.stem if stems[v.stem] == 1 else "__".join(rel.parts)
        entries.append(IndexEntry(id=safe_id(vid), labels=labels_from_folder(v.parent.name), path=v,
                                  source=str(root)))
    return entries


def resolve(entries: list[IndexEntry], video_root: str | Path | None) -> list[IndexEntry]:
    """Fill in ``entry.path`` for entries without one, from the files under ``video_root``.

    Looks for ``<root>/<label>/<id>.*``, ``<root>/<id>.*``, then any media file below the root
    whose stem is the id. Entries that stay unresolved keep ``path=None`` (the caller reports
    them). Entries are changed in place and returned.
    """
    if video_root is None:
        return entries
    root = Path(video_root)
    if not root.is_dir():
        raise TribertError("video root folder not found", root)
    by_stem: dict[str, list[Path]] | None = None  # built on first need: a recursive scan
    for e in entries:
        if e.path is not None:
            continue
        folders = [root / lab for lab in e.labels] + [root / " ".join(e.labels)] + [root]
        found = [p for d in folders for suf in VIDEO_SUFFIXES for p in (d / f"{e.id}{suf}",) if _is_video(p)]
        if not found:
            if by_stem is None:
                by_stem = {}
                for p in find_videos(root):
                    by_stem.setdefault(p.stem, []).append(p)
            found = by_stem.get(e.id, [])
        if found:
            e.path = found[0]
        else:
            e.searched = root
    return entries


def load_inputs(inputs: list[str | Path], video_root: str | Path | None = None) -> list[IndexEntry]:
    """Turn command-line inputs into entries: video files, folders, JSON and CSV index files.

    A ``.json`` input is a MUSIC index, ``.csv`` a Sound-of-Pixels index (their ids are resolved
    under ``video_root``, by default the index file's folder), a folder is scanned recursively,
    and anything else is taken as one video file (a missing one is kept, so that preparing it
    reports "file not found" beside the others). Ids are made unique across all inputs.

    Raises:
        TribertError: a malformed or missing index file, or a missing video root.
    """
    entries: list[IndexEntry] = []
    for item in inputs:
        item = Path(item)
        suffix = item.suffix.lower()
        if suffix in (".json", ".csv"):
            found = read_music_json(item) if suffix == ".json" else read_sop_csv(item)
            resolve(found, video_root if video_root is not None else item.parent)
            entries += found
        elif item.is_dir():
            entries += scan_folder(item)
        else:
            entries.append(IndexEntry(id=safe_id(item.stem), labels=labels_from_folder(item.parent.name),
                                      path=item, source=str(item)))
    # Unique ids across inputs: the same video given twice is prepared once; two different files
    # with the same id, or ids that differ only in case (one folder on macOS), get a numeric suffix.
    out: list[IndexEntry] = []
    by_id: dict[str, IndexEntry] = {}  # by the casefolded id
    for e in entries:
        key = e.id.casefold()
        if key in by_id:
            prev = by_id[key]
            same = (e.path is not None and prev.path is not None and _same_file(e.path, prev.path)) or (
                e.path is None and prev.path is None and e.audio_path == prev.audio_path)
            if same:
                continue
            e.id = free_name(e.id, [x.id for x in by_id.values()])
        by_id[e.id.casefold()] = e
        out.append(e)
    return out


def free_name(name: str, taken) -> str:
    """``name``, or where ``taken`` holds it the first free ``name-2``, ``name-3``, ... Names that
    differ only in case count as taken: on macOS and Windows they are one file."""
    folded = {t.casefold() for t in taken}
    base, n = name, 2
    while name.casefold() in folded:
        name, n = f"{base}-{n}", n + 1
    return name


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b
