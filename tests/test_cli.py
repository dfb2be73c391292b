"""The CLI end to end on tiny hand-made clips: train -> evaluate -> separate, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from helpers import make_clip
from tribert.cli import app
from tribert.errors import TribertError
from tribert.data.clip import read_wav

runner = CliRunner()
TINY = ["--set", "audio.crop_samples=8191", "--set", "audio.warp_bins=32", "--set", "video.frame_size=32",
        "--set", "video.pose_frames=8", "--set", "train.batch_size=2", "--set", "train.max_steps=3",
        "--set", "train.epoch_size=4"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    clips = root / "clips"
    for cid, labels, freqs in [("violin", ["violin"], [440.0]), ("flute", ["flute"], [1320.0]),
                               ("cello", ["cello"], [110.0]), ("duet", ["violin", "violin"], [330.0, 660.0])]:
        make_clip(clips, cid, labels, freqs)
    res = runner.invoke(app, ["train", "--config", "synth_tiny", "--runs-dir", str(root / "runs"),
                              "--set", f"data.train_dir={clips}", *TINY])
    assert res.exit_code == 0, res.output
    run_dir = next((root / "runs").iterdir())
    return root, clips, run_dir / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("signal_name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_in_a_terminal_stops_training_after_its_step_with_the_resume_command(trained, tmp_path, signal_name,
                                                                                   code):
    """Ctrl-C, or SIGTERM as SLURM and kill -TERM -PGID send it: to the whole process group, the
    loader's workers too (a worker that died of SIGTERM was a 100-line traceback, exit 1)."""
    import os
    import signal
    import time

    _, clips, _ = trained
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "tribert.cli", "train", "--config", "synth_tiny", "--runs-dir", str(runs),
           "--set", f"data.train_dir={clips}", *TINY, "--set", "train.max_steps=100000",
           "--set", "train.max_minutes=3", "--set", "train.save_every_steps=5", "--set", "data.num_workers=2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            # a terminal's SIGINT, not the one a shell's background job ignores
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(runs.glob("*/checkpoints/last.ckpt")):
        time.sleep(0.1)
    assert list(runs.glob("*/checkpoints/last.ckpt")), "no checkpoint in 120 s"
    os.killpg(proc.pid, getattr(signal, signal_name))  # the whole group, loader workers too
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"training did not stop within 60 s of {signal_name}")
    assert proc.returncode == code, err
    run = next(runs.iterdir())
    step = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    said = "Ctrl-C" if signal_name == "SIGINT" else "SIGTERM"
    assert f"training stopped on {said} at step {step}; checkpoints/last.ckpt holds step {step}: " \
           f"continue with `tribert train --resume {run}`" in err.splitlines()[-1]
    assert "Traceback" not in err


