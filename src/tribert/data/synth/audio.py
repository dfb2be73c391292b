"""SynthMUSIC audio: notes played with a General-MIDI soundfont, and the clip's mix.

:class:`Renderer` plays one performer's notes (:mod:`tribert.data.synth.score`) with
`tinysoundfont`; :func:`mix_stems` sets the loudness of the per-performer stems and sums them
into the clip's audio.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from tribert.data.synth.score import INSTRUMENTS, Note
from tribert.errors import TribertError

PERCUSSION_CHANNEL = 9  # MIDI channel 10: the GM drum kit
DRUM_BANK = 128  # soundfont bank of the percussion kits


# tinysoundfont declares pyaudio (a C build against PortAudio) for live playback, which offline
# rendering never uses: it is installed without its declared dependencies (install.sh does this).
SOUNDFONT_INSTALL = "pip install --no-deps tinysoundfont==0.3.7"


def default_soundfont() -> Path:
    """The TimGM6mb General-MIDI bank shipped inside the ``pretty_midi`` package."""
    import pretty_midi

    return Path(os.path.dirname(pretty_midi.__file__)) / "TimGM6mb.sf2"


def soundfont_digest(path: str | Path) -> str:
    """A short content hash of a soundfont, stored in the data set manifest (resume check)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


class Renderer:
    """Plays note lists with one soundfont (loaded once; reuse the object for many clips).

    Args:
        soundfont: path of a .sf2 bank; None for TimGM6mb (:func:`default_soundfont`).
        render_rate: the synth's output rate in Hz; the result is resampled (soxr) to the
            requested rate. Rendering at 22050 Hz and downsampling avoids the aliasing of the
            synth's linear sample interpolation that a direct 11025 Hz render has on high notes.

    Raises:
        TribertError: the file is missing or is not a soundfont tinysoundfont can read.
    """

    def __init__(self, soundfont: str | Path | None = None, render_rate: int = 22050):
        try:
            # The compiled core: the package's Python layer renders through an audio device.
            from tinysoundfont import _tinysoundfont as tsf
        except ImportError:
            raise TribertError(f"SynthMUSIC renders audio with tinysoundfont, which is not installed: "
                               f"{SOUNDFONT_INSTALL}") from None

        self.path = Path(soundfont) if soundfont is not None else default_soundfont()
        if not self.path.is_file():
            raise TribertError("is a folder, not a .sf2 soundfont" if self.path.is_dir() else "soundfont file not found",
                               self.path)
        self._tsf = tsf
        self._bytes = self.path.read_bytes()
        self._sf = self._load()  # used for preset look-ups only
        if self._sf.get_preset_count() == 0:
            raise TribertError("soundfont holds no presets", self.path)
        self.render_rate = int(render_rate)

    def _load(self):
        try:
            return self._tsf.SoundFont(self._bytes)
        except (RuntimeError, OSError, ValueError):
            raise TribertError("not a readable SoundFont (.sf2) file", self.path) from None

    def program(self, cls: str) -> tuple[int, int]:
        """(bank, preset) that plays ``cls`` in this soundfont: the GM program, or (-1, 0) for the
        bank's first preset when a non-GM bank lacks it (so any .sf2 still renders every class)."""
        inst = INSTRUMENTS[cls]
        bank, preset = (DRUM_BANK, 0) if inst.percussion else (0, inst.program)
        if self._sf.get_preset_index(bank, preset) >= 0:
            return bank, preset
        return -1, 0

    def render(self, cls: str, notes: list[Note], duration: float, sample_rate: int = 11025) -> np.ndarray:
        """Render one performer's notes.

        A fresh synth is made from the cached soundfont bytes for every call (~13 ms): a
        tinysoundfont synth keeps voice state across ``reset()``, which would make a clip's audio
        depend on what was rendered before it (and so on the worker it ran in).

        Returns:
            float32 [round(duration * sample_rate)] mono audio (not normalised).
        """
        import soxr

        inst = INSTRUMENTS[cls]
        sf, rate = self._load(), self.render_rate
        sf.set_output(self._tsf.OutputMode.Mono, rate, 0.0)
        chan = PERCUSSION_CHANNEL if inst.percussion else 0
        bank, preset = self.program(cls)
        if bank < 0:
            sf.channel_set_preset_index(chan, 0)
        else:
            sf.channel_set_bank(chan, bank)
            sf.channel_set_preset_number(chan, preset, inst.percussion)
        n_out = int(round(duration * rate))
        # Events sorted by sample; note-offs first at equal times so a repeated key re-strikes.
        events = sorted([(int(round(n.onset * rate)), 1, n.pitch, n.velocity) for n in notes]
                        + [(int(round(n.offset * rate)), 0, n.pitch, 0) for n in notes])
        buf = bytearray(4 * n_out)
        view = memoryview(buf)
        pos = 0
        for sample, on, key, vel in events:
            sample = min(sample, n_out)
            if sample > pos:
                sf.render(view[4 * pos:4 * sample], False)
                pos = sample
            if on:
                sf.channel_note_on(chan, key, vel / 127.0)
            elif not inst.percussion:  # drum hits ring out by themselves
                sf.channel_note_off(chan, key)
        if pos < n_out:
            sf.render(view[4 * pos:], False)
        audio = np.frombuffer(buf, dtype=np.float32)  # [n_out] at render rate
        if rate != sample_rate:
            audio = soxr.resample(audio, rate, sample_rate, quality="HQ")
        n = int(round(duration * sample_rate))
        audio = np.asarray(audio[:n], dtype=np.float32)
        return np.pad(audio, (0, n - len(audio))) if len(audio) < n else audio


def mix_stems(stems: list[np.ndarray], rng: np.random.Generator, level_db: tuple[float, float] = (-24.0, -17.0),
              spread_db: float = 3.0, peak: float = 0.95) -> tuple[list[np.ndarray], np.ndarray]:
    """Set each stem's loudness and sum them.

    Each stem is scaled to an RMS of a clip level drawn from ``level_db`` (dBFS) plus a
    per-stem offset of +-``spread_db``; then all stems are scaled together so that neither the
    mixture nor any stem peaks above ``peak``. The returned mixture is exactly the sum of the
    returned stems.

    Returns:
        (stems, mixture): float32 arrays of equal length [N].
    """
    level = rng.uniform(*level_db)
    out = []
    for s in stems:
        rms = float(np.sqrt(np.mean(s.astype(np.float64) ** 2)))
        target = 10 ** ((level + rng.uniform(-spread_db, spread_db)) / 20)
        out.append((s * (target / max(rms, 1e-6))).astype(np.float32))
    mixture = np.sum(out, axis=0).astype(np.float32)
    top = max(float(np.abs(mixture).max()), max(float(np.abs(s).max()) for s in out))
    if top > peak:
        out = [(s * (peak / top)).astype(np.float32) for s in out]
        mixture = np.sum(out, axis=0).astype(np.float32)
    return out, mixture


__all__ = ["Renderer", "mix_stems", "default_soundfont", "soundfont_digest", "SOUNDFONT_INSTALL"]
