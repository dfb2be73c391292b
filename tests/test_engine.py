"""Training engine on the tiny TriBERT: loss falls, resume is exact, bad checkpoints/configs are caught."""

from __future__ import annotations

import csv
import io
import json
import warnings

import numpy as np
import pytest
import torch

from helpers import benchmark, make_clip
from tribert.config import Config
from tribert.data.batch import MixBatch
from tribert.engine.checkpoint import load_system
from tribert.engine import train as train_module
from tribert.engine.system import SeparationSystem, WeightAverage
from tribert.engine.train import init_weights_from, train, train_loader
from tribert.errors import CheckpointError, ConfigError, TribertError
from tribert.metrics import bss_eval

TINY = ["model.size=tiny", "audio.crop_samples=8191", "audio.warp_bins=32", "video.frame_size=32",
        "video.pose_frames=8", "train.batch_size=2", "train.lr=1e-3", "train.log_every=1",
        "train.accelerator=cpu", "train.warmup_frac=0"]


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "clips"
    make_clip(root, "violin", ["violin"], [440.0])
    make_clip(root, "flute", ["flute"], [1320.0])
    make_clip(root, "cello", ["cello"], [110.0])
    make_clip(root, "duet", ["violin", "violin"], [330.0, 660.0])
    return root


def tiny_config(data_root, *extra: str) -> Config:
    return Config.load(overrides=TINY + [f"data.train_dir={data_root}", *extra])


def train_on_one_batch(config: Config, steps: int = 40):
    """Adam on one fixed batch: the losses of every step, the last step's mask logits, the batch."""
    torch.manual_seed(0)
    system = SeparationSystem(config)
    batch = next(iter(train_loader(config)))
    opt = torch.optim.Adam(system.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        out, mask_logits = system(batch)
        loss = system.losses(batch, out, mask_logits)
        opt.zero_grad()
        loss["loss"].backward()
        opt.step()
        losses.append({k: v.item() for k, v in loss.items()})
    return losses, mask_logits.detach(), batch


def test_loss_falls_on_a_fixed_batch(data_root):
    losses, _, _ = train_on_one_batch(tiny_config(data_root))
    first, last = losses[0], losses[-1]
    assert set(first) == {"sep", "vision", "segmentation", "pose", "audio", "condition", "loss"}
    assert last["condition"] < first["condition"]
    assert last["loss"] < 0.7 * first["loss"], (first, last)
    assert last["sep"] < first["sep"]


def test_partitioned_masks_sum_to_one_and_still_learn(data_root):
    losses, mask_logits, batch = train_on_one_batch(tiny_config(data_root, "model.mask_sharing=partition"))
    total = (torch.sigmoid(mask_logits) * batch.source_valid[:, :, None, None, None]).sum(1)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-4)  # the real sources split every bin
    seps = [loss["sep"] for loss in losses]
    assert seps[-1] < 0.92 * seps[0], seps  # measured: 0.85 after 40 steps (free masks: 0.86)


def _losses(run_dir) -> dict[int, float]:
    with open(run_dir / "metrics.csv") as f:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")}


def test_kill_and_resume_gives_the_same_next_steps(data_root, tmp_path):
    two_epochs = ["train.epoch_size=4", "train.max_steps=4"]  # 2 steps per epoch
    full = train(tiny_config(data_root, *two_epochs), runs_dir=tmp_path / "runs", name="full", progress=False)
    # The "killed" run stops after its first epoch (its last checkpoint), then is resumed.
    cut = train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=2"),
                runs_dir=tmp_path / "runs", name="cut", progress=False)
    assert (cut / "checkpoints" / "last.ckpt").is_file()
    train(tiny_config(data_root, *two_epochs), resume=cut, progress=False)
    a, b = _losses(full), _losses(cut)
    assert sorted(a) == sorted(b) == [0, 1, 2, 3]
    for step in (2, 3):  # the steps after the restart
        assert b[step] == pytest.approx(a[step], rel=1e-5, abs=1e-6)
    for name in ("config.yaml", "run.json"):
        assert (full / name).is_file()
    assert '"revision"' in (full / "run.json").read_text()


def test_a_resumed_run_keeps_its_own_recipe_and_may_only_train_longer(data_root, tmp_path):
    run = train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=2"), runs_dir=tmp_path / "runs",
                progress=False)
    stored = (run / "config.yaml").read_text()
    with pytest.raises(TribertError, match=r"changes train.lr \(0.001 -> 0.5\), train.seed \(0 -> 7\): "
                                           r"start a new run") as err:
        train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=3", "train.lr=0.5", "train.seed=7"),
              resume=run, progress=False)
    assert "train.max_steps (" not in str(err.value)  # the run's end may change: not listed as a change
    with pytest.raises(TribertError, match=r"model.kind \('tribert' -> 'audio_only'\)"):
        train(tiny_config(data_root, "train.epoch_size=4", "model.kind=audio_only"), resume=run, progress=False)
    assert (run / "config.yaml").read_text() == stored  # refused: untouched
    train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=4"), resume=run, progress=False)  # longer
    assert "max_steps: 4" in (run / "config.yaml").read_text()
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    train(None, resume=run, progress=False)  # its own config: already at its end
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4


def test_a_resume_refuses_a_checkpoint_that_is_not_the_runs_and_leaves_the_folder_as_it_was(data_root, tmp_path):
    """A refused resume writes nothing: not config.yaml's end (it was rewritten before the
    checkpoint was read), not run.json. A last.ckpt of another model (copied in from another run)
    or a config.yaml edited by hand since (the edit would apply by halves: the optimiser state
    keeps the old rate) are each one line; so is an end before the step the run is at."""
    runs = tmp_path / "runs"
    run = train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=2"), runs_dir=runs, name="a",
                progress=False)
    other = train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=2", "model.kind=audio_only"),
                  runs_dir=runs, name="b", progress=False)
    files = {p: p.read_bytes() for p in (run / "config.yaml", run / "run.json")}
    last = run / "checkpoints" / "last.ckpt"
    good = last.read_bytes()
    last.write_bytes(good[:2000])  # truncated
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=6"), resume=run, progress=False)
    last.write_bytes((other / "checkpoints" / "last.ckpt").read_bytes())
    with pytest.raises(TribertError, match=r"another config than the run's config.yaml \(model.kind \('audio_only' "
                                           r"-> 'tribert'\)"):
        train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=6"), resume=run, progress=False)
    broken = torch.load(io.BytesIO(good), weights_only=True)
    name = next(k for k, t in broken["state_dict"].items() if t.is_floating_point())
    broken["state_dict"][name].view(-1)[0] = float("nan")
    torch.save(broken, last)
    with pytest.raises(CheckpointError, match=f"holds non-finite weights \\({name}\\)"):
        train(None, resume=run, progress=False)
    # evaluate, separate and export read it through load_system: a traceback in the metrics, an MP4
    # encoder's error on a temporary file, and a silent export before
    with pytest.raises(CheckpointError, match=f"holds non-finite weights \\({name}\\): the run diverged"):
        load_system(last)
    last.write_bytes(good)
    with pytest.raises(TribertError, match="at step 2, past train.max_steps 1"):
        train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=1"), resume=run, progress=False)
    longer = train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=4"), runs_dir=runs, name="c",
                   progress=False)  # two epochs done
    with pytest.raises(TribertError, match="in epoch 2, past train.max_epochs 1"):  # was Lightning's traceback
        train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=4", "train.max_epochs=1"),
              resume=longer, progress=False)
    assert {p: p.read_bytes() for p in files} == files
    (run / "config.yaml").write_text(files[run / "config.yaml"].decode().replace("lr: 0.001", "lr: 0.01"))
    with pytest.raises(TribertError, match=r"train.lr \(0.001 -> 0.01\)"):
        train(None, resume=run, progress=False)


def test_a_run_records_absolute_paths_its_restarts_and_holds_its_folder(data_root, tmp_path, monkeypatch):
    """config.yaml names its data by absolute path (a resume from another folder finds the same
    data); run.json lists each restart with its revision; a second training process in the same
    run folder stops in one line while the first holds it."""
    from tribert.engine.train import RunLock

    monkeypatch.chdir(data_root.parent)
    run = train(Config.load(overrides=TINY + ["data.train_dir=clips", "train.epoch_size=4", "train.max_steps=1"]),
                runs_dir=tmp_path / "runs", progress=False)
    assert Config.load(run / "config.yaml").data.train_dir == str(data_root)
    monkeypatch.chdir(tmp_path / "runs")
    train(Config.load(run / "config.yaml", ["train.max_steps=2"]), resume=run, progress=False)
    info = json.loads((run / "run.json").read_text())
    assert [r["changed"] for r in info["resumed"]] == [["train.max_steps"]] and info["resumed"][0]["git"]
    stored = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text("")
    with pytest.raises(TribertError, match="config.yaml is empty"):  # was "the run has no end"
        train(None, resume=run, progress=False)
    (run / "config.yaml").write_text(stored)
    (run / "run.json").write_text('{"git": ')  # damaged: kept beside, not lost
    train(Config.load(run / "config.yaml", ["train.max_steps=2"]), resume=run, progress=False)
    assert (run / "run.json.damaged").read_text() == '{"git": ' and json.loads((run / "run.json").read_text())["resumed"]
    fresh = tmp_path / "fresh"  # two new runs started at once with one --run-dir: the second one
    fresh.mkdir()
    with RunLock(run), RunLock(fresh):
        with pytest.raises(TribertError, match="another `tribert train` is running in this run folder"):
            train(Config.load(run / "config.yaml", ["train.max_steps=3"]), resume=run, progress=False)
        with pytest.raises(TribertError, match="another `tribert train` is running"):
            train(tiny_config(data_root, "train.max_steps=1"), run_dir=fresh, progress=False)
    assert not (fresh / "config.yaml").exists()
    train(Config.load(run / "config.yaml", ["train.max_steps=3"]), resume=run, progress=False)  # released
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3


