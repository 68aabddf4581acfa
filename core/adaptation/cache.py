"""In-memory cache of frozen patch tokens (float16) for adaptor training; optional safetensors file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.atomic import atomic_target
from core.errors import DataError

CACHE_FORMAT = "lsfa-token-cache"
CACHE_VERSION = "1"


@dataclass(frozen=True)
class CachedImage:
    rgb: torch.Tensor | None  # (T, C_rgb) float16 frozen RGB tokens
    xyz: torch.Tensor | None  # (T, C_xyz) float16 frozen xyz tokens; cells without points are 0
    fg: torch.Tensor  # (T,) bool foreground tokens
    class_id: int
    name: str = ""


def _as_tokens(x, what: str) -> torch.Tensor:
    """(T, C) or channel-first grid (C, g, g) -> (T, C) float16, raster order."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().cpu()
    if t.ndim == 3:
        t = t.reshape(t.shape[0], -1).T
    if t.ndim != 2:
        raise ValueError(f"{what} tokens must be (T, C) or (C, g, g), got shape {tuple(t.shape)}")
    t = t.to(torch.float32)
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} tokens contain NaN or inf")
    return t.to(torch.float16).contiguous()


class TokenCache:
    """Frozen tokens of the training images: per image RGB and/or xyz tokens, foreground, class id.

    ``add`` accepts (T, C) token matrices or the extractors' (C, g, g) maps (tensor or array) and
    a (T,) or (g, g) foreground mask; with ``fg=None`` the foreground is the cells with xyz points
    (all cells when there is no xyz). All images must carry the same modalities and shapes.
    """

    def __init__(self) -> None:
        self._items: list[CachedImage] = []
        self._stacks: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> CachedImage:
        return self._items[i]

    def add(self, rgb=None, xyz=None, fg=None, class_id: int = 0, name: str = "") -> None:
        if rgb is None and xyz is None:
            raise ValueError("an image needs RGB or xyz tokens")
        r = None if rgb is None else _as_tokens(rgb, "RGB")
        p = None if xyz is None else _as_tokens(xyz, "xyz")
        t = (r if r is not None else p).shape[0]
        if r is not None and p is not None and r.shape[0] != p.shape[0]:
            raise ValueError(f"RGB has {r.shape[0]} tokens but xyz has {p.shape[0]}")
        if fg is None:
            m = (p != 0).any(dim=1) if p is not None else torch.ones(t, dtype=torch.bool)
        else:
            m = torch.as_tensor(np.asarray(fg) if not isinstance(fg, torch.Tensor) else fg).reshape(-1).bool().cpu()
            if m.shape[0] != t:
                raise ValueError(f"foreground mask has {m.shape[0]} cells, tokens {t}")
        if self._items:
            ref = self._items[0]
            for mod, new, old in (("rgb", r, ref.rgb), ("xyz", p, ref.xyz)):
                if (new is None) != (old is None):
                    raise ValueError(f"all images must have the same modalities ({mod} differs)")
                if new is not None and new.shape != old.shape:
                    raise ValueError(f"{mod} tokens {tuple(new.shape)} differ from {tuple(old.shape)}")
        self._items.append(CachedImage(r, p, m, int(class_id), str(name)))
        self._stacks.clear()

    @property
    def modalities(self) -> tuple[str, ...]:
        if not self._items:
            return ()
        first = self._items[0]
        return tuple(m for m in ("rgb", "xyz") if getattr(first, m) is not None)

    @property
    def num_tokens(self) -> int:
        first = self._items[0]
        return (first.rgb if first.rgb is not None else first.xyz).shape[0]

    def dim(self, modality: str) -> int:
        return getattr(self._items[0], modality).shape[1]

    def stack(self, key: str) -> torch.Tensor:
        """"rgb"/"xyz" -> (N, T, C) float16, "fg" -> (N, T) bool, "class_id" -> (N,) int64."""
        if key not in self._stacks:
            if key == "class_id":
                self._stacks[key] = torch.tensor([it.class_id for it in self._items], dtype=torch.int64)
            else:
                self._stacks[key] = torch.stack([getattr(it, key) for it in self._items])
        return self._stacks[key]

    def save(self, path: str | Path) -> None:
        """Write a safetensors file atomically (temp file in the same folder, then rename)."""
        from safetensors.torch import save_file

        path = Path(path)
        tensors = {k: self.stack(k).contiguous() for k in (*self.modalities, "fg", "class_id")}
        meta = {"format": CACHE_FORMAT, "version": CACHE_VERSION,
                "names": json.dumps([it.name for it in self._items])}
        with atomic_target(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> "TokenCache":
        from safetensors import safe_open

        path = Path(path)
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
            raise DataError(path, f"not a readable token cache ({exc.__class__.__name__})") from None
        if meta.get("format") != CACHE_FORMAT:
            raise DataError(path, "not an LSFA token cache file")
        if meta.get("version") != CACHE_VERSION:
            raise DataError(path, f"token cache version {meta.get('version')!r} is not supported")
        try:
            names = json.loads(meta.get("names", "[]"))
            fg, cid = tensors["fg"], tensors["class_id"]
            n = fg.shape[0]
            rgb, xyz = tensors.get("rgb"), tensors.get("xyz")
            cache = cls()
            for i in range(n):
                cache.add(None if rgb is None else rgb[i], None if xyz is None else xyz[i], fg[i],
                          int(cid[i]), names[i] if i < len(names) else "")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise DataError(path, f"token cache is inconsistent ({exc})") from None
        return cache
