"""Compiled (numba) per-point loops of FPFH on organized clouds (see :mod:`core.features.fpfh`).

Each loop walks the points of one cloud and, per point, the pixel offsets of its disc: no
(K, N) temporaries. Neighbour lookup: ``index`` is the flat padded pixel grid holding the point
number at each valid pixel and N (no point) elsewhere; ``padded`` (N,) is each point's position
in it and ``shifts`` (K,) the flat offsets of the disc. Points and normals are (N, 3) arrays
(metres, centred; float32 or float64); the arithmetic is float64 throughout. The per-point
loops take a point range (``start``, ``stop``), so that :mod:`core.features.fpfh` can run
them on a few threads at once.

Compiled on first use and cached on disk (``cache=True``) under ``$NUMBA_CACHE_DIR`` if set,
else ``<user cache>/numba`` (:func:`core.user_cache.user_cache_dir`; the package folder may be
read-only). A fresh cache costs a few seconds of compilation once per machine (README, speed).
The loops release the GIL (``nogil``), so the next sample's reading and preprocessing
(core/prefetch.py) runs beside them, and :func:`core.features.fpfh.fpfh_points` runs each loop
on a few threads at once, each on its own range of points.
"""

from __future__ import annotations

import math
import os

import numpy as np

from core.user_cache import user_cache_dir

if not os.environ.get("NUMBA_CACHE_DIR"):
    os.environ["NUMBA_CACHE_DIR"] = str(user_cache_dir() / "numba")

import numba  # noqa: E402
import numba.core.config  # noqa: E402

numba.core.config.reload_config()  # in case numba was imported before the variable was set

BINS = 11  # per angle: theta over [-pi, pi], alpha and phi over [-1, 1]
DIM = 3 * BINS


def _compiled(function):
    """``numba.njit`` with an on-disk cache and the GIL released. A cache that cannot be written
    (no writable folder at import; a full disk or a file-size limit later) only costs compiling
    again in the next process: it never stops the computation."""
    try:
        dispatcher = numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # numba found no writable cache location
        return numba.njit(nogil=True)(function)
    cache = getattr(dispatcher, "_cache", None)  # numba internals (pinned in pyproject.toml)
    save = getattr(cache, "save_overload", None)
    if save is None:  # another numba layout: keep its own cache handling
        return dispatcher

    def save_or_skip(signature, data):
        try:
            save(signature, data)
        except OSError:
            pass

    cache.save_overload = save_or_skip
    return dispatcher


@_compiled
def _pair_frame(dx, dy, dz, n1x, n1y, n1z, n2x, n2y, n2z):
    """The quantities behind Open3D's ``ComputePairFeatures`` for the offset d = p2 - p1 and
    unit normals n1, n2: ``(c, y, alpha, phi, |d|², defined)`` with theta = atan2(y, c) (y is
    scaled by |d × n_s|, which theta does not depend on). ``defined`` is false for zero-length
    pairs and pairs whose offset is parallel to the source normal (Open3D: zero angles).

    Closed forms, with (n_s, n_t, d_s) the source normal, target normal and offset after
    Open3D's swap (when |n1·d| < |n2·d|): |d × n_s|² = |d|² - (n_s·d_s)², phi = n_s·d_s / |d|,
    alpha = det(d, n1, n2) / |d × n_s| (the swap flips two signs), c = n1·n2 and
    y = (n_t·d_s - (n_s·d_s) c) / |d × n_s|."""
    e2 = dx * dx + dy * dy + dz * dz
    a1 = n1x * dx + n1y * dy + n1z * dz
    a2 = n2x * dx + n2y * dy + n2z * dz
    c = n1x * n2x + n1y * n2y + n1z * n2z
    swap = abs(a1) < abs(a2)
    s1 = -a2 if swap else a1  # source normal · offset
    s2 = -a1 if swap else a2  # target normal · offset
    v2 = e2 - s1 * s1
    if not v2 > 0.0:  # also zero-length pairs
        return 0.0, 0.0, 0.0, 0.0, e2, False
    t = dx * (n1y * n2z - n1z * n2y) + dy * (n1z * n2x - n1x * n2z) + dz * (n1x * n2y - n1y * n2x)
    inv_v = 1.0 / math.sqrt(v2)
    return c, (s2 - s1 * c) * inv_v, t * inv_v, s1 / math.sqrt(e2), e2, True


