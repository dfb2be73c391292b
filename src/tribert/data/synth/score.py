"""SynthMUSIC score: what each performer plays, as notes.

Every MUSIC21 class gets one General-MIDI program, a real pitch range and a playing style
(sustained bowed or blown lines, plucked arpeggios and strums, struck patterns, keyboard melody
over chords, drum-kit and conga grooves). :func:`compose` writes one performer's notes; the
performers of a clip share a :class:`Song` (tempo and key). The notes are both played
(:mod:`tribert.data.synth.audio`) and drive the performers' motion
(:mod:`tribert.data.synth.rig`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tribert.config import MUSIC21_CLASSES
from tribert.errors import TribertError


class Note(NamedTuple):
    """One note: times in seconds from the clip start, MIDI pitch (or drum key), MIDI velocity."""

    onset: float
    offset: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Instrument:
    """How a class sounds and is played.

    ``program`` is the 0-based GM program (ignored for percussion); ``low``/``high`` bound the MIDI
    pitches of its notes (for percussion: the drum keys used); ``style`` picks the composer.
    """

    program: int
    low: int
    high: int
    style: str
    percussion: bool = False
    scale: str = "diatonic"  # "diatonic" or "pentatonic" (the Chinese instruments)


# Class -> GM program (0-based), real pitch range and playing style.
INSTRUMENTS: dict[str, Instrument] = {
    "accordion": Instrument(21, 41, 81, "accordion"),
    "acoustic_guitar": Instrument(25, 40, 76, "guitar"),
    "bagpipe": Instrument(109, 67, 81, "bagpipe"),
    "banjo": Instrument(105, 50, 79, "banjo"),
    "bassoon": Instrument(70, 34, 65, "blown"),
    "cello": Instrument(42, 36, 69, "bowed"),
    "clarinet": Instrument(71, 50, 84, "blown"),
    "congas": Instrument(0, 62, 64, "congas", percussion=True),
    "drum": Instrument(0, 35, 50, "drums", percussion=True),
    "electric_bass": Instrument(33, 28, 55, "bass"),
    "erhu": Instrument(110, 62, 86, "bowed", scale="pentatonic"),
    "flute": Instrument(73, 60, 93, "blown"),
    "guzheng": Instrument(107, 50, 86, "guzheng", scale="pentatonic"),
    "piano": Instrument(0, 36, 96, "piano"),
    "pipa": Instrument(106, 57, 86, "pipa", scale="pentatonic"),
    "saxophone": Instrument(65, 49, 81, "blown"),
    "trumpet": Instrument(56, 54, 82, "blown"),
    "tuba": Instrument(58, 28, 58, "blown"),
    "ukulele": Instrument(24, 60, 81, "ukulele"),
    "violin": Instrument(40, 55, 93, "bowed"),
    "xylophone": Instrument(13, 65, 96, "struck"),
}
assert set(INSTRUMENTS) == set(MUSIC21_CLASSES)

# GM percussion keys used by the two percussion classes.
KICK, KICK2, SNARE, HAT_CLOSED, HAT_OPEN = 36, 35, 38, 42, 46
TOMS = (50, 48, 47, 45, 43, 41)  # high tom ... low floor tom
CONGA_MUTE_HI, CONGA_OPEN_HI, CONGA_LOW = 62, 63, 64

_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10),
           "pentatonic": (0, 2, 4, 7, 9)}


@dataclass(frozen=True)
class Song:
    """What the performers of one clip share: tempo and key (each plays its own part)."""

    bpm: float
    tonic: int  # pitch class 0..11
    mode: str  # "major" or "minor"

    @property
    def eighth(self) -> float:
        return 30.0 / self.bpm


def random_song(rng: np.random.Generator) -> Song:
    return Song(bpm=float(rng.uniform(76, 132)), tonic=int(rng.integers(12)),
                mode=str(rng.choice(["major", "minor"])))


def scale_pitches(song: Song, inst: Instrument) -> np.ndarray:
    """All pitches of the song's scale inside the instrument's range, ascending. [K]"""
    steps = _SCALES["pentatonic" if inst.scale == "pentatonic" else song.mode]
    return np.array([p for p in range(inst.low, inst.high + 1) if (p - song.tonic) % 12 in steps])


class _Walker:
    """A melodic random walk over scale pitches: mostly steps, sometimes leaps, kept in range."""

    def __init__(self, pitches: np.ndarray, rng: np.random.Generator, centre: float = 0.5):
        self.p, self.rng = pitches, rng
        n = len(pitches)
        lo, hi = int(0.25 * n), max(int(0.75 * n), int(0.25 * n) + 1)
        self.i = int(np.clip(rng.integers(lo, hi) + round((centre - 0.5) * n * 0.5), 0, n - 1))

    def next(self) -> int:
        step = int(self.rng.choice([-4, -2, -1, -1, 0, 1, 1, 2, 3], p=[.04, .12, .22, .08, .06, .22, .08, .12, .06]))
        j = self.i + step
        if j < 0 or j >= len(self.p):
            j = self.i - step  # bounce off the range limits
        self.i = int(np.clip(j, 0, len(self.p) - 1))
        return int(self.p[self.i])


def _chord(song: Song, root_degree: int, low: int, high: int, size: int, rng: np.random.Generator) -> list[int]:
    """A triad on a scale degree, voiced upwards from a random pitch inside [low, high]."""
    steps = _SCALES[song.mode]
    pcs = {(song.tonic + steps[(root_degree + k) % 7]) % 12 for k in (0, 2, 4)}
    cands = [p for p in range(low, high + 1) if p % 12 in pcs]
    start = int(rng.integers(0, max(1, len(cands) - size + 1)))
    return cands[start:start + size]


def _velocities(n: int, rng: np.random.Generator, lo: int = 60, hi: int = 112) -> np.ndarray:
    """Velocities with a slow phrase contour plus per-note variation."""
    base = rng.uniform(lo + 10, hi - 10)
    contour = 12 * np.sin(np.linspace(0, rng.uniform(1, 3) * np.pi, max(n, 1)) + rng.uniform(0, 6.3))
    return np.clip(base + contour + rng.normal(0, 6, max(n, 1)), lo, hi).astype(int)[:n]


def _line(song: Song, inst: Instrument, duration: float, rng: np.random.Generator, lengths: list[int],
          probs: list[float], legato: float, phrase: tuple[int, int] | None, start: float) -> list[Note]:
    """A monophonic melody: note lengths in eighths, optional breaths every ``phrase`` notes."""
    walker = _Walker(scale_pitches(song, inst), rng)
    e = song.eighth
    t = start
    notes: list[tuple[float, float, int]] = []
    until_breath = int(rng.integers(*phrase)) if phrase else 10 ** 9
    while t < duration - 0.1:
        dur = int(rng.choice(lengths, p=probs)) * e
        notes.append((t, t + dur * legato, walker.next()))
        t += dur
        until_breath -= 1
        if until_breath <= 0:  # a breath (wind) or a lifted bow
            t += int(rng.integers(1, 3)) * e
            until_breath = int(rng.integers(*phrase))
    vel = _velocities(len(notes), rng)
    return [Note(a, b, p, int(v)) for (a, b, p), v in zip(notes, vel)]


def _strummed(song: Song, inst: Instrument, duration: float, rng: np.random.Generator, start: float,
              chord_prob: float, lengths: list[int], ring: float, chord_size: tuple[int, int]) -> list[Note]:
    """Plucked strings: strummed chords (strings a few ms apart) mixed with single-note arpeggios."""
    e = song.eighth
    t, notes = start, []
    degree = int(rng.integers(7))
    while t < duration - 0.1:
        if rng.random() < 0.3:
            degree = int(rng.choice([0, 3, 4, 5, 1]))  # change chord
        dur = int(rng.choice(lengths)) * e
        chord = _chord(song, degree, inst.low, inst.high, int(rng.integers(*chord_size)), rng)
        vel = int(rng.integers(70, 115))
        if rng.random() < chord_prob:
            down = rng.random() < 0.7  # down-strum: low string first
            for k, p in enumerate(chord if down else chord[::-1]):
                notes.append(Note(t + 0.012 * k, t + dur * ring, p, vel - 4 * k))
        else:  # arpeggio of the same chord, one note per eighth
            for k in range(max(1, round(dur / e))):
                p = chord[k % len(chord)] if chord else inst.low
                notes.append(Note(t + k * e, t + k * e + ring * 2 * e, p, int(vel - rng.integers(0, 20))))
        t += dur
    return notes


def compose(cls: str, duration: float, rng: np.random.Generator, song: Song | None = None) -> list[Note]:
    """Write one performer's part for class ``cls``.

    Args:
        cls: a MUSIC21 class name.
        duration: clip length in seconds; notes start before ``duration - 0.1`` and end by it.
        rng: the random generator (the clip's, so a clip is reproducible from its seed).
        song: tempo and key shared with a duet partner (default: drawn from ``rng``).

    Returns:
        the notes, sorted by onset. Pitches are inside the class's range (``INSTRUMENTS``);
        percussion "pitches" are GM drum keys.
    """
    if cls not in INSTRUMENTS:
        raise TribertError(f"unknown instrument class {cls!r} (known: {', '.join(MUSIC21_CLASSES)})")
    inst = INSTRUMENTS[cls]
    song = song or random_song(rng)
    e = song.eighth
    start = float(rng.integers(0, 3)) * e * 0.5 + float(rng.uniform(0, 0.05))
    style = inst.style
    if style == "bowed":
        notes = _line(song, inst, duration, rng, [1, 2, 3, 4, 6], [.2, .35, .15, .2, .1], 0.97, (5, 12), start)
    elif style == "blown":
        notes = _line(song, inst, duration, rng, [1, 2, 3, 4, 6], [.2, .35, .15, .2, .1], 0.9, (3, 8), start)
    elif style == "bagpipe":  # no breaths: the bag keeps the sound going
        notes = _line(song, inst, duration, rng, [1, 2, 3, 4], [.3, .35, .15, .2], 0.99, None, start)
    elif style == "guitar":
        notes = _strummed(song, inst, duration, rng, start, 0.5, [2, 4], 0.95, (3, 6))
    elif style == "ukulele":
        notes = _strummed(song, inst, duration, rng, start, 0.8, [1, 2, 2], 0.9, (3, 5))
    elif style == "banjo":
        notes = _strummed(song, inst, duration, rng, start, 0.15, [4], 0.8, (3, 4))
    elif style == "bass":  # a low line of quarters and eighths
        notes = _line(song, inst, duration, rng, [1, 2, 2, 4], [.25, .45, .1, .2], 0.85, None, start)
    elif style == "pipa":
        notes = _tremolo_line(song, inst, duration, rng, start)
    elif style == "guzheng":
        notes = _guzheng(song, inst, duration, rng, start)
    elif style == "piano":
        notes = _keyboard(song, inst, duration, rng, start, split=60, sustain=False)
    elif style == "accordion":
        notes = _keyboard(song, inst, duration, rng, start, split=57, sustain=True)
    elif style == "struck":
        notes = _line(song, inst, duration, rng, [1, 2], [.7, .3], 0.5, (6, 14), start)
    elif style == "drums":
        notes = _drum_kit(song, duration, rng, start)
    elif style == "congas":
        notes = _congas(song, duration, rng, start)
    else:  # pragma: no cover - INSTRUMENTS only uses the styles above
        raise AssertionError(style)
    # Keep notes inside the clip; sort by onset (chords and two-hand parts interleave).
    notes = [Note(float(n.onset), float(min(n.offset, duration)), int(n.pitch), int(np.clip(n.velocity, 1, 127)))
             for n in notes if n.onset < duration - 0.1 and n.offset > n.onset]
    return sorted(notes, key=lambda n: (n.onset, n.pitch))


def _tremolo_line(song: Song, inst: Instrument, duration: float, rng: np.random.Generator,
                  start: float) -> list[Note]:
    """Pipa: plucked melody whose long notes are played as fast tremolo (repeated plucks)."""
    walker = _Walker(scale_pitches(song, inst), rng)
    e = song.eighth
    t, notes = start, []
    while t < duration - 0.1:
        p = walker.next()
        vel = int(rng.integers(65, 110))
        if rng.random() < 0.35:  # tremolo over 2-4 eighths at sixteenth notes
            n = 2 * int(rng.integers(2, 5))
            for k in range(n):
                notes.append(Note(t + k * e / 2, t + (k + 1) * e / 2, p, vel - int(rng.integers(0, 15))))
            t += n * e / 2
        else:
            d = int(rng.choice([1, 1, 2])) * e
            notes.append(Note(t, t + 1.5 * d, p, vel))
            t += d
    return notes


def _guzheng(song: Song, inst: Instrument, duration: float, rng: np.random.Generator, start: float) -> list[Note]:
    """Guzheng: pentatonic glissando runs (fast, ringing) answered by plucked long notes."""
    pitches = scale_pitches(song, inst)
    walker = _Walker(pitches, rng)
    e = song.eighth
    t, notes = start, []
    while t < duration - 0.1:
        if rng.random() < 0.3:  # a run of 4-7 strings, up or down
            n = int(rng.integers(4, 8))
            i0 = int(rng.integers(0, max(1, len(pitches) - n)))
            run = pitches[i0:i0 + n][:: 1 if rng.random() < 0.5 else -1]
            for k, p in enumerate(run):
                notes.append(Note(t + k * e / 3, t + k * e / 3 + 4 * e, int(p), int(rng.integers(60, 100))))
            t += len(run) * e / 3 + e
        else:
            d = int(rng.choice([1, 2, 2, 3])) * e
            notes.append(Note(t, t + 3 * d, walker.next(), int(rng.integers(70, 112))))
            t += d
    return notes


def _keyboard(song: Song, inst: Instrument, duration: float, rng: np.random.Generator, start: float,
              split: int, sustain: bool) -> list[Note]:
    """Piano / accordion: right-hand melody above ``split`` over left-hand bass + chords below it.

    Piano: bass note on the beat, chord on the off-beat, melody in eighths and quarters.
    Accordion: sustained melody over oom-pah bass buttons.
    """
    right = Instrument(inst.program, split, inst.high - 6, inst.style)
    lengths, probs = ([2, 3, 4, 6], [.35, .15, .35, .15]) if sustain else ([1, 2, 3, 4], [.35, .35, .1, .2])
    notes = _line(song, right, duration, rng, lengths, probs, 0.95 if sustain else 0.8, None, start)
    e = song.eighth
    t = start
    degree = 0
    while t < duration - 0.1:  # left hand, one bar of 4 quarters at a time
        if rng.random() < 0.5:
            degree = int(rng.choice([0, 3, 4, 5]))
        bass = _chord(song, degree, inst.low, inst.low + 11, 1, rng)
        chord = _chord(song, degree, inst.low + 10, split - 1, 3, rng)
        for beat in range(4):
            tb = t + 2 * beat * e
            if beat % 2 == 0:
                notes += [Note(tb, tb + 1.8 * e, p, int(rng.integers(60, 95))) for p in bass]
            else:
                notes += [Note(tb, tb + (0.9 if sustain else 1.6) * e, p, int(rng.integers(55, 85))) for p in chord]
        t += 8 * e
    return notes


def _drum_kit(song: Song, duration: float, rng: np.random.Generator, start: float) -> list[Note]:
    """Rock/pop grooves: hi-hat eighths, kick on 1 and 3, snare on 2 and 4, a tom fill now and then."""
    e = song.eighth
    kick = int(rng.choice([KICK, KICK2]))
    notes: list[Note] = []
    t, bar = start, 0
    while t < duration - 0.1:
        fill = bar % 2 == 1 and rng.random() < 0.6
        for k in range(8):
            tk = t + k * e
            if fill and k >= 4:  # sixteenth-note tom run down the kit
                for h in range(2):
                    tom = TOMS[min(len(TOMS) - 1, (k - 4) * 2 + h)]
                    notes.append(Note(tk + h * e / 2, tk + h * e / 2 + 0.2, tom, int(rng.integers(85, 120))))
                continue
            hat = HAT_OPEN if (k == 7 and rng.random() < 0.3) else HAT_CLOSED
            notes.append(Note(tk, tk + 0.1, hat, int(rng.integers(55, 95)) + (15 if k % 2 == 0 else 0)))
            if k in (0, 4) or (k in (3, 5, 7) and rng.random() < 0.2):
                notes.append(Note(tk, tk + 0.2, kick, int(rng.integers(90, 120))))
            if k in (2, 6):
                notes.append(Note(tk, tk + 0.2, SNARE, int(rng.integers(90, 125))))
        t += 8 * e
        bar += 1
    return notes


_CONGA_PATTERNS = [  # per eighth of a bar: drum key or 0 (rest); tumbao and variations
    (CONGA_MUTE_HI, 0, CONGA_MUTE_HI, CONGA_OPEN_HI, CONGA_MUTE_HI, 0, CONGA_OPEN_HI, CONGA_LOW),
    (CONGA_OPEN_HI, CONGA_MUTE_HI, 0, CONGA_LOW, CONGA_OPEN_HI, CONGA_MUTE_HI, CONGA_LOW, CONGA_LOW),
    (CONGA_MUTE_HI, CONGA_MUTE_HI, CONGA_OPEN_HI, 0, CONGA_MUTE_HI, CONGA_OPEN_HI, CONGA_LOW, 0),
]


def _congas(song: Song, duration: float, rng: np.random.Generator, start: float) -> list[Note]:
    e = song.eighth
    notes: list[Note] = []
    t = start
    while t < duration - 0.1:
        pattern = _CONGA_PATTERNS[int(rng.integers(len(_CONGA_PATTERNS)))]
        for k, key in enumerate(pattern):
            if key and rng.random() > 0.1:
                notes.append(Note(t + k * e, t + k * e + 0.15, key, int(rng.integers(70, 120))))
        t += 8 * e
    return notes


__all__ = ["Note", "Instrument", "INSTRUMENTS", "Song", "random_song", "compose", "scale_pitches"]
