"""`tribert demo` end to end at toy scale: synth -> train -> evaluate -> separate, outputs where it says."""

from __future__ import annotations

import json

import pytest

from tribert.demo import run_demo
from tribert.errors import TribertError


def test_demo_runs_the_whole_story(tmp_path):
    tiny = ("train.max_steps=3", "train.batch_size=2", "train.epoch_size=4")
    summary = run_demo(tmp_path / "demo", clips=20, minutes=0.2, eval_mixtures=3, recipe="synth_tiny",
                       overrides=tiny, progress=False)
    results = json.loads((tmp_path / "demo" / "results.json").read_text())["results"]
    assert {"mixture", "IBM", "IRM", "TriBERT"} <= set(results)
    assert results["IBM"]["single"]["sdr"] > results["mixture"]["single"]["sdr"]
    sep = tmp_path / "demo" / "separated"
    assert (sep / "separation.png").is_file() and len(list(sep.glob("*.wav"))) == 3  # 2 stems + mixture
    assert len(list(sep.glob("*.mp4"))) == 2
    assert 0.0 <= summary["condition_accuracy"] <= 1.0  # the tiny recipe's condition has a class head
    assert len(summary["separated_pair_sdr_db"]) == len(summary["separated_pair_mixture_sdr_db"]) == 2


def test_a_missing_weights_file_is_refused_before_the_data_is_made(tmp_path):
    """`demo --set train.init_from=<missing>` used to generate SynthMUSIC (minutes) and then stop
    when training started."""
    missing = tmp_path / "nowhere.ckpt"
    with pytest.raises(TribertError, match=f"{missing}: train.init_from: file not found"):
        run_demo(tmp_path / "demo", clips=20, minutes=0.2, recipe="synth_tiny",
                 overrides=(f"train.init_from={missing}",), progress=False)
    assert not (tmp_path / "demo" / "synth").exists()
