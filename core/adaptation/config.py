"""Settings of LSFA adaptor training (json-serialisable; stored in the model file).

Defaults follow the reference code's loss weights (docs/lsfa_adaptation.md) where it has a value and were
sized for the CPU budget (200 images × 784 tokens in ≤ 3 min on 2 cores) elsewhere; see
bench/bench_adaptation_speed.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from core.errors import UserError

LOSS_NAMES = ("la", "ga", "lc", "gc")  # local/global alignment (cross-modal), local/global compactness
LOSS_HELP = {"la": "local (patch) cross-modal alignment", "ga": "global cross-modal alignment",
             "lc": "local intra-modal compactness", "gc": "global intra-modal compactness"}
ADAPTOR_CHOICES = ("block", "mlp")
ADAPTOR_HELP = "block: transformer block over the image's tokens (default); mlp: per-token MLP"
CROSS_MODAL_LOSSES = ("la", "ga")
INTRA_MODAL_LOSSES = ("lc", "gc")


@dataclass
class AdaptConfig:
    # --- adaptors (residual bottleneck, identity at init; see adaptors.py) ---
    adaptor: str = "block"  # "block" (pre-norm transformer block over the image's tokens) | "mlp"
    width_rgb: int = 128  # bottleneck width of the RGB adaptor
    width_xyz: int = 64  # bottleneck width of the xyz adaptor
    num_heads: int = 4  # attention heads of the "block" adaptor (must divide the widths)
    mlp_ratio: float = 2.0  # hidden width of the block/mlp = mlp_ratio × width
    attend_foreground_only: bool = True  # block: keys restricted to foreground tokens
    head_dim: int = 128  # projection heads (used only inside the contrastive losses)

    # --- losses ---
    losses: tuple[str, ...] = LOSS_NAMES
    weight_la: float = 1.0  # cross-modal local alignment
    weight_ga: float = 0.1  # cross-modal global alignment
    weight_ifc: float = 0.9  # intra-modal compactness: weight_ifc × (lc + weight_gc × gc)
    weight_gc: float = 0.4
    tau: float = 1.0  # InfoNCE temperature (reference 1.0; 0.1 is the usual alternative)
    nce_2tau: bool = True  # multiply InfoNCE by 2τ as the reference code does (keeps §4.7 weights)
    la_max_tokens: int = 4096  # foreground tokens per micro-batch in the LA logit matrix (seeded subset)
    ifc_units: str = "relative"  # "relative": IFC distances / cap in units of the median initial
    #                              NN distance per modality; "raw": feature units (reference)
    ifc_cap: float | None = 3.0  # distance cap (reference: raw, sqrt(50) ≈ 7.07); None = no cap
    train_max_tokens: int | None = 128  # per image and modality, foreground tokens the adaptor sees
    #                                     in a training step (seeded subset, like token dropout;
    #                                     None = all); scoring always uses every token
    lc_max_tokens: int | None = 32  # per image, foreground tokens that enter LC (seeded subset;
    #                                  None = all): the nearest-neighbour search is LC's cost
    queue_patch_cap: int = 4096  # per class and modality, adapted patch tokens kept (FIFO)
    queue_global_cap: int = 100  # per class and modality, global vectors kept (FIFO)
    queue_min_images: int = 8  # a class queue is "ready" once it holds this many images
    queue_warmup_steps: int = 10  # micro-batches before the queue terms (lc, gc) can switch on
    rgb_foreground_only: bool = True  # RGB compactness and queues use foreground tokens only

    # --- optimisation ---
    epochs: int = 4
    min_steps: int = 200  # small training sets get more epochs so that ≥ this many micro-batches run
    #                       (0 when epochs are given explicitly: see from_dict)
    batch_size: int = 8
    grad_accum: int = 1  # micro-batches per optimiser step (gradients are accumulated, not zeroed)
    lr: float = 1e-3  # reference 3e-4; 1e-3 with 400 steps measured better on held-out demo seeds
    lr_warmup_fraction: float = 0.1  # linear warm-up over this fraction of optimiser steps, then cosine
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of lr
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = None  # max global grad norm; None = no clipping (reference)
    seed: int = 0

    extra: dict = field(default_factory=dict)  # free-form notes kept with the settings

    def __post_init__(self) -> None:
        self.losses = tuple(self.losses)
        self.betas = tuple(float(b) for b in self.betas)
        self.validate()

    def validate(self) -> None:
        if self.adaptor not in ADAPTOR_CHOICES:
            raise UserError(f"adaptor must be 'block' or 'mlp', not {self.adaptor!r}")
        bad = [n for n in self.losses if n not in LOSS_NAMES]
        if bad:
            raise UserError(f"unknown adaptation loss(es) {bad}; choose from {list(LOSS_NAMES)}")
        if self.ifc_units not in ("relative", "raw"):
            raise UserError(f"ifc_units must be 'relative' or 'raw', not {self.ifc_units!r}")
        for name in ("width_rgb", "width_xyz", "num_heads", "head_dim", "batch_size", "grad_accum",
                     "la_max_tokens", "queue_patch_cap", "queue_global_cap", "queue_min_images"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"adaptation setting {name} must be ≥ 1")
        if self.epochs < 0 or self.queue_warmup_steps < 0 or self.min_steps < 0:
            raise UserError("adaptation epochs, min_steps and queue_warmup_steps must be ≥ 0")
        if self.adaptor == "block" and (self.width_rgb % self.num_heads or self.width_xyz % self.num_heads):
            raise UserError(f"num_heads={self.num_heads} must divide width_rgb and width_xyz")
        if not (self.tau > 0 and self.lr > 0):
            raise UserError("tau and lr must be > 0")
        for name in ("lc_max_tokens", "train_max_tokens"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise UserError(f"adaptation setting {name} must be ≥ 1 or None")
        if self.ifc_cap is not None and self.ifc_cap <= 0:
            raise UserError("ifc_cap must be > 0 or None")

    def epochs_for(self, n_images: int) -> int:
        """Epochs the trainer runs on ``n_images`` training images: ``epochs``, raised so that at
        least ``min_steps`` micro-batches (of ``batch_size`` images) run; 0 stays 0 (no training)."""
        if self.epochs == 0 or n_images < 1:
            return self.epochs
        per_epoch = math.ceil(n_images / self.batch_size)
        return max(self.epochs, math.ceil(self.min_steps / per_epoch))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["losses"] = list(self.losses)
        d["betas"] = list(self.betas)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "AdaptConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown adaptation setting(s): {', '.join(unknown)}")
        d = dict(d)
        if "epochs" in d and "min_steps" not in d:
            d["min_steps"] = 0  # explicit epochs are honoured, not raised to reach min_steps
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "AdaptConfig":
        return cls.from_dict(json.loads(text))
