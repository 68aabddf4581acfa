"""Turned copies of the training images in the RGB memory bank (FitConfig.rgb_rotations)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import FitConfig
from core.data.sample import Sample
from core.errors import UserError
from core.bank_copies import turned
from tests._bank_fits import scores_and_bank


def stripes(seed: int, vertical: bool, size: int = 96) -> np.ndarray:
    """A grey part with dark stripes 12 px apart (random phase, sensor noise), as captured."""
    rng = np.random.default_rng(seed)
    y = np.arange(size)[:, None] + rng.uniform(0, 12)
    img = 150 + 60 * (np.sin(2 * np.pi * y / 12) > 0) + rng.normal(0, 4, (size, size))
    img = np.clip(img, 0, 255).astype(np.uint8)
    img = img.T if vertical else img
    return np.repeat(img[..., None], 3, axis=2)


@pytest.fixture(scope="module")
def striped_root(tmp_path_factory) -> Path:
    """MVTec AD layout: 12 training parts with horizontal stripes; test: one more as captured
    (good) and one turned by 90° ("turned", a good part in another orientation)."""
    root = tmp_path_factory.mktemp("striped") / "plate"
    files = [("train/good", i, False) for i in range(12)] + [("test/good", 100, False), ("test/turned", 101, True)]
    for folder, seed, vertical in files:
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(stripes(seed, vertical)).save(root / folder / f"{seed:03d}.png")
    mask = np.zeros((96, 96), np.uint8)
    mask[40:50, 40:50] = 255
    (root / "ground_truth" / "turned").mkdir(parents=True)
    Image.fromarray(mask).save(root / "ground_truth" / "turned" / "101_mask.png")
    return root.parent


def test_turned_sample_turns_every_array_together():
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    xyz = np.random.default_rng(0).random((4, 6, 3)).astype(np.float32)
    mask = np.zeros((4, 6), bool)
    mask[0, 5] = True
    s = turned(Sample("a", rgb, xyz, mask, "good"), 1)
    assert s.rgb.shape == (6, 4, 3) and s.xyz.shape == (6, 4, 3) and s.mask.shape == (6, 4)
    assert np.array_equal(s.rgb[0, 0], rgb[0, 5]) and np.array_equal(s.xyz[0, 0], xyz[0, 5]) and s.mask[0, 0]
    assert np.array_equal(turned(turned(s, 2), 1).rgb, rgb) and "90°" in s.name


def test_turned_copies_make_a_turned_good_part_look_good(striped_root, tmp_path):
    """Trained on one orientation only, a good part turned by 90° scores far above the good part
    as captured; with every 90° turn in the RGB bank both score alike. The bank keeps its size."""
    scores, banks = {}, {}
    for turns in (1, 4):
        scores[turns], banks[turns] = scores_and_bank(striped_root, "plate", ("good", "turned"), tmp_path,
                                                      rgb_rotations=turns)
    (good1, turned1), (good4, turned4) = scores[1], scores[4]
    assert turned1 > 2 * good1
    assert turned4 < 1.3 * good4
    assert banks[4] == banks[1] == 2000


def test_rgb_rotations_must_be_a_listed_choice():
    with pytest.raises(UserError, match="--rgb-rotations"):
        FitConfig(rgb_rotations=3)
