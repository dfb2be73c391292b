"""``ModelConfig``: which separator to build (``kind``), at which named ``size``, and every width,
depth and switch of it, in one dataclass.

The defaults are the paper's (NeurIPS 2021, section 3.2 / Implementation Details). Where the
paper and the authors' public code disagree, the field comment gives both and says which one is
the default. The CPU-scale ``small`` and unit-test ``tiny`` sizes are built by the size factories
in :mod:`tribert.config.sizes` (each documents its deviations from the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

from tribert.config.sections import MUSIC21_CLASSES
from tribert.errors import ConfigError

# The separators ``tribert.models.build_separator`` builds: TriBERT and the comparison baselines.
KINDS = ("tribert", "sound_of_pixels", "music_gesture", "audio_only")
FUSIONS = ("attention", "concat", "none")  # how the condition enters the U-Net's bottleneck
UPSAMPLES = ("transpose", "bilinear")  # the U-Net's up-sampling

BACKBONES = ("resnet18", "resnet50")  # what tribert.models.resnet builds
CONDITION_NORMS = ("sigmoid", "layernorm", "none")
MASK_SHARING = ("none", "cap", "partition")  # how the masks of one mixture's sources relate
CONDITION_CLASSES = ("none", "loss", "posteriors", "posteriors_only")


@dataclass
class ModelConfig:
    """Sizes of the whole TriBERT model. Defaults = paper size."""

    kind: str = "tribert"  # which separator: tribert | sound_of_pixels | music_gesture | audio_only
    size: str = "paper"  # the named size whose factory gave the defaults below (paper | small | tiny)
    num_classes: int = len(MUSIC21_CLASSES)  # 21 for MUSIC21, 11 after the MUSIC fine-tune

    # --- Inputs -----------------------------------------------------------------------------
    frame_size: int = 224  # square RGB frames of the visual net (paper 224x224)
    num_frames: int = 3  # K consecutive frames per video (paper 3)
    num_objects: int = 2  # tokens per frame: top-2 detected objects / 2 persons (paper 2)
    pose_frames: int = 256  # T of the ST-GCN pose sequence (paper T=256)
    spec_bins: int = 256  # rows of the log-frequency spectrogram (paper 256)
    spec_frames: int = 256  # STFT frames of a crop (paper 256 = 65535 samples / hop 256)

    # --- Visual segmentation net -------------------------------------------
    visual_backbone: str = "resnet50"  # paper: ResNet50; "resnet18" for the CPU sizes
    visual_width: int = 64  # channels of the ResNet stem (torchvision: 64); narrow for CPU sizes
    visual_layers: tuple[int, ...] = ()  # blocks per ResNet stage; () = the backbone's standard
    visual_dim: int = 1024  # token width out of the visual net (paper 3x2x1024)
    visual_dropout: float = 0.2  # the two dropouts of the expansive detector (authors' code 0.2)
    # Decoupled attention: "paper" (eq. 1-2, spatially normalised; default) or "code" (the
    # authors' code: softmax over classes). See tribert.models.visual.
    visual_attention: str = "paper"
    visual_weights: str = ""  # optional torchvision-style ImageNet checkpoint for the trunk

    # --- Pose ST-GCN ------------------------------------------------------------------------
    # ST-GCN layer widths (st-gcn repository: 64,64,64,64,128,128,128,256,256,256; the paper
    # takes the 256-channel features before the classifier).
    pose_channels: tuple[int, ...] = (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
    pose_strides: tuple[int, ...] = ()  # temporal stride per layer; () = st-gcn: 2 where width grows
    pose_dim: int = 1024  # token width out of the pose encoder (paper 3x2x1024)
    # The ST-GCN as a fixed feature extractor, as in the paper and the authors' code (they
    # retrained st-gcn on their keypoints separately and fed TriBERT its stored features): no
    # gradient, BN on its running statistics; the linear layer to tokens still trains. Its
    # weights come from train.init_from (a run that trained it); without, they stay random.
    pose_frozen: bool = False

    # --- Audio VGGish -----------------------------------------------------------------------
    vggish_channels: tuple[int, ...] = (64, 128, 256, 512, 512)  # VGGish conv stages
    audio_dim: int = 512  # the one audio vector (paper/code: 512)

    # --- TriBERT transformer ----------------------------------------------------------------
    vision_hidden: int = 1024  # stream widths (paper: 1024 / 1024 / 512)
    pose_hidden: int = 1024
    audio_hidden: int = 512
    num_layers: int = 6  # paper: not stated; code: 6 layers per stream (v/p/a_num_hidden_layers)
    num_heads: int = 8  # paper and code: 8 heads in every stream and in co-attention
    ffn_dim: int = 1024  # feed-forward width of every block (code: *_intermediate_size 1024)
    coattention_dim: int = 512  # Q/K/V width of tri-modal co-attention (code: bi_hidden_size 512)
    coattention_layers: tuple[int, ...] = ()  # layers followed by co-attention; () = all (code)
    coattention: bool = True  # ablation "without co-attention": False = streams never meet
    use_vision: bool = True  # ablation "without vision": the vision stream is removed entirely
    use_pose: bool = True  # ablation "without pose": the pose stream is removed entirely
    token_mask_prob: float = 0.15  # training-time masking of vision/pose frame tokens (paper 15%)
    dropout: float = 0.1  # hidden dropout of the transformer (code 0.1)
    attention_dropout: float = 0.1  # attention-probability dropout (code 0.1)
    # Each stream's SOS output goes through a pooler (Linear + ReLU, ViLBERT's image pooler) to
    # this width before the three are concatenated into the separator's condition
    # (code: 3 x 512 = 1536). 0 = no pooler: the condition is the raw concatenation
    # (vision_hidden + pose_hidden + audio_hidden).
    sos_pool_dim: int = 512
    # The pooler's activation: "relu" (ViLBERT's image pooler, the authors' code) or "tanh" (BERT's
    # text pooler: no unit can die, so the condition cannot collapse to a constant).
    sos_pool_activation: str = "relu"
    # The separator's condition for source (video v, object o), from the pooled SOS [O, Dc]:
    # - condition_norm: "sigmoid" (the authors' code: img_activation sigmoid; default),
    #   "layernorm" (zero-mean unit-variance, no drifting scale), "none".
    # - whole_video_condition: what a whole-video target (object -1) is conditioned on. "mean"
    #   over the object slots (the authors' code; default), or "present": the mean over the slots
    #   whose pose person is there (a solo's one performer, not the empty second slot; without a
    #   pose stream, slot 0, the best-scoring visual object).
    # - condition_classes: "none" (paper), "loss" = a linear class head on each source's condition
    #   trained with cross-entropy against that source's class (train.condition_weight), or
    #   "posteriors" = the same head, and its softmax posteriors are appended to the condition the
    #   U-Net sees (a class "one-hot" that the separator can use while the embedding still moves),
    #   or "posteriors_only" = the U-Net sees the posteriors alone (the audio-only control's one-hot
    #   interface, predicted; the embedding reaches the separator only through the class head).
    condition_norm: str = "sigmoid"
    whole_video_condition: str = "mean"
    condition_classes: str = "none"
    # A linear class head on the audio encoder's own output (before the transformer), trained with
    # BCE against the classes heard in the mixture (train.audio_encoder_weight). Without it the
    # audio encoder's output stays almost constant across clips: the transformer's audio head can
    # name the classes from the other streams through co-attention, so the encoder never has to hear.
    audio_encoder_classes: bool = False
    # Training only, with condition_classes "posteriors" / "posteriors_only": the probability that
    # a source with a known class shows the U-Net the true class one-hot in place of the predicted
    # posteriors, so the separator learns class-conditioned masks at once while the encoders still
    # learn to see. Evaluation and inference always use the predicted posteriors. At 1.0 with
    # "posteriors_only" (the CPU recipes) the separation loss trains the U-Net and reaches the
    # encoders only through sources without a known class; the classification losses train them.
    class_teacher_forcing: float = 0.0
    # Training only, with condition_classes "posteriors" / "posteriors_only": the probability that
    # a source's class input (true or predicted) is replaced by the uniform "unknown" posterior, so
    # the U-Net must separate that source from its motion guide alone: the skill that tells two
    # players of one instrument apart, which the class cannot. Evaluation never drops it.
    class_dropout: float = 0.0
    # The separator (U-Net and motion guide) draws its initial weights from a generator seeded by the
    # run's seed alone, not from wherever the encoders and transformer left the global one. Two
    # models that differ only in their encoders or transformer (the co-attention and stream
    # ablations) then start from the same separator, so their difference is not a different draw
    # of U-Net weights (paired ablations). TriBERT only.
    separator_own_init: bool = False
    # The same for the co-attention blocks: they are drawn from a generator seeded by the run's seed
    # alone, so every other weight is the same draw as in the model without co-attention. With
    # coattention_gate as well, the two models start as the same function. Set it in every arm of a
    # comparison (with coattention: false there is nothing to draw apart, and the draw is the same).
    coattention_own_init: bool = False
    # The WSDDN vision/pose heads see every token including the SOS position (authors' code; the
    # paper's eq. 3-4 sum over "regions"); False = only the K*O frame tokens.
    heads_include_sos: bool = True
    # Co-attention layout. "features" (authors' code): keys/values of each other stream are
    # projected to coattention_dim / (streams - 1) and concatenated along the per-head feature
    # axis of position-aligned tokens; co-attention runs *before* each layer's self-attention.
    # "tokens": full-width keys/values concatenated along the token axis, after self-attention
    # (the ViLBERT order).
    coattention_layout: str = "features"
    # Gated co-attention (not in the paper; Flamingo's tanh gate): each stream takes a co-attention
    # block's update through tanh(alpha), alpha = 0 at initialisation, so training starts from the
    # "without co-attention" model and opens the gates only as far as the loss gains.
    coattention_gate: bool = False
    # The audio stream takes part in co-attention (paper). False (not in the paper): only vision and
    # pose co-attend, the per-performer streams. The audio stream here is one vector of the
    # *mixture* repeated over every token, the same for both videos of a mixture: as a co-attention
    # partner it can only add the same mixture-level update to every performer's tokens.
    coattention_audio: bool = True
    # The co-attending streams that take co-attention's update (not in the paper, where every stream
    # does); the others only lend their keys and values. () = all. ["audio"]: the audio stream (one
    # mixture vector, the same for both videos) reads this video's performers, and the vision and
    # pose streams compute what they would without co-attention.
    coattention_receivers: tuple[str, ...] = ()
    # Co-attention reads the other streams without training them (not in the paper): their hidden
    # states enter the keys and values with the gradient stopped, so a stream's encoder and
    # self-attention learn only from the losses on that stream, as without co-attention, while
    # the co-attention projections and the receiving stream learn to use what they read.
    coattention_detach_senders: bool = False
    # Co-attention reads only the object slots that hold a performer (not in the paper): a solo's
    # second slot is an empty pose person and the visual net's second-best class, an instrument
    # that is not in the video, and without this every stream of a solo reads it. Self-attention
    # still sees every slot. The performers: the pose stream's present persons (every slot where
    # nobody is detected), or the best visual object without a pose stream.
    coattention_skip_absent: bool = False
    # Co-attention dropout (not in the paper; ModDrop, Neverova et al. 2016): in training, each
    # video skips every co-attention block with this probability, so it is processed as by the
    # model without co-attention. Without it the vision and audio streams learn to read the class
    # off the pose through co-attention and the frame encoder learns less of it (a lazy modality),
    # which costs where the pose is wrong or missing at test time. Measured at 0.5: co-attention's
    # deficit at 3000 steps shrank, its lead at 1000 was lost (docs/results/learning.md,
    # "Co-attention dropout"). 0 = off; evaluation always co-attends.
    coattention_dropout: float = 0.0
    # Motion guide (not in the paper; tribert.models.motion): each performer's pose sequence through
    # a small temporal conv net of this width, drawn as motion_guide_maps time-frequency maps that the
    # U-Net reads beside the mixture, so the separator knows when and where in pitch *this*
    # performer plays (what tells two players of one instrument apart). 0 = off (paper). Needs the
    # pose stream: a "without pose" ablation has no guide either.
    motion_guide: int = 0
    motion_guide_maps: int = 4
    # ... and the same motion features modulate every U-Net decoder level over time (a FiLM per
    # channel and time frame), beside the maps at the input.
    motion_guide_film: bool = False
    # ... and the maps are drawn from this performer's motion *beside* the mean motion of the other
    # performers in the same video (zero for a solo), so a duet's separator compares the two players
    # ("she strikes here, he does not") instead of judging one player's movement on its own.
    motion_guide_partners: bool = False
    # ... and the maps are drawn through a hidden per-frame layer of this width (1x1 conv + ReLU)
    # instead of one linear map: 0 = linear. A linear draw can only add up fixed frequency profiles
    # weighted by the motion features; where the hand sits maps to pitch, and pitch to a harmonic
    # comb, through a non-linear map.
    motion_guide_hidden: int = 0
    # ... and that hidden layer also reads the source's condition (the class the U-Net is given,
    # with condition_classes: posteriors_only), so one hand position can draw a different pitch and
    # timbre for each instrument. Needs motion_guide_hidden (a linear draw would only add a constant
    # map per class).
    motion_guide_condition: bool = False

    # --- Separator: attention U-Net ---------------------------------------------------------
    unet_depth: int = 7  # stride-2 down/up levels. paper: 7 (default); code: 4 (16x16 bottleneck)
    unet_base_channels: int = 64  # first level width, doubling per level ...
    unet_max_channels: int = 512  # ... capped here (Sound-of-Pixels unet7: 64 -> 512)
    # Convolutions per level: 1 = the paper's "7 convolutions and 7 de-convolutions" (default);
    # 2 = the authors' code (conv-BN-ReLU twice per level).
    unet_convs_per_level: int = 1
    # Up-sampling: "transpose" = 2x2 stride-2 transposed conv (paper's "de-convolutions" and the
    # authors' code; default), "bilinear" = bilinear x2 + 3x3 conv (Sound-of-Pixels).
    unet_upsample: str = "transpose"
    attention_gates: bool = True  # additive attention gates on the skips (Oktay et al. 2018)
    # How the condition enters the bottleneck: "attention" = the authors' early fusion
    # (h = softmax(a*f)*f + a; z = MLP(h) + h), "concat" = tile and concatenate then 1x1 conv,
    # "none" = not at the bottleneck (use with film=True).
    fusion: str = "attention"
    film: bool = False  # FiLM scale/shift from the condition at every decoder level
    # How the masks of one mixture's sources relate (training, evaluation and separation alike):
    # "none" = each source's mask on its own (paper), "cap" = where they sum to more than 1 at a
    # time-frequency bin they are scaled down to sum to 1 (together they cannot hold more than the
    # mixture), "partition" = scaled to sum to 1 at every bin (the sources split each bin, so two
    # sources must compete for it).
    mask_sharing: str = "none"

    def __post_init__(self) -> None:
        self.visual_layers = tuple(self.visual_layers)
        self.pose_channels = tuple(self.pose_channels)
        self.pose_strides = tuple(self.pose_strides)
        self.vggish_channels = tuple(self.vggish_channels)
        self.coattention_layers = tuple(self.coattention_layers)
        self.coattention_receivers = tuple(self.coattention_receivers)
        self.validate()

    # ------------------------------------------------------------------------------------------
    def streams(self) -> tuple[str, ...]:
        """The transformer streams present, in a fixed order (audio is always there)."""
        return tuple(s for s, on in (("vision", self.use_vision), ("pose", self.use_pose),
                                     ("audio", True)) if on)

    def hidden(self, stream: str) -> int:
        """Transformer width of one stream."""
        return {"vision": self.vision_hidden, "pose": self.pose_hidden,
                "audio": self.audio_hidden}[stream]

    def cond_dim(self) -> int:
        """Width of the separator's condition: the concatenated pooled SOS of every stream."""
        if self.sos_pool_dim > 0:
            return self.sos_pool_dim * len(self.streams())
        return sum(self.hidden(s) for s in self.streams())

    def unet_cond_dim(self) -> int:
        """Width of what the U-Net is conditioned on: the condition, plus class posteriors."""
        if self.condition_classes == "posteriors_only":
            return self.num_classes
        return self.cond_dim() + (self.num_classes if self.condition_classes == "posteriors" else 0)

    def frozen_stgcn(self) -> bool:
        """Whether the model has a frozen ST-GCN (TriBERT with a pose stream and ``pose_frozen``): a
        fixed feature extractor, whose features can be stored ahead of training."""
        return self.kind == "tribert" and self.use_pose and self.pose_frozen

    def uses_motion_guide(self) -> bool:
        """Whether the U-Net reads motion guide maps (configured, and a pose stream to draw them from)."""
        return self.motion_guide > 0 and self.use_pose

    def unet_in_channels(self) -> int:
        """The U-Net's input channels: the mixture's log-magnitude, plus the motion guide maps."""
        return 1 + (self.motion_guide_maps if self.uses_motion_guide() else 0)

    def unet_guide_dim(self) -> int:
        """Width of the guide sequence the U-Net's decoder reads over time (the motion features
        with ``motion_guide_film``; 0 = none)."""
        return self.motion_guide if self.motion_guide_film and self.uses_motion_guide() else 0

    def coattention_streams(self) -> tuple[str, ...]:
        """The streams taking part in co-attention."""
        return tuple(s for s in self.streams() if self.coattention_audio or s != "audio")

    def coattention_layer_ids(self) -> tuple[int, ...]:
        """Layers followed by a co-attention block (empty when co-attention is off)."""
        if not self.coattention or len(self.coattention_streams()) < 2:
            return ()
        return self.coattention_layers or tuple(range(self.num_layers))

    def validate(self) -> None:
        """Raise a one-line ConfigError for a size combination that cannot be built."""
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(f"model.{msg}")

        need(self.kind in KINDS, f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        need(self.num_classes >= 1, f"num_classes must be >= 1, got {self.num_classes}")
        for name in ("frame_size", "num_frames", "num_objects", "pose_frames", "spec_bins",
                     "spec_frames", "visual_width", "visual_dim", "pose_dim", "audio_dim",
                     "vision_hidden", "pose_hidden", "audio_hidden", "num_layers", "num_heads",
                     "ffn_dim", "coattention_dim", "unet_depth", "unet_base_channels",
                     "unet_max_channels", "unet_convs_per_level"):
            need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        need(self.visual_attention in ("paper", "code"),
             f"visual_attention must be 'paper' or 'code', got {self.visual_attention!r}")
        need(self.frame_size % 32 == 0, f"frame_size must be divisible by 32, got {self.frame_size}")
        need(self.visual_backbone in BACKBONES,
             f"visual_backbone must be one of {', '.join(BACKBONES)}, got {self.visual_backbone!r}")
        for s in ("vision", "pose", "audio"):
            need(self.hidden(s) % self.num_heads == 0,
                 f"{s}_hidden ({self.hidden(s)}) must be divisible by num_heads ({self.num_heads})")
        need(self.coattention_dim % self.num_heads == 0,
             f"coattention_dim ({self.coattention_dim}) must be divisible by num_heads")
        bad = [i for i in self.coattention_layers if not 0 <= i < self.num_layers]
        need(not bad, f"coattention_layers {list(bad)} outside 0..{self.num_layers - 1}")
        need(self.coattention or not (self.coattention_gate or self.coattention_layers or not self.coattention_audio
                                      or self.coattention_detach_senders or self.coattention_skip_absent
                                      or self.coattention_dropout),
             "coattention_gate, coattention_layers, coattention_audio, coattention_detach_senders, "
             "coattention_skip_absent and coattention_dropout need coattention: true (there is no "
             "co-attention to gate, place, leave audio out of, detach, mask or drop)")
        need(0 <= self.coattention_dropout < 1,
             f"coattention_dropout must be in [0, 1), got {self.coattention_dropout}")
        need(not self.coattention_receivers or (self.coattention and set(self.coattention_receivers)
                                                <= set(self.coattention_streams())),
             f"coattention_receivers {list(self.coattention_receivers)} must be co-attending streams "
             f"({', '.join(self.coattention_streams()) if self.coattention else 'none: coattention is false'})")
        need(self.coattention_audio or not self.coattention or len(self.coattention_streams()) >= 2,
             "coattention_audio: false leaves one stream to co-attend (it needs vision and pose)")
        need(not self.pose_strides or len(self.pose_strides) == len(self.pose_channels),
             "pose_strides needs one stride per pose_channels entry (or be empty)")
        need(0.0 <= self.token_mask_prob < 1.0, "token_mask_prob must be in [0, 1)")
        need(self.sos_pool_dim >= 0, "sos_pool_dim must be >= 0")
        need(self.unet_upsample in UPSAMPLES,
             f"unet_upsample must be one of {', '.join(UPSAMPLES)}, got {self.unet_upsample!r}")
        need(self.mask_sharing in MASK_SHARING,
             f"mask_sharing must be one of {', '.join(MASK_SHARING)}, got {self.mask_sharing!r}")
        need(self.sos_pool_activation in ("relu", "tanh"),
             f"sos_pool_activation must be 'relu' or 'tanh', got {self.sos_pool_activation!r}")
        need(self.condition_norm in CONDITION_NORMS,
             f"condition_norm must be one of {', '.join(CONDITION_NORMS)}, got {self.condition_norm!r}")
        need(self.whole_video_condition in ("mean", "present"),
             f"whole_video_condition must be 'mean' or 'present', got {self.whole_video_condition!r}")
        need(self.condition_classes in CONDITION_CLASSES,
             f"condition_classes must be one of {', '.join(CONDITION_CLASSES)}, got {self.condition_classes!r}")
        need(0.0 <= self.class_teacher_forcing <= 1.0, "class_teacher_forcing must be in [0, 1]")
        need(self.class_teacher_forcing == 0.0 or self.condition_classes.startswith("posteriors"),
             "class_teacher_forcing needs condition_classes: posteriors or posteriors_only")
        need(0.0 <= self.class_dropout < 1.0, "class_dropout must be in [0, 1)")
        need(not self.separator_own_init or self.kind == "tribert",
             f"separator_own_init is for kind: tribert (a {self.kind} model is all separator)")
        need(self.class_dropout == 0.0 or self.condition_classes.startswith("posteriors"),
             "class_dropout needs condition_classes: posteriors or posteriors_only")
        need(self.coattention_layout in ("features", "tokens"),
             f"coattention_layout must be 'features' or 'tokens', got {self.coattention_layout!r}")
        need(self.coattention_layout != "features" or self.coattention_dim % (self.num_heads * 2) == 0,
             f"coattention_dim ({self.coattention_dim}) must be divisible by 2 * num_heads for the "
             "'features' layout (each other stream gets half of every head)")
        need(self.motion_guide >= 0, f"motion_guide must be >= 0 (0 = off), got {self.motion_guide}")
        need(self.motion_guide_maps >= 1, f"motion_guide_maps must be >= 1, got {self.motion_guide_maps}")
        need(self.motion_guide_hidden >= 0,
             f"motion_guide_hidden must be >= 0 (0 = a linear draw), got {self.motion_guide_hidden}")
        need(not self.motion_guide_condition or self.motion_guide_hidden > 0,
             "motion_guide_condition needs motion_guide_hidden > 0 (a linear draw would only add a "
             "constant map per condition)")
        need(self.fusion in FUSIONS, f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        need(self.fusion != "none" or self.film,
             "fusion 'none' needs film: true, or the separator would ignore the video")
        step = 2 ** self.unet_depth
        need(self.spec_bins % step == 0 and self.spec_frames % step == 0,
             f"spectrogram {self.spec_bins}x{self.spec_frames} must be divisible by "
             f"2**unet_depth = {step}")
        need(self.unet_max_channels >= self.unet_base_channels,
             "unet_max_channels must be >= unet_base_channels")


__all__ = ["ModelConfig", "KINDS", "BACKBONES", "CONDITION_NORMS", "CONDITION_CLASSES", "FUSIONS", "UPSAMPLES"]
