"""``Config``: the full run configuration (audio + video + data + model + train) and ``TrainConfig``.

How a ``Config`` is resolved from a recipe is described in :mod:`tribert.config`.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from tribert.config.loading import apply_overrides, from_dict, load_yaml, to_dict
from tribert.config.model import ModelConfig
from tribert.config.sections import AudioConfig, DataConfig, VideoConfig
from tribert.config.sizes import model_config
from tribert.errors import ConfigError

log = logging.getLogger(__name__)

RECIPES = Path(__file__).resolve().parent.parent / "configs"


def recipe_path(path: str | Path) -> Path:
    """A file path as given, or the shipped recipe of that name (configs/<name>.yaml)."""
    p = Path(path)
    # a folder is never a config: `--config synth_tiny` beside a data folder of that name is the recipe
    if p.suffix == "" and (RECIPES / f"{p.name}.yaml").is_file() and (not p.exists() or p.is_dir() and len(p.parts) == 1):
        return RECIPES / f"{p.name}.yaml"
    if not p.exists() and p.suffix == "" and len(p.parts) == 1:  # a recipe name mistyped
        raise ConfigError(f"config '{path}': no such file, nor a shipped recipe ({', '.join(recipes())})")
    return p


def recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


@dataclass
class TrainConfig:
    """Optimisation and trainer settings (paper: Adam(W) 1e-5, batch 12; authors' code: warm-up 10%, wd 0.01)."""

    lr: float = 1e-5
    weight_decay: float = 0.01
    warmup_frac: float = 0.1  # linear warm-up over this fraction of max_steps ...
    # ... then "linear": decay to zero at max_steps (the authors' BertAdam warmup_linear; in a run
    # bounded by max_minutes alone, warm-up and decay follow the minutes spent), or "constant"
    # (the default: a run bounded by epochs has no end to decay to). Biases and normalisation
    # weights are never weight-decayed (authors' code).
    schedule: str = "constant"
    batch_size: int = 12  # mixtures per step (each of num_mix videos)
    max_steps: int = -1  # -1: no step limit
    max_epochs: int = -1  # -1: no epoch limit (max_steps / max_minutes end the run)
    max_minutes: float = 0.0  # wall-clock training budget; 0 = none
    epoch_size: int = 0  # random mixtures per epoch; 0 = one per training clip
    val_mixtures: int = 0  # evaluate this many fixed val mixtures each epoch; 0 = no validation
    mask_loss: str = "bce"  # "bce": weighted per-pixel BCE (paper/code); "l1": L1 on masked magnitude
    sep_weight: float = 1.0  # loss weights: separation and the three classification heads
    vision_weight: float = 1.0
    pose_weight: float = 1.0
    audio_weight: float = 1.0
    condition_weight: float = 1.0  # class loss on each source's condition (model.condition_classes)
    audio_encoder_weight: float = 1.0  # class loss on the audio encoder's output (model.audio_encoder_classes)
    # The motion guide's own loss (model.motion_guide; not in the paper): its first map, read as mask
    # logits, against the source's mask with the separation loss, so the guide learns to draw what
    # its performer plays from the movement alone, before and beside what the U-Net makes of it.
    # Without a guide (no pose stream, another model) there is nothing to weigh.
    motion_guide_weight: float = 0.0
    # What the audio head is trained to name: "video" = the labels of the video whose tokens it
    # co-attended with (the authors' code), "mixture" = every class heard in the mixture.
    audio_labels: str = "video"
    grad_clip: float = 1.0
    # Clip the separator's gradient (U-Net and motion guide) to grad_clip apart from the rest of the
    # model's, so the encoders' class-loss gradient norm does not scale down the separator's steps
    # (with one global norm, a transformer change alone changes how the U-Net is trained).
    clip_separator_apart: bool = False
    # Clip co-attention's gradient (TriBERT's co-attention blocks, where the model has any) apart
    # from the rest, so the norm of co-attention's own gradient does not scale down every encoder's
    # step (with one norm clipped on every step, adding co-attention alone shrinks the encoders'
    # steps). Set it in both arms of a co-attention on/off comparison (with none, it changes
    # nothing). On SynthMUSIC it did not change the comparison (docs/results/learning.md).
    clip_coattention_apart: bool = False
    # An exponential moving average of the weights, kept beside them and updated after every step
    # (not in the paper): checkpoints then hold both, and evaluate / separate / retrieve read the
    # average. 0 = off; e.g. 0.99 averages over the last ~100 steps. The decay is
    # min(ema_decay, (1 + step) / (10 + step)), so the first steps are not held for long.
    ema_decay: float = 0.0
    precision: str = "32-true"  # "bf16-mixed" on a GPU
    # GPU speed settings (docs/training.md "One GPU"); channels_last and compile are refused on the
    # CPU, where the training step crashed with them:
    channels_last: bool = False  # NHWC convolutions (paper size on an H100: 7% slower, so off)
    cudnn_benchmark: bool = False  # cuDNN times its algorithms per new shape (~10 s each; shapes vary)
    compile: bool = False  # torch.compile each model block (a compilation pause first)
    # Capture forward, losses and backward once as a CUDA graph and replay it (one GPU; batches of
    # one shape and real-source pattern, as MUSIC21's all-solo ones; others run eagerly)
    cuda_graph: bool = False
    accelerator: str = "auto"
    devices: str = "1"  # Lightning devices: "1", "4", "auto"
    num_nodes: int = 1
    strategy: str = "auto"  # "ddp" for several GPUs / nodes
    seed: int = 0
    log_every: int = 10
    threads: int = 0  # torch CPU threads; 0 = torch's default
    checkpoint_steps: tuple[int, ...] = ()  # also keep checkpoints/step<N>.ckpt at these steps
    save_every_steps: int = 500  # refresh checkpoints/last.ckpt this often (and at every epoch end)
    keep_every_steps: int = 0  # also keep checkpoints/step<N>.ckpt every this many steps; 0 = none
    init_from: str = ""  # fine-tune: start from this checkpoint's weights (new class heads if needed)


@dataclass
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | str | None = None) -> "Config":
        """Read a YAML config (None: all defaults), apply ``section.key=value`` overrides, resolve.

        ``path`` may also name a shipped recipe ("synth_small", "music21_paper", ...).
        """
        if isinstance(overrides, str):  # one override given as is (a str would be read letter by letter)
            overrides = [overrides]
        path = recipe_path(path) if path is not None else None
        recipe = load_yaml(path) if path is not None else {}
        try:
            return cls.from_dict(apply_overrides(copy.deepcopy(recipe), overrides or []))
        except ConfigError as err:
            if overrides and cls._problem(recipe) != err.reason:  # the recipe alone is fine, or fails otherwise
                raise ConfigError(f"{err.reason} (in the overrides: {' '.join(overrides)})") from None
            raise ConfigError(err.reason, path) from None

    @classmethod
    def _problem(cls, raw: dict) -> str | None:
        """What ``from_dict`` refuses in ``raw``, or None."""
        try:
            cls.from_dict(copy.deepcopy(raw))
        except ConfigError as err:
            return err.reason
        return None

    @classmethod
    def from_dict(cls, raw: dict) -> "Config":
        """Resolve a nested dict (a recipe with overrides applied, or a stored config)."""
        raw = migrate(raw)
        model_raw = raw.pop("model", None) or {}
        if not isinstance(model_raw, dict):
            raise ConfigError(f"model must be a mapping, got {type(model_raw).__name__}")
        model_raw = dict(model_raw)
        cfg = from_dict(cls, raw)
        derived = cls.derived_model_fields(cfg.audio, cfg.video, cfg.data)
        for key, value in derived.items():
            if key in model_raw and model_raw[key] != value:
                raise ConfigError(f"model.{key} follows audio/video/data settings ({value}); "
                                  f"do not set it to {model_raw[key]}")
        known = {f.name for f in dataclasses.fields(ModelConfig)}
        unknown = sorted(set(model_raw) - known)
        if unknown:
            raise ConfigError(f"unknown key model.{unknown[0]} (see tribert.config.model.ModelConfig)")
        # The named size gives every model field; the recipe's model section changes single
        # fields; the fields that follow audio/video/data come last.
        size = model_raw.get("size", ModelConfig.size)
        if not isinstance(size, str):
            raise ConfigError(f"model.size must be a string, got {size!r}")
        cfg.model = from_dict(ModelConfig, {**dataclasses.asdict(model_config(size)), **model_raw, **derived},
                              "model")
        check_finite(cfg)
        if cfg.train.schedule not in ("linear", "constant"):
            raise ConfigError(f"train.schedule must be 'linear' or 'constant', got {cfg.train.schedule!r}")
        cfg.data.validate()
        if not 0.0 <= cfg.train.warmup_frac <= 1.0:
            raise ConfigError(f"train.warmup_frac must be in [0, 1] (a fraction of the run), got {cfg.train.warmup_frac}")
        if cfg.train.schedule == "linear" and cfg.train.max_steps <= 0 and cfg.train.max_minutes <= 0:
            raise ConfigError("train.schedule 'linear' decays to zero at train.max_steps or, without "
                              "them, at train.max_minutes: set one (or use schedule: constant)")
        if cfg.train.audio_labels not in ("video", "mixture"):
            raise ConfigError(f"train.audio_labels must be 'video' or 'mixture', got {cfg.train.audio_labels!r}")
        if not 0.0 <= cfg.video.crop_margin <= 1.0:
            raise ConfigError(f"video.crop_margin must be in [0, 1] (0: no random crop), got {cfg.video.crop_margin}")
        if cfg.train.mask_loss not in ("bce", "l1"):
            raise ConfigError(f"train.mask_loss must be 'bce' or 'l1', got {cfg.train.mask_loss!r}")
        if not 0.0 <= cfg.train.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in [0, 1) (0: no weight average), got {cfg.train.ema_decay}")
        if cfg.data.stored_pose:
            if not cfg.model.frozen_stgcn():
                raise ConfigError("data.stored_pose needs TriBERT with a frozen ST-GCN (model.pose_frozen: "
                                  "true): only a fixed extractor's features can be stored ahead of training")
            if cfg.data.pose_missing > 0:
                raise ConfigError("data.stored_pose cannot withhold pose (data.pose_missing > 0): the store "
                                  "holds the features of every clip's pose")
            if cfg.data.pose_augment > 0:
                raise ConfigError("data.stored_pose cannot augment pose (data.pose_augment > 0): the store "
                                  "holds the features of the clips' own pose")
        if cfg.model.kind == "tribert" and cfg.model.num_objects > cfg.model.num_classes:
            raise ConfigError(f"data.classes has {cfg.model.num_classes} class(es), fewer than the {cfg.model.num_objects} "
                              f"objects TriBERT's vision stream takes from its top classes (video.max_persons): "
                              f"list more classes, or --set video.max_persons={cfg.model.num_classes}")
        if cfg.train.motion_guide_weight < 0:
            raise ConfigError(f"train.motion_guide_weight must be >= 0, got {cfg.train.motion_guide_weight}")
        check_train_values(cfg)
        return cfg

    @staticmethod
    def derived_model_fields(audio: AudioConfig, video: VideoConfig, data: DataConfig) -> dict:
        return {"frame_size": video.frame_size, "num_frames": video.num_frames,
                "num_objects": video.max_persons, "pose_frames": video.pose_frames,
                "spec_bins": audio.warp_bins, "spec_frames": audio.frames, "num_classes": len(data.classes)}

    def to_dict(self) -> dict:
        return to_dict(self)


