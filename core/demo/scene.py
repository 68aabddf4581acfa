"""Demo scene (pose, light, table), sensor noise and the ray-casting renderer."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core.demo.camera import _CAMERA_DISTANCE_M, _CLUSTER_RATE, _DROPOUT_RATE, _FOCAL_PER_PIXEL, _MARCH_STEP_M, _PROJECTOR_OFFSET_M, _SHADOW_STEP_M
from core.demo.objects import _Grid, _Object
from core.demo.textures import _Textures, _sample_wrapped


@dataclass
class _Pose:
    n: np.ndarray  # table normal (camera frame, pointing at the camera)
    p0: np.ndarray  # table point under the image centre
    e1: np.ndarray  # table axes (camera frame)
    e2: np.ndarray
    rot: float  # in-plane rotation of the object (rad)
    shift: np.ndarray  # object position on the table (m, table axes)
    light: np.ndarray  # unit vector towards the light (camera frame)
    ambient: float
    gain: float
    belt_offset: np.ndarray
    belt_colour: np.ndarray


def _draw_pose(rng: np.random.Generator, light_azimuth: float) -> _Pose:
    tilt = np.deg2rad(3.0) + rng.normal(0, np.deg2rad(1.0))  # conveyor tilt + per-sample wobble
    tilt_dir = rng.normal(np.deg2rad(20.0), np.deg2rad(25.0))
    n = np.array([np.sin(tilt) * np.cos(tilt_dir), np.sin(tilt) * np.sin(tilt_dir), -np.cos(tilt)])
    p0 = np.array([0.0, 0.0, _CAMERA_DISTANCE_M * rng.uniform(0.985, 1.015)])
    e1 = np.array([1.0, 0.0, 0.0]) - n[0] * n
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n, e1)
    elev = np.deg2rad(rng.uniform(54, 60))
    az = light_azimuth + rng.normal(0, np.deg2rad(8))
    # light above the table: component along n (towards the camera) plus a horizontal part
    light = np.sin(elev) * n + np.cos(elev) * (np.cos(az) * e1 + np.sin(az) * e2)
    return _Pose(
        n=n, p0=p0, e1=e1, e2=e2,
        rot=rng.uniform(0, 2 * np.pi),
        shift=rng.uniform(-0.005, 0.005, 2),
        light=light / np.linalg.norm(light),
        ambient=rng.uniform(0.23, 0.28),
        gain=rng.uniform(0.96, 1.04),
        belt_offset=rng.uniform(0, 256, 2),
        belt_colour=np.array([0.16, 0.17, 0.18]) * rng.uniform(0.9, 1.1, 3),
    )


@dataclass
class _SensorNoise:
    """Sensor noise fields, drawn before rendering so defect/no-defect renders share them."""

    depth: np.ndarray  # S×S, unit normal (white + correlated)
    depth_sigma: float  # metres
    dropout: np.ndarray  # S×S uniform in [0, 1): random dropouts
    speckle: np.ndarray  # S×S uniform: clustered dropouts
    grazing: np.ndarray  # S×S uniform: steep-angle dropouts
    rgb: np.ndarray  # S×S×3 unit normal
    rgb_sigma: float  # in [0, 1] intensity units
    dropout_rate: float = _DROPOUT_RATE  # share of isolated random dropouts
    cluster_rate: float = _CLUSTER_RATE  # speckle level above which clustered dropouts fall
    flying_share: float = 0.0  # share of depth-discontinuity pixels that become flying pixels
    flying_draw: np.ndarray | None = None  # S×S uniform: which discontinuity pixels fly
    flying_frac: np.ndarray | None = None  # S×S uniform in [0.2, 0.8): how far they fly


def _draw_noise(
    rng: np.random.Generator, size: int, noise_scale: float = 1.0, flying_share: float = 0.0
) -> _SensorNoise:
    """The sensor noise fields of one sample; ``noise_scale`` multiplies the depth and RGB
    noise and the random dropout rates (not the draws, which stay the same). With
    ``flying_share`` > 0 the flying-pixel fields are drawn after all others, so the other
    fields do not depend on it."""
    from scipy.ndimage import zoom

    white = rng.standard_normal((size, size))
    lo = zoom(rng.standard_normal((size // 8 + 1, size // 8 + 1)), 8, order=1)[:size, :size]
    depth = (0.8 * white + 0.6 * lo).astype(np.float32)
    speckle = zoom(rng.uniform(0, 1, (size // 4 + 1, size // 4 + 1)), 4, order=1)[:size, :size]
    noise = _SensorNoise(
        depth=depth,
        depth_sigma=float(rng.uniform(0.00010, 0.00022)) * noise_scale,
        dropout=rng.random((size, size), dtype=np.float32),
        speckle=speckle,
        grazing=rng.random((size, size), dtype=np.float32),
        rgb=rng.standard_normal((size, size, 3), dtype=np.float32),
        rgb_sigma=float(rng.uniform(0.006, 0.010)) * noise_scale,
        dropout_rate=_DROPOUT_RATE * noise_scale,
        cluster_rate=_CLUSTER_RATE * noise_scale,
    )
    if flying_share > 0:
        noise.flying_share = float(flying_share)
        noise.flying_draw = rng.random((size, size), dtype=np.float32)
        noise.flying_frac = rng.uniform(0.2, 0.8, (size, size)).astype(np.float32)
    return noise


def _flying_pixels(xyz: np.ndarray, valid: np.ndarray, noise: _SensorNoise) -> np.ndarray:
    """Mixed pixels of a depth sensor: at a depth discontinuity (> 1 mm of range to a valid
    4-neighbour), a ``flying_share`` of the valid pixels are moved along their ray 20-80 % of
    the way to the neighbour's range (between the two surfaces). Returns new xyz."""
    rng_m = np.linalg.norm(xyz, axis=-1)
    pad = np.pad(np.where(valid, rng_m, 0), 1)
    jump = np.zeros_like(rng_m)
    for nb in (pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]):
        d = np.where(nb > 0, nb - rng_m, 0)
        jump = np.where(np.abs(d) > np.abs(jump), d, jump)
    fly = valid & (np.abs(jump) > 0.001) & (noise.flying_draw < noise.flying_share)
    scale = np.where(fly, (rng_m + noise.flying_frac * jump) / np.maximum(rng_m, 1e-9), 1.0)
    return (xyz * scale[..., None]).astype(np.float32)


