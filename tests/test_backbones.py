"""DINO ViT-B/8 and Point-MAE backbones: checkpoint layouts, strict loading, point operations.

Checkpoints are written here from the published key layouts (names and shapes spelled out
below, independent of the modules under test) with random or structured tensors.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.errors import DataError, UserError
from core.features import checkpoints, point_ops, registry
from core.features.checkpoints import CheckpointError
from core.features.dino_vit import DinoViTExtractor
from core.features.pointmae import PointMAEEncoder, PointMAEExtractor

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


# ---------------------------------------------------------------- published key layouts

def dino_vit_layout(depth: int = 12, tokens: int = 785) -> dict[str, tuple]:
    """Official DINO ``dino_vitbase8_pretrain.pth`` (== timm ``vit_base_patch8_224``) keys."""
    d = 768
    keys = {"cls_token": (1, 1, d), "pos_embed": (1, tokens, d),
            "patch_embed.proj.weight": (d, 3, 8, 8), "patch_embed.proj.bias": (d,)}
    for i in range(depth):
        b = f"blocks.{i}."
        keys.update({
            b + "norm1.weight": (d,), b + "norm1.bias": (d,),
            b + "attn.qkv.weight": (3 * d, d), b + "attn.qkv.bias": (3 * d,),
            b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
            b + "norm2.weight": (d,), b + "norm2.bias": (d,),
            b + "mlp.fc1.weight": (4 * d, d), b + "mlp.fc1.bias": (4 * d,),
            b + "mlp.fc2.weight": (d, 4 * d), b + "mlp.fc2.bias": (d,),
        })
    keys.update({"norm.weight": (d,), "norm.bias": (d,)})
    return keys


def _pm_block(prefix: str, d: int = 384, qkv_bias: bool = False) -> dict[str, tuple]:
    keys = {prefix + "norm1.weight": (d,), prefix + "norm1.bias": (d,),
            prefix + "attn.qkv.weight": (3 * d, d),
            prefix + "attn.proj.weight": (d, d), prefix + "attn.proj.bias": (d,),
            prefix + "norm2.weight": (d,), prefix + "norm2.bias": (d,),
            prefix + "mlp.fc1.weight": (4 * d, d), prefix + "mlp.fc1.bias": (4 * d,),
            prefix + "mlp.fc2.weight": (d, 4 * d), prefix + "mlp.fc2.bias": (d,)}
    if qkv_bias:
        keys[prefix + "attn.qkv.bias"] = (3 * d,)
    return keys


def pointmae_pretrain_layout(depth: int = 12, decoder_depth: int = 1) -> dict[str, tuple]:
    """Public Point-MAE ``pretrain.pth`` ``base_model`` keys (encoder + the unused decoder)."""
    e, d = "MAE_encoder.", 384
    keys = {}
    for conv, cin, mid, cout in (("first_conv", 3, 128, 256), ("second_conv", 512, 512, d)):
        p = f"{e}encoder.{conv}."
        keys.update({p + "0.weight": (mid, cin, 1), p + "0.bias": (mid,),
                     p + "1.weight": (mid,), p + "1.bias": (mid,), p + "1.running_mean": (mid,),
                     p + "1.running_var": (mid,), p + "1.num_batches_tracked": (),
                     p + "3.weight": (cout, mid, 1), p + "3.bias": (cout,)})
    keys.update({e + "pos_embed.0.weight": (128, 3), e + "pos_embed.0.bias": (128,),
                 e + "pos_embed.2.weight": (d, 128), e + "pos_embed.2.bias": (d,)})
    for i in range(depth):
        keys.update(_pm_block(f"{e}blocks.blocks.{i}."))
    keys.update({e + "norm.weight": (d,), e + "norm.bias": (d,), "mask_token": (1, 1, d),
                 "decoder_pos_embed.0.weight": (128, 3), "decoder_pos_embed.0.bias": (128,),
                 "decoder_pos_embed.2.weight": (d, 128), "decoder_pos_embed.2.bias": (d,),
                 "MAE_decoder.norm.weight": (d,), "MAE_decoder.norm.bias": (d,),
                 "increase_dim.0.weight": (96, d, 1), "increase_dim.0.bias": (96,)})
    for i in range(decoder_depth):
        keys.update(_pm_block(f"MAE_decoder.blocks.{i}."))
    return keys


def random_state(layout: dict[str, tuple], seed: int = 0, scale: float = 0.05) -> dict:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * scale
    return state


def disc_cloud(size: int, radius: float, z0: float = 0.5) -> np.ndarray:
    """size×size organized cloud (metres): a dome of the given pixel radius, 0 elsewhere."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r2 = (yy - size / 2) ** 2 + (xx - size / 2) ** 2
    cloud = np.stack([xx * 1e-3, yy * 1e-3, z0 + 1e-5 * np.sqrt(np.maximum(radius**2 - r2, 0))], -1)
    cloud[r2 >= radius**2] = 0
    return cloud.astype(np.float32)


