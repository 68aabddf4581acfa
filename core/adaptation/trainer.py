"""LSFA adaptor training on cached frozen tokens, and applying trained adaptors for scoring.

Training (method.md §4.11, with the §8 bug fixes): per micro-batch the adaptors map the frozen
tokens; LA pairs RGB/xyz tokens at the same position (foreground cells with points), GA pairs
per-image mean-foreground vectors; LC/GC pull adapted tokens/global vectors towards their
nearest neighbour in per-class FIFO queues of earlier adapted features (switched on after
``queue_warmup_steps`` micro-batches, per class once its queue is ready). Gradients are
accumulated over ``grad_accum`` micro-batches (not zeroed in between); AdamW with linear
warm-up + cosine learning rate. Deterministic for a given seed and thread count. Nothing is
written to disk; cancellation (``Cancelled`` from ``progress.update``) propagates.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from core.adaptation.adaptors import (
    ModalityAdaptor,
    ProjectionHead,
    adaptors_from_state,
    adaptors_state,
    build_adaptor,
)
from core.adaptation.cache import TokenCache
from core.adaptation.config import CROSS_MODAL_LOSSES, AdaptConfig
from core.adaptation.losses import (
    capped_nn_distance,
    global_alignment_loss,
    local_alignment_loss,
    queue_compactness_loss,
)
from core.adaptation.queues import ClassQueues
from core.errors import UserError
from core.progress import Progress, ensure

STAGE = "Adapting features"


@dataclass
class AdaptationResult:
    state: dict[str, torch.Tensor]  # flat adaptor tensors "rgb.*"/"xyz.*" (empty = not adapted)
    config: AdaptConfig
    history: list[dict] = field(default_factory=list)  # one dict per micro-batch
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what was (not) done and why
    modalities: tuple[str, ...] = ()  # modalities that got an adaptor
    losses: tuple[str, ...] = ()  # losses actually used

    @property
    def adapted(self) -> bool:
        return bool(self.state)

    def summary(self) -> dict:
        """json-serialisable description (settings, notes, first/last losses, seconds)."""
        return {"config": self.config.to_dict(), "notes": list(self.notes), "modalities": list(self.modalities),
                "losses": list(self.losses), "seconds": round(self.seconds, 2), "steps": len(self.history),
                "first": self.history[0] if self.history else None,
                "last": self.history[-1] if self.history else None}


# ----------------------------------------------------------------------------------------------
# helpers


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (b, T, C) over the True tokens of (b, T) -> (b, C); rows without tokens -> 0."""
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1).clamp(min=1.0)


def _token_masks(cache: TokenCache, cfg: AdaptConfig) -> dict[str, torch.Tensor]:
    """(N, T) bool masks: "pair" (LA / global vectors), "rgb"/"xyz" (compactness + queues),
    "attn_rgb"/"attn_xyz" (attention keys)."""
    fg = cache.stack("fg")
    out: dict[str, torch.Tensor] = {}
    has_pts = (cache.stack("xyz") != 0).any(-1) if "xyz" in cache.modalities else None
    out["pair"] = fg & has_pts if has_pts is not None else fg
    if "rgb" in cache.modalities:
        out["rgb"] = fg if cfg.rgb_foreground_only else torch.ones_like(fg)
        out["attn_rgb"] = fg
    if has_pts is not None:
        out["xyz"] = fg & has_pts
        out["attn_xyz"] = fg & has_pts
    return out


