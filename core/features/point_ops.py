"""Point-cloud operations for Point-MAE in plain torch (CPU or CUDA, no custom kernels).

All coordinates are in the cloud's own units (metres for this project); distances returned
are squared Euclidean distances in those units squared.
"""

from __future__ import annotations

import numpy as np
import torch

_CHUNK_ELEMENTS = 1 << 24  # distance-matrix entries computed at once (64 MB of float32)


def farthest_point_sample(points: torch.Tensor, count: int) -> torch.Tensor:
    """Indices (count,) of iterative farthest-point sampling of ``points`` (N, 3).

    Starts at index 0; each step adds the point with the largest squared distance to the
    points chosen so far (lowest index on ties). Requires 1 <= count <= N.
    """
    n = points.shape[0]
    if not 1 <= count <= n:
        raise ValueError(f"cannot sample {count} centres from {n} points")
    if points.device.type == "cpu":  # numpy's per-step overhead is several times lower
        return torch.from_numpy(_fps_numpy(points.detach().numpy(), count))
    return _fps_torch(points, count)


def _fps_torch(points: torch.Tensor, count: int) -> torch.Tensor:
    n = points.shape[0]
    chosen = torch.empty(count, dtype=torch.long, device=points.device)
    nearest = torch.full((n,), float("inf"), dtype=points.dtype, device=points.device)
    current = torch.zeros(1, dtype=torch.long, device=points.device)
    for i in range(count):  # tensor indices only: no host sync per step on the GPU
        chosen[i:i + 1] = current
        step = ((points - points.index_select(0, current)) ** 2).sum(dim=1)
        torch.minimum(nearest, step, out=nearest)
        current = torch.argmax(nearest).view(1)
    return chosen


def _fps_numpy(points: np.ndarray, count: int) -> np.ndarray:
    chosen = np.empty(count, dtype=np.int64)
    nearest = np.full(points.shape[0], np.inf, dtype=points.dtype)
    current = 0
    for i in range(count):
        chosen[i] = current
        diff = points - points[current]
        np.minimum(nearest, np.einsum("ij,ij->i", diff, diff), out=nearest)
        current = int(np.argmax(nearest))
    return chosen