def test_a_longer_resumed_run_warns_when_its_schedule_depends_on_its_length(data_root, tmp_path, caplog):
    """A linear decay ends at max_steps: a finished 2-step run trained on to 4 jumps from a rate of
    0 back to the 4-step schedule's. Said in a warning; a constant rate gives none."""
    linear = ["train.epoch_size=4", "train.schedule=linear"]
    run = train(tiny_config(data_root, *linear, "train.max_steps=2"), runs_dir=tmp_path / "runs", name="linear",
                progress=False)
    with caplog.at_level("WARNING", logger="tribert"):
        train(tiny_config(data_root, *linear, "train.max_steps=4"), resume=run, progress=False)
    assert "train.max_steps 2 -> 4: the learning rate's linear decay follows the 4-step schedule" in caplog.text
    with open(run / "metrics.csv") as f:
        lrs = {int(r["step"]): float(r["train/lr"]) for r in csv.DictReader(f) if r.get("train/lr")}
    # the first step after the restart at the 4-step schedule's rate, not the 2-step one's (0)
    assert [lrs[k] for k in range(4)] == pytest.approx([1e-3, 5e-4, 5e-4, 2.5e-4])
    caplog.clear()
    flat = train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=2"), runs_dir=tmp_path / "runs",
                 name="flat", progress=False)
    with caplog.at_level("WARNING", logger="tribert"):
        train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=4"), resume=flat, progress=False)
    assert "schedule from here on" not in caplog.text


@pytest.fixture
def ctrl_c_at(monkeypatch):
    """``ctrl_c_at(step, times)``: training receives ``times`` SIGINTs, as from a terminal's Ctrl-C,
    when its step ``step`` has ended. The test process gets Python's own SIGINT handler meanwhile
    (a shell's background job starts with SIGINT ignored)."""
    import os
    import signal

    from tribert.engine.train import CtrlCStop

    real = CtrlCStop.on_train_batch_end
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)

    def arm(step: int, times: int = 1, after_save: bool = False):
        def hit(self, trainer, *args):
            if after_save:  # the Ctrl-C comes once the step is saved, while the next batch loads
                real(self, trainer, *args)
            if trainer.global_step == step:
                for _ in range(times):
                    os.kill(os.getpid(), signal.SIGINT)  # the handler runs before the next line
            if not after_save:
                real(self, trainer, *args)
        monkeypatch.setattr(CtrlCStop, "on_train_batch_end", hit)

    yield arm
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_after_the_step_saves_it_and_resume_goes_on_as_if_never_stopped(data_root, tmp_path, ctrl_c_at):
    from tribert.errors import TrainingInterrupted

    steps = ["train.epoch_size=8", "train.max_steps=5", "train.save_every_steps=0"]  # last.ckpt only at the end
    full = train(tiny_config(data_root, *steps), runs_dir=tmp_path / "runs", name="full", progress=False)
    ctrl_c_at(3)
    with pytest.raises(TrainingInterrupted, match=r"at step 3; checkpoints/last.ckpt holds step 3: continue with "
                                                  r"`tribert train --resume .*cut"):
        train(tiny_config(data_root, *steps), runs_dir=tmp_path / "runs", name="cut", progress=False)
    cut = next((tmp_path / "runs").glob("*-cut"))
    assert torch.load(cut / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    ctrl_c_at(-1)  # no more Ctrl-C
    train(tiny_config(data_root, *steps), resume=cut, progress=False)
    a, b = _losses(full), _losses(cut)
    assert sorted(b) == [0, 1, 2, 3, 4]
    for step in (3, 4):
        assert b[step] == pytest.approx(a[step], rel=1e-5, abs=1e-6)


def _rows(run_dir, column: str) -> list[tuple[int, int, float]]:
    """(epoch, step, value) of every metrics.csv row that has ``column``."""
    with open(run_dir / "metrics.csv") as f:
        return [(int(r["epoch"]), int(r["step"]), float(r[column])) for r in csv.DictReader(f) if r.get(column)]


@pytest.mark.parametrize("step, after_save, stopped", [(4, False, 4), (4, True, 5), (3, False, 3)],
                         ids=["mid-epoch", "while-a-batch-loads", "at-an-epoch-end"])
def test_a_ctrl_c_resumes_into_the_same_epochs_and_validations(data_root, tmp_path, ctrl_c_at, step, after_save,
                                                                stopped):
    """A Ctrl-C one step into an epoch must not end that epoch (no extra validation that could
    replace best.ckpt, no epoch counted as done), so a max_epochs run resumed from it takes every
    step, and validates at every step, the uninterrupted run does. One that comes after a step was
    saved, while the next batch loads, stops after that next step; one at an epoch's last step lets
    the epoch end (its validation is due)."""
    from tribert.errors import TrainingInterrupted

    epochs = ["train.epoch_size=6", "train.max_steps=0", "train.max_epochs=3", "train.save_every_steps=0",
              "train.val_mixtures=2", f"data.val_dir={data_root}"]  # 3 steps per epoch, 9 in all
    full = train(tiny_config(data_root, *epochs), runs_dir=tmp_path / "runs", name="full", progress=False)
    ctrl_c_at(step, after_save=after_save)
    with pytest.raises(TrainingInterrupted, match=f"at step {stopped}; checkpoints/last.ckpt holds step {stopped}"):
        train(tiny_config(data_root, *epochs), runs_dir=tmp_path / "runs", name="cut", progress=False)
    cut = next((tmp_path / "runs").glob("*-cut"))
    assert [step for _, step, _ in _rows(cut, "val/sdr")] == [2]  # only the finished epoch validated
    _resume_and_compare_epochs(full, cut, ctrl_c_at)


def test_a_kill_after_an_epochs_last_step_resumes_into_the_next_epoch(data_root, tmp_path, ctrl_c_at):
    """A periodic save that falls on an epoch's last step, then a kill (a double Ctrl-C here)
    before the epoch-end save: Lightning reruns a whole epoch from a checkpoint taken there, so the
    periodic save leaves that step to the epoch-end save."""
    from tribert.errors import TrainingInterrupted

    epochs = ["train.epoch_size=6", "train.max_steps=0", "train.max_epochs=3", "train.save_every_steps=2",
              "train.val_mixtures=2", f"data.val_dir={data_root}"]  # 3 steps per epoch: saves at 2, 3 (end), 4, 6 ..
    full = train(tiny_config(data_root, *epochs), runs_dir=tmp_path / "runs", name="full", progress=False)
    ctrl_c_at(6, times=2)  # step 6 ends epoch 1: killed before its validation and epoch-end save
    with pytest.raises(TrainingInterrupted, match="at step 6; checkpoints/last.ckpt holds step 4"):
        train(tiny_config(data_root, *epochs), runs_dir=tmp_path / "runs", name="cut", progress=False)
    _resume_and_compare_epochs(full, next((tmp_path / "runs").glob("*-cut")), ctrl_c_at)


def test_a_sigterm_during_an_epoch_end_validation_resumes_to_that_validation(data_root, tmp_path, ctrl_c_at,
                                                                             monkeypatch):
    """A checkpoint taken mid-validation is restored by Lightning as an epoch already validated:
    the resumed run lost that validation. The save before it stays instead, and the resumed run
    takes the steps since again (the same steps: the data follow the step count)."""
    import os
    import signal

    from tribert.errors import TrainingInterrupted

    epochs = ["train.epoch_size=6", "train.max_steps=0", "train.max_epochs=3", "train.save_every_steps=0",
              "train.val_mixtures=4", f"data.val_dir={data_root}"]  # two validation batches
    full = train(tiny_config(data_root, *epochs), runs_dir=tmp_path / "runs", name="full", progress=False)
    real = SeparationSystem.validation_step

    def validation_step(self, batch, batch_idx):
        if self.trainer.global_step == 6 and batch_idx == 0:  # the second epoch's validation
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, batch, batch_idx)

    monkeypatch.setattr(SeparationSystem, "validation_step", validation_step)
    with pytest.raises(TrainingInterrupted, match="on SIGTERM at step 6; checkpoints/last.ckpt holds step 3"):
        train(tiny_config(data_root, *epochs), runs_dir=tmp_path / "runs", name="cut", progress=False)
    monkeypatch.undo()
    _resume_and_compare_epochs(full, next((tmp_path / "runs").glob("*-cut")), ctrl_c_at)


