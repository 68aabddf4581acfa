"""Make ``import timm`` work beside the CPU-only torch wheel.

PyPI's torchvision 0.28.0 is a CUDA build whose C++ ops cannot load next to torch 2.13.0+cpu,
yet its meta registrations reference ``torchvision::nms``/``qnms`` unconditionally. Defining
those two schemas lets torchvision (and therefore timm) import; only ``torchvision.ops`` kernels
and ``torchvision.io`` codecs stay unavailable, and this project uses neither.
Call :func:`install` before the first ``import timm``; it is a no-op where the ops load.
"""

from __future__ import annotations

import sys

_lib = None


def install() -> bool:
    """Import torchvision, patching the missing op schemas if needed. True if patched."""
    global _lib
    if _lib is not None:
        return True
    try:
        import torchvision  # noqa: F401

        return False
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    import torch

    _lib = torch.library.Library("torchvision", "FRAGMENT")
    _lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision  # noqa: F401,F811

    return True
