"""TriBERT: config, transformer streams and co-attention, heads, the assembled model and its sizes."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from tribert.config import from_dict, to_dict
from tribert.errors import ConfigError, TribertError
from tribert.models import ModelConfig, TriBERT, build_model, model_config, tiny_config
from tribert.models.base import SEPARATOR_MODULES
from tribert.models.coattention import TriModalCoAttention, TriModalEncoder
from tribert.models.heads import (AudioClassificationHead, WeakClassificationHead, classification_losses,
                                  logits_bce_loss, weak_bce_loss)
from tribert.models.info import count_macs, example_inputs, model_info
from tribert.models.tribert import TriBERTOutput, TriBERTTransformer, select_objects

STREAMS = ("vision", "pose", "audio")


def _tokens(cfg: ModelConfig, batch: int = 2, grad: bool = False) -> dict[str, torch.Tensor]:
    """Random encoder tokens [B, K, O, D_in] per stream (audio: one vector repeated, as in the model)."""
    g = torch.Generator().manual_seed(1)
    k, o = cfg.num_frames, cfg.num_objects
    toks = {"vision": torch.randn(batch, k, o, cfg.visual_dim, generator=g),
            "pose": torch.randn(batch, k, o, cfg.pose_dim, generator=g),
            "audio": torch.randn(batch, 1, 1, cfg.audio_dim, generator=g).expand(batch, k, o, -1).clone()}
    toks = {s: t for s, t in toks.items() if s in cfg.streams()}
    return {s: t.requires_grad_(grad) for s, t in toks.items()}


# --- config ------------------------------------------------------------------------------------

def test_config_defaults_are_the_paper():
    c = ModelConfig()
    assert (c.vision_hidden, c.pose_hidden, c.audio_hidden, c.num_heads) == (1024, 1024, 512, 8)
    assert (c.num_frames, c.num_objects, c.frame_size, c.spec_bins, c.spec_frames) == (3, 2, 224, 256, 256)
    assert (c.unet_depth, c.token_mask_prob, c.coattention_dim, c.num_layers) == (7, 0.15, 512, 6)
    assert c.visual_backbone == "resnet50" and c.pose_frames == 256 and c.num_classes == 21
    assert c.streams() == STREAMS and c.cond_dim() == 3 * 512
    assert c.coattention_layer_ids() == tuple(range(6))


def test_config_yaml_round_trip_and_validation():
    c = model_config("small")
    again = from_dict(ModelConfig, to_dict(c))
    assert again == c
    with pytest.raises(ConfigError, match="num_heads"):
        ModelConfig(vision_hidden=1020)
    with pytest.raises(ConfigError, match="divisible by 2\\*\\*unet_depth"):
        ModelConfig(spec_bins=200)
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(ModelConfig, {"hidden": 3})
    with pytest.raises(ConfigError, match="unknown model size"):
        model_config("huge")
    assert ModelConfig(use_vision=False, coattention=False).coattention_layer_ids() == ()
    assert ModelConfig(use_pose=False, sos_pool_dim=0).cond_dim() == 1024 + 512


# --- transformer and co-attention ---------------------------------------------------------------

@pytest.fixture(scope="module")
def paper_model() -> TriBERT:
    torch.manual_seed(0)
    return build_model("paper").eval()


@torch.no_grad()
def test_paper_transformer_shapes(paper_model):
    cfg = paper_model.config
    emb, hidden, pooled = paper_model.transformer(_tokens(cfg, batch=1))
    widths = {"vision": 1024, "pose": 1024, "audio": 512}
    for s in STREAMS:  # (1 SOS + 3 frames) x 2 objects = 8 tokens per stream
        assert emb[s].shape == hidden[s].shape == (1, 8, widths[s])
    assert pooled.shape == (1, 2, 1536)
    assert len(paper_model.transformer.encoder.co_blocks) == 6


@torch.no_grad()
def test_paper_heads_shapes(paper_model):
    h = torch.randn(1, 6, 1024)
    scores = paper_model.heads["vision"](h)
    assert scores.shape == (1, 21) and ((scores >= 0) & (scores <= 1)).all()
    assert paper_model.heads["audio"](torch.randn(1, 8, 512)).shape == (1, 21)


@torch.no_grad()
def test_paper_model_forward_batch1(paper_model):
    inputs = example_inputs(paper_model.config, batch_size=1, num_sources=2)
    out = paper_model(**inputs)
    assert out.mask_logits.shape == (1, 2, 1, 256, 256)
    assert out.vision_scores.shape == out.pose_scores.shape == out.audio_logits.shape == (1, 21)
    assert out.pooled_sos.shape == (1, 2, 1536)
    assert out.visual_attention.shape == (1, 3, 21, 7, 7)
    assert out.visual_top_classes.shape == (1, 3, 2)
    assert {s: h.shape[-1] for s, h in out.hidden.items()} == {"vision": 1024, "pose": 1024, "audio": 512}


@pytest.mark.parametrize("coattention", [True, False])
def test_streams_depend_on_each_other_only_through_coattention(coattention):
    torch.manual_seed(0)
    cfg = tiny_config(coattention=coattention)
    transformer = TriBERTTransformer(cfg).eval()  # eval: no dropout, no masking
    for target in STREAMS:
        tokens = _tokens(cfg, grad=True)
        _, hidden, _ = transformer(tokens)
        hidden[target].square().sum().backward()
        for source in STREAMS:
            grad = tokens[source].grad  # None: no path in the graph at all, i.e. exactly zero
            if source == target or coattention:
                assert grad is not None and grad.abs().sum() > 0, f"{target} does not see {source}"
            else:
                assert grad is None or not grad.any(), f"{target} sees {source} without co-attention"


def test_coattention_attends_over_the_other_streams_only():
    torch.manual_seed(0)
    block = TriModalCoAttention({"a": 8, "b": 8, "c": 4}, width=8, heads=2, ffn_dim=16, dropout=0.0,
                                attention_dropout=0.0).eval()
    h = {"a": torch.randn(1, 3, 8), "b": torch.randn(1, 5, 8), "c": torch.randn(1, 2, 4)}
    base = block(h)
    assert {s: t.shape for s, t in base.items()} == {s: t.shape for s, t in h.items()}
    # Changing stream a's own tokens changes its keys/values, which stream a never attends to:
    # its output changes only through its queries/residual, so other tokens of a stay independent.
    h2 = dict(h, a=h["a"].clone())
    h2["a"][:, 0] += 1.0
    out = block(h2)
    assert torch.allclose(out["a"][:, 1:], base["a"][:, 1:], atol=1e-6)
    assert not torch.allclose(out["b"], base["b"], atol=1e-6)


def test_gated_coattention_starts_as_the_model_without_it_and_opens_with_training():
    torch.manual_seed(0)
    gated = TriBERTTransformer(tiny_config(coattention_gate=True)).eval()
    plain = TriBERTTransformer(tiny_config(coattention=False)).eval()
    missing, unexpected = plain.load_state_dict(gated.state_dict(), strict=False)
    assert not missing and unexpected and all("co_blocks" in k for k in unexpected)
    tokens = _tokens(gated.config, grad=True)
    _, hidden, pooled = gated(tokens)
    _, hidden_plain, pooled_plain = plain(tokens)
    assert torch.allclose(pooled, pooled_plain, atol=1e-6)  # closed gates: exactly the ablation
    # ... but the gates get a gradient, so training can open them (tanh'(0) = 1).
    pooled.square().sum().backward()
    gates = [p for n, p in gated.named_parameters() if ".gate." in n]
    assert len(gates) == 2 * 3 and all(g.grad is not None and g.grad.abs().sum() > 0 for g in gates)
    # Once open, the streams meet: vision's output moves with the audio tokens.
    with torch.no_grad():
        for g in gates:
            g.fill_(0.5)
    tokens = _tokens(gated.config, grad=True)
    _, hidden, _ = gated(tokens)
    hidden["vision"].square().sum().backward()
    assert tokens["audio"].grad.abs().sum() > 0


@pytest.mark.parametrize("audio", [True, False])
def test_coattention_without_audio_keeps_the_mixture_stream_apart(audio):
    def reached(t: torch.Tensor) -> bool:
        return t.grad is not None and bool(t.grad.abs().sum() > 0)

    torch.manual_seed(0)
    transformer = TriBERTTransformer(tiny_config(coattention_audio=audio)).eval()
    tokens = _tokens(transformer.config, grad=True)
    _, hidden, _ = transformer(tokens)
    hidden["vision"].square().sum().backward(retain_graph=True)
    assert reached(tokens["pose"])  # the performer's streams still meet
    assert reached(tokens["audio"]) == audio
    tokens["vision"].grad = None
    hidden["audio"].square().sum().backward()
    assert reached(tokens["vision"]) == audio
    with pytest.raises(ConfigError, match="coattention_audio: false leaves one stream"):
        tiny_config(coattention_audio=False, use_pose=False).validate()


def test_coattention_with_detached_senders_reads_the_other_streams_without_training_them():
    torch.manual_seed(0)
    transformer = TriBERTTransformer(tiny_config(coattention_detach_senders=True)).eval()
    tokens = _tokens(transformer.config, grad=True)
    _, hidden, _ = transformer(tokens)
    hidden["vision"].square().sum().backward()
    # no gradient reaches the pose and audio inputs from a loss on vision, but the projections that
    # read them learn
    assert all(tokens[s].grad is None or not tokens[s].grad.any() for s in ("pose", "audio"))
    assert tokens["vision"].grad.abs().sum() > 0
    block = transformer.encoder.co_blocks["0"]
    assert block.k["pose"].weight.grad.abs().sum() > 0 and block.v["audio"].weight.grad.abs().sum() > 0
    # ... and the forward pass still reads them: vision's output moves with the pose tokens
    moved = dict(tokens, pose=tokens["pose"].detach() + 1.0)
    with torch.no_grad():
        assert not torch.allclose(transformer(moved)[1]["vision"], hidden["vision"], atol=1e-3)
    with pytest.raises(ConfigError, match="coattention_skip_absent and coattention_dropout need coattention: true"):
        tiny_config(coattention=False, coattention_detach_senders=True).validate()


def test_coattention_dropout_computes_the_dropped_samples_as_the_model_without_it():
    quiet = dict(dropout=0.0, attention_dropout=0.0, token_mask_prob=0.0)  # no other training noise
    torch.manual_seed(0)
    dropping = TriBERTTransformer(tiny_config(coattention_dropout=0.5, **quiet))
    plain = TriBERTTransformer(tiny_config(coattention=False, **quiet))
    plain.load_state_dict(dropping.state_dict(), strict=False)  # the same weights less co-attention
    tokens = _tokens(dropping.config, batch=64)
    with torch.no_grad():
        _, _, alone = plain.train()(tokens)
        _, _, read = dropping.eval()(tokens)  # evaluation always co-attends
        _, _, trained = dropping.train()(tokens)
    as_plain = torch.isclose(trained, alone, atol=1e-6).flatten(1).all(1)  # [64]
    as_read = torch.isclose(trained, read, atol=1e-6).flatten(1).all(1)
    assert not torch.isclose(read, alone, atol=1e-3).flatten(1).all(1).any()  # co-attention moves every sample
    assert bool((as_plain ^ as_read).all())  # each training sample is one or the other ...
    assert 16 <= int(as_plain.sum()) <= 48  # ... about half of them without co-attention (p = 0.5)
    with pytest.raises(ConfigError, match=r"coattention_dropout must be in \[0, 1\), got 1.0"):
        tiny_config(coattention_dropout=1.0).validate()


def test_coattention_skipping_absent_slots_does_not_read_them():
    # one co-attention block, before any self-attention (the "features" layout): what vision reads
    # of pose comes through that block alone, so pose's absent slot can reach vision only through it
    cfg = tiny_config(coattention_layout="features", coattention_layers=(0,))
    present = torch.tensor([[True, False], [True, True]])  # a solo and a duet
    moved_slot = lambda t: torch.cat([t[:, :, :1], t[:, :, 1:] + 3.0], dim=2)  # noqa: E731 (slot 1 moved)
    for skip, solo_moves in ((True, False), (False, True)):
        torch.manual_seed(0)
        transformer = TriBERTTransformer(dataclasses.replace(cfg, coattention_skip_absent=skip)).eval()
        tokens = _tokens(transformer.config)
        moved = dict(tokens, pose=moved_slot(tokens["pose"]))
        with torch.no_grad():
            before = transformer(tokens, present)[1]["vision"]
            after = transformer(moved, present)[1]["vision"]
        assert (not torch.allclose(before[0], after[0], atol=1e-4)) == solo_moves
        assert not torch.allclose(before[1], after[1], atol=1e-4)  # the duet's second performer is read
        # every slot present: the same as no mask
        with torch.no_grad():
            assert torch.allclose(transformer(tokens, torch.ones_like(present))[1]["vision"],
                                  transformer(tokens)[1]["vision"], atol=1e-5)
    with pytest.raises(ConfigError, match="coattention_skip_absent and coattention_dropout need coattention: true"):
        tiny_config(coattention=False, coattention_skip_absent=True).validate()


@torch.no_grad()
def test_the_model_skips_a_solos_empty_slot_in_coattention_only():
    models = []
    for skip in (False, True):
        torch.manual_seed(0)  # the field adds no weights: the same draw
        models.append(build_model("tiny", coattention_skip_absent=skip).eval())
    inputs = example_inputs(models[0].config, batch_size=2)
    objects = torch.tensor([[0], [0]])
    plain, skipping = (m(**dict(inputs, objects=objects)).pooled_sos for m in models)
    assert torch.allclose(plain, skipping, atol=1e-6)  # both performers present: nothing to skip
    inputs["pose"][0, 1] = 0.0  # video 0 is a solo: nobody in person slot 1
    plain, skipping = (m(**dict(inputs, objects=objects)).pooled_sos for m in models)
    assert not torch.allclose(plain[0], skipping[0], atol=1e-4)
    assert torch.allclose(plain[1], skipping[1], atol=1e-6)


def test_coattention_into_audio_only_leaves_the_performers_streams_as_without_coattention():
    def transformer(**fields) -> TriBERTTransformer:
        torch.manual_seed(1)
        return TriBERTTransformer(tiny_config(**fields)).eval()

    off = transformer(coattention=False)
    into_audio = transformer(coattention_receivers=("audio",), coattention_own_init=True)
    tokens = _tokens(off.config, grad=True)
    _, reference, _ = off(tokens)
    _, hidden, _ = into_audio(tokens)
    # vision and pose compute exactly what they would without co-attention; audio reads them
    assert torch.equal(hidden["vision"], reference["vision"]) and torch.equal(hidden["pose"], reference["pose"])
    assert not torch.allclose(hidden["audio"], reference["audio"], atol=1e-3)
    hidden["audio"].square().sum().backward()
    assert tokens["vision"].grad.abs().sum() > 0 and tokens["pose"].grad.abs().sum() > 0
    # only the receiver has queries and an output; only the performers lend keys and values
    block = into_audio.encoder.co_blocks["0"]
    assert set(block.q) == set(block.out) == {"audio"} and set(block.k) == set(block.v) == {"vision", "pose"}
    with pytest.raises(ConfigError, match=r"coattention_receivers \['piano'\] must be co-attending streams"):
        tiny_config(coattention_receivers=("piano",)).validate()


def test_coattention_layers_selection():
    enc = TriModalEncoder({"vision": 8, "audio": 4}, num_layers=3, heads=2, ffn_dim=8, coattention_dim=8,
                          coattention_layers=(1,))
    assert list(enc.co_blocks) == ["1"] and len(enc.self_blocks) == 3


def test_token_masking_in_training_never_masks_sos():
    torch.manual_seed(0)
    cfg = tiny_config(token_mask_prob=0.5, dropout=0.0, attention_dropout=0.0)
    transformer = TriBERTTransformer(cfg).train()
    tokens = _tokens(cfg, batch=4)
    emb, _, _ = transformer(tokens)
    o = cfg.num_objects
    for s in ("vision", "pose"):
        zero = transformer.embed[s](torch.zeros(cfg.visual_dim if s == "vision" else cfg.pose_dim))
        is_masked = torch.isclose(emb[s], zero, atol=1e-5).all(dim=-1)  # [B, L]
        assert not is_masked[:, :o].any(), "an SOS token was masked"
        frac = is_masked[:, o:].float().mean().item()
        assert 0.2 < frac < 0.8, f"{s}: {frac:.2f} of the frame tokens masked, expected ~0.5"
    zero_audio = transformer.embed["audio"](torch.zeros(cfg.audio_dim))
    assert not torch.isclose(emb["audio"], zero_audio, atol=1e-5).all(dim=-1).any()
    transformer.eval()  # no masking at test time
    emb_eval, _, _ = transformer(tokens)
    zero = transformer.embed["vision"](torch.zeros(cfg.visual_dim))
    assert not torch.isclose(emb_eval["vision"], zero, atol=1e-5).all(dim=-1).any()


# --- heads -----------------------------------------------------------------------------------------

def test_wsddn_head_on_hand_computed_tokens():
    """Two tokens (h = 0 and h = ln 3), two classes. Recognition logits (h, -h): token 1 (0.5, 0.5),
    token 2 (9/10, 1/10) over the classes. Detection logits (h, h): over the tokens (1/4, 3/4) for
    both classes. Scores = sum over tokens: (0.5/4 + 0.9 x 3/4, 0.5/4 + 0.1 x 3/4) = (0.8, 0.2)."""
    head = WeakClassificationHead(1, 2)
    with torch.no_grad():
        head.recognition.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        head.detection.weight.copy_(torch.tensor([[1.0], [1.0]]))
        head.recognition.bias.zero_()
        head.detection.bias.zero_()
    h = torch.tensor([[[0.0], [math.log(3.0)]]])  # [B=1, R=2, D=1]
    torch.testing.assert_close(head(h), torch.tensor([[0.8, 0.2]]))
    torch.manual_seed(0)
    head = WeakClassificationHead(6, 4)
    scores = head(torch.randn(3, 5, 6))
    assert ((scores > 0) & (scores < 1)).all()
    labels = torch.tensor([[1.0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]])
    loss = weak_bce_loss(scores, labels)
    assert torch.isfinite(loss) and loss > 0
    assert weak_bce_loss(labels, labels) < 1e-4  # perfect scores: ~zero loss, no log(0)
    # torch's own BCE is the reference, value and gradient
    mine, ref = scores.detach().clone().requires_grad_(), scores.detach().clone().requires_grad_()
    weak_bce_loss(mine, labels).backward()
    torch.nn.functional.binary_cross_entropy(ref, labels).backward()
    torch.testing.assert_close(weak_bce_loss(scores, labels), torch.nn.functional.binary_cross_entropy(scores, labels))
    torch.testing.assert_close(mine.grad, ref.grad)
    # a NaN score (a diverging run) is a NaN loss, which stops training in one line; torch's raised
    assert torch.isnan(weak_bce_loss(torch.full((1, 4), float("nan")), labels[:1]))


def test_audio_head_uses_the_mean_hidden_state():
    """fc = the first two features plus a bias of 1: the logits are the mean of those features over
    the tokens, plus 1 (tokens (1, 2, 9) and (3, 4, 9) -> (2 + 1, 3 + 1))."""
    head = AudioClassificationHead(3, 2)
    with torch.no_grad():
        head.fc.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        head.fc.bias.fill_(1.0)
    h = torch.tensor([[[1.0, 2.0, 9.0], [3.0, 4.0, 9.0]]])
    torch.testing.assert_close(head(h), torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(head(h.flip(1)), head(h))  # the order of the tokens does not matter
    assert torch.isfinite(logits_bce_loss(head(torch.randn(2, 8, 3)), torch.ones(2, 2)))


# --- the assembled tiny model --------------------------------------------------------------------

def _all_losses(out: TriBERTOutput, labels: torch.Tensor) -> torch.Tensor:
    target = (torch.rand_like(out.mask_logits) > 0.5).float()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out.mask_logits.float(), target.float())
    return loss + sum(classification_losses(out, labels).values())


def test_tiny_forward_backward_reaches_every_parameter():
    torch.manual_seed(0)
    model = build_model("tiny").train()
    inputs = example_inputs(model.config, batch_size=3, num_sources=3)  # objects -1, 0, 1
    labels = torch.zeros(3, model.config.num_classes)
    labels[:, 2] = 1
    out = model(**inputs)
    assert isinstance(out, TriBERTOutput)
    assert out.mask_logits.shape == (3, 3, 1, 32, 32)
    _all_losses(out, labels).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"no gradient: {missing[:5]}"
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradient: {bad[:5]}"


@torch.no_grad()
def test_whole_video_condition_and_objects_differ():
    torch.manual_seed(0)
    # The embedding reaches the U-Net (with posteriors only, an untrained class head's near-uniform
    # posteriors would make every object's mask nearly the same).
    model = build_model("tiny", whole_video_condition="present", condition_classes="posteriors").eval()
    inputs = example_inputs(model.config, batch_size=2)
    inputs["pose"][0, 1] = 0.0  # video 0 is a solo: nobody in person slot 1
    enc = model.encode(inputs["frames"], inputs["pose"], inputs["mix_logmag"])
    masks = model.separate(enc, torch.tensor([[-1, 0, 1], [-1, 0, 1]]))
    assert masks.shape == (2, 3, 1, 32, 32)
    # a solo's whole-video target is conditioned on its one performer, a duet's on both
    assert torch.allclose(masks[0, 0], masks[0, 1], atol=1e-6)
    assert not torch.allclose(masks[1, 0], masks[1, 1], atol=1e-4)
    assert not torch.allclose(masks[1, 0], masks[1, 2], atol=1e-4)
    assert not torch.allclose(masks[:, 1], masks[:, 2], atol=1e-4), "objects 0 and 1 give the same mask"
    # encode + separate is exactly forward
    out = model(**dict(inputs, objects=torch.tensor([[0], [1]])))
    assert torch.allclose(out.mask_logits[:, 0], torch.stack([masks[0, 1], masks[1, 2]]), atol=1e-5)


def test_select_objects_checks_objects():
    pooled = torch.arange(12.0).view(1, 2, 6)
    assert torch.equal(select_objects(pooled, torch.tensor([[1, -1]]))[0],
                       torch.stack([pooled[0, 1], pooled[0].mean(0)]))
    with pytest.raises(TribertError, match="objects"):
        select_objects(pooled, torch.tensor([[2]]))


@pytest.mark.parametrize("switch", ["use_vision", "use_pose", "coattention"])
def test_ablations_run(switch):
    torch.manual_seed(0)
    cfg = tiny_config(**{switch: False})
    model = TriBERT(cfg).train()
    inputs = example_inputs(cfg, batch_size=2, num_sources=2)
    out = model(**inputs)
    assert out.mask_logits.shape == (2, 2, 1, 32, 32)
    assert out.pooled_sos.shape[-1] == cfg.cond_dim()
    assert (out.vision_scores is None) == (switch == "use_vision")
    assert (out.pose_scores is None) == (switch == "use_pose")
    assert (not hasattr(model, "visual")) == (switch == "use_vision")
    if switch == "coattention":
        assert len(model.transformer.encoder.co_blocks) == 0
    _all_losses(out, torch.ones(2, cfg.num_classes)).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bad_inputs_give_one_line_errors():
    model = build_model("tiny").eval()
    inputs = example_inputs(model.config, batch_size=1)
    with pytest.raises(TribertError, match="frames must have shape"):
        model(**dict(inputs, frames=inputs["frames"][:, :2]))
    with pytest.raises(TribertError, match="pose is required"):
        model(**dict(inputs, pose=None))


# --- sizes and counting ---------------------------------------------------------------------------

def test_paper_size_parameter_count_is_pinned():
    """The README's model table: 254,851,162 parameters at the paper size (built on the meta
    device: no memory, no weights)."""
    with torch.device("meta"):
        model = build_model("paper")
    assert sum(p.numel() for p in model.parameters()) == 254_851_162


def test_named_sizes_and_every_small_deviation_is_documented():
    from tribert.models import small_config

    small, tiny, paper = model_config("small"), model_config("tiny"), ModelConfig()
    assert (small.spec_bins, small.spec_frames, small.unet_depth, small.film) == (128, 128, 6, True)
    assert tiny.spec_bins == 32 and tiny.num_frames == 3 and tiny.num_objects == 2
    assert (paper.size, small.size, tiny.size) == ("paper", "small", "tiny")
    for f in dataclasses.fields(ModelConfig):
        if f.name != "size" and getattr(small, f.name) != getattr(paper, f.name):
            assert f.name in _DOC_WORDS, f"small changes {f.name}: document it in small_config"
            assert _DOC_WORDS[f.name] in small_config.__doc__, f.name


# field -> the words small_config's docstring uses for it
_DOC_WORDS = {
    "frame_size": "64 x 64", "pose_frames": "T = 32", "spec_bins": "128 x 128", "spec_frames": "128 x 128",
    "visual_backbone": "ResNet-18", "visual_width": "width 8", "visual_dim": "128-d tokens",
    "pose_channels": "8, 16, 16", "pose_strides": "strides 2, 1, 2", "pose_dim": "128-d tokens",
    "vggish_channels": "4..64",
    "audio_dim": "64-d vector", "vision_hidden": "width 128", "pose_hidden": "width 128",
    "audio_hidden": "width 128", "num_layers": "2 layers", "num_heads": "4 heads", "ffn_dim": "FFN 256",
    "coattention_dim": "co-attention width 128", "sos_pool_dim": "SOS pooler 64", "unet_depth": "depth 6",
    "unet_base_channels": "8..128", "unet_max_channels": "8..128", "film": "FiLM",
    "condition_norm": "layer-normalised", "whole_video_condition": "present performer",
    "condition_classes": "posteriors", "class_teacher_forcing": "true class in their place",
    "dropout": "no dropout", "attention_dropout": "attention dropout",
    "visual_dropout": "visual", "token_mask_prob": "token masking", "coattention_layout": "ViLBERT layout",
    "heads_include_sos": "frame\n      tokens only",
}


def test_mac_counting_is_exact_on_known_layers():
    net = torch.nn.Sequential()
    net.add_module("a", torch.nn.Sequential(torch.nn.Linear(4, 3)))
    net.add_module("b", torch.nn.Sequential(torch.nn.Conv2d(2, 5, 3, padding=1)))

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = net.a, net.b

        def forward(self, x, y):
            return self.a(x), self.b(y)

    macs = count_macs(Wrap(), {"x": torch.randn(2, 4), "y": torch.randn(1, 2, 6, 6)})
    assert macs == {"a": 2 * 3 * 4, "b": 5 * 36 * 2 * 9}


def test_model_info_tiny_counts_every_parameter():
    model = build_model("tiny")
    infos = model_info(model)
    assert [i.name for i in infos] == ["visual", "pose", "audio", "transformer", "heads", "condition_layers",
                                       "separator"]
    assert sum(i.params for i in infos) == sum(p.numel() for p in model.parameters())
    assert all(i.macs > 0 for i in infos)


def test_cli_model_info_prints_a_table():
    from typer.testing import CliRunner

    from tribert.cli import app

    result = CliRunner().invoke(app, ["model-info", "--size", "tiny"])
    assert result.exit_code == 0, result.output
    for word in ("visual", "pose", "audio", "transformer", "heads", "separator", "total"):
        assert word in result.output
    # a recipe's model, as training builds it: the synth_tiny recipe adds the motion guide to the tiny size
    from tribert.config import Config

    recipe = CliRunner().invoke(app, ["model-info", "--config", "synth_tiny", "--set", "model.coattention=true"])
    assert recipe.exit_code == 0, recipe.output
    trained = build_model(Config.load("synth_tiny", ["model.coattention=true"]).model)
    assert f"{sum(p.numel() for p in trained.parameters()):,}" in recipe.output and "motion" in recipe.output
    assert "motion" not in result.output
    for args in (["--config", "synth_tiny", "--size", "tiny"], ["--set", "model.size=tiny"]):
        refused = CliRunner().invoke(app, ["model-info", *args])
        assert refused.exit_code == 2 and "error:" in refused.output


def test_features_coattention_pairs_aligned_tokens_of_the_other_streams():
    """Authors' layout: query token i attends over key j built from token j of *both* other
    streams (half width each), so changing another stream's token j changes every query's output,
    while the streams' own keys stay out of their attention."""
    torch.manual_seed(0)
    block = TriModalCoAttention({"a": 8, "b": 8, "c": 8}, width=8, heads=2, ffn_dim=16, dropout=0.0,
                                attention_dropout=0.0, layout="features").eval()
    assert block.k["b"].out_features == 4 and block.q["a"].out_features == 8  # half-width keys
    h = {s: torch.randn(1, 4, 8) for s in "abc"}
    base = block(h)
    with pytest.raises(RuntimeError):  # token counts must line up in this layout
        block(dict(h, c=torch.randn(1, 3, 8)))
    h2 = dict(h, b=h["b"].clone())
    h2["b"][:, 2] += 1.0
    out = block(h2)
    assert not torch.allclose(out["a"], base["a"], atol=1e-6) and not torch.allclose(out["c"], base["c"], atol=1e-6)
    assert torch.allclose(out["b"][:, [0, 1, 3]], base["b"][:, [0, 1, 3]], atol=1e-6)


