"""Configuration: the one home of every setting, as plain dataclasses read from YAML.

    from tribert.config import Config
    config = Config.load("synth_small", overrides=["train.max_steps=100", "model.kind=audio_only"])

A run's ``Config`` has five sections, each a dataclass:

==========  =============================  ====================================================
section     class (module)                 what it holds
==========  =============================  ====================================================
``audio``   ``AudioConfig`` (sections)     sample rate, crop, STFT, log-frequency warp, mask
``video``   ``VideoConfig`` (sections)     frame rate and size, frames per sample, persons, pose
``data``    ``DataConfig`` (sections)      clip folders, N videos per mixture, gains, classes
``model``   ``ModelConfig`` (model)        which separator (``kind``), its ``size``, every width
``train``   ``TrainConfig`` (run)          optimiser, schedule, loss weights, trainer, checkpoints
==========  =============================  ====================================================

Where each value comes from, in the order ``Config.from_dict`` applies them:

1. **Dataclass defaults** (the paper's values) for ``audio``, ``video``, ``data`` and ``train``.
2. **The recipe** (``configs/<name>.yaml``, or any YAML file) and then the ``--set
   section.key=value`` overrides, which change single fields of any section.
3. **The size factory** (:mod:`tribert.config.sizes`): ``model.size`` (paper | small | tiny)
   selects a factory whose ``ModelConfig`` gives *every* model field; the recipe's ``model:``
   section then changes single fields on top of it (e.g. ``model.kind``, ``model.film``).
4. **Derived fields**: ``model.frame_size``, ``num_frames``, ``num_objects``, ``pose_frames``,
   ``spec_bins``, ``spec_frames`` and ``num_classes`` follow ``video``, ``audio`` and ``data``
   (``Config.derived_model_fields``); setting one of them to anything else is refused.
5. **Migration** (:func:`tribert.config.run.migrate`, applied first): older recipes and
   checkpoints chose the model under ``train:`` (``train.model``, ``train.size``); those keys are
   read as ``model.kind`` and ``model.size``.

A run folder and every checkpoint store the fully resolved config (all five sections, every
field), so a stored config reloads to the same ``Config`` whatever the defaults become.

Modules: ``sections`` (audio/video/data), ``model`` (``ModelConfig``), ``sizes`` (the named
sizes), ``run`` (``TrainConfig``, ``Config``, recipes, migration), ``loading`` (YAML, strict key
and type checks). This package imports nothing else of tribert but ``tribert.errors`` and
``tribert.io``.
"""

from tribert.config.loading import apply_overrides, dump_yaml, from_dict, load_yaml, to_dict
from tribert.config.model import KINDS, ModelConfig
from tribert.config.run import RECIPES, Config, TrainConfig, migrate, recipe_path, recipes
from tribert.config.sections import MUSIC11_CLASSES, MUSIC21_CLASSES, AudioConfig, DataConfig, VideoConfig
from tribert.config.sizes import SIZES, model_config, paper_config, small_config, tiny_config

__all__ = ["Config", "TrainConfig", "ModelConfig", "AudioConfig", "VideoConfig", "DataConfig", "KINDS", "SIZES",
           "MUSIC21_CLASSES", "MUSIC11_CLASSES", "RECIPES", "recipe_path", "recipes", "migrate", "model_config",
           "paper_config", "small_config", "tiny_config", "from_dict", "to_dict", "load_yaml", "apply_overrides",
           "dump_yaml"]
