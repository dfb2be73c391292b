"""Atomic file writes: write to a temporary file in the same folder, then rename over the target.

A crash or Ctrl-C half-way never leaves a truncated file where a good one is expected, and a
re-run never sees a half-written output as finished. Also the 16-bit PCM WAV reader and writer
(every WAV tribert writes: clips, stems, separated sources) and the cache folder.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
import wave
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from tribert.errors import TribertError, first_line


@functools.cache
def _umask() -> int:
    """The process umask, read once at the first write (not at import: reading it sets it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create private (0600/0700) entries; published files get the usual permissions.
def _file_mode() -> int:
    return 0o666 & ~_umask()


def _dir_mode() -> int:
    return 0o777 & ~_umask()


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    ``suffix`` defaults to the target's suffix, so writers that pick a format from the file name
    (PyAV, Pillow) see the right one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix,
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _file_mode())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float as None: JSON has no NaN or Infinity (Python writes
    them, strict parsers such as JavaScript's and jq's refuse the file)."""
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, dict):
        return {k: _strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict_json(v) for v in obj]
    return obj


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """``obj`` as strict JSON (NaN and infinities written as null), atomically."""
    atomic_write_text(path, json.dumps(_strict_json(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success rename it to ``path``.

    Used for whole prepared clips: a clip folder either exists complete or not at all. An existing
    ``path`` is never removed here: the caller decides whether it is finished (resume) or not.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, _dir_mode())
        os.replace(tmp, path)  # fails if path exists and is not empty: never clobbers good data
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_files(folder: str | Path) -> Iterator[Path]:
    """Yield a temporary folder inside ``folder``; on success move every file written there into
    ``folder`` (replacing files of the same names). ``atomic_dir`` for a set of files landing in
    an existing folder: an error or a Ctrl-C meanwhile leaves ``folder`` as it was."""
    tmp = Path(tempfile.mkdtemp(prefix=".tribert-writing-", dir=folder))
    try:
        yield tmp
        for f in sorted(tmp.iterdir()):
            os.replace(f, Path(folder) / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_out_dir(path: str | Path) -> None:
    """``path`` is a folder, or can be made: checked before work that writes into it, so a bad
    output folder costs one line, not the work. Raises TribertError naming it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TribertError("output path exists and is not a folder", path)
    nearest = path
    while not nearest.exists():  # the nearest existing ancestor: where the folder would be made
        nearest = nearest.parent
    if not nearest.is_dir():
        raise TribertError(f"cannot make the output folder: {nearest} is not a folder", path)
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise TribertError(f"cannot write into {nearest} (permission denied or a read-only file system)", path)


def check_out_file(path: str | Path, inputs=(), replaces: tuple[str, Callable[[Path], bool]] | None = None) -> None:
    """``path`` can be written as a file (not a folder; its folder exists or can be made) and is
    none of ``inputs`` (a checkpoint, heads): checked before the work whose result it keeps.

    ``replaces``: (what the command writes, a test of an existing file). A file already at
    ``path`` is replaced only if it is empty or passes the test (an earlier run of the command):
    ``export`` or ``evaluate --out`` given a training checkpoint's name would have lost it."""
    path = Path(path)
    if path.is_dir():
        raise TribertError("is a folder: give a file name", path)
    check_out_dir(path.parent)
    for source in inputs:
        if source and path.exists() and Path(source).exists() and os.path.samefile(path, source):
            raise TribertError("is an input of this command: give another output path", path)
    if replaces is not None and path.is_file() and path.stat().st_size > 0 and not replaces[1](path):
        raise TribertError(f"exists and is not {replaces[0]}: tribert does not replace it; give another "
                           "output path, or move the file away first", path)


def is_results_json(path: Path, kind: str) -> bool:
    """Whether ``path`` holds results of this ``kind`` as ``write_results`` writes them (a JSON
    object with meta and results; files written before the kind was recorded pass for either). A
    file that does not start as a JSON object, or is larger than results ever are, is not read whole
    (a checkpoint of gigabytes given as --out)."""
    try:
        with open(path, "rb") as f:
            if f.read(64).lstrip()[:1] != b"{" or path.stat().st_size > 256 * 2**20:
                return False
        data = read_json(path, "results JSON")
    except (OSError, TribertError):
        return False
    return {"meta", "results"} <= data.keys() and data.get("kind", kind) == kind


def is_png(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


PNG = ("a PNG image", is_png)


def results_json(kind: str) -> tuple[str, Callable[[Path], bool]]:
    """``check_out_file``'s ``replaces`` for results of ``kind`` ("separation", "retrieval")."""
    return f"a {kind} results JSON of tribert", functools.partial(is_results_json, kind=kind)


def write_results(path: str | Path, results: dict, meta: dict, kind: str = "separation") -> None:
    """Results of ``evaluate`` (kind "separation") or ``retrieve evaluate`` ("retrieval") as strict
    JSON (an infinite score, a silent estimate's SDR or a perfect SAR, is null), atomically; never
    over a file of another kind (the commands check this before their work, a library caller here)."""
    check_out_file(path, replaces=results_json(kind))
    atomic_write_json(path, {"kind": kind, "meta": meta, "results": results})


def read_npy(path: str | Path, what: str, mmap: bool = False) -> np.ndarray:
    """A stored numpy array (no pickles; memory-mapped with ``mmap``). An unreadable file (missing,
    empty, truncated, not an .npy) is a TribertError naming it and ``what`` it should hold."""
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except EOFError:  # numpy's message for an empty file is empty
        raise TribertError(f"cannot read {what}: the file is empty or truncated", path) from None
    except (OSError, ValueError) as err:
        raise TribertError(f"cannot read {what} ({err})", path) from None
    if not isinstance(array, np.ndarray):  # an .npz archive under the name: np.load opens it as a zip
        array.close()
        raise TribertError(f"cannot read {what}: an .npz archive, not one .npy array", path)
    return array


def read_json(path: str | Path, what: str, expect_object: bool = True) -> Any:
    """A stored JSON value (with ``expect_object``, a JSON object). A file that cannot be read, is
    not UTF-8 JSON or holds another kind of value is a TribertError "corrupt <what> (why)" naming
    it; a missing file raises FileNotFoundError, for the caller to say what is missing."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as err:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise TribertError(f"corrupt {what} ({first_line(err)})", path) from None
    if expect_object and not isinstance(data, dict):
        raise TribertError(f"corrupt {what} (a JSON {type(data).__name__}, not an object)", path)
    return data


def cache_dir() -> Path:
    """Where tribert keeps what it can recompute: ``$TRIBERT_CACHE``, default ``~/.cache/tribert``
    (also when it is set empty: ``Path("")`` would be the working folder)."""
    return Path(os.environ.get("TRIBERT_CACHE") or Path.home() / ".cache" / "tribert").expanduser()


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Mono float audio in [-1, 1] -> 16-bit PCM WAV, atomically. Clips out-of-range samples."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with atomic_path(path) as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(sample_rate))
            w.writeframes(pcm.tobytes())


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV (as written by write_wav) -> (float32 mono [N], sample_rate)."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise TribertError(f"expected 16-bit PCM WAV, got {8 * w.getsampwidth()}-bit", path)
            sr, ch = w.getframerate(), w.getnchannels()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    except (wave.Error, EOFError) as err:
        raise TribertError(f"not a readable WAV file ({first_line(err)})", path) from None
    except FileNotFoundError:
        raise TribertError("file not found", path) from None
    audio = pcm.astype(np.float32) / 32767.0
    if ch > 1:
        audio = audio.reshape(-1, ch).mean(axis=1)
    return audio, sr
