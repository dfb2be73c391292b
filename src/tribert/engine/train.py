"""``train(config)``: build the data, the system and a Lightning Trainer, and run one training.

CPU, one GPU (``train.precision=bf16-mixed``) and several GPUs / nodes (``train.devices``,
``train.num_nodes``, ``train.strategy=ddp``; launch with torchrun or SLURM as Lightning documents)
all go through here. ``resume=RUN_DIR`` continues a stopped run from its ``last.ckpt``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import hashlib
import logging
import math
import os
import shutil
import signal
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.imports import _RICH_AVAILABLE
from torch.utils.data import DataLoader

from tribert.data.clip import holds_clips, is_clip
from tribert.data.mixing import (StepSampler, MixDataset, load_clips, make_mixture_list, mix_loader,
                                 read_mixture_list, write_mixture_list)
from tribert.data.pose_features import PoseFeatureStore, StoreSettings
from tribert.engine.checkpoint import first_non_finite, read_checkpoint
from tribert.config import Config
from tribert.config.loading import dump_yaml
from tribert.engine.run import new_run_dir, note_resume, write_run_info
from tribert.engine.system import SeparationSystem
from tribert.errors import CheckpointError, ConfigError, TrainingInterrupted, TribertError
from tribert.skeleton import NUM_KEYPOINTS
from tribert.io import atomic_path, cache_dir, check_out_dir

log = logging.getLogger(__name__)


def mixture_list_for(data_dir: str | Path, config: Config, seed: int, clips: list | None = None) -> list:
    """The fixed evaluation mixtures of a split: written once, then always reused.

    The file is keyed by everything the list depends on (N, crop length, seed, and each clip's id,
    length and labels: the partners and the centred crops), so another crop or a changed folder
    (a clip added, removed, or prepared again at another length) gets its own list. It lives beside
    the clips, or in ``$TRIBERT_CACHE`` (default ``~/.cache/tribert``) when the data folder is
    read-only; where neither can be written the list is used without being kept (a warning).
    """
    data_dir = Path(data_dir)
    if clips is None:  # the caller's, when it has read them already
        clips = load_clips(data_dir, config.data.classes)
    ids = hashlib.sha1("\n".join(sorted(f"{c.meta.id}|{c.meta.num_samples}|{'+'.join(c.meta.labels)}"
                                         for c in clips)).encode()).hexdigest()[:8]
    name = f"mixtures-n{config.data.num_mix}-crop{config.audio.crop_samples}-seed{seed}-{ids}.csv"
    cache = cache_dir() / "mixtures"
    folder_key = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:8]
    candidates = [data_dir / name, cache / f"{folder_key}-{name}"]
    for path in candidates:
        if path.exists():
            try:
                specs = read_mixture_list(path)
                problem = mixture_list_problem(specs, clips, config.data.num_mix, config.audio.crop_samples)
            except TribertError as err:
                problem = err.reason
            if problem is None:
                return specs
            log.warning("the fixed mixture list %s is damaged (%s): it is made again", path, problem)
    specs = make_mixture_list(clips, config.data.num_mix, config.audio.crop_samples, seed)
    target = candidates[0] if os.access(data_dir, os.W_OK) else candidates[1]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_mixture_list(target, specs)
    except OSError as err:  # the same list is made again next time: it depends only on the key
        log.warning("the fixed mixture list could not be kept at %s (%s); set TRIBERT_CACHE to a writable "
                    "folder", target, err)
    return specs


def mixture_list_problem(specs: list, clips: list, num_mix: int, crop_samples: int) -> str | None:
    """What is wrong with a stored fixed mixture list for these clips (None: nothing): it must hold
    one mixture per clip, led by that clip, each of ``num_mix`` clips of the folder, cut inside
    each clip, with positive finite gains, under distinct names (a file cut short by a full disk
    or a copy, or edited, would silently score other mixtures)."""
    length = {c.meta.id: c.meta.num_samples for c in clips}
    firsts = [s.clip_ids[0] for s in specs]
    if sorted(firsts) != sorted(length):
        return f"{len(specs)} mixtures for {len(length)} clips"
    if len({s.mix_id for s in specs}) != len(specs):
        return "a mixture name given twice"

    def wrong(s) -> bool:
        if len(s.clip_ids) != num_mix or len(s.offsets) != num_mix or len(s.gains) != num_mix \
                or not set(s.clip_ids) <= length.keys():
            return True
        return any(not 0 <= o <= max(length[c] - crop_samples, 0) for c, o in zip(s.clip_ids, s.offsets)) \
            or any(not (math.isfinite(g) and g > 0) for g in s.gains)

    bad = next((s.mix_id for s in specs if wrong(s)), None)
    return None if bad is None else f"mixture {bad} is not {num_mix} clips of this folder cut inside them"


def train_loader(config: Config, pin_memory: bool = False) -> DataLoader:
    """The training mixtures; ``pin_memory`` (on a GPU): batches page-locked by a thread of the
    loader, so their copy to the device neither blocks the step nor waits for it. With
    ``data.stored_pose`` the loader's ``dataset.pose_store`` holds the stores, whose settings must
    match the recipe's."""
    if not config.data.train_dir:
        raise ConfigError("data.train_dir is not set")
    clips = load_clips(config.data.train_dir, config.data.classes)
    if unlabelled := sum(not c.meta.labels for c in clips):  # prepare said so; training would say nothing
        log.warning("%d of %d training clips in %s have no class label: the class losses and the condition's "
                    "class head learn from the labelled ones only (prepare from class folders, or an index "
                    "with labels)", unlabelled, len(clips), config.data.train_dir)
    length = config.train.epoch_size or len(clips)
    store = None
    if config.data.stored_pose:
        feature_dim = config.model.pose_channels[-1] * NUM_KEYPOINTS  # PoseEncoder.feature_dim
        store = PoseFeatureStore(clips, StoreSettings.of(config.audio, config.video, feature_dim))
    ds = MixDataset(clips, config.audio, config.video, config.data, length=length, seed=config.train.seed,
                    pose_store=store)
    sampler = StepSampler(length, config.train.batch_size)  # StepSamplerSync ties it to the run
    return mix_loader(ds, batch_size=config.train.batch_size, sampler=sampler,
                      num_workers=config.data.num_workers, drop_last=True,
                      persistent_workers=config.data.num_workers > 0, pin_memory=pin_memory)


