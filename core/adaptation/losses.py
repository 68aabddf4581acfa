"""LSFA loss functions (method.md §4), pure functions on tensors.

Cross-modal (contrastive, need both modalities):
- :func:`local_alignment_loss` (LA): patch-level InfoNCE, RGB vs xyz token at the same grid
  position is the positive, all other sampled foreground tokens of the batch are negatives,
  both directions.
- :func:`global_alignment_loss` (GA): the same between per-image global vectors.
Intra-modal (compactness against per-class queues of earlier adapted features):
- :func:`local_compactness_loss` (LC), :func:`global_compactness_loss` (GC), built on
  :func:`capped_nn_distance`.

The 2τ factor: the reference code multiplies every InfoNCE by 2τ (method.md §4.1). Here it is
explicit: ``scale_2tau=True`` applies it. With τ = 1 the symmetric LA then equals the sum of
the two directions, exactly the reference's L_LA.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def info_nce(a: torch.Tensor, b: torch.Tensor, tau: float = 1.0, scale_2tau: bool = False) -> torch.Tensor:
    """InfoNCE of row-aligned (N, D) sets: mean over rows u of -log softmax_v(a_u·b_v / τ)[u].

    No normalisation is done here (pass unit vectors for cosine logits). ``scale_2tau``
    multiplies the result by 2τ (the reference code's convention).
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"info_nce needs two (N, D) tensors of equal shape, got {tuple(a.shape)}, {tuple(b.shape)}")
    logits = a @ b.T / tau
    loss = F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))
    return loss * (2.0 * tau) if scale_2tau else loss


def symmetric_info_nce(a: torch.Tensor, b: torch.Tensor, tau: float = 1.0, scale_2tau: bool = False) -> torch.Tensor:
    """½·[InfoNCE(a, b) + InfoNCE(b, a)] from one shared logit matrix (unit vectors expected)."""
    logits = (a / tau) @ b.T
    target = torch.arange(a.shape[0], device=a.device)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    return loss * (2.0 * tau) if scale_2tau else loss