class _Lookup:
    """Bilinear lookups into the object's grids at object coordinates (zero outside)."""

    def __init__(self, obj: _Object, g: _Grid):
        self.cell = g.cell
        self.origin = -g.half - g.cell  # coordinate of padded index 0

        def pad(x):
            widths = ((1, 1), (1, 1)) + ((0, 0),) * (x.ndim - 2)
            return np.pad(np.asarray(x, dtype=np.float64), widths)

        self.height = pad(obj.height)
        gy, gx = np.gradient(obj.height, g.cell)
        self.grad = pad(np.stack([gx, gy], axis=-1))
        self.albedo = pad(obj.albedo)
        self.coverage = pad(obj.coverage)

    def index(self, a, b):
        """Object coordinates (m) -> fractional grid indices (column, row)."""
        return (a - self.origin) / self.cell, (b - self.origin) / self.cell

    def sample(self, arr, a, b):
        return self.sample_index(arr, *self.index(a, b))

    @staticmethod
    def sample_index(arr, x, y):
        """Bilinear value of ``arr`` (rows×cols[×C]) at fractional (column, row) indices;
        the zero border extends outside."""
        rows, cols = arr.shape[:2]
        x = np.clip(x, 0, cols - 1.000001)
        y = np.clip(y, 0, rows - 1.000001)
        x0 = x.astype(np.int64)
        y0 = y.astype(np.int64)
        fx = x - x0
        fy = y - y0
        i = y0 * cols + x0
        flat = arr.reshape(rows * cols, -1) if arr.ndim == 3 else arr.reshape(-1)
        if arr.ndim == 3:
            fx, fy = fx[:, None], fy[:, None]
        top = flat[i] + fx * (flat[i + 1] - flat[i])
        bot = flat[i + cols] + fx * (flat[i + cols + 1] - flat[i + cols])
        return top + fy * (bot - top)


def _segment_near(a0, b0, a1, b1, centre, radius) -> np.ndarray:
    """True where the 2D segment (a0,b0)-(a1,b1) passes within ``radius`` of ``centre``."""
    a0 = a0 - centre[0]
    b0 = b0 - centre[1]
    da = a1 - centre[0] - a0
    db = b1 - centre[1] - b0
    t = np.clip(-(a0 * da + b0 * db) / (da * da + db * db + 1e-30), 0, 1)
    pa = a0 + t * da
    pb = b0 + t * db
    return pa * pa + pb * pb < radius * radius