def eval_loader(config: Config, data_dir: str | Path, limit: int = 0, seed: int = 0) -> DataLoader:
    clips = load_clips(data_dir, config.data.classes)
    specs = mixture_list_for(data_dir, config, seed, clips)
    if limit:
        specs = specs[:limit]
    ds = MixDataset(clips, config.audio, config.video, config.data, mixtures=specs)
    return mix_loader(ds, batch_size=config.train.batch_size, shuffle=False,
                      num_workers=config.data.num_workers)


def init_weights_from(system: SeparationSystem, path: str | Path) -> dict[str, str]:
    """Fine-tuning: copy every matching weight from a checkpoint; class heads of another size are
    left freshly initialised (e.g. MUSIC21 -> MUSIC with 11 classes).

    Returns (and logs) every tensor left new, with the reason: {name: "not in the checkpoint" or
    "shape [here] here, [there] in the checkpoint"}.
    """
    from tribert.engine.checkpoint import read_checkpoint

    ckpt = read_checkpoint(path)
    theirs = (ckpt.get("hyper_parameters") or {}).get("config", {}).get("model") or {}
    ours = system.config.model
    if theirs and (theirs.get("kind"), theirs.get("size")) != (ours.kind, ours.size):
        # of another model only tensors that happen to share a shape would load: a meaningless start
        raise CheckpointError(f"holds a {theirs.get('kind')} model of size {theirs.get('size')}; this run builds a "
                              f"{ours.kind} of size {ours.size}: start from a checkpoint of the same model and size "
                              f"(only class-sized tensors may differ), or --set model.size={theirs.get('size')}", path)
    state = ckpt["state_dict"]
    # A run with a weight average (train.ema_decay) is continued from its average, as evaluated;
    # this run's own average (if any) starts from what was loaded.
    averaged = {"model." + k[len("ema.module."):]: v for k, v in state.items() if k.startswith("ema.module.")}
    state = {**{k: v for k, v in state.items() if not k.startswith("ema.")}, **averaged}
    own = {k: v for k, v in system.state_dict().items() if not k.startswith("ema.")}
    keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not keep:
        raise CheckpointError("no weight of this checkpoint fits the configured model", path)
    system.load_state_dict(keep, strict=False)
    if system.ema is not None:
        system.ema.reset(system.model)
    left_new = {k: "not in the checkpoint" if k not in state else
                f"shape {list(v.shape)} here, {list(state[k].shape)} in the checkpoint"
                for k, v in own.items() if k not in keep}
    if left_new:
        log.info("initialised %d tensors from %s; %d left new:", len(keep), path, len(left_new))
    else:
        log.info("initialised all %d tensors of the model from %s", len(keep), path)
    for name, reason in left_new.items():
        log.info("  left new: %s (%s)", name, reason)
    return left_new


# Lightning notices that say nothing useful about a tribert run (the run folder already holds
# config.yaml / run.json; validation is optional by design).
QUIET = ("Experiment logs directory .* exists and is not empty",
         "You defined a `validation_step` but have no `val_dataloader`",
         ".*LeafSpec.* is deprecated", "Checkpoint directory .* exists and is not empty",
         # StepSampler resumes mid-epoch exactly (the training order follows the step count)
         "You're resuming from a checkpoint that ended before the epoch ended",
         # it counts steps across epochs: a short epoch (train.epoch_size) loses no log line
         "The number of training batches .* is smaller than the logging interval")


