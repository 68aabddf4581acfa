"""The compiled FPFH loops (core.features.fpfh_kernels): the arctangent-free theta bins, and
where numba keeps its on-disk cache."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from core.features import fpfh_kernels as kernels

ROOT = Path(__file__).resolve().parents[1]


def test_theta_bin_equals_the_binned_arctangent():
    rng = np.random.default_rng(0)
    c, y = rng.normal(size=(2, 20000)) * rng.choice([1e-3, 1.0, 1e3], size=(2, 20000))
    # and the bin centres all round the circle, at several lengths
    centres = -math.pi + (np.arange(kernels.BINS) + 0.5) * 2 * math.pi / kernels.BINS
    for r in (1e-6, 0.5, 1.0):
        c = np.concatenate([c, r * np.cos(centres)])
        y = np.concatenate([y, r * np.sin(centres)])
    got = [kernels._theta_bin(a, b) for a, b in zip(c, y)]
    want = [kernels._bin(math.atan2(b, a), -math.pi, math.pi) for a, b in zip(c, y)]
    assert got == want
    assert set(got) == set(range(kernels.BINS))


def _cache_paths(env: dict) -> list[str]:
    code = ("from core.features import fpfh_kernels as k\n"
            "for f in (k.normals, k.pair_histograms, k.weighted_fpfh): print(f._cache._cache_path)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def test_compiled_code_is_cached_in_the_user_cache_not_the_package(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["LSFA_CACHE_DIR"] = str(tmp_path / "lsfa")
    paths = _cache_paths(env)
    assert len(paths) == 3 and all(p.startswith(str(tmp_path / "lsfa" / "numba")) for p in paths)
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")  # the user's own choice wins
    assert all(p.startswith(str(tmp_path / "mine")) for p in _cache_paths(env))


def test_a_cache_that_cannot_be_written_does_not_stop_fpfh(tmp_path):
    """Compiling into an empty cache folder under a 1 KB file-size limit (every cache write
    fails): FPFH still runs and gives the features computed here."""
    import resource

    import torch

    from core.features.fpfh import FPFHConfig, fpfh_points

    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:24, 0:24] * 0.001
    xyz = np.stack([xs, ys, 0.3 + 0.0005 * rng.standard_normal(xs.shape)], -1).astype(np.float32)
    np.save(tmp_path / "cloud.npy", xyz)
    want = fpfh_points(xyz, FPFHConfig(spacing_m=0.001))[0]
    code = ("import sys, numpy as np, torch\n"
            "from core.features.fpfh import FPFHConfig, fpfh_points\n"
            "f = fpfh_points(np.load(sys.argv[1]), FPFHConfig(spacing_m=0.001))[0]\n"
            "print(f.numpy().tobytes().hex())\n")  # stdout: not subject to the file-size limit
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["LSFA_CACHE_DIR"] = str(tmp_path / "cache")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "cloud.npy")], cwd=ROOT, env=env,
                         preexec_fn=limit, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert not list((tmp_path / "cache").rglob("*.nbc"))  # nothing could be cached
    got = np.frombuffer(bytes.fromhex(res.stdout.strip()), dtype=np.float32).reshape(want.shape)
    assert torch.equal(torch.from_numpy(got.copy()), want) and want.abs().sum() > 0
