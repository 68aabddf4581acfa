"""Frozen feature extractors (RGB CNN, weight-free FPFH, ...) behind a name registry.

Use :func:`create_extractor` / :func:`available`; modules register themselves lazily.
"""

from core.features.registry import (  # noqa: F401
    DEFAULTS,
    FeatureExtractor,
    available,
    create_extractor,
    modality_of,
    register,
)
