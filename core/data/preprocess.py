"""Offline-style preprocessing of one sample (BTF/M3DM/LSFA recipe, vectorized, never in place).

1. Fit the background plane by RANSAC to the valid points of a ``border_px`` frame of the
   image (or, with ``border_from="valid_bbox"``, of the valid points' bounding box, for
   sensors whose image margins are invalid) (3-point hypotheses, inlier distance ``plane_inlier_m``, least-squares refit on the inliers)
   and remove every point closer than ``plane_remove_m`` to it. Skipped when the frame holds
   fewer than ``min_border_points`` valid points (e.g. data that is already preprocessed).
2. Keep the largest connected cluster. Instead of DBSCAN, pixels are linked when they are
   grid neighbours (within ``cluster_link_px`` rows/columns) and their 3D points are closer
   than ``cluster_eps_m``; components come from ``scipy.sparse.csgraph``.
3. Zero-pad xyz, RGB and mask to a centred square whose side is the larger image side
   rounded up to a multiple of ``pad_multiple`` (odd pixel bottom/right).

Removed points become (0, 0, 0) and, with ``zero_rgb_background``, black in RGB (points that
were already invalid keep their colour, as in the reference). All distances are in metres.
Results can be cached in ``cache_dir`` keyed by a SHA-256 of the xyz content and the
parameters; only the kept-pixel mask is stored, and the folder is kept under a size limit
(:mod:`core.data.preprocess_cache`). The user's files are never written.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from core.data import preprocess_cache as cache
from core.data.sample import Sample, valid_points
from core.errors import DataError, UserError


@dataclass(frozen=True)
class PreprocessParams:
    border_px: int = 10  # width of the frame used to fit the background plane (pixels)
    border_from: str = "image"  # "image" (reference) | "valid_bbox": frame of the valid points' box,
    #                              for sensors with invalid image margins; not for padded data
    plane_inlier_m: float = 0.004  # RANSAC inlier distance (metres)
    plane_remove_m: float = 0.005  # points closer than this to the plane are background (metres)
    ransac_iterations: int = 1000
    ransac_max_points: int = 4000  # border points used to score hypotheses (random subset)
    min_border_points: int = 50  # fewer valid border points -> no plane removal
    cluster_eps_m: float = 0.006  # neighbouring points closer than this are connected (metres)
    cluster_link_px: int = 2  # neighbourhood radius on the grid (1 = 8-neighbours)
    pad_multiple: int = 100  # square side rounded up to this (0 = plain max(H, W))
    zero_rgb_background: bool = True
    seed: int = 0
    flying_ratio: float = 4.0  # flying-point test: neighbour within this × the expected point
    #                            spacing at that range (0 = off); see flying_points
    flying_min_neighbours: int = 2  # fewer such neighbours (of 8) -> flying point, removed from xyz

    def cache_fields(self) -> dict:
        """Parameters that change which points are kept."""
        d = asdict(self)
        d.pop("pad_multiple")
        d.pop("zero_rgb_background")
        d.pop("flying_ratio")  # applied after the cached foreground mask
        d.pop("flying_min_neighbours")
        return d


# ---------------------------------------------------------------------------- plane removal


def border_mask(shape: tuple[int, int], border_px: int) -> np.ndarray:
    h, w = shape
    m = np.zeros((h, w), dtype=bool)
    b = max(0, int(border_px))
    m[:b, :] = True
    m[h - b :, :] = True
    m[:, :b] = True
    m[:, w - b :] = True
    return m


_RANSAC_CONFIDENCE = 0.99999  # chance that one hypothesis is drawn from inliers only


def _ransac_needed(inlier_share: float, cap: int) -> int:
    """Hypotheses needed (at most ``cap``) so that, at this inlier share, one of them is made
    of three inliers with probability ``_RANSAC_CONFIDENCE`` (the classic adaptive stop)."""
    good = float(inlier_share) ** 3
    if good <= 0:
        return cap
    if good >= 1:
        return 1
    return min(cap, math.ceil(math.log(1 - _RANSAC_CONFIDENCE) / math.log(1 - good)))


def fit_plane_ransac(
    points: np.ndarray, inlier_m: float, iterations: int = 1000, max_points: int = 4000, seed: int = 0
) -> tuple[np.ndarray, int] | None:
    """RANSAC plane (a, b, c, d) with unit normal, |a x + b y + c z + d| = distance in metres,
    and its inlier count among ``points``; None if no non-degenerate hypothesis exists.
    Hypotheses are scored 250 at a time, stopping once enough have been tried for the best
    inlier share so far (:func:`_ransac_needed`; at most ``iterations``)."""
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    if n < 3:
        return None
    rng = np.random.default_rng(seed)
    centre = pts.mean(axis=0)
    local = pts - centre
    sub = local if n <= max_points else local[rng.choice(n, max_points, replace=False)]
    idx = rng.integers(0, n, size=(iterations, 3))
    p0 = local[idx[:, 0]]
    normals = np.cross(local[idx[:, 1]] - p0, local[idx[:, 2]] - p0)
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-12
    if not ok.any():
        return None
    normals = normals[ok] / norms[ok, None]
    offsets = -np.einsum("ij,ij->i", normals, p0[ok])
    counts = np.zeros(len(normals), dtype=np.int64)
    sub32, n32, o32 = sub.astype(np.float32), normals.astype(np.float32), offsets.astype(np.float32)
    done = 0
    for start in range(0, len(normals), 250):  # bounded memory: |sub| × 250 distances at a time
        dist = np.abs(sub32 @ n32[start : start + 250].T + o32[start : start + 250])
        counts[start : start + 250] = np.count_nonzero(dist < inlier_m, axis=0)
        done = min(start + 250, len(normals))
        if done >= _ransac_needed(counts[:done].max() / len(sub), len(normals)):
            break
    best = int(np.argmax(counts[:done]))
    normal, offset = normals[best], offsets[best]
    inliers = np.abs(local @ normal + offset) < inlier_m
    if inliers.sum() >= 3:  # least-squares refit on all inliers
        c = local[inliers].mean(axis=0)
        _, _, vt = np.linalg.svd(local[inliers] - c, full_matrices=False)
        refit = vt[2]
        refit_offset = -float(refit @ c)
        refit_inliers = np.abs(local @ refit + refit_offset) < inlier_m
        if refit_inliers.sum() >= inliers.sum():
            normal, offset, inliers = refit, refit_offset, refit_inliers
    d = offset - float(normal @ centre)  # back to the original coordinates
    return np.array([*normal, d], dtype=np.float64), int(inliers.sum())


def plane_keep_mask(
    xyz: np.ndarray, params: PreprocessParams, valid: np.ndarray | None = None
) -> tuple[np.ndarray, dict]:
    """H×W bool of valid points that are not on the background plane, and a summary dict."""
    valid = valid_points(xyz) if valid is None else valid
    if params.border_from == "image":
        frame = border_mask(valid.shape, params.border_px) & valid
    elif params.border_from == "valid_bbox":
        frame = np.zeros_like(valid)
        if valid.any():
            rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
            box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            frame[box] = border_mask(valid[box].shape, params.border_px) & valid[box]
    else:
        raise UserError(f"border_from must be 'image' or 'valid_bbox', got {params.border_from!r}")
    n_border = int(frame.sum())
    info = {"plane": None, "border_points": n_border, "plane_inliers": 0, "plane_removed": 0}
    if n_border < params.min_border_points:
        return valid, info
    fit = fit_plane_ransac(
        xyz[frame], params.plane_inlier_m, params.ransac_iterations, params.ransac_max_points, params.seed
    )
    if fit is None:
        return valid, info
    plane, n_inliers = fit
    a, b, c, d = (np.float32(v) for v in plane)
    dist = np.abs(xyz[..., 0] * a + xyz[..., 1] * b + xyz[..., 2] * c + d)
    on_plane = valid & (dist < params.plane_remove_m)
    info.update(plane=[float(v) for v in plane], plane_inliers=n_inliers, plane_removed=int(on_plane.sum()))
    return valid & ~on_plane, info


# ---------------------------------------------------------------------------- clustering


def _component_planes(xyz: np.ndarray, dtype) -> list[np.ndarray]:
    """The x, y, z planes of an H×W×3 cloud as contiguous ``dtype`` arrays (whole-plane
    arithmetic on them is several times faster than over the last axis)."""
    return [np.ascontiguousarray(xyz[..., c], dtype=dtype) for c in range(3)]


def _squared_norms(planes: list[np.ndarray]) -> np.ndarray:
    """x² + y² + z² per pixel, in the planes' dtype (added in that order)."""
    return planes[0] * planes[0] + planes[1] * planes[1] + planes[2] * planes[2]