# ---------------------------------------------------------------- point operations

def test_fps_matches_brute_force_reference():
    rng = np.random.default_rng(1)
    pts = rng.random((300, 3)).astype(np.float32)
    ref = [0]
    for _ in range(15):  # plain loop: distance of every point to its nearest chosen centre
        d = np.array([min(((p - pts[c]) ** 2).sum() for c in ref) for p in pts])
        ref.append(int(np.argmax(d)))
    t = torch.from_numpy(pts)
    assert point_ops.farthest_point_sample(t, 16).tolist() == ref
    assert point_ops._fps_torch(t, 16).tolist() == ref  # the GPU code path, run on the CPU


def test_knn_and_grouping_match_brute_force(monkeypatch):
    monkeypatch.setattr(point_ops, "_CHUNK_ELEMENTS", 1000)  # several query chunks
    rng = np.random.default_rng(2)
    pts = rng.random((300, 3)).astype(np.float32)
    t = torch.from_numpy(pts)
    neighbourhoods, centres = point_ops.group(t, 16, 8)
    centre_idx = point_ops.farthest_point_sample(t, 16).numpy()
    np.testing.assert_array_equal(centres.numpy(), pts[centre_idx])
    for g, c in enumerate(centre_idx):
        d2 = ((pts - pts[c]) ** 2).sum(1)
        expected = np.argsort(d2, kind="stable")[:8]
        got = neighbourhoods[g].numpy() + pts[c]
        np.testing.assert_allclose(got, pts[expected], atol=1e-6)
        np.testing.assert_allclose(neighbourhoods[g, 0].numpy(), 0, atol=1e-7)  # the centre
    sq, idx = point_ops.knn(t[:5], t, 8)
    for q in range(5):
        d2 = ((pts - pts[q]) ** 2).sum(1)
        np.testing.assert_array_equal(idx[q].numpy(), np.argsort(d2, kind="stable")[:8])
        np.testing.assert_allclose(sq[q].numpy(), np.sort(d2)[:8], rtol=1e-5, atol=1e-7)


def test_inverse_distance_interpolation_matches_brute_force():
    rng = np.random.default_rng(3)
    pts, centres = rng.random((200, 3)), rng.random((12, 3))
    feats = rng.normal(size=(12, 5))
    matrix = point_ops.interpolation_matrix(torch.tensor(pts), torch.tensor(centres))
    got = torch.sparse.mm(matrix, torch.tensor(feats)).numpy()
    for i, p in enumerate(pts):
        d2 = ((centres - p) ** 2).sum(1)
        near = np.argsort(d2)[:3]
        wi = 1 / (d2[near] + 1e-8)
        np.testing.assert_allclose(got[i], (wi / wi.sum()) @ feats[near], rtol=1e-6)