# Keys that moved: (old section, old key) -> (new section, new key).
MOVED = {("train", "model"): ("model", "kind"), ("train", "size"): ("model", "size")}


def migrate(raw: dict) -> dict:
    """A config dict in today's layout: keys of older recipes and checkpoints are moved (``MOVED``).

    An old key wins over the new one: it can only come from an old file, or from an old-style
    ``--set model.kind=...`` given on top of a current recipe, the user's latest word.
    """
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for (old_section, old_key), (new_section, new_key) in MOVED.items():
        section = out.get(old_section)
        if isinstance(section, dict) and old_key in section:
            value = section.pop(old_key)
            target = out.get(new_section)
            if target is None:
                target = out[new_section] = {}
            elif not isinstance(target, dict):
                raise ConfigError(f"{new_section} must be a mapping, got {type(target).__name__}")
            log.debug("config: %s.%s is now %s.%s (read %r there)", old_section, old_key, new_section, new_key,
                     value)
            target[new_key] = value
    return out



PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "64")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
# The strategies a run is tested with: one device, and DDP across devices and nodes (the model is
# small enough for a copy per GPU; FSDP and DeepSpeed would need their own checkpoint handling).
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true")


def check_finite(cfg: "Config") -> None:
    """Every number in the config is finite: NaN passes every range check below (each comparison
    with it is False) and inf passes the lower bounds (train.max_minutes=inf failed in timedelta)."""
    for section in ("audio", "video", "data", "model", "train"):
        values = getattr(cfg, section)
        for f in dataclasses.fields(values):
            value = getattr(values, f.name)
            items = value if isinstance(value, (list, tuple)) else [value]
            if any(isinstance(v, float) and not math.isfinite(v) for v in items):
                raise ConfigError(f"{section}.{f.name} must be a finite number, got {value}")


