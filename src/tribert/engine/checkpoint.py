"""Loading checkpoints safely (``weights_only=True``) with one-line errors for every failure.

Two kinds of file are accepted wherever a checkpoint is: a training checkpoint (Lightning's, with
optimiser state) and an export (:func:`export_weights`: the weights and the resolved config only,
a ``torch.save`` dict that loads with ``weights_only=True``; about a third of the size).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from tribert.errors import CheckpointError, ConfigError

WEIGHTS = ("averaged", "raw")  # what load_system can put into the model (its ``weights``)
EXPORT_FORMAT = "tribert-weights"
EXPORT_VERSION = 1


def read_checkpoint(path: str | Path) -> dict:
    """A training checkpoint or an export -> a dict with ``state_dict`` and
    ``hyper_parameters["config"]`` (an export is presented in the training checkpoint's shape)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError("a folder, not a checkpoint file (runs keep theirs in checkpoints/last.ckpt)", path)
    if not path.is_file():
        raise CheckpointError("checkpoint not found", path)
    with open(path, "rb") as f:
        head = f.read(4)
    if not head.startswith(b"PK") and not head.startswith(b"\x80"):  # torch.save: a zip; before 1.6 a pickle
        raise CheckpointError("not a readable checkpoint (not a file torch.save wrote)", path)
    try:
        with warnings.catch_warnings():  # a damaged legacy pickle makes torch warn before it raises
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        text = str(err).strip()
        if "central directory" in text or "zip archive" in text:
            reason = "truncated or damaged: its zip archive is incomplete"
        elif text.startswith("Weights only load failed"):  # torch's next lines are advice to unpickle anyway
            reason = "torch's safe loader refused it: not a checkpoint that tribert or Lightning wrote"
        else:  # torch's first sentence: its later ones are advice for other situations
            reason = text.splitlines()[0].split(". ")[0][:160] if text else type(err).__name__
        raise CheckpointError(f"not a readable checkpoint ({reason})", path) from None
    if isinstance(ckpt, dict) and ckpt.get("format") == EXPORT_FORMAT:
        if ckpt.get("version") != EXPORT_VERSION or not isinstance(ckpt.get("state_dict"), dict) \
                or not isinstance(ckpt.get("config"), dict):
            raise CheckpointError(f"not a {EXPORT_FORMAT} v{EXPORT_VERSION} export (version "
                                  f"{ckpt.get('version')!r}, or no weights / config)", path)
        return {"state_dict": ckpt["state_dict"],
                "hyper_parameters": {"config": ckpt["config"], **train_record(ckpt)}}
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError("not a tribert training checkpoint (no state_dict)", path)
    if "config" not in (ckpt.get("hyper_parameters") or {}):
        raise CheckpointError("not a tribert checkpoint (no stored config)", path)
    return ckpt


def train_record(stored: dict) -> dict:
    """What a checkpoint says about its training data besides the config: ``train_pose_sources``
    (pose source -> training clips, e.g. {"ground_truth": 2000}); {} where it says nothing (runs
    before it was recorded) or something malformed."""
    sources = stored.get("train_pose_sources")
    if isinstance(sources, dict) and all(isinstance(k, str) and isinstance(v, int) for k, v in sources.items()):
        return {"train_pose_sources": dict(sources)}
    return {}


def first_non_finite(state_dict: dict) -> str | None:
    """The name of the first floating-point tensor holding NaN or inf (a run that diverged), or None."""
    return next((k for k, t in state_dict.items()
                 if torch.is_tensor(t) and t.is_floating_point() and not torch.isfinite(t).all()), None)


def load_system(path: str | Path, expect_model: str | None = None, expect_size: str | None = None,
                weights: str = "averaged"):
    """Rebuild the SeparationSystem stored in a checkpoint, in eval mode on CPU.

    ``weights``: "averaged" puts the weight average into the model where the run kept one
    (``train.ema_decay``), "raw" keeps the weights as the last step left them.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    from tribert.config import Config
    from tribert.engine.system import SeparationSystem

    ckpt = read_checkpoint(path)
    try:
        config = Config.from_dict(ckpt["hyper_parameters"]["config"])
    except ConfigError as err:
        raise CheckpointError(f"stored config is not valid for this tribert version ({err.reason})", path) from None
    config.model.visual_weights = ""  # the trained weights are in the checkpoint: don't re-read the ImageNet file
    mc = config.model
    if expect_model and mc.kind != expect_model:
        raise CheckpointError(f"checkpoint holds a {mc.kind} model, expected {expect_model}", path)
    if expect_size and mc.size != expect_size:
        raise CheckpointError(f"checkpoint holds size {mc.size}, expected {expect_size}", path)
    broken = first_non_finite(ckpt["state_dict"])
    if broken is not None:  # it would separate into NaN, and fail deep inside the metrics or the MP4 encoder
        raise CheckpointError(f"holds non-finite weights ({broken}): the run diverged before this checkpoint; "
                              "use an earlier one", path)
    system = SeparationSystem(config)
    try:
        missing, unexpected = system.load_state_dict(ckpt["state_dict"], strict=False)
    except RuntimeError as err:  # a tensor of the wrong shape
        line = next((ln.strip() for ln in str(err).splitlines() if "size mismatch" in ln), str(err)[:160])
        raise CheckpointError(f"weights do not fit the stored {mc.kind}/{mc.size} model ({line})", path) from None
    if missing or unexpected:
        first = (missing or unexpected)[0]
        raise CheckpointError(f"weights do not fit the stored {mc.kind}/{mc.size} model "
                              f"({len(missing)} missing, {len(unexpected)} unexpected, e.g. {first})", path)
    system.hparams.update(train_record(ckpt["hyper_parameters"]))
    if weights == "averaged" and system.ema is not None:
        system.use_averaged_weights()
        system.ema = None  # its weights are the model's now: no second copy held for inference
    return system.eval()


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is a file ``export_weights`` wrote (read lazily: a training checkpoint of
    gigabytes is not loaded to find out that it is not one)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("format") == EXPORT_FORMAT
    except Exception:  # not a zip torch wrote, a legacy pickle, not a dict: not an export
        return False


def export_weights(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the weights and the resolved config of ``checkpoint`` (training checkpoint or export)
    to ``out`` (atomically): what ``separate`` / ``evaluate`` / ``Separator`` need, no optimiser state."""
    from tribert.io import atomic_path, check_out_file

    # never over the checkpoint itself, a folder's name, or a file that is not an earlier export
    check_out_file(out, [checkpoint], replaces=(f"a {EXPORT_FORMAT} export", is_export))
    system = load_system(checkpoint, weights="raw")  # refuses anything that would not load back; keeps both
    state = {k: v.detach().clone().contiguous() for k, v in system.state_dict().items()}
    data = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "config": system.config.to_dict(),
            "state_dict": state, **train_record(system.hparams)}
    with atomic_path(out) as tmp:
        torch.save(data, tmp)
    return Path(out)