def knn(queries: torch.Tensor, points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest ``points`` (N, 3) of each query (M, 3), nearest first.

    Returns (squared distances (M, k), indices into ``points`` (M, k)). Exact (no matmul
    shortcut), computed in query chunks to bound memory.
    """
    m, n = queries.shape[0], points.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"cannot find {k} neighbours among {n} points")
    step = max(1, _CHUNK_ELEMENTS // max(n, 1))
    dists, idxs = [], []
    for start in range(0, m, step):
        block = torch.cdist(
            queries[start:start + step], points, compute_mode="donot_use_mm_for_euclid_dist"
        )
        d, i = torch.topk(block, k, dim=1, largest=False, sorted=True)
        dists.append(d.square())
        idxs.append(i)
    return torch.cat(dists), torch.cat(idxs)


def group(points: torch.Tensor, num_groups: int, group_size: int):
    """Point-MAE grouping: FPS centres, then each centre's ``group_size`` nearest points.

    Returns (neighbourhoods (G, K, 3) relative to their centre, centres (G, 3)).
    """
    centre_idx = farthest_point_sample(points, num_groups)
    centres = points[centre_idx]
    _, nn_idx = knn(centres, points, group_size)
    neighbourhoods = points[nn_idx] - centres[:, None, :]
    return neighbourhoods, centres


def interpolation_weights(points: torch.Tensor, centres: torch.Tensor, k: int = 3,
                          eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse-distance weights of each point's ``k`` nearest centres (PointNet++ propagation).

    Weight ∝ 1 / (squared distance + eps), normalised to sum 1. Returns (idx (N, k), w (N, k)).
    """
    k = min(k, centres.shape[0])
    sq, idx = knn(points, centres, k)
    w = 1.0 / (sq + eps)
    return idx, w / w.sum(dim=1, keepdim=True)


def interpolation_matrix(points: torch.Tensor, centres: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Sparse (N, G) matrix of :func:`interpolation_weights`: rows = points, columns = centres.

    ``matrix @ centre_features`` gives each point the weighted sum of its k nearest centres'.
    """
    idx, w = interpolation_weights(points, centres, k)
    rows = torch.arange(points.shape[0], device=points.device).repeat_interleave(idx.shape[1])
    return _sparse(rows, idx.reshape(-1), w.reshape(-1), (points.shape[0], centres.shape[0]))


def pool_weights(pixel_index: torch.Tensor, height: int, width: int, grid: int,
                 dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid cells (N, m) and weights (N, m) through which each point's value reaches the map.

    Pooling = write the N values at their pixels ``pixel_index`` (row-major) of a zero
    height×width canvas, average over 3×3 windows (stride 1, no padding: the map shrinks by
    2 px), then adaptive-average to grid×grid (as M3DM/LSFA). Both steps are separable, so
    each point reaches only m (≤ 4 for the usual sizes) cells; padding entries have weight 0.
    """
    if height < 3 or width < 3:
        raise ValueError(f"a {height}×{width} map is too small for the 3×3 average")
    device = pixel_index.device
    row_op, col_op = _pool_1d(height, grid), _pool_1d(width, grid)  # (grid, size), float64
    row_w, row_i = torch.topk(row_op.T, int((row_op != 0).sum(0).max()), dim=1)
    col_w, col_i = torch.topk(col_op.T, int((col_op != 0).sum(0).max()), dim=1)
    y = (pixel_index // width).cpu()
    x = (pixel_index % width).cpu()
    cells = (row_i[y][:, :, None] * grid + col_i[x][:, None, :]).reshape(len(y), -1)
    weights = (row_w[y][:, :, None] * col_w[x][:, None, :]).reshape(len(y), -1)
    return cells.to(device), weights.to(device=device, dtype=dtype)


def pool_matrix(pixel_index: torch.Tensor, height: int, width: int, grid: int,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sparse (grid², N) matrix of :func:`pool_weights`."""
    cells, weights = pool_weights(pixel_index, height, width, grid, dtype)
    points = torch.arange(len(pixel_index), device=cells.device).repeat_interleave(cells.shape[1])
    return _sparse(cells.reshape(-1), points, weights.reshape(-1), (grid * grid, len(pixel_index)))


def grid_projection(points: torch.Tensor, centres: torch.Tensor, pixel_index: torch.Tensor,
                    height: int, width: int, grid: int, k: int = 3) -> torch.Tensor:
    """Sparse (grid², G) matrix = pooling (:func:`pool_matrix`) ∘ interpolation
    (:func:`interpolation_matrix`): ``matrix @ centre_features`` is the patch map."""
    cells, pool_w = pool_weights(pixel_index, height, width, grid, points.dtype)
    idx, interp_w = interpolation_weights(points, centres, k)
    rows = cells[:, :, None].expand(-1, -1, idx.shape[1])
    cols = idx[:, None, :].expand(-1, cells.shape[1], -1)
    vals = pool_w[:, :, None] * interp_w[:, None, :]
    return _sparse(rows.reshape(-1), cols.reshape(-1), vals.reshape(-1),
                   (grid * grid, centres.shape[0]))


def scatter_pool(values: torch.Tensor, pixel_index: torch.Tensor, height: int, width: int,
                 grid: int) -> torch.Tensor:
    """(N, C) per-point values -> (C, grid, grid) through :func:`pool_matrix`."""
    pooled = torch.sparse.mm(pool_matrix(pixel_index, height, width, grid, values.dtype), values)
    return pooled.T.reshape(values.shape[1], grid, grid)


def _pool_1d(size: int, grid: int) -> torch.Tensor:
    """(grid, size) float64: 3-tap box average without padding, then adaptive average."""
    n = size - 2
    box = torch.zeros(n, size, dtype=torch.float64)
    r = torch.arange(n)
    for k in range(3):
        box[r, r + k] = 1 / 3
    adaptive = torch.zeros(grid, n, dtype=torch.float64)
    for i in range(grid):  # torch's adaptive pooling windows: [floor(i·n/g), ceil((i+1)·n/g))
        start, end = (i * n) // grid, -(-((i + 1) * n) // grid)
        adaptive[i, start:end] = 1 / (end - start)
    return adaptive @ box


def _sparse(rows, cols, values, shape) -> torch.Tensor:
    return torch.sparse_coo_tensor(
        torch.stack([rows, cols]), values, shape, check_invariants=False
    ).coalesce()
