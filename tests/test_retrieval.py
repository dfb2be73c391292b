"""Cross-modal retrieval: ranking against brute force, heads that learn alignment (and only
alignment), the embedding cache, the CLI and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import torch
from typer.testing import CliRunner

from helpers import make_clip
from tribert.cli import app
from tribert.config import Config
from tribert.engine.retrieval import (ClipEmbeddings, RetrievalConfig, evaluate_retrieval, fit_head, load_embeddings,
                                      pools_of, same_class_top1, train_retrieval)
from tribert.engine.system import SeparationSystem
from tribert.errors import CheckpointError, ConfigError, TribertError
from tribert.models.retrieval import VARIANTS, RetrievalHead, chance_topk, get_variant, topk_accuracy, true_ranks

runner = CliRunner()
TINY = ["audio.crop_samples=8191", "audio.warp_bins=32", "video.frame_size=32", "video.pose_frames=8"]


# --- ranking ----------------------------------------------------------------------------------
def test_same_class_top1_counts_labelled_queries_and_no_label_is_no_class():
    """Two unlabelled clips used to "share" the empty class: a set of unlabelled clips scored 100%."""
    class Labels:
        labels = ["erhu", "", "", "erhu+flute", "flute"]

    # queries 0..4 with their first results: erhu->erhu+flute (hit), ""->"" (no label: not counted),
    # ""->erhu (not counted), erhu+flute->flute (hit), flute->"" (miss)
    assert same_class_top1(Labels, [0, 1, 2, 3, 4], [3, 2, 0, 4, 1]) == pytest.approx(100 * 2 / 3)

    class Unlabelled:
        labels = ["", ""]

    assert same_class_top1(Unlabelled, [0, 1], [1, 0]) is None



def test_ranks_and_topk_match_brute_force_sorting():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(50, 40, generator=g)
    truth = torch.randint(0, 40, (50,), generator=g)
    ranks = true_ranks(scores, truth)
    for q in range(50):  # brute force: position of the true column in a descending sort
        order = sorted(range(40), key=lambda j: -scores[q, j].item())
        assert ranks[q].item() == order.index(truth[q].item())
    acc = topk_accuracy(ranks, (1, 5, 10))
    for k in (1, 5, 10):
        brute = sum(sorted(range(40), key=lambda j: -scores[q, j].item()).index(truth[q].item()) < k
                    for q in range(50)) / 50 * 100
        assert acc[k] == pytest.approx(brute)


def test_ties_are_never_a_hit_and_chance_is_k_over_pool():
    ranks = true_ranks(torch.zeros(6, 6), torch.arange(6))  # a scorer that says nothing
    assert ranks.tolist() == [5] * 6 and topk_accuracy(ranks, (1, 5))[1] == 0.0
    assert chance_topk(210)[1] == pytest.approx(0.476, abs=1e-3)  # the paper's random row, 0.48 %
    assert chance_topk(210)[10] == pytest.approx(4.76, abs=1e-2)


def test_pools_are_disjoint_and_refuse_a_pool_larger_than_the_data():
    pools = pools_of(25, 10, seed=0)
    members = torch.cat(pools).tolist()
    assert len(pools) == 2 and len(set(members)) == 20
    with pytest.raises(TribertError, match="fewer than the pool of 30"):
        pools_of(25, 30, seed=0)


# --- the head learns alignment, and nothing else --------------------------------------------------

def toy_embeddings(n: int, aligned: bool, seed: int = 0) -> ClipEmbeddings:
    """Audio and vision rows that are two fixed random linear views of one latent per clip (aligned),
    or of unrelated latents (shuffled)."""
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(n, 8, generator=g)
    other = latent if aligned else torch.randn(n, 8, generator=g)
    audio = latent @ torch.randn(8, 24, generator=g) + 0.02 * torch.randn(n, 24, generator=g)
    vision = other @ torch.randn(8, 32, generator=g) + 0.02 * torch.randn(n, 32, generator=g)
    vectors = {"audio": audio, "vision": vision, "pose": vision.clone()}
    return ClipEmbeddings(clip_ids=[f"c{i}" for i in range(n)], clip_dirs=[""] * n, labels=["x"] * n,
                          vectors={"transformer": vectors})


def rows(emb: ClipEmbeddings, a: int, b: int) -> ClipEmbeddings:
    return ClipEmbeddings(emb.clip_ids[a:b], emb.clip_dirs[a:b], emb.labels[a:b],
                          {k: {m: v[a:b] for m, v in per.items()} for k, per in emb.vectors.items()})


@pytest.mark.parametrize("aligned", [True, False])
def test_head_on_aligned_toy_embeddings_retrieves_and_on_shuffled_ones_stays_at_chance(tmp_path, aligned):
    torch.manual_seed(0)
    clips = toy_embeddings(250, aligned)  # 200 to train on, 50 unseen clips (same views) to rank
    cfg = RetrievalConfig(variants=("audio2vision",), kinds=("transformer",), width=64, hidden=64,
                          lr=1e-3, epochs=80, batch_size=32)
    train_retrieval(rows(clips, 0, 200), tmp_path, cfg, log=lambda *_: None)
    top1 = evaluate_retrieval(tmp_path, rows(clips, 200, 250), pool=50)["variants"]["audio2vision"]["transformer"]["top1"]
    if aligned:
        assert top1 > 85.0  # chance is 2 %; measured 92 % at 60 epochs
    else:
        assert top1 < 10.0  # 5 lucky hits of 50


def test_fit_head_loss_falls_and_multiple_choice_accuracy_rises():
    emb = toy_embeddings(128, aligned=True)
    head = RetrievalHead(get_variant("audio2vision"), emb.dims("transformer"), width=32, hidden=32)
    query = {"audio": emb.vectors["transformer"]["audio"]}
    hist = fit_head(head, query, emb.vectors["transformer"]["vision"],
                    RetrievalConfig(lr=3e-3, epochs=30, batch_size=32))
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert hist["accuracy"][-1] > 0.9 and hist["accuracy"][0] < 0.7


def test_fit_head_counts_a_tie_as_a_miss():
    # candidates that are all alike (every clip's pose blank, prepared without pose): no head can
    # tell the positive from the distractors, and the training accuracy must say so
    emb = toy_embeddings(64, aligned=True)
    head = RetrievalHead(get_variant("audio2vision"), emb.dims("transformer"), width=32, hidden=32)
    blank = torch.zeros_like(emb.vectors["transformer"]["vision"])
    hist = fit_head(head, {"audio": emb.vectors["transformer"]["audio"]}, blank,
                    RetrievalConfig(lr=3e-3, epochs=3, batch_size=32))
    assert hist["accuracy"] == [0.0, 0.0, 0.0]


def test_two_modality_query_is_fused_and_scored_four_ways():
    variant = VARIANTS["vision+audio2pose"]
    assert variant.choices == 4
    head = RetrievalHead(variant, {"vision": 12, "audio": 8, "pose": 10}, width=16, hidden=16)
    logits = head({"vision": torch.randn(5, 12), "audio": torch.randn(5, 8)}, torch.randn(5, 4, 10))
    assert logits.shape == (5, 4)
    logits.sum().backward()
    assert all(p.grad is not None for p in head.fuse.parameters())


# --- embeddings from a TriBERT checkpoint, and their cache ------------------------------------------

def write_checkpoint(path, overrides=(), seed=0):
    torch.manual_seed(seed)
    config = Config.load("synth_tiny", list(TINY) + list(overrides))
    system = SeparationSystem(config)
    torch.save({"state_dict": system.state_dict(), "hyper_parameters": {"config": config.to_dict()}}, path)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrieval") / "clips"
    for i, (label, freq) in enumerate([("violin", 440.0), ("flute", 1320.0), ("cello", 110.0),
                                       ("violin", 550.0), ("flute", 990.0), ("cello", 165.0)]):
        make_clip(root, f"{label}{i}", [label], [freq])
    return root


def test_embeddings_have_both_kinds_and_the_cache_follows_the_checkpoint(tmp_path, clips, monkeypatch):
    import tribert.engine.retrieval as retrieval

    ckpt = write_checkpoint(tmp_path / "a.ckpt")
    emb = load_embeddings(ckpt, clips)
    assert len(emb) == 6 and set(emb.vectors) == {"transformer", "pre_transformer"}
    assert set(emb.modalities()) == {"vision", "pose", "audio"}
    # the transformer changes the tokens (co-attention): its outputs are not its inputs
    assert not torch.allclose(emb.vectors["transformer"]["audio"], emb.vectors["pre_transformer"]["audio"])
    calls = []
    real = retrieval.embed_clips
    monkeypatch.setattr(retrieval, "embed_clips", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = load_embeddings(ckpt, clips)
    assert calls == [] and torch.equal(again.vectors["transformer"]["vision"], emb.vectors["transformer"]["vision"])
    write_checkpoint(ckpt, seed=1)  # the same path, other weights
    changed = load_embeddings(ckpt, clips)
    assert calls == [1]
    assert not torch.allclose(changed.vectors["transformer"]["vision"], emb.vectors["transformer"]["vision"])


def test_the_cache_misses_when_a_clips_media_change_and_an_unwritable_one_only_warns(tmp_path, clips, monkeypatch,
                                                                                     caplog):
    """A clip's pose detected again (or its audio or frames replaced) keeps its meta.json: the
    cache must still miss. A cache that cannot be written costs the next run time, nothing else."""
    import shutil

    import tribert.engine.retrieval as retrieval

    mine = tmp_path / "clips"
    shutil.copytree(clips, mine)
    ckpt = write_checkpoint(tmp_path / "a.ckpt")
    emb = load_embeddings(ckpt, mine)
    calls = []
    real = retrieval.embed_clips
    monkeypatch.setattr(retrieval, "embed_clips", lambda *a, **k: calls.append(1) or real(*a, **k))
    pose_file = mine / "violin0" / "pose.npy"
    pose = np.load(pose_file)
    pose[..., :2] = 40 - pose[..., :2]  # the performer mirrored
    np.save(pose_file, pose)
    changed = load_embeddings(ckpt, mine)
    assert calls == [1]
    i = changed.clip_ids.index("violin0")
    assert not torch.equal(changed.vectors["transformer"]["pose"][i], emb.vectors["transformer"]["pose"][i])
    # frames written over in place: the frames folder's own size and time stay as they were
    folder_time = (mine / "flute1" / "frames").stat().st_mtime_ns
    for frame in (mine / "flute1" / "frames").iterdir():
        Image.fromarray(np.full((40, 48, 3), 200, np.uint8)).save(frame)
    assert (mine / "flute1" / "frames").stat().st_mtime_ns == folder_time
    reframed = load_embeddings(ckpt, mine)
    assert calls == [1, 1]
    i = reframed.clip_ids.index("flute1")
    assert not torch.equal(reframed.vectors["pre_transformer"]["vision"][i], changed.vectors["pre_transformer"]["vision"][i])
    load_embeddings(ckpt, mine)
    assert calls == [1, 1]  # and then served from the cache again
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("TRIBERT_CACHE", str(blocked))
    with caplog.at_level("WARNING", logger="tribert"):
        fresh = load_embeddings(ckpt, mine)
    assert "retrieval cache" in caplog.text and "not written" in caplog.text
    assert torch.equal(fresh.vectors["transformer"]["pose"], reframed.vectors["transformer"]["pose"])


def test_a_no_pose_checkpoint_refuses_pose_variants_and_baselines_are_refused(tmp_path, clips):
    no_pose = load_embeddings(write_checkpoint(tmp_path / "np.ckpt", ["model.use_pose=false"]), clips)
    with pytest.raises(CheckpointError, match="audio2pose needs a pose stream"):
        train_retrieval(no_pose, tmp_path / "h", RetrievalConfig(variants=("audio2vision", "audio2pose"), epochs=1))
    assert not (tmp_path / "h" / "audio2vision.transformer.pt").exists()  # refused before any training
    sop = write_checkpoint(tmp_path / "sop.ckpt", ["model.kind=sound_of_pixels"])
    with pytest.raises(CheckpointError, match="needs a TriBERT checkpoint"):
        load_embeddings(sop, clips)
    with pytest.raises(ConfigError, match="unknown retrieval variant 'audio2smell'"):
        RetrievalConfig(variants=("audio2smell",)).check()


def test_heads_refuse_embeddings_of_another_checkpoint(tmp_path, clips):
    emb = load_embeddings(write_checkpoint(tmp_path / "a.ckpt"), clips)
    train_retrieval(emb, tmp_path / "h", RetrievalConfig(variants=("audio2vision",), epochs=1, width=16, hidden=16),
                    log=lambda *_: None)
    other = load_embeddings(write_checkpoint(tmp_path / "b.ckpt", seed=3), clips)
    with pytest.raises(TribertError, match="trained on embeddings of another checkpoint"):
        evaluate_retrieval(tmp_path / "h", other, pool=6)


@pytest.mark.parametrize("manifest, message", [
    ("{bad", "retrieval.json: corrupt retrieval manifest"),
    ("", "retrieval.json: corrupt retrieval manifest"),
    ("[1, 2]", "retrieval.json: not a retrieval manifest"),
    ('{"recipe": {"variants": ["audio2vision"]}}', "retrieval.json: not a retrieval manifest"),
    ('{"recipe": {"variants": [], "kinds": []}}', "retrieval.json: not a retrieval manifest"),  # no checkpoint
])
def test_a_damaged_manifest_or_head_is_one_line_naming_it(tmp_path, clips, manifest, message):
    emb = load_embeddings(write_checkpoint(tmp_path / "a.ckpt"), clips)
    heads = tmp_path / "h"
    train_retrieval(emb, heads, RetrievalConfig(variants=("audio2vision",), epochs=1, width=16, hidden=16),
                    log=lambda *_: None)
    head = next(heads.glob("*.pt"))
    stored = torch.load(head, weights_only=True)
    del stored["kind"]
    torch.save(stored, head)
    with pytest.raises(TribertError, match=f"{head.name}: not a readable retrieval head \\('kind'\\)"):
        evaluate_retrieval(heads, emb, pool=6)
    head.write_bytes(b"")  # numpy/torch's EOFError has no message: the handler's own line failed on it
    with pytest.raises(TribertError, match=f"{head.name}: not a readable retrieval head \\(EOFError\\)"):
        evaluate_retrieval(heads, emb, pool=6)
    (heads / "retrieval.json").write_text(manifest)
    with pytest.raises(TribertError, match=message):
        evaluate_retrieval(heads, emb, pool=6)


@pytest.mark.parametrize("lr", [0.0, float("nan"), float("inf")])
def test_a_learning_rate_that_is_not_finite_and_positive_is_refused(lr):
    # NaN reached torch's Adam as a traceback; inf trained to NaN weights and finished with exit code 0
    with pytest.raises(ConfigError, match="a finite lr > 0"):
        RetrievalConfig(lr=lr).check()


def test_library_calls_refuse_bad_outputs_and_pools_in_one_line(tmp_path, clips):
    from tribert.engine.checkpoint import export_weights

    ckpt = write_checkpoint(tmp_path / "a.ckpt")
    size = ckpt.stat().st_size
    with pytest.raises(TribertError, match="is an input of this command"):
        export_weights(ckpt, ckpt)  # the training checkpoint would lose its optimiser state
    assert ckpt.stat().st_size == size
    with pytest.raises(TribertError, match="is a folder"):
        export_weights(ckpt, tmp_path)
    emb = load_embeddings(ckpt, clips)
    (tmp_path / "file").write_text("mine")
    with pytest.raises(TribertError, match="file"):
        train_retrieval(emb, tmp_path / "file", RetrievalConfig(variants=("audio2vision",), epochs=1))
    train_retrieval(emb, tmp_path / "h", RetrievalConfig(variants=("audio2vision",), epochs=1, width=16, hidden=16))
    with pytest.raises(TribertError, match="at least 2 candidates"):
        evaluate_retrieval(tmp_path / "h", emb, pool=0)


def test_a_byte_identical_copy_of_the_checkpoint_serves_its_heads(tmp_path, clips):
    import os
    import shutil

    ckpt = write_checkpoint(tmp_path / "a.ckpt")
    train_retrieval(load_embeddings(ckpt, clips), tmp_path / "h",
                    RetrievalConfig(variants=("audio2vision",), epochs=1, width=16, hidden=16), log=lambda *_: None)
    copy = tmp_path / "moved" / "a.ckpt"
    copy.parent.mkdir()
    shutil.copyfile(ckpt, copy)  # a new file with a new modification time, the same bytes
    os.utime(copy, (1_000_000_000, 1_000_000_000))
    results = evaluate_retrieval(tmp_path / "h", load_embeddings(copy, clips, cache=False), pool=6)
    assert set(results["variants"]) == {"audio2vision"}


def test_heads_left_by_an_earlier_train_of_another_checkpoint_are_refused(tmp_path, clips):
    small = RetrievalConfig(variants=("audio2vision",), epochs=1, width=16, hidden=16)
    train_retrieval(load_embeddings(write_checkpoint(tmp_path / "a.ckpt"), clips), tmp_path / "h", small,
                    log=lambda *_: None)
    b = load_embeddings(write_checkpoint(tmp_path / "b.ckpt", seed=3), clips)
    train_retrieval(b, tmp_path / "h", RetrievalConfig(variants=("vision2audio",), epochs=1, width=16, hidden=16),
                    log=lambda *_: None)  # the folder still holds a.ckpt's audio2vision heads
    assert evaluate_retrieval(tmp_path / "h", b, pool=6)["variants"].keys() == {"vision2audio"}
    with pytest.raises(TribertError, match="head was trained on embeddings of another checkpoint"):
        evaluate_retrieval(tmp_path / "h", b, pool=6, variants=("audio2vision",))


# --- CLI ----------------------------------------------------------------------------------------

def test_cli_train_evaluate_table_json_and_figure(tmp_path, clips):
    ckpt = write_checkpoint(tmp_path / "a.ckpt")
    heads = tmp_path / "heads"
    res = runner.invoke(app, ["retrieve", "train", "--checkpoint", str(ckpt), "--data", str(clips),
                              "--out", str(heads), "--epochs", "2"])
    assert res.exit_code == 0, res.output
    assert len(list(heads.glob("*.pt"))) == 10  # 5 variants x 2 embedding kinds
    info = json.loads((heads / "retrieval.json").read_text())
    assert info["recipe"]["epochs"] == 2 and info["git"] and info["train_clips"] == 6
    out, fig = tmp_path / "r.json", tmp_path / "fig.png"
    res = runner.invoke(app, ["retrieve", "evaluate", "--heads", str(heads), "--data", str(clips),
                              "--pool", "6", "--out", str(out), "--figure", str(fig)])
    assert res.exit_code == 0, res.output
    assert "Audio -> Vision" in res.output and "Vision + Audio -> Pose" in res.output and "random" in res.output
    results = json.loads(out.read_text())["results"]
    assert set(results["variants"]) == set(VARIANTS) and results["chance"]["1"] == pytest.approx(100 / 6)
    row = results["variants"]["audio2pose"]["pre_transformer"]
    assert 0.0 <= row["top1"] <= row["top5"] <= row["top10"] == 100.0  # a pool of 6: top-10 holds all
    assert fig.stat().st_size > 10_000
    for flag, other, refusal in (("--figure", out, "--figure writes a PNG: give a name ending in .png"),
                                 ("--out", fig, "exists and is not a retrieval results JSON of tribert")):
        before = other.read_bytes()  # each output given the other's name: refused before any work
        res = runner.invoke(app, ["retrieve", "evaluate", "--heads", str(heads), "--data", str(clips),
                                  "--pool", "6", flag, str(other)])
        assert isinstance(res.exception, TribertError) and refusal in str(res.exception)
        assert other.read_bytes() == before
    mine = tmp_path / "mine.png"  # a file of the user's under a .png name is not replaced
    mine.write_text("not an image")
    res = runner.invoke(app, ["retrieve", "evaluate", "--heads", str(heads), "--data", str(clips), "--pool", "6",
                              "--figure", str(mine)])
    assert isinstance(res.exception, TribertError) and "exists and is not a PNG image" in str(res.exception)
    assert mine.read_text() == "not an image"
    same = tmp_path / "same.png"  # the figure was written over the results, both reported as written
    res = runner.invoke(app, ["retrieve", "evaluate", "--heads", str(heads), "--data", str(clips), "--pool", "6",
                              "--out", str(same), "--figure", str(same)])
    assert isinstance(res.exception, TribertError) and "--out and --figure name the same file" in str(res.exception)
    assert not same.exists()


def test_cli_train_refuses_a_clip_folder_and_too_few_clips_before_any_work(tmp_path, clips):
    """Heads were written into the input clips' folders; with 3 clips eight heads were trained and
    written before the count was checked."""
    import shutil

    ckpt = write_checkpoint(tmp_path / "a.ckpt")
    data = tmp_path / "data"
    shutil.copytree(clips, data)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    for out in (data, data / "violin0"):
        res = runner.invoke(app, ["retrieve", "train", "--checkpoint", str(ckpt), "--data", str(data),
                                  "--out", str(out), "--epochs", "1"])
        assert isinstance(res.exception, TribertError) and str(res.exception) == \
            f"{out}: holds prepared clips: give the retrieval heads a folder of their own"
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before
    three = tmp_path / "three"
    for d in sorted(data.iterdir())[:3]:
        shutil.copytree(d, three / d.name)
    res = runner.invoke(app, ["retrieve", "train", "--checkpoint", str(ckpt), "--data", str(three),
                              "--out", str(tmp_path / "h3"), "--epochs", "1"])
    assert isinstance(res.exception, TribertError)
    assert str(res.exception) == f"{three}: retrieval training needs at least 4 clips, found 3"
    assert not (tmp_path / "h3").exists()


@pytest.mark.parametrize("args, message", [
    (["--variant", "audio2smell"], "unknown retrieval variant 'audio2smell'"),
    (["--pool", "50"], "fewer than the pool of 50"),
    (["--figure", "fig.jpg"], "--figure writes a PNG: give a name ending in .png, got 'fig.jpg'"),  # wrote PNG bytes
])
def test_cli_errors_are_one_line(tmp_path, clips, args, message):
    ckpt = write_checkpoint(tmp_path / "a.ckpt")
    heads = tmp_path / "heads"
    assert runner.invoke(app, ["retrieve", "train", "--checkpoint", str(ckpt), "--data", str(clips), "--out",
                               str(heads), "--epochs", "1", "--variant", "audio2vision"]).exit_code == 0
    cmd = ["retrieve", "train", "--checkpoint", str(ckpt), "--data", str(clips), "--out", str(heads), "--epochs", "1"] \
        if "--variant" in args else ["retrieve", "evaluate", "--heads", str(heads), "--data", str(clips)]
    proc = subprocess.run([sys.executable, "-c", "from tribert.cli import main; main()", *cmd, *args],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_hard_distractors_come_from_the_query_neighbours_and_are_distinct():
    from tribert.engine.retrieval import distractors, nearest_neighbours

    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 8, generator=g)
    near = nearest_neighbours(x, 5)
    sim = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(x, dim=1).T
    for i in range(40):  # brute force: the 5 most similar other rows
        order = [j for j in sim[i].argsort(descending=True).tolist() if j != i][:5]
        assert set(near[i].tolist()) == set(order)
    queries = torch.arange(40)
    picks = distractors(queries, 40, 3, g, near, hard=2)  # 2 hard + 1 uniform
    for q, row in zip(queries.tolist(), picks.tolist()):
        assert q not in row and len(set(row)) == 3
        assert set(row[:2]) <= set(near[q].tolist())
    uniform = distractors(queries, 40, 2, g)
    assert all(q not in row and len(set(row)) == 2 for q, row in zip(queries.tolist(), uniform.tolist()))


def test_heads_trained_from_a_relative_checkpoint_path_evaluate_from_another_folder(tmp_path, clips, monkeypatch):
    (tmp_path / "work").mkdir()
    write_checkpoint(tmp_path / "work" / "a.ckpt")
    monkeypatch.chdir(tmp_path / "work")
    assert runner.invoke(app, ["retrieve", "train", "--checkpoint", "a.ckpt", "--data", str(clips), "--out",
                               str(tmp_path / "heads"), "--epochs", "1", "--variant", "audio2vision"]).exit_code == 0
    monkeypatch.chdir(tmp_path)  # retrieval.json must name the checkpoint so that it is found from here
    res = runner.invoke(app, ["retrieve", "evaluate", "--heads", str(tmp_path / "heads"), "--data", str(clips),
                              "--pool", "6"])
    assert res.exit_code == 0, res.output
    assert "Audio -> Vision" in res.output


def test_an_exported_checkpoint_serves_retrieval_and_its_figure(tmp_path, clips):
    ckpt = write_checkpoint(tmp_path / "a.ckpt")
    exported = tmp_path / "a.pt"
    assert runner.invoke(app, ["export", str(ckpt), str(exported)]).exit_code == 0
    heads, fig = tmp_path / "heads", tmp_path / "fig.png"
    res = runner.invoke(app, ["retrieve", "train", "--checkpoint", str(exported), "--data", str(clips),
                              "--out", str(heads), "--epochs", "1", "--variant", "audio2vision"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["retrieve", "evaluate", "--heads", str(heads), "--data", str(clips), "--pool", "6",
                              "--figure", str(fig)])
    assert res.exit_code == 0, res.output
    assert fig.stat().st_size > 10_000


@pytest.mark.parametrize("coattention", [True, False])
def test_alone_cuts_only_what_co_attention_carries_between_a_clips_streams(tmp_path, clips, coattention):
    from tribert.data.mixing import load_clips
    from tribert.engine.checkpoint import load_system
    from tribert.engine.retrieval import embed_clips

    ckpt = write_checkpoint(tmp_path / "c.ckpt", [f"model.coattention={str(coattention).lower()}"])
    system = load_system(ckpt)
    six = load_clips(clips, system.config.data.classes)
    own = embed_clips(system, six, batch_size=4)
    alone = embed_clips(system, six, batch_size=5, context="alone")
    for m in own.modalities():
        torch.testing.assert_close(alone.vectors["pre_transformer"][m], own.vectors["pre_transformer"][m])
        unchanged = torch.allclose(alone.vectors["transformer"][m], own.vectors["transformer"][m], atol=1e-5)
        assert unchanged is not coattention, m  # streams meet only through co-attention
    if coattention:  # every clip's embedding changed
        diff = (alone.vectors["transformer"]["audio"] - own.vectors["transformer"]["audio"]).abs().amax(1)
        assert bool((diff > 1e-4).all()), diff