def test_encoder_order_follows_the_layout():
    """'features' runs co-attention before the layer's self-attention, 'tokens' after it: with one
    layer, a stream's output in the 'features' order ends with its own self-attention block."""
    torch.manual_seed(0)
    dims = {"vision": 8, "audio": 8}
    h = {s: torch.randn(1, 4, 8) for s in dims}
    for layout in ("features", "tokens"):
        enc = TriModalEncoder(dims, num_layers=1, heads=2, ffn_dim=8, coattention_dim=8, coattention_layers=(0,),
                              dropout=0.0, attention_dropout=0.0, layout=layout).eval()
        co, self_blocks = enc.co_blocks["0"], enc.self_blocks[0]
        if layout == "features":
            mid = co(h)
            expected = {s: self_blocks[s](mid[s]) for s in dims}
        else:
            expected = co({s: self_blocks[s](h[s]) for s in dims})
        out = enc(h)
        assert all(torch.allclose(out[s], expected[s], atol=1e-6) for s in dims), layout


def test_class_teacher_forcing_only_in_training():
    torch.manual_seed(0)
    cfg = tiny_config(condition_classes="posteriors", class_teacher_forcing=1.0, condition_norm="layernorm")
    model = TriBERT(cfg)
    inputs = example_inputs(cfg, batch_size=2, num_sources=2)
    labels = torch.tensor([[3, -1], [5, 7]])
    model.eval()
    with torch.no_grad():
        enc = model.encode(inputs["frames"], inputs["pose"], inputs["mix_logmag"])
        plain, _ = model.condition(enc, inputs["objects"])
        given, _ = model.condition(enc, inputs["objects"], labels)
        assert torch.equal(plain, given), "evaluation must never use the labels"
        model.train()
        forced, logits = model.condition(enc, inputs["objects"], labels)
    c = cfg.num_classes
    assert torch.equal(forced[0, 0, -c:], torch.nn.functional.one_hot(torch.tensor(3), c).float())
    assert torch.allclose(forced[0, 1, -c:], logits[0, 1].softmax(-1))  # unknown class: the prediction
    assert torch.allclose(forced[..., :-c], plain[..., :-c])  # the embedding part is untouched
    with pytest.raises(ConfigError, match="class_teacher_forcing"):
        tiny_config(condition_classes="loss", class_teacher_forcing=0.5)