def local_alignment_loss(q: torch.Tensor, k: torch.Tensor, tau: float = 1.0, scale_2tau: bool = True,
                         max_tokens: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Cross-modal local alignment (L_LA) over the foreground tokens of a batch.

    ``q`` (N, D) RGB head outputs and ``k`` (N, D) xyz head outputs, row u of both from the same
    image and grid position. Rows are L2-normalised here. If N > ``max_tokens`` a random subset
    (drawn from ``generator``) of rows is used so the N×N logit matrix stays small. Returns 0
    when fewer than 2 tokens are given (no negatives).
    """
    if q.shape != k.shape:
        raise ValueError(f"q and k must have equal shapes, got {tuple(q.shape)}, {tuple(k.shape)}")
    n = q.shape[0]
    if n < 2:
        return q.sum() * 0.0
    if max_tokens is not None and n > max_tokens:
        idx = torch.randperm(n, generator=generator)[:max_tokens].to(q.device)
        q, k = q[idx], k[idx]
    return symmetric_info_nce(F.normalize(q, dim=-1), F.normalize(k, dim=-1), tau, scale_2tau)


def global_alignment_loss(g_rgb: torch.Tensor, g_xyz: torch.Tensor, tau: float = 1.0,
                          scale_2tau: bool = True) -> torch.Tensor:
    """Cross-modal global alignment (L_GA): symmetric InfoNCE between per-image global vectors.

    ``g_rgb``, ``g_xyz``: (n_images, D) head outputs of the images' global (mean foreground)
    adapted features; the other images of the batch are the negatives. 0 for fewer than 2 images.
    """
    if g_rgb.shape[0] < 2:
        return g_rgb.sum() * 0.0
    return symmetric_info_nce(F.normalize(g_rgb, dim=-1), F.normalize(g_xyz, dim=-1), tau, scale_2tau)


@torch.no_grad()
def nearest_neighbour_index(x: torch.Tensor, bank: torch.Tensor, chunk_elems: int = 1 << 22) -> torch.Tensor:
    """Index (N,) of each row's nearest bank row (squared Euclidean), exact, no grad.

    Uses faiss' exact brute-force search (BLAS + fused arg-min); falls back to chunked torch."""
    if bank.shape[0] == 0:
        raise ValueError("nearest neighbour search in an empty bank")
    xq = x.detach().to("cpu", torch.float32).contiguous()
    xb = bank.detach().to("cpu", torch.float32).contiguous()
    try:
        import faiss

        _, idx = faiss.knn(xq.numpy(), xb.numpy(), 1)
        return torch.from_numpy(idx[:, 0].astype(np.int64)).to(x.device)
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        pass
    bank_sq = (xb * xb).sum(dim=1)
    rows = max(1, chunk_elems // xb.shape[0])
    out = torch.empty(xq.shape[0], dtype=torch.long)
    for s in range(0, xq.shape[0], rows):
        # ||x||² is constant per row, so the argmin needs only ||m||² - 2 x·m
        d = torch.addmm(bank_sq, xq[s:s + rows], xb.T, alpha=-2.0)
        out[s:s + rows] = d.argmin(dim=1)
    return out.to(x.device)


def capped_nn_distance(x: torch.Tensor, bank: torch.Tensor, cap_sq: float | None = None,
                       chunk_elems: int = 1 << 22) -> tuple[torch.Tensor, torch.Tensor]:
    """Capped Euclidean distance of each row of ``x`` (N, D) to its nearest ``bank`` row (M, D).

    d = sqrt(clamp(min_m ||x - m||², 1e-12, cap_sq)) in the units of ``x``. The neighbour is
    found without grad; the distance to it is recomputed with grad w.r.t. ``x`` (the bank is
    constant). Rows whose squared distance exceeds ``cap_sq`` get d = sqrt(cap_sq) and zero
    gradient. Returns (d (N,), clamped (N,) bool).
    """
    idx = nearest_neighbour_index(x, bank, chunk_elems)
    nn_vec = bank.detach().to(x.dtype)[idx]
    d_sq = ((x - nn_vec) ** 2).sum(dim=-1)
    upper = float("inf") if cap_sq is None else float(cap_sq)
    clamped = d_sq.detach() > upper
    return torch.sqrt(torch.clamp(d_sq, min=1e-12, max=upper)), clamped


def local_compactness_loss(x: torch.Tensor, bank: torch.Tensor, cap_sq: float | None = None,
                           image_index: torch.Tensor | None = None, scale: float = 1.0
                           ) -> tuple[torch.Tensor, float]:
    """Intra-modal local compactness (L_LC) of adapted patch tokens ``x`` (N, D) against a bank.

    Mean over images of the mean capped NN distance of the image's tokens, divided by ``scale``
    (``image_index`` (N,) gives each row's image; None = plain mean over rows). Returns
    (loss, fraction of rows whose distance was capped).
    """
    d, clamped = capped_nn_distance(x, bank, cap_sq)
    d = d / scale
    if image_index is None:
        loss = d.mean()
    else:
        _, inverse, counts = torch.unique(image_index, return_inverse=True, return_counts=True)
        per_image = torch.zeros(counts.shape[0], dtype=d.dtype, device=d.device).index_add(0, inverse, d)
        loss = (per_image / counts.to(d.dtype)).mean()
    return loss, float(clamped.float().mean()) if clamped.numel() else 0.0


def global_compactness_loss(g: torch.Tensor, bank: torch.Tensor, cap_sq: float | None = None,
                            scale: float = 1.0) -> tuple[torch.Tensor, float]:
    """Intra-modal global compactness (L_GC): mean capped NN distance of per-image global
    vectors ``g`` (n, D) to a bank of earlier global vectors, divided by ``scale``.
    Returns (loss, clamped fraction)."""
    d, clamped = capped_nn_distance(g, bank, cap_sq)
    return (d / scale).mean(), float(clamped.float().mean()) if clamped.numel() else 0.0