def _unit(v: np.ndarray) -> np.ndarray:
    """Rows of ``v`` (k×3) scaled to unit length."""
    return v / np.sqrt(np.einsum("ij,ij->i", v, v))[:, None]


@lru_cache(maxsize=4)
def _rays(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ray directions (npx×3, z = 1, camera frame) and vignetting factors."""
    f = _FOCAL_PER_PIXEL * size
    c = (size - 1) / 2.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    d = np.stack([(xs - c) / f, (ys - c) / f, np.ones_like(xs)], axis=-1).reshape(-1, 3)
    r_img = np.hypot(xs - c, ys - c).ravel() / (c * np.sqrt(2))
    d.flags.writeable = False
    return d, 1 - 0.18 * r_img**2


class _View:
    """Camera/table/object geometry of one pose: maps rays and directions to object coordinates."""

    def __init__(self, pose: _Pose, size: int):
        self.pose = pose
        self.d, self.vignette = _rays(size)
        self.nd = self.d @ pose.n
        self.np0 = pose.n @ pose.p0
        self.ku, self.kv = self.d @ pose.e1, self.d @ pose.e2
        self.pu, self.pv = pose.p0 @ pose.e1, pose.p0 @ pose.e2
        self.c, self.s = np.cos(-pose.rot), np.sin(-pose.rot)

    def rotate(self, u, v):
        """Table-axis components -> object-axis components."""
        return self.c * u - self.s * v, self.s * u + self.c * v

    def ray_t(self, sig, pix):
        """Ray parameter (camera z, m) where pixel rays ``pix`` are ``sig`` m above the table."""
        return (sig + self.np0) / self.nd[pix]

    def ray_uv(self, t, pix):
        return t * self.ku[pix] - self.pu, t * self.kv[pix] - self.pv

    def ray_ab(self, sig, pix):
        u, v = self.ray_uv(self.ray_t(sig, pix), pix)
        return self.rotate(u - self.pose.shift[0], v - self.pose.shift[1])

    def dir_obj(self, dirs):
        """Camera-frame directions (k×3 or 3) -> (object a, object b, along the normal)."""
        a, b = self.rotate(dirs @ self.pose.e1, dirs @ self.pose.e2)
        return a, b, dirs @ self.pose.n


@dataclass
class _Render:
    """Noise-free render of pixels ``pix`` (flat indices); arrays are per pixel (m or m×3)."""

    pix: np.ndarray
    xyz: np.ndarray  # float64 camera-frame surface point (every ray hits the table or object)
    occluded: np.ndarray  # bool: no 3D point for geometric reasons (steep wall / projector shadow)
    grazing: np.ndarray  # in [0, 1]: how likely a steep-angle point is lost
    albedo: np.ndarray  # linear RGB surface colour
    rgb: np.ndarray  # linear shaded RGB (before sensor noise and gamma)
    on_object: np.ndarray  # bool: the pixel sees the object
    a: np.ndarray  # hit point, object coordinates (m)
    b: np.ndarray
    sig: np.ndarray  # hit point height above the table (m)
    to_proj: np.ndarray  # unit vectors hit point -> projector (camera frame)

    def merged_into(self, full: "_Render") -> "_Render":
        """``full`` with this render's pixels replaced."""
        out = {}
        for name in ("xyz", "occluded", "grazing", "albedo", "rgb", "on_object", "a", "b", "sig", "to_proj"):
            arr = getattr(full, name).copy()
            arr[self.pix] = getattr(self, name)
            out[name] = arr
        return _Render(pix=full.pix, **out)


def _shadowed(look, view, obj_radius, ceiling, a0, b0, sig0, dirs, near) -> np.ndarray:
    """True where the straight path from surface points (a0, b0, sig0) along camera-frame
    directions ``dirs`` (k×3 or 3) passes under the height field before reaching ``ceiling``.
    Only points ``near`` (indices) can be shadowed; callers pass all within reach."""
    m = a0.size
    dirs = dirs[near] if np.ndim(dirs) == 2 else dirs
    a0, b0, sig0 = a0[near], b0[near], sig0[near]
    w_a, w_b, w_n = view.dir_obj(dirs)
    w_a, w_b, w_n = (np.broadcast_to(x, (near.size,)) for x in (w_a, w_b, w_n))
    w_n = np.maximum(w_n, 1e-6)
    run = (ceiling - sig0) / w_n  # path length up to the ceiling
    sel = np.flatnonzero(
        (sig0 < ceiling) & _segment_near(a0, b0, a0 + run * w_a, b0 + run * w_b, (0.0, 0.0), obj_radius)
    )
    out = np.zeros(m, dtype=bool)
    step_len = _SHADOW_STEP_M / w_n[sel]
    s = 0.00015 / w_n[sel]  # start just off the surface
    x0, y0 = look.index(a0[sel], b0[sel])
    xs, ys = w_a[sel] / look.cell, w_b[sel] / look.cell
    z0, zs = sig0[sel] + 0.00005, w_n[sel]
    live = np.arange(sel.size)
    while live.size:
        sl = s[live]
        z = z0[live] + sl * zs[live]
        block = look.sample_index(look.height, x0[live] + sl * xs[live], y0[live] + sl * ys[live]) > z
        out[near[sel[live[block]]]] = True
        s[live] += step_len[live]
        live = live[(~block) & (z < ceiling)]
    return out


def _render(
    obj: _Object, g: _Grid, pose: _Pose, tex: _Textures, size: int, ceiling: float,
    pix: np.ndarray | None = None,
) -> _Render:
    """Ray-cast the scene for pixels ``pix`` (flat indices; all by default). ``ceiling``
    (m above the table, above the highest surface point) fixes the ray-march levels, so two
    renders of the same pose agree bit for bit wherever the surface agrees."""
    view = _View(pose, size)
    if pix is None:
        pix = np.arange(size * size)
    m = pix.size
    n = pose.n
    look = _Lookup(obj, g)
    hmax = float(ceiling)

    # rays whose path between the ceiling and the table passes over the object
    a_top, b_top = view.ray_ab(hmax, pix)
    a_bot, b_bot = view.ray_ab(0.0, pix)
    cand = np.flatnonzero(_segment_near(a_top, b_top, a_bot, b_bot, (0.0, 0.0), obj.radius))
    cpix = pix[cand]

    # grid indices along each candidate ray are linear in the height sig: x = x0 + sig * xs
    x0, y0 = look.index(*view.ray_ab(0.0, cpix))
    x1, y1 = look.index(*view.ray_ab(hmax, cpix))
    xs, ys = (x1 - x0) / hmax, (y1 - y0) / hmax

    def surface_minus(level, sel):  # height of the surface under ray point minus its height
        return look.sample_index(look.height, x0[sel] + level * xs[sel], y0[sel] + level * ys[sel]) - level

    # 1) march down until the ray is below the surface, 2) bisection, 3) secant step
    k_steps = int(round(hmax / _MARCH_STEP_M))
    levels = np.linspace(hmax, 0.0, k_steps + 1)
    lo = np.full(cand.size, hmax)
    hi = np.zeros(cand.size)
    active = np.arange(cand.size)
    for k in range(1, k_steps + 1):
        if active.size == 0:
            break
        hit = surface_minus(levels[k], active) >= 0
        lo[active[hit]] = levels[k - 1]
        hi[active[hit]] = levels[k]
        active = active[~hit]
    every = slice(None)
    for _ in range(6):
        mid = 0.5 * (lo + hi)
        above = surface_minus(mid, every) < 0
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    f_lo = surface_minus(lo, every)  # < 0
    f_hi = surface_minus(hi, every)  # >= 0
    w = np.where(f_hi - f_lo > 1e-12, -f_lo / (f_hi - f_lo + 1e-30), 1.0)
    sig = np.zeros(m)
    sig[cand] = lo + np.clip(w, 0, 1) * (hi - lo)

    t = view.ray_t(sig, pix)
    xyz = view.d[pix] * t[:, None]
    u, v = view.ray_uv(t, pix)
    a_hit, b_hit = view.rotate(u - pose.shift[0], v - pose.shift[1])

    # object grids are only looked up where the hit point can be on the object; shadows only
    # fall within reach of it (light >= 54 deg, projector near-vertical: reach < ceiling)
    rr = a_hit * a_hit + b_hit * b_hit
    on_grid = np.flatnonzero(rr < obj.radius**2)
    near = np.flatnonzero(rr < (obj.radius + hmax) ** 2)
    grad = look.sample(look.grad, a_hit[on_grid], b_hit[on_grid])
    cov = np.zeros(m)
    cov[on_grid] = look.sample(look.coverage, a_hit[on_grid], b_hit[on_grid]) * (sig[on_grid] > 0)
    obj_alb = np.zeros((m, 3))
    obj_alb[on_grid] = look.sample(look.albedo, a_hit[on_grid], b_hit[on_grid])

    # surface normal (camera frame) from the height-field gradient; the table's elsewhere
    cr, sr = np.cos(pose.rot), np.sin(pose.rot)
    gu = cr * grad[:, 0] - sr * grad[:, 1]  # object -> table axes
    gv = sr * grad[:, 0] + cr * grad[:, 1]
    normal = np.broadcast_to(n, (m, 3)).copy()
    normal[on_grid] = _unit(n[None, :] - gu[:, None] * pose.e1 - gv[:, None] * pose.e2)

    to_proj = _unit(_PROJECTOR_OFFSET_M[None, :] - xyz)
    to_cam = _unit(-xyz)
    cos_cam = np.abs(np.einsum("ij,ij->i", normal, to_cam))
    cos_proj = np.einsum("ij,ij->i", normal, to_proj)
    proj_shadow = _shadowed(look, view, obj.radius, hmax, a_hit, b_hit, sig, to_proj, near)
    occluded = proj_shadow | (cos_proj < 0.12) | (cos_cam < 0.12)
    grazing = np.clip((0.45 - np.minimum(cos_cam, cos_proj)) / 0.33, 0, 1)

    # colour: object albedo blended with the table texture by coverage
    belt = _sample_wrapped(tex.belt, u / 0.0006 + pose.belt_offset[0], v / 0.0006 + pose.belt_offset[1])
    table = pose.belt_colour[None, :] * (1 + 0.12 * belt)[:, None]
    albedo = cov[:, None] * obj_alb + (1 - cov[:, None]) * table

    lit = ~_shadowed(look, view, obj.radius, hmax, a_hit, b_hit, sig, pose.light, near)
    lambert = np.clip(normal @ pose.light, 0, None) * lit
    spec = np.zeros(m)
    half = _unit(pose.light[None, :] + to_cam[on_grid])
    spec[on_grid] = (obj.specular * np.clip(np.einsum("ij,ij->i", normal[on_grid], half), 0, 1) ** obj.shininess
                     * lit[on_grid] * cov[on_grid])
    vignette = view.vignette[pix] * pose.gain
    shading = (pose.ambient + (1 - pose.ambient) * lambert) * vignette
    rgb = albedo * shading[:, None] + (spec * vignette)[:, None]
    return _Render(
        pix=pix, xyz=xyz, occluded=occluded, grazing=grazing, albedo=albedo, rgb=rgb,
        on_object=cov > 0.5, a=a_hit, b=b_hit, sig=sig, to_proj=to_proj,
    )


def _affected_pixels(clean: _Render, pose: _Pose, size: int, ceiling: float, centre, radius) -> np.ndarray:
    """Pixels whose render can change when the surface changes only within ``radius`` of
    ``centre`` (object coordinates): the camera ray or a shadow ray passes over that disc."""
    view = _View(pose, size)
    pix = clean.pix
    near = _segment_near(*view.ray_ab(ceiling, pix), *view.ray_ab(0.0, pix), centre, radius)
    for dirs in (clean.to_proj, pose.light):
        w_a, w_b, w_n = view.dir_obj(dirs)
        run = (ceiling - clean.sig) / np.maximum(w_n, 1e-6)
        near |= _segment_near(clean.a, clean.b, clean.a + run * w_a, clean.b + run * w_b, centre, radius)
    return pix[near]


def _sensor(render: _Render, noise: _SensorNoise, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply sensor effects to a full render: (rgb uint8, xyz float32 invalid = 0, valid bool)."""
    xyz = render.xyz.reshape(size, size, 3)
    z = xyz[..., 2]
    # depth noise along the viewing ray (keeps the point on its pixel's ray)
    scale = 1 + noise.depth_sigma * noise.depth / np.maximum(z, 1e-6)
    noisy = xyz * scale[..., None]
    valid = ~render.occluded.reshape(size, size)
    valid &= noise.dropout >= noise.dropout_rate  # isolated dropouts
    valid &= noise.speckle <= 1 - noise.cluster_rate  # small dropout clusters
    valid &= noise.grazing >= render.grazing.reshape(size, size)  # steep surfaces lose points
    xyz_out = np.where(valid[..., None], noisy, 0.0).astype(np.float32)
    if noise.flying_share > 0:
        xyz_out = _flying_pixels(xyz_out, valid, noise)
    lin = np.clip(render.rgb.reshape(size, size, 3) + noise.rgb_sigma * noise.rgb, 0, 1)
    rgb = np.round(255.0 * lin ** (1 / 2.2)).astype(np.uint8)
    return rgb, xyz_out, valid
