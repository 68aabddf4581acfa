"""Bridge between the engine (pipeline/model file) and LSFA adaptor training.

``train_adapter`` turns the fit's frozen tokens into a trained :class:`Adapter`;
``Adapter.apply`` maps frozen tokens to adapted ones for memory banks and scoring;
``Adapter.state``/``from_state`` round-trip through the model file (JSON + tensors only).
"""

from __future__ import annotations

import numpy as np
import torch

from core.adaptation.cache import TokenCache
from core.adaptation.config import AdaptConfig
from core.adaptation.trainer import AdaptorSet, train_adaptors
from core.progress import Progress


class Adapter:
    """Trained adaptors of one model. Modalities without an adaptor pass through unchanged."""

    def __init__(self, state: dict[str, torch.Tensor], config: AdaptConfig, summary: dict):
        self.state_dict = state
        self.config = config
        self.summary = summary
        self._set = AdaptorSet(state, config)

    def apply(self, tokens: dict[str, np.ndarray], fg: np.ndarray) -> dict[str, np.ndarray]:
        """{modality: (B, T, C) float32} frozen -> adapted tokens; ``fg`` (B, T) bool."""
        rgb, xyz = self._set.apply(tokens.get("rgb"), tokens.get("xyz"), fg)
        out = dict(tokens)
        if rgb is not None:
            out["rgb"] = rgb.numpy().astype(np.float32, copy=False)
        if xyz is not None:
            out["xyz"] = xyz.numpy().astype(np.float32, copy=False)
        return out

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"config": self.config.to_dict(), "summary": self.summary}
        arrays = {k: v.detach().cpu().numpy() for k, v in self.state_dict.items()}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "Adapter":
        config = AdaptConfig.from_dict(meta["config"])
        state = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
        return cls(state, config, meta.get("summary", {}))


def adapt_config_for(fit_config) -> AdaptConfig:
    """AdaptConfig from a FitConfig's ``adaptation`` overrides (seeded by the fit seed)."""
    overrides = dict(fit_config.adaptation or {})
    overrides.setdefault("seed", fit_config.seed)
    return AdaptConfig.from_dict(overrides)


def train_adapter(
    tokens: dict[str, np.ndarray], fg: np.ndarray, fit_config, progress: Progress | None
) -> tuple[Adapter | None, list[str]]:
    """Train adaptors on one category's frozen training tokens. Returns (adapter or None, notes)."""
    cfg = adapt_config_for(fit_config)
    cache = TokenCache()
    n = len(fg)
    for i in range(n):
        cache.add(
            rgb=tokens["rgb"][i] if "rgb" in tokens else None,
            xyz=tokens["xyz"][i] if "xyz" in tokens else None,
            fg=fg[i],
            class_id=0,
        )
    result = train_adaptors(cache, cfg, progress)
    notes = list(result.notes)
    if not result.adapted:
        return None, notes
    summary = result.summary()
    notes.append(
        f"trained {'+'.join(result.modalities)} adaptors with losses {','.join(result.losses)} "
        f"for {summary['steps']} steps in {result.seconds:.1f} s"
    )
    return Adapter(result.state, result.config, summary), notes