def test_class_dropout_shows_the_unknown_posterior_in_training_only():
    torch.manual_seed(0)
    cfg = tiny_config(condition_classes="posteriors_only", class_teacher_forcing=1.0, class_dropout=0.4,
                      condition_norm="layernorm")
    model = TriBERT(cfg)
    inputs = example_inputs(cfg, batch_size=2, num_sources=2)
    labels = torch.tensor([[3, 4], [5, 7]])
    c = cfg.num_classes
    uniform = torch.full((c,), 1.0 / c)
    with torch.no_grad():
        enc = model.encode(inputs["frames"], inputs["pose"], inputs["mix_logmag"])
        model.train()
        drawn = torch.stack([model.condition(enc, inputs["objects"], labels)[0] for _ in range(300)])  # [300, B, S, C]
        model.eval()
        plain, logits = model.condition(enc, inputs["objects"], labels)
    dropped = torch.isclose(drawn, uniform).all(-1)  # [300, B, S]
    truth = torch.nn.functional.one_hot(labels, c).float()
    assert torch.equal(drawn[~dropped], truth.expand_as(drawn)[~dropped]), "kept rows show the true class"
    assert abs(dropped.float().mean().item() - 0.4) < 0.05  # 1200 draws: 3 standard deviations ~ 0.04
    assert torch.allclose(plain, logits.softmax(-1)) and not torch.isclose(plain, uniform).all(-1).any()
    with pytest.raises(ConfigError, match="class_dropout"):
        tiny_config(condition_classes="loss", class_teacher_forcing=0.0, class_dropout=0.3)
    with pytest.raises(ConfigError, match="class_dropout"):
        tiny_config(condition_classes="posteriors", class_dropout=1.0)



