"""LSFA adaptors (one per modality) and the projection heads used only inside the losses.

Form (residual bottleneck, identity at initialisation)::

    z   = (F - mean) / std                 per-channel standardisation of the frozen tokens
    h   = body(Down(z))                    Down: C -> width; body at width (block or mlp)
    out = F + std * Up(h)                  Up: width -> C, zero-initialised

``out`` lives in the frozen feature space (same dimension and units as ``F``), so memory banks
and the scoring code are unchanged, and an untrained adaptor is exactly the identity: adaptation
starts from the frozen (known-good) baseline and can only move away from it as the losses ask.
``std`` scaling makes the learning rate mean the same thing for EfficientNet tokens and FPFH
histograms. The reference (method.md §3) is a full-width block with PyTorch default init
("identity + random perturbation"); the bottleneck keeps it CPU-sized.

Bodies:
- ``"block"``: one pre-norm transformer block over the image's tokens (LN → MHSA → residual;
  LN → MLP(GELU) → residual), qkv without bias, no positional encoding (as the reference);
  optionally keys restricted to foreground tokens.
- ``"mlp"``: a per-token residual MLP (LN → Linear → GELU → Linear → residual); no token mixing.

xyz adaptors keep empty cells empty: a token that is exactly zero (no points) stays exactly zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.adaptation.config import AdaptConfig

MODALITIES = ("rgb", "xyz")


class TokenBlock(nn.Module):
    """Pre-norm transformer block on (B, T, width) tokens."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        hidden = max(1, int(round(width * mlp_ratio)))
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, t, w = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, t, 3, self.num_heads, w // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, T, head_dim)
        attn_mask = None
        if key_mask is not None:
            # images without any foreground key attend everywhere (avoids an all-masked row)
            keys = key_mask | ~key_mask.any(dim=1, keepdim=True)
            attn_mask = keys[:, None, None, :]  # True = may attend
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, w))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class TokenMLP(nn.Module):
    """Per-token residual MLP on (B, T, width) tokens."""

    def __init__(self, width: int, mlp_ratio: float):
        super().__init__()
        hidden = max(1, int(round(width * mlp_ratio)))
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))


class ModalityAdaptor(nn.Module):
    """Residual-bottleneck adaptor for one modality: (B, T, C) frozen tokens -> (B, T, C)."""

    def __init__(self, in_dim: int, width: int, kind: str = "block", num_heads: int = 4,
                 mlp_ratio: float = 2.0, keep_empty_tokens: bool = False):
        super().__init__()
        self.in_dim = in_dim
        self.kind = kind
        self.keep_empty_tokens = keep_empty_tokens
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.down = nn.Linear(in_dim, width)
        if kind == "block":
            self.body = TokenBlock(width, num_heads, mlp_ratio)
        elif kind == "mlp":
            self.body = TokenMLP(width, mlp_ratio)
        else:
            raise ValueError(f"unknown adaptor kind {kind!r}")
        self.up = nn.Linear(width, in_dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    @torch.no_grad()
    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-channel statistics of the frozen training tokens (feature units)."""
        self.mean.copy_(mean.to(self.mean))
        self.std.copy_(std.to(self.std))

    def standardize(self, f: torch.Tensor) -> torch.Tensor:
        return (f - self.mean) / self.std

    def forward(self, f: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(self.down(self.standardize(f)), key_mask if self.kind == "block" else None)
        out = f + self.std * self.up(h)
        if self.keep_empty_tokens:
            out = torch.where((f == 0).all(dim=-1, keepdim=True), f, out)
        return out


class ProjectionHead(nn.Module):
    """Linear map of standardised adapted features to the contrastive space (losses only)."""

    def __init__(self, in_dim: int, head_dim: int):
        super().__init__()
        self.fc = nn.Linear(in_dim, head_dim)

    def forward(self, f_std: torch.Tensor) -> torch.Tensor:
        return self.fc(f_std)


def build_adaptor(modality: str, in_dim: int, config: AdaptConfig) -> ModalityAdaptor:
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}")
    width = config.width_rgb if modality == "rgb" else config.width_xyz
    return ModalityAdaptor(in_dim, width, config.adaptor, config.num_heads, config.mlp_ratio,
                           keep_empty_tokens=(modality == "xyz"))


def adaptors_state(adaptors: dict[str, ModalityAdaptor]) -> dict[str, torch.Tensor]:
    """Flat tensors-only state: keys "<modality>.<param>" (contiguous float32 CPU copies)."""
    return {f"{m}.{k}": v.detach().to("cpu", torch.float32).contiguous().clone()
            for m, a in adaptors.items() for k, v in a.state_dict().items()}


def adaptors_from_state(state: dict[str, torch.Tensor], config: AdaptConfig) -> dict[str, ModalityAdaptor]:
    """Rebuild the trained adaptors (eval mode) from :func:`adaptors_state` output."""
    out: dict[str, ModalityAdaptor] = {}
    for m in MODALITIES:
        sub = {k[len(m) + 1:]: v for k, v in state.items() if k.startswith(m + ".")}
        if not sub:
            continue
        if "mean" not in sub or "down.weight" not in sub:
            raise ValueError(f"adaptor state for {m} is incomplete")
        in_dim = sub["mean"].shape[0]
        width = sub["down.weight"].shape[0]
        cfg = AdaptConfig.from_dict({**config.to_dict(), f"width_{m}": width})
        adaptor = build_adaptor(m, in_dim, cfg)
        adaptor.load_state_dict(sub, strict=True)
        out[m] = adaptor.eval()
    return out
