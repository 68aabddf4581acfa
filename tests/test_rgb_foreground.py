"""core.rgb_foreground: the part found in an RGB image by its colour against the image border."""

import numpy as np

from core.rgb_foreground import rgb_foreground


def _scene(size=200, radius=40, centre=(90, 110), part=(200, 170, 90), seed=0):
    rng = np.random.default_rng(seed)
    img = np.clip(rng.normal((70, 90, 80), 6, (size, size, 3)), 0, 255)
    yy, xx = np.mgrid[0:size, 0:size]
    disc = np.hypot(yy - centre[0], xx - centre[1]) < radius
    img[disc] = np.clip(rng.normal(part, 6, (disc.sum(), 3)), 0, 255)
    return img.astype(np.uint8), disc


def test_a_part_on_a_plain_background_is_found():
    img, disc = _scene()
    found = rgb_foreground(img)
    assert found is not None and found.shape == disc.shape
    assert np.logical_and(found, disc).sum() / np.logical_or(found, disc).sum() > 0.9


def test_a_textured_part_is_found_whole():
    """A dark tread whose pixels alternate between standing out and not (a tyre) is one part."""
    img, disc = _scene(part=(70, 90, 80))
    yy, xx = np.mgrid[0:200, 0:200]
    studs = disc & ((yy // 3 + xx // 3) % 2 == 0)
    img[studs] = (220, 220, 220)
    found = rgb_foreground(img)
    assert found is not None
    assert np.logical_and(found, disc).sum() / disc.sum() > 0.9 and (found & ~disc).sum() < 0.1 * disc.sum()


def test_no_part_without_a_plain_background_or_with_a_part_too_small_or_too_large():
    rng = np.random.default_rng(1)
    texture = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)  # a texture that fills the frame
    assert rgb_foreground(texture) is None
    assert rgb_foreground(_scene(radius=5)[0]) is None  # 0.2 % of the image
    assert rgb_foreground(_scene(radius=90, centre=(100, 100))[0]) is None  # 64 %, past the border band too
    assert rgb_foreground(np.zeros((4, 4, 3), np.uint8)) is None