def test_posteriors_only_condition_is_the_class_distribution():
    torch.manual_seed(0)
    cfg = tiny_config(condition_classes="posteriors_only", condition_norm="layernorm")
    model = TriBERT(cfg).eval()
    inputs = example_inputs(cfg, batch_size=2, num_sources=2)
    out = model(**inputs)
    assert cfg.unet_cond_dim() == cfg.num_classes
    with torch.no_grad():
        enc = model.encode(inputs["frames"], inputs["pose"], inputs["mix_logmag"])
        cond, logits = model.condition(enc, inputs["objects"])
    assert cond.shape == (2, 2, cfg.num_classes)
    assert torch.allclose(cond.sum(-1), torch.ones(2, 2), atol=1e-5)  # a distribution over classes
    assert torch.allclose(cond, logits.softmax(-1))
    out.mask_logits.sum().backward()  # the separation gradient reaches the class head through the posteriors
    assert model.condition_layers["head"].weight.grad.abs().sum() > 0


def test_audio_encoder_class_head_trains_the_audio_encoder_on_the_mixture_classes():
    from tribert.models.heads import classification_losses

    torch.manual_seed(0)
    cfg = tiny_config(audio_encoder_classes=True)
    model = TriBERT(cfg)
    inputs = example_inputs(cfg, batch_size=2, num_sources=1)
    out = model(**inputs)
    assert out.audio_encoder_logits.shape == (2, cfg.num_classes)
    mixture = torch.zeros(2, cfg.num_classes)
    mixture[:, [1, 4]] = 1.0
    loss = classification_losses(out, mixture, mixture_labels=mixture)["audio_encoder"]
    loss.backward()
    assert model.audio.parameters().__next__().grad.abs().sum() > 0  # the encoder itself is trained
    assert all(p.grad is None for p in model.pose.parameters())  # and nothing outside its path
    assert "audio_encoder" not in classification_losses(TriBERT(tiny_config())(**inputs), mixture,
                                                        mixture_labels=mixture)