def _resume_and_compare_epochs(full, cut, ctrl_c_at):
    """Resume ``cut`` to its end: every step, epoch label and validation as in ``full``."""
    ctrl_c_at(-1)
    train(None, resume=cut, progress=False)
    assert torch.load(cut / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 9
    ref, got = _rows(full, "val/sdr"), _rows(cut, "val/sdr")
    assert [r[:2] for r in got] == [r[:2] for r in ref] == [(0, 2), (1, 5), (2, 8)]
    assert [r[2] for r in got] == pytest.approx([r[2] for r in ref], abs=1e-4)
    assert [r[:2] for r in _rows(cut, "train/loss")] == [r[:2] for r in _rows(full, "train/loss")]


def test_sigterm_saves_the_finished_step_and_says_so(data_root, tmp_path, monkeypatch):
    """SLURM preemption, timeout and docker stop send SIGTERM: the run saves the step in hand and
    stops with TrainingInterrupted (the CLI exits 143), not a silent exit 0 that lost every step
    since the last save; the resumed run goes on as if never stopped."""
    import os
    import signal

    from tribert.engine.train import CtrlCStop
    from tribert.errors import TrainingInterrupted

    steps = ["train.epoch_size=8", "train.max_steps=5", "train.save_every_steps=0"]
    full = train(tiny_config(data_root, *steps), runs_dir=tmp_path / "runs", name="full", progress=False)
    real = CtrlCStop.on_train_batch_end

    def hit(self, trainer, *args):
        if trainer.global_step == 3:  # to the whole process group with loader workers: tests/test_cli.py
            os.kill(os.getpid(), signal.SIGTERM)  # Lightning's handler flags it; the loop stops after the step
        real(self, trainer, *args)

    monkeypatch.setattr(CtrlCStop, "on_train_batch_end", hit)
    with pytest.raises(TrainingInterrupted, match="stopped on SIGTERM at step 3; checkpoints/last.ckpt holds step 3") as err:
        train(tiny_config(data_root, *steps), runs_dir=tmp_path / "runs", name="cut", progress=False)
    assert err.value.exit_code == 143
    monkeypatch.undo()
    cut = next((tmp_path / "runs").glob("*-cut"))
    train(tiny_config(data_root, *steps), resume=cut, progress=False)
    a, b = _losses(full), _losses(cut)
    assert sorted(b) == [0, 1, 2, 3, 4]
    for step in (3, 4):
        assert b[step] == pytest.approx(a[step], rel=1e-5, abs=1e-6)


def test_a_second_ctrl_c_stops_at_once_and_names_the_checkpoint_it_left(data_root, tmp_path, ctrl_c_at):
    import signal

    from tribert.errors import TrainingInterrupted

    ctrl_c_at(3, times=2)
    with pytest.raises(TrainingInterrupted, match="at step 3; checkpoints/last.ckpt holds step 2"):
        train(tiny_config(data_root, "train.epoch_size=8", "train.max_steps=5", "train.save_every_steps=2"),
              runs_dir=tmp_path / "runs", progress=False)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # as it was (Lightning left it ignored)
    ctrl_c_at(1, times=2)  # before the first checkpoint (step 2)
    runs = sorted((tmp_path / "runs").iterdir())
    with pytest.raises(TrainingInterrupted, match="no checkpoint was saved yet: start the run again"):
        train(tiny_config(data_root, "train.epoch_size=8", "train.max_steps=5", "train.save_every_steps=2"),
              runs_dir=tmp_path / "runs", progress=False)
    assert sorted((tmp_path / "runs").iterdir()) == runs  # no run folder left that nothing could resume
    # in a --run-dir that was there before: its run files go, and the same command starts it again
    given = tmp_path / "given"
    given.mkdir()
    (given / "notes.txt").write_text("mine")
    for times in (2, 0):
        ctrl_c_at(1, times=times)
        try:
            train(tiny_config(data_root, "train.epoch_size=8", "train.max_steps=3", "train.save_every_steps=0"),
                  run_dir=given, progress=False)
        except TrainingInterrupted as err:
            assert times and "start the run again" in str(err)
            assert sorted(p.name for p in given.iterdir()) == ["notes.txt"]
    assert torch.load(given / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3


def test_a_loader_worker_outlives_the_terminal_ctrl_c_the_step_finishes_on(data_root):
    import os
    import signal
    import time

    loader = train_loader(tiny_config(data_root, "data.num_workers=1", "train.epoch_size=24"))
    loader.sampler.steps_done = lambda: 0
    batches = iter(loader)
    next(batches)
    os.kill(batches._workers[0].pid, signal.SIGINT)  # a Ctrl-C reaches the whole process group
    time.sleep(0.5)
    assert batches._workers[0].is_alive()
    assert sum(1 for _ in batches) == 11  # the rest of the epoch (a worker that quit: "exited unexpectedly")


def test_a_frozen_pose_encoder_keeps_the_weights_it_was_given(data_root, tmp_path, caplog):
    steps = ["train.epoch_size=4", "train.max_steps=3"]
    first = train(tiny_config(data_root, *steps), runs_dir=tmp_path / "runs", name="first", progress=False)
    with caplog.at_level("WARNING", logger="tribert.engine.train"):
        second = train(tiny_config(data_root, *steps, "model.pose_frozen=true",
                                   f"train.init_from={first / 'checkpoints' / 'last.ckpt'}"),
                       runs_dir=tmp_path / "runs", name="second", progress=False)
    assert "pose_frozen" not in caplog.text
    before = load_system(first / "checkpoints" / "last.ckpt").state_dict()
    after = load_system(second / "checkpoints" / "last.ckpt").state_dict()
    stgcn = [k for k in after if ".pose.stgcn." in k]
    assert stgcn and all(torch.equal(after[k], before[k]) for k in stgcn)  # weights and BN statistics
    assert not torch.equal(after["model.pose.proj.weight"], before["model.pose.proj.weight"])
    with caplog.at_level("WARNING", logger="tribert.engine.train"):  # frozen at random: said, not refused
        train(tiny_config(data_root, "train.max_steps=1", "model.pose_frozen=true"),
              runs_dir=tmp_path / "runs", name="random", progress=False)
    assert "random initialisation" in caplog.text
    # a checkpoint whose ST-GCN has other widths: it used to be said in a warning and trained frozen at random
    with pytest.raises(CheckpointError, match=r"does not fill the frozen ST-GCN \(\d+ tensors, first .*stgcn.*"
                                              r"shape \[.*\] here, \[.*\] in the checkpoint\), which would stay random"):
        train(tiny_config(data_root, "train.max_steps=1", "model.pose_frozen=true", "model.pose_channels=[8,16]",
                          f"train.init_from={first / 'checkpoints' / 'last.ckpt'}"),
              runs_dir=tmp_path / "runs", name="other-size", progress=False)
    assert not (tmp_path / "runs" / "other-size").exists()


def test_checkpoint_errors(data_root, tmp_path):
    filters = list(warnings.filters)
    run = train(tiny_config(data_root, "train.epoch_size=2", "train.max_steps=1"),
                runs_dir=tmp_path / "runs", name="one", progress=False)
    assert warnings.filters == filters  # Lightning's notices were silenced for the run only
    ckpt = run / "checkpoints" / "last.ckpt"
    system = load_system(ckpt)
    assert system.config.model.size == "tiny"
    # the training pose's kind is kept (make_clip writes ground-truth pose), in exports too
    assert system.hparams["train_pose_sources"] == {"ground_truth": 4}
    from tribert.engine.checkpoint import export_weights

    assert load_system(export_weights(ckpt, tmp_path / "export.pt")).hparams["train_pose_sources"] == {"ground_truth": 4}
    with pytest.raises(CheckpointError, match="expected small"):
        load_system(ckpt, expect_size="small")
    with pytest.raises(CheckpointError, match="expected sound_of_pixels"):
        load_system(ckpt, expect_model="sound_of_pixels")
    # Weights of one size under the config of another.
    data = torch.load(ckpt, weights_only=True)
    data["hyper_parameters"]["config"]["model"]["unet_base_channels"] = 8
    data["hyper_parameters"]["config"]["model"]["unet_max_channels"] = 32
    torch.save(data, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_system(tmp_path / "other.ckpt")
    bad = tmp_path / "corrupt.ckpt"
    bad.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"not a readable checkpoint \(truncated or damaged: its zip archive is incomplete\)$"):
        load_system(bad)
    legacy = tmp_path / "legacy.ckpt"  # looks like a pre-1.6 pickle: torch warns of its "protocol" first
    legacy.write_bytes(b"\x80" + np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with warnings.catch_warnings(record=True) as said, pytest.raises(CheckpointError, match="not a readable"):
        warnings.simplefilter("always")
        load_system(legacy)
    assert not said
    pickled = tmp_path / "list.pkl"  # a plain pickle: torch's "Weights only load failed" and its advice
    import pickle

    pickled.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(CheckpointError, match=r"not a readable checkpoint \(torch's safe loader refused it: not a "
                                              r"checkpoint that tribert or Lightning wrote\)$"):
        load_system(pickled)
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"not a readable checkpoint \(not a file torch.save wrote\)$"):
        load_system(text)
    with pytest.raises(CheckpointError, match="a folder, not a checkpoint file"):
        load_system(run)
    with pytest.raises(CheckpointError, match="not found"):
        load_system(tmp_path / "missing.ckpt")


def test_unknown_config_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="unknown key train.learning_rate") as err:
        Config.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    path.write_text("model:\n  layers: 3\n")
    with pytest.raises(ConfigError, match="unknown key model.layers"):
        Config.load(path)


def test_nan_loss_stops_with_the_step_and_keeps_the_checkpoint(data_root, tmp_path, monkeypatch):
    config = tiny_config(data_root, "train.epoch_size=2", "train.max_steps=1")
    run = train(config, runs_dir=tmp_path / "runs", name="nan", progress=False)
    last = run / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    original = SeparationSystem.losses

    def poisoned(self, batch, out, mask_logits):
        losses = original(self, batch, out, mask_logits)
        losses["loss"] = losses["loss"] * float("nan")
        return losses

    monkeypatch.setattr(SeparationSystem, "losses", poisoned)
    with pytest.raises(TribertError, match="loss is nan at step 1"):
        train(tiny_config(data_root, "train.epoch_size=2", "train.max_steps=3"), resume=run, progress=False)
    assert last.read_bytes() == before


def test_padding_sources_are_skipped_without_changing_real_masks(data_root):
    config = tiny_config(data_root)
    system = SeparationSystem(config).eval()
    batch = next(iter(train_loader(config)))
    inputs = batch.video_inputs()
    assert not bool(inputs["valid"].all())  # solos leave a padding slot
    with torch.no_grad():
        full = system.model(**{**inputs, "valid": None}).mask_logits
        packed = system.model(**inputs).mask_logits
    valid = inputs["valid"]
    torch.testing.assert_close(packed[valid], full[valid], rtol=1e-4, atol=1e-5)
    assert torch.all(packed[~valid] == 0)


def test_lr_schedule_warm_up_then_linear_decay_to_zero():
    from tribert.config import TrainConfig
    from tribert.engine.system import lr_factor

    tc = TrainConfig(max_steps=100, warmup_frac=0.1, schedule="linear")
    assert lr_factor(0, tc) == pytest.approx(0.1) and lr_factor(9, tc) == pytest.approx(1.0)
    assert lr_factor(10, tc) == pytest.approx(1.0) and lr_factor(55, tc) == pytest.approx(0.5)
    assert lr_factor(100, tc) == 0.0
    assert lr_factor(50, TrainConfig(max_steps=100, warmup_frac=0.0, schedule="constant")) == 1.0
    with pytest.raises(ConfigError, match="max_steps"):
        Config.load(overrides=["train.schedule=linear"])


def test_a_linear_schedule_in_a_time_bound_run_follows_the_minutes():
    from tribert.config import TrainConfig
    from tribert.engine.system import lr_factor

    tc = TrainConfig(max_minutes=10, warmup_frac=0.1, schedule="linear")
    # the step does not matter here, the fraction of the budget spent does
    assert lr_factor(5000, tc, budget_spent=0.05) == pytest.approx(0.5)
    assert lr_factor(0, tc, budget_spent=0.55) == pytest.approx(0.5)
    assert lr_factor(7, tc, budget_spent=1.0) == 0.0
    whole = TrainConfig(max_minutes=10, warmup_frac=1.0, schedule="linear")  # warm-up over the whole budget
    assert lr_factor(0, whole, budget_spent=0.5) == pytest.approx(0.5) and lr_factor(0, whole, budget_spent=1.0) == 0.0
    with pytest.raises(ConfigError, match="warmup_frac"):
        Config.load(overrides=["train.warmup_frac=1.5"])
    # a constant schedule, or a run with max_steps, keeps its step-based factor
    assert lr_factor(5, TrainConfig(max_minutes=10, warmup_frac=0.0), budget_spent=0.9) == 1.0
    assert lr_factor(50, TrainConfig(max_steps=100, warmup_frac=0.0, schedule="linear"),
                     budget_spent=0.9) == pytest.approx(0.5)


def test_a_time_bound_linear_run_ends_near_zero_learning_rate(data_root, tmp_path):
    run = train(tiny_config(data_root, "train.schedule=linear", "train.max_minutes=0.08", "train.epoch_size=2"),
                runs_dir=tmp_path, name="linear", progress=False)
    with open(run / "metrics.csv") as f:
        lrs = [float(r["train/lr"]) for r in csv.DictReader(f) if r.get("train/lr")]
    assert len(lrs) >= 5, lrs  # several steps in ~5 s
    assert lrs[0] > 0.8e-3 and lrs[-1] < 0.3e-3, (lrs[0], lrs[-1])  # lr 1e-3, down to near zero
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_biases_and_norm_weights_are_not_decayed(data_root):
    system = SeparationSystem(tiny_config(data_root, "train.weight_decay=0.1"))
    groups = system.configure_optimizers()["optimizer"].param_groups
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    norm = system.model.transformer.embed["vision"].norm
    assert id(norm.weight) not in decayed and id(norm.bias) not in decayed
    assert id(system.model.transformer.embed["vision"].proj.weight) in decayed


def _grad_norm(params) -> float:
    return torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])).item()


