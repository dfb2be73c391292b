"""The ``tribert`` command line. Each command is a thin wrapper over the Python API.

Every ``TribertError`` (a bad file, config or argument) is printed as one line and exits with
code 2; a command that partly failed (some clips did not prepare) exits with code 1.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import List, Optional

import typer

from tribert.errors import TrainingInterrupted, TribertError, run_main, sigterm_unwinds
from tribert.io import PNG, check_out_file, results_json

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="TriBERT: tri-modal (vision, pose, audio) visual sound separation.")


class _Echo(logging.Handler):
    """Prints the library's log messages as plain lines: INFO on stdout, warnings and errors on stderr
    (the stream is looked up at each message, so a test runner that swaps it sees them)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            typer.echo(self.format(record), err=record.levelno >= logging.WARNING)
        except Exception:  # pragma: no cover - a closed stream
            self.handleError(record)


class _NoAdverts(logging.Filter):
    """Drops Lightning's advertising tip (the CLI decides what the user reads)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg)


def configure_logging() -> None:
    """What the command line shows: tribert's INFO messages and above, without Lightning's advert.

    The library only logs (module loggers under ``tribert``); this, run by every command, decides
    what is printed. Calling it again changes nothing."""
    logger = logging.getLogger("tribert")
    if not any(isinstance(h, _Echo) for h in logger.handlers):
        logger.addHandler(_Echo())
    logger.setLevel(logging.INFO)
    logger.propagate = False
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _NoAdverts) for f in rank_zero.filters):
        rank_zero.addFilter(_NoAdverts())


def _print_version(value: bool) -> None:
    if value:
        import torch

        import tribert

        typer.echo(f"tribert {tribert.__version__} (torch {torch.__version__}, Python {sys.version.split()[0]})")
        raise typer.Exit()


@app.callback()
def _every_command(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the versions of tribert, torch and Python, and exit."),
) -> None:
    configure_logging()


def fail(err: Exception, code: int = 2) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code)


def parse_splits(text: str) -> tuple[float, float, float]:
    """``--splits 0.8,0.1,0.1`` -> train, val, test fractions (or a one-line error, exit code 2)."""
    from tribert.data.prepare import check_splits

    try:
        return check_splits(text.split(","))
    except TribertError:
        fail(TribertError(f"--splits must be three finite non-negative numbers like 0.8,0.1,0.1, got {text!r}"))


@app.command()
@sigterm_unwinds()
def synth(
    out: Path = typer.Option(..., "--out", help="Folder to write the SynthMUSIC clips into."),
    clips: int = typer.Option(100, "--clips", help="Number of clips to generate."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same data."),
    soundfont: Optional[Path] = typer.Option(None, "--soundfont", help="A .sf2 bank (default: TimGM6mb from pretty_midi)."),
    duration: float = typer.Option(6.0, "--duration", help="Clip length in seconds."),
    workers: int = typer.Option(0, "--workers", help="Worker processes (0: one per CPU core)."),
    frame_size: int = typer.Option(224, "--frame-size", help="Width = height of the frames in pixels."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Comma-separated subset of the 21 MUSIC21 classes (default: all)."),
    splits: str = typer.Option("0.8,0.1,0.1", "--splits", help="train,val,test fractions; 0,0,1 makes a test-only set."),
) -> None:
    """Generate SynthMUSIC: drawn performers, note-driven motion, soundfont audio, real MP4s.

    Writes OUT/train|val|test/<clip>/ (prepared clips), OUT/videos/<clip>.mp4 and OUT/synth.json.
    Re-running with the same settings skips finished clips; a larger --clips extends the set.
    """
    from tribert.config import MUSIC21_CLASSES
    from tribert.data.synth import generate

    fractions = parse_splits(splits)
    try:
        summary = generate(out, clips, seed=seed, soundfont=soundfont, duration=duration, workers=workers,
                           frame_size=frame_size, classes=classes or MUSIC21_CLASSES, splits=fractions)
    except TribertError as err:
        fail(err)
    splits = ", ".join(f"{k} {summary.splits.get(k, 0)}" for k in ("train", "val", "test"))
    rate = f" ({summary.clips_per_second:.1f} clips/s)" if summary.generated else ""
    typer.echo(f"SynthMUSIC in {out}: {summary.generated} clips generated, {summary.skipped} already there, "
               f"{summary.seconds:.1f} s{rate}; {splits}; videos in {Path(out) / 'videos'}")


@app.command()
@sigterm_unwinds()
def prepare(
    inputs: List[Path] = typer.Argument(..., help="Video files, folders of videos, or MUSIC JSON / Sound-of-Pixels CSV index files."),
    out: Path = typer.Option(..., "--out", help="Folder for the prepared clip folders."),
    video_root: Optional[Path] = typer.Option(None, "--video-root", help="Where the ids of JSON/CSV index files are found (default: the index file's folder)."),
    workers: int = typer.Option(0, "--workers", help="Worker processes (0: one per CPU core)."),
    no_pose: bool = typer.Option(False, "--no-pose", help="Skip pose detection (no MediaPipe needed)."),
    fps: float = typer.Option(8.0, "--fps", help="Stored frame rate (and pose rate)."),
    frame_size: int = typer.Option(224, "--frame-size", help="Shorter side of the stored frames in pixels (aspect kept); 0 keeps the video's size."),
    min_duration: Optional[float] = typer.Option(None, "--min-duration", help="Shortest usable video in seconds (default: one 6-s training crop, 5.94 s). Shorter crops are zero-padded in training; a 3-s recipe can use 3."),
    splits: Optional[str] = typer.Option(None, "--splits", help="train,val,test fractions, e.g. 0.75,0.05,0.2: clips go to OUT/train, OUT/val, OUT/test by a hash of the video's id (a video keeps its split on every rerun). Default: all into OUT."),
    seed: int = typer.Option(0, "--seed", help="Seed of the --splits assignment."),
) -> None:
    """Turn videos into prepared clip folders (frames, audio, pose). Finished clips are skipped.

    Exit code 0: all inputs prepared (or already done); 1: some failed; 2: bad arguments.
    """
    from rich.console import Console
    from rich.table import Table

    from tribert.data.clip import list_clips
    from tribert.data.prepare import SPLITS
    from tribert.data.prepare import prepare as run_prepare

    fractions = None if splits is None else parse_splits(splits)
    try:
        report = run_prepare(inputs, out, video_root=video_root, fps=fps, frame_size=frame_size or None,
                             pose="none" if no_pose else "mediapipe", workers=workers, min_duration=min_duration,
                             splits=fractions, seed=seed)
    except TribertError as err:
        fail(err)
    table = Table(title=f"tribert prepare -> {out}")
    for col in ("prepared", "skipped (already done)", "failed"):
        table.add_column(col, justify="right")
    table.add_row(str(len(report.prepared)), str(len(report.skipped)), str(len(report.failed)))
    Console().print(table)
    if fractions is not None:
        counts = ", ".join(f"{s} {len(list_clips(out / s)) if (out / s).is_dir() else 0}" for s in SPLITS)
        typer.echo(f"clips now in {out}: {counts}")
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)
    for r in report.prepared + report.skipped:
        if r.reason:  # an audio track cut at the picture's end; prepared earlier in another split: kept there
            typer.echo(f"note: {r.source}: {r.reason}", err=True)
    for r in report.failed:
        typer.echo(f"error: {r.source}: {r.reason}", err=True)
    if report.failed:
        raise typer.Exit(1)


@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", help="YAML recipe (see configs/); not with --resume."),
    set_: List[str] = typer.Option([], "--set", help="Override a field: --set train.lr=1e-4 (repeatable)."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where run folders are created."),
    name: Optional[str] = typer.Option(None, "--name", help="Run folder name suffix (default: model-size)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder from its last checkpoint, with its own config; --set may change only where it ends (train.max_steps, max_minutes, max_epochs) and the machines."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Use this run folder (give the same one on every node of a multi-node launch)."),
    devices: Optional[str] = typer.Option(None, "--devices", help="Lightning devices, e.g. 1, 4, auto."),
    num_nodes: Optional[int] = typer.Option(None, "--num-nodes", help="Nodes for multi-node DDP."),
    visual_weights: Optional[Path] = typer.Option(None, "--visual-weights", help="A torchvision-style ImageNet ResNet checkpoint (.pth/.safetensors) to start the visual trunk from."),
) -> None:
    """Train TriBERT or a baseline; writes a run folder with config, git revision, metrics and checkpoints."""
    from tribert.config import Config
    from tribert.engine.train import train as run_training

    if resume is not None and (config is not None or visual_weights is not None):
        raise TribertError("--resume continues a run with its own config.yaml: drop --config and --visual-weights "
                           "(start a new run to change the recipe; --set may change where the run ends)", resume)
    if resume is None and config is None:
        raise TribertError("give --config RECIPE for a new run, or --resume RUN_FOLDER to continue one")
    if resume is not None and (run_dir is not None or name is not None):
        raise TribertError("--resume continues the run in its own folder: drop --run-dir and --name", resume)
    overrides = list(set_)
    if devices is not None:
        overrides.append(f"train.devices={devices}")
    if num_nodes is not None:
        overrides.append(f"train.num_nodes={num_nodes}")
    if visual_weights is not None:
        overrides.append(f"model.visual_weights={visual_weights}")
    if resume is None:
        cfg = Config.load(config, overrides)
    else:  # the run's own config.yaml (train() reads it), on the machines given
        cfg = Config.load(resume / "config.yaml", overrides) if overrides and (resume / "config.yaml").is_file() else None
    try:
        folder = run_training(cfg, runs_dir=runs_dir, name=name, resume=resume, run_dir=run_dir)
    except TrainingInterrupted as stopped:
        typer.echo(str(stopped), err=True)
        raise typer.Exit(stopped.exit_code)  # the shell's code for the signal: 130 SIGINT, 143 SIGTERM
    typer.echo(f"run folder: {folder}")


@app.command("pose-features")
def pose_features(
    config: Path = typer.Option(..., "--config", help="The training recipe (its model, init_from and data settings)."),
    set_: List[str] = typer.Option([], "--set", help="Override a field as for `tribert train` (repeatable)."),
    data: Optional[List[Path]] = typer.Option(None, "--data", help="Clip folders to store features in (default: the recipe's data.train_dir; repeatable)."),
    grid: float = typer.Option(1.0, "--grid", help="Seconds between the stored windows: training crops start on this grid."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, or auto (a GPU when there is one)."),
    batch: int = typer.Option(32, "--batch", help="Windows per ST-GCN forward."),
) -> None:
    """Store the frozen ST-GCN's features of every training window ahead of training.

    Train then with the same recipe and --set data.stored_pose=true: the step skips the ST-GCN.

    The ST-GCN is the one the run starts from (train.seed, train.init_from). Clips that hold its features on this grid are skipped.
    """
    from tribert.config import Config
    from tribert.data.mixing import load_clips
    from tribert.data.pose_features import NOT_FROZEN, check_store_options, store_pose_features
    from tribert.engine.train import build_system

    try:
        cfg = Config.load(config, list(set_))
        if not (cfg.model.kind == "tribert" and cfg.model.use_pose):
            raise TribertError("pose features need TriBERT with a pose stream (model.kind tribert, model.use_pose)", config)
        if not cfg.model.pose_frozen:
            raise TribertError(NOT_FROZEN, config)
        check_store_options(cfg.audio, grid, device, batch)  # before the model is built and its weights read
        folders = data or ([Path(cfg.data.train_dir)] if cfg.data.train_dir else [])
        if not folders:
            raise TribertError("give --data FOLDER or set data.train_dir in the recipe", config)
        clips = [clip for folder in folders for clip in load_clips(folder, cfg.data.classes)]
        encoder = build_system(cfg).model.pose
        report = store_pose_features(clips, encoder, cfg.audio, cfg.video, grid_seconds=grid, device=device,
                                     batch_size=batch)
    except TribertError as err:
        fail(err)
    typer.echo(f"pose features: {report.written} clips computed ({report.windows} windows, {report.seconds:.1f} s), "
               f"{report.skipped} already there; train with --set data.stored_pose=true")


MASK_SHARING_HELP = ("How the masks of a mixture's sources (those separated) relate: none (each on its "
                     "own), cap (scaled down where they sum over 1), partition (they split every bin, "
                     "so the stems add up to the mixture); default: the checkpoint's model.mask_sharing.")


def check_mask_sharing(value: Optional[str]) -> None:
    from tribert.config.model import MASK_SHARING

    if value is not None and value not in MASK_SHARING:
        raise TribertError(f"--mask-sharing must be one of {', '.join(MASK_SHARING)}, got {value!r}")


@app.command()
def evaluate(
    checkpoint: List[Path] = typer.Option(..., "--checkpoint", help="Checkpoint(s) to score; several give one table."),
    data: Path = typer.Option(..., "--data", help="Folder of test clips (prepared or SynthMUSIC split)."),
    label: List[str] = typer.Option([], "--label", help="Row name per checkpoint (default: model-size)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fixed mixture list (written once beside the clips)."),
    limit: int = typer.Option(0, "--limit", help="Score only the first N mixtures (0: all)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Binarise predicted masks at this value (the authors' evaluation used 0.5); default: soft masks. A mask that is all zero gives a silent estimate and an SDR of -inf."),
    backend: str = typer.Option("fast", "--backend", help="fast (our BSS Eval: one factorisation per mixture for all rows), fast_bss_eval or mir_eval (the reference); all agree within 0.01 dB (but the mixture row's SAR, infinite in theory: rounding noise above 100 dB in each)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the results as JSON here."),
    mask_sharing: Optional[str] = typer.Option(None, "--mask-sharing", help=MASK_SHARING_HELP),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute the mixture and oracle rows instead of reading them from the cache ($TRIBERT_CACHE, default ~/.cache/tribert)."),
    weights: str = typer.Option("averaged", "--weights", help="averaged: a run's weight average, where it kept one (train.ema_decay); raw: the last step's weights."),
) -> None:
    """Score separation (SDR/SIR/SAR) beside the mixture and the oracle masks; a Table-1-shaped report."""
    from tribert.data.indexes import free_name
    from tribert.engine.checkpoint import WEIGHTS, load_system
    from tribert.engine.evaluate import evaluate as run_eval, format_table, reference_cache_path, write_results
    from tribert.engine.train import eval_loader
    from tribert.metrics import BACKENDS

    if label and len(label) != len(checkpoint):
        raise TribertError("give one --label per --checkpoint")
    if limit < 0 or seed < 0:
        raise TribertError(f"--limit and --seed must be >= 0, got {limit} and {seed}")
    if threshold is not None and not 0 < threshold < 1:  # NaN too: no mask value passes it
        raise TribertError(f"--threshold must be between 0 and 1 (masks are in [0, 1]), got {threshold}")
    if {"mixture", "IBM", "IRM"} & set(label):
        raise TribertError("--label: mixture, IBM and IRM name the reference rows; choose other names")
    if out is not None:
        check_out_file(out, checkpoint, replaces=results_json("separation"))
    if backend not in BACKENDS:  # checked before any model runs
        raise TribertError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    check_mask_sharing(mask_sharing)
    if weights not in WEIGHTS:
        raise TribertError(f"--weights must be {' or '.join(WEIGHTS)}, got {weights!r}")
    systems, paths = {}, {}
    for i, path in enumerate(checkpoint):
        system = load_system(path, weights=weights)
        if mask_sharing is not None:
            system.config.model.mask_sharing = mask_sharing
        name = label[i] if label else f"{system.config.model.kind}-{system.config.model.size}"
        # two runs of one size: tribert-small, tribert-small-2 (in --checkpoint order)
        name = free_name(name, systems)
        systems[name], paths[name] = system, path
    first = next(iter(systems.values()))
    for name, system in systems.items():
        differ = [what for what, a, b in (("audio", system.config.audio, first.config.audio),
                                          ("video", system.config.video, first.config.video),
                                          ("data.num_mix", system.config.data.num_mix, first.config.data.num_mix),
                                          ("data.use_stems", system.config.data.use_stems,
                                           first.config.data.use_stems)) if a != b]
        if system.config.model.kind == "audio_only" and system.config.data.classes != first.config.data.classes:
            differ.append("data.classes (the audio-only control is given each source's class index)")
        if differ:
            raise TribertError(f"({name}) {', '.join(differ)} settings differ from the first checkpoint's; "
                               "models in one table must score the same mixtures with the same inputs", paths[name])
    loader = eval_loader(first.config, data, limit=limit, seed=seed)
    cache = None if no_cache else reference_cache_path()
    # How often TriBERT's condition names each source's class, in its own class list (None: a
    # model without one, or no source of known class): the first thing to look at when a model
    # separates poorly on new data.
    accuracy: dict = {}
    results = run_eval(systems, loader, threshold=threshold, backend=backend, cache=cache, condition=accuracy)
    typer.echo(format_table(results))
    if known := {name: acc for name, acc in accuracy.items() if acc is not None}:
        typer.echo("condition class top-1 on the sources of known class: "
                   + ", ".join(f"{name} {acc:.1%}" for name, acc in known.items()))
    if out is not None:
        write_results(out, results, {"checkpoints": [str(c) for c in checkpoint], "data": str(data),
                                     "seed": seed, "limit": limit, "threshold": threshold, "backend": backend,
                                     "mask_sharing": mask_sharing, "weights": weights,
                                     "condition_accuracy": accuracy})
        typer.echo(f"results: {out}")


@app.command()
@sigterm_unwinds()
def separate(
    videos: List[Path] = typer.Argument(..., help="One duet video, or two (or more) videos to mix; files or prepared clip folders."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A trained checkpoint."),
    out: Path = typer.Option(..., "--out", help="Output folder for WAVs, MP4s and the figure."),
    mixture: Optional[Path] = typer.Option(None, "--mixture", help="Separate this recording, using the videos only as visual/pose cues."),
    no_pose: bool = typer.Option(False, "--no-pose", help="Do not run mediapipe on video files: their pose stream sees no person (prepared clip folders keep their stored pose)."),
    mask_sharing: Optional[str] = typer.Option(None, "--mask-sharing", help=MASK_SHARING_HELP),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N, or auto (a GPU when there is one)."),
) -> None:
    """Separate the sounds of the videos' performers; writes one WAV and one MP4 per source, the mixture as a WAV and a figure.

    With --mixture the videos are only visual and pose cues (they need no audio track). Every input
    is checked (files, the mixture, the checkpoint) before frames are decoded or pose detected.
    """
    from tribert.separate import Separator, check_inputs, check_outputs, source_names

    check_inputs(list(videos), mixture)  # cheap checks first: a missing file is not reported after loading a model
    check_outputs(out, source_names(list(videos)), [*videos, mixture, checkpoint])
    check_mask_sharing(mask_sharing)
    sep = Separator.from_checkpoint(checkpoint, device=device)
    if mask_sharing is not None:
        sep.config.model.mask_sharing = mask_sharing
    result = sep.separate(list(videos), mixture=mixture, pose="none" if no_pose else "mediapipe", progress=True)
    for note in result.notes:
        typer.echo(f"note: {note}")
    for path in result.write(out):
        typer.echo(f"wrote {path}")


@app.command("export")
def export_command(
    checkpoint: Path = typer.Argument(..., help="A training checkpoint (e.g. runs/<run>/checkpoints/last.ckpt)."),
    out: Path = typer.Argument(..., help="The file to write (e.g. tribert-small.pt)."),
) -> None:
    """Write the weights and config only (no optimiser state): a file that separate, evaluate and
    Separator.from_checkpoint accept in place of the checkpoint."""
    from tribert.engine.checkpoint import export_weights

    export_weights(checkpoint, out)
    mb_out, mb_ckpt = (Path(p).stat().st_size / 2**20 for p in (out, checkpoint))
    typer.echo(f"exported {out} ({mb_out:.1f} MB; the checkpoint is {mb_ckpt:.1f} MB)")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Folder for everything the demo makes."),
    clips: int = typer.Option(1000, "--clips", help="SynthMUSIC clips to generate."),
    minutes: float = typer.Option(8.0, "--minutes", help="Training budget in minutes."),
    seed: int = typer.Option(0, "--seed"),
    set_: List[str] = typer.Option([], "--set", help="Override a recipe field: --set train.schedule=linear (repeatable)."),
) -> None:
    """Generate SynthMUSIC, train TriBERT-small, evaluate it and separate a test pair (~9 min on 2 cores)."""
    from tribert.demo import run_demo

    run_demo(out, clips=clips, minutes=minutes, seed=seed, overrides=tuple(set_))


@app.command("model-info")
def model_info_command(
    size: Optional[str] = typer.Option(None, "--size", help="Model size: paper, small or tiny (default: paper)."),
    config: Optional[str] = typer.Option(None, "--config", help="A recipe (name or YAML file): its model, as `tribert train` builds it (instead of --size)."),
    set_: List[str] = typer.Option([], "--set", help="Override a field of the recipe, as for `tribert train` (repeatable)."),
    batch: int = typer.Option(1, "--batch", help="Videos in the forward pass whose multiply-adds are counted."),
) -> None:
    """Print parameters and multiply-adds per component (visual, pose, audio, transformer, heads, separator)."""
    import torch
    from rich.console import Console

    from tribert.config import Config
    from tribert.models import build_model
    from tribert.models.info import info_table, model_info

    try:
        if batch < 1:
            raise TribertError(f"--batch must be >= 1 video, got {batch}")
        if config is not None and size is not None:
            raise TribertError("give --size or --config, not both (a recipe names its size: --set model.size=...)")
        if set_ and config is None:
            raise TribertError("--set changes a recipe: give --config too")
        if config is not None:
            model_config = Config.load(config, list(set_)).model
            if model_config.kind != "tribert":
                raise TribertError(f"model-info counts TriBERT per component; this recipe's model.kind is "
                                   f"{model_config.kind}", config)
            model, name = build_model(model_config), f"TriBERT of the recipe {Path(config).stem}"
        else:
            model, name = build_model(size or "paper"), f"TriBERT-{size or 'paper'}"
    except TribertError as err:
        fail(err)
    torch.manual_seed(0)
    title = f"{name} (one forward: {batch} video(s), 1 source each)"
    Console().print(info_table(model_info(model, batch_size=batch), title=title))


retrieve_app = typer.Typer(no_args_is_help=True, help="Cross-modal retrieval on a trained TriBERT (paper Table 3).")
app.add_typer(retrieve_app, name="retrieve")


def _variants(variant: List[str]) -> tuple[str, ...]:
    from tribert.models.retrieval import VARIANTS, get_variant

    return tuple(get_variant(v).name for v in variant) if variant else tuple(VARIANTS)


@retrieve_app.command("train")
def retrieve_train(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="A trained TriBERT checkpoint."),
    data: Path = typer.Option(..., "--data", help="Clip folder to train on (e.g. data/synth/train)."),
    out: Path = typer.Option(..., "--out", help="Folder for the trained heads and retrieval.json."),
    recipe: str = typer.Option("fast", "--recipe", help="fast (CPU minutes) or paper (Adam 2e-5, 750 epochs, batch 64)."),
    variant: List[str] = typer.Option([], "--variant", help="audio2vision, vision2audio, audio2pose, pose2audio, vision+audio2pose (repeatable; default: all five)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Override the recipe's epochs."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Override the recipe's learning rate."),
    negatives: Optional[str] = typer.Option(None, "--negatives", help="random or hard (among the query's 25 nearest clips in vision, the authors' choice); default: the recipe's."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device", help="Where the embeddings are computed (cpu, cuda)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute the embeddings instead of reading them from the cache."),
) -> None:
    """Train retrieval heads (each variant on transformer and pre-transformer embeddings)."""
    import dataclasses

    from tribert.data.clip import list_clips
    from tribert.engine.retrieval import RECIPES, check_heads_input, load_embeddings, train_retrieval

    if recipe not in RECIPES:
        raise TribertError(f"--recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    changes = {"variants": _variants(variant), "seed": seed}
    if epochs is not None:
        changes["epochs"] = epochs
    if lr is not None:
        changes["lr"] = lr
    if negatives is not None:
        changes["negatives"] = negatives
    cfg = dataclasses.replace(RECIPES[recipe], **changes).check()
    check_heads_input(out, len(list_clips(data)), cfg, data)  # before the embeddings are computed
    emb = load_embeddings(checkpoint, data, device=device, cache=not no_cache, progress=True)
    train_retrieval(emb, out, cfg, progress=True, log=typer.echo)
    typer.echo(f"heads: {out}")


@retrieve_app.command("evaluate")
def retrieve_evaluate(
    heads: Path = typer.Option(..., "--heads", help="Folder written by `tribert retrieve train`."),
    data: Path = typer.Option(..., "--data", help="Test clip folder (clips training never saw)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="The TriBERT checkpoint (default: the one the heads were trained on)."),
    pool: int = typer.Option(210, "--pool", help="Candidates each query ranks (the paper's pool: about 210, random top-1 = 0.48%)."),
    variant: List[str] = typer.Option([], "--variant", help="Evaluate only these variants (repeatable)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the pools drawn from the test clips."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the results as JSON here."),
    figure: Optional[Path] = typer.Option(None, "--figure", help="Write a Figure-4-style PNG (queries and their top-5) here (a name ending in .png)."),
    device: str = typer.Option("cpu", "--device"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute the embeddings instead of reading them from the cache."),
) -> None:
    """Rank pools of test candidates: top-1/5/10 in a Table-3-shaped table, beside random choice."""
    from tribert.engine.retrieval import evaluate_retrieval, format_table, load_embeddings, read_manifest, write_results

    trained_on = read_manifest(heads)["checkpoint"]
    if checkpoint is None and not trained_on:
        raise TribertError("retrieval.json names no checkpoint: give --checkpoint", heads)
    checkpoint = checkpoint or Path(trained_on)
    if pool < 1:
        raise TribertError(f"--pool must be >= 1 candidate, got {pool}")
    if figure is not None and figure.suffix.lower() != ".png":  # PNG bytes under another name mislead every viewer
        raise TribertError(f"--figure writes a PNG: give a name ending in .png, got {figure.name!r}")
    if out is not None and figure is not None and out.resolve() == figure.resolve():
        raise TribertError("--out and --figure name the same file: the figure would replace the results", out)
    for path, kind in ((out, results_json("retrieval")), (figure, PNG)):
        if path is not None:
            check_out_file(path, [checkpoint, *heads.iterdir()], replaces=kind)
    emb = load_embeddings(checkpoint, data, device=device, cache=not no_cache, progress=True)
    variants = _variants(variant) if variant else None
    results = evaluate_retrieval(heads, emb, pool=pool, seed=seed, variants=variants)
    typer.echo(format_table(results))
    if out is not None:
        write_results(out, results, {"heads": str(heads), "data": str(data), "checkpoint": str(checkpoint),
                                     "pool": pool, "seed": seed})
        typer.echo(f"results: {out}")
    if figure is not None:
        from tribert.engine.retrieval_figure import retrieval_figure

        retrieval_figure(heads, emb, figure, seed=seed, pool=pool)
        typer.echo(f"figure: {figure}")


def main() -> None:  # pragma: no cover - console entry point
    run_main(app)


if __name__ == "__main__":  # pragma: no cover
    main()