class _NoAdverts(logging.Filter):
    """Drops Lightning's "Tip: try installing litlogger" notice (printed at every run start)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


_LIGHTNING_INFO = "lightning.pytorch.utilities.rank_zero"  # the logger of Lightning's rank-0 notices


def train(config: Config | None, runs_dir: str | Path = "runs", name: str | None = None,
          resume: str | Path | None = None, progress: bool = True, run_dir: str | Path | None = None) -> Path:
    """Train one model; returns the run folder (a new one under ``runs_dir``, or ``run_dir``).

    ``resume=RUN`` continues that run with its own ``config.yaml`` (``config=None`` reads it); a
    ``config`` given with it may differ only in where the run ends (``train.max_steps``,
    ``max_minutes``, ``max_epochs``: training a finished run for longer) and the machines it runs
    on (``RESUME_MAY_CHANGE``), and ``config.yaml`` is updated to say so. Any other difference is
    refused: a changed recipe is a new run.

    Lightning's notices in ``QUIET`` and its litlogger advert are silenced for this call only (the
    caller's warning filters and loggers are as they were afterwards).
    """
    if resume is not None:
        config = resumed_config(Path(resume), config)
    elif config is None:
        raise ConfigError("train() needs a config for a new run (config=None only with resume=RUN)")
    else:  # config.yaml and the checkpoint name absolute paths: a resume may start from another folder
        config = with_absolute_paths(config)
    adverts = _NoAdverts()
    logging.getLogger(_LIGHTNING_INFO).addFilter(adverts)
    try:
        with warnings.catch_warnings(), contextlib.ExitStack() as held:  # held: the run folder's lock
            for pattern in QUIET:
                warnings.filterwarnings("ignore", message=pattern)
            return _train(config, runs_dir, name, resume, progress, run_dir, held)
    finally:  # also when a run fails before it starts: the next call in this process starts afresh
        os.environ.pop("TRIBERT_RUN_DIR", None)
        logging.getLogger(_LIGHTNING_INFO).removeFilter(adverts)


# What a run writes in its folder, beside config.yaml (a new run's --run-dir may hold other files).
RUN_FILES = ("checkpoints", "metrics.csv", "run.json", "hparams.yaml")
# What a resumed run may change: where it ends, and the machines it runs on (not the recipe).
RESUME_MAY_CHANGE = ("train.max_steps", "train.max_minutes", "train.max_epochs", "train.devices",
                     "train.num_nodes", "train.threads", "data.num_workers")
# Files a config names. A new run records them absolute; config.yaml's data folders may be edited
# by hand to follow moved data (its last.ckpt keeps the old ones).
PATH_FIELDS = ("data.train_dir", "data.val_dir", "data.test_dir", "train.init_from", "model.visual_weights")
DATA_FOLDERS = PATH_FIELDS[:3]


def with_absolute_paths(config: Config) -> Config:
    raw = config.to_dict()
    for field in PATH_FIELDS:
        section, key = field.split(".")
        if raw[section][key]:
            raw[section][key] = str(Path(raw[section][key]).expanduser().absolute())
    return Config.from_dict(raw)


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _rank0() -> bool:
    """Whether this process is the run's first (a process DDP spawned inherits TRIBERT_RUN_DIR)."""
    inherited = os.environ.get("TRIBERT_RUN_DIR")
    return not inherited and int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def resumed_config(run_dir: Path, config: Config | None) -> Config:
    """The config a resumed run trains with: its own ``config.yaml``, with the end of the run and
    the machines taken from ``config`` when one is given; any other difference is an error.
    Nothing is written here: ``record_resume`` does, once the checkpoint has passed its checks."""
    stored_path = run_dir / "config.yaml"
    if run_dir.is_file():
        raise TribertError("cannot resume from a file: give the run folder (the one holding config.yaml and "
                           "checkpoints/)", run_dir)
    if not run_dir.is_dir():
        raise TribertError("cannot resume: run folder not found", run_dir)
    if not stored_path.is_file():
        raise TribertError("cannot resume: no config.yaml in the run folder", run_dir)
    if not stored_path.read_text(errors="replace").strip():  # would read as the defaults: "no end"
        raise TribertError("cannot resume: config.yaml is empty (put the run's own back)", stored_path)
    stored = Config.load(stored_path)
    if config is None:
        return with_absolute_paths(stored)
    other = [k for k in config_differences(stored, config) if k not in RESUME_MAY_CHANGE]
    if other:
        raise TribertError(f"a resumed run trains with its own config.yaml; the config given changes "
                           f"{_listed(stored, config, other)}: start a new run to change the recipe (a resumed run "
                           f"may change only {', '.join(RESUME_MAY_CHANGE)})", run_dir)
    return with_absolute_paths(config)


def config_differences(a: Config, b: Config) -> list[str]:
    """The dotted keys whose values differ between two configs (paths compared as absolute: runs
    made before config.yaml recorded them so hold them relative to the folder they ran from)."""
    old, new = _flat(with_absolute_paths(a).to_dict()), _flat(with_absolute_paths(b).to_dict())
    return [k for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]


def _listed(a: Config, b: Config, keys: list[str]) -> str:
    old, new = _flat(a.to_dict()), _flat(b.to_dict())
    more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
    return ", ".join(f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in keys[:4]) + more


