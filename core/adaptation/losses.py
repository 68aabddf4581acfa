"""LSFA loss functions (method.md §4), pure functions on tensors.

Cross-modal (contrastive, need both modalities):
- :func:`local_alignment_loss` (LA): patch-level InfoNCE, RGB vs xyz token at the same grid
  position is the positive, all other sampled foreground tokens of the batch are negatives,
  both directions.
- :func:`global_alignment_loss` (GA): the same between per-image global vectors.
Intra-modal (compactness against per-class queues of earlier adapted features):
- :func:`queue_compactness_loss` (LC on patch tokens, GC on global vectors), built on
  :func:`nearest_other_source` and :func:`capped_distance`.

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
    return capped_distance(x, bank.detach().to(x.dtype)[idx], cap_sq)


def capped_distance(x: torch.Tensor, nn_vec: torch.Tensor, cap_sq: float | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Capped Euclidean distance of each row of ``x`` (N, D) to the constant row ``nn_vec`` (N, D)
    beside it, with grad w.r.t. ``x`` (see :func:`capped_nn_distance`). Returns (d, clamped)."""
    d_sq = ((x - nn_vec.detach()) ** 2).sum(dim=-1)
    upper = float("inf") if cap_sq is None else float(cap_sq)
    clamped = d_sq.detach() > upper
    return torch.sqrt(torch.clamp(d_sq, min=1e-12, max=upper)), clamped


@torch.no_grad()
def nearest_other_source(x: torch.Tensor, owner: torch.Tensor, bank: torch.Tensor, sources: torch.Tensor,
                         chunk_rows: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest ``bank`` row (squared Euclidean, exact, no grad) of each row of ``x`` (N, D) among
    the bank rows whose ``sources`` id differs from the row's ``owner`` id (an image is never
    matched with its own earlier features). Returns (index (N,), found (N,) bool: such a row
    exists). One matrix product for all rows, instead of one search per image."""
    xq = x.detach().to(torch.float32)
    xb = bank.detach().to(torch.float32)
    bank_sq = (xb * xb).sum(dim=1)
    idx = torch.zeros(xq.shape[0], dtype=torch.long)
    found = torch.zeros(xq.shape[0], dtype=torch.bool)
    for s in range(0, xq.shape[0], chunk_rows):
        # ||x||² is constant per row, so the argmin needs only ||m||² - 2 x·m
        d = torch.addmm(bank_sq, xq[s:s + chunk_rows], xb.T, alpha=-2.0)
        d.masked_fill_(owner[s:s + chunk_rows, None] == sources[None, :], float("inf"))
        best, where = d.min(dim=1)
        idx[s:s + chunk_rows] = where
        found[s:s + chunk_rows] = torch.isfinite(best)
    return idx, found


def queue_compactness_loss(rows: list[torch.Tensor], sources: list[int],
                           held: tuple[torch.Tensor, torch.Tensor] | None, cap_sq: float | None = None,
                           scale: float = 1.0) -> tuple[torch.Tensor, list[float]]:
    """Intra-modal compactness (L_LC with patch tokens, L_GC with global vectors) of a batch.

    ``rows[i]`` (n_i, D) are image i's adapted features, ``sources[i]`` its id; ``held`` =
    (bank (M, D), source id per bank row (M,)) is the class queue. Returns (sum over images of
    the mean capped distance of the image's rows to their nearest queued row of *another* image,
    divided by ``scale``; the clamped fraction of each contributing image). Images without rows,
    or with no other image's rows in the queue, add nothing. The caller divides by its image count.
    """
    zero = torch.zeros(())
    if held is None or not rows:
        return zero, []
    bank, bank_sources = held
    x = torch.cat(rows)
    if x.shape[0] == 0:
        return zero, []
    image = torch.cat([torch.full((r.shape[0],), i, dtype=torch.long) for i, r in enumerate(rows)])
    owner = torch.tensor(sources, dtype=torch.long)[image]
    nn, found = nearest_other_source(x, owner, bank, bank_sources)
    x, image = x[found], image[found]
    if x.shape[0] == 0:
        return zero, []
    d, clamped = capped_distance(x, bank[nn[found]], cap_sq)
    present, inverse, counts = torch.unique(image, return_inverse=True, return_counts=True)
    per_image = torch.zeros(len(present), dtype=d.dtype).index_add(0, inverse, d / scale) / counts.to(d.dtype)
    fracs = torch.zeros(len(present)).index_add(0, inverse, clamped.float()) / counts.float()
    return per_image.sum(), fracs.tolist()
