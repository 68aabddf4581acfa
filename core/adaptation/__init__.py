"""LSFA feature adaptation: adaptors trained on cached frozen patch tokens (method.md §3-§4).

Public API::

    cache = TokenCache(); cache.add(rgb_tokens, xyz_tokens, fg, class_id)   # per training image
    result = train_adaptors(cache, AdaptConfig(), progress)                  # -> AdaptationResult
    rgb_a, xyz_a = apply_adaptors(result.state, result.config, rgb, xyz, fg) # for scoring
"""

from core.adaptation.cache import CachedImage, TokenCache
from core.adaptation.config import AdaptConfig, LOSS_NAMES
from core.adaptation.trainer import (
    AdaptationResult,
    AdaptorSet,
    apply_adaptors,
    load_adaptors,
    train_adaptors,
)

__all__ = [
    "AdaptConfig",
    "AdaptationResult",
    "AdaptorSet",
    "CachedImage",
    "LOSS_NAMES",
    "TokenCache",
    "apply_adaptors",
    "load_adaptors",
    "train_adaptors",
]