def check_resume_checkpoint(last: Path, config: Config) -> None:
    """The run's last.ckpt must be a full training checkpoint of the run config.yaml describes
    (not an export, not another run's file, not a config.yaml edited by hand since: a resume
    would apply such an edit by halves), and not past the end the resumed run is given. One line
    each, before any work starts."""
    ckpt = read_checkpoint(last)
    if "optimizer_states" not in ckpt:
        raise TribertError("cannot resume from an export (weights and config only, no optimiser state): "
                           "start a new run with --set train.init_from=<this file>", last)
    try:
        trained = Config.from_dict(ckpt["hyper_parameters"]["config"])
    except ConfigError as err:
        raise CheckpointError(f"stored config is not valid for this tribert version ({err.reason})", last) from None
    differ = [k for k in config_differences(trained, config) if k not in RESUME_MAY_CHANGE + DATA_FOLDERS]
    if differ:
        raise TribertError(f"cannot resume: this checkpoint was trained with another config than the run's "
                           f"config.yaml ({_listed(trained, config, differ)}, checkpoint -> config.yaml): config.yaml "
                           f"was edited, or last.ckpt comes from another run. Put the run's own files back, or start "
                           f"a new run from these weights with --set train.init_from=<this file>", last)
    step, end = int(ckpt.get("global_step", 0)), config.train.max_steps
    if 0 < end < step:
        raise TribertError(f"cannot resume: the run is at step {step}, past train.max_steps {end} (give a larger "
                           f"one to train on)", last.parent.parent)
    broken = first_non_finite(ckpt["state_dict"])
    if broken is not None:  # the step would fail on them after the run's files were rewritten
        raise CheckpointError(f"holds non-finite weights ({broken}): resume from an earlier checkpoint (copy a "
                              f"kept step<N>.ckpt over it) or start again", last)
    epoch, epochs = int(ckpt.get("epoch", 0)), config.train.max_epochs
    if 0 < epochs < epoch:  # Lightning's own refusal is a traceback
        raise TribertError(f"cannot resume: the run is in epoch {epoch}, past train.max_epochs {epochs} (give a "
                           f"larger one to train on)", last.parent.parent)


def record_resume(run_dir: Path, config: Config) -> None:
    """Say what a resumed run changes, write it to ``config.yaml``, and add the restart (git
    revision, command, time) to ``run.json``."""
    stored = Config.load(run_dir / "config.yaml")
    changed = config_differences(stored, config)
    if changed:
        old, new = _flat(stored.to_dict()), _flat(config.to_dict())
        log.info("resumed run: %s", ", ".join(f"{k} {old[k]} -> {new[k]}" for k in changed))
        tc = config.train
        if "train.max_steps" in changed and (tc.schedule == "linear" or tc.warmup_frac > 0):
            # the schedule is a function of max_steps: the steps to come follow the new one
            shape = "warm-up and linear decay" if tc.schedule == "linear" and tc.warmup_frac > 0 else \
                "linear decay" if tc.schedule == "linear" else "warm-up"
            log.warning("train.max_steps %s -> %s: the learning rate's %s follows the %s-step schedule from here "
                        "on (the steps so far followed the %s-step one, so it jumps), and the run is not the one "
                        "a %s-step run would have been", old["train.max_steps"], new["train.max_steps"], shape,
                        new["train.max_steps"], old["train.max_steps"], new["train.max_steps"])
        dump_yaml(config, run_dir / "config.yaml")
    note_resume(run_dir, changed)


def build_system(config: Config, init: bool = True) -> SeparationSystem:
    """The run's system as its first step sees it: seeded with ``train.seed``, then (``init``: a
    new run, not a resumed one) started from ``train.init_from``. ``tribert pose-features`` builds
    the same one, so its frozen ST-GCN is the one the run will train with."""
    tc = config.train
    L.seed_everything(tc.seed, workers=True, verbose=False)
    system = SeparationSystem(config)
    left_new = init_weights_from(system, tc.init_from) if tc.init_from and init else None
    if config.model.frozen_stgcn() and init:
        if left_new is None:  # deliberate, e.g. for speed benchmarks: said, not refused
            log.warning("model.pose_frozen with no train.init_from: the frozen ST-GCN stays at its random "
                        "initialisation (a fixed random feature extractor)")
        elif missed := [name for name in left_new if ".stgcn." in name]:
            # a checkpoint of another size or kind: a frozen ST-GCN would never learn what it lacks
            raise CheckpointError(f"model.pose_frozen: this checkpoint does not fill the frozen ST-GCN ({len(missed)} "
                                  f"tensors, first {missed[0]}: {left_new[missed[0]]}), which would stay random; give "
                                  "a checkpoint of this model size, or set model.pose_frozen=false", tc.init_from)
    return system


