"""Point-MAE encoder (public ShapeNet pretraining) as a frozen xyz feature extractor "pointmae".

Pipeline per organized cloud (method.md §2.2–2.3), pure torch on CPU or CUDA:
valid points (any coordinate ≠ 0, raw units) -> farthest-point sampling of 1024 centres
(start index 0) -> 128 nearest points per centre, centred -> mini-PointNet token per group ->
12 pre-norm transformer blocks (384 wide, 6 heads) with the positional MLP of the centres
added before every block -> outputs of blocks 4, 8, 12, each through the shared final
LayerNorm, concatenated (1152-d per centre) -> 3-NN inverse-squared-distance interpolation
to every valid point -> scattered to the S×S image, 3×3 average (no padding), adaptive
average to grid×grid. Cells holding no valid pixel are exactly 0.

Small clouds: with fewer valid points than 1024, every point becomes a centre; with fewer
than 128, each group holds all points (identical to sampling with replacement, since the
group encoder max-pools). A cloud without any valid point is a DataError.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core import progress as progress_mod
from core.data.sample import finite_valid_points
from core.errors import DataError, UserError
from core.features import checkpoints, point_ops, registry
from core.features.pooling import valid_fraction

ARCHITECTURE = "Point-MAE encoder (12 blocks, width 384)"
WIDTH = 384
DEPTH = 12
HEADS = 6
NUM_GROUPS = 1024
GROUP_SIZE = 128
# Where the state dict may sit in the file, and prefixes wrapped around the encoder's keys.
CONTAINERS = ("base_model", "model", "state_dict")
PREFIXES = ("module.", "MAE_encoder.", "base_model.")
# Parts of the pretraining/fine-tuning model that are not used for features.
UNUSED_PREFIXES = (
    "MAE_decoder.", "decoder_pos_embed.", "increase_dim.", "mask_token",
    "cls_token", "cls_pos", "cls_head_finetune.",
)
_GROUP_CHUNK = 256  # groups through the mini-PointNet at once (bounds activation memory)


class GroupEncoder(nn.Module):
    """Mini-PointNet: one token per group of centred points (key names as in Point-MAE)."""

    def __init__(self, out_dim: int = WIDTH):
        super().__init__()
        self.out_dim = out_dim
        self.first_conv = nn.Sequential(
            nn.Conv1d(3, 128, 1), nn.BatchNorm1d(128), nn.ReLU(inplace=True), nn.Conv1d(128, 256, 1)
        )
        self.second_conv = nn.Sequential(
            nn.Conv1d(512, 512, 1), nn.BatchNorm1d(512), nn.ReLU(inplace=True),
            nn.Conv1d(512, out_dim, 1),
        )

    def forward(self, groups: torch.Tensor) -> torch.Tensor:
        """(G, K, 3) centred neighbourhoods -> (G, out_dim) tokens."""
        # second_conv[0] sees [group max; point feature] (512 ch). Its half acting on the group
        # max is applied once per group instead of once per point (same result, ~18 % fewer MACs).
        mix = self.second_conv[0]
        w_group, w_point = mix.weight[:, :256, 0], mix.weight[:, 256:, :]
        tokens = []
        for part in groups.split(_GROUP_CHUNK):
            feat = self.first_conv(part.transpose(1, 2))  # (g, 256, K)
            per_group = F.linear(feat.amax(dim=2), w_group, mix.bias)  # (g, 512)
            hidden = F.conv1d(feat, w_point) + per_group[:, :, None]
            tokens.append(self.second_conv[1:](hidden).amax(dim=2))
        return torch.cat(tokens)


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q·kᵀ/√d)·v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _Mlp(dim, 4 * dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _BlockStack(nn.Module):
    def __init__(self, depth: int, dim: int, heads: int, qkv_bias: bool):
        super().__init__()
        self.blocks = nn.ModuleList(_Block(dim, heads, qkv_bias) for _ in range(depth))


class PointMAEEncoder(nn.Module):
    """Point-MAE's MaskTransformer without masking; returns multi-level group features."""

    def __init__(self, depth: int = DEPTH, width: int = WIDTH, heads: int = HEADS,
                 qkv_bias: bool = False):
        super().__init__()
        self.encoder = GroupEncoder(width)
        self.pos_embed = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, width))
        self.blocks = _BlockStack(depth, width, heads, qkv_bias)
        self.norm = nn.LayerNorm(width)
        # blocks 4, 8, 12 (0-based 3, 7, 11) for depth 12; evenly spaced thirds otherwise
        self.taps = tuple((i + 1) * depth // 3 - 1 for i in range(3))
        self.out_dim = 3 * width

    def forward(self, neighbourhoods: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """(G, K, 3) centred groups + (G, 3) centres -> (G, 3·width) features."""
        x = self.encoder(neighbourhoods)[None]
        pos = self.pos_embed(centres)[None]
        taps = []
        for i, block in enumerate(self.blocks.blocks):
            x = block(x + pos)
            if i in self.taps:
                taps.append(self.norm(x))
        return torch.cat(taps, dim=-1)[0]


class PointMAEExtractor:
    """Frozen Point-MAE features for S×S×3 float32 organized clouds (0,0,0 = no point)."""

    name = "pointmae"
    modality = "xyz"

    def __init__(self, weights: str | Path | None = None, device: str = "cpu",
                 num_groups: int = NUM_GROUPS, group_size: int = GROUP_SIZE,
                 allow_random: bool = False, _depth: int = DEPTH):
        if num_groups < 1 or group_size < 1:
            raise UserError("pointmae: num_groups and group_size must be positive")
        self.device = checkpoints.resolve_device(device)
        self.num_groups, self.group_size = int(num_groups), int(group_size)
        if weights is None:
            if not allow_random:
                raise UserError(
                    "pointmae needs the Point-MAE weight file (pretrain.pth): "
                    "pass --xyz-weights PATH"
                )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                self.model = PointMAEEncoder(depth=_depth)
            self.weights_id = "none"
        else:
            path = Path(weights)
            self.model = load_encoder(path, depth=_depth)
            self.weights_id = checkpoints.weights_id(path)
        self.model.to(self.device).eval()
        self.dim = self.model.out_dim
        self.params = {"weights": None if weights is None else str(Path(weights).resolve())}
        if (self.num_groups, self.group_size) != (NUM_GROUPS, GROUP_SIZE):
            self.params.update(num_groups=self.num_groups, group_size=self.group_size)

    @torch.no_grad()  # not inference_mode: adaptor training may use the features in autograd
    def extract(self, batch: list[np.ndarray], grid: int = 28,
                progress: progress_mod.Progress | None = None) -> torch.Tensor:
        """(B, 1152, grid, grid) float32 CPU features; ``progress`` gets one step per cloud."""
        if grid < 1:
            raise UserError(f"grid must be positive, got {grid}")
        p = progress_mod.ensure(progress)
        out = torch.zeros(len(batch), self.dim, grid, grid)
        for b, cloud in enumerate(batch):
            p.update("Point-MAE features", b, len(batch))
            out[b] = self._extract_one(cloud, b, grid).cpu()
        p.update("Point-MAE features", len(batch), len(batch))
        return out

    def _extract_one(self, cloud: np.ndarray, item: int, grid: int) -> torch.Tensor:
        points, pixels, valid = self.valid_points(cloud, item)
        groups, centres = point_ops.group(
            points, min(self.num_groups, len(points)), min(self.group_size, len(points))
        )
        return self.to_grid(self.model(groups, centres), centres, points, pixels, valid, grid)

    def valid_points(self, cloud: np.ndarray, item: int = 0):
        """(points (N, 3) on the device, their flat pixel indices (N,), H×W bool valid mask)."""
        if not isinstance(cloud, np.ndarray) or cloud.ndim != 3 or cloud.shape[2] != 3:
            raise DataError(None, f"pointmae: batch item {item} is not an H×W×3 organized point "
                                  f"cloud (got shape {np.shape(cloud)})")
        cloud = cloud.astype(np.float32, copy=False)
        valid = finite_valid_points(cloud)
        flat = np.flatnonzero(valid)
        if min(cloud.shape[:2]) < 3:
            raise DataError(None, f"pointmae: batch item {item} is smaller than 3×3 pixels")
        if flat.size == 0:
            raise DataError(None, f"batch item {item}: the point cloud has no valid point "
                                  "(every pixel is (0,0,0))")
        points = torch.from_numpy(cloud.reshape(-1, 3)[flat]).to(self.device)
        return points, torch.from_numpy(flat).to(self.device), valid

    def to_grid(self, centre_feats: torch.Tensor, centres: torch.Tensor, points: torch.Tensor,
                pixels: torch.Tensor, valid: np.ndarray, grid: int) -> torch.Tensor:
        """Centre features (G, C) -> (C, grid, grid): 3-NN interpolation to the points, scatter,
        3×3 average (no padding), adaptive average; cells without a valid pixel set to 0.

        The three linear steps are one sparse (grid², G) matrix applied to the features.
        """
        height, width = valid.shape
        projection = point_ops.grid_projection(points, centres, pixels, height, width, grid, k=3)
        maps = torch.sparse.mm(projection, centre_feats)
        occupied = valid_fraction(valid, grid).to(self.device) > 0
        return maps.T.reshape(-1, grid, grid) * occupied


def load_encoder(path: Path, depth: int = DEPTH) -> PointMAEEncoder:
    """Point-MAE encoder with weights from a pretrain.pth-style file, loaded strictly."""
    raw = checkpoints.read_tensor_file(path)
    state = checkpoints.find_state_dict(raw, path, CONTAINERS)
    state = checkpoints.strip_prefixes(state, PREFIXES)
    state = {k: v for k, v in state.items() if not k.startswith(UNUSED_PREFIXES)}
    qkv_bias = any(k.endswith("attn.qkv.bias") for k in state)  # the public weights have none
    with torch.device("meta"):
        model = PointMAEEncoder(depth=depth, qkv_bias=qkv_bias)
    checkpoints.load_strict(model, state, path, ARCHITECTURE)
    return model


@registry.register("pointmae", "xyz")
def create_pointmae(weights: str | Path | None = None, device: str = "cpu",
                    num_groups: int = NUM_GROUPS, group_size: int = GROUP_SIZE,
                    allow_random: bool = False) -> PointMAEExtractor:
    """Point-MAE xyz extractor; ``weights`` = the public Point-MAE ``pretrain.pth`` (required
    unless ``allow_random`` for timing runs)."""
    return PointMAEExtractor(weights, device=device, num_groups=num_groups,
                             group_size=group_size, allow_random=allow_random)
