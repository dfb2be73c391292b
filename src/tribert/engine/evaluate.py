"""Separation evaluation on a fixed mixture list, shaped like the paper's Table 1.

Beside every model the table shows the unprocessed mixture and the oracle ideal binary / ratio
masks (on the linear STFT: the ceiling for any magnitude mask) on the very same mixtures.
Mixtures are grouped as *single-source* (every video is a solo: one source per video) and
*multi-source* (a duet brings its two performers as separate sources), with same-class duets
(two performers of one instrument: only motion tells them apart) also reported on their own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import json
import logging
from pathlib import Path

import torch
from torch import Tensor

from tribert.audio import AudioFrontEnd
from tribert.data.batch import MixBatch
from tribert.errors import TribertError
from tribert.io import cache_dir, read_json, write_results  # noqa: F401 (write_results: re-exported, the results' writer)
from tribert.metrics import SeparationScores, bss_eval, bss_eval_rows, is_silent
from tribert.progress import track

log = logging.getLogger(__name__)

GROUPS = ("single", "multi", "same_class")
REFERENCE_ROWS = ("mixture", "IBM", "IRM")


def masks_to_wavs(frontend: AudioFrontEnd, mask_logits: Tensor, mix_wav: Tensor,
                  threshold: float | None) -> Tensor:
    """Predicted warped masks [B, S, 1, F, T] on the mixture [B, L] -> waveforms [B, S, L].

    ``threshold`` binarises the mask (the authors' evaluation for binary-mask training); None
    keeps the soft mask.
    """
    b, s = mask_logits.shape[:2]
    length = mix_wav.shape[-1]
    mask = torch.sigmoid(mask_logits.float())
    if threshold is not None:
        mask = (mask > threshold).float()
    spec = frontend.stft(mix_wav.float())  # [B, Flin, T]
    wav = frontend.apply_mask(mask.flatten(0, 1), spec.repeat_interleave(s, 0), length)
    return wav.view(b, s, length)


def oracle_wavs(frontend: AudioFrontEnd, source_wavs: Tensor, mix_wav: Tensor, kind: str,
                warped: bool = False) -> Tensor:
    """Ideal binary ("ibm") or ratio ("irm") masks -> waveforms [B, S, L].

    ``warped=False``: the mask is computed on the linear 512-bin STFT (the ceiling of any magnitude
    mask). ``warped=True``: computed on the log-frequency grid the networks predict on, then taken
    back through the inverse warp, as a predicted mask is (the ceiling of our front-end).
    """
    b, s, length = source_wavs.shape
    mix_spec = frontend.stft(mix_wav.float())  # [B, F, T]
    src_mag = frontend.stft(source_wavs.flatten(0, 1).float()).abs().view(b, s, *mix_spec.shape[1:])
    mix_mag = mix_spec.abs()[:, None]
    if warped:  # [B*S, 1, warp_bins, T]
        src_mag = frontend.warp(src_mag.flatten(0, 1)[:, None]).view(b, s, -1, mix_spec.shape[-1])
        mix_mag = frontend.warp(mix_mag)
    mask = frontend.binary_mask(src_mag, mix_mag) if kind == "ibm" else frontend.ratio_mask(src_mag, mix_mag)
    wav = frontend.apply_mask(mask.flatten(0, 1)[:, None], mix_spec.repeat_interleave(s, 0), length, warped=warped)
    return wav.view(b, s, length)


def mixture_group(batch: MixBatch, i: int) -> list[str]:
    """Which table groups mixture i of a batch belongs to."""
    objects = batch.real(i, batch.source_object)
    if bool((objects < 0).all()):
        return ["single"]
    groups = ["multi"]
    labels = batch.real(i, batch.source_label)
    videos = batch.real(i, batch.source_video)
    for v in videos.unique():
        lv = labels[(videos == v) & (objects >= 0)]
        if len(lv) >= 2 and bool((lv == lv[0]).all()):
            groups.append("same_class")
            break
    return groups


def silent_mixtures(batch: MixBatch, n: int) -> list[bool]:
    """Per mixture: whether a reference is silent in the first n samples (it is not scored)."""
    return [is_silent(batch.real(i, batch.source_wavs)[:, :n]) for i in range(batch.mix_wav.shape[0])]


def group_counts(batch: MixBatch, n: int) -> dict[str, tuple[int, int, int]]:
    """Per group: (sources, mixtures, skipped) that scoring the batch's first n samples gives."""
    counts = {g: [0, 0, 0] for g in GROUPS}
    for i, silent in enumerate(silent_mixtures(batch, n)):
        for g in mixture_group(batch, i):
            if silent:
                counts[g][2] += 1
            else:
                counts[g][0] += int(batch.source_valid[i].sum())
                counts[g][1] += 1
    return {g: tuple(c) for g, c in counts.items()}


def score_rows(results: dict[str, dict[str, SeparationScores]], rows: dict[str, Tensor], batch: MixBatch,
               eval_samples: int, backend: str) -> None:
    """Add the scores of every row (name -> estimates [B, S, L], e.g. mixture, IBM, IRM, models)
    for every mixture of the batch under the row's name.

    Mixtures with the same number of real sources are scored in one call for all rows (the fast
    backend factorises their references once for all rows); a mixture with a silent reference is
    counted as skipped in each of its groups, for every row.
    """
    groups = {name: results.setdefault(name, {g: SeparationScores() for g in GROUPS}) for name in rows}
    first = next(iter(rows.values()))
    n = min(eval_samples, first.shape[-1])
    scorable: dict[int, list[int]] = {}  # number of sources -> mixtures
    for i, silent in enumerate(silent_mixtures(batch, n)):
        if silent:
            for name in rows:
                for g in mixture_group(batch, i):
                    groups[name][g].skipped += 1
        else:
            scorable.setdefault(int(batch.source_valid[i].sum()), []).append(i)
    for idx in scorable.values():
        ref = torch.stack([batch.real(i, batch.source_wavs)[:, :n] for i in idx])  # [M, S, n]
        ests = torch.stack([torch.stack([batch.real(i, est)[:, :n] for i in idx]) for est in rows.values()])  # [R, M, S, n]
        sdr, sir, sar = bss_eval_rows(ref.to(first.device), ests, backend)  # [R, M, S] each
        for r, name in enumerate(rows):
            for m, i in enumerate(idx):
                for g in mixture_group(batch, i):
                    groups[name][g].add(sdr[r, m], sir[r, m], sar[r, m])


def _merge(results: dict[str, dict[str, SeparationScores]], scored: dict[str, dict[str, SeparationScores]]) -> None:
    for name, groups in scored.items():
        merged = results.setdefault(name, {g: SeparationScores() for g in GROUPS})
        for g, sc in groups.items():
            merged[g].extend(sc)


def batch_sdr(frontend: AudioFrontEnd, batch: MixBatch, mask_logits: Tensor, config) -> Tensor:
    """Mean SDR of a validation batch (soft masks, fast backend) for progress logging."""
    wavs = masks_to_wavs(frontend, mask_logits.detach(), batch.mix_wav, None)
    sdrs = []
    for i in range(wavs.shape[0]):
        ref = batch.real(i, batch.source_wavs)
        if ref.pow(2).mean(-1).min() > 1e-10:
            sdrs.append(float(bss_eval(ref, batch.real(i, wavs))[0].mean()))
    return torch.tensor(sum(sdrs) / max(len(sdrs), 1))


@torch.no_grad()
def evaluate(systems: dict, loader, oracles: bool = True, threshold: float | None = None,
             backend: str = "fast", progress: bool = True, mixture: bool = True,
             device: str | torch.device = "cpu", config=None, cache: str | Path | None = None,
             condition: dict | None = None) -> dict:
    """Score every system (name -> SeparationSystem) and the references on a fixed-mixture loader.

    ``mixture`` / ``oracles`` add the unprocessed mixture and the IBM / IRM rows (leave them out
    when scoring many checkpoints on one test set: they do not change). ``device`` runs the
    models and the batched metric there (the systems are moved to it). ``config`` gives the audio
    settings when no system is scored (references only); default: the first system's. ``cache``: a
    JSON file of the reference rows (mixture, IBM, IRM) per batch, keyed by the batch's waveforms
    and the scoring settings, so scoring another checkpoint on the same mixtures skips them.
    ``condition``: a dict filled with each system's condition top-1 (``condition_accuracy``, from
    the scoring's own forward passes), each counted in its own class list.

    Returns {method: {group: {sdr, sir, sar, sources, mixtures, skipped}}}.
    """
    if clash := set(systems) & set(REFERENCE_ROWS):
        raise ValueError(f"system names {sorted(clash)} are taken by the reference rows")
    results: dict[str, dict[str, SeparationScores]] = {}
    if config is None:  # the audio settings of the (first) system scored
        config = next(iter(systems.values())).config
    frontend = AudioFrontEnd(config.audio)
    eval_samples = config.audio.eval_samples
    batches = track(loader, "evaluating", enabled=progress, total=len(loader))
    frontend = frontend.to(device)
    for system in systems.values():
        system.to(device)
    stored = ReferenceCache(cache, config, backend) if cache is not None else None
    hits: dict[str, tuple[int, int] | None] = {name: (0, 0) for name in systems}  # right, total; None: no head
    remaps = {name: class_remap(config.data.classes, s.config.data.classes, device) for name, s in systems.items()}
    for batch in batches:
        batch = batch.to(device)
        mix = batch.mix_wav
        s = batch.source_wavs.shape[1]
        refs = stored.get(batch) if stored is not None else None
        wanted = ({"mixture"} if mixture else set()) | ({"IBM", "IRM"} if oracles else set())
        fresh = refs is None or not wanted <= set(refs)
        rows: dict[str, Tensor] = {}  # name -> estimates [B, S, L], all scored in one call
        if fresh:
            if mixture:
                rows["mixture"] = mix[:, None].expand(-1, s, -1)
            if oracles:
                for kind in ("ibm", "irm"):
                    rows[kind.upper()] = oracle_wavs(frontend, batch.source_wavs, mix, kind)
        for name, system in systems.items():
            out, mask_logits = system(batch)
            rows[name] = masks_to_wavs(frontend, mask_logits, mix, threshold)
            hits[name] = _add_hits(hits[name], condition_hits(out, batch, remaps[name]))
        scored: dict[str, dict[str, SeparationScores]] = {}
        if rows:
            score_rows(scored, rows, batch, eval_samples, backend)
        if fresh:
            refs = {name: scored.pop(name) for name in REFERENCE_ROWS if name in scored}
            if stored is not None:
                stored.put(batch, refs)
        _merge(results, {name: groups for name, groups in refs.items() if name in wanted})
        _merge(results, scored)
    if stored is not None:
        stored.save()
    if condition is not None:
        condition.update({name: _top1(h) for name, h in hits.items()})
    order = [*REFERENCE_ROWS, *systems]  # references first, as in the paper's tables
    return {name: {g: sc.mean() for g, sc in results[name].items()} for name in order if name in results}


def reference_cache_path() -> Path:
    return cache_dir() / "eval" / "references.json"


def _stored_groups(groups: dict) -> dict:
    if not isinstance(groups, dict) or set(groups) != set(GROUPS):
        raise ValueError(f"groups {sorted(groups) if isinstance(groups, dict) else type(groups).__name__}")
    return groups


def _stored_scores(sc: dict) -> SeparationScores:
    """Scores read back from the cache, checked as strictly as they were written: lists of
    numbers (an infinite SDR is a real score, NaN is not) of one length, and integer counts."""
    def number(x) -> float:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
            raise ValueError(f"score {x!r}")
        return float(x)

    def count(x) -> int:
        if isinstance(x, bool) or not isinstance(x, int) or x < 0:
            raise ValueError(f"count {x!r}")
        return x

    if not isinstance(sc, dict) or set(sc) != {"sdr", "sir", "sar", "skipped", "mixtures"}:
        raise ValueError("fields")
    lists = [sc[k] for k in ("sdr", "sir", "sar")]
    if not all(isinstance(v, list) for v in lists) or len({len(v) for v in lists}) != 1:
        raise ValueError("score lists of different lengths")
    return SeparationScores(*([number(x) for x in v] for v in lists), skipped=count(sc["skipped"]),
                            mixtures=count(sc["mixtures"]))


class ReferenceCache:
    """Scores of the reference rows per batch in one JSON file, keyed by the batch's waveforms, the
    audio settings and the metric backend: any change of mixtures or settings misses the cache.

    The cache only saves time: a file that cannot be read or parsed (truncated, another program's)
    or an entry of the wrong shape is recomputed, and one that cannot be written is left as it
    was; each with a warning, never an error after the scoring is done."""

    FORMAT = 2  # raise when the reference rows are computed or stored otherwise (old entries then miss)

    def __init__(self, path: str | Path, config, backend: str):
        import tribert

        self.path = Path(path)
        # the tribert version too: a release may change the STFT, the masks or the metric code
        self.salt = json.dumps([self.FORMAT, tribert.__version__, repr(config.audio), backend])
        self.eval_samples = config.audio.eval_samples
        self.entries: dict = {}
        self.changed = False
        try:
            self.entries = self._stored()
        except TribertError as err:
            log.warning("%s: the reference rows are recomputed and the file replaced", err)

    def _stored(self) -> dict:
        """The entries in the file now ({} where there is none); TribertError if it is unreadable."""
        # exists(), not FileNotFoundError alone: a path under a file (NotADirectoryError) holds none
        # either, and is said when the save fails
        if not self.path.exists():
            return {}
        try:
            return read_json(self.path, "evaluation cache")
        except FileNotFoundError:  # removed meanwhile
            return {}

    def key(self, batch: MixBatch) -> str:
        h = hashlib.sha1(self.salt.encode())
        for x in (batch.mix_wav, batch.source_wavs, batch.source_valid, batch.source_object, batch.source_label,
                  batch.source_video):
            h.update(x.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def get(self, batch: MixBatch) -> dict | None:
        entry = self.entries.get(self.key(batch))
        if entry is None:
            return None
        try:
            refs = {name: {g: _stored_scores(sc) for g, sc in _stored_groups(groups).items()}
                    for name, groups in entry.items()}
            # Every row must hold as many scores per group as this batch gives (a source added to or
            # dropped from each list of a group keeps the lists of one length).
            n = min(self.eval_samples, batch.mix_wav.shape[-1])
            want = group_counts(batch, n)
            for name, groups in refs.items():
                for g, sc in groups.items():
                    if (len(sc.sdr), sc.mixtures, sc.skipped) != want[g]:
                        raise ValueError(f"{name} {g}: {len(sc.sdr)} sources, {sc.mixtures} mixtures, "
                                         f"{sc.skipped} skipped; the batch gives {want[g]}")
            return refs
        except (AttributeError, TypeError, ValueError) as err:  # not {name: {group: scores}}
            log.warning("evaluation cache %s: an entry of the wrong shape (%s) is recomputed", self.path, err)
            return None

    def put(self, batch: MixBatch, refs: dict) -> None:
        self.entries[self.key(batch)] = {name: {g: dataclasses.asdict(sc) for g, sc in groups.items()}
                                         for name, groups in refs.items()}
        self.changed = True

    def save(self) -> None:
        if self.changed:
            from tribert.io import atomic_write_text

            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                try:  # what another evaluation saved meanwhile is kept beside ours
                    self.entries = {**self._stored(), **self.entries}
                except TribertError:
                    pass
                atomic_write_text(self.path, json.dumps(self.entries))
            except OSError as err:
                log.warning("evaluation cache %s not written (%s): the next run recomputes the reference "
                            "rows (set TRIBERT_CACHE to a writable folder, or pass --no-cache)", self.path, err)


@torch.no_grad()
def condition_accuracy(system, loader, device: str | torch.device = "cpu") -> float | None:
    """How often TriBERT's condition names the right class: top-1 of the class head on every real
    source with a known class. None for a model without a class head on its condition, or when no
    source has a known class (clips of unlabelled videos; duets prepared from videos, no stems)."""
    hits: tuple[int, int] | None = (0, 0)
    system.to(device)
    for batch in loader:
        batch = batch.to(device)
        out, _ = system(batch)
        hits = _add_hits(hits, condition_hits(out, batch))
    return _top1(hits)


def class_remap(loader_classes, model_classes, device: str | torch.device = "cpu") -> Tensor | None:
    """Index in ``model_classes`` of each of ``loader_classes`` (-1: one the model does not know);
    None where the lists are one (a MUSIC-finetuned checkpoint scored beside a MUSIC21 one)."""
    if list(loader_classes) == list(model_classes):
        return None
    index = {c: i for i, c in enumerate(model_classes)}
    return torch.tensor([index.get(c, -1) for c in loader_classes], dtype=torch.long, device=device)


def condition_hits(out, batch: MixBatch, remap: Tensor | None = None) -> tuple[int, int] | None:
    """(right, total) of the class head on one batch's real sources of known class; None for a
    model without a class head on its condition. ``remap`` (``class_remap``): the batch's class
    indices in the model's class list."""
    logits = getattr(out, "condition_logits", None)  # [V, P, C]
    if logits is None:
        return None
    target = batch.slots_by_video(batch.source_label).reshape(-1)  # [V*P], the slots of logits
    if remap is not None:
        target = torch.where(target >= 0, remap[target.clamp(min=0)], target)
    known = (target >= 0) & batch.slots_by_video(batch.source_valid).reshape(-1)
    pred = logits.reshape(-1, logits.shape[-1]).argmax(-1)
    return int((pred[known] == target[known]).sum()), int(known.sum())


def _add_hits(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    return None if a is None or b is None else (a[0] + b[0], a[1] + b[1])


def _top1(hits: tuple[int, int] | None) -> float | None:
    return hits[0] / hits[1] if hits and hits[1] else None


def format_table(results: dict, title: str = "Separation (SDR / SIR / SAR, dB)") -> str:
    """A plain-text table shaped like the paper's Table 1 (+ the same-class duet column)."""
    width = max(22, *(len(name) for name in results))  # a long --label keeps the columns aligned
    head = (f"{'method':<{width}} | {'single-source SDR/SIR/SAR':>26} | {'multi-source SDR/SIR/SAR':>26} | "
            f"{'same-class SDR':>14}")
    lines = [title, head, "-" * len(head)]

    def cell(r: dict) -> str:
        if not r["sources"]:
            return f"{'n/a':>26}"
        return f"{r['sdr']:>8.2f} {r['sir']:>8.2f} {r['sar']:>8.2f}"

    for name, groups in results.items():
        same = groups["same_class"]
        same_s = f"{same['sdr']:>14.2f}" if same["sources"] else f"{'n/a':>14}"
        lines.append(f"{name:<{width}} | {cell(groups['single']):>26} | {cell(groups['multi']):>26} | {same_s}")
    counts = next(iter(results.values()))
    lines.append("mixtures: " + ", ".join(f"{g} {counts[g]['mixtures']} ({counts[g]['sources']} sources, "
                                            f"{counts[g]['skipped']} skipped as silent)" for g in GROUPS))
    return "\n".join(lines)