def check_data_folders(config: Config) -> None:
    """The folders the run reads hold prepared clips: checked before a run folder is made, so a
    wrong path costs one line and leaves nothing behind."""
    folders = [("data.train_dir", config.data.train_dir, "")]
    if config.train.val_mixtures and config.data.val_dir:  # validation scores fixed val mixtures each epoch
        folders.append(("data.val_dir", config.data.val_dir,
                        " (prepare a validation split, or --set train.val_mixtures=0 to train without one)"))
    for key, folder, hint in folders:
        root = Path(folder)
        if not root.is_dir() or not any(is_clip(d) for d in root.iterdir()):
            what = ("folder not found" if not root.is_dir() else
                    f"is one prepared clip: give the folder that holds its clips ({root.parent})" if is_clip(root)
                    else "no prepared clips in this folder")
            raise TribertError(f"{key}: {what}{hint}", root)


def check_run_settings(config: Config, new_run: bool = True) -> bool:
    """What a run needs besides its data, checked before any work (the demo checks it before it
    makes its data): an end, the weight files it starts from, and settings this machine can run.
    Returns whether the run trains on a GPU."""
    tc = config.train
    if tc.max_steps <= 0 and tc.max_minutes <= 0 and tc.max_epochs <= 0:
        raise ConfigError("the run has no end: set train.max_steps, train.max_minutes or train.max_epochs")
    # init_from is read only by a new run; visual_weights by every start (a resumed run's
    # checkpoint then replaces the trunk it gave)
    weights = [("model.visual_weights", config.model.visual_weights)]
    if new_run:
        weights.append(("train.init_from", tc.init_from))
    for key, path in weights:
        if path and not Path(path).expanduser().is_file():
            what = "a folder, not a weights file" if Path(path).expanduser().is_dir() else "file not found"
            raise TribertError(f"{key}: {what}", path)
    if tc.lr < 1e-6 and not tc.init_from and new_run:
        log.warning("train.lr is %g with no train.init_from: a fine-tuning rate (music_finetune) on a model "
                    "trained from scratch learns next to nothing; give --set train.init_from=CHECKPOINT", tc.lr)
    on_gpu = tc.accelerator in ("gpu", "cuda") or (tc.accelerator == "auto" and torch.cuda.is_available())
    check_device_settings(tc, on_gpu)
    return on_gpu


