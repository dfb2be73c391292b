"""Library behaviour: importing tribert changes nothing process-wide, training leaves the caller's
warning filters alone, and the library reports through ``logging`` (the CLI decides what is printed)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
import torch

from tribert.config import Config


def test_importing_every_module_has_no_side_effects():
    code = """
import json, logging, pkgutil, sys, warnings, importlib
import matplotlib, torch
import av, lightning.pytorch, rich.progress, scipy.signal, typer, yaml  # third-party side effects come first
before = [repr(warnings.filters), repr(logging.root.handlers), matplotlib.get_backend(), torch.get_num_threads(),
          sorted(k for k in __import__("os").environ)]
import tribert
names = [m.name for m in pkgutil.walk_packages(tribert.__path__, "tribert.") if ".__main__" not in m.name]
for name in names:
    importlib.import_module(name)
after = [repr(warnings.filters), repr(logging.root.handlers), matplotlib.get_backend(), torch.get_num_threads(),
         sorted(k for k in __import__("os").environ)]
print(json.dumps({"modules": len(names), "same": [a == b for a, b in zip(before, after)],
                  "tribert_handlers": len(logging.getLogger("tribert").handlers)}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["modules"] > 40
    # warning filters, root handlers, matplotlib backend, torch threads, environment
    assert out["same"] == [True] * 5, out
    assert out["tribert_handlers"] == 0  # only the CLI attaches one


def test_init_from_is_logged_not_printed(tmp_path, capsys):
    from tribert.engine.system import SeparationSystem
    from tribert.engine.train import init_weights_from

    config = Config.load(None, ["model.size=tiny", "audio.crop_samples=8191", "audio.warp_bins=32",
                                "video.frame_size=32", "video.pose_frames=8"])
    source = SeparationSystem(config)
    torch.save({"state_dict": source.state_dict(), "hyper_parameters": {"config": config.to_dict()}},
               tmp_path / "a.ckpt")
    target = SeparationSystem(config)
    records: list[logging.LogRecord] = []
    listener = logging.Handler(logging.INFO)
    listener.emit = records.append
    logger = logging.getLogger("tribert")
    saved = (list(logger.handlers), logger.level)  # an earlier CLI test in this process attached its printer
    logger.handlers[:] = [listener]
    logger.setLevel(logging.INFO)
    try:
        init_weights_from(target, tmp_path / "a.ckpt")
    finally:
        logger.handlers[:], logger.level = saved
    assert capsys.readouterr().out == ""
    assert any("initialised" in r.getMessage() and r.name == "tribert.engine.train" for r in records)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())


def test_init_from_lists_every_tensor_it_leaves_new(tmp_path):
    """MUSIC21 -> MUSIC: a checkpoint with 21 classes into a model with 11. Every class-sized tensor
    (class heads, and the condition layers that see the class posteriors) is left new and named
    with both shapes; every other tensor is copied."""
    from tribert.engine.system import SeparationSystem
    from tribert.engine.train import init_weights_from

    base = ["model.size=tiny", "audio.crop_samples=8191", "audio.warp_bins=32", "video.frame_size=32",
            "video.pose_frames=8"]
    source = SeparationSystem(Config.load(None, base))
    torch.save({"state_dict": source.state_dict(), "hyper_parameters": {"config": source.config.to_dict()}},
               tmp_path / "music21.ckpt")
    target = SeparationSystem(Config.load("music_finetune", base))
    assert target.config.model.num_classes == 11
    before = {k: v.clone() for k, v in target.state_dict().items()}
    left_new = init_weights_from(target, tmp_path / "music21.ckpt")
    theirs, after = source.state_dict(), target.state_dict()
    differ = {k for k, v in theirs.items() if v.shape != before[k].shape}
    assert differ and set(left_new) == differ  # exactly the class-sized tensors
    for name in left_new:
        assert left_new[name] == f"shape {list(before[name].shape)} here, {list(theirs[name].shape)} in the checkpoint"
        assert torch.equal(after[name], before[name])  # left as initialised
    assert all(torch.equal(after[k], theirs[k]) for k in after if k not in left_new)


def test_cli_logging_is_set_up_once():
    from tribert.cli import configure_logging

    logger = logging.getLogger("tribert")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        configure_logging()
        configure_logging()
        assert sum(type(h).__name__ == "_Echo" for h in logger.handlers) == 1
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


def test_result_files_are_strict_json_with_null_for_infinite_scores(tmp_path):
    import json

    from tribert.engine.evaluate import write_results
    from tribert.errors import TribertError

    path = tmp_path / "r.json"
    write_results(path, {"mixture": {"multi": {"sar": float("inf"), "sdr": -3.5}}}, {"seed": 0})

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    data = json.loads(path.read_text(), parse_constant=refuse)  # what a strict parser (jq, JavaScript) accepts
    assert data["results"]["mixture"]["multi"] == {"sar": None, "sdr": -3.5}
    write_results(path, {}, {"seed": 1})  # its own earlier results: replaced
    assert json.loads(path.read_text())["meta"] == {"seed": 1}
    other = tmp_path / "model.ckpt"  # a library caller's path typed onto a checkpoint: refused, kept
    other.write_bytes(b"PK\x03\x04 weights")
    with pytest.raises(TribertError, match="model.ckpt: exists and is not a separation results JSON of tribert"):
        write_results(other, {}, {})
    assert other.read_bytes() == b"PK\x03\x04 weights"
    from tribert.engine.retrieval import write_results as write_retrieval_results

    with pytest.raises(TribertError, match="r.json: exists and is not a retrieval results JSON"):
        write_retrieval_results(path, {}, {})  # retrieval results over separation results: refused
    assert json.loads(path.read_text())["meta"] == {"seed": 1}


def test_a_benchmark_script_reports_a_user_error_in_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "frontend_oracle.py"
    proc = subprocess.run([sys.executable, str(script), "--data", str(tmp_path / "missing")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {tmp_path / 'missing'}: data folder not found"


def test_a_transient_progress_bar_leaves_nothing_in_a_log(capsys):
    from tribert.progress import track

    assert list(track(range(3), "embedding", transient=True)) == [0, 1, 2]
    assert capsys.readouterr().out == ""  # rich would leave a blank line in a file or pipe
    assert list(track(range(3), "evaluating")) == [0, 1, 2]
    assert "evaluating" in capsys.readouterr().out  # a lasting bar is its record of the run
    assert list(track(range(3), "evaluating", enabled=False)) == [0, 1, 2]
    assert capsys.readouterr().out == ""


def test_the_cache_folder_is_tribert_cache_or_the_home_default(monkeypatch, tmp_path):
    from pathlib import Path

    from tribert.io import cache_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TRIBERT_CACHE", "")  # set empty (an unset variable in a job script): the default,
    assert cache_dir() == tmp_path / ".cache" / "tribert"  # not the working folder (Path(""))
    monkeypatch.setenv("TRIBERT_CACHE", "~/scratch")
    assert cache_dir() == tmp_path / "scratch"
    monkeypatch.delenv("TRIBERT_CACHE")
    assert cache_dir() == Path(tmp_path) / ".cache" / "tribert"


def test_read_json_names_the_file_and_what_is_wrong_in_one_line(tmp_path):
    from tribert.errors import TribertError
    from tribert.io import read_json

    good = tmp_path / "good.json"
    good.write_text('{"a": [1, 2]}')
    assert read_json(good, "settings") == {"a": [1, 2]}
    cases = {b"{bad": "Expecting property name", b"\xff\xfe{}": "codec can't decode",
             b"[1, 2]": "a JSON list, not an object", b"": "Expecting value"}
    for i, (raw, why) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.json"
        path.write_bytes(raw)
        with pytest.raises(TribertError) as err:
            read_json(path, "settings")
        message = str(err.value)
        assert str(path) in message and "corrupt settings (" in message and why in message and "\n" not in message
    assert read_json(tmp_path / "bad2.json", "settings", expect_object=False) == [1, 2]
    with pytest.raises(FileNotFoundError):  # the caller words a missing file (what should be there)
        read_json(tmp_path / "absent.json", "settings")


def test_init_from_a_model_of_another_size_or_kind_is_refused(tmp_path):
    """From a QA pass: a small checkpoint into a tiny recipe loaded the 99 tensors that happened to
    share a shape (batch-norm statistics, a few convolutions) and trained on from that."""
    from tribert.engine.system import SeparationSystem
    from tribert.engine.train import init_weights_from
    from tribert.errors import CheckpointError

    base = ["audio.crop_samples=8191", "audio.warp_bins=32", "video.frame_size=32", "video.pose_frames=8"]
    source = SeparationSystem(Config.load(None, ["model.size=tiny", *base]))
    path = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": source.state_dict(), "hyper_parameters": {"config": source.config.to_dict()}}, path)
    for other, what in ((["model.size=small", "model.unet_depth=5"], "tribert of size small"),
                        (["model.size=tiny", "model.kind=audio_only"], "audio_only of size tiny")):
        target = SeparationSystem(Config.load(None, [*other, *base]))
        before = {k: v.clone() for k, v in target.state_dict().items()}
        with pytest.raises(CheckpointError, match=f"holds a tribert model of size tiny; this run builds a {what}"):
            init_weights_from(target, path)
        assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())
