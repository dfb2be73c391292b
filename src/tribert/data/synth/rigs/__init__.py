"""The 21 class rigs, by instrument family: each turns a performer's notes into motion controls
and instrument shapes on a :class:`~tribert.data.synth.rig.Rig`.

A new class needs a rig function here (and its sound in :mod:`tribert.data.synth.score`).
"""

from __future__ import annotations

from typing import Callable

from tribert.data.synth.rig import Rig
from tribert.data.synth.rigs.bowed import rig_cello, rig_erhu, rig_violin
from tribert.data.synth.rigs.keyboards import rig_accordion, rig_piano
from tribert.data.synth.rigs.percussion import rig_congas, rig_drum, rig_xylophone
from tribert.data.synth.rigs.plucked import LUTES, rig_guzheng, rig_lute
from tribert.data.synth.rigs.winds import (rig_bagpipe, rig_bassoon, rig_clarinet, rig_flute, rig_saxophone,
                                           rig_trumpet, rig_tuba)
from tribert.data.synth.score import INSTRUMENTS

RIGS: dict[str, Callable[[Rig], None]] = {
    **{cls: rig_lute for cls in LUTES},
    "violin": rig_violin, "erhu": rig_erhu, "cello": rig_cello,
    "guzheng": rig_guzheng,
    "piano": rig_piano, "accordion": rig_accordion,
    "xylophone": rig_xylophone, "drum": rig_drum, "congas": rig_congas,
    "flute": rig_flute, "clarinet": rig_clarinet, "saxophone": rig_saxophone, "trumpet": rig_trumpet,
    "tuba": rig_tuba, "bassoon": rig_bassoon, "bagpipe": rig_bagpipe,
}
assert set(RIGS) == set(INSTRUMENTS)

__all__ = ["RIGS"]