def _train(config: Config, runs_dir, name, resume, progress, run_dir, held: contextlib.ExitStack) -> Path:
    tc = config.train
    on_gpu = check_run_settings(config, new_run=resume is None)
    check_data_folders(config)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    inherited = os.environ.get("TRIBERT_RUN_DIR")  # set by rank 0 for the processes DDP spawns
    rank0 = _rank0()
    ckpt_path = None
    if resume is not None:
        run_dir = Path(resume)
        last = run_dir / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise TribertError("cannot resume: no checkpoints/last.ckpt in the run folder", run_dir)
        if rank0:
            held.enter_context(RunLock(run_dir))
        check_resume_checkpoint(last, config)
        if rank0:
            record_resume(run_dir, config)
        ckpt_path = str(last)
    if resume is None and rank0:  # where the run folder goes, before any work
        if name is not None and (name in ("", ".", "..") or Path(name).name != name or "\\" in name):
            raise TribertError(f"--name must be a plain folder name (no path), got {name!r}; "
                               f"choose the parent folder with --runs-dir")
        if run_dir is not None and (Path(run_dir) / "config.yaml").exists():
            raise TribertError("already holds a run: --resume it, or give a new --run-dir", run_dir)
        if run_dir is not None and holds_clips(run_dir):
            raise TribertError("holds prepared clips: give the run a folder of its own (--run-dir)", run_dir)
        taken = [f for f in RUN_FILES if run_dir is not None and (Path(run_dir) / f).exists()]
        if taken:  # a user's own files there under the names a run writes would be replaced
            raise TribertError(f"holds {', '.join(taken)}, which a new run would replace: move them, or give "
                               "another --run-dir", run_dir)
        check_out_dir(run_dir if run_dir is not None else runs_dir)
    # The model and the loaders before the run folder: a clip the loaders refuse (an unknown
    # label, a damaged file) costs one line and leaves no run folder behind.
    system = build_system(config, init=resume is None)
    loaders = {"train_dataloaders": train_loader(config, pin_memory=on_gpu)}
    # where the training pose came from, kept in every checkpoint: separation says so when it is
    # given pose of another kind (a SynthMUSIC model fed MediaPipe pose)
    system.hparams["train_pose_sources"] = dict(Counter(c.meta.pose_source
                                                        for c in loaders["train_dataloaders"].dataset.clips))
    if tc.val_mixtures and config.data.val_dir:
        loaders["val_dataloaders"] = eval_loader(config, config.data.val_dir, tc.val_mixtures)
    made_here = False  # a run folder this call made: removed again if the run fails before its first step
    if resume is None:
        if run_dir is not None:  # an explicit folder: what every node of a multi-node launch passes
            run_dir = Path(run_dir)
            made_here = rank0 and not run_dir.exists()
            run_dir.mkdir(parents=True, exist_ok=True)
            if rank0:  # two runs started at once into one folder: the second stops here
                held.enter_context(RunLock(run_dir))
                if (run_dir / "config.yaml").exists():
                    raise TribertError("already holds a run: --resume it, or give a new --run-dir", run_dir)
        elif inherited:
            run_dir = Path(inherited)
        else:
            run_dir = new_run_dir(runs_dir, name or f"{config.model.kind}-{config.model.size}")
            made_here = rank0
        if rank0:
            write_run_info(run_dir, config)
    os.environ["TRIBERT_RUN_DIR"] = str(run_dir)
    # last.ckpt every save_every_steps and at each epoch end (resume loses little work); no
    # per-epoch copies pile up (a paper-size checkpoint is ~3 GB). Kept snapshots only on request.
    last = LastCheckpoint(run_dir / "checkpoints" / "last.ckpt", tc.save_every_steps)
    stop = CtrlCStop(last)
    callbacks = [StepSamplerSync(loaders["train_dataloaders"].sampler), StepRate(), last, stop]
    if config.data.stored_pose:
        callbacks.append(StoredPoseCheck(loaders["train_dataloaders"].dataset.pose_store))
    if progress:
        # The bar reads the loss back from the device when it redraws: a host sync that stalls a
        # GPU's queue, so on a GPU it redraws every log_every steps.
        bar = TrainBar if _RICH_AVAILABLE else TQDMProgressBar  # Lightning's own choice
        callbacks.append(bar(refresh_rate=max(1, tc.log_every) if on_gpu else 1))
    if tc.checkpoint_steps or tc.keep_every_steps > 0:
        callbacks.append(StepCheckpoints(run_dir / "checkpoints", tc.checkpoint_steps, tc.keep_every_steps))
    if "val_dataloaders" in loaders:
        callbacks.append(ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best",
                                         monitor="val/sdr", mode="max", save_top_k=1,
                                         auto_insert_metric_name=False, enable_version_counter=False))
    # Lightning's CSV logger starts metrics.csv afresh; keep the history of a resumed run.
    history = _read_csv(run_dir / "metrics.csv") if resume is not None else []
    trainer = None
    try:
        trainer = L.Trainer(
            # 0 is "no limit" here as -1 is (Lightning would read max_steps=0 as zero steps)
            max_steps=tc.max_steps if tc.max_steps > 0 else -1, max_epochs=tc.max_epochs if tc.max_epochs > 0 else -1,
            max_time=datetime.timedelta(minutes=tc.max_minutes) if tc.max_minutes else None,
            accelerator=tc.accelerator, devices=_devices(tc.devices), num_nodes=tc.num_nodes,
            strategy=tc.strategy, precision=tc.precision, benchmark=tc.cudnn_benchmark,
            gradient_clip_val=tc.grad_clip or None,
            logger=CSVLogger(run_dir, name="", version=""), callbacks=callbacks,
            log_every_n_steps=tc.log_every, enable_progress_bar=progress, enable_model_summary=False,
            default_root_dir=run_dir, num_sanity_val_steps=0,
            # StepSampler shares the mixtures out among processes itself (validation mixtures are then
            # scored by every process; the logged mean is the same)
            use_distributed_sampler=False,
            # Lightning's own per-epoch checkpoint only where best.ckpt is tracked (validation)
            enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        )
        trainer.fit(system, ckpt_path=ckpt_path, **loaders)
    except (StopRequested, SIGTERMException, SystemExit, KeyboardInterrupt) as stopped:
        # StopRequested: a Ctrl-C, the step before it saved by CtrlCStop; SIGTERM (SLURM, timeout,
        # docker stop): after the step, saved by LastCheckpoint; SystemExit: Lightning's answer to
        # a KeyboardInterrupt (a second Ctrl-C); a KeyboardInterrupt before the loop took Ctrl-C over
        sigterm = isinstance(stopped, SIGTERMException)  # a SystemExit too
        if isinstance(stopped, SystemExit) and not sigterm and not stop.killed:
            raise
        step = trainer.global_step if trainer is not None else 0
        if last.saved_step is None and resume is None and rank0:  # nothing to resume: start again
            forget_run(run_dir, made_here)
        raise TrainingInterrupted(run_dir, step, last.saved_step, "SIGTERM" if sigterm else "Ctrl-C") from None
    except Exception:
        # A run that failed before its first step (a clip's audio unreadable, a setting the
        # loop refuses) leaves nothing worth keeping: its folder goes, as if it had been refused.
        if resume is None and rank0 and (trainer is None or trainer.global_step == 0) and last.saved_step is None:
            forget_run(run_dir, made_here)
        raise
    finally:
        stop.release()
        if history:
            _prepend_history(run_dir / "metrics.csv", history)
    return run_dir  # a Ctrl-C after the last step (in the final validation): the run ended anyway


def forget_run(run_dir: Path, made_here: bool) -> None:
    """A new run stopped or failed before anything resumable was saved: undo its folder, so the
    same command (or ``--run-dir``) starts it again. A folder this call made goes whole; in one
    that was there before, the run's own files go."""
    if made_here:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for name in ("config.yaml", RunLock.NAME, *RUN_FILES):
        path = Path(run_dir) / name
        if path.is_dir():  # checkpoints/: nothing resumable was saved, at most an empty folder
            with contextlib.suppress(OSError):
                path.rmdir()
        else:
            path.unlink(missing_ok=True)