@pytest.mark.parametrize("apart", [False, True])
def test_the_separator_is_clipped_apart_from_the_encoders_only_when_asked(data_root, apart):
    system = SeparationSystem(tiny_config(data_root, f"train.clip_separator_apart={str(apart).lower()}"))
    separator = [p for n, p in system.model.named_parameters() if n.startswith(("separator.", "motion."))]
    rest = [p for n, p in system.model.named_parameters() if not n.startswith(("separator.", "motion."))]
    assert separator and rest
    for p in separator:
        p.grad = torch.full_like(p, 10.0)  # far over the clip
    for p in rest:
        p.grad = torch.full_like(p, 1.0)
    scale = 0.5 / _grad_norm(rest)
    for p in rest:
        p.grad *= scale  # norm 0.5: under the clip of 1.0
    system.configure_gradient_clipping(None, gradient_clip_val=1.0)
    if apart:  # each group on its own: the separator down to 1.0, the encoders' 0.5 untouched
        assert _grad_norm(separator) == pytest.approx(1.0, rel=1e-4)
        assert _grad_norm(rest) == pytest.approx(0.5, rel=1e-4)
    else:  # one global norm: the separator's size scales the encoders down with it
        assert _grad_norm(separator + rest) == pytest.approx(1.0, rel=1e-4)
        assert _grad_norm(rest) < 0.01


def test_coattention_is_clipped_apart_from_the_encoders_and_the_separator_when_asked(data_root):
    system = SeparationSystem(tiny_config(data_root, "model.coattention=true", "train.clip_separator_apart=true",
                                          "train.clip_coattention_apart=true"))
    named = list(system.model.named_parameters())
    co = [p for n, p in named if ".co_blocks." in n]
    separator = [p for n, p in named if n.startswith(("separator.", "motion."))]
    rest = [p for n, p in named if ".co_blocks." not in n and not n.startswith(("separator.", "motion."))]
    assert co and separator and rest
    for group, size in ((co, 10.0), (separator, 10.0), (rest, 1.0)):
        for p in group:
            p.grad = torch.full_like(p, size)
    scale = 0.5 / _grad_norm(rest)
    for p in rest:
        p.grad *= scale  # norm 0.5: under the clip of 1.0
    system.configure_gradient_clipping(None, gradient_clip_val=1.0)
    assert _grad_norm(co) == pytest.approx(1.0, rel=1e-4)
    assert _grad_norm(separator) == pytest.approx(1.0, rel=1e-4)
    assert _grad_norm(rest) == pytest.approx(0.5, rel=1e-4)  # co-attention's size did not scale it


def _separator_after_steps(config: Config, batch: MixBatch, steps: int = 3) -> dict:
    """The separator's weights after ``steps`` engine updates (AdamW, clipping) on one batch."""
    torch.manual_seed(0)
    system = SeparationSystem(config)
    opt = system.configure_optimizers()["optimizer"]
    for _ in range(steps):
        out, mask_logits = system(batch)
        opt.zero_grad()
        system.losses(batch, out, mask_logits)["loss"].backward()
        system.configure_gradient_clipping(opt, gradient_clip_val=config.train.grad_clip)
        opt.step()
    return {k: v.detach().clone() for k, v in system.model.state_dict().items() if k.startswith("separator.")}


@pytest.mark.parametrize("paired", [False, True])
def test_paired_fields_train_the_same_separator_with_and_without_co_attention(data_root, paired):
    # With the true class in the condition in training (class_teacher_forcing 1), the separation
    # loss never reaches the transformer: the co-attention ablation can then differ only in the
    # test-time class posteriors, once the U-Net's draw and its clipping no longer depend on it.
    fields = ["model.class_teacher_forcing=1.0", "model.condition_classes=posteriors_only"]
    if paired:
        fields += ["model.separator_own_init=true", "train.clip_separator_apart=true"]
    base = tiny_config(data_root, *fields)
    assert base.model.coattention
    batch = next(iter(train_loader(base)))
    with_co = _separator_after_steps(base, batch)
    without = _separator_after_steps(tiny_config(data_root, *fields, "model.coattention=false"), batch)
    identical = all(torch.equal(with_co[k], without[k]) for k in with_co)
    assert identical == paired


def test_fixed_mixture_list_is_keyed_by_crop_and_clips_and_survives_a_read_only_folder(data_root, tmp_path,
                                                                                      monkeypatch):
    from pathlib import Path

    from tribert.engine.train import mixture_list_for

    monkeypatch.setenv("TRIBERT_CACHE", str(tmp_path / "cache"))
    short = mixture_list_for(data_root, tiny_config(data_root), seed=0)
    long = mixture_list_for(data_root, tiny_config(data_root, "audio.crop_samples=16383"), seed=0)
    assert len(list(data_root.glob("mixtures-*.csv"))) == 2  # one list per crop length
    # offsets are centred crops: a longer crop starts earlier in the same 2-s clips
    assert all(a > b for s, l in zip(short, long) for a, b in zip(s.offsets, l.offsets))
    # another set of clips gets its own list
    make_clip(data_root, "extra", ["flute"], [880.0])
    assert len(mixture_list_for(data_root, tiny_config(data_root), seed=0)) == 5
    # a read-only data folder (simulated: root may write anywhere): the list goes to the cache
    import tribert.engine.train as engine_train

    before = sorted(p.name for p in data_root.iterdir())
    monkeypatch.setattr(engine_train.os, "access", lambda path, mode: Path(path) != data_root)
    specs = mixture_list_for(data_root, tiny_config(data_root, "audio.crop_samples=4095"), seed=0)
    assert len(specs) == 5 and sorted(p.name for p in data_root.iterdir()) == before
    assert len(list((tmp_path / "cache" / "mixtures").glob("*.csv"))) == 1