def test_grid_projection_is_interpolation_then_pooling():
    rng = np.random.default_rng(6)
    pix = torch.tensor(rng.choice(24 * 24, 150, replace=False))
    pts, centres = torch.rand(150, 3, dtype=torch.float64), torch.rand(20, 3, dtype=torch.float64)
    feats = torch.randn(20, 7, dtype=torch.float64)
    per_point = torch.sparse.mm(point_ops.interpolation_matrix(pts, centres), feats)
    expected = point_ops.scatter_pool(per_point, pix, 24, 24, 7)
    got = torch.sparse.mm(point_ops.grid_projection(pts, centres, pix, 24, 24, 7), feats)
    torch.testing.assert_close(got.T.reshape(7, 7, 7), expected)


def test_scatter_pool_is_unpadded_3x3_then_adaptive_average():
    rng = np.random.default_rng(4)
    for height, width, grid in ((20, 20, 6), (17, 23, 8), (12, 12, 28)):  # down- and up-sampling
        pix = rng.choice(height * width, 90, replace=False)
        vals = rng.normal(size=(90, 2))
        got = point_ops.scatter_pool(torch.tensor(vals), torch.tensor(pix), height, width, grid)
        canvas = np.zeros((2, height, width))
        canvas[:, pix // width, pix % width] = vals.T
        box = np.array([[canvas[:, y:y + 3, x:x + 3].mean((1, 2)) for x in range(width - 2)]
                        for y in range(height - 2)])  # (H-2, W-2, 2)
        ny, nx = height - 2, width - 2
        for i in range(grid):
            for j in range(grid):
                ys = slice(i * ny // grid, -(-(i + 1) * ny // grid))
                xs = slice(j * nx // grid, -(-(j + 1) * nx // grid))
                np.testing.assert_allclose(got[:, i, j].numpy(), box[ys, xs].mean((0, 1)),
                                           atol=1e-12)


# ---------------------------------------------------------------- DINO ViT-B/8

def test_dino_official_layout_full_size_loads_and_maps_tokens_in_raster_order(tmp_path):
    """Full-size official layout, structured so the expected features can be computed by hand:
    blocks are identities (zero output projections), patch embedding reads the normalised red
    value of each patch's top-left pixel, positional embeddings are distinct per token."""
    layout = dino_vit_layout(12)
    state = random_state(layout)
    for key in state:
        if key.endswith(("attn.proj.weight", "attn.proj.bias", "mlp.fc2.weight", "mlp.fc2.bias")):
            state[key].zero_()
    w = torch.zeros(768, 3, 8, 8)
    w[0, 0, 0, 0], w[1, 0, 0, 0] = 1.0, -1.0
    b = torch.zeros(768)
    b[2] = 1.0
    state["patch_embed.proj.weight"], state["patch_embed.proj.bias"] = w, b
    state["pos_embed"][..., :4] = 0
    state["norm.weight"], state["norm.bias"] = torch.rand(768) + 0.5, torch.randn(768)
    state = {k: v.half() for k, v in state.items()}  # half the file size; loaded as float32
    path = tmp_path / "dino_vitbase8_pretrain.pth"
    torch.save(state, path)

    ext = DinoViTExtractor(path)
    assert (ext.name, ext.modality, ext.dim) == ("dino_vitb8", "rgb", 768)
    assert ext.weights_id == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    img = np.random.default_rng(5).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    feats = ext.extract([img], grid=56)
    assert feats.shape == (1, 768, 56, 56) and feats.dtype == torch.float32
    assert not feats.is_inference() and not feats.requires_grad  # usable by adaptor training

    red = (img[::8, ::8, 0] / 255.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]  # (28, 28)
    tokens = state["pos_embed"][0, 1:].clone().double()  # CLS (row 0) must be dropped
    tokens[:, 0], tokens[:, 1], tokens[:, 2] = torch.tensor(red.ravel()), -torch.tensor(red.ravel()), 1
    expected = F.layer_norm(tokens, (768,), state["norm.weight"].double(),
                            state["norm.bias"].double(), eps=1e-6)
    expected = expected.T.reshape(768, 28, 28)
    base = feats[0, :, ::2, ::2]
    torch.testing.assert_close(base.double(), expected, atol=2e-4, rtol=1e-4)
    for dy in (0, 1):  # the paper's 56×56 grid repeats every 28×28 token as a 2×2 block
        for dx in (0, 1):
            assert torch.equal(feats[0, :, dy::2, dx::2], base)


@pytest.mark.parametrize("wrap", ["dino_teacher", "timm_state_dict", "safetensors"])
def test_dino_wrapped_and_timm_layouts_load(tmp_path, wrap):
    plain = random_state(dino_vit_layout(depth=1))  # 224 position table, used on 32×32 input
    if wrap == "dino_teacher":  # full DINO training checkpoint: backbone + projection head
        head = {"head.mlp.0.weight": torch.zeros(2048, 768), "head.last_layer.weight_g": torch.ones(1, 65536)}
        obj = {"teacher": {**{"backbone." + k: v for k, v in plain.items()}, **head},
               "student": {"module.backbone." + k: v * 0 for k, v in plain.items()},
               "epoch": 800}
        path = tmp_path / "full.pth"
        torch.save(obj, path)
    elif wrap == "timm_state_dict":  # timm training checkpoint with a classifier head
        obj = {"state_dict": {**{"module." + k: v for k, v in plain.items()},
                              "module.head.weight": torch.zeros(1000, 768)}, "epoch": 3}
        path = tmp_path / "timm.pth"
        torch.save(obj, path)
    else:
        from safetensors.torch import save_file

        path = tmp_path / "model.safetensors"
        save_file(plain, str(path))
    ext = DinoViTExtractor(path, _depth=1)
    assert torch.equal(ext.model.blocks[0].attn.qkv.weight, plain["blocks.0.attn.qkv.weight"])
    img = np.full((32, 32, 3), 128, np.uint8)
    assert ext.extract([img, img], grid=4).shape == (2, 768, 4, 4)


def test_dino_wrong_keys_are_listed(tmp_path):
    state = random_state(dino_vit_layout(depth=1))
    del state["blocks.0.attn.qkv.bias"], state["norm.weight"]
    state["blocks.0.attn.extra"] = torch.zeros(3)
    state["pos_embed"] = torch.zeros(1, 197, 768)  # a ViT-B/16 position table
    path = tmp_path / "odd.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as err:
        DinoViTExtractor(path, _depth=1)
    msg = str(err.value)
    assert str(path) in msg
    assert "2 missing key(s): blocks.0.attn.qkv.bias, norm.weight" in msg
    assert "1 unexpected key(s): blocks.0.attn.extra" in msg
    assert "pos_embed (1, 197, 768) != (1, 785, 768)" in msg


def test_checkpoint_of_another_architecture_is_named_as_such(tmp_path):
    path = tmp_path / "pretrain.pth"
    torch.save({"base_model": random_state(pointmae_pretrain_layout(depth=1))}, path)
    with pytest.raises(CheckpointError, match="does not look like a DINO ViT-B/8"):
        DinoViTExtractor(path, _depth=1)


def test_pickled_objects_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "was_executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(2), "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match="not a plain tensor checkpoint") as err:
        DinoViTExtractor(path)
    assert "open" in str(err.value)
    assert not marker.exists()

    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        PointMAEExtractor(text)
    with pytest.raises(CheckpointError, match="weight file not found"):
        PointMAEExtractor(tmp_path / "missing.pth")


# ---------------------------------------------------------------- Point-MAE

def test_pointmae_public_layout_full_size_loads_and_features_land_on_the_object(tmp_path):
    state = random_state(pointmae_pretrain_layout(12))
    norm_bias = torch.randn(384)
    state["MAE_encoder.norm.weight"] = torch.zeros(384)  # every tap becomes the norm bias
    state["MAE_encoder.norm.bias"] = norm_bias
    path = tmp_path / "pretrain.pth"
    torch.save({"base_model": {"module." + k: v for k, v in state.items()},
                "optimizer": {"state": {}, "param_groups": []}, "epoch": 300,
                "metrics": {}, "best_metrics": {}}, path)
    ext = PointMAEExtractor(path, num_groups=32, group_size=16)
    assert (ext.name, ext.modality, ext.dim) == ("pointmae", "xyz", 1152)
    assert ext.model.blocks.blocks[0].attn.qkv.bias is None  # the public weights have none
    torch.testing.assert_close(ext.model.blocks.blocks[11].mlp.fc2.weight,
                               state["MAE_encoder.blocks.blocks.11.mlp.fc2.weight"])
    cloud = disc_cloud(56, radius=20)
    feats = ext.extract([cloud], grid=14)
    assert feats.shape == (1, 1152, 14, 14) and not feats.is_inference()
    expected = norm_bias.repeat(3)
    # cells well inside the disc are pure object: exactly the (concatenated) norm bias
    torch.testing.assert_close(feats[0, :, 6, 6], expected, atol=1e-5, rtol=1e-5)
    # cells without a single valid pixel are exactly zero
    assert feats[0, :, 0, 0].abs().max() == 0


def test_pointmae_encoder_matches_explicit_reference_math():
    """Our encoder against a direct transcription of Point-MAE's forward (depth 3: taps 0,1,2)."""
    torch.manual_seed(0)
    enc = PointMAEEncoder(depth=3).eval()
    for m in enc.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    sd = enc.state_dict()
    groups, centres = torch.randn(10, 7, 3), torch.randn(10, 3)

    def conv_bn(x, p, last):
        x = F.conv1d(x, sd[p + "0.weight"], sd[p + "0.bias"])
        x = (x - sd[p + "1.running_mean"][:, None]) / torch.sqrt(sd[p + "1.running_var"][:, None] + 1e-5)
        x = torch.relu(x * sd[p + "1.weight"][:, None] + sd[p + "1.bias"][:, None])
        return F.conv1d(x, sd[p + "3.weight"], sd[p + "3.bias"])

    f = conv_bn(groups.transpose(1, 2), "encoder.first_conv.", False)
    f = torch.cat([f.max(2, keepdim=True)[0].expand(-1, -1, 7), f], 1)
    x = conv_bn(f, "encoder.second_conv.", True).max(2)[0][None]
    pos = F.linear(F.gelu(F.linear(centres, sd["pos_embed.0.weight"], sd["pos_embed.0.bias"])),
                   sd["pos_embed.2.weight"], sd["pos_embed.2.bias"])[None]
    outs = []
    for i in range(3):
        b = f"blocks.blocks.{i}."
        x = x + pos
        h = F.layer_norm(x, (384,), sd[b + "norm1.weight"], sd[b + "norm1.bias"])
        q, k, v = F.linear(h, sd[b + "attn.qkv.weight"]).reshape(1, 10, 3, 6, 64).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) * 64 ** -0.5).softmax(-1)
        x = x + F.linear((a @ v).transpose(1, 2).reshape(1, 10, 384), sd[b + "attn.proj.weight"],
                         sd[b + "attn.proj.bias"])
        h = F.layer_norm(x, (384,), sd[b + "norm2.weight"], sd[b + "norm2.bias"])
        h = F.linear(F.gelu(F.linear(h, sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"])),
                     sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])
        x = x + h
        outs.append(F.layer_norm(x, (384,), sd["norm.weight"], sd["norm.bias"]))
    with torch.no_grad():
        got = enc(groups, centres)
    torch.testing.assert_close(got, torch.cat(outs, -1)[0], atol=1e-4, rtol=1e-4)


def test_pointmae_wrong_keys_are_listed(tmp_path):
    state = random_state(pointmae_pretrain_layout(depth=3))
    del state["MAE_encoder.norm.weight"]
    state["MAE_encoder.blocks.blocks.0.attn.qkv.bias"] = torch.zeros(1152)  # only in block 0
    state["MAE_encoder.encoder.third_conv.weight"] = torch.zeros(1)
    path = tmp_path / "pretrain.pth"
    torch.save({"base_model": state}, path)
    with pytest.raises(CheckpointError) as err:
        PointMAEExtractor(path, _depth=3)
    msg = str(err.value)
    assert "3 missing key(s): blocks.blocks.1.attn.qkv.bias, blocks.blocks.2.attn.qkv.bias, norm.weight" in msg
    assert "1 unexpected key(s): encoder.third_conv.weight" in msg


def test_pointmae_small_and_empty_clouds():
    ext = PointMAEExtractor(allow_random=True, _depth=3)
    assert ext.weights_id == "none"
    cloud = disc_cloud(32, radius=4)  # ~50 points: fewer than 1024 centres and 128 neighbours
    single = np.zeros((32, 32, 3), np.float32)
    single[10, 20] = (0.1, 0.2, 0.5)
    feats = ext.extract([cloud, single], grid=8)
    assert feats.shape == (2, 1152, 8, 8) and torch.isfinite(feats).all()
    assert feats[0, :, 4, 4].abs().sum() > 0 and feats[0, :, 0, 0].abs().sum() == 0
    occupied = (feats[1].abs().sum(0) > 0).nonzero().tolist()
    assert occupied == [[2, 5]]  # the only cell holding the single point
    with pytest.raises(DataError, match="batch item 1: the point cloud has no valid point"):
        ext.extract([cloud, np.zeros((32, 32, 3), np.float32)], grid=8)


def test_progress_and_cancel():
    from core.progress import Cancelled, Progress

    ext = PointMAEExtractor(allow_random=True, _depth=3, num_groups=8, group_size=4)
    events = []
    ext.extract([disc_cloud(16, 5)] * 2, grid=4, progress=Progress(events.append))
    assert [(e.done, e.total) for e in events] == [(0, 2), (1, 2), (2, 2)]
    prog = Progress(lambda e: prog.cancel() if e.done == 1 else None)
    with pytest.raises(Cancelled):
        ext.extract([disc_cloud(16, 5)] * 3, grid=4, progress=prog)


# ---------------------------------------------------------------- registry and devices

def test_registry_creates_the_backbones_and_requires_weights():
    assert "dino_vitb8" in registry.available("rgb") and "pointmae" in registry.available("xyz")
    with pytest.raises(UserError, match="--xyz-weights"):
        registry.create_extractor("pointmae")
    with pytest.raises(UserError, match="--rgb-weights"):
        registry.create_extractor("dino_vitb8")
    ext = registry.create_extractor("pointmae", allow_random=True)
    assert isinstance(ext, registry.FeatureExtractor)
    assert ext.params == {"weights": None}


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_cuda_request_without_cuda_is_a_user_error():
    with pytest.raises(UserError, match="CUDA is not available"):
        checkpoints.resolve_device("cuda")
    with pytest.raises(UserError, match="CUDA is not available"):
        PointMAEExtractor(allow_random=True, device="cuda")
    with pytest.raises(UserError, match="unknown device"):
        checkpoints.resolve_device("gpu0")


def test_dino_rejects_unusable_images():
    ext = DinoViTExtractor(allow_random=True, _depth=1)
    with pytest.raises(DataError, match="not a multiple of 8"):
        ext.extract([np.zeros((30, 30, 3), np.uint8)])
    with pytest.raises(DataError, match="batch item 1 is not an S×S×3 uint8 RGB image"):
        ext.extract([np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32, 3), np.float32)])
