"""The run configuration: where each value comes from, and configs of the older layout
(model chosen under ``train:``) read as today's."""

from __future__ import annotations

import re

import pytest
import torch
import yaml

from tribert.config import RECIPES, Config, migrate, model_config, recipes
from tribert.engine.checkpoint import load_system
from tribert.errors import ConfigError
from tribert.models.baselines import AudioOnlyUNet

TINY = ["model.size=tiny", "audio.crop_samples=8191", "audio.warp_bins=32", "video.frame_size=32",
        "video.pose_frames=8"]


def old_layout(config: Config) -> dict:
    """The stored dict of ``config`` as a checkpoint written before the move: kind and size under train."""
    data = config.to_dict()
    data["train"]["model"] = data["model"].pop("kind")
    data["train"]["size"] = data["model"].pop("size")
    return data


def test_values_come_from_size_factory_then_recipe_then_derived_fields():
    config = Config.from_dict({"model": {"size": "small", "film": False, "num_layers": 3}})
    small = model_config("small")
    assert config.model.unet_depth == small.unet_depth == 6  # from the size factory
    assert config.model.condition_norm == small.condition_norm == "layernorm"
    assert config.model.film is False and config.model.num_layers == 3  # the recipe's model section
    assert small.film is True and small.num_layers == 2
    assert config.model.frame_size == config.video.frame_size == 224  # derived: video, not the size's 64
    assert config.model.num_classes == len(config.data.classes)
    assert (config.model.kind, config.model.size) == ("tribert", "small")
    with pytest.raises(ConfigError, match="model.frame_size follows"):
        Config.from_dict({"model": {"frame_size": 64}})
    with pytest.raises(ConfigError, match="model.kind must be one of"):
        Config.from_dict({"model": {"kind": "transformer"}})
    with pytest.raises(ConfigError, match="unknown model size 'huge'"):
        Config.from_dict({"model": {"size": "huge"}})
    with pytest.raises(ConfigError, match=r"video.crop_margin must be in \[0, 1\]"):
        Config.from_dict({"video": {"crop_margin": -0.1}})
    # a gate or a placement for co-attention that is switched off would be silently ignored
    with pytest.raises(ConfigError, match="coattention_skip_absent and coattention_dropout need coattention: true"):
        Config.from_dict({"model": {"coattention": False, "coattention_gate": True}})
    with pytest.raises(ConfigError, match="coattention_skip_absent and coattention_dropout need coattention: true"):
        Config.from_dict({"model": {"coattention": False, "coattention_layers": [1]}})
    assert Config.from_dict({"model": {"coattention_layers": [1]}}).model.coattention_layer_ids() == (1,)


def test_old_layout_is_migrated_to_model_kind_and_size():
    assert migrate({"train": {"model": "audio_only", "size": "tiny", "lr": 0.1}}) == \
        {"train": {"lr": 0.1}, "model": {"kind": "audio_only", "size": "tiny"}}
    raw = {"train": {"model": "sound_of_pixels"}, "model": {"film": True}}
    assert migrate(raw) == {"train": {}, "model": {"film": True, "kind": "sound_of_pixels"}}
    assert raw == {"train": {"model": "sound_of_pixels"}, "model": {"film": True}}  # the input is left alone
    assert migrate({"audio": {"crop_samples": 8191}}) == {"audio": {"crop_samples": 8191}}  # nothing to move
    with pytest.raises(ConfigError, match="model must be a mapping"):
        migrate({"train": {"model": "tribert"}, "model": "tribert"})


def test_an_old_stored_config_resolves_to_the_same_config():
    new = Config.load("synth_small", ["model.kind=music_gesture", "model.film=false"])
    old = old_layout(new)
    assert "kind" not in old["model"] and old["train"]["model"] == "music_gesture"
    assert Config.from_dict(old) == new
    # an old-style override on a current recipe still chooses the model (the user's latest word)
    old_style = Config.load("synth_small", ["train.model=audio_only", "train.size=tiny"])
    assert (old_style.model.kind, old_style.model.size) == ("audio_only", "tiny")
    assert old_style == Config.load("synth_small", ["model.kind=audio_only", "model.size=tiny"])


def test_an_old_checkpoint_loads_with_its_model(tmp_path):
    config = Config.load(None, TINY + ["model.kind=audio_only"])
    from tribert.engine.system import SeparationSystem

    system = SeparationSystem(config)
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": system.state_dict(), "hyper_parameters": {"config": old_layout(config)}}, path)
    loaded = load_system(path, expect_model="audio_only", expect_size="tiny")
    assert isinstance(loaded.model, AudioOnlyUNet) and loaded.config == config
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, system.state_dict()[name]), name