def test_reference_rows_are_cached_per_batch_and_miss_when_the_mixtures_change(data_root, tmp_path, monkeypatch):
    from tribert.engine import evaluate as ev
    from tribert.engine.train import eval_loader

    config = tiny_config(data_root)
    system = SeparationSystem(config).eval()
    batches = list(eval_loader(config, data_root))
    cache = tmp_path / "refs.json"
    first = ev.evaluate({"m": system}, batches, progress=False, cache=cache)
    assert cache.is_file()
    calls = []
    real = ev.oracle_wavs
    monkeypatch.setattr(ev, "oracle_wavs", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = ev.evaluate({"m": system}, batches, progress=False, cache=cache)
    assert again == first and not calls  # the oracle rows came from the cache
    import tribert

    monkeypatch.setattr(tribert, "__version__", "0.0.0-another-release")  # its STFT or metric code may differ
    ev.evaluate({"m": system}, batches, progress=False, cache=cache)
    assert calls  # recomputed
    calls.clear()
    monkeypatch.undo()
    monkeypatch.setattr(ev, "oracle_wavs", lambda *a, **k: calls.append(1) or real(*a, **k))
    louder = [b.replace(mix_wav=b.mix_wav * 2, source_wavs=b.source_wavs * 2) for b in batches]
    ev.evaluate({"m": system}, louder, progress=False, cache=cache)
    assert calls  # other mixtures: recomputed
    assert list(ev.evaluate({}, batches, progress=False, cache=cache, config=config)) == ["mixture", "IBM", "IRM"]


def test_a_damaged_or_unwritable_reference_cache_is_recomputed_never_trusted_or_fatal(data_root, tmp_path, caplog):
    """The cache only saves time: a truncated file, another program's JSON, an entry of the wrong
    shape or a cache that cannot be written gives the scores a fresh run gives, with a warning."""
    import json

    from tribert.engine import evaluate as ev
    from tribert.engine.train import eval_loader

    config = tiny_config(data_root)
    system = SeparationSystem(config).eval()
    batches = list(eval_loader(config, data_root))
    fresh = ev.evaluate({"m": system}, batches, progress=False)  # no cache
    cache = tmp_path / "refs.json"
    for damage in ('{"abc": ', "[1, 2]", "\xff\xfe"):
        cache.write_bytes(damage.encode("latin-1"))
        with caplog.at_level("WARNING", logger="tribert"):
            assert ev.evaluate({"m": system}, batches, progress=False, cache=cache) == fresh
        assert "refs.json: corrupt evaluation cache (" in caplog.text and "recomputed" in caplog.text
        assert isinstance(json.loads(cache.read_text()), dict)  # replaced by a good one
        caplog.clear()
    good = json.loads(cache.read_text())

    def damaged(change):  # every entry's mixture row, changed by hand
        entries = json.loads(json.dumps(good))
        for entry in entries.values():
            change(entry["mixture"])
        return entries

    def first_group(row):
        return row["single"] if row["single"]["sdr"] else row["multi"]

    damages = {"not scores": lambda row: row.update(single={"sdr": "x"}),
               "numbers as text": lambda row: first_group(row).update(sdr=[str(x) for x in first_group(row)["sdr"]]),
               "a list cut short": lambda row: first_group(row)["sir"].pop(),
               "a NaN score": lambda row: first_group(row)["sar"].__setitem__(0, float("nan")),
               "a group missing": lambda row: row.pop("same_class"),
               "a group more": lambda row: row.update(trio=row["single"]),
               "a count as true": lambda row: row["single"].update(mixtures=True),
               # lists of one length and right types, but one score more than the batch has sources
               "a source more": lambda row: [first_group(row)[k].append(0.0) for k in ("sdr", "sir", "sar")],
               "a source fewer": lambda row: [first_group(row)[k].pop() for k in ("sdr", "sir", "sar")],
               "a mixture more": lambda row: first_group(row).update(mixtures=first_group(row)["mixtures"] + 1),
               "a skipped mixture more": lambda row: first_group(row).update(skipped=first_group(row)["skipped"] + 1)}
    for what, change in damages.items():
        cache.write_text(json.dumps(damaged(change)))
        with caplog.at_level("WARNING", logger="tribert"):
            assert ev.evaluate({"m": system}, batches, progress=False, cache=cache) == fresh, what
        assert "wrong shape" in caplog.text, what
        caplog.clear()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with caplog.at_level("WARNING", logger="tribert"):
        assert ev.evaluate({"m": system}, batches, progress=False, cache=blocked / "refs.json") == fresh
    assert "not written" in caplog.text and "corrupt" not in caplog.text


def test_the_fixed_mixture_list_follows_a_clip_prepared_again_at_another_length(data_root, tmp_path, monkeypatch):
    """The list's crops are centred on each clip's length: a clip prepared again (same id, another
    length) gets a new list, not crops centred on the old one."""
    import shutil

    from tribert.data.clip import Clip
    from tribert.engine.train import mixture_list_for

    monkeypatch.setenv("TRIBERT_CACHE", str(tmp_path / "cache"))
    config = tiny_config(data_root)
    before = {s.clip_ids[0]: s.offsets[0] for s in mixture_list_for(data_root, config, seed=0)}
    first = sorted(p for p in data_root.iterdir() if p.is_dir())[0]
    labels = Clip(first).meta.labels
    shutil.rmtree(first)
    make_clip(data_root, first.name, labels, [440.0] * len(labels), seconds=3.0)  # only the length changes
    after = {s.clip_ids[0]: s.offsets[0] for s in mixture_list_for(data_root, config, seed=0)}
    centred = (round(3.0 * config.audio.sample_rate) - config.audio.crop_samples) // 2
    assert before[first.name] != centred and after[first.name] == centred
    assert len(list(data_root.glob("mixtures-*.csv"))) == 2


def test_a_fixed_mixture_list_cut_short_is_made_again_not_scored_silently(data_root, tmp_path, monkeypatch, caplog):
    """A list file whose last rows are lost (a full disk, an interrupted copy) parses fine: it
    must not score fewer mixtures than the folder has clips."""
    from tribert.engine.train import mixture_list_for

    monkeypatch.setenv("TRIBERT_CACHE", str(tmp_path / "cache"))
    config = tiny_config(data_root)
    full = mixture_list_for(data_root, config, seed=0)
    (path,) = data_root.glob("mixtures-*.csv")
    lines = path.read_text().splitlines(keepends=True)
    partner = lines[-1].split(",")[1].split(";")[1]
    unknown = lines[:-1] + [lines[-1].replace(f";{partner},", ";oboe,")]  # a clip the folder does not have
    first = lines[1].split(",")
    values = [[lines[0], ",".join([first[0], first[1], offsets, first[3]]), *lines[2:]]
              for offsets in ("-5000;0", "99999999;0")]  # outside the clip
    values += [[lines[0], ",".join([*first[:3], gains]) + "\n", *lines[2:]] for gains in ("0;0", "nan;1")]
    renamed = [lines[0], lines[1], lines[2].replace(lines[2].split(",")[0], first[0]), *lines[3:]]  # a name twice
    for damage in (lines[:-2], [lines[0], *lines[1:-1], lines[1]], unknown, *values, renamed):
        path.write_text("".join(damage))
        with caplog.at_level("WARNING", logger="tribert"):
            assert mixture_list_for(data_root, config, seed=0) == full
        assert "is damaged" in caplog.text and "made again" in caplog.text
        caplog.clear()
        assert path.read_text() == "".join(lines)  # and kept whole again


def test_rows_are_scored_together_and_a_silent_reference_is_skipped_in_every_row(rng):
    """score_rows scores all rows of a batch in one call per source count; a mixture with a silent
    reference is counted as skipped in every row, the others scored as mir_eval scores them."""
    from tribert.engine import evaluate as ev

    refs = torch.as_tensor(rng.standard_normal((3, 2, 4000)))
    refs[1, 1] = 0  # mixture 1: a silent source
    valid = torch.ones(3, 2, dtype=torch.bool)
    valid[2, 1] = False  # mixture 2: a single source
    z = torch.zeros  # fields the scoring does not read: B = 3 mixtures of N = 2 one-slot videos
    batch = MixBatch(mix_wav=refs.sum(1), mix_mag=z(3, 1, 1, 1), mix_logmag=z(3, 1, 1, 1), weight=z(3, 1, 1, 1),
                     source_wavs=refs, source_mags=z(3, 2, 1, 1, 1), masks=z(3, 2, 1, 1, 1),
                     source_video=torch.arange(2).repeat(3, 1), source_object=torch.full((3, 2), -1),
                     source_label=torch.zeros(3, 2, dtype=torch.long), source_valid=valid,
                     frames=z(3, 2, 1, 3, 1, 1), pose=z(3, 2, 1, 1, 68, 3), labels=z(3, 2, 1))
    rows = {name: refs + scale * torch.as_tensor(rng.standard_normal(refs.shape)) for name, scale in
            (("noisy", 0.5), ("clean", 0.1))}
    scored: dict = {}
    ev.score_rows(scored, rows, batch, 4000, "fast")
    for name, est in rows.items():
        single = scored[name]["single"]
        assert (single.mixtures, single.skipped, len(single.sdr)) == (2, 1, 3)
        want = bss_eval(refs[0], est[0], "mir_eval")[0]
        np.testing.assert_allclose(single.sdr[:2], want, atol=0.01)
        assert single.sir[2] == float("inf")  # one source: no interference
    assert np.mean(scored["clean"]["single"].sdr) > np.mean(scored["noisy"]["single"].sdr) + 5


def test_checkpoints_last_and_kept_steps_only(data_root, tmp_path):
    run = train(tiny_config(data_root, "train.epoch_size=2", "train.max_steps=4", "train.save_every_steps=1",
                            "train.keep_every_steps=2"), runs_dir=tmp_path / "runs", progress=False)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["last.ckpt", "step000002.ckpt", "step000004.ckpt"], names  # no per-epoch copies
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4


def test_kept_steps_in_a_run_bounded_by_epochs_not_steps(data_root, tmp_path):
    """train.keep_every_steps needs no train.max_steps: a run that ends by epochs (or by time, as
    the SynthMUSIC recipes do) keeps its step<N>.ckpt too."""
    run = train(tiny_config(data_root, "train.epoch_size=2", "train.max_steps=0", "train.max_epochs=2",
                            "train.keep_every_steps=1"), runs_dir=tmp_path / "runs", progress=False)
    final = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert final >= 2 and names == ["last.ckpt", *(f"step{n:06d}.ckpt" for n in range(1, final + 1))], names


def test_validation_keeps_best_ckpt_beside_last(data_root, tmp_path):
    run = train(tiny_config(data_root, "train.epoch_size=2", "train.max_steps=2", f"data.val_dir={data_root}",
                            "train.val_mixtures=2"), runs_dir=tmp_path / "runs", progress=False)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["best.ckpt", "last.ckpt"], names
    with open(run / "metrics.csv") as f:
        assert any(r.get("val/sdr") for r in csv.DictReader(f))


def test_a_run_without_an_end_is_refused(data_root, tmp_path):
    with pytest.raises(ConfigError, match="no end"):
        train(tiny_config(data_root, "train.max_steps=-1"), runs_dir=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists()  # refused before a run folder is made


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ""])
def test_a_run_name_that_is_a_path_is_refused(data_root, tmp_path, name):
    with pytest.raises(TribertError, match="--name must be a plain folder name"):
        train(tiny_config(data_root, "train.max_steps=1"), runs_dir=tmp_path / "runs", name=name, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips"]  # nothing made, inside or beside runs/


def test_the_progress_bar_names_the_epoch_without_a_negative_last_one():
    from types import SimpleNamespace

    from tribert.engine.train import TrainBar

    bar = TrainBar()
    bar._trainer = SimpleNamespace(max_epochs=-1)  # a run that ends on steps or minutes
    assert bar._get_train_description(3).strip() == "Epoch 3"
    bar._trainer = SimpleNamespace(max_epochs=10)
    assert bar._get_train_description(3).strip() == "Epoch 3/9"  # Lightning's own, 0-based


def test_a_run_that_fails_before_its_first_step_leaves_no_run_folder(data_root, tmp_path):
    # the sampler refuses an epoch shorter than a batch when training starts (inside Lightning's fit)
    with pytest.raises(ConfigError, match="less than one step"):
        train(tiny_config(data_root, "train.epoch_size=1", "train.max_steps=2"), runs_dir=tmp_path / "runs",
              progress=False)
    assert list((tmp_path / "runs").iterdir()) == []
    (data_root / "flute" / "audio.wav").write_bytes(b"RIFF but not a wav file")  # read by the first batch
    with pytest.raises(TribertError, match="flute"):
        train(tiny_config(data_root, "train.epoch_size=8", "train.max_steps=2"), run_dir=tmp_path / "mine",
              progress=False)
    assert not (tmp_path / "mine").exists() and list((tmp_path / "runs").iterdir()) == []


def test_training_clips_without_a_class_label_are_counted_in_a_warning(tmp_path, caplog):
    """Clips prepared from unclassed folders trained silently with no class supervision."""
    root = tmp_path / "clips"
    for i, freq in enumerate((440.0, 660.0, 550.0)):
        make_clip(root, f"c{i}", ["violin"] if i == 0 else [], [freq])
    with caplog.at_level("WARNING", logger="tribert"):
        train_loader(tiny_config(root))
    assert f"2 of 3 training clips in {root} have no class label" in caplog.text
    labelled = tmp_path / "labelled"
    for i, freq in enumerate((440.0, 660.0)):
        make_clip(labelled, f"c{i}", ["violin"], [freq])
    caplog.clear()
    with caplog.at_level("WARNING", logger="tribert"):
        train_loader(tiny_config(labelled))
    assert "no class label" not in caplog.text


def test_data_every_item_would_fail_on_is_refused_before_the_run_folder(data_root, tmp_path):
    from tribert.data.clip import read_meta, write_meta

    one = tmp_path / "one"
    make_clip(one, "violin", ["violin"], [440.0])
    with pytest.raises(TribertError, match=r"one: need at least 2 clips to mix \(data.num_mix\), found 1"):
        train(tiny_config(one, "train.max_steps=1"), runs_dir=tmp_path / "runs", progress=False)
    meta = read_meta(data_root / "cello")
    meta.sample_rate = 8000
    write_meta(data_root / "cello", meta)
    with pytest.raises(TribertError, match="cello: clip audio is 8000 Hz, config wants 11025 Hz"):
        train(tiny_config(data_root, "train.max_steps=1"), runs_dir=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ConfigError, match="data.classes has 1 class"):
        tiny_config(data_root, "data.classes=[violin]")


def test_two_process_ddp_follows_one_process_with_the_combined_batch(data_root, tmp_path):
    """2 processes x batch 2 (gloo) take the steps of 1 process x batch 4 on the same mixtures: the
    logged loss (the mean over processes) follows the 1-process trajectory. Measured: 0.1 % apart at
    step 1 (same weights and data; only BatchNorm's per-process batch statistics differ), at most
    3 % over 6 AdamW steps; a 1-process run on half of each batch is up to 15 % away."""
    import csv
    import subprocess
    import sys

    def losses(name: str, devices: int, batch: int) -> list[float]:
        cmd = [sys.executable, "-m", "tribert.cli", "train", "--config", "synth_tiny", "--runs-dir",
               str(tmp_path / name), "--set", "train.accelerator=cpu", "--set", f"data.train_dir={data_root}",
               "--set", f"train.batch_size={batch}", "--set", "train.max_steps=6", "--set", "train.epoch_size=24",
               "--set", "train.log_every=1"]
        if devices > 1:
            cmd += ["--devices", str(devices), "--set", "train.strategy=ddp"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        folders = list((tmp_path / name).iterdir())
        assert len(folders) == 1  # under DDP rank 0 makes the run folder and the spawned rank joins it
        assert (folders[0] / "checkpoints" / "last.ckpt").is_file() and (folders[0] / "run.json").is_file()
        with open(folders[0] / "metrics.csv") as f:
            return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]

    ddp, combined, half = losses("ddp", 2, 2), losses("one", 1, 4), losses("half", 1, 2)
    assert len(ddp) == len(combined) == 6
    gap = [abs(a - b) / b for a, b in zip(ddp, combined)]
    assert gap[0] < 0.01 and max(gap) < 0.06, gap
    assert max(abs(a - b) / b for a, b in zip(half, combined)) > 0.06  # the check tells data apart


def test_checkpoint_saves_do_not_make_lightning_log(data_root, tmp_path):
    """Every last.ckpt / step checkpoint save used to print Lightning's "`weights_only` was not set"
    line (13 times in one demo run), and every run start an advert for litlogger."""
    import logging

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    loggers = [logging.getLogger("lightning.pytorch.trainer.connectors.checkpoint_connector"),
               logging.getLogger("lightning.pytorch.utilities.rank_zero")]
    handler, levels = Keep(), [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    try:
        run = train(tiny_config(data_root, "train.max_steps=2", "train.save_every_steps=1",
                                "train.checkpoint_steps=[1]"), runs_dir=tmp_path / "runs", progress=False)
        # The advert filter lives only as long as the call: the caller's logger is as it was.
        loggers[1].info("try installing [litlogger]")
    finally:
        for lg, level in zip(loggers, levels):
            lg.removeHandler(handler)
            lg.setLevel(level)
    assert (run / "checkpoints" / "step000001.ckpt").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert not [r for r in records if "weights_only" in r.getMessage()]
    assert [r.getMessage() for r in records if "litlogger" in r.getMessage()] == ["try installing [litlogger]"]
    assert any("GPU available" in r.getMessage() for r in records)  # the logger was listened to


def test_a_non_finite_loss_is_remembered_on_the_device_and_no_checkpoint_is_written(data_root, tmp_path):
    # On a GPU the step only flags a bad loss (no host sync); the flag is read every log_every
    # steps and before every checkpoint write, so weights a bad step touched are never saved.
    from types import SimpleNamespace

    from tribert.engine.train import LastCheckpoint

    system = SeparationSystem(tiny_config(data_root))
    system.check_finite()  # nothing flagged yet
    for value in (1.5, float("nan"), float("inf"), 2.0):
        system._flag_nonfinite(torch.tensor(value))
    with pytest.raises(TribertError, match="loss is nan at step 0"):  # the first bad loss is named
        system.check_finite()
    path = tmp_path / "last.ckpt"
    with pytest.raises(TribertError, match="loss is nan"):
        LastCheckpoint(path, every=1).save(SimpleNamespace(lightning_module=system))
    assert not path.exists() and not path.with_name("last.ckpt.tmp").exists()


def test_gradient_clipping_works_with_any_optimiser(data_root):
    # Lightning's mixed-precision plugin refuses to clip for a fused AdamW; the system clips itself.
    system = SeparationSystem(tiny_config(data_root))
    params = [p for p in system.parameters() if p.requires_grad]
    for i, p in enumerate(params):
        p.grad = torch.full_like(p, 0.1 * (i % 3 + 1))
    before = torch.cat([p.grad.flatten() for p in params]).norm()
    assert before > 5
    system.configure_gradient_clipping(None, gradient_clip_val=1.0)
    after = torch.cat([p.grad.flatten() for p in params])
    assert after.norm() == pytest.approx(1.0, rel=1e-4)
    direction = torch.cat([torch.full_like(p, 0.1 * (i % 3 + 1)).flatten() for i, p in enumerate(params)])
    assert torch.allclose(after, direction / before, rtol=1e-4)  # scaled, not reshaped


@pytest.mark.parametrize("setting", ["train.channels_last=true", "train.compile=true", "train.cuda_graph=true"])
def test_gpu_only_settings_are_refused_on_the_cpu(data_root, tmp_path, setting):
    config = tiny_config(data_root, setting, "train.max_steps=1")
    with pytest.raises(ConfigError, match="is a GPU setting"):
        train(config, runs_dir=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists()  # refused before a run folder is made


def test_a_gpu_run_on_a_machine_without_one_is_one_line_before_the_run_folder(data_root, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a GPU machine
    config = tiny_config(data_root, "train.accelerator=gpu", "train.max_steps=1")
    with pytest.raises(ConfigError, match="train.accelerator is gpu, but this torch .* sees no CUDA GPU"):
        train(config, runs_dir=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists()


def test_a_trainer_that_cannot_be_built_leaves_no_run_folder(data_root, tmp_path, monkeypatch):
    # Lightning refuses some settings only when the Trainer is built, after the run folder is made
    def refuse(**kwargs):
        raise ValueError("a setting Lightning refuses")

    monkeypatch.setattr(train_module.L, "Trainer", refuse)
    with pytest.raises(ValueError, match="Lightning refuses"):
        train(tiny_config(data_root, "train.max_steps=1"), runs_dir=tmp_path / "runs", progress=False)
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_fine_tuning_rate_without_a_checkpoint_to_fine_tune_is_warned(data_root, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="tribert.engine.train"):
        train(tiny_config(data_root, "train.lr=1e-7", "train.max_steps=1"), runs_dir=tmp_path / "runs", progress=False)
    assert "train.lr is 1e-07 with no train.init_from" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="tribert.engine.train"):
        train(tiny_config(data_root, "train.max_steps=1"), runs_dir=tmp_path / "runs", progress=False)
    assert "init_from" not in caplog.text


def test_the_speed_benchmark_batch_has_the_loader_shapes_and_its_rows_run(data_root):
    train_speed = benchmark("train_speed")

    config = tiny_config(data_root, "train.batch_size=3")
    real = next(iter(train_loader(config)))
    fake = train_speed.random_batch(config, 3, "cpu")
    assert {k: v.shape for k, v in fake.tensors().items()} == {k: v.shape for k, v in real.tensors().items()}
    assert {k: v.dtype for k, v in fake.tensors().items()} == {k: v.dtype for k, v in real.tensors().items()}
    row = train_speed.measure(config, {"bf16": True, "fused": True, "no_sync": True}, fake, "cpu", warmup=1, steps=2)
    assert row["ms_per_step"] > 0 and row["mixtures_per_s"] > 0
    graph = train_speed.row_settings(6)
    assert graph["cuda_graph"] and not train_speed.row_settings(7)["cuda_graph"]  # compile replaces it
    row = train_speed.measure(config, graph, fake, "cpu", warmup=4, steps=2)  # the static path on a CPU
    assert row["ms_per_step"] > 0
    with pytest.raises(SystemExit, match="--warmup"):
        train_speed.measure(config, graph, fake, "cpu", warmup=3, steps=2)


def test_channels_last_leaves_the_stgcn_in_nchw(data_root):
    # Built only (the CPU refuses to train with it): NHWC weights in the convolutional nets, but
    # not in the ST-GCN, whose graph mixing would turn every block's tensor back.
    system = SeparationSystem(tiny_config(data_root, "train.channels_last=true"))
    def convs(module):  # several input channels and a kernel wider than 1 x 1: where the layouts differ
        return [m.weight for m in module.modules()
                if isinstance(m, torch.nn.Conv2d) and m.weight.shape[1] > 1 and m.weight[0, 0].numel() > 1]
    visual, separator, stgcn = (convs(m) for m in (system.model.visual, system.model.separator,
                                                    system.model.pose.stgcn))
    assert visual and separator and stgcn
    assert all(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() for w in visual + separator)
    assert all(w.is_contiguous() and not w.is_contiguous(memory_format=torch.channels_last) for w in stgcn)


def test_the_speed_benchmark_stored_pose_rows_train_on_the_stored_features(data_root):
    # --stored-pose times the step of a run on stored features: the batch carries what the frozen
    # ST-GCN gives on its pose, so the loss is the frozen model's, and the ST-GCN never runs.
    train_speed = benchmark("train_speed")

    config = tiny_config(data_root, "train.batch_size=2", "model.pose_frozen=true")
    batch = train_speed.random_batch(config, 2, "cpu")
    losses = []
    for stored in (False, True):
        system, _, _, used = train_speed.build(config, {"stored_pose": stored}, "cpu", batch)
        assert (used.pose_features is not None) == stored
        if stored:
            system.model.pose.stgcn.forward = lambda *a: pytest.fail("the ST-GCN ran on a stored row")
        losses.append(system.losses(used, *system(used))["loss"].item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    with pytest.raises(SystemExit, match="pose_frozen"):
        train_speed.build(tiny_config(data_root, "train.batch_size=2"), {"stored_pose": True}, "cpu", batch)


def test_a_bf16_run_with_the_fused_adamw_clips_and_trains(data_root, tmp_path, monkeypatch):
    # On a GPU the engine uses the fused AdamW; Lightning's bf16 plugin then refused gradient
    # clipping ("does not allow for gradient clipping"), so every bf16 GPU run failed at its first
    # step. The same plugin path runs on the CPU when the fused optimiser is forced here.
    real, made = torch.optim.AdamW, []

    def fused_adamw(params, **kwargs):
        made.append(real(params, **{**kwargs, "fused": True}))
        return made[-1]

    monkeypatch.setattr(torch.optim, "AdamW", fused_adamw)
    config = tiny_config(data_root, "train.precision=bf16-mixed", "train.grad_clip=1.0", "train.max_steps=2",
                         "train.epoch_size=4")
    run = train(config, runs_dir=tmp_path / "runs", progress=False)
    assert made and made[0].defaults["fused"] is True
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_condition_probe_split_accounts_for_every_single_source_sdr(data_root):
    # The per-source split (class named right / wrong x pose / no pose) must partition exactly the
    # sources that the evaluation's single-source row averages, with the same SDRs.
    condition_probe = benchmark("condition_probe")

    from tribert.data.mixing import pose_withheld
    from tribert.engine.evaluate import evaluate
    from tribert.engine.train import eval_loader

    clip_ids = ["violin", "flute", "cello", "duet"]
    fraction = 0.5  # the hash withholds some of the four clips and keeps others (asserted below)
    withheld = [pose_withheld(c, fraction) for c in clip_ids]
    assert any(withheld) and not all(withheld), withheld
    config = tiny_config(data_root, f"data.pose_missing={fraction}")
    torch.manual_seed(0)
    system = SeparationSystem(config).eval()
    batches = list(eval_loader(config, data_root))
    reference = evaluate({"m": system}, batches, oracles=False, mixture=False, progress=False)["m"]["single"]
    split, confusions = condition_probe.single_source_split(system, batches)
    assert reference["sources"] > 0
    assert sum(g["sources"] for g in split.values()) == reference["sources"]
    mean = sum(g["sdr"] * g["sources"] for g in split.values()) / reference["sources"]
    assert abs(mean - reference["sdr"]) < 1e-3, (mean, reference["sdr"])
    assert all(k.split(", ")[0] in ("class right", "class wrong") for k in split), split
    wrong = {k: g["sources"] for k, g in split.items() if k.startswith("class wrong")}
    assert {k: sum(n for _, _, n in pairs) for k, pairs in confusions.items()} == wrong  # every mistake listed
    assert all(t != g for pairs in confusions.values() for t, g, _ in pairs)


def test_the_weight_average_follows_its_decay_and_copies_integer_buffers():
    model = torch.nn.BatchNorm1d(1)
    average = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(3.0)  # the copy still holds 1.0
        model.num_batches_tracked.fill_(7)
    average.update(model, step=0)  # first step: decay min(0.5, 1/10) = 0.1 -> 1 + 0.9 * (3 - 1)
    assert average.module.weight.item() == pytest.approx(2.8)
    assert average.module.num_batches_tracked.item() == 7
    average.update(model, step=1000)  # later: the long-run decay, 0.5 -> halfway to 3
    assert average.module.weight.item() == pytest.approx(2.9)
    assert not average.module.weight.requires_grad
    average.double()  # new tensors (as a move to a GPU gives): the update must follow them
    model.double()
    average.update(model, step=1000)
    assert average.module.weight.item() == pytest.approx(2.95)


def test_a_weight_average_leaves_training_alone_and_is_what_evaluation_reads(data_root, tmp_path):
    steps = ["train.epoch_size=4", "train.max_steps=4"]
    plain = train(tiny_config(data_root, *steps), runs_dir=tmp_path / "runs", name="plain", progress=False)
    ema = train(tiny_config(data_root, *steps, "train.ema_decay=0.9", "train.keep_every_steps=1"),
                runs_dir=tmp_path / "runs", name="ema", progress=False)
    assert _losses(ema) == _losses(plain)  # the average takes no part in the steps
    raw = load_system(plain / "checkpoints" / "last.ckpt").model.state_dict()
    ema_raw = load_system(ema / "checkpoints" / "last.ckpt", weights="raw")
    assert all(torch.equal(v, ema_raw.model.state_dict()[k]) for k, v in raw.items())
    averaged_system = load_system(ema / "checkpoints" / "last.ckpt")
    assert averaged_system.ema is None  # the average is in the model: no second copy kept for inference
    averaged = averaged_system.model.state_dict()
    assert all(torch.equal(v, ema_raw.ema.module.state_dict()[k]) for k, v in averaged.items())
    moved = [k for k, v in averaged.items() if v.is_floating_point() and not torch.equal(v, raw[k])]
    assert len(moved) > len(averaged) // 2  # the average is not the last step's weights
    # ... but it moved towards them after the last step (step 3 counted from 0: decay (1 + 3) / (10 + 3)).
    before = load_system(ema / "checkpoints" / "step000003.ckpt").model.state_dict()
    for k in moved:
        want = before[k] + (1 - 4 / 13) * (raw[k] - before[k])
        torch.testing.assert_close(averaged[k], want, rtol=1e-5, atol=1e-6)
    # Fine-tuning from it starts from the average, and a new average starts there too.
    tuned = SeparationSystem(tiny_config(data_root, "train.ema_decay=0.9"))
    init_weights_from(tuned, ema / "checkpoints" / "last.ckpt")
    for k, v in averaged.items():
        assert torch.equal(tuned.model.state_dict()[k], v)
        assert torch.equal(tuned.ema.module.state_dict()[k], v)


def test_a_weight_average_decay_of_one_is_refused(data_root):
    with pytest.raises(ConfigError, match="train.ema_decay must be in"):
        tiny_config(data_root, "train.ema_decay=1.0")


def test_validation_scores_the_weight_average(data_root, monkeypatch):
    system = SeparationSystem(tiny_config(data_root, "train.ema_decay=0.9")).eval()
    with torch.no_grad():
        for p in system.ema.module.parameters():
            p.mul_(0.5)  # an average unlike the raw weights
    batch = next(iter(train_loader(system.config)))
    logged = {}
    monkeypatch.setattr(system, "log_dict", lambda values, **kw: logged.update(values))
    monkeypatch.setattr(system, "log", lambda name, value, **kw: logged.update({name: value}))
    system.validation_step(batch, 0)
    with torch.no_grad():
        averaged = system.losses(batch, *system(batch, system.ema.module))["loss"]
        raw = system.losses(batch, *system(batch))["loss"]
    assert abs(float(raw) - float(averaged)) > 1e-3
    assert float(logged["val/loss"]) == pytest.approx(float(averaged), rel=1e-6)


def test_a_resumed_run_continues_its_weight_average(data_root, tmp_path):
    two_epochs = ["train.epoch_size=4", "train.max_steps=4", "train.ema_decay=0.9"]
    full = train(tiny_config(data_root, *two_epochs), runs_dir=tmp_path / "runs", name="full", progress=False)
    cut = train(tiny_config(data_root, "train.epoch_size=4", "train.max_steps=2", "train.ema_decay=0.9"),
                runs_dir=tmp_path / "runs", name="cut", progress=False)
    train(tiny_config(data_root, *two_epochs), resume=cut, progress=False)
    a = load_system(full / "checkpoints" / "last.ckpt").model.state_dict()
    b = load_system(cut / "checkpoints" / "last.ckpt").model.state_dict()
    for k, v in a.items():
        torch.testing.assert_close(b[k], v, rtol=1e-5, atol=1e-6)


def test_the_cuda_graph_step_trains_as_the_eager_step(data_root, tmp_path, monkeypatch, caplog):
    # train.cuda_graph on the CPU runs its static-batch path without a graph: the batch copied into
    # the captured tensors, gradients written (not added) by the backward, Lightning's backward and
    # zero_grad left to the captured step, batches of another real-source pattern run eagerly.
    # Every step's loss must be the eager run's (the GPU capture itself needs a GPU:
    # benchmarks/gpu/train_speed.sh runs it).
    import tribert.engine.train as engine_train

    monkeypatch.setattr(engine_train, "check_device_settings", lambda tc, on_gpu: None)
    run = ["train.epoch_size=16", "train.max_steps=8", "train.grad_clip=0.5", "train.ema_decay=0.9"]
    eager = train(tiny_config(data_root, *run), runs_dir=tmp_path / "runs", name="eager", progress=False)
    with caplog.at_level("WARNING", logger="tribert.engine.system"):
        graph = train(tiny_config(data_root, *run, "train.cuda_graph=true"), runs_dir=tmp_path / "runs",
                      name="graph", progress=False)
    a, b = _losses(eager), _losses(graph)
    assert sorted(a) == sorted(b) == list(range(8))
    for step in a:
        assert b[step] == pytest.approx(a[step], rel=1e-5, abs=1e-6), step
    eager_steps = [r.getMessage() for r in caplog.records if "ran eagerly" in r.getMessage()]
    # the duet clip gives some mixtures two real sources: both paths ran after the capture at step 4
    assert eager_steps and 0 < int(eager_steps[0].split()[1]) < 4, eager_steps
    saved = [torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for run in (eager, graph)]
    for key, value in saved[0].items():
        torch.testing.assert_close(saved[1][key], value, rtol=1e-4, atol=1e-6, msg=key)


def test_the_real_source_index_is_cached_per_pattern_for_an_accelerator():
    from tribert.models import base

    valid = torch.tensor([[True, False], [True, True]])
    assert base.real_source_index(valid, torch.device("cpu")).tolist() == [0, 2, 3]
    meta = torch.device("meta")  # stands in for an accelerator: a device other than the CPU
    base._REAL_INDEX.clear()
    first = base.real_source_index(valid, meta)
    assert first.device == meta and first.shape == (3,)
    assert base.real_source_index(valid.clone(), meta) is first  # the same pattern: the same tensor
    assert base.real_source_index(~valid, meta).shape == (1,)
    assert len(base._REAL_INDEX) == 2


def test_a_gpu_run_pins_its_training_batches_and_moves_them_without_blocking(data_root, monkeypatch):
    # On a GPU the loader page-locks each batch (a thread of the loader) and the system copies it
    # with non_blocking=True, so the host goes on launching while the device copies. The CPU
    # build of torch cannot page-lock: the choice and the call are checked here.
    config = tiny_config(data_root)
    assert train_loader(config, pin_memory=True).pin_memory and not train_loader(config).pin_memory
    system = SeparationSystem(config)
    batch = next(iter(train_loader(config)))
    calls = []
    real_to = MixBatch.to

    def spy(self, device, non_blocking=False):
        calls.append((torch.device(device).type, non_blocking))
        return real_to(self, "cpu")

    monkeypatch.setattr(MixBatch, "to", spy)
    for device in ("cpu", "cuda"):
        moved = system.transfer_batch_to_device(batch, torch.device(device), 0)
        assert moved._host_valid is not None  # the host copy of the real sources stays
    assert calls == [("cpu", False), ("cuda", True)]


def test_a_step_that_cannot_be_captured_trains_on_eagerly(data_root, caplog):
    # Where the capture fails (here: the CPU build of torch has no CUDA graphs at all), the run
    # goes on without the graph, warned once, and every step is the eager step.
    from tribert.engine.cuda_graph import CapturedStep

    config = tiny_config(data_root)
    batch = next(iter(train_loader(config)))
    losses = {}
    for mode in ("no graph", "failed capture"):  # no graph: the static-batch path
        torch.manual_seed(0)
        system = SeparationSystem(config)
        opt = torch.optim.AdamW(system.parameters(), lr=1e-3)
        trained = [p for p in system.parameters() if p.requires_grad]
        step = CapturedStep(system._forward_backward, trained, warmup=1, capture=mode == "failed capture")
        with caplog.at_level("WARNING", logger="tribert.engine.cuda_graph"):
            losses[mode] = []
            for _ in range(4):
                losses[mode].append(step(batch)["loss"].item())
                opt.step()
        assert step.graph is None and step.failed == (mode == "failed capture")
    assert losses["failed capture"] == pytest.approx(losses["no graph"], rel=1e-6)
    assert losses["no graph"][-1] < losses["no graph"][0]
    warned = [r.getMessage() for r in caplog.records if "could not be captured" in r.getMessage()]
    assert len(warned) == 1, warned


@pytest.mark.parametrize("extra,message", [
    (["train.compile=true"], "train.cuda_graph and train.compile: choose one"),
    (["train.precision=16-mixed"], "fp16's gradient scaler is not captured"),
])
def test_cuda_graph_settings_it_cannot_run_with_are_refused_on_a_gpu(data_root, extra, message):
    import tribert.engine.train as engine_train

    tc = tiny_config(data_root, "train.cuda_graph=true", *extra).train
    with pytest.raises(ConfigError, match=message):
        engine_train.check_device_settings(tc, on_gpu=True)
    engine_train.check_device_settings(tiny_config(data_root, "train.cuda_graph=true").train, on_gpu=True)
    # fp16 on the CPU gave NaN probabilities and a traceback at the second step; mps off a Mac, Lightning's traceback
    with pytest.raises(ConfigError, match="train.precision 16-true is a GPU setting"):
        engine_train.check_device_settings(tiny_config(data_root, "train.precision=16-true").train, on_gpu=False)
    engine_train.check_device_settings(tiny_config(data_root, "train.precision=bf16-mixed").train, on_gpu=False)
    if not torch.backends.mps.is_available():
        with pytest.raises(ConfigError, match="train.accelerator is mps, but this machine has no Apple GPU"):
            engine_train.check_device_settings(tiny_config(data_root, "train.accelerator=mps").train, on_gpu=False)


def test_the_separation_table_keeps_its_columns_for_a_long_row_name():
    from tribert.engine.evaluate import GROUPS, format_table

    def row(sdr):
        return {g: {"sdr": sdr, "sir": sdr + 1, "sar": sdr + 2, "sources": 2, "mixtures": 1, "skipped": 0}
                for g in GROUPS}

    table = format_table({"mixture": row(0.5), "trained on MediaPipe pose (seed 0)": row(7.25)})
    rows = [line for line in table.splitlines() if "|" in line]  # the header and the two rows
    assert len(rows) == 3 and len({tuple(i for i, ch in enumerate(r) if ch == "|") for r in rows}) == 1, table
    assert "trained on MediaPipe pose (seed 0) |     7.25     8.25     9.25 |" in table


def test_condition_accuracy_is_none_without_a_source_of_known_class(data_root):
    """Clips of unlabelled videos (or duets prepared from videos: no stems) have no class to be right
    about: no top-1 at all, not 0%."""
    from tribert.engine.evaluate import condition_accuracy, evaluate
    from tribert.engine.train import eval_loader

    config = tiny_config(data_root)
    system = SeparationSystem(config).eval()
    batches = list(eval_loader(config, data_root))
    accuracy = condition_accuracy(system, batches)
    assert accuracy is not None and 0 <= accuracy <= 1
    unlabelled = [b.replace(source_label=torch.full_like(b.source_label, -1)) for b in batches]
    assert condition_accuracy(system, unlabelled) is None
    # evaluate counts the same from the scoring's own forward passes (no second pass)
    for given, want in ((batches, accuracy), (unlabelled, None)):
        top1: dict = {}
        evaluate({"m": system}, given, progress=False, condition=top1)
        assert top1 == {"m": want}


def test_a_run_that_diverges_stops_in_one_line(data_root, tmp_path):
    """From a QA pass: train.lr=10 gave a RuntimeError from inside torch's binary_cross_entropy
    (it refuses a NaN probability) instead of the non-finite-loss stop."""
    with pytest.raises(TribertError, match=r"loss is nan at step \d+ \(epoch \d+\): the run diverged"):
        train(tiny_config(data_root, "train.lr=1e4", "train.max_steps=20", "train.epoch_size=4",
                          "train.grad_clip=0"), runs_dir=tmp_path / "runs", progress=False)
