"""Separation outputs: ``SeparationResult`` and how it is written (WAV and MP4 per source, the
mixture, a figure of the mixture and masks as the model saw them, and where it looked)."""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tribert.data.clip import holds_clips
from tribert.errors import TribertError
from tribert.io import atomic_files, atomic_write_text, check_out_dir, write_wav
from tribert.separate.inputs import VideoInput

log = logging.getLogger(__name__)

# Beside the outputs: the names a separation wrote, which a later one may replace (no other file).
MANIFEST = ".tribert-separation.json"


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
    # first window's model input [F, T]: the mixture's log magnitude on the warped grid of the masks
    mixture_logmag: np.ndarray | None = None
    mixture_path: str = ""  # the recording separated, where one was given as a file
    notes: list[str] = field(default_factory=list)  # lengths that did not match, and what was done

    def write(self, out_dir: str | Path, figure: bool = True) -> list[Path]:
        """Write ``<name>.wav`` per stem, ``<name>.mp4`` (its video with the separated audio), the
        mixture WAV and ``separation.png``; returns the written paths. Refuses (before writing
        anything) an output folder where a file written would replace one of the inputs.

        The set is written whole or not at all: into a hidden folder inside ``out_dir`` first,
        then moved into place, so a Ctrl-C or an error meanwhile leaves the folder as it was (not
        a mixture of this run's files and an earlier run's). A folder with an earlier separation
        of other sources, or with a file of an output's name that no separation wrote, is refused
        (``check_outputs``); other WAV and MP4 files found there are left, with a warning naming
        them. The names written are listed in ``.tribert-separation.json`` beside them: what a
        later separation into the folder may replace."""
        from tribert.media import write_mp4

        out = Path(out_dir)
        check_outputs(out, self.names, [v.path for v in self.videos] + [self.mixture_path])
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "mixture.wav"]
        with atomic_files(out) as stage:
            write_wav(stage / "mixture.wav", self.mixture, self.sample_rate)
            for stem, name, v in zip(self.stems, self.names, self.source_video):
                video = self.videos[v]
                write_wav(stage / f"{name}.wav", stem, self.sample_rate)
                n_frames = max(1, min(len(video.frames), int(len(stem) / self.sample_rate * video.fps)))
                write_mp4(stage / f"{name}.mp4", video.frames[:n_frames], video.fps, stem, self.sample_rate)
                written += [out / f"{name}.wav", out / f"{name}.mp4"]
            if figure:
                self.figure(stage / "separation.png")
                written.append(out / "separation.png")
            # with what an earlier separation of these sources left (its figure, where this one has none)
            files = sorted({p.name for p in written} | {f for f in written_before(out) if (out / f).is_file()})
            atomic_write_text(stage / MANIFEST, json.dumps({"files": files}, indent=1) + "\n")
        if earlier := other_media(out, written):
            log.warning("%s also holds %d file(s) this separation did not write (%s): left as they are", out,
                        len(earlier), _first_names(earlier))
        return written

    def figure(self, path: str | Path) -> Path:
        """The mixture as the model saw it (the front-end's log-frequency log magnitude), the predicted
        masks on the same grid (first window) and the visual localisation heat map(s)."""
        from matplotlib.figure import Figure  # no pyplot: no process-wide backend or figure registry

        from tribert.io import atomic_path

        spectrogram = [self.mixture_logmag] if self.mixture_logmag is not None else []
        cols = len(spectrogram) + len(self.masks) + len(self.attention)
        fig = Figure(figsize=(3.2 * cols, 3.2))
        axes = np.atleast_1d(fig.subplots(1, cols))
        for ax, logmag in zip(axes, spectrogram):
            ax.imshow(logmag, origin="lower", aspect="auto", cmap="magma")
            ax.set_title("mixture (model input)")
        for ax, mask, name in zip(axes[len(spectrogram):], self.masks, self.names):
            ax.imshow(mask, origin="lower", aspect="auto", cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"mask: {name}")
        for ax, att, video in zip(axes[len(spectrogram) + len(self.masks):], self.attention, self.videos):
            frame = video.frames[len(video.frames) // 2]
            ax.imshow(frame)
            heat = np.asarray(torch.nn.functional.interpolate(
                torch.from_numpy(att)[None, None], size=frame.shape[:2], mode="bilinear")[0, 0])
            ax.imshow(heat, alpha=0.5, cmap="jet")
            ax.set_title(f"where: {video.name}")
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        with warnings.catch_warnings():  # a name with an emoji: its box is enough, no warning
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            fig.tight_layout()
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=80)
        return Path(path)


def output_files(out_dir: str | Path, names: list[str]) -> list[Path]:
    """Every file :meth:`SeparationResult.write` may write for sources ``names``."""
    out = Path(out_dir)
    return [out / "mixture.wav", out / "separation.png"] + [out / f"{n}{ext}" for n in names for ext in (".wav", ".mp4")]


def other_media(out_dir: Path, ours: list[Path], inputs: list[Path] = (), only: set[str] | None = None) -> list[str]:
    """Names of the WAV and MP4 files in ``out_dir`` that are neither ``ours`` nor ``inputs``
    (among ``only``, where given)."""
    return sorted(p.name for p in out_dir.iterdir() if p.suffix in (".wav", ".mp4") and p not in ours
                  and (only is None or p.name in only) and not any(os.path.samefile(p, source) for source in inputs))


def _first_names(names: list[str]) -> str:
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")


def written_before(out_dir: Path) -> set[str]:
    """The file names an earlier separation wrote into ``out_dir`` (its manifest; none: empty)."""
    try:
        files = json.loads((out_dir / MANIFEST).read_text())["files"]
        return {f for f in files if isinstance(f, str)}
    except (OSError, ValueError, KeyError, TypeError):  # no manifest, or not one we wrote
        return set()


def check_outputs(out_dir: str | Path, names: list[str], inputs: list[str | Path]) -> None:
    """``out_dir`` is a folder that can be written (``check_out_dir``), no file written for
    sources ``names`` into it is one of ``inputs`` (the videos, the mixture, the checkpoint;
    ``--out`` set to the videos' own folder would otherwise replace them) or a file that no
    earlier separation wrote there (a user's own ``mixture.wav``), and the folder holds no
    earlier separation of other sources (its mixture and figure would be replaced, its stems
    not). One line."""
    check_out_dir(out_dir)
    out, targets = Path(out_dir), output_files(out_dir, names)
    if holds_clips(out):
        raise TribertError("holds prepared clips: give the separated files a folder of their own (--out)", out)
    sources = [Path(i) for i in inputs if i and Path(i).is_file()]
    ours = written_before(out)
    for target in targets:
        if target.is_dir():  # found before the work, not as a traceback after it
            raise TribertError("an output file's name is taken by a folder: move it, or give another --out", target)
        for source in sources:
            if target.exists() and os.path.samefile(target, source):
                raise TribertError(f"the output {target} would replace this input: give another --out", source)
    if taken := next((t for t in targets if t.exists() and t.name not in ours), None):
        raise TribertError("an output's name is taken by a file no separation wrote here: move it, or give "
                           "another --out", taken)
    # an earlier separation is there: of these sources, or of others? (its inputs beside it: a re-run)
    if "mixture.wav" in ours and (out / "mixture.wav").is_file() and \
            (others := other_media(out, targets, sources, only=ours)):
        raise TribertError(f"holds an earlier separation of other sources ({_first_names(others)}): its mixture.wav "
                           "and separation.png would be replaced and its stems left beside this one's; give another "
                           "--out, or empty the folder first", out)


__all__ = ["SeparationResult", "check_outputs", "output_files"]