def test_recipes_choose_the_model_under_model():
    assert set(recipes()) >= {"synth_tiny", "synth_small", "music21_paper", "music_finetune"}
    for name in recipes():
        raw = yaml.safe_load((RECIPES / f"{name}.yaml").read_text())
        assert "model" not in raw.get("train", {}) and "size" not in raw.get("train", {}), name
        assert {"kind", "size"} <= set(raw["model"]), name
        config = Config.load(name)
        assert config.model.size == raw["model"]["size"] and config.model.kind == raw["model"]["kind"]


def test_the_gpu_recipes_build_at_a_reduced_size_on_cpu():
    """music21_paper and music_finetune with only the sizes cut (tiny model, short crop, small
    frames): everything else of the recipe (classes, loss and schedule settings) builds and runs
    one forward on CPU."""
    from tribert.data.batch import MixBatch
    from tribert.engine.system import SeparationSystem

    for name, classes in (("music21_paper", 21), ("music_finetune", 11)):
        config = Config.load(name, TINY + ["train.accelerator=cpu", "train.precision=32-true"])
        assert config.model.num_classes == classes and config.train.schedule == "linear"
        system = SeparationSystem(config).eval()
        b, n, p, c = 1, config.data.num_mix, config.video.max_persons, classes
        f, t, length = config.audio.warp_bins, config.audio.frames, config.audio.crop_samples
        batch = MixBatch(
            mix_wav=torch.zeros(b, length), mix_mag=torch.ones(b, 1, f, t), mix_logmag=torch.zeros(b, 1, f, t),
            weight=torch.ones(b, 1, f, t), source_wavs=torch.zeros(b, n * p, length),
            source_mags=torch.zeros(b, n * p, 1, f, t), masks=torch.zeros(b, n * p, 1, f, t),
            source_video=MixBatch.slot_videos(n, p)[None], source_object=torch.tensor([[-1, -1] * n]),
            source_label=torch.tensor([[0, -1] * n]), source_valid=torch.tensor([[True, False] * n]),
            frames=torch.zeros(b, n, config.video.num_frames, 3, 32, 32), pose=torch.zeros(b, n, p, 8, 68, 3),
            labels=torch.zeros(b, n, c))
        with torch.no_grad():
            _, mask_logits = system(batch)
        assert mask_logits.shape == (b, n * p, 1, f, t), name



@pytest.mark.parametrize("override, text", [
    ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
    ("train.lr=nan", "train.lr must be a finite number, got nan"),
    ("train.lr=-1", "train.lr must be a positive number"),
    ("train.threads=-1", "train.threads must be >= 0"),
    ("train.precision=foo", "train.precision must be one of"),
    ("train.accelerator=tpu", "train.accelerator must be one of"),
    ("train.devices=abc", "train.devices must be a count >= 1"),
    ("train.num_nodes=0", "train.num_nodes must be >= 1"),
    ("audio.sample_rate=0", "audio.sample_rate must be >= 1000 Hz"),
    ("train.max_steps=-5", "train.max_steps must be >= 1, or -1 / 0"),
    ("train.log_every=0", "train.log_every must be >= 1 step"),
    # were taken as "keep none" (a step<N>.ckpt asked for and silently never written)
    ("train.keep_every_steps=-5", "train.keep_every_steps must be >= 0 (0: none), got -5"),
    ("train.checkpoint_steps=[0,-3]", "train.checkpoint_steps must be steps >= 1, got [0, -3]"),
    # from a QA pass: a negative clip trained by gradient ascent; the rest were tracebacks
    ("train.grad_clip=-1", "train.grad_clip must be >= 0 (0: no clipping), got -1.0"),
    ("train.val_mixtures=-1", "train.val_mixtures must be >= 0"),  # validated on all mixtures but the last
    ("train.seed=-1", "train.seed must be in [0, 2**32), got -1"),
    ("train.seed=4294967296", "train.seed must be in [0, 2**32)"),
    ("data.seed=-1", "data.seed must be in [0, 2**32)"),
    ("train.strategy=fsdp", "train.strategy must be one of auto, ddp"),
])
def test_values_torch_or_lightning_would_refuse_are_one_line_config_errors(override, text):
    """Each used to start a run (and make its folder) and stop in torch or Lightning with a traceback."""
    with pytest.raises(ConfigError, match=re.escape(text)) as err:
        Config.load("synth_tiny", overrides=[override])
    assert "\n" not in str(err.value)