class RunLock:
    """An exclusive lock on a run folder while a run trains in it (``.train.lock``, an advisory
    ``flock``): a second ``tribert train`` into the same folder (two ``--resume``, or two new runs
    given one ``--run-dir``) stops in one line instead of interleaving its checkpoints and
    metrics. The lock goes with the process, however it ends. Where ``flock`` does not exist
    (Windows) there is no lock."""

    NAME = ".train.lock"

    def __init__(self, run_dir: Path):
        self.file = None
        try:
            import fcntl
        except ImportError:
            return
        self.file = open(Path(run_dir) / self.NAME, "a")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.close()
            raise TribertError("another `tribert train` is running in this run folder (wait for it, or stop it)",
                               run_dir) from None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()  # releases the lock


class StopRequested(Exception):
    """Raised by ``CtrlCStop`` to leave the training loop between two steps."""


class CtrlCStop(L.Callback):
    """Ctrl-C stops training after the step in progress, and ``last`` saves that step (a
    checkpoint written mid-step could hold half an optimiser update). The loop is left before the
    next step starts, by an exception: asking Lightning to stop (``trainer.should_stop``) would end
    the epoch first, running its validation (which may replace best.ckpt) and counting a half epoch
    as done, so a resumed ``max_epochs`` run would train fewer steps. A stop at an epoch's last step
    lets that epoch end as usual. A second Ctrl-C stops at once, as Lightning does (the last saved
    checkpoint stays). One process only: under DDP every process would see the signal at a
    different step, so there Lightning's handling stays."""

    def __init__(self, last: "LastCheckpoint"):
        self.last = last
        self.requested = self.killed = False
        # the caller's handler, put back by release(): Lightning's shutdown after a KeyboardInterrupt
        # leaves SIGINT ignored, which would deafen a notebook or script to Ctrl-C from then on
        main = threading.current_thread() is threading.main_thread()
        self._original = signal.getsignal(signal.SIGINT) if main else None

    def on_fit_start(self, trainer, pl_module) -> None:
        if trainer.world_size == 1 and self._original is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._request)

    def _request(self, signum, frame) -> None:
        signal.signal(signal.SIGINT, self._original)  # the next Ctrl-C interrupts at once
        self.requested = True
        log.warning("Ctrl-C: stopping after this step and saving checkpoints/last.ckpt (Ctrl-C again to stop now)")

    def release(self) -> None:
        if self._original is not None:
            signal.signal(signal.SIGINT, self._original)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.requested and self.last.saved_step != trainer.global_step and not ends_epoch(trainer, batch_idx):
            self.last.save(trainer)  # the step's state, as a periodic save holds it (resumes mid-epoch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # Here, not at the end of the step before: that step's metrics have been logged meanwhile.
        # A Ctrl-C that came after the last save (while this batch loaded) stops after this step:
        # a checkpoint taken now would hold the loop half into the next step.
        if self.requested and self.last.saved_step == trainer.global_step:
            raise StopRequested

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self.killed = isinstance(exception, KeyboardInterrupt)


class TrainBar(RichProgressBar):
    """Lightning's rich bar, without its "Epoch 3/-2" when the run ends on steps or time."""

    def _get_train_description(self, current_epoch: int) -> str:  # RichProgressBar's hook (Lightning 2.6)
        if self.trainer.max_epochs is not None and self.trainer.max_epochs >= 0:
            return super()._get_train_description(current_epoch)
        text = f"Epoch {current_epoch}"
        return text.ljust(len(self.validation_description))  # as Lightning pads it (no flicker)


class StoredPoseCheck(L.Callback):
    """``data.stored_pose``: the stores must come from the ST-GCN being trained with, checked when
    training starts (after a resumed run's weights are restored)."""

    def __init__(self, store: PoseFeatureStore):
        self.store = store

    def on_train_start(self, trainer, pl_module) -> None:
        self.store.check_model(pl_module.model.pose.fingerprint())


class StepSamplerSync(L.Callback):
    """Ties the training StepSampler to the run: this process's rank, the number of processes,
    and the optimiser steps done (read when each epoch starts, so a restored run goes on)."""

    def __init__(self, sampler: StepSampler):
        self.sampler = sampler

    def setup(self, trainer, pl_module, stage: str) -> None:
        s = self.sampler
        s.rank, s.world_size = trainer.global_rank, trainer.world_size
        s.steps_done = lambda: trainer.global_step
        if s.steps_per_epoch() == 0:
            raise ConfigError(f"an epoch of {s.length} mixtures (train.epoch_size, or one per clip) is less than "
                              f"one step: {s.world_size} process(es) x train.batch_size {s.batch_size}")


def ends_epoch(trainer, batch_idx: int) -> bool:
    """Whether the step just taken is its epoch's last. A checkpoint is not taken there before the
    epoch-end one: Lightning restores such a state as an epoch whose end (validation, epoch-end
    save) was never due, so a run killed between the two would skip that validation."""
    return batch_idx + 1 >= trainer.num_training_batches