def check_train_values(cfg: "Config") -> None:
    """One-line errors for values torch or Lightning would refuse with a traceback mid-start."""
    t, a = cfg.train, cfg.audio
    checks = [
        (t.batch_size >= 1, f"train.batch_size must be >= 1, got {t.batch_size}"),
        (math.isfinite(t.lr) and t.lr > 0, f"train.lr must be a positive number, got {t.lr}"),
        (math.isfinite(t.weight_decay) and t.weight_decay >= 0, f"train.weight_decay must be >= 0, got {t.weight_decay}"),
        (t.max_steps >= -1, f"train.max_steps must be >= 1, or -1 / 0 for no step limit, got {t.max_steps}"),
        (t.max_epochs >= -1, f"train.max_epochs must be >= 1, or -1 / 0 for no epoch limit, got {t.max_epochs}"),
        (t.max_minutes >= 0, f"train.max_minutes must be >= 0 (0: no time limit), got {t.max_minutes}"),
        (t.threads >= 0, f"train.threads must be >= 0 (0: torch's default), got {t.threads}"),
        (t.log_every >= 1, f"train.log_every must be >= 1 step, got {t.log_every}"),
        (t.keep_every_steps >= 0, f"train.keep_every_steps must be >= 0 (0: none), got {t.keep_every_steps}"),
        (all(s >= 1 for s in t.checkpoint_steps), f"train.checkpoint_steps must be steps >= 1, got {list(t.checkpoint_steps)}"),
        (t.num_nodes >= 1, f"train.num_nodes must be >= 1, got {t.num_nodes}"),
        (str(t.devices).isdigit() and int(t.devices) >= 1 or str(t.devices) == "auto" or "," in str(t.devices),
         f"train.devices must be a count >= 1, 'auto' or a list like '0,1', got {t.devices!r}"),
        (str(t.precision) in PRECISIONS, f"train.precision must be one of {', '.join(PRECISIONS)}, got {t.precision!r}"),
        (t.accelerator in ACCELERATORS, f"train.accelerator must be one of {', '.join(ACCELERATORS)}, got {t.accelerator!r}"),
        (a.sample_rate >= 1000, f"audio.sample_rate must be >= 1000 Hz, got {a.sample_rate}"),
        # a negative clip scales the gradient by a negative factor: gradient ascent
        (math.isfinite(t.grad_clip) and t.grad_clip >= 0, f"train.grad_clip must be >= 0 (0: no clipping), got {t.grad_clip}"),
        (t.val_mixtures >= 0, f"train.val_mixtures must be >= 0 (0: no validation), got {t.val_mixtures}"),
        (0 <= t.seed < 2 ** 32, f"train.seed must be in [0, 2**32), got {t.seed}"),  # numpy's seed range
        (0 <= cfg.data.seed < 2 ** 32, f"data.seed must be in [0, 2**32), got {cfg.data.seed}"),
        (t.strategy in STRATEGIES, f"train.strategy must be one of {', '.join(STRATEGIES)}, got {t.strategy!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