def test_separator_modules_name_what_build_separator_builds():
    # separator_own_init draws what _build_separator builds; clip_separator_apart clips SEPARATOR_MODULES
    built = nn.Module()
    TriBERT._build_separator(built, tiny_config(motion_guide=8))
    assert set(dict(built.named_children())) == set(SEPARATOR_MODULES)


def test_gated_coattention_own_init_starts_as_the_model_without_coattention():
    def build(**fields) -> TriBERT:
        torch.manual_seed(5)
        return TriBERT(tiny_config(**fields)).eval()

    off = build(coattention=False, coattention_own_init=True)  # the field is set in every arm
    inputs = example_inputs(off.config, batch_size=2, num_sources=2)
    shared = lambda m: {k: v for k, v in m.state_dict().items() if ".co_blocks." not in k}
    drawn_apart = build(coattention=True, coattention_gate=True, coattention_own_init=True)
    drawn_after = build(coattention=True, coattention_gate=True)
    # every weight but co-attention's is the draw of the model without it ...
    assert shared(drawn_apart).keys() == shared(off).keys()
    assert all(torch.equal(v, shared(off)[k]) for k, v in shared(drawn_apart).items())
    # ... and with closed gates it computes the same masks (not so when drawn from the global generator)
    with torch.no_grad():
        reference = off(**inputs).mask_logits
        assert torch.allclose(drawn_apart(**inputs).mask_logits, reference, atol=1e-6)
        assert not torch.allclose(drawn_after(**inputs).mask_logits, reference, atol=1e-3)
    # the co-attention draw itself still follows the run's seed
    torch.manual_seed(6)
    other = TriBERT(tiny_config(coattention=True, coattention_gate=True, coattention_own_init=True))
    assert not torch.equal(other.transformer.encoder.co_blocks["0"].q["vision"].weight,
                           drawn_apart.transformer.encoder.co_blocks["0"].q["vision"].weight)