@torch.no_grad()
def _channel_stats(x16: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Per-channel mean / std (feature units) of the masked tokens of (N, T, C) float16, and
    their total variance (sum over channels)."""
    t = x16[mask].float()
    if t.shape[0] == 0:
        return torch.zeros(x16.shape[-1]), torch.ones(x16.shape[-1]), 1.0
    std, mean = torch.std_mean(t, dim=0, correction=0)
    # near-constant channels (e.g. FPFH bins that are almost always empty) get 5 % of the mean
    # channel std, so a rare test value cannot be amplified without bound
    floor = 0.05 * float(std.mean()) + 1e-6
    return mean, std.clamp(min=floor), max(float((std * std).sum()), 1e-12)


@torch.no_grad()
def _global_vectors(x16: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, C) mean of each image's masked frozen tokens."""
    return torch.cat([_masked_mean(x16[i:i + 64].float(), mask[i:i + 64]) for i in range(0, x16.shape[0], 64)])


@torch.no_grad()
def _reference_scales(x16: torch.Tensor, mask: torch.Tensor, glob: torch.Tensor, gen: torch.Generator
                      ) -> tuple[float, float]:
    """Median nearest-neighbour distance (feature units) of frozen tokens to tokens of *other*
    images (sampled: ≤ 16 images, ≤ 2048 queries), and of each image's global vector to the
    other images' global vectors. Used as the unit of the "relative" IFC distances."""
    n = x16.shape[0]
    pick = torch.randperm(n, generator=gen)[: min(n, 16)]
    patch_scale = float("nan")
    if len(pick) >= 2:
        half = len(pick) // 2
        qs = torch.cat([x16[i][mask[i]] for i in pick[:half]]).float()
        bank = torch.cat([x16[i][mask[i]] for i in pick[half:]]).float()
        if qs.shape[0] and bank.shape[0]:
            qs = qs[torch.randperm(qs.shape[0], generator=gen)[:2048]]
            bank = bank[torch.randperm(bank.shape[0], generator=gen)[:16384]]
            patch_scale = float(capped_nn_distance(qs, bank)[0].median())
    glob_scale = float("nan")
    if glob.shape[0] >= 2:
        d = torch.cdist(glob, glob)
        d.fill_diagonal_(float("inf"))
        glob_scale = float(d.min(dim=1).values.median())
    if not (patch_scale > 1e-8):
        patch_scale = 1.0
    if not (glob_scale > 1e-8):
        glob_scale = patch_scale
    return patch_scale, glob_scale


def _lr_at(step: int, total: int, cfg: AdaptConfig) -> float:
    """Learning rate of optimiser step ``step`` (0-based): linear warm-up, then half cosine."""
    warm = int(round(cfg.lr_warmup_fraction * total))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    frac = (step - warm) / max(1, total - warm)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def _format(rec: dict) -> str:
    parts = [f"{k} {rec[k]:.3f}" for k in ("la", "ga", "lc", "gc") if k in rec]
    return f"epoch {rec['epoch']} · loss {rec['loss']:.3f}" + (f" ({', '.join(parts)})" if parts else "")


# ----------------------------------------------------------------------------------------------
# training


def train_adaptors(cache: TokenCache, config: AdaptConfig | None = None,
                   progress: Progress | None = None) -> AdaptationResult:
    """Train LSFA adaptors on the cached frozen tokens of normal training images.

    Returns an :class:`AdaptationResult`; ``state`` is empty (no adaptation) when no enabled
    loss applies to the cache's modalities or ``epochs == 0`` — ``notes`` says why. Raises
    ``Cancelled`` if cancelled, ``UserError`` for an empty cache or a diverged run.
    """
    cfg = config or AdaptConfig()
    p = ensure(progress)
    t0 = time.perf_counter()
    if len(cache) == 0:
        raise UserError("adaptation needs at least one training image")
    mods = cache.modalities
    notes: list[str] = []
    losses = [name for name in cfg.losses]
    if len(mods) < 2:
        dropped = [name for name in losses if name in CROSS_MODAL_LOSSES]
        if dropped:
            notes.append(f"only {mods[0]} tokens: cross-modal losses {','.join(dropped)} need RGB and xyz "
                         f"and were dropped")
        losses = [name for name in losses if name not in CROSS_MODAL_LOSSES]
    if not losses:
        notes.append("adaptation skipped: no enabled loss applies to this data; frozen features are used")
        return AdaptationResult({}, cfg, [], time.perf_counter() - t0, notes, (), ())
    if cfg.epochs == 0:
        notes.append("adaptation skipped: epochs = 0; frozen features are used")
        return AdaptationResult({}, cfg, [], time.perf_counter() - t0, notes, (), ())
    if not any(name in CROSS_MODAL_LOSSES for name in losses):
        notes.append("intra-modal compactness only: no contrastive term counters collapse; watch "
                     "'spread_*' in the history (1 = frozen spread)")
    use_queues = "lc" in losses or "gc" in losses

    p.update(STAGE, 0, 0, "preparing")
    # CPU kernels used here are deterministic for a fixed thread count; torch's deterministic mode
    # is not enabled because it NaN-fills every new tensor (measured ~10 % slower) and buys nothing.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        result = _train(cache, cfg, mods, losses, use_queues, notes, p, t0)
    return result


def _train(cache: TokenCache, cfg: AdaptConfig, mods: tuple[str, ...], losses: list[str], use_queues: bool,
           notes: list[str], p: Progress, t0: float) -> AdaptationResult:
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(cache)
    feats16 = {m: cache.stack(m) for m in mods}
    masks = _token_masks(cache, cfg)
    class_ids = cache.stack("class_id")
    cross = "la" in losses or "ga" in losses

    adaptors: dict[str, ModalityAdaptor] = {}
    heads: dict[str, ProjectionHead] = {}
    scales: dict[str, tuple[float, float]] = {}
    total_var: dict[str, float] = {}
    for m in mods:
        adaptors[m] = build_adaptor(m, cache.dim(m), cfg)
        mean, std, total_var[m] = _channel_stats(feats16[m], masks[m])
        adaptors[m].set_stats(mean, std)
        if cross:
            heads[m] = ProjectionHead(cache.dim(m), cfg.head_dim)
        if use_queues and cfg.ifc_units == "relative":
            scales[m] = _reference_scales(feats16[m], masks[m], _global_vectors(feats16[m], masks["pair"]), gen)
        else:
            scales[m] = (1.0, 1.0)
    params = [q for mod in (*adaptors.values(), *heads.values()) for q in mod.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, foreach=True)
    queues = ClassQueues(cfg.queue_patch_cap, cfg.queue_global_cap, cfg.queue_min_images)
    per_epoch = math.ceil(n / cfg.batch_size)
    epochs = cfg.epochs_for(n)
    if epochs > cfg.epochs:
        notes.append(f"{n} training images: {epochs} epochs instead of {cfg.epochs} to reach "
                     f"min_steps={cfg.min_steps} micro-batches")
    total_micro = epochs * per_epoch
    total_steps = math.ceil(total_micro / cfg.grad_accum)
    if cfg.ifc_units == "relative" and use_queues:
        notes.append("IFC distances in units of the median initial NN distance: "
                     + ", ".join(f"{m} patch {s[0]:.4g} / global {s[1]:.4g}" for m, s in scales.items()))
    cap = cfg.ifc_cap

    history: list[dict] = []
    micro = 0
    opt_step = 0
    opt.zero_grad(set_to_none=True)
    for mod in (*adaptors.values(), *heads.values()):
        mod.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        for b0 in range(0, n, cfg.batch_size):
            idx = order[b0:b0 + cfg.batch_size]
            rec: dict = {"step": micro + 1, "epoch": epoch + 1}
            bmask = {k: v[idx] for k, v in masks.items()}
            if cfg.train_max_tokens is not None:
                bmask = _token_subset(bmask, cfg.train_max_tokens, gen)
            out, omask = {}, {}
            for m in mods:
                out[m], omask[m] = _forward(adaptors[m], feats16[m][idx], bmask, m, cfg)
            total = torch.zeros(())

            glob = {m: _masked_mean(out[m], omask[m]["pair"]) for m in mods}
            has_glob = bmask["pair"].any(dim=1)
            if "la" in losses:
                q = heads["rgb"](adaptors["rgb"].standardize(out["rgb"][omask["rgb"]["pair"]]))
                k = heads["xyz"](adaptors["xyz"].standardize(out["xyz"][omask["xyz"]["pair"]]))
                la = local_alignment_loss(q, k, cfg.tau, cfg.nce_2tau, cfg.la_max_tokens, gen)
                total = total + cfg.weight_la * la
                rec["la"] = float(la.detach())
            if "ga" in losses:
                gq = heads["rgb"](adaptors["rgb"].standardize(glob["rgb"][has_glob]))
                gk = heads["xyz"](adaptors["xyz"].standardize(glob["xyz"][has_glob]))
                ga = global_alignment_loss(gq, gk, cfg.tau, cfg.nce_2tau)
                total = total + cfg.weight_ga * ga
                rec["ga"] = float(ga.detach())

            if use_queues and micro >= cfg.queue_warmup_steps:
                lc, gc, n_ready = _compactness(out, omask, glob, has_glob, idx, class_ids, queues,
                                               losses, scales, cap, rec, cfg.lc_max_tokens, gen)
                if n_ready:
                    total = total + cfg.weight_ifc * (lc + cfg.weight_gc * gc)
                    if "lc" in losses:
                        rec["lc"] = float(lc.detach())
                    if "gc" in losses:
                        rec["gc"] = float(gc.detach())
                rec["ifc_images"] = n_ready

            if not torch.isfinite(total):
                raise UserError(f"adaptation diverged (loss not finite at step {micro + 1}); "
                                f"try a lower learning rate")
            if total.requires_grad:
                (total / cfg.grad_accum).backward()
            micro += 1
            if micro % cfg.grad_accum == 0 or micro == total_micro:
                lr = _lr_at(opt_step, total_steps, cfg)
                for g in opt.param_groups:
                    g["lr"] = lr
                if cfg.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                opt.zero_grad(set_to_none=True)
                opt_step += 1
                rec["lr"] = lr

            with torch.no_grad():
                for m in mods:
                    sel = omask[m][m]
                    if int(sel.sum()) > 1:  # total std of the batch's adapted tokens / frozen total std
                        rec[f"spread_{m}"] = math.sqrt(float(out[m][sel].var(0, unbiased=False).sum()) / total_var[m])
                if use_queues:
                    _push(out, omask, glob, has_glob, idx, class_ids, queues, mods)
            rec["loss"] = float(total.detach())
            rec["seconds"] = round(time.perf_counter() - t0, 3)
            history.append(rec)
            p.update(STAGE, micro, total_micro, _format(rec))

    for mod in adaptors.values():
        mod.eval()
    return AdaptationResult(adaptors_state(adaptors), cfg, history, time.perf_counter() - t0, notes,
                            tuple(mods), tuple(losses))


def _forward(adaptor: ModalityAdaptor, x16: torch.Tensor, bmask: dict[str, torch.Tensor], m: str,
             cfg: AdaptConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Adapt one micro-batch (b, T, C) of modality ``m``; returns (out, masks in out's layout).

    When attention is restricted to foreground keys and only foreground tokens enter the losses,
    only those tokens are computed: each image's key tokens are packed (raster order kept) into
    (b, L, C), L = the largest count in the batch, padding masked out of the keys. Token-wise
    ops and attention queries are independent, so the packed tokens' outputs equal those of the
    full (b, T) computation that :func:`apply_adaptors` does at scoring time.
    """
    key = bmask[f"attn_{m}"]
    pack = cfg.attend_foreground_only and (m == "xyz" or cfg.rgb_foreground_only)
    if not pack:
        out = adaptor(x16.float(), key if cfg.attend_foreground_only else None)
        return out, {m: bmask[m], "pair": bmask["pair"]}
    length = max(1, int(key.sum(dim=1).max()))
    order = torch.argsort((~key).to(torch.uint8), dim=1, stable=True)[:, :length]  # keys first, ascending
    valid = key.gather(1, order)
    x = x16.gather(1, order.unsqueeze(-1).expand(-1, -1, x16.shape[-1])).float()
    out = adaptor(x, valid)
    return out, {m: bmask[m].gather(1, order) & valid, "pair": bmask["pair"].gather(1, order) & valid}


def _token_subset(bmask: dict[str, torch.Tensor], max_tokens: int, gen: torch.Generator
                  ) -> dict[str, torch.Tensor]:
    """Restrict every mask of a micro-batch to one seeded random subset of at most ``max_tokens``
    tokens per image, drawn among the tokens any mask marks (token dropout: the adaptors attend
    among the subset only, and the losses see only it). The same subset for both modalities, so
    LA's RGB/xyz pairs stay aligned; scoring always uses every token."""
    any_mask = torch.zeros_like(next(iter(bmask.values())))
    for v in bmask.values():
        any_mask |= v
    rank = torch.rand(any_mask.shape, generator=gen).masked_fill(~any_mask, 2.0)
    keep = torch.zeros_like(any_mask)
    keep.scatter_(1, torch.argsort(rank, dim=1)[:, :max_tokens], True)
    return {k: v & keep for k, v in bmask.items()}


def _compactness(out, omask, glob, has_glob, idx, class_ids, queues: ClassQueues, losses, scales, cap,
                 rec: dict, lc_max_tokens: int | None = None, gen: torch.Generator | None = None):
    """LC and GC of this micro-batch, mean over the images of ready classes (sum over modalities).

    Each image is compared with the queued features of *other* images of its class (its own
    earlier features are excluded, so small training sets cannot match themselves). LC uses at
    most ``lc_max_tokens`` of an image's tokens (a seeded subset: an unbiased estimate of the
    image's mean distance at a fraction of the search). All images of a class are searched in
    one matrix product per modality and term."""
    lc = torch.zeros(())
    gc = torch.zeros(())
    batch_cls = [int(class_ids[i]) for i in idx]
    ready = [j for j in range(len(idx)) if queues.ready(batch_cls[j])]
    clamped: dict[str, list[float]] = {}
    for m in out:
        patch_scale, glob_scale = scales[m]
        for c in sorted({batch_cls[j] for j in ready}):
            images = [j for j in ready if batch_cls[j] == c]
            if "lc" in losses:
                rows = []
                for j in images:
                    tokens = out[m][j][omask[m][m][j]]
                    if lc_max_tokens is not None and tokens.shape[0] > lc_max_tokens:
                        tokens = tokens[torch.randperm(tokens.shape[0], generator=gen)[:lc_max_tokens]]
                    rows.append(tokens)
                cap_sq = None if cap is None else (cap * patch_scale) ** 2
                loss, fracs = queue_compactness_loss(rows, [int(idx[j]) for j in images], queues.rows(c, f"{m}_patch"),
                                               cap_sq, patch_scale)
                lc = lc + loss
                clamped.setdefault(f"lc_clamped_{m}", []).extend(fracs)
            if "gc" in losses:
                with_glob = [j for j in images if has_glob[j]]
                cap_sq = None if cap is None else (cap * glob_scale) ** 2
                loss, fracs = queue_compactness_loss([glob[m][j:j + 1] for j in with_glob], [int(idx[j]) for j in with_glob],
                                               queues.rows(c, f"{m}_global"), cap_sq, glob_scale)
                gc = gc + loss
                clamped.setdefault(f"gc_clamped_{m}", []).extend(fracs)
    for k, v in clamped.items():
        if v:
            rec[k] = float(np.mean(v))
    if ready:
        lc, gc = lc / len(ready), gc / len(ready)
    return lc, gc, len(ready)


def _push(out, omask, glob, has_glob, idx, class_ids, queues: ClassQueues, mods) -> None:
    """Push this micro-batch's detached adapted tokens / global vectors into the class queues."""
    batch_cls = class_ids[idx]
    for j in range(len(idx)):
        c = int(batch_cls[j])
        for m in mods:
            queues.push(c, f"{m}_patch", out[m][j][omask[m][m][j]], int(idx[j]))
            if has_glob[j]:
                queues.push(c, f"{m}_global", glob[m][j:j + 1], int(idx[j]))
        queues.count_images(c)


# ----------------------------------------------------------------------------------------------
# applying trained adaptors


class AdaptorSet:
    """Trained adaptors ready for scoring (eval mode, no grad). Modalities without an adaptor
    pass through unchanged."""

    def __init__(self, state: dict[str, torch.Tensor], config: AdaptConfig):
        self.config = config
        self.adaptors = adaptors_from_state(state, config) if state else {}

    def __contains__(self, modality: str) -> bool:
        return modality in self.adaptors

    def apply(self, tokens_rgb=None, tokens_xyz=None, fg=None, batch_size: int = 16):
        """Adapted (rgb, xyz) tokens, float32 torch tensors in the layout given: (T, C),
        (B, T, C) or the extractors' (B, C, g, g); None stays None. ``fg``: (T,), (B, T),
        (g, g) or (B, g, g) bool; None = cells with xyz points (all cells without xyz)."""
        rgb, rgb_layout = _to_btc(tokens_rgb)
        xyz, xyz_layout = _to_btc(tokens_xyz)
        ref = rgb if rgb is not None else xyz
        if ref is None:
            return None, None
        b, t, _ = ref.shape
        if fg is None:
            fgm = (xyz != 0).any(-1) if xyz is not None else torch.ones(b, t, dtype=torch.bool)
        else:
            fgm = torch.as_tensor(np.asarray(fg) if not isinstance(fg, torch.Tensor) else fg).bool().reshape(b, t)
        has_pts = (xyz != 0).any(-1) if xyz is not None else None
        keys = {"rgb": fgm, "xyz": fgm & has_pts if has_pts is not None else fgm}
        outs = {}
        with torch.inference_mode():
            for m, x in (("rgb", rgb), ("xyz", xyz)):
                if x is None or m not in self.adaptors:
                    outs[m] = x
                    continue
                chunks = []
                for s in range(0, b, batch_size):
                    km = keys[m][s:s + batch_size] if self.config.attend_foreground_only else None
                    chunks.append(self.adaptors[m](x[s:s + batch_size], km))
                outs[m] = torch.cat(chunks)
        return _from_btc(outs["rgb"], rgb_layout), _from_btc(outs["xyz"], xyz_layout)


def load_adaptors(state: dict[str, torch.Tensor], config: AdaptConfig) -> AdaptorSet:
    return AdaptorSet(state, config)


def apply_adaptors(state: dict[str, torch.Tensor], config: AdaptConfig, tokens_rgb=None, tokens_xyz=None,
                   fg=None, batch_size: int = 16):
    """One-shot :meth:`AdaptorSet.apply` (rebuilds the adaptors; use :class:`AdaptorSet` in loops)."""
    return AdaptorSet(state, config).apply(tokens_rgb, tokens_xyz, fg, batch_size)


def _to_btc(x):
    if x is None:
        return None, None
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().to(torch.float32)
    if t.ndim == 2:
        return t.unsqueeze(0), ("tc", None)
    if t.ndim == 3:
        return t, ("btc", None)
    if t.ndim == 4:
        b, c, h, w = t.shape
        return t.reshape(b, c, h * w).transpose(1, 2), ("bchw", (h, w))
    raise ValueError(f"tokens must be (T, C), (B, T, C) or (B, C, g, g), got shape {tuple(t.shape)}")


def _from_btc(x, layout):
    if x is None:
        return None
    kind, hw = layout
    if kind == "tc":
        return x[0]
    if kind == "bchw":
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *hw).contiguous()
    return x
