"""SynthMUSIC: the embedded default data set, drawn music videos generated from a seed.

Each clip shows one or two performers (a solo, a duet of two classes, or a same-class duet where
only the motion tells the two apart) playing soundfont-rendered parts, with motion driven by the
notes they play. A clip is made in this order, all from the clip's own random generator:

1. ``score``: each performer's notes for their class (:func:`~tribert.data.synth.score.compose`),
   tempo and key shared by the performers.
2. ``audio``: the notes played with a General-MIDI soundfont, one stem per performer, mixed.
3. ``rig`` and ``rigs/``: the notes become motion signals (bowing, strumming, strikes, fingering,
   breathing) and body controls (wrist targets, hand angles, finger curls) plus the drawn
   instrument, by a rig per class; ``rigs/`` holds them by family (bowed, plucked, keyboards,
   percussion, winds), with the geometry of similar instruments as tables.
4. ``performer`` with ``body``: the 68-keypoint skeleton is solved from the controls (template
   torso and legs, two-bone arm IK, a parametric hand) and dressed (``geometry`` holds the shapes).
5. ``scene``: performers placed in the frame, a hand-held camera, a cluttered room, every frame
   drawn with Pillow; ``noise`` turns the exact keypoints into detector-like pose.
6. ``generator``: the plan of a data set (kind, classes, split of every clip) and the clip
   folders, MP4s and indexes on disk (:func:`generate`, the command ``tribert synth``).

Python API::

    from tribert.data.synth import generate
    summary = generate("data/synth", clips=1000, seed=0, workers=2)
"""

from tribert.data.synth.generator import generate

__all__ = ["generate"]