def _squared_distances(planes: list[np.ndarray], a, b, keep: np.ndarray | None = None) -> np.ndarray:
    """Squared 3D distance between the pixels at index ``a`` and ``b`` of the component planes
    (only where ``keep``, when given), in the planes' dtype, components added in x, y, z order."""
    total = None
    for q in planes:
        diff = q[a] - q[b] if keep is None else q[a][keep] - q[b][keep]
        total = diff * diff if total is None else total + diff * diff
    return total


def largest_cluster(xyz: np.ndarray, keep: np.ndarray, eps_m: float, link_px: int = 2) -> np.ndarray:
    """H×W bool of the largest group of ``keep`` pixels connected through grid neighbours
    (within ``link_px`` rows/columns) whose 3D points are closer than ``eps_m`` metres."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    if not keep.any():
        return keep.copy()
    rows_any = np.flatnonzero(keep.any(axis=1))
    cols_any = np.flatnonzero(keep.any(axis=0))
    y0, y1, x0, x1 = rows_any[0], rows_any[-1] + 1, cols_any[0], cols_any[-1] + 1
    k = keep[y0:y1, x0:x1]
    h, w = k.shape
    node = np.full((h, w), -1, dtype=np.int64)
    n_nodes = int(k.sum())
    node[k] = np.arange(n_nodes)
    planes = _component_planes(xyz[y0:y1, x0:x1], np.float32)
    eps2 = np.float32(eps_m * eps_m)
    r = max(1, int(link_px))
    offsets = [(dy, dx) for dy in range(0, r + 1) for dx in range(-r, r + 1)
               if not (dy == 0 and dx <= 0) and dy < h and abs(dx) < w]
    # one column per offset: the linked neighbour, or the node itself (a self-loop changes no
    # component), so the graph is a CSR matrix with a fixed row length and needs no sorting
    links = np.empty((n_nodes, max(len(offsets), 1)), dtype=np.int32)
    links[:] = np.arange(n_nodes, dtype=np.int32)[:, None]
    for o, (dy, dx) in enumerate(offsets):
        a = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
        b = (slice(dy, h), slice(max(0, dx), w + min(0, dx)))
        linked = k[a] & k[b] & (_squared_distances(planes, a, b) < eps2)
        links[node[a][linked], o] = node[b][linked]
    width = links.shape[1]
    graph = csr_matrix((np.ones(links.size, dtype=np.float64), links.reshape(-1),
                        np.arange(0, links.size + 1, width, dtype=np.int32)), shape=(n_nodes, n_nodes))
    _, labels = connected_components(graph, directed=False)
    best = int(np.argmax(np.bincount(labels)))
    out = np.zeros_like(keep)
    out[y0:y1, x0:x1][k] = labels == best
    return out


# ---------------------------------------------------------------------------- flying points


def pixel_angle(xyz: np.ndarray, valid: np.ndarray) -> float:
    """The sensor's angular point spacing in radians: median over valid 4-neighbour pairs of
    their 3D distance divided by their range (distance from the sensor). 0 when undefined."""
    planes = _component_planes(xyz, np.float64)
    ranges = np.sqrt(_squared_norms(planes))
    ratios = []
    for a, b in (((slice(None), slice(0, -1)), (slice(None), slice(1, None))),
                 ((slice(0, -1), slice(None)), (slice(1, None), slice(None)))):
        both = valid[a] & valid[b]
        if both.any():
            d2 = _squared_distances(planes, a, b, both)
            rng = 0.5 * (ranges[a][both] + ranges[b][both])
            ratios.append(np.sqrt(d2) / np.maximum(rng, 1e-12))
    if not ratios:
        return 0.0
    return float(np.median(np.concatenate(ratios)))


def flying_points(xyz: np.ndarray, valid: np.ndarray, ratio: float = 4.0, min_neighbours: int = 2) -> np.ndarray:
    """H×W bool of "flying" points: valid points with fewer than ``min_neighbours`` of their 8
    grid neighbours within ``ratio`` × the expected spacing at their range (pixel angle × range,
    × √2 for diagonal neighbours) in 3D.

    Depth sensors place such points between the foreground and the background at depth
    discontinuities (mixed pixels); they float in space, unconnected to either surface, and a
    patch feature computed on them looks like nothing on a good part. Points on a surface,
    even one seen at 75° from the ray, keep neighbours along it; a one-pixel-wide wire keeps
    its two."""
    out = np.zeros_like(valid)
    if ratio <= 0 or not valid.any():
        return out
    # only the valid points' bounding box matters (their neighbours outside it are invalid)
    rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    out[box] = _flying_in_box(xyz[box], valid[box], ratio, min_neighbours)
    return out


def _flying_in_box(xyz: np.ndarray, valid: np.ndarray, ratio: float, min_neighbours: int) -> np.ndarray:
    out = np.zeros_like(valid)
    angle = pixel_angle(xyz, valid)
    if angle <= 0:
        return out
    h, w = valid.shape
    planes = _component_planes(xyz, np.float32)
    limit = np.float32(ratio * angle) * np.sqrt(_squared_norms(planes))
    close = np.zeros((h, w), dtype=np.int16)
    # each unordered pair of neighbours once: its distance counts for both ends, each against
    # its own limit (float32 throughout; the same numbers as the norm of the difference)
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        src = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
        nb = (slice(max(0, dy), h + min(0, dy)), slice(max(0, dx), w + min(0, dx)))
        d = np.sqrt(_squared_distances(planes, src, nb))
        factor = np.float32(math.sqrt(2)) if dy and dx else np.float32(1)
        both = valid[src] & valid[nb]
        close[src] += both & (d < limit[src] * factor)
        close[nb] += both & (d < limit[nb] * factor)
    return valid & (close < min_neighbours)


# ---------------------------------------------------------------------------- padding


def square_padding(height: int, width: int, multiple: int = 100) -> tuple[int, int, int]:
    """(side, top, left): centred square padding; side = larger side rounded up to ``multiple``."""
    if multiple and multiple > 0:
        side = max(math.ceil(height / multiple) * multiple, math.ceil(width / multiple) * multiple)
    else:
        side = max(height, width)
    return side, (side - height) // 2, (side - width) // 2


def pad_to_square(arr: np.ndarray | None, side: int, top: int, left: int) -> np.ndarray | None:
    """An H×W(×C) array placed with its pixel (0, 0) at (top, left) of a zero side×side canvas.
    ``top``/``left`` may be negative and the canvas smaller than the array: what falls outside
    the canvas is cut (the object crop, core.object_frame)."""
    if arr is None:
        return None
    h, w = arr.shape[:2]
    if (h, w) == (side, side) and top == left == 0:
        return arr
    out = np.zeros((side, side) + arr.shape[2:], dtype=arr.dtype)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + h, side), min(left + w, side)
    if r1 > r0 and c1 > c0:
        out[r0:r1, c0:c1] = arr[r0 - top : r1 - top, c0 - left : c1 - left]
    return out


# ---------------------------------------------------------------------------- main entry


def foreground_mask(xyz: np.ndarray, params: PreprocessParams, source: str = "") -> tuple[np.ndarray, dict]:
    """H×W bool of the points kept by plane removal + largest cluster, and a summary dict.
    DataError when the cloud has no valid point or nothing is left."""
    valid = valid_points(xyz)
    if not valid.any():
        raise DataError(source or None, "point cloud has no valid points (all coordinates are 0 or NaN)")
    keep, info = plane_keep_mask(xyz, params, valid)
    if not keep.any():
        raise DataError(
            source or None,
            f"nothing left after removing the background plane ({params.plane_remove_m} m); "
            "are the coordinates in metres?",
        )
    cluster = largest_cluster(xyz, keep, params.cluster_eps_m, params.cluster_link_px)
    info["cluster_removed"] = int(keep.sum() - cluster.sum())
    info["kept_points"] = int(cluster.sum())
    return cluster, info


def preprocess(
    sample: Sample, cache_dir: str | Path | None = None, params: PreprocessParams | None = None
) -> Sample:
    """Background-plane removal, largest-cluster cleaning and square zero-padding (new Sample;
    the mask and the region of interest are padded alike).

    Samples without xyz are only padded. ``sample.meta["preprocess"]`` records the plane,
    counts, whether the cache was used, and the padding (``pad``: side, top, left, height,
    width) needed to map results back onto the original image.
    """
    p = params or PreprocessParams()
    h, w = sample.shape
    side, top, left = square_padding(h, w, p.pad_multiple)
    summary: dict = {"pad": {"side": side, "top": top, "left": left, "height": h, "width": w}}
    rgb, xyz, mask = sample.rgb, sample.xyz, sample.mask
    if xyz is not None:
        source = str(sample.xyz_path or sample.source())
        keep = info = None
        cache_file = None
        if cache_dir is not None:
            cache_dir = Path(cache_dir)
            cache.check_cache_dir(cache_dir, (sample.rgb_path, sample.xyz_path, sample.mask_path))
            cache_file = cache_dir / f"{cache.cache_key(xyz, p.cache_fields())}.npz"
            hit = cache.read(cache_file, (h, w))
            if hit is not None:
                keep, info = hit
        cached = keep is not None
        if keep is None:
            keep, info = foreground_mask(xyz, p, source)
            if cache_file is not None:
                cache.write(cache_file, keep, info)
        removed = valid_points(xyz) & ~keep
        xyz = xyz.astype(np.float32, copy=True)
        xyz[~keep] = 0
        flying = flying_points(xyz, keep, p.flying_ratio, p.flying_min_neighbours)
        xyz[flying] = 0  # from the cloud only: the pixel's colour is still the part's
        info = {**info, "flying_removed": int(flying.sum())}
        if rgb is not None and p.zero_rgb_background and removed.any():
            rgb = rgb.copy()
            rgb[removed] = 0
        summary.update(info)
        summary["cached"] = cached
    out = replace(
        sample,
        rgb=pad_to_square(rgb, side, top, left),
        xyz=pad_to_square(xyz, side, top, left),
        mask=pad_to_square(mask, side, top, left),
        roi=pad_to_square(sample.roi, side, top, left),  # padding is ignored (zeros)
        meta={**sample.meta, "preprocess": summary},
    )
    return out
