"""Memory-bank scoring: greedy coreset, exact kNN bank, PatchCore image scores, anomaly maps and
late fusion of modalities. All distances are raw Euclidean distances in feature units."""

from core.scoring.coreset import greedy_coreset
from core.scoring.fusion import LateFusion
from core.scoring.maps import upsample_and_blur, upsample_and_blur_batch
from core.scoring.memory_bank import MemoryBank
from core.scoring.patchcore import max_image_score, reweighted_image_score

__all__ = [
    "greedy_coreset",
    "LateFusion",
    "MemoryBank",
    "max_image_score",
    "reweighted_image_score",
    "upsample_and_blur",
    "upsample_and_blur_batch",
]
