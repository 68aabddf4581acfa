"""The local colour-contrast block of the RGB features (core.features.colour)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.config import FitConfig
from core.errors import UserError
from core.features import create_extractor
from core.features.colour import ColourConfig, colour_contrast
from core.features.filters import gaussian_blur


def _texture(seed: int = 0, size: int = 128) -> np.ndarray:
    """A smooth, coloured, mid-grey texture (no saturated pixels), (size, size, 3) uint8."""
    rng = np.random.default_rng(seed)
    noise = torch.from_numpy(rng.normal(size=(3, size, size)).astype(np.float32))
    smooth = gaussian_blur(noise, 3.0).numpy()
    smooth /= np.abs(smooth).max()
    img = 110 + 25 * smooth + np.array([10, 0, -10], np.float32)[:, None, None]
    return np.clip(img.transpose(1, 2, 0), 0, 255).astype(np.uint8)


def _cell(block: torch.Tensor, row: int, col: int) -> torch.Tensor:
    return block[0, :, row, col]


def test_block_shape_and_settings():
    config = ColourConfig()
    assert config.dim == 18 and config.weight == 100.0
    out = colour_contrast(np.stack([_texture(0), _texture(1)]), 16)
    assert out.shape == (2, 18, 16, 16) and out.dtype == torch.float32 and torch.isfinite(out).all()
    for bad in ({"context_sigmas_px": ()}, {"context_sigmas_px": (0.5,)}, {"eps": 0.0}, {"weight": -1.0}):
        with pytest.raises(UserError):
            ColourConfig(**bad)


def test_a_faint_stain_stands_out_and_an_exposure_change_does_not():
    """A 12 % darker 6×6-pixel spot moves its cell's luminance minimum far beyond what the texture
    does anywhere else; a 20 % darker exposure of the whole image moves the block much less."""
    img = _texture(0)
    base = colour_contrast(img[None], 16)
    stained = img.astype(np.float32)
    stained[57:63, 57:63] *= 0.88  # inside cell (7, 7) of 8×8 pixels
    spot = colour_contrast(stained.astype(np.uint8)[None], 16)
    change = (spot - base).abs()
    lum_min = 6  # per scale: means (lum, rg, bg), maxima (lum, rg, bg), minima (lum, rg, bg)
    assert spot[0, lum_min, 7, 7] < base[0, lum_min, 7, 7] - 3.0
    outside = change.clone()
    outside[..., 6:9, 6:9] = 0
    assert change[0, :, 7, 7].max() > 5 * outside.max()
    darker = colour_contrast((img.astype(np.float32) * 0.8).astype(np.uint8)[None], 16)
    assert (darker - base).abs().max() < 0.5 * change[0, :, 7, 7].max()


def test_a_colour_shift_without_a_brightness_change_shows_in_the_chroma_channels():
    img = _texture(2).astype(np.float32)
    tinted = img.copy()
    tinted[40:48, 80:88, 0] += 12  # redder, the green-blue sum down by as much: same luminance
    tinted[40:48, 80:88, 2] -= 12
    base = colour_contrast(img.astype(np.uint8)[None], 16)
    out = colour_contrast(tinted.astype(np.uint8)[None], 16)
    change = (out - base)[0, :, 5, 10]
    lum = [0, 3, 6, 9, 12, 15]
    chroma = [c for c in range(18) if c not in lum]
    assert change[chroma].abs().max() > 4 * change[lum].abs().max()
    assert change[1] > 0 and change[2] < 0  # the cell mean of log R/G up, of log B/G down


def test_extractor_appends_the_block_and_old_model_files_rebuild_without_it():
    """colour_weight > 0 appends the 18 weighted channels after the unchanged CNN features and is
    recorded in the extractor's params; without it (model files written before) 152 features."""
    plain = create_extractor("efficientnet_lite0")
    with_block = create_extractor("efficientnet_lite0", colour_weight=100.0)
    assert (plain.dim, with_block.dim) == (152, 170)
    assert "colour_weight" not in plain.params and with_block.params["colour_weight"] == 100.0
    assert create_extractor("efficientnet_lite0", **with_block.params).dim == 170
    images = [np.ascontiguousarray(np.tile(_texture(s), (2, 2, 1))[:224, :224]) for s in (0, 1)]
    a, b = plain.extract(images, 28), with_block.extract(images, 28)
    torch.testing.assert_close(b[:, :152], a, rtol=0, atol=0)
    torch.testing.assert_close(b[:, 152:], colour_contrast(np.stack(images), 28), rtol=0, atol=0)
    with pytest.raises(UserError):
        create_extractor("efficientnet_lite0", colour_weight=-1.0)


def test_fit_settings_choose_the_block_and_stored_configs_without_it_keep_the_old_features():
    from core.fitting import create_extractors

    assert FitConfig().colour_contrast is True
    assert FitConfig.from_dict({}).colour_contrast is False  # a model file written before the block
    assert create_extractors(FitConfig(), ("rgb",))["rgb"].dim == 170
    assert create_extractors(FitConfig(colour_contrast=False), ("rgb",))["rgb"].dim == 152
    with pytest.raises(UserError):
        FitConfig(colour_contrast="yes")