@_compiled
def pair_angles(dx, dy, dz, n1x, n1y, n1z, n2x, n2y, n2z):
    """Open3D's ``ComputePairFeatures`` (theta, alpha, phi) and |d|² (see :func:`_pair_frame`);
    zero angles where the frame is undefined."""
    c, y, alpha, phi, e2, defined = _pair_frame(dx, dy, dz, n1x, n1y, n1z, n2x, n2y, n2z)
    if not defined:
        return 0.0, 0.0, 0.0, e2
    return math.atan2(y, c), alpha, phi, e2


@_compiled
def _bin(value, low, high):
    """Histogram bin 0..BINS-1 of ``value`` over [low, high] (clamped at both ends)."""
    x = (value - low) * (BINS / (high - low))
    x = x if x >= 0.0 else 0.0  # (NaN: 0)
    return int(x if x < BINS - 1 else BINS - 1)


# directions of the theta bin edges -pi + k·2pi/11 (k = 1..10), as angles of (-c, -y) from 0
_EDGE_COS = np.cos(np.arange(1, BINS) * (2 * np.pi / BINS))
_EDGE_SIN = np.sin(np.arange(1, BINS) * (2 * np.pi / BINS))


@_compiled
def _theta_bin(c, y):
    """Bin of theta = atan2(y, c) over [-pi, pi] in BINS bins without the arctangent: the
    number of bin edges that the angle of (-c, -y) in [0, 2pi) has passed, each tested by the
    sign of a 2D cross product within its half-turn."""
    ux, uy = -c, -y
    upper = uy > 0.0 or (uy == 0.0 and ux >= 0.0)  # angle in [0, pi)
    first = 0 if upper else BINS // 2
    b = first
    for k in range(first, first + BINS // 2):
        b += uy * _EDGE_COS[k] - ux * _EDGE_SIN[k] >= 0.0
    return b


@_compiled
def pair_features_many(p1, n1, p2, n2, out):
    """:func:`pair_angles` of M pairs given as (M, 3) float64 arrays into ``out`` (4, M):
    theta, alpha, phi, |d|²."""
    for m in range(p1.shape[0]):
        theta, alpha, phi, e2 = pair_angles(
            p2[m, 0] - p1[m, 0], p2[m, 1] - p1[m, 1], p2[m, 2] - p1[m, 2],
            n1[m, 0], n1[m, 1], n1[m, 2], n2[m, 0], n2[m, 1], n2[m, 2],
        )
        out[0, m] = theta
        out[1, m] = alpha
        out[2, m] = phi
        out[3, m] = e2


@_compiled
def _smallest_eigenvector(xx, xy, xz, yy, yz, zz):
    """Unit eigenvector of the smallest eigenvalue of a symmetric 3×3 matrix and whether it is
    well defined: trigonometric eigenvalue, then the longest cross product of two rows of
    A - λI (scaled by the largest entry first)."""
    scale = max(abs(xx), abs(xy), abs(xz), abs(yy), abs(yz), abs(zz), 1e-300)
    a00, a01, a02 = xx / scale, xy / scale, xz / scale
    a11, a12, a22 = yy / scale, yz / scale, zz / scale
    q = (a00 + a11 + a22) / 3.0
    b00, b11, b22 = a00 - q, a11 - q, a22 - q
    p = math.sqrt((b00 * b00 + b11 * b11 + b22 * b22 + 2.0 * (a01 * a01 + a02 * a02 + a12 * a12)) / 6.0)
    det = (b00 * (b11 * b22 - a12 * a12) - a01 * (a01 * b22 - a12 * a02)
           + a02 * (a01 * a12 - b11 * a02))
    r = min(max(det / (2.0 * max(p, 1e-30) ** 3), -1.0), 1.0)
    lam = q + 2.0 * p * math.cos(math.acos(r) / 3.0 + 2.0 * math.pi / 3.0)
    d00, d11, d22 = a00 - lam, a11 - lam, a22 - lam
    # rows (d00, a01, a02), (a01, d11, a12), (a02, a12, d22): their pairwise cross products
    x0, y0, z0 = a01 * a12 - a02 * d11, a02 * a01 - d00 * a12, d00 * d11 - a01 * a01
    x1, y1, z1 = a01 * d22 - a02 * a12, a02 * a02 - d00 * d22, d00 * a12 - a01 * a02
    x2, y2, z2 = d11 * d22 - a12 * a12, a12 * a02 - a01 * d22, a01 * a12 - d11 * a02
    l0 = x0 * x0 + y0 * y0 + z0 * z0
    l1 = x1 * x1 + y1 * y1 + z1 * z1
    l2 = x2 * x2 + y2 * y2 + z2 * z2
    x, y, z, best = x0, y0, z0, l0
    if l1 > best:
        x, y, z, best = x1, y1, z1, l1
    if l2 > best:
        x, y, z, best = x2, y2, z2, l2
    length = math.sqrt(best)
    ok = p > 1e-12 and length > 1e-12
    inv = 1.0 / max(length, 1e-300)
    return x * inv, y * inv, z * inv, ok


@_compiled
def normals(points, sensor, index, padded, shifts, max_dist2, out, start, stop):
    """Unit normals of points ``start`` to ``stop`` - 1 into those rows of ``out`` (N, 3):
    smallest-eigenvalue eigenvector of the covariance of each point and its disc neighbours
    within ``max_dist2`` (m²), oriented towards the sensor at the origin (``sensor``: the
    original coordinates, (N, 3)); points with fewer than 3 points in their window take the
    direction to the sensor."""
    n = points.shape[0]
    for i in range(start, stop):
        px, py, pz = float(points[i, 0]), float(points[i, 1]), float(points[i, 2])
        count = 1.0  # the point itself (offset 0) is in its window
        sx = sy = sz = 0.0
        xx = xy = xz = yy = yz = zz = 0.0
        base = padded[i]
        for k in range(shifts.shape[0]):
            j = index[base + shifts[k]]
            if j >= n:
                continue
            dx, dy, dz = points[j, 0] - px, points[j, 1] - py, points[j, 2] - pz
            if dx * dx + dy * dy + dz * dz > max_dist2:
                continue
            count += 1.0
            sx += dx
            sy += dy
            sz += dz
            xx += dx * dx
            xy += dx * dy
            xz += dx * dz
            yy += dy * dy
            yz += dy * dz
            zz += dz * dz
        mx, my, mz = sx / count, sy / count, sz / count
        x, y, z, ok = _smallest_eigenvector(
            xx / count - mx * mx, xy / count - mx * my, xz / count - mx * mz,
            yy / count - my * my, yz / count - my * mz, zz / count - mz * mz,
        )
        ox, oy, oz = float(sensor[i, 0]), float(sensor[i, 1]), float(sensor[i, 2])
        if not (ok and count >= 3.0):
            inv = -1.0 / max(math.sqrt(ox * ox + oy * oy + oz * oz), 1e-12)
            x, y, z = ox * inv, oy * inv, oz * inv
        if x * ox + y * oy + z * oz > 0.0:
            x, y, z = -x, -y, -z
        out[i, 0] = x
        out[i, 1] = y
        out[i, 2] = z


@_compiled
def pair_histograms(points, normals, index, padded, shifts, max_dist2, counts, weights, start, stop):
    """Pair-angle counts (N, 33) added to ``counts`` and pair weights 1/|d|² (N, K) written to
    ``weights`` (0 where there is no pair or |d| = 0) for the pairs whose first point is one of
    ``start`` to ``stop`` - 1.

    ``shifts`` holds half of a symmetric disc (an offset and its negation never both): every
    pair within ``max_dist2`` (m²) is evaluated once and counted in the histograms of both of
    its points (the angles do not depend on the pair's direction), so the counts of one range
    reach points outside it: ranges run at once need their own ``counts`` (summed after)."""
    n = points.shape[0]
    for i in range(start, stop):
        px, py, pz = float(points[i, 0]), float(points[i, 1]), float(points[i, 2])
        nx, ny, nz = float(normals[i, 0]), float(normals[i, 1]), float(normals[i, 2])
        base = padded[i]
        for k in range(shifts.shape[0]):
            weights[i, k] = 0.0
            j = index[base + shifts[k]]
            if j >= n:
                continue
            c, y, alpha, phi, e2, defined = _pair_frame(
                points[j, 0] - px, points[j, 1] - py, points[j, 2] - pz,
                nx, ny, nz, normals[j, 0], normals[j, 1], normals[j, 2],
            )
            if e2 > max_dist2:
                continue
            b0 = _theta_bin(c, y) if defined else BINS // 2  # theta = 0 when undefined
            b1 = BINS + _bin(alpha, -1.0, 1.0)
            b2 = 2 * BINS + _bin(phi, -1.0, 1.0)
            counts[i, b0] += 1
            counts[i, b1] += 1
            counts[i, b2] += 1
            counts[j, b0] += 1
            counts[j, b1] += 1
            counts[j, b2] += 1
            if e2 > 0.0:
                weights[i, k] = 1.0 / e2


@_compiled
def spfh(counts, out):
    """SPFH (N, 33) into ``out``: the pair counts of :func:`pair_histograms` scaled so that each
    11-bin block sums to 100 (0 for points without pairs)."""
    n, dim = counts.shape
    for i in range(n):
        pairs = 0
        for b in range(BINS):
            pairs += counts[i, b]
        scale = 100.0 / max(pairs, 1)
        for b in range(dim):
            out[i, b] = counts[i, b] * scale


@_compiled
def weighted_fpfh(counts, spfh, weights, index, padded, shifts, out, start, stop):
    """FPFH of points ``start`` to ``stop`` - 1 into those rows of ``out`` (N, 33) from their
    :func:`spfh` and the pair weights of :func:`pair_histograms`:
    FPFH(p) = SPFH(p) + Σ_q w_pq SPFH(q) / Σ_q w_pq over the whole disc (the pairs of the
    negated offsets are those of the neighbour q = p - offset); points without neighbours get 0."""
    n, dim = spfh.shape
    acc = np.empty(dim, out.dtype)
    for i in range(start, stop):
        acc[:] = 0.0
        total = 0.0
        base = padded[i]
        for k in range(shifts.shape[0]):
            j = index[base + shifts[k]]
            if j < n and weights[i, k] != 0.0:
                w = weights[i, k]
                total += w
                for b in range(dim):
                    acc[b] += w * spfh[j, b]
            j = index[base - shifts[k]]
            if j < n and weights[j, k] != 0.0:
                w = weights[j, k]
                total += w
                for b in range(dim):
                    acc[b] += w * spfh[j, b]
        pairs = 0
        for b in range(BINS):
            pairs += counts[i, b]
        if pairs == 0:
            out[i, :] = 0.0
            continue
        inv = 1.0 / max(total, 1e-30)
        for b in range(dim):
            out[i, b] = spfh[i, b] + acc[b] * inv


@_compiled
def pool_points(features, rows, cols, row_first, row_weights, col_first, col_weights, grid, out):
    """Add each point's features (N, C) with weight ``row_weights[r, a] · col_weights[c, b]``
    into the cells ``(row_first[r] + a, col_first[c] + b)`` of ``out`` (grid², C); ``rows``,
    ``cols`` (N,) are the points' pixel coordinates, the weight tables (size, R) (float64) hold
    0 past a pixel's last cell (:func:`core.features.pooling.pool_point_features`).

    The order and precision of the scatter-adds it replaced (torch ``index_add_``, one step
    (a, b) after the other, each over the points in order): the weight product is rounded to
    the features' dtype, multiplied and added in it, so the sums are the same bits."""
    n, dim = features.shape
    weight = np.empty(1, features.dtype)
    for a in range(row_weights.shape[1]):
        for b in range(col_weights.shape[1]):
            for i in range(n):
                r, c = rows[i], cols[i]
                weight[0] = row_weights[r, a] * col_weights[c, b]  # rounded to the dtype
                w = weight[0]
                if w == 0.0:
                    continue
                cell = (row_first[r] + a) * grid + col_first[c] + b
                for d in range(dim):
                    out[cell, d] += w * features[i, d]