def test_a_key_given_twice_in_a_recipe_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("train:\n  lr: 0.001\n  batch_size: 4\n  lr: 0.1\nmodel:\n  size: tiny\n")
    with pytest.raises(ConfigError, match=r"key 'lr' appears twice in one mapping \(lines 2 and 4\)") as err:
        Config.load(path)
    assert str(path) in str(err.value)
    path.write_text("train:\n  lr: 0.001\nmodel:\n  lr: 0.1\n")  # one name in two sections is not a duplicate
    with pytest.raises(ConfigError, match="unknown key model.lr"):
        Config.load(path)
    path.write_text("train:\n  lr: 0.01\ntrain:\n  batch_size: 4\n")
    with pytest.raises(ConfigError, match="key 'train' appears twice"):
        Config.load(path)


def test_a_binary_file_or_a_folder_given_as_the_config_is_named(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42\xac\xff\xfe")  # a video's bytes: not UTF-8 text
    with pytest.raises(ConfigError, match=f"{video}: not a text YAML file \\(byte 12 is not UTF-8\\)"):
        Config.load(video)
    with pytest.raises(ConfigError, match=f"{tmp_path}: is a folder, not a config file"):
        Config.load(tmp_path)


@pytest.mark.parametrize("override", ["train.max_minutes=inf", "model.dropout=nan", "data.gain_max=inf",
                                      "audio.warp_base=nan", "train.grad_clip=-inf"])
def test_a_number_that_is_not_finite_is_refused(override):
    # NaN passed every range check and inf every lower bound (max_minutes=inf failed inside timedelta)
    with pytest.raises(ConfigError, match=f"{override.split('=')[0]} must be a finite number"):
        Config.load("synth_tiny", [override])


def test_a_recipe_name_beside_a_folder_of_that_name_is_the_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "synth_tiny").mkdir()  # `tribert synth --out synth_tiny`, then --config synth_tiny
    assert Config.load("synth_tiny").model.size == "tiny"


def test_one_override_may_be_given_as_a_string():
    assert Config.load("synth_tiny", "train.max_steps=7").train.max_steps == 7


def test_an_error_is_blamed_on_the_override_that_made_it_not_on_the_recipe(tmp_path):
    with pytest.raises(ConfigError) as err:
        Config.load("synth_tiny", ["train.max_steps=3", "data.clases=[erhu]"])
    text = str(err.value)
    assert text.startswith("unknown key data.clases") and "synth_tiny.yaml" not in text
    assert text.endswith("(in the overrides: train.max_steps=3 data.clases=[erhu])")
    recipe = tmp_path / "mine.yaml"  # the recipe's own mistake stays the recipe's, overrides or not
    recipe.write_text("train:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError) as err:
        Config.load(recipe, ["train.max_steps=3"])
    assert str(err.value).startswith(f"{recipe}: unknown key train.lrr")


def test_a_class_listed_twice_is_refused():
    with pytest.raises(ConfigError, match="data.classes lists 'erhu' more than once"):
        Config.load("synth_tiny", ["data.classes=[erhu, xylophone, erhu]"])


def test_a_mistyped_recipe_name_lists_the_shipped_recipes():
    with pytest.raises(ConfigError, match=r"config 'music21': no such file, nor a shipped recipe \(.*music21_paper, "
                                          r".*synth_small, synth_tiny\)"):
        Config.load("music21")


@pytest.mark.parametrize("override, text", [
    ("train.lr=[", "train.lr must be a number, got '['"),  # not YAML: was a yaml.ParserError traceback
    ("train.lr=: x", "train.lr must be a number, got ': x'"),
    ("model=3", "model must be a mapping, got int"),  # was "TypeError: 'int' object is not iterable"
    ("=5", "override '=5' must look like section.key=value"),
    ("train..lr=1", "override 'train..lr=1' must look like section.key=value"),
])
def test_an_override_that_is_not_yaml_or_not_a_key_is_a_one_line_error(override, text):
    with pytest.raises(ConfigError, match=re.escape(text)) as err:
        Config.load("synth_tiny", [override])
    assert "\n" not in str(err.value)


def test_an_empty_value_clears_a_text_setting():
    """`--set data.val_dir=` (and `val_dir:` in a recipe) is the empty string, not "must be a
    string, got None"."""
    config = Config.load("synth_tiny", ["data.val_dir=", "train.init_from="])
    assert config.data.val_dir == "" and config.train.init_from == ""
    with pytest.raises(ConfigError, match="train.lr must be a number, got None"):  # numbers have no empty value
        Config.load("synth_tiny", ["train.lr="])