def test_evaluate_prints_a_table_and_writes_json(trained):
    root, clips, ckpt = trained
    out = root / "results.json"
    res = runner.invoke(app, ["evaluate", "--checkpoint", str(ckpt), "--data", str(clips), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "single-source" in res.output and "IBM" in res.output and "tribert-tiny" in res.output
    written = json.loads(out.read_text())
    data = written["results"]
    assert set(data) == {"mixture", "IBM", "IRM", "tribert-tiny"}
    # the condition's class top-1, printed and kept (the tiny model's, on a handful of sources)
    accuracy = written["meta"]["condition_accuracy"]["tribert-tiny"]
    assert 0 <= accuracy <= 1 and f"condition class top-1 on the sources of known class: tribert-tiny {accuracy:.1%}" \
        in res.output
    # The oracle binary mask beats the unprocessed mixture on the same mixtures.
    assert data["IBM"]["single"]["sdr"] > data["mixture"]["single"]["sdr"] + 3
    multi = data["mixture"]["multi"]  # a duet brings its two performers, its partner one source
    assert multi["mixtures"] >= 1 and multi["sources"] == 3 * multi["mixtures"]
    # The fixed mixture list was written beside the clips and is reused.
    assert len(list(clips.glob("mixtures-n2-crop8191-seed0-*.csv"))) == 1


def test_separate_two_clips_writes_stems_mp4s_and_figure(trained):
    root, clips, ckpt = trained
    out = root / "separated"
    res = runner.invoke(app, ["separate", str(clips / "violin"), str(clips / "flute"),
                              "--checkpoint", str(ckpt), "--out", str(out)])
    assert res.exit_code == 0, res.output
    for name in ("violin.wav", "violin.mp4", "flute.wav", "flute.mp4", "mixture.wav", "separation.png"):
        assert (out / name).is_file(), name
    stem, sr = read_wav(out / "violin.wav")
    mix, _ = read_wav(out / "mixture.wav")
    assert sr == 11025 and len(stem) == len(mix) == 2 * 11025
    assert np.abs(stem).max() > 0  # audible, not silence


def test_separate_duet_gives_two_performers(trained):
    root, clips, ckpt = trained
    out = root / "duet"
    res = runner.invoke(app, ["separate", str(clips / "duet"), "--checkpoint", str(ckpt), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "duet_person0.wav").is_file() and (out / "duet_person1.wav").is_file()


def test_separate_checks_the_mixture_before_the_checkpoint(trained, tmp_path):
    _, clips, _ = trained
    res = runner.invoke(app, ["separate", str(clips / "duet"), "--mixture", str(tmp_path / "nope.wav"),
                              "--checkpoint", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "out")])
    assert str(res.exception) == f"{tmp_path / 'nope.wav'}: file not found"  # not the checkpoint's error


def test_errors_are_one_line(tmp_path, trained):
    _, clips, _ = trained
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: 3\n")
    proc = subprocess.run([sys.executable, "-m", "tribert.cli", "train", "--config", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "unknown key train.epochs" in proc.stderr
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "tribert.cli", "demo", "--out", str(tmp_path / "demo"),
                           "--set", "train.nope=1"], capture_output=True, text=True)
    assert proc.returncode == 2 and "train.nope" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and not (tmp_path / "demo" / "synth").exists()  # before any data
    assert "data.train_dir" not in proc.stderr  # only what the user typed (the demo's own settings were listed)
    proc = subprocess.run([sys.executable, "-m", "tribert.cli", "demo", "--out", str(tmp_path / "demo"),
                           "--set", "train.max_minutes=1"], capture_output=True, text=True)  # was ignored: 8 minutes
    assert proc.returncode == 2 and "--set train.max_minutes: the demo sets it itself; use --minutes" in proc.stderr
    for args in (["--minutes", "0"], ["--clips", "0"], ["--set", "train.batch_size=0"]):
        proc = subprocess.run([sys.executable, "-m", "tribert.cli", "demo", "--out", str(tmp_path / "demo"), *args],
                              capture_output=True, text=True)
        assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr, args
        assert not (tmp_path / "demo").exists(), args
    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "tribert.cli", "evaluate", "--checkpoint", str(junk),
                           "--data", str(clips)], capture_output=True, text=True)
    assert proc.returncode == 2 and "not a readable checkpoint" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["train", "--resume", "{tmp}/nowhere"], "{tmp}/nowhere: cannot resume: run folder not found"),
    (["train", "--resume", "{tmp}/last.ckpt"], "{tmp}/last.ckpt: cannot resume from a file: give the run folder"),
    (["synth", "--out", "{tmp}/s", "--clips", "1", "--soundfont", "{tmp}"], "{tmp}: is a folder, not a .sf2 soundfont"),
    (["synth", "--out", "{tmp}/s", "--clips", "1", "--workers", "-2"], "--workers must be >= 0"),
    (["synth", "--out", "{tmp}/s", "--clips", "0"], "--clips must be >= 1, got 0"),  # exited 0 with an empty set
    (["synth", "--out", "{tmp}/s", "--clips", "1", "--frame-size", "7"], "--frame-size must be at least 16 pixels, got 7"),
    (["prepare", "{tmp}/missing.mp4", "--out", "{tmp}/p", "--workers", "-2"], "--workers must be >= 0"),
    (["prepare", "{tmp}/missing.mp4", "--out", "{tmp}/p", "--frame-size", "3"], "frame_size must be at least 16 pixels"),
    (["separate", "{tmp}/empty", "--checkpoint", "{tmp}/x.ckpt", "--out", "{tmp}/o"],
     "{tmp}/empty: is a folder but not a prepared clip (no meta.json)"),
])
def test_small_input_mistakes_name_the_real_problem(tmp_path, args, message):
    """From a QA pass: each of these named another problem ('no config.yaml', 'file not found', 'is
    a folder, not a media file') or was taken silently (negative worker counts)."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "last.ckpt").write_text("a checkpoint file where a folder is wanted")
    res = runner.invoke(app, [a.format(tmp=tmp_path) for a in args])
    # synth and prepare print their error and exit 2 themselves; the others raise it to run_main
    said = str(res.exception) if isinstance(res.exception, TribertError) else res.output
    assert res.exit_code != 0 and message.format(tmp=tmp_path) in " ".join(said.split()), res.output
    assert not (tmp_path / "s").exists() and not (tmp_path / "p").exists()


def test_an_empty_wav_is_named_and_a_prepare_where_every_video_failed_leaves_no_folder(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(TribertError, match="empty.wav: not a readable WAV file \\(EOFError\\)"):  # was "()"
        read_wav(tmp_path / "empty.wav")
    for out in (tmp_path / "p", tmp_path / "p" / "q" / "r"):  # OUT and the parents it made
        res = runner.invoke(app, ["prepare", str(tmp_path / "missing.mp4"), "--out", str(out), "--no-pose",
                                  "--splits", "0.5,0,0.5"])
        assert res.exit_code == 1 and "missing.mp4" in res.output
        assert not (tmp_path / "p").exists()  # was left behind, empty
    (tmp_path / "mine").mkdir()  # a folder that was there is kept
    runner.invoke(app, ["prepare", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "mine"), "--no-pose"])
    assert (tmp_path / "mine").is_dir()


def test_bad_training_data_is_one_line_and_leaves_no_run_folder(trained, tmp_path):
    import shutil

    _, clips, _ = trained
    runs = tmp_path / "runs"
    empty = tmp_path / "empty"
    empty.mkdir()
    odd = tmp_path / "odd"  # the training clips, one of them labelled with a class the config lacks
    shutil.copytree(clips, odd)
    meta = json.loads((odd / "flute" / "meta.json").read_text())
    (odd / "flute" / "meta.json").write_text(json.dumps({**meta, "labels": ["kazoo"]}))
    n_clips = sum((d / "meta.json").is_file() for d in odd.iterdir())
    for overrides, line in [
        ([f"data.train_dir={odd}"], f"{odd}: 1 of {n_clips} clips have labels outside the 21 configured classes "
                                    "(data.classes): 'kazoo'; the first: flute"),
        ([f"data.train_dir={tmp_path / 'nowhere'}"], f"{tmp_path / 'nowhere'}: data.train_dir: folder not found"),
        ([f"data.train_dir={clips}", f"data.val_dir={empty}", "train.val_mixtures=4"],
         f"{empty}: data.val_dir: no prepared clips in this folder (prepare a validation split, "
         "or --set train.val_mixtures=0 to train without one)")]:
        sets = [a for o in overrides for a in ("--set", o)]
        proc = subprocess.run([sys.executable, "-m", "tribert.cli", "train", "--config", "synth_tiny",
                               "--runs-dir", str(runs), *sets], capture_output=True, text=True)
        assert proc.returncode == 2 and proc.stderr.strip() == f"error: {line}", proc.stderr
        assert not runs.exists()


def test_resume_needs_only_the_run_folder_and_refuses_changes(trained, tmp_path):
    import os
    import shutil

    root, clips, ckpt = trained
    run = tmp_path / "run"
    shutil.copytree(ckpt.parent.parent, run)

    def tribert(*args):
        return subprocess.run([sys.executable, "-m", "tribert.cli", *args], capture_output=True, text=True)

    proc = tribert("train", "--resume", str(run))  # its own config.yaml: already at max_steps
    assert proc.returncode == 0, proc.stderr
    assert "run folder" in proc.stdout
    assert "Tip:" not in proc.stdout + proc.stderr  # Lightning's advert is not ours to print
    proc = tribert("train", "--resume", str(run), "--set", "train.lr=1")
    assert proc.returncode == 2 and "changes train.lr (0.001 -> 1.0): start a new run" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = tribert("train", "--resume", str(run), "--config", "synth_tiny")
    assert proc.returncode == 2 and "drop --config" in proc.stderr
    proc = tribert("train", "--resume", str(run), "--run-dir", str(tmp_path / "elsewhere"))  # was ignored
    assert proc.returncode == 2 and "drop --run-dir and --name" in proc.stderr
    # trained on for longer from the command line: only where it ends changes
    steps = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    proc = tribert("train", "--resume", str(run), "--set", f"train.max_steps={steps + 2}")
    assert proc.returncode == 0, proc.stderr
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == steps + 2
    assert f"max_steps: {steps + 2}" in (run / "config.yaml").read_text()
    proc = tribert("train")
    assert proc.returncode == 2 and "--config RECIPE" in proc.stderr
    from tribert.engine.checkpoint import export_weights

    export_weights(run / "checkpoints" / "last.ckpt", tmp_path / "export.pt")  # an export put in its place
    shutil.copy(tmp_path / "export.pt", run / "checkpoints" / "last.ckpt")
    proc = tribert("train", "--resume", str(run))
    assert proc.returncode == 2 and "cannot resume from an export" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    (run / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    proc = tribert("train", "--resume", str(run))
    assert proc.returncode == 2 and "last.ckpt" in proc.stderr and "not a readable checkpoint" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    from tribert.engine.train import train
    from tribert.config import Config
    from tribert.errors import TribertError

    with pytest.raises(TribertError):
        train(Config.load(run / "config.yaml"), resume=run, progress=False)
    assert "TRIBERT_RUN_DIR" not in os.environ  # a failed start leaves nothing behind for the next run
    from tribert.data.clip import read_wav

    res = runner.invoke(app, ["separate", str(clips / "violin"), str(clips / "flute"), "--checkpoint", str(ckpt),
                              "--out", str(root / "shared"), "--mask-sharing", "partition"])
    assert res.exit_code == 0, res.output
    mix, _ = read_wav(root / "shared" / "mixture.wav")
    stems = sum(read_wav(root / "shared" / f"{name}.wav")[0] for name in ("violin", "flute"))
    assert np.abs(stems - mix).max() < 1e-3 * np.abs(mix).max()  # shared masks: the stems add up to the mixture


def test_evaluate_several_checkpoints_in_one_table_and_the_threshold(trained, tmp_path):
    """Two checkpoints give two rows beside one set of reference rows (the same weights: the same
    scores); --threshold 0.5 binarises the predicted masks, which moves the model rows only."""
    root, clips, ckpt = trained
    scores = {}
    for name, extra in (("soft", []), ("binary", ["--threshold", "0.5"]),
                        ("partition", ["--mask-sharing", "partition"])):
        out = tmp_path / f"{name}.json"
        res = runner.invoke(app, ["evaluate", "--checkpoint", str(ckpt), "--checkpoint", str(ckpt), "--label", "a",
                                  "--label", "b", "--data", str(clips), "--out", str(out), *extra])
        assert res.exit_code == 0, res.output
        scores[name] = json.loads(out.read_text())["results"]
    soft, binary = scores["soft"], scores["binary"]
    assert list(soft) == ["mixture", "IBM", "IRM", "a", "b"]
    assert soft["a"] == soft["b"] and binary["a"] == binary["b"]
    for ref in ("mixture", "IBM", "IRM"):
        assert soft[ref] == binary[ref]
    assert soft["a"]["single"]["sdr"] != binary["a"]["single"]["sdr"]
    shared = scores["partition"]  # the checkpoint trained with free masks, scored with shared ones
    assert all(shared[ref] == soft[ref] for ref in ("mixture", "IBM", "IRM"))
    assert shared["a"]["single"]["sdr"] != soft["a"]["single"]["sdr"]
    res = runner.invoke(app, ["evaluate", "--checkpoint", str(ckpt), "--data", str(clips), "--mask-sharing", "some"])
    assert "--mask-sharing must be one of none, cap, partition" in str(res.exception)
    res = runner.invoke(app, ["evaluate", "--checkpoint", str(ckpt), "--data", str(clips), "--weights", "best"])
    assert "--weights must be averaged or raw" in str(res.exception)


def test_evaluate_refuses_a_bad_backend_and_checkpoints_with_other_video_settings(trained, tmp_path):
    import torch

    root, clips, ckpt = trained
    proc = subprocess.run([sys.executable, "-m", "tribert.cli", "evaluate", "--checkpoint", str(ckpt),
                           "--data", str(clips), "--backend", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--backend must be" in proc.stderr and "Traceback" not in proc.stderr
    other = torch.load(ckpt, map_location="cpu", weights_only=True)
    other["hyper_parameters"]["config"]["video"]["fps"] = 4.0  # same model shapes, other frames
    torch.save(other, tmp_path / "other.ckpt")
    proc = subprocess.run([sys.executable, "-m", "tribert.cli", "evaluate", "--checkpoint", str(ckpt),
                           "--checkpoint", str(tmp_path / "other.ckpt"), "--label", "a", "--label", "b",
                           "--data", str(clips)], capture_output=True, text=True)
    assert proc.returncode == 2 and f"{tmp_path / 'other.ckpt'}: (b) video settings differ" in proc.stderr, proc.stderr
    res = runner.invoke(app, ["evaluate", "--checkpoint", str(ckpt), "--data", str(ckpt)])  # a file as --data
    assert str(res.exception) == f"{ckpt}: is a file, not a folder of prepared clips (tribert prepare makes them)"


def test_export_round_trip_gives_identical_outputs_and_a_damaged_export_is_one_line(trained, tmp_path):
    import torch

    from tribert.engine.checkpoint import load_system

    root, clips, ckpt = trained
    exported = tmp_path / "tiny.pt"
    res = runner.invoke(app, ["export", str(ckpt), str(exported)])
    assert res.exit_code == 0, res.output
    data = torch.load(exported, map_location="cpu", weights_only=True)  # weights-only loadable
    assert set(data) == {"format", "version", "config", "state_dict", "train_pose_sources"}  # no optimiser state
    assert data["train_pose_sources"] == {"ground_truth": 4}  # what the run trained on, kept
    assert exported.stat().st_size < ckpt.stat().st_size
    a, b = load_system(ckpt).state_dict(), load_system(exported).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    outs = {}
    for name, path in (("ckpt", ckpt), ("export", exported)):
        outs[name] = tmp_path / name
        res = runner.invoke(app, ["separate", str(clips / "violin"), str(clips / "flute"),
                                  "--checkpoint", str(path), "--out", str(outs[name])])
        assert res.exit_code == 0, res.output
    for wav in ("violin.wav", "flute.wav"):
        assert (outs["ckpt"] / wav).read_bytes() == (outs["export"] / wav).read_bytes()
    res = runner.invoke(app, ["evaluate", "--checkpoint", str(exported), "--data", str(clips), "--limit", "2"])
    assert res.exit_code == 0 and "tribert-tiny" in res.output, res.output

    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(exported.read_bytes()[: exported.stat().st_size // 2])
    data["version"] = 99
    torch.save(data, tmp_path / "future.pt")
    for path, reason in ((damaged, "not a readable checkpoint"), (tmp_path / "future.pt", "export (version 99")):
        proc = subprocess.run([sys.executable, "-m", "tribert.cli", "separate", str(clips / "violin"),
                               "--checkpoint", str(path), "--out", str(tmp_path / "x")],
                              capture_output=True, text=True)
        assert proc.returncode == 2 and reason in proc.stderr and str(path) in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_outputs_never_replace_inputs_and_rows_never_collide(trained, tmp_path):
    """From a QA pass: evaluate --out / export onto the checkpoint replaced it, --run-dir onto a
    finished run started over in it, and two checkpoints of one size gave one row (the second's)."""
    root, clips, ckpt = trained
    before = ckpt.read_bytes()
    for args in (["evaluate", "--checkpoint", str(ckpt), "--data", str(clips), "--out", str(ckpt)],
                 ["export", str(ckpt), str(ckpt)]):
        res = runner.invoke(app, args)
        assert isinstance(res.exception, TribertError) and "is an input of this command" in str(res.exception)
    assert ckpt.read_bytes() == before
    res = runner.invoke(app, ["evaluate", "--checkpoint", str(ckpt), "--data", str(clips), "--out", str(root)])
    assert isinstance(res.exception, TribertError) and "is a folder" in str(res.exception)
    res = runner.invoke(app, ["evaluate", "--checkpoint", str(ckpt), "--data", str(clips), "--limit", "-1"])
    assert isinstance(res.exception, TribertError) and "--limit and --seed must be >= 0" in str(res.exception)
    for threshold in ("nan", "1.5", "0"):  # NaN passed every check and silenced every estimate
        res = runner.invoke(app, ["evaluate", "--checkpoint", str(ckpt), "--data", str(clips), "--threshold", threshold])
        assert isinstance(res.exception, TribertError) and "--threshold must be between 0 and 1" in str(res.exception)
    out = tmp_path / "two.json"
    res = runner.invoke(app, ["evaluate", "--checkpoint", str(ckpt), "--checkpoint", str(ckpt), "--data", str(clips),
                              "--limit", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert {"tribert-tiny", "tribert-tiny-2"} <= set(json.loads(out.read_text())["results"])
    res = runner.invoke(app, ["evaluate", "--checkpoint", str(ckpt), "--data", str(clips), "--limit", "2",
                              "--out", str(out)])  # its own results of an earlier run: replaced
    assert res.exit_code == 0 and "tribert-tiny-2" not in json.loads(out.read_text())["results"], res.output
    # another file under the output's name: a copy of the training checkpoint was replaced by
    # the results (evaluate --out) or by another model's weights-only export (export)
    victim = tmp_path / "victim.ckpt"
    victim.write_bytes(before)
    exported = tmp_path / "a.pt"
    assert runner.invoke(app, ["export", str(ckpt), str(exported)]).exit_code == 0
    assert runner.invoke(app, ["export", str(ckpt), str(exported)]).exit_code == 0  # an earlier export: replaced
    for args in (["evaluate", "--checkpoint", str(ckpt), "--data", str(clips), "--out", str(victim)],
                 ["export", str(exported), str(victim)]):
        res = runner.invoke(app, args)
        assert isinstance(res.exception, TribertError), res.output
        assert str(res.exception) == (f"{victim}: exists and is not {'a separation results JSON of tribert' if args[0] == 'evaluate' else 'a tribert-weights export'}: "
                                      "tribert does not replace it; give another output path, or move the file away first")
    assert victim.read_bytes() == before
    run = ckpt.parent.parent
    config = (run / "config.yaml").read_text()
    res = runner.invoke(app, ["train", "--config", "synth_tiny", "--run-dir", str(run), "--set", f"data.train_dir={clips}"])
    assert isinstance(res.exception, TribertError) and "already holds a run: --resume it" in str(res.exception)
    assert (run / "config.yaml").read_text() == config and ckpt.read_bytes() == before
    # a folder of the user's with files under a run's names (the QA's own last.ckpt and metrics.csv were
    # replaced), or with prepared clips: refused; other files of theirs may stay beside a new run
    mine = tmp_path / "mine"
    (mine / "checkpoints").mkdir(parents=True)
    (mine / "checkpoints" / "last.ckpt").write_bytes(before)
    (mine / "metrics.csv").write_text("step,mine\n")
    for folder, message in ((mine, f"{mine}: holds checkpoints, metrics.csv, which a new run would replace"),
                            (clips, f"{clips}: holds prepared clips: give the run a folder of its own")):
        res = runner.invoke(app, ["train", "--config", "synth_tiny", "--run-dir", str(folder),
                                  "--set", f"data.train_dir={clips}"])
        assert isinstance(res.exception, TribertError) and str(res.exception).startswith(message), res.output
    assert (mine / "metrics.csv").read_text() == "step,mine\n" and (mine / "checkpoints" / "last.ckpt").read_bytes() == before


def test_version_names_tribert_and_torch():
    import tribert

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.startswith(f"tribert {tribert.__version__} (torch {torch.__version__}")


def test_evaluate_scores_each_condition_against_its_own_class_list(trained, tmp_path):
    """Two checkpoints of other class lists (MUSIC21 then MUSIC-finetuned, 21 and 11 classes) in one
    table: each condition's top-1 is counted in its own classes, whatever the --checkpoint order."""
    root, clips, ckpt = trained
    res = runner.invoke(app, ["train", "--config", "synth_tiny", "--runs-dir", str(tmp_path / "runs"),
                              "--set", f"data.train_dir={clips}", *TINY,
                              "--set", "data.classes=[cello,violin,flute]"])  # other indices than synth_tiny's
    assert res.exit_code == 0, res.output
    other = next((tmp_path / "runs").iterdir()) / "checkpoints" / "last.ckpt"

    def top1(*checkpoints) -> dict:
        out = tmp_path / f"r{len(list(tmp_path.glob('r*.json')))}.json"
        args = ["evaluate", "--data", str(clips), "--out", str(out)]
        for c, name in checkpoints:
            args += ["--checkpoint", str(c), "--label", name]
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
        return json.loads(out.read_text())["meta"]["condition_accuracy"]

    alone = top1((other, "three"))["three"]
    assert top1((ckpt, "full"), (other, "three"))["three"] == alone
    assert top1((other, "three"), (ckpt, "full"))["full"] == top1((ckpt, "full"))["full"]