def test_separator_own_init_gives_co_attention_ablations_the_same_separator():
    def separator_weights(own: bool, coattention: bool) -> dict:
        torch.manual_seed(3)
        model = TriBERT(tiny_config(coattention=coattention, separator_own_init=own))
        return {k: v for k, v in model.state_dict().items() if k.startswith("separator.")}

    def same(a: dict, b: dict) -> bool:
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # without it the transformer's extra weights move the global generator: another U-Net draw
    assert not same(separator_weights(False, True), separator_weights(False, False))
    assert same(separator_weights(True, True), separator_weights(True, False))
    # ... and the draw still follows the run's seed
    torch.manual_seed(4)
    other = {k: v for k, v in TriBERT(tiny_config(separator_own_init=True)).state_dict().items()
             if k.startswith("separator.")}
    assert not same(other, separator_weights(True, True))
    with pytest.raises(ConfigError, match="separator_own_init is for kind: tribert"):
        ModelConfig(kind="audio_only", separator_own_init=True).validate()


def test_condition_loss_is_the_cross_entropy_of_the_known_sources_and_finite_without_any():
    from types import SimpleNamespace

    torch.manual_seed(0)
    logits = torch.randn(3, 2, 5, requires_grad=True)  # [V, P, C]
    source_labels = torch.tensor([[4, -1], [0, 2], [-1, -1]])
    loss = classification_losses(SimpleNamespace(condition_logits=logits), torch.zeros(3, 5),
                                 source_labels=source_labels)["condition"]
    # reference: -log softmax at the true class, averaged over the three known sources
    log_p = logits.detach().log_softmax(-1)
    expected = -(log_p[0, 0, 4] + log_p[1, 0, 0] + log_p[1, 1, 2]) / 3
    assert torch.allclose(loss.detach(), expected, atol=1e-6)
    loss.backward()
    assert not logits.grad[0, 1].any() and not logits.grad[2].any() and logits.grad[1].abs().sum() > 0
    # no known source: a zero loss with a zero gradient, not 0 / 0
    none = classification_losses(SimpleNamespace(condition_logits=logits), torch.zeros(3, 5),
                                 source_labels=torch.full((3, 2), -1))["condition"]
    logits.grad = None
    none.backward()
    assert none.item() == 0.0 and not logits.grad.any()