class LastCheckpoint(L.Callback):
    """``last.ckpt`` every ``every`` steps (on an epoch's last step at its end, after its
    validation), at each epoch end and when training stops (also on the time budget), written to a temporary name and moved into place (a crash never leaves half a file)."""

    def __init__(self, path: Path, every: int):
        self.path, self.every = Path(path), every
        self.saved_step: int | None = None  # the step the file holds, once this run has written it

    def save(self, trainer) -> None:
        trainer.lightning_module.check_finite()  # never save weights a non-finite step has touched
        tmp = self.path.with_name(self.path.name + ".tmp")
        trainer.save_checkpoint(tmp, weights_only=False)  # full state, for resume (said, so Lightning does not log it)
        trainer.strategy.barrier()
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
        self.saved_step = trainer.global_step

    def on_train_start(self, trainer, pl_module) -> None:
        if self.path.is_file():  # a resumed run: the file holds the step it starts from
            self.saved_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every > 0 and trainer.global_step % self.every == 0 and not ends_epoch(trainer, batch_idx):
            self.save(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        # Lightning raises SIGTERMException once the step in hand has ended: that step is whole.
        # Not during an epoch-end validation: Lightning restores that state as an epoch already
        # validated, so the resumed run would lose the validation; the save before it stays.
        if isinstance(exception, SIGTERMException) and trainer.world_size == 1 and not trainer.validating:
            self.save(trainer)


class StepRate(L.Callback):
    """Logs the training rate at the end: seconds per optimiser step after the first ``skip``
    (start-up, the loader's first pass, cuDNN's and the CUDA graph's first steps left out)."""

    def __init__(self, skip: int = 10):
        self.skip = skip
        self.start: tuple[int, float] | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.start is None and trainer.global_step >= self.skip:
            self.start = (trainer.global_step, time.perf_counter())

    def on_train_end(self, trainer, pl_module) -> None:
        if self.start is None or trainer.global_step <= self.start[0]:
            return
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)  # the queued steps are part of the time
        steps, seconds = trainer.global_step - self.start[0], time.perf_counter() - self.start[1]
        log.info("trained steps %d-%d at %.1f ms per step (%.2f steps/s)", self.start[0], trainer.global_step,
                 1000 * seconds / steps, steps / seconds)


class StepCheckpoints(L.Callback):
    """Keep ``step<N>.ckpt`` when the optimiser has taken exactly N steps, for N in ``steps`` or a
    multiple of ``every`` (> 0; learning curves; a run bounded by time alone keeps them too)."""

    def __init__(self, folder: Path, steps: tuple[int, ...] = (), every: int = 0):
        self.folder, self.steps, self.every = Path(folder), set(steps), every

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step in self.steps or (self.every > 0 and step > 0 and step % self.every == 0):
            trainer.lightning_module.check_finite()
            trainer.save_checkpoint(self.folder / f"step{trainer.global_step:06d}.ckpt", weights_only=False)


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _prepend_history(path: Path, history: list[dict]) -> None:
    """metrics.csv := rows of the earlier run(s) before the resumed steps + the new rows."""
    new = _read_csv(path)
    first_new = min((int(r["step"]) for r in new if r.get("step")), default=None)
    old = [r for r in history if first_new is None or not r.get("step") or int(r["step"]) < first_new]
    keys = list(dict.fromkeys([k for r in old + new for k in r]))
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(old + new)


def check_device_settings(tc, on_gpu: bool) -> None:
    """Refuse a GPU the machine does not have, and the GPU speed settings where they cannot run,
    before a run folder is made (Lightning's own refusal is a page of traceback)."""
    if tc.accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.accelerator is {tc.accelerator}, but this torch "
                              f"({torch.__version__}) sees no CUDA GPU: --set train.accelerator=cpu (or auto)")
        devices = str(tc.devices)
        if devices.isdigit() and int(devices) > torch.cuda.device_count():
            raise ConfigError(f"--devices {devices}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if tc.accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.accelerator is mps, but this machine has no Apple GPU (MPS): "
                          "--set train.accelerator=cpu (or auto)")
    if not on_gpu and tc.accelerator != "mps" and str(tc.precision) in ("16-true", "16"):
        # fp16 arithmetic on the CPU: the first steps give NaN probabilities
        raise ConfigError(f"train.precision {tc.precision} is a GPU setting: on the CPU use bf16-mixed or 32-true")
    if not on_gpu and (tc.channels_last or tc.compile):
        setting = "train.channels_last" if tc.channels_last else "train.compile"
        raise ConfigError(f"{setting} is a GPU setting: with torch {torch.__version__.split('+')[0]} "
                          f"on the CPU the training step crashes with it (docs/training.md)")
    if tc.cuda_graph:
        why = ("is a GPU setting: it needs a CUDA device" if not on_gpu else
               "and train.compile: choose one" if tc.compile else
               "needs train.precision 32-true or bf16-mixed (fp16's gradient scaler is not captured)"
               if str(tc.precision).startswith("16") else "")
        if why:
            raise ConfigError(f"train.cuda_graph {why}")


def _devices(value: str):
    value = str(value)
    return int(value) if value.isdigit() else value
