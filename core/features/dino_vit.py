"""DINO ViT-B/8 as a frozen RGB feature extractor "dino_vitb8" (method.md §2.1).

timm ``vit_base_patch8_224`` with weights from a local file: the official DINO
``dino_vitbase8_pretrain.pth`` (also a full DINO training checkpoint, whose "teacher" is used)
or timm's own ``vit_base_patch8_224.dino`` weights (.pth/.bin/.safetensors). Features are the
last block's patch tokens after the final LayerNorm (CLS dropped): 768-d on the S/8 token
grid (28×28 for S = 224), then adaptive-average pooled to grid×grid, which for grid 56 is the
paper's 2× nearest repetition. Input: S×S×3 uint8 RGB (already resized by the caller),
normalised with the ImageNet mean/std.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core import progress as progress_mod
from core.errors import DataError, UserError
from core.features import checkpoints, registry

ARCHITECTURE = "DINO ViT-B/8 (timm vit_base_patch8_224)"
TIMM_NAME = "vit_base_patch8_224"
PATCH = 8
DIM = 768
DEPTH = 12
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Where the backbone's state dict may sit, in order of preference (DINO evaluates the teacher).
CONTAINERS = ("teacher", "state_dict", "model", "student")
PREFIXES = ("module.", "backbone.")
# Heads are never part of the feature path: DINO's projection head, timm's classifier.
UNUSED_PREFIXES = ("head.", "head_dist.")


def build_vit(depth: int = DEPTH, meta: bool = False) -> torch.nn.Module:
    """Uninitialised-or-random timm ViT-B/8 without classifier (any S divisible by 8)."""
    from core import tv_shim

    tv_shim.install()
    import timm

    kwargs = dict(pretrained=False, num_classes=0, dynamic_img_size=True, depth=depth)
    if meta:
        with torch.device("meta"):
            return timm.create_model(TIMM_NAME, **kwargs)
    return timm.create_model(TIMM_NAME, **kwargs)


def load_vit(path: Path, depth: int = DEPTH) -> torch.nn.Module:
    """ViT-B/8 with weights from an official-DINO or timm layout file, loaded strictly."""
    raw = checkpoints.read_tensor_file(path)
    state = checkpoints.find_state_dict(raw, path, CONTAINERS)
    state = checkpoints.strip_prefixes(state, PREFIXES)
    state = {k: v for k, v in state.items() if not k.startswith(UNUSED_PREFIXES)}
    model = build_vit(depth, meta=True)
    checkpoints.load_strict(model, state, path, ARCHITECTURE)
    return model


class DinoViTExtractor:
    """Frozen DINO ViT-B/8 patch features for S×S×3 uint8 images."""

    name = "dino_vitb8"
    modality = "rgb"
    dim = DIM

    def __init__(self, weights: str | Path | None = None, device: str = "cpu",
                 batch_size: int = 8, allow_random: bool = False, _depth: int = DEPTH):
        if batch_size < 1:
            raise UserError("dino_vitb8: batch_size must be at least 1")
        self.device = checkpoints.resolve_device(device)
        self.batch_size = int(batch_size)
        if weights is None:
            if not allow_random:
                raise UserError(
                    "dino_vitb8 needs the DINO ViT-B/8 weight file "
                    "(dino_vitbase8_pretrain.pth): pass --rgb-weights PATH"
                )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                self.model = build_vit(_depth)
            self.weights_id = "none"
        else:
            path = Path(weights)
            self.model = load_vit(path, _depth)
            self.weights_id = checkpoints.weights_id(path)
        self.model.to(self.device).eval()
        self.params = {"weights": None if weights is None else str(Path(weights).resolve())}
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1) * 255

    @torch.no_grad()  # not inference_mode: adaptor training may use the features in autograd
    def extract(self, batch: list[np.ndarray], grid: int = 28,
                progress: progress_mod.Progress | None = None) -> torch.Tensor:
        """(B, 768, grid, grid) float32 CPU features; ``progress`` gets one step per image."""
        if grid < 1:
            raise UserError(f"grid must be positive, got {grid}")
        p = progress_mod.ensure(progress)
        size = _check_images(batch)
        outputs = []
        for start in range(0, len(batch), self.batch_size):
            p.update("DINO ViT-B/8 features", start, len(batch))
            chunk = np.stack(batch[start:start + self.batch_size])
            x = torch.from_numpy(chunk).to(self.device).permute(0, 3, 1, 2).float()
            tokens = self.model.forward_features((x - self._mean) / self._std)
            tokens = tokens[:, self.model.num_prefix_tokens:]  # drop CLS
            side = size // PATCH
            fmap = tokens.transpose(1, 2).reshape(len(chunk), DIM, side, side)
            if side != grid:
                fmap = F.adaptive_avg_pool2d(fmap, grid)
            outputs.append(fmap.float().cpu())
        p.update("DINO ViT-B/8 features", len(batch), len(batch))
        return torch.cat(outputs) if outputs else torch.zeros(0, DIM, grid, grid)


def _check_images(batch: list[np.ndarray]) -> int:
    """Side S shared by all S×S×3 uint8 images of the batch (DataError otherwise)."""
    size = None
    for i, img in enumerate(batch):
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 \
                or img.shape[2] != 3 or img.shape[0] != img.shape[1]:
            got = f"{getattr(img, 'dtype', type(img).__name__)} {np.shape(img)}"
            raise DataError(None, f"dino_vitb8: batch item {i} is not an S×S×3 uint8 RGB image "
                                  f"(got {got})")
        if img.shape[0] % PATCH:
            raise DataError(None, f"dino_vitb8: image side {img.shape[0]} is not a multiple "
                                  f"of {PATCH}")
        if size is not None and img.shape[0] != size:
            raise DataError(None, "dino_vitb8: all images of a batch must have the same size")
        size = img.shape[0]
    return size or 224


@registry.register("dino_vitb8", "rgb")
def create_dino_vitb8(weights: str | Path | None = None, device: str = "cpu",
                      batch_size: int = 8, allow_random: bool = False) -> DinoViTExtractor:
    """DINO ViT-B/8 RGB extractor; ``weights`` = ``dino_vitbase8_pretrain.pth`` or timm's
    ``vit_base_patch8_224.dino`` file (required unless ``allow_random`` for timing runs)."""
    return DinoViTExtractor(weights, device=device, batch_size=batch_size,
                            allow_random=allow_random)
